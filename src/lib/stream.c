/* SPDX-License-Identifier: MIT */
/*
 * stream: the pack thread, the broadcast and the unpack thread, joined by
 * the chunk queues.
 */
#include "config.h"

#include "stream.h"

#include <string.h>

#include "bundle.h"
#include "chunk.h"
#include "log.h"
#include "pack.h"
#include "unpack.h"

struct ends {
    struct stg_pack *pack;      /* root */
    struct stg_unpack *unpack;  /* cold leaders */
    const struct stg_stream_args *a;
};

/* bcast.h's sent, on the root: the pack thread's progress, passed on. */
static void sent(void *arg, uint64_t stream_bytes, uint64_t chunks)
{
    struct ends *e = arg;
    struct stg_stream_progress pr = {.stream_bytes = stream_bytes, .chunks = chunks};
    stg_pack_progress(e->pack, &pr.entries, &pr.data);
    e->a->progress(e->a->progress_arg, &pr);
}

/* The broadcast stops early: neither end has more to do. */
static void stop_ends(void *arg)
{
    struct ends *e = arg;
    stg_pack_cancel(e->pack);
    stg_unpack_cancel(e->unpack);
}

int stg_stream_run(const struct stg_stream_args *a, struct stg_stream_result *r)
{
    memset(r, 0, sizeof *r);
    /* Root: depth in flight, depth+1 waiting for the look-ahead, one being
     * packed, two with the unpacker.  Leaders need fewer; same for all. */
    struct stg_chunk_pool pool;
    stg_chunk_pool_init(&pool, 2 * (size_t)a->depth + 3, a->chunk_size);
    struct stg_chunkq unpackq, packq;
    stg_chunkq_init(&unpackq, pool.n);
    stg_chunkq_init(&packq, pool.n);
    struct ends e = {NULL, NULL, a};
    int rc = STG_OK, urc = STG_OK, prc = STG_OK;
    if (a->unpack)
        rc = stg_unpack_start(&e.unpack, a->prefix, a->relocate_root, a->need,
                              a->unpack_threads, &unpackq, &pool.free);
    bool source_failed = false;
    int rank;
    MPI_Comm_rank(a->comm, &rank);
    bool is_root = rank == 0;   /* the sender, as bcast.h has it */
    if (is_root) {
        const struct stg_bundle *b = a->bundle;
        prc = b ? stg_pack_start_file(&e.pack, b->fd, b->path, b->archive_bytes, b->digest,
                                      &pool.free, &packq)
                : stg_pack_start(&e.pack, a->scan, a->compress, &pool.free, &packq);
        if (prc) {
            /* The leaders wait for chunk 0 already: tell them the stream ends. */
            struct stg_chunk *c = stg_chunkq_pop(&pool.free);
            stg_chunk_hdr(c)->len = 0;
            stg_chunk_hdr(c)->flags = STG_CHUNK_LAST | STG_CHUNK_ABORT;
            stg_chunkq_push(&packq, c);
            source_failed = true;
        }
    }
    /* Without an unpacker (warm node, or it could not start) the chunks go
     * straight back to the pool: the broadcast is collective, so follow it. */
    struct stg_bcast_args ba = {
        .watch = a->watch, .algo = a->algo, .comm = a->comm, .votes = a->votes, .members = a->members,
        .chunk_size = a->chunk_size, .depth = a->depth, .vote_every = a->vote_every,
        .stop_on_failure = a->stop_on_failure, .corrupt_seq = a->corrupt_seq,
        .pool = &pool, .in = &packq, .source_failed = source_failed,
        .out = e.unpack ? &unpackq : NULL, .stop = stop_ends, .stop_arg = &e,
        .held = a->held, .held_arg = a->held_arg,
        .sent = a->progress ? sent : NULL, .sent_arg = &e,
    };
    struct stg_bcast_result br;
    int brc = stg_bcast_run(&ba, &br);
    r->stream_bytes = br.stream_bytes;
    r->chunks = br.chunks;
    r->stopped = br.stopped;
    memcpy(r->digest, br.digest, sizeof r->digest);
    r->t_bcast0 = br.t0;
    r->t_bcast1 = br.t1;
    if (e.pack)
        prc = stg_pack_join(&e.pack, NULL, &r->archive_bytes, &r->t_pack0, &r->t_pack1);
    if (e.unpack) {
        struct stg_unpack_result ur;
        urc = stg_unpack_join(&e.unpack, &ur);
        r->entries = ur.entries;
        r->unpacked_bytes = ur.bytes;
        r->relocated = ur.relocated;
        r->t_unpack0 = ur.t0;
        r->t_unpack1 = ur.t1;
    }
    stg_chunkq_destroy(&packq);
    stg_chunkq_destroy(&unpackq);
    stg_chunk_pool_destroy(&pool);
    if (rc)
        return rc;
    if (is_root && prc)
        brc = brc ? brc : prc;
    return brc ? brc : urc;
}
