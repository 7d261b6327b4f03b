/* SPDX-License-Identifier: MIT */
/*
 * trust: whom a path answers to, and opening exactly what was checked.
 *
 * A path is trusted by a caller when nobody but root and the caller can
 * change what it leads to: every directory on the way (symbolic links
 * followed, each link's target walked in turn) and the object itself are
 * owned by root or the caller, and none is writable by group or others,
 * through its mode bits or an ACL entry, except a directory with the
 * sticky bit (/tmp, /dev/shm), where others cannot rename what is not
 * theirs.  See SECURITY in stage-py(1).
 */
#ifndef STG_TRUST_H
#define STG_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "log.h"

/* Flags of stg_trust_check(). */
#define STG_TRUST_FILE 1    /* the path names a file: its own write bits count too */

struct stg_trust {
    bool ok;                /* nobody else can change it */
    uid_t other;            /* the one other owner found; (uid_t)-1: none */
    bool others;            /* several other owners, or writable by group or others */
    char why[STG_MSG_MAX];  /* the first finding, "'/x' (mode 0755) is owned by alice
                             * (uid 1000)", or the first that others can write */
    bool why_writable;
    dev_t dev;              /* the object the last walk ended on */
    ino_t ino;
};

/*
 * Walk path (relative: to the current directory) from "/" as the kernel
 * would, checking each directory, each symbolic link's owner and the
 * object at the end against caller.  OUT t (findings accumulate across
 * calls: clear it with stg_trust_init()).  Returns 0 once walked, or -1 if
 * a component cannot be looked up (then t->why says so, and t->ok is
 * false).
 */
void stg_trust_init(struct stg_trust *t);
int stg_trust_check(const char *path, uid_t caller, unsigned flags, struct stg_trust *t);

/*
 * An input opened by path (st: fstat of its descriptor), checked for the
 * caller with STG_TRUST_FILE.  OUT t.  Returns true if what was opened is
 * not what the walk ended on (it changed in between); else t->ok says
 * whether it answers to root and the caller.
 */
bool stg_trust_opened(const char *path, const struct stat *st, struct stg_trust *t);

/*
 * Open an input that decides what is staged or where (a manifest, the site
 * file, a bundle): a regular file (a FIFO, a directory or a device is
 * refused without blocking on it) that nobody but root and the caller can
 * change.  what: "manifest", "the site file", "bundle", for messages.
 * warn: a finding is a warning (the site allows it), not a refusal.
 * Returns the descriptor, or -1 having recorded why (stg_err_set(),
 * STG_EUSAGE).
 */
int stg_trust_open_input(const char *path, const char *what, bool warn);

/*
 * Pure core of the ACL rule: given the value of system.posix_acl_access
 * (len bytes at buf), the uid of a named user entry or the gid of a named
 * group entry that may write (its entry and the mask grant w), other than
 * the caller's uid.  Returns true and sets OUT who ("user 1000", "group
 * 100") if there is one.
 */
bool stg_trust_acl_writer(const void *buf, size_t len, uid_t caller, char *who, size_t wlen);

/*
 * Open path with O_NOFOLLOW on every component from "/" (relative paths:
 * from the current directory), so that a symbolic link swapped in anywhere
 * on the way fails the open (ELOOP or ENOTDIR) instead of leading
 * elsewhere.  flags: those of open(2) for the last component (O_NOFOLLOW
 * and O_CLOEXEC are added; add O_NONBLOCK for anything that may be a
 * FIFO).  Returns the descriptor, or -1 with errno set.
 */
int stg_trust_open(const char *path, int flags);
/* The same below the directory dirfd: path must be relative. */
int stg_trust_openat(int dirfd, const char *path, int flags);

/*
 * Whether every directory above the real path R (absolute, no links) can
 * be searched by others: a file below a private directory is private,
 * whatever its own mode.  OUT dir: the first one that cannot (when false).
 */
bool stg_trust_reachable(const char *R, char *dir, size_t dlen);

#endif
