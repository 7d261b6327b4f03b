/* SPDX-License-Identifier: MIT */
/*
 * cache: the node-local directory that holds staged copies.
 *
 *   <dest>/stage-py-<uid>/               checked: ours, a real directory, 0700-ish
 *   <dest>/stage-py-<uid>/<name>-<key>/  a complete copy (appears by rename only)
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
/* true if a complete copy of that name is present. */
bool stg_cache_has(const struct stg_cache *c, const char *copy);
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
