/* SPDX-License-Identifier: MIT */
/*
 * bcast: pipelined chunk broadcast (see bcast.h for the protocol).
 *
 * MPI_Ibcast leaves the choice of algorithm to the MPI library, which for
 * large messages uses bandwidth-optimal ones (scatter + allgather, or
 * pipelined trees); keeping several chunks in flight overlaps successive
 * broadcasts, so that a node forwards chunk i while it receives chunk i+1.
 * Non-blocking collectives only progress inside MPI calls, so the loops
 * below test the oldest request often and sleep only briefly.
 */
#include "config.h"

#include "bcast.h"

#include "bundle.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunk.h"
#include "log.h"
#include "pack.h"
#include "unpack.h"
#include "util.h"

/* The root sends chunk s only once the results of all votes before round
 * s / vote_every - VOTE_LAG are known: how far a failure can run ahead. */
#define VOTE_LAG 2

/* A FIFO of posted broadcasts. */
struct inflight {
    struct stg_chunk **c;
    MPI_Request *req;
    int head, n, cap;
};

static void inflight_push(struct inflight *f, struct stg_chunk *c, MPI_Request r)
{
    int i = (f->head + f->n) % f->cap;
    f->c[i] = c;
    f->req[i] = r;
    f->n++;
}

/* The oldest broadcast if it has completed, else NULL. */
static struct stg_chunk *inflight_test(struct inflight *f)
{
    if (f->n == 0)
        return NULL;
    int done = 0;
    MPI_Test(&f->req[f->head], &done, MPI_STATUS_IGNORE);
    if (!done)
        return NULL;
    struct stg_chunk *c = f->c[f->head];
    f->head = (f->head + 1) % f->cap;
    f->n--;
    return c;
}

/* The votes: one non-blocking all-reduce every vote_every chunks, on the
 * leaders' vote communicator, so they never mix with the broadcasts. */
struct votes {
    const struct stg_bcast_args *a;
    MPI_Request *req;
    int *mine, *sum;
    int cap;
    uint64_t posted, done;
    int failed;             /* nodes that had failed at the last known vote */
};

static void votes_init(struct votes *v, const struct stg_bcast_args *a)
{
    memset(v, 0, sizeof *v);
    v->a = a;
    v->cap = VOTE_LAG + 2 * a->depth + 4;
    v->req = stg_xcalloc((size_t)v->cap, sizeof *v->req);
    v->mine = stg_xcalloc((size_t)v->cap, sizeof *v->mine);
    v->sum = stg_xcalloc((size_t)v->cap, sizeof *v->sum);
}

/* Chunk seq is through (sent, or received): vote if it opens a round. */
static void votes_chunk_done(struct votes *v, uint64_t seq, bool failed_here)
{
    if (seq % (uint64_t)v->a->vote_every != 0)
        return;
    if (v->posted - v->done == (uint64_t)v->cap) {
        /* Never happens with the lag rule; wait rather than overwrite. */
        stg_node_wait(&v->req[v->done % (uint64_t)v->cap]);
    }
    int i = (int)(v->posted % (uint64_t)v->cap);
    v->mine[i] = failed_here ? 1 : 0;
    /* SUM: how many nodes failed, so skip mode can tell "all" from "some". */
    MPI_Iallreduce(&v->mine[i], &v->sum[i], 1, MPI_INT, MPI_SUM, v->a->votes, &v->req[i]);
    v->posted++;
}

/* Collect finished votes, in order. */
static void votes_test(struct votes *v)
{
    while (v->done < v->posted) {
        int i = (int)(v->done % (uint64_t)v->cap), flag = 0;
        MPI_Test(&v->req[i], &flag, MPI_STATUS_IGNORE);
        if (!flag)
            return;
        if (v->sum[i] > v->failed)
            v->failed = v->sum[i];
        v->done++;
    }
}

static void votes_finish(struct votes *v)
{
    while (v->done < v->posted) {
        stg_node_wait(&v->req[v->done % (uint64_t)v->cap]);
        v->done++;  /* the stream is over: the results no longer matter */
    }
    free(v->req);
    free(v->mine);
    free(v->sum);
}

/* Should the stream stop, given the votes so far? */
static bool votes_say_stop(const struct votes *v)
{
    if (v->failed == 0)
        return false;
    return v->a->stop_on_failure || v->failed >= v->a->members;
}

static void nap(long usec)
{
    stg_node_check_signal();
    stg_node_check_deadline();
    struct timespec ts = {0, usec * 1000};
    nanosleep(&ts, NULL);
}

static int post(const struct stg_bcast_args *a, struct stg_chunk *c, MPI_Request *req)
{
    int count = (int)(STG_CHUNK_HDR_SIZE + a->chunk_size);
    /* Root sends, every other leader receives, into the same buffer layout. */
    return MPI_Ibcast(c->buf, count, MPI_BYTE, 0, a->comm, req);
}

static bool failed_here(void)
{
    return stg_err_status() != STG_OK;
}

static int run_root(const struct stg_bcast_args *a, struct stg_bcast_result *r,
                    struct stg_chunk_pool *pool, struct stg_chunkq *unpackq, struct stg_unpack *u)
{
    struct stg_chunkq outq;
    stg_chunkq_init(&outq, pool->n);
    struct stg_pack *pack = NULL;
    const struct stg_bundle *b = a->bundle;
    int rc = b ? stg_pack_start_file(&pack, b->fd, b->path, b->archive_bytes, b->digest,
                                     &pool->free, &outq)
               : stg_pack_start(&pack, a->scan, &pool->free, &outq);
    if (rc) {
        /* The leaders wait for chunk 0 already: tell them the stream ends. */
        struct stg_chunk *c = stg_chunkq_pop(&pool->free);
        stg_chunk_hdr(c)->len = 0;
        stg_chunk_hdr(c)->flags = STG_CHUNK_LAST | STG_CHUNK_ABORT;
        stg_chunkq_push(&outq, c);
    }
    struct inflight f = {.cap = a->depth};
    f.c = stg_xcalloc((size_t)f.cap, sizeof *f.c);
    f.req = stg_xcalloc((size_t)f.cap, sizeof *f.req);
    struct votes v;
    votes_init(&v, a);
    struct stg_chunk **ready = stg_xcalloc(pool->n, sizeof *ready);
    size_t nready = 0;
    uint64_t produced = 0, seq = 0, completed = 0, offset = 0;
    bool ended = false, stopping = false;
    struct stg_hash *h = stg_hash_new();
    r->t_bcast0 = stg_now();
    while (!ended || nready > 0 || f.n > 0) {
        bool progressed = false;
        votes_test(&v);
        if (!stopping && (votes_say_stop(&v) || (pack == NULL))) {
            /* Another node failed: what is left goes out as empty ABORT
             * chunks, and this node stops unpacking. */
            stopping = true;
            r->stopped = true;
            stg_pack_cancel(pack);
            stg_unpack_cancel(u);
        }
        /* Take what the pack thread produced; wait a little if nothing else can move. */
        long wait = (!ended && nready == 0 && f.n == 0) ? 1000 : 0;
        struct stg_chunk *c;
        while (!ended && (c = stg_chunkq_trypop(&outq, wait)) != NULL) {
            ready[nready++] = c;
            produced++;
            if (stg_chunk_hdr(c)->flags & STG_CHUNK_LAST)
                ended = true;
            progressed = true;
            wait = 0;
        }
        /* Send chunk seq once chunk seq+depth exists (or the stream ended), so
         * that the announced post_upto never runs past the real stream, and
         * once the votes of the rounds before it are known. */
        while (nready > 0 && f.n < f.cap && (ended || produced > seq + (uint64_t)a->depth) &&
               seq < (v.done + VOTE_LAG) * (uint64_t)a->vote_every) {
            c = ready[0];
            memmove(ready, ready + 1, --nready * sizeof *ready);
            struct stg_chunk_hdr *hd = stg_chunk_hdr(c);
            if (stopping)
                hd->flags |= STG_CHUNK_ABORT;
            if (hd->flags & STG_CHUNK_ABORT) {
                hd->len = 0;
                r->stopped = true;
            }
            hd->seq = seq;
            hd->offset = offset;
            hd->post_upto = ended ? produced : seq + (uint64_t)a->depth + 1;
            stg_hash_update(h, stg_chunk_data(c), hd->len);
            offset += hd->len;
            stg_hash_digest(h, hd->digest);
            memcpy(r->digest, hd->digest, sizeof r->digest);
            stg_log_debug("send chunk %llu: %u bytes, flags %u, leaders may post up to %llu",
                          (unsigned long long)seq, hd->len, hd->flags,
                          (unsigned long long)hd->post_upto);
            MPI_Request req;
            post(a, c, &req);
            inflight_push(&f, c, req);
            seq++;
            progressed = true;
        }
        /* A finished broadcast: the chunk goes to this node's unpacking. */
        while ((c = inflight_test(&f)) != NULL) {
            votes_chunk_done(&v, completed++, failed_here());
            stg_chunkq_push(unpackq ? unpackq : &pool->free, c);
            progressed = true;
        }
        if (!progressed && (f.n > 0 || nready > 0))
            nap(20);
    }
    votes_finish(&v);
    r->t_bcast1 = stg_now();
    r->stream_bytes = offset;
    r->chunks = seq;
    if (pack)
        rc = stg_pack_join(&pack, NULL, &r->t_pack0, &r->t_pack1);
    stg_hash_free(&h);
    free(ready);
    free(f.c);
    free(f.req);
    stg_chunkq_destroy(&outq);
    return rc;
}

static int run_leader(const struct stg_bcast_args *a, struct stg_bcast_result *r,
                      struct stg_chunk_pool *pool, struct stg_chunkq *unpackq, struct stg_unpack *u)
{
    struct inflight f = {.cap = a->depth};
    f.c = stg_xcalloc((size_t)f.cap, sizeof *f.c);
    f.req = stg_xcalloc((size_t)f.cap, sizeof *f.req);
    struct votes v;
    votes_init(&v, a);
    struct stg_hash *h = stg_hash_new();
    uint64_t post_upto = 1, posted = 0, expect = 0, offset = 0;
    bool ended = false;
    int rc = STG_OK;
    r->t_bcast0 = stg_now();
    while (!ended || f.n > 0) {
        bool progressed = false;
        votes_test(&v);
        if (votes_say_stop(&v) && !r->stopped) {
            r->stopped = true;  /* a node failed: this copy will not be used */
            stg_unpack_cancel(u);
        }
        struct stg_chunk *c;
        while (!ended && posted < post_upto && f.n < f.cap &&
               (c = stg_chunkq_trypop(&pool->free, 0)) != NULL) {
            MPI_Request req;
            post(a, c, &req);
            inflight_push(&f, c, req);
            posted++;
            progressed = true;
        }
        while ((c = inflight_test(&f)) != NULL) {
            struct stg_chunk_hdr *hd = stg_chunk_hdr(c);
            if (hd->seq != expect || hd->len > a->chunk_size || hd->offset != offset) {
                stg_log_error("broken stream: chunk %llu arrived as %llu",
                              (unsigned long long)expect, (unsigned long long)hd->seq);
                MPI_Abort(MPI_COMM_WORLD, STG_EINTERNAL);
            }
            stg_log_debug("chunk %llu arrived: %u bytes, flags %u", (unsigned long long)hd->seq,
                          hd->len, hd->flags);
            if ((long)hd->seq == a->corrupt_seq && hd->len > 0) {
                /* STAGE_PY_TEST_CORRUPT: damage the data as a bad link would. */
                stg_chunk_data(c)[hd->len / 2] ^= 0x5a;
            }
            expect++;
            if (hd->post_upto > post_upto)
                post_upto = hd->post_upto;
            stg_hash_update(h, stg_chunk_data(c), hd->len);
            offset += hd->len;
            stg_hash_digest(h, r->digest);
            if (hd->flags & STG_CHUNK_ABORT) {
                r->stopped = true;
                rc = STG_EFAIL;   /* the failing node's own error says why */
            } else if (rc == STG_OK && memcmp(r->digest, hd->digest, sizeof r->digest) != 0) {
                /* Checked at every chunk: the node votes on it at once. */
                char got[2 * STG_DIGEST_LEN + 1], want[2 * STG_DIGEST_LEN + 1];
                stg_hex(r->digest, STG_DIGEST_LEN, got);
                stg_hex(hd->digest, STG_DIGEST_LEN, want);
                rc = stg_err_set(STG_EFAIL, "digest mismatch at chunk %llu: received %s, the root "
                                 "sent %s; the copy is discarded",
                                 (unsigned long long)hd->seq, got, want);
                stg_unpack_cancel(u);
            }
            if (hd->flags & STG_CHUNK_LAST)
                ended = true;
            votes_chunk_done(&v, hd->seq, failed_here());
            stg_chunkq_push(unpackq ? unpackq : &pool->free, c);
            progressed = true;
        }
        if (!progressed)
            nap(20);
    }
    votes_finish(&v);
    r->t_bcast1 = stg_now();
    r->stream_bytes = offset;
    r->chunks = expect;
    stg_hash_free(&h);
    free(f.c);
    free(f.req);
    return rc;
}

int stg_bcast_run(const struct stg_bcast_args *a, struct stg_bcast_result *r)
{
    memset(r, 0, sizeof *r);
    /* Root: depth in flight, depth+1 waiting for the look-ahead, one being
     * packed, two with the unpacker.  Leaders need fewer; same for all. */
    struct stg_chunk_pool pool;
    stg_chunk_pool_init(&pool, 2 * (size_t)a->depth + 3, a->chunk_size);
    struct stg_chunkq unpackq;
    stg_chunkq_init(&unpackq, pool.n);
    struct stg_unpack *u = NULL;
    int rc = STG_OK, urc = STG_OK;
    if (a->unpack)
        rc = stg_unpack_start(&u, a->prefix, a->relocate_root, a->need, &unpackq, &pool.free);
    /* Without an unpacker (warm node, or it could not start) the chunks go
     * straight back to the pool: the broadcast is collective, so follow it. */
    struct stg_chunkq *q = u ? &unpackq : NULL;
    int brc = a->node->is_root ? run_root(a, r, &pool, q, u) : run_leader(a, r, &pool, q, u);
    if (u) {
        struct stg_unpack_result ur;
        urc = stg_unpack_join(&u, &ur);
        r->entries = ur.entries;
        r->unpacked_bytes = ur.bytes;
        r->relocated = ur.relocated;
        r->t_unpack0 = ur.t0;
        r->t_unpack1 = ur.t1;
    }
    stg_chunkq_destroy(&unpackq);
    stg_chunk_pool_destroy(&pool);
    if (rc)
        return rc;
    return brc ? brc : urc;
}
