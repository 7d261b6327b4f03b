/* SPDX-License-Identifier: MIT */
/*
 * t-bcast: the chunk broadcast over the node leaders, on the fake cluster
 * (tests/unit-mpi.t runs it on 2, 3 and 5 nodes).  The root's feeder
 * thread stands in for the pack thread: it fills chunks with known bytes
 * (a function of the stream offset) and hands them to the broadcast
 * through the `in` queue; on every leader (the root too) a drain thread
 * stands in for the unpack thread: it takes every chunk from `out` and
 * checks its order, offset, data and digest against what the root sent
 * (the digest computed here with hash.h).  Then what stops a stream: a
 * failed leader (abort mode, skip mode), a root that cannot pack
 * (source_failed), a damaged chunk.
 */
#include "config.h"

#include <mpi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "bcast.h"
#include "chunk.h"
#include "hash.h"
#include "log.h"
#include "mpitap.h"
#include "node.h"
#include "util.h"
#include "watchdog.h"

static struct stg_node n;
static struct stg_watchdog w;
static char (*names)[256];  /* every leader's node name, by leader rank */

/* The byte at stream offset o. */
static unsigned char byte_at(uint64_t o)
{
    return (unsigned char)(((o * 2654435761u) >> 13) ^ (o >> 9));
}

/* What the root sends: chunk i holds len_of(i) bytes. */
struct plan {
    size_t chunk_size;
    int depth, vote_every, nchunks;
    bool empty_last;        /* the last chunk has no data */
    enum stg_bcast_algo algo;   /* the two trees unless said */
};

static uint32_t len_of(const struct plan *p, int i)
{
    if (i == p->nchunks - 1)
        return p->empty_last ? 0 : (uint32_t)(p->chunk_size / 3 + 1);
    return (uint32_t)(p->chunk_size - (size_t)(i * 37 % 101));
}

static uint64_t total_of(const struct plan *p)
{
    uint64_t t = 0;
    for (int i = 0; i < p->nchunks; i++)
        t += len_of(p, i);
    return t;
}

/* The digest of the first bytes of the stream, fed in odd pieces (XXH3
 * streams: the pieces do not matter). */
static void digest_of(uint64_t bytes, unsigned char out[STG_DIGEST_LEN])
{
    struct stg_hash *h = stg_hash_new();
    unsigned char buf[777];
    for (uint64_t o = 0; o < bytes;) {
        size_t k = bytes - o < sizeof buf ? (size_t)(bytes - o) : sizeof buf;
        for (size_t j = 0; j < k; j++)
            buf[j] = byte_at(o + j);
        stg_hash_update(h, buf, k);
        o += k;
    }
    stg_hash_digest(h, out);
    stg_hash_free(&h);
}

/* One run of the broadcast on this rank. */
struct run {
    const struct plan *p;
    struct stg_chunk_pool pool;
    struct stg_chunkq in, out;
    atomic_int stop_calls;
    atomic_int stopping;    /* the feeder should end the stream */
    /* feeder */
    int fed;
    /* drain */
    uint64_t chunks, bytes, data_chunks, aborts;
    bool in_order, data_ok, digests_ok, last_seen, aborts_empty;
    uint32_t last_flags;
    unsigned char digest[STG_DIGEST_LEN];
    char what[256];         /* the first thing the drain found wrong */
};

static void stop_cb(void *arg)
{
    struct run *r = arg;
    atomic_fetch_add(&r->stop_calls, 1);
    atomic_store(&r->stopping, 1);
}

/* The pack thread's part: the plan's chunks, the last one LAST; once the
 * stream is stopped, one empty LAST chunk ends it (as a cancelled pack). */
static void *feeder(void *arg)
{
    struct run *r = arg;
    const struct plan *p = r->p;
    uint64_t off = 0;
    for (int i = 0; i < p->nchunks; i++) {
        struct stg_chunk *c = stg_chunkq_pop(&r->pool.free);
        struct stg_chunk_hdr *h = stg_chunk_hdr(c);
        memset(h, 0, sizeof *h);
        if (atomic_load(&r->stopping)) {
            h->flags = STG_CHUNK_LAST;
            stg_chunkq_push(&r->in, c);
            r->fed = i + 1;
            return NULL;
        }
        h->len = len_of(p, i);
        h->flags = i == p->nchunks - 1 ? STG_CHUNK_LAST : 0;
        for (uint32_t j = 0; j < h->len; j++)
            stg_chunk_data(c)[j] = byte_at(off + j);
        off += h->len;
        stg_chunkq_push(&r->in, c);
        r->fed = i + 1;
    }
    return NULL;
}

/* The drain's own messages (a thread: not mt_fmt's buffer). */
__attribute__((format(printf, 2, 3))) static void wrong(struct run *r, const char *fmt, ...)
{
    if (r->what[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->what, sizeof r->what, fmt, ap);
    va_end(ap);
}

/* The unpack thread's part: every chunk from out, checked, back to the pool. */
static void *drain(void *arg)
{
    struct run *r = arg;
    struct stg_hash *h = stg_hash_new();
    for (;;) {
        struct stg_chunk *c = stg_chunkq_pop(&r->out);
        struct stg_chunk_hdr *hd = stg_chunk_hdr(c);
        if (hd->seq != r->chunks || hd->offset != r->bytes) {
            r->in_order = false;
            wrong(r, "chunk %llu at offset %llu, expected %llu at %llu",
                  (unsigned long long)hd->seq, (unsigned long long)hd->offset,
                  (unsigned long long)r->chunks, (unsigned long long)r->bytes);
        }
        if (hd->flags & STG_CHUNK_ABORT) {
            r->aborts++;
            if (hd->len != 0)
                r->aborts_empty = false;
        } else {
            r->data_chunks++;
        }
        for (uint32_t j = 0; j < hd->len && r->data_ok; j++)
            if (stg_chunk_data(c)[j] != byte_at(hd->offset + j)) {
                r->data_ok = false;
                wrong(r, "chunk %llu: byte %u differs", (unsigned long long)hd->seq, j);
            }
        stg_hash_update(h, stg_chunk_data(c), hd->len);
        stg_hash_digest(h, r->digest);
        if (memcmp(r->digest, hd->digest, STG_DIGEST_LEN) != 0 && r->digests_ok) {
            r->digests_ok = false;
            wrong(r, "chunk %llu: its digest is not that of the stream so far",
                  (unsigned long long)hd->seq);
        }
        r->chunks++;
        r->bytes += hd->len;
        r->last_flags = hd->flags;
        bool last = hd->flags & STG_CHUNK_LAST;
        stg_chunkq_push(&r->pool.free, c);
        if (last)
            break;
    }
    r->last_seen = true;
    stg_hash_free(&h);
    return NULL;
}

/* How a run goes wrong, if it does. */
struct trouble {
    bool stop_on_failure;   /* abort mode (else skip mode) */
    int fail_leader;        /* this leader records an error first; -1: none; -2: all */
    bool source_failed;     /* the root cannot pack */
    int corrupt_leader;     /* this leader damages chunk corrupt_seq; -1: none */
    long corrupt_seq;
    int no_out_leader;      /* this leader follows without a drain (out NULL); -1: none */
};

static const struct trouble none = {true, -1, false, -1, -1, -1};

/* One broadcast over comm (MPI_COMM_NULL: not a member; r untouched but
 * for the defaults).  Returns this rank's status; OUT res, err (this
 * rank's recorded error, left recorded for the agreement). */
static int bcast(MPI_Comm comm, const struct plan *p, const struct trouble *t, struct run *r,
                 struct stg_bcast_result *res, char err[STG_MSG_MAX])
{
    memset(r, 0, sizeof *r);
    memset(res, 0, sizeof *res);
    r->p = p;
    r->in_order = r->data_ok = r->digests_ok = r->aborts_empty = true;
    err[0] = '\0';
    stg_err_take(NULL, 0);
    if (comm == MPI_COMM_NULL)
        return STG_OK;
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    if (t->fail_leader == rank || t->fail_leader == -2)
        stg_err_set(STG_EFAIL, "leader %d cannot unpack", rank);
    if (rank == 0 && t->source_failed)
        stg_err_set(STG_EFAIL, "the root cannot read its trees");
    MPI_Comm votes;
    MPI_Comm_dup(comm, &votes);
    /* as stream.c: depth in flight, depth+1 waiting, one packed, two unpacked */
    stg_chunk_pool_init(&r->pool, 2 * (size_t)p->depth + 3, p->chunk_size);
    stg_chunkq_init(&r->in, r->pool.n);
    stg_chunkq_init(&r->out, r->pool.n);
    bool with_out = t->no_out_leader != rank;
    pthread_t ft, dt;
    bool feeding = false;
    if (with_out)
        pthread_create(&dt, NULL, drain, r);
    if (rank == 0 && t->source_failed) {
        struct stg_chunk *c = stg_chunkq_pop(&r->pool.free);
        memset(stg_chunk_hdr(c), 0, sizeof(struct stg_chunk_hdr));
        stg_chunk_hdr(c)->flags = STG_CHUNK_LAST | STG_CHUNK_ABORT;
        stg_chunkq_push(&r->in, c);
    } else if (rank == 0) {
        pthread_create(&ft, NULL, feeder, r);
        feeding = true;
    }
    struct stg_bcast_args a = {
        .watch = &w, .algo = p->algo, .comm = comm, .votes = votes, .members = size,
        .chunk_size = p->chunk_size, .depth = p->depth, .vote_every = p->vote_every,
        .stop_on_failure = t->stop_on_failure,
        .corrupt_seq = t->corrupt_leader == rank ? t->corrupt_seq : -1,
        .pool = &r->pool, .in = &r->in, .source_failed = rank == 0 && t->source_failed,
        .out = with_out ? &r->out : NULL, .stop = stop_cb, .stop_arg = r,
    };
    int rc = stg_bcast_run(&a, res);
    if (feeding)
        pthread_join(ft, NULL);
    if (with_out)
        pthread_join(dt, NULL);
    stg_err_get(err, STG_MSG_MAX);
    stg_chunkq_destroy(&r->in);
    stg_chunkq_destroy(&r->out);
    stg_chunk_pool_destroy(&r->pool);
    MPI_Comm_free(&votes);
    return rc;
}

/* The leaders, in a communicator of their own for one run. */
static MPI_Comm stream_comm(void)
{
    MPI_Comm c = MPI_COMM_NULL;
    if (n.is_leader)
        MPI_Comm_dup(n.leaders, &c);
    return c;
}

/* The agreement after a run, on the world, as a command would. */
static int agree(int rc, char msg[STG_MSG_MAX])
{
    return mt_agree(&w, &n, "stream", rc, msg);
}

static void test_plan(const struct plan *p)
{
    char what[200];
    snprintf(what, sizeof what, "%s, %d leaders, %d chunks of %zu bytes%s, depth %d, a vote "
             "every %d", p->algo == STG_BCAST_BINARY ? "binary tree" : "two trees", n.nnodes,
             p->nchunks, p->chunk_size, p->empty_last ? " (the last empty)" : "", p->depth,
             p->vote_every);
    MPI_Comm comm = stream_comm();
    struct run r;
    struct stg_bcast_result res;
    char err[STG_MSG_MAX], msg[STG_MSG_MAX];
    int rc = bcast(comm, p, &none, &r, &res, err);
    unsigned char want[STG_DIGEST_LEN];
    uint64_t total = total_of(p);
    digest_of(total, want);
    bool lead = comm != MPI_COMM_NULL;
    mt_ok(!lead || (rc == STG_OK && res.chunks == (uint64_t)p->nchunks &&
                    res.stream_bytes == total && !res.stopped &&
                    memcmp(res.digest, want, sizeof want) == 0),
          mt_fmt("status %d (%s), %llu chunks, %llu bytes, stopped %d, digest %s", rc, err,
                 (unsigned long long)res.chunks, (unsigned long long)res.stream_bytes,
                 res.stopped, memcmp(res.digest, want, sizeof want) ? "differs" : "right"),
          "%s: every leader: STG_OK, every chunk and byte, the digest of what the root sent",
          what);
    mt_ok(!lead || (r.last_seen && r.in_order && r.data_ok && r.digests_ok &&
                    r.chunks == (uint64_t)p->nchunks && r.bytes == total && r.aborts == 0 &&
                    memcmp(r.digest, want, sizeof want) == 0 && atomic_load(&r.stop_calls) == 0),
          mt_fmt("%llu chunks, %llu bytes, %llu aborted, stop called %d times: %s",
                 (unsigned long long)r.chunks, (unsigned long long)r.bytes,
                 (unsigned long long)r.aborts, atomic_load(&r.stop_calls), r.what),
          "... and through `out` every chunk in order, its data and digest as sent");
    rc = agree(rc, msg);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
}

/* The root alone: no leader to send to. */
static void test_alone(void)
{
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Comm_split(n.world, n.is_root ? 0 : MPI_UNDEFINED, 0, &comm);
    struct plan p = {4096, 2, 2, 10, false, STG_BCAST_TWO_TREE};
    struct run r;
    struct stg_bcast_result res;
    char err[STG_MSG_MAX];
    int rc = bcast(comm, &p, &none, &r, &res, err);
    unsigned char want[STG_DIGEST_LEN];
    digest_of(total_of(&p), want);
    mt_ok(!n.is_root || (rc == STG_OK && res.chunks == 10 && r.chunks == 10 && r.data_ok &&
                         memcmp(res.digest, want, sizeof want) == 0),
          mt_fmt("status %d, %llu chunks", rc, (unsigned long long)res.chunks),
          "the root alone: every chunk goes straight to its own `out`");
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
}

/* A leader without a drain (a warm node: out NULL) still follows. */
static void test_no_out(void)
{
    MPI_Comm comm = stream_comm();
    struct plan p = {4096, 2, 2, 30, false, STG_BCAST_TWO_TREE};
    struct trouble t = none;
    t.no_out_leader = n.nnodes - 1;
    struct run r;
    struct stg_bcast_result res;
    char err[STG_MSG_MAX], msg[STG_MSG_MAX];
    int rc = bcast(comm, &p, &t, &r, &res, err);
    unsigned char want[STG_DIGEST_LEN];
    digest_of(total_of(&p), want);
    bool drained = n.leader_rank != t.no_out_leader;
    mt_ok(!n.is_leader || (rc == STG_OK && res.chunks == 30 && !res.stopped &&
                           memcmp(res.digest, want, sizeof want) == 0 &&
                           (!drained || (r.chunks == 30 && r.data_ok && r.digests_ok))),
          mt_fmt("status %d, %llu chunks, drained %llu", rc, (unsigned long long)res.chunks,
                 (unsigned long long)r.chunks),
          "a leader that follows without `out` (chunks back to its pool): the stream and "
          "its subtree go on");
    agree(rc, msg);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
}

/* One leader fails before the stream; abort mode. */
static void test_fail_abort(void)
{
    MPI_Comm comm = stream_comm();
    struct plan p = {4096, 2, 2, 200, false, STG_BCAST_TWO_TREE};
    struct trouble t = none;
    t.fail_leader = n.nnodes - 1;
    struct run r;
    struct stg_bcast_result res;
    char err[STG_MSG_MAX], msg[STG_MSG_MAX];
    int rc = bcast(comm, &p, &t, &r, &res, err);
    bool lead = n.is_leader;
    int calls = atomic_load(&r.stop_calls);
    mt_ok(!lead || (res.stopped && res.chunks < (uint64_t)p.nchunks && r.last_seen &&
                    r.chunks == res.chunks),
          mt_fmt("stopped %d, %llu of %d chunks, drained %llu", res.stopped,
                 (unsigned long long)res.chunks, p.nchunks, (unsigned long long)r.chunks),
          "%d leaders, the last one failed, abort mode: the stream stops early, result.stopped "
          "on every leader, and it ends", n.nnodes);
    mt_ok(!n.is_root || calls == 1, mt_fmt("stop called %d times", calls),
          "... the root's stop callback is called, once");
    mt_ok(!lead || n.is_root || calls > 0 || r.aborts > 0,
          mt_fmt("stop called %d times, %llu ABORT chunks", calls, (unsigned long long)r.aborts),
          "... every other leader learns it: its stop callback, or ABORT chunks through `out`");
    mt_ok(!lead || (r.aborts > 0 && r.aborts_empty && (r.last_flags & STG_CHUNK_ABORT) &&
                    r.in_order && r.data_ok && r.digests_ok &&
                    r.data_chunks <= 2 * (uint64_t)p.vote_every),
          mt_fmt("%llu chunks with data, %llu ABORT, last flags %u: %s",
                 (unsigned long long)r.data_chunks, (unsigned long long)r.aborts, r.last_flags,
                 r.what),
          "... `out` gets the chunks sent before the vote (at most two votes' worth), right, then "
          "empty ABORT chunks, the last one LAST|ABORT");
    mt_ok(!lead || n.leader_rank == t.fail_leader ||
              (n.is_root ? rc == STG_OK : rc == STG_EFAIL && !err[0]),
          mt_fmt("status %d, '%s'", rc, err),
          "... the root returns STG_OK, the other leaders fail with no error of their own");
    int arc = agree(rc, msg);
    char want[STG_MSG_MAX + 300];
    snprintf(want, sizeof want, "%s: leader %d cannot unpack", names[t.fail_leader], t.fail_leader);
    mt_ok(arc == STG_EFAIL && strcmp(msg, want) == 0, mt_fmt("status %d, '%s'", arc, msg),
          "... and the agreement carries the failed leader's own message: '%s'", want);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
}

/* Skip mode: one failed node does not stop the others; all failed do. */
static void test_fail_skip(void)
{
    MPI_Comm comm = stream_comm();
    struct plan p = {4096, 2, 2, 60, false, STG_BCAST_TWO_TREE};
    struct trouble t = none;
    t.stop_on_failure = false;
    t.fail_leader = n.nnodes - 1;
    struct run r;
    struct stg_bcast_result res;
    char err[STG_MSG_MAX], msg[STG_MSG_MAX];
    int rc = bcast(comm, &p, &t, &r, &res, err);
    unsigned char want[STG_DIGEST_LEN];
    digest_of(total_of(&p), want);
    mt_ok(!n.is_leader || (rc == STG_OK && !res.stopped && res.chunks == 60 && r.chunks == 60 &&
                           r.data_ok && atomic_load(&r.stop_calls) == 0 &&
                           memcmp(res.digest, want, sizeof want) == 0),
          mt_fmt("status %d, stopped %d, %llu chunks, drained %llu, stop called %d", rc,
                 res.stopped, (unsigned long long)res.chunks, (unsigned long long)r.chunks,
                 atomic_load(&r.stop_calls)),
          "skip mode, the last leader failed: the stream goes on to its end for every leader");
    agree(rc, msg);

    t.fail_leader = -2;
    rc = bcast(comm, &p, &t, &r, &res, err);
    mt_ok(!n.is_leader || (res.stopped && res.chunks < 60 && r.last_seen),
          mt_fmt("stopped %d, %llu chunks", res.stopped, (unsigned long long)res.chunks),
          "skip mode, every leader failed: the stream stops early");
    agree(rc, msg);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
}

/* The root cannot pack: one LAST|ABORT chunk. */
static void test_source_failed(void)
{
    MPI_Comm comm = stream_comm();
    struct plan p = {4096, 2, 2, 20, false, STG_BCAST_TWO_TREE};
    struct trouble t = none;
    t.source_failed = true;
    struct run r;
    struct stg_bcast_result res;
    char err[STG_MSG_MAX], msg[STG_MSG_MAX];
    int rc = bcast(comm, &p, &t, &r, &res, err);
    int calls = atomic_load(&r.stop_calls);
    mt_ok(!n.is_leader || (res.stopped && res.chunks == 1 && res.stream_bytes == 0 &&
                           r.chunks == 1 && r.bytes == 0 &&
                           r.last_flags == (STG_CHUNK_LAST | STG_CHUNK_ABORT)),
          mt_fmt("stopped %d, %llu chunks, %llu bytes; drained %llu, flags %u", res.stopped,
                 (unsigned long long)res.chunks, (unsigned long long)res.stream_bytes,
                 (unsigned long long)r.chunks, r.last_flags),
          "source_failed: one empty LAST|ABORT chunk reaches every leader, and everyone stops");
    mt_ok(!n.is_leader || (n.is_root ? rc == STG_OK && calls == 1 : rc == STG_EFAIL),
          mt_fmt("status %d, stop called %d times", rc, calls),
          "... the root's stop callback is called; the other leaders fail");
    int arc = agree(n.is_root ? STG_EFAIL : rc, msg);
    char want[STG_MSG_MAX + 300];
    snprintf(want, sizeof want, "%s: the root cannot read its trees", names[0]);
    mt_ok(arc == STG_EFAIL && strcmp(msg, want) == 0, mt_fmt("status %d, '%s'", arc, msg),
          "... and the agreement carries the root's message");
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
}

/* A chunk damaged on its way to leader 1. */
static void test_corrupt(void)
{
    MPI_Comm comm = stream_comm();
    struct plan p = {4096, 2, 2, 100, false, STG_BCAST_TWO_TREE};
    struct trouble t = none;
    t.corrupt_leader = 1;
    t.corrupt_seq = 2;
    struct run r;
    struct stg_bcast_result res;
    char err[STG_MSG_MAX], msg[STG_MSG_MAX];
    int rc = bcast(comm, &p, &t, &r, &res, err);
    int calls = atomic_load(&r.stop_calls);
    mt_ok(n.leader_rank != 1 || (rc == STG_EFAIL && calls >= 1 &&
                                 strstr(err, "digest mismatch at chunk 2: received ")),
          mt_fmt("status %d, stop called %d times, '%s'", rc, calls, err),
          "a chunk damaged on its way to leader 1: it fails, naming the chunk, and stops");
    mt_ok(!n.is_leader || (res.stopped && res.chunks < 100 && r.last_seen),
          mt_fmt("stopped %d, %llu chunks", res.stopped, (unsigned long long)res.chunks),
          "... abort mode: the stream stops early on every leader");
    int arc = agree(rc, msg);
    char want[STG_MSG_MAX + 300];
    snprintf(want, sizeof want, "%s: digest mismatch at chunk 2: ", names[1]);
    mt_ok(arc == STG_EFAIL && strncmp(msg, want, strlen(want)) == 0,
          mt_fmt("status %d, '%s'", arc, msg), "... and the agreement names node and chunk");
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
}

/* The shapes, for every size up to 300 (pure: the same on every rank):
 * each tree reaches every rank once, a child's parent lists it, and with
 * two trees no rank sends more than it receives (children in both trees
 * together at most 2, the sender's one per tree), within a fill of about
 * 2 log2 N. */
/* The depth when none is given: the window covers the trees' levels,
 * within 64 chunks and 64 MiB. */
static void test_depth_auto(void)
{
    static const struct {
        enum stg_bcast_algo algo;
        int receivers;
        size_t chunk;
        int want;
    } cases[] = {
        {STG_BCAST_TWO_TREE, 1, 256 << 10, 4},      /* 1 level */
        {STG_BCAST_TWO_TREE, 7, 256 << 10, 4},      /* 8 nodes: 3 levels */
        {STG_BCAST_TWO_TREE, 8, 256 << 10, 20},     /* 9 nodes: 4 levels */
        {STG_BCAST_TWO_TREE, 999, 256 << 10, 44},   /* 1 000 nodes: 10 levels */
        {STG_BCAST_TWO_TREE, 9999, 256 << 10, 60},
        {STG_BCAST_TWO_TREE, 99999, 256 << 10, 64}, /* at most 64 */
        {STG_BCAST_TWO_TREE, 999, 4 << 20, 6},      /* 2 x 6 + 3 chunks of 4 MiB: 60 MiB */
        {STG_BCAST_TWO_TREE, 999, 1 << 30, 4},      /* at least 4 */
        {STG_BCAST_BINARY, 999, 256 << 10, 4},
    };
    char bad[256] = "";
    for (size_t i = 0; i < sizeof cases / sizeof *cases && !bad[0]; i++) {
        int got = stg_bcast_depth_auto(cases[i].algo, cases[i].receivers, cases[i].chunk);
        if (got != cases[i].want)
            snprintf(bad, sizeof bad, "%s, %d receivers, %zu-byte chunks: %d, want %d",
                     cases[i].algo == STG_BCAST_BINARY ? "binary" : "two trees",
                     cases[i].receivers, cases[i].chunk, got, cases[i].want);
    }
    mt_ok(!bad[0], bad, "the depth when none is given: 4 up to 3 levels, else 4 + 4 x the "
          "levels of the trees, at most 64, within 64 MiB of chunks (4 for the binary tree)");
}

static void test_shapes(void)
{
    for (int a = 0; a < 2; a++) {
        enum stg_bcast_algo algo = a ? STG_BCAST_BINARY : STG_BCAST_TWO_TREE;
        char bad[200] = "";
        for (int size = 1; size <= 300 && !bad[0]; size++) {
            int log2n = 0;
            while ((1 << log2n) < size)
                log2n++;
            for (int k = 0; k < 2 && !bad[0]; k++) {
                int *seen = stg_xcalloc((size_t)size, sizeof *seen);
                int *queue = stg_xcalloc((size_t)size, sizeof *queue);
                int *level = stg_xcalloc((size_t)size, sizeof *level);
                int head = 0, tail = 0, deepest = 0;
                queue[tail++] = 0;
                seen[0] = 1;
                while (head < tail && !bad[0]) {
                    int r = queue[head++], up, child[2];
                    stg_bcast_tree(algo, size, r, k, &up, child);
                    if (r == 0 && up != -1)
                        snprintf(bad, sizeof bad, "size %d tree %d: the sender has a parent",
                                 size, k);
                    for (int j = 0; j < 2 && !bad[0]; j++) {
                        int c = child[j], cup, cc[2];
                        if (c < 0)
                            continue;
                        stg_bcast_tree(algo, size, c, k, &cup, cc);
                        if (c >= size || seen[c] || cup != r)
                            snprintf(bad, sizeof bad, "size %d tree %d: rank %d under %d (its "
                                     "parent %d, seen %d)", size, k, c, r, cup,
                                     c < size ? seen[c] : -1);
                        else {
                            seen[c] = 1;
                            level[c] = level[r] + 1;
                            deepest = level[c] > deepest ? level[c] : deepest;
                            queue[tail++] = c;
                        }
                    }
                }
                if (!bad[0] && tail != size)
                    snprintf(bad, sizeof bad, "size %d tree %d reaches %d ranks", size, k, tail);
                if (!bad[0] && algo == STG_BCAST_TWO_TREE && deepest > 2 * log2n + 2)
                    snprintf(bad, sizeof bad, "size %d tree %d: %d levels", size, k, deepest);
                free(seen);
                free(queue);
                free(level);
            }
            for (int r = 0; r < size && !bad[0] && algo == STG_BCAST_TWO_TREE; r++) {
                int sends = 0;
                for (int k = 0; k < 2; k++) {
                    int up, child[2];
                    stg_bcast_tree(algo, size, r, k, &up, child);
                    sends += (child[0] >= 0) + (child[1] >= 0);
                }
                if (sends > 2)
                    snprintf(bad, sizeof bad, "size %d: rank %d sends %d times per two chunks",
                             size, r, sends);
            }
        }
        mt_ok(!bad[0], bad[0] ? bad : NULL, "%s: every shape from 1 to 300 ranks is a tree over "
              "all of them%s", a ? "binary tree" : "two trees",
              a ? "" : ", every rank sends at most what it receives, in at most 2 log2 N + 2 levels");
    }
}

int main(int argc, char **argv)
{
    mt_start(&argc, &argv, &n, &w);
    /* A hang ends the job with status 3 and a message, not at make's limit. */
    stg_watchdog_set_timeout(&w, 240);
    names = stg_xcalloc((size_t)n.size, sizeof *names);
    if (n.is_leader)
        MPI_Allgather(n.name, sizeof n.name, MPI_CHAR, names, sizeof *names, MPI_CHAR,
                      n.leaders);
    MPI_Bcast(names, (int)(n.size * sizeof *names), MPI_CHAR, 0, n.local);
    if (n.nnodes < 2) {
        if (n.rank == 0)
            printf("1..0 # SKIP needs 2 nodes\n");
    } else {
        static const struct plan plans[] = {
            {4096, 1, 2, 1, false, STG_BCAST_TWO_TREE},     /* one chunk: LAST at once */
            {4096, 1, 2, 9, false, STG_BCAST_TWO_TREE},
            {4096, 2, 2, 40, true, STG_BCAST_TWO_TREE},
            {10000, 3, 3, 25, false, STG_BCAST_TWO_TREE},
            {65536, 4, 4, 30, false, STG_BCAST_TWO_TREE},
            {4096, 8, 1, 64, false, STG_BCAST_TWO_TREE},
            {4096, 2, 5, 33, true, STG_BCAST_TWO_TREE},
            {4096, 1, 2, 9, false, STG_BCAST_BINARY},
            {10000, 3, 3, 25, false, STG_BCAST_BINARY},
            {4096, 2, 5, 33, true, STG_BCAST_BINARY},
        };
        test_depth_auto();
        test_shapes();
        for (size_t i = 0; i < sizeof plans / sizeof *plans; i++)
            test_plan(&plans[i]);
        test_alone();
        test_no_out();
        test_fail_abort();
        test_fail_skip();
        test_source_failed();
        test_corrupt();
    }
    free(names);
    return mt_finish(&n, &w, n.nnodes < 2 ? 0 : mt_done());
}
