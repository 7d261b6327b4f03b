/* SPDX-License-Identifier: MIT */
/*
 * walk: the root's one walk of the manifest's trees, into the ordered list
 * of entries to stage and the key that identifies their content.
 */
#ifndef STG_WALK_H
#define STG_WALK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "manifest.h"
#include "util.h"

enum stg_entry_kind { STG_ENT_DIR, STG_ENT_FILE, STG_ENT_SYMLINK, STG_ENT_HARDLINK };

struct stg_entry {
    char *path;             /* archive path: the mirrored absolute path without its "/" */
    char *src;              /* file to read the content from (files only) */
    char *link;             /* symlink target (relative), or hardlink's first path */
    enum stg_entry_kind kind;
    mode_t mode;            /* permission bits */
    int64_t size;
    struct timespec mtime;
    bool tree_root;         /* a tree's source: its mtime is kept out of the key */
    /* files: what src was when the walk saw it; pack reads it only if it
     * still is (see stg_pack_start()) */
    dev_t dev;
    ino_t ino;
    struct timespec src_mtime;
};

struct stg_walk {
    struct stg_entry *v;
    size_t n, cap;
    uint64_t files;         /* entries of every kind */
    uint64_t bytes;         /* sum of regular file sizes */
    char key[17];           /* 16 hex digits */
    char trees_key[17];     /* the key of the trees as walked, before any stg_walk_add_file() */
    /* private: the set of archive paths, to stage overlapping trees once */
    struct stg_strset set;
};

/*
 * Walk every tree of m, from each source's real path (resolved once, at the
 * start of its walk) down by directory descriptors: every entry's src is a
 * real path that pack can open with no link followed.  As root, what others
 * cannot read (its mode, or a directory on its real path that others cannot
 * search) is left out with a warning, and a tree whose source others cannot
 * reach is an error.  OUT s.  Returns STG_OK, or a status with the
 * error recorded by stg_err_set() (naming the path).  Warnings (dangling
 * links, special files, cycles) go to stderr.
 */
int stg_walk_run(const struct stg_manifest *m, struct stg_walk **s);
void stg_walk_free(struct stg_walk **s);

/* true if the copy has an entry at archive path apath. */
bool stg_walk_has(const struct stg_walk *s, const char *apath);
/* Add the regular file src to the copy at apath (and its directory, if
 * the copy lacks it), after the scanned entries, with mtime (NULL: src's),
 * so that the same additions give the same key; then stg_walk_rekey().
 * A file the copy has already at apath is replaced.  owner: a user whom
 * root ran an interpreter as, who wrote src; then src must be that user's
 * own, with one name, readable by others (a hard link to a file of root's
 * is refused); (uid_t)-1: none. */
int stg_walk_add_file(struct stg_walk *s, const char *apath, const char *src,
                      const struct timespec *mtime, uid_t owner);
/* Compute the key again, after additions. */
void stg_walk_rekey(struct stg_walk *s);

/* Exposed for tests: the relative link from directory `from` to `to`, both
 * archive paths.  Returns a malloc'd string. */
char *stg_walk_relative_link(const char *from_dir, const char *to);

#endif
