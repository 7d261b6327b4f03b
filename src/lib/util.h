/* SPDX-License-Identifier: MIT */
/*
 * util: small helpers shared by the stages: memory, string lists, sizes,
 * paths and removal of a directory tree.
 */
#ifndef STG_UTIL_H
#define STG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation that cannot fail: out of memory ends the job (MPI_Abort). */
void *stg_xmalloc(size_t n);
void *stg_xcalloc(size_t n, size_t size);
void *stg_xrealloc(void *p, size_t n);
char *stg_xstrdup(const char *s);
char *stg_xstrndup(const char *s, size_t n);
char *stg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Called on out-of-memory; set by main to MPI_Abort once MPI is up. */
extern void (*stg_oom_hook)(void);
/* Out of memory, where a library said so: say it, stg_oom_hook, abort. */
void stg_oom(void) __attribute__((noreturn));

/* A growable list of owned strings. */
struct stg_strv {
    char **v;
    size_t n, cap;
};
void stg_strv_push(struct stg_strv *sv, const char *s);
bool stg_strv_has(const struct stg_strv *sv, const char *s);
/* Split s on white space and append each word. */
void stg_strv_split(struct stg_strv *sv, const char *s);
void stg_strv_free(struct stg_strv *sv);

/* A set of strings (open addressing, FNV-1a).  The set borrows them: each
 * must outlive it. */
struct stg_strset {
    const char **v;
    size_t n, cap;
};
/* Add s; true if it was not there. */
bool stg_strset_add(struct stg_strset *set, const char *s);
/* Whether the len bytes at s, as a string, are in the set. */
bool stg_strset_has(const struct stg_strset *set, const char *s, size_t len);
/* Free the table (not the strings). */
void stg_strset_free(struct stg_strset *set);

/* A growable string, always NUL-terminated once anything was put. */
struct stg_buf {
    char *s;
    size_t n, cap;
};
/* Append the n bytes at s. */
void stg_buf_put(struct stg_buf *b, const char *s, size_t n);
/* Append printf-style.  Returns the bytes appended. */
int stg_buf_printf(struct stg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string, with its quotes: the one JSON writer (the
 * rest of a document is plain text around it). */
void stg_buf_json_str(struct stg_buf *b, const char *s);

/* A setting's yes or no: "yes", "true", "1" or "no", "false", "0", in any
 * case.  Returns 0 or -1. */
int stg_parse_bool(const char *s, bool *out);
/* The compressions an archive may have (pack.h writes them, unpack.h
 * reads each); NULL-terminated, "none" first. */
extern const char *const stg_compressions[];
#define STG_COMPRESS_CHOICES "none, gzip, zstd or lz4"
/* A compression's name: OUT the entry of stg_compressions.  Returns 0 or -1. */
int stg_parse_compress(const char *s, const char **out);
/* "4M", "512K", "1G", "100": binary multiples.  Returns 0 or -1. */
int stg_parse_size(const char *s, uint64_t *out);
/* "90", "90s", "5m", "2h", "7d": seconds.  Returns 0 or -1. */
int stg_parse_duration(const char *s, double *out);
/* "1.5 MiB" style, into buf. */
const char *stg_format_size(uint64_t n, char *buf, size_t len);

/* s as a JSON string, with its quotes (malloc'd). */
char *stg_json_quote(const char *s);

/* A field of a flat JSON object that stage-py wrote itself (records,
 * bundle trailers): "key": "text" (escaped as stg_buf_json_str() does) or
 * "key": 123.  OUT out: the value, "" if absent. */
void stg_json_field(const char *json, const char *key, char *out, size_t len);
/* The same for a number; 0 if absent. */
unsigned long long stg_json_u64(const char *json, const char *key);

/* Seconds on a monotonic clock. */
double stg_now(void);

/* OUT: a malloc'd absolute, lexically normalised copy of path (relative to
 * the current directory); NULL if path is empty. */
char *stg_path_absolute(const char *path);
/* true if path can stand in a ':'-separated path list: no ':' or newline. */
bool stg_path_listable(const char *path);
/* Drop trailing slashes (not the first character).  Returns path. */
char *stg_path_strip_slash(char *path);
/* true if path is absolute and has no ".", ".." or empty components. */
bool stg_path_is_clean_absolute(const char *path);
/* true if a and b (either may be NULL) are one existing regular file, by
 * links or by another name: an output that would replace an input. */
bool stg_path_same_file(const char *a, const char *b);
/* true if absolute paths a and b name one place, whether or not a file is
 * there: the same name in the same directory (by its real path). */
bool stg_path_same_place(const char *a, const char *b);

/*
 * Remove name (a file or a whole tree) below the directory dirfd, never
 * following symbolic links; read-only directories are made writable first.
 * Returns 0 or -1 with errno set.
 */
int stg_rm_tree_at(int dirfd, const char *name);

#endif
