/* SPDX-License-Identifier: MIT */
/*
 * stream: the archive's way from the root's trees (or bundle) into every
 * cold node's copy: the pack thread (root) fills chunks, the broadcast
 * (bcast.h) carries them down the tree, and the unpack thread (each cold
 * leader) writes them out as they arrive, so packing, transfer and
 * unpacking overlap.  Memory on every rank is bounded by the chunk pool,
 * whatever the size of the trees.
 *
 * Thread rules: the caller is the MPI thread and makes every MPI call; the
 * pack and unpack threads touch only their queues, the trees and the copy,
 * and record errors with stg_err_set().
 */
#ifndef STG_STREAM_H
#define STG_STREAM_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bcast.h"
#include "hash.h"
#include "walk.h"
#include "watchdog.h"

struct stg_bundle;

/* How far the root is (stg_stream_args' progress). */
struct stg_stream_progress {
    uint64_t entries;       /* entries packed */
    uint64_t data;          /* their file bytes (from a bundle: archive bytes read) */
    uint64_t stream_bytes;  /* bytes sent */
    uint64_t chunks;        /* chunks sent */
};

struct stg_stream_args {
    struct stg_watchdog *watch;
    enum stg_bcast_algo algo;   /* the broadcast's shape (bcast.h) */
    MPI_Comm comm;          /* the root (rank 0, the sender) and the cold leaders */
    MPI_Comm votes;         /* the same ranks, for the votes */
    int members;            /* the cold nodes in comm (not a warm root) */
    size_t chunk_size;      /* data bytes per message */
    int depth;              /* chunks in flight on each rank */
    int unpack_threads;     /* leaders: threads that write the copy */
    const struct stg_walk *scan;    /* root: what to pack */
    const char *compress;   /* root: the trees' archive's compression (util.h; NULL: none) */
    const struct stg_bundle *bundle;    /* root: or the bundle to stream as it is */
    bool unpack;            /* leaders: unpack (false: the node is warm, just follow) */
    const char *prefix;     /* leaders: directory to unpack into, relative to cwd */
    const char *relocate_root;  /* leaders: the copy's final place, for relocate.h; NULL: none */
    uint64_t need;          /* bytes the copy takes (for messages) */
    int vote_every;         /* chunks between votes */
    bool stop_on_failure;   /* abort mode: one failed node stops the stream */
    long corrupt_seq;       /* test hook: flip a byte of this chunk here; -1: never */
    void (*held)(void *, int child);    /* see bcast.h; NULL: not asked */
    void *held_arg;
    /* Root: called in the MPI thread after each chunk sent (keep it cheap);
     * NULL: not asked. */
    void (*progress)(void *, const struct stg_stream_progress *);
    void *progress_arg;
};

struct stg_stream_result {
    uint64_t stream_bytes;  /* archive bytes broadcast (compressed, if so) */
    uint64_t archive_bytes; /* root: the archive before compression */
    uint64_t chunks;
    bool stopped;           /* the stream was stopped early */
    uint64_t entries;       /* entries unpacked here */
    uint64_t unpacked_bytes;
    uint64_t relocated;     /* files pointed at the copy (relocate.h) */
    unsigned char digest[STG_DIGEST_LEN];
    double t_pack0, t_pack1;        /* root */
    double t_bcast0, t_bcast1;
    double t_unpack0, t_unpack1;    /* leaders that unpacked */
};

/* Every rank of comm (the leaders in the stream).  Returns this leader's
 * status; errors are recorded with stg_err_set(). */
int stg_stream_run(const struct stg_stream_args *a, struct stg_stream_result *r);

#endif
