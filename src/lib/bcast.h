/* SPDX-License-Identifier: MIT */
/*
 * bcast: the archive's way from the root to every node leader, in chunks,
 * down a binary tree of the leaders, several chunks in flight.
 *
 * The MPI thread (the caller) does all MPI calls; the pack thread (root)
 * and the unpack thread (each leader) do the libarchive work, so packing,
 * transfer and unpacking overlap.  Memory on every rank is bounded by the
 * chunk pool, whatever the size of the trees.
 *
 * Protocol.  Every message is one chunk: a header and up to chunk_size
 * bytes.  Leaders may only post a receive that a chunk will match, so the
 * root announces in chunk i how far the leaders may post (post_upto): the
 * number of chunks packed so far, every one of which it will send; and a
 * chunk without STG_CHUNK_LAST always has a successor.  Every chunk carries
 * the XXH3-128 digest of the stream up to its end, so a leader finds damage
 * at the chunk it happened in; the last chunk has STG_CHUNK_LAST.
 *
 * Stopping early.  Every vote_every chunks, all leaders vote on a
 * communicator of their own (a non-blocking all-reduce of "I failed"); the
 * root never runs more than two votes ahead of the results.  When a vote
 * says a node failed (in abort mode), or the root cannot pack, the root
 * marks every chunk it still has to send STG_CHUNK_ABORT (no data), the
 * leaders stop unpacking, and the stream ends within a few chunks.
 */
#ifndef STG_BCAST_H
#define STG_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "node.h"
#include "walk.h"

struct stg_bundle;

struct stg_bcast_args {
    const struct stg_node *node;
    MPI_Comm comm;          /* the root and the cold leaders: the chunks */
    MPI_Comm votes;         /* the same ranks, for the votes */
    int members;            /* the cold nodes in comm (not a warm root) */
    size_t chunk_size;      /* data bytes per message */
    int depth;              /* chunks in flight on each rank */
    int unpack_threads;     /* leaders: threads that write the copy */
    const struct stg_walk *scan;    /* root: what to pack */
    const struct stg_bundle *bundle;    /* root: or the bundle to stream as it is */
    bool unpack;            /* leaders: unpack (false: the node is warm, just follow) */
    const char *prefix;     /* leaders: directory to unpack into, relative to cwd */
    const char *relocate_root;  /* leaders: the copy's final place, for relocate.h; NULL: none */
    uint64_t need;          /* bytes the copy takes (for messages) */
    int vote_every;         /* chunks between votes */
    bool stop_on_failure;   /* abort mode: one failed node stops the stream */
    long corrupt_seq;       /* test hook: flip a byte of this chunk here; -1: never */
};

struct stg_bcast_result {
    uint64_t stream_bytes;  /* archive bytes broadcast */
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

/* Leaders only (every leader must call it).  Returns this leader's status;
 * errors are recorded with stg_err_set(). */
int stg_bcast_run(const struct stg_bcast_args *a, struct stg_bcast_result *r);

/* The largest chunk a single message can carry (an MPI count is an int). */
#define STG_CHUNK_MAX ((size_t)1 << 30)
#define STG_CHUNK_MIN ((size_t)4096)

#endif
