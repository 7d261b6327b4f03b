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

#endif
