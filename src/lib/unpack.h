/* SPDX-License-Identifier: MIT */
/*
 * unpack: on every node leader, a thread that feeds the chunks to
 * libarchive as they arrive and writes the entries below a private
 * temporary directory, checking every entry (an untrusted archive).
 */
#ifndef STG_UNPACK_H
#define STG_UNPACK_H

#include <stdint.h>

#include "chunk.h"

struct stg_unpack;

struct stg_unpack_result {
    uint64_t entries;       /* entries written */
    uint64_t bytes;         /* file data written */
    uint64_t relocated;     /* files whose paths were pointed at the copy */
    double t0, t1;          /* when the thread ran */
};

/*
 * Start unpacking the stream that arrives on inq below prefix, a directory
 * relative to the current working directory (the caller has fchdir()ed into
 * the checked per-user directory).  root: the copy's final place, where
 * its absolute paths are to point once it is whole (relocate.h); NULL: the
 * copy stays as it was sent.  Every chunk taken from inq goes back to
 * freeq, also after an error: the thread reads the stream to its end (the
 * chunk with STG_CHUNK_LAST) whatever happens.  need: the bytes the copy
 * takes, for the message when space runs out.  threads: how many threads
 * write the files (1: the one that reads the stream; more: it, and
 * threads - 1 writer threads for the smaller files).
 */
int stg_unpack_start(struct stg_unpack **u, const char *prefix, const char *root,
                     uint64_t need, int threads, struct stg_chunkq *inq,
                     struct stg_chunkq *freeq);
/* The threads for stg_unpack_start() when none are asked for: one fewer
 * than the CPUs this process may run on, from 1 to 4. */
int stg_unpack_threads_auto(void);
/* Stop writing (another node failed); the stream is still read to its end. */
void stg_unpack_cancel(struct stg_unpack *u);
/* Wait for the thread; OUT r.  Returns its status (errors: stg_err_set()). */
int stg_unpack_join(struct stg_unpack **u, struct stg_unpack_result *r);

/* Exposed for tests: checks applied to every entry of an untrusted archive.
 * true if path is relative, non-empty and has no ".." component. */
bool stg_unpack_safe_path(const char *path);
/* true if the symbolic link at path with this target stays inside the copy. */
bool stg_unpack_safe_symlink(const char *path, const char *target);

#endif
