/* SPDX-License-Identifier: MIT */
/*
 * cache: the node-local directory that holds staged copies.
 *
 *   <dest>/stage-py-<uid>/               checked: ours, a real directory, 0700-ish
 *   <dest>/stage-py-<uid>/<name>-<key>/  a complete copy (appears by rename only),
 *       .stage-py.json                    its record, written last: a copy
 *                                         without it is never trusted
 *   <dest>/stage-py-<uid>/.tmp-...       a copy being written, private to one run
 */
#ifndef STG_CACHE_H
#define STG_CACHE_H

#include <stdbool.h>

struct stg_cache {
    char *dest;             /* the node-local root, e.g. /dev/shm */
    char *dir;              /* <dest>/stage-py-<uid> */
    int fd;                 /* open on dir: every later step works relative to it */
    int tmpfd;              /* open on our temporary directory, locked; -1: none */
};

/*
 * Create (if needed) and check the per-user directory below dest: it must
 * be a real directory (not a symbolic link), owned by this user, and not
 * writable by group or others.  Returns STG_OK or an error (stg_err_set()).
 */
int stg_cache_open(struct stg_cache *c, const char *dest);
void stg_cache_close(struct stg_cache *c);

/* OUT copy: "<name>-<key>". */
char *stg_cache_copy_name(const char *name, const char *key);
/* What a complete copy records about itself (.stage-py.json). */
struct stg_record {
    const char *name, *key;
    const char *digest;     /* hex XXH3-128 of the stream it came from */
    unsigned long long bytes, files;
};

#define STG_RECORD ".stage-py.json"

/*
 * true if a complete copy of that name ("<name>-<key>") is present: a real
 * directory of ours with a record that names the key.  Marks it used now (the record's
 * modification time is the copy's last use).  A directory of that name
 * without a valid record is not a copy: it is removed, with a warning.
 */
bool stg_cache_has(const struct stg_cache *c, const char *copy);
/* Write the record into the temporary directory, the last file of the copy. */
int stg_cache_record(const struct stg_cache *c, const char *tmp, const struct stg_record *r);
/* Make a private temporary directory for copy, locked (flock) for as long as
 * this run writes it.  OUT tmp: its name. */
int stg_cache_tmp_new(struct stg_cache *c, const char *copy, char **tmp);
/* Remove what runs that are gone left behind: unlocked temporary
 * directories, and probes and half-made directories over an hour old.
 * Never a directory that a live run holds, never a complete copy. */
void stg_cache_sweep(const struct stg_cache *c);
/*
 * Publish tmp as copy with one rename.  If a complete copy of the same name
 * (the same content) appeared meanwhile, keep that one and remove tmp.
 */
int stg_cache_commit(struct stg_cache *c, const char *tmp, const char *copy);
/* Remove tmp and everything below it. */
void stg_cache_discard(struct stg_cache *c, const char *tmp);

#endif
