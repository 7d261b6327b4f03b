/* SPDX-License-Identifier: MIT */
/*
 * bcast: chunks from the root to every node leader, down two trees of the
 * leaders (or one binary tree), several chunks in flight.  What the chunks hold and where
 * they go is stream.h's: the root's come from a queue that the pack thread
 * fills, and every rank hands each chunk on to a queue that the unpack
 * thread drains.  Only the caller (the MPI thread) makes MPI calls.
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

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "hash.h"
#include "watchdog.h"

/* The shape of the broadcast (see bcast.c). */
enum stg_bcast_algo {
    STG_BCAST_TWO_TREE = 0, /* full bandwidth, logarithmic fill: the default */
    STG_BCAST_BINARY        /* one binary tree: half the bandwidth */
};

struct stg_bcast_args {
    struct stg_watchdog *watch; /* checked wherever the stream waits */
    enum stg_bcast_algo algo;
    MPI_Comm comm;          /* the root (rank 0) and the cold leaders: the chunks */
    MPI_Comm votes;         /* the same ranks, for the votes */
    int members;            /* the cold nodes in comm (not a warm root) */
    size_t chunk_size;      /* data bytes per message */
    int depth;              /* chunks in flight on each rank */
    int vote_every;         /* chunks between votes */
    bool stop_on_failure;   /* abort mode: one failed node stops the stream */
    long corrupt_seq;       /* test hook: flip a byte of this chunk here; -1: never */
    struct stg_chunk_pool *pool;    /* empty chunks; leaders receive into them */
    struct stg_chunkq *in;  /* root: the chunks to send, in order, the last one LAST */
    /* Root: called in this thread whenever it takes chunks from in, to put
     * more there.  NULL in stage-py, whose pack thread fills in; the
     * simulation (tests/bench/sim.c) has no threads beside its ranks, so
     * it fills in from here. */
    void (*feed)(void *);
    void *feed_arg;
    bool source_failed;     /* root: in holds one LAST|ABORT chunk: stop at once */
    struct stg_chunkq *out; /* where each chunk goes once sent on; NULL: back to the pool */
    /* Called on the root when it stops the stream (a failed vote, or
     * source_failed), and on a leader when a vote or its own digest check
     * stops it; a leader that an ABORT chunk reaches first is told by that
     * chunk alone, which its drain sees too. */
    void (*stop)(void *);
    void *stop_arg;
    /* A chunk has waited more than a quarter of a second to go on to child
     * (a rank of comm): that child, or its link, holds the stream back.
     * NULL: not asked. */
    void (*held)(void *, int child);
    void *held_arg;
    /* Root: called after each chunk it sends, with the bytes and chunks
     * sent so far, for progress (keep it cheap).  NULL: not asked. */
    void (*sent)(void *, uint64_t stream_bytes, uint64_t chunks);
    void *sent_arg;
};

struct stg_bcast_result {
    uint64_t stream_bytes;  /* archive bytes broadcast */
    uint64_t chunks;
    bool stopped;           /* the stream was stopped early */
    unsigned char digest[STG_DIGEST_LEN];
    double t0, t1;
};

/* The place of rank, among size ranks of comm (rank 0 sends), in tree k:
 * chunk seq goes down tree seq % 2 (the binary tree is both).  OUT parent
 * (-1 at rank 0) and child[] (-1: none). */
void stg_bcast_tree(enum stg_bcast_algo algo, int size, int rank, int k, int *parent,
                    int child[2]);

/* The pipeline depth (chunks in flight on each rank) when none is given,
 * for a stream to receivers ranks: in the two trees a node's chunks of
 * one tree come up to a level of the trees earlier or later than those of
 * the other, and it takes them in stream order, so its window must cover
 * that lag: 4 up to 3 levels (8 nodes), else 4 + 4 x the trees' levels,
 * at most 64, and no more than keeps a rank's chunks (2 x depth + 3)
 * within 64 MiB; 4 for the binary tree. */
int stg_bcast_depth_auto(enum stg_bcast_algo algo, int receivers, size_t chunk_size);

/* "two-tree", "binary" -> OUT algo.  Returns 0 or -1. */
int stg_bcast_algo_parse(const char *s, enum stg_bcast_algo *algo);

/* Every rank of comm.  Returns this rank's status; errors are recorded
 * with stg_err_set(). */
int stg_bcast_run(const struct stg_bcast_args *a, struct stg_bcast_result *r);

#endif
