/* SPDX-License-Identifier: MIT */
/*
 * space: will the copy fit?  /dev/shm is memory: its pages count against
 * the tmpfs size and against the job's memory cgroup, and a /dev/shm that
 * is too full also breaks MPI's own shared-memory transport.
 */
#ifndef STG_SPACE_H
#define STG_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a copy of `bytes` in `files` entries takes: the data and a page per
 * entry. */
uint64_t stg_space_need(uint64_t bytes, uint64_t files);

/*
 * Check that need bytes, plus headroom, fit both in the file system of dir
 * and under the memory limit of this process's cgroup (v2 memory.max, v1
 * memory.limit_in_bytes, the tightest along the path) less its current use.
 * Returns STG_OK or an error (stg_err_set()) naming the need and the limit.
 */
int stg_space_check(const char *dir, uint64_t need, uint64_t headroom);

/* The memory cgroup of this process.  OUT dir: its directory under the
 * cgroup file system; OUT limit, used: the tightest limit along the path and
 * the use there.  Returns false if unknown (no cgroup file system). */
bool stg_space_cgroup(char *dir, size_t len, uint64_t *limit, uint64_t *used);

/*
 * The site's node-wide cap (max_node_cache): what the file system of dest
 * holds in use (statvfs: every user's copies and anything else on it) and
 * need more must stay within cap.  from: where the cap was set, for the
 * message.  Returns STG_OK or an error naming the cap.
 */
int stg_space_cap_check(const char *dest, const char *copy, uint64_t need, uint64_t cap,
                        const char *from);

/*
 * The file-system type of a statfs(2) f_type: its name ("tmpfs", "nfs",
 * "lustre", "unknown") and whether it is a network, parallel or user-space
 * (FUSE) file system that may be shared by the nodes.  Pure: the table.
 */
const char *stg_space_fs_name(unsigned long magic, bool *shared);

/* Whether the len bytes at name are the name of a shared type. */
bool stg_space_fs_shared_name(const char *name, size_t len);

/*
 * A destination must be node-local: the file system of dest (statfs(2))
 * may not be a shared one (stg_space_fs_name()), unless its name is in
 * allow (names separated by blanks: the site's allow_fs).  Returns STG_OK
 * or an error naming the path and the type.
 */
int stg_space_local_check(const char *dest, const char *allow);

#endif
