/* SPDX-License-Identifier: MIT */
/*
 * bcast: pipelined chunk broadcast down two trees (see bcast.h for the
 * protocol; stream.c feeds it and drains it).
 *
 * The two trees (Sanders, Speck and Traff, "Two-tree algorithms for full
 * bandwidth broadcast, reduction and scan", 2009; NCCL's double binary
 * trees): the sender, rank 0 of the stream communicator, sends the even
 * chunks to the root of one binary tree of the receivers and the odd ones
 * to the root of another, built so that a receiver that is interior in
 * one is a leaf in the other.  Every rank then sends at most as much as it
 * receives, so for a stream of M bytes on links of bandwidth B the stream
 * takes about M / B whatever the node count N, the least any broadcast
 * needs, after a fill of about 2 log2 N chunk times.
 *
 * The binary tree (STG_BCAST_BINARY), kept to measure against: rank r
 * receives every chunk from (r - 1) / 2 and forwards it to 2r + 1 and
 * 2r + 2; an inner node sends every chunk twice, so where the links are
 * the limit the stream takes 2M / B.  MPI_Ibcast would leave the choice
 * to the library, and Open MPI 4.1's picks a binomial tree above 4 ranks,
 * where the root sends every chunk log2 N times: at 1 000 nodes, 10 M / B.
 *
 * Chunks are processed in stream order on every rank (the digest, the
 * votes and the unpacking need it), whichever tree they come down.
 * Non-blocking calls only progress inside MPI calls, so the loops below
 * test the oldest requests often and sleep only briefly.
 */
#include "config.h"

#include "bcast.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* The root sends chunk s only once the results of all votes before round
 * s / vote_every - VOTE_LAG are known: how far a failure can run ahead. */
#define VOTE_LAG 2

/* The chunks' tags on the stream communicator, which carries nothing else:
 * TAG_CHUNK + k for tree k, so that each tree's chunks match in order even
 * where one rank is a node's parent in both trees and sends it the chunks
 * of the two as they come. */
#define TAG_CHUNK 1

/* A chunk still being sent on to a child after this many seconds: that
 * child (its node or its link) holds the stream back, and a->held says so
 * (a 256 KiB chunk takes 21 ms on a 100 Mbit/s link). */
#define HELD_AFTER 0.25

/* Chunks of one tree that a rank sends on at once (to each of its
 * children): more would share the link, each arriving, and going on down
 * the tree, only when nearly all have (TCP transports send the fragments of
 * concurrent messages to one peer in turn); fewer would leave it idle
 * between chunks.  The window of chunks in flight (depth) is the receiving
 * side's, and may be far larger. */
#define SEND_MAX 2

/* This rank's place in the trees: chunk seq goes down tree seq % 2 (the
 * binary tree: the same tree twice). */
struct tree {
    int parent[2];          /* MPI_PROC_NULL at the root */
    int child[2][2];
    int nchild[2];
};

/* The binary tree of NCCL's double binary tree (trees.cc, ncclGetBtree)
 * over n ranks 0..n-1: rank 0 is its root, with one child; interior ranks
 * are even, leaves odd.  OUT up, d0, d1: parent and children, -1: none. */
static void btree(int n, int r, int *up, int *d0, int *d1)
{
    int bit;
    for (bit = 1; bit < n; bit <<= 1)
        if (bit & r)
            break;
    if (r == 0) {
        *up = *d0 = -1;
        *d1 = n > 1 ? bit >> 1 : -1;
        return;
    }
    int u = (r ^ bit) | (bit << 1);
    *up = u >= n ? r ^ bit : u;
    int low = bit >> 1;
    *d0 = low ? r - low : -1;
    int c = low ? r + low : -1;
    while (c >= n) {
        low >>= 1;
        c = low ? r + low : -1;
    }
    *d1 = c;
}

/* The receivers' two trees (ranks 1..size-1 as 0..n-1): tree 0 is btree(),
 * tree 1 the same mirrored (n even) or shifted by one (n odd), so that a
 * receiver interior in one is a leaf in the other, and forwards each chunk
 * of the stream at most once.  The sender (rank 0) is the parent of both
 * roots.  OUT parent, children (ranks of comm; -1: none). */
static void two_tree(int size, int rank, int k, int *parent, int child[2])
{
    int n = size - 1, i = rank - 1, up, d0, d1;
    if (k == 0 || n == 1) {
        btree(n, i, &up, &d0, &d1);
    } else if (n % 2 == 1) {
        btree(n, (i - 1 + n) % n, &up, &d0, &d1);
        up = up < 0 ? -1 : (up + 1) % n;
        d0 = d0 < 0 ? -1 : (d0 + 1) % n;
        d1 = d1 < 0 ? -1 : (d1 + 1) % n;
    } else {
        btree(n, n - 1 - i, &up, &d0, &d1);
        up = up < 0 ? -1 : n - 1 - up;
        d0 = d0 < 0 ? -1 : n - 1 - d0;
        d1 = d1 < 0 ? -1 : n - 1 - d1;
    }
    *parent = up < 0 ? 0 : up + 1;
    child[0] = d0 < 0 ? -1 : d0 + 1;
    child[1] = d1 < 0 ? -1 : d1 + 1;
}

/* The receiver at the root of tree k (a rank of comm). */
static int two_tree_root(int size, int k)
{
    int n = size - 1;
    return k == 0 || n == 1 ? 1 : n % 2 == 1 ? 2 : n;
}

void stg_bcast_tree(enum stg_bcast_algo algo, int size, int rank, int k, int *parent,
                    int child[2])
{
    child[0] = child[1] = -1;
    *parent = -1;
    if (rank < 0 || rank >= size)
        return;
    if (algo == STG_BCAST_BINARY) {
        *parent = rank ? (rank - 1) / 2 : -1;
        for (int j = 0; j < 2; j++)
            if (2 * rank + 1 + j < size)
                child[j] = 2 * rank + 1 + j;
    } else if (rank == 0) {
        if (size > 1)
            child[0] = two_tree_root(size, k);
    } else {
        two_tree(size, rank, k, parent, child);
    }
}

int stg_bcast_algo_parse(const char *s, enum stg_bcast_algo *algo)
{
    if (strcmp(s, "two-tree") == 0)
        *algo = STG_BCAST_TWO_TREE;
    else if (strcmp(s, "binary") == 0)
        *algo = STG_BCAST_BINARY;
    else
        return -1;
    return 0;
}

static void tree_of(MPI_Comm comm, enum stg_bcast_algo algo, struct tree *t)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    for (int k = 0; k < 2; k++) {
        int parent, child[2];
        stg_bcast_tree(algo, size, rank, k, &parent, child);
        t->parent[k] = parent < 0 ? MPI_PROC_NULL : parent;
        t->nchild[k] = 0;
        for (int j = 0; j < 2; j++)
            if (child[j] >= 0)
                t->child[k][t->nchild[k]++] = child[j];
    }
}

/* A chunk in flight: received (req[0], leaders) and forwarded to the
 * children (req[1], req[2]). */
struct slot {
    struct stg_chunk *c;
    uint64_t seq;           /* the chunk it holds: its tree is seq % 2 */
    MPI_Request req[3];
    bool forwarding;        /* here; the sends on are posted */
    bool sent;              /* ... and done */
    bool checked;           /* checked, counted and voted on, in stream order */
    double since;           /* when the sends were posted */
    bool told;              /* a->held was told who holds this chunk back */
};

/* A FIFO of chunks in flight, in stream order. */
struct inflight {
    struct slot *s;
    int head, n, cap;
    int going[2];           /* chunks of each tree whose sends on are not known done */
};

static struct slot *inflight_at(struct inflight *f, int i)
{
    return &f->s[(f->head + i) % f->cap];
}

static struct slot *inflight_push(struct inflight *f, struct stg_chunk *c, uint64_t seq)
{
    struct slot *s = inflight_at(f, f->n++);
    s->c = c;
    s->seq = seq;
    s->req[0] = s->req[1] = s->req[2] = MPI_REQUEST_NULL;
    s->forwarding = s->checked = s->sent = false;
    return s;
}

/* Are the sends of s (a slot of f) on to the children done? */
static bool sends_done(struct inflight *f, struct slot *s)
{
    if (!s->sent && s->forwarding) {
        int done = 0;
        MPI_Testall(2, &s->req[1], &done, MPI_STATUSES_IGNORE);
        if (done) {
            s->sent = true;
            f->going[s->seq % 2]--;
        }
    }
    return s->sent;
}

/* May a chunk of tree k be sent on now: fewer than SEND_MAX of that tree's
 * are still going?  The sends are tested only when the count says no. */
static bool may_send(struct inflight *f, int k)
{
    for (int i = 0; i < f->n && f->going[k] >= SEND_MAX; i++) {
        struct slot *s = inflight_at(f, i);
        if ((int)(s->seq % 2) == k)
            sends_done(f, s);
    }
    return f->going[k] < SEND_MAX;
}

/* Send the chunk on to this rank's children; only its header and data.
 * s is a slot of f. */
static void forward(const struct stg_bcast_args *a, const struct tree *t, struct inflight *f,
                    struct slot *s)
{
    int count = (int)(STG_CHUNK_HDR_SIZE + stg_chunk_hdr(s->c)->len);
    int k = (int)(s->seq % 2);
    for (int i = 0; i < t->nchild[k]; i++)
        MPI_Isend(s->c->buf, count, MPI_BYTE, t->child[k][i], TAG_CHUNK + k, a->comm,
                  &s->req[1 + i]);
    s->forwarding = true;
    f->going[k]++;
    s->since = stg_now();
    s->told = false;
}

/* The oldest chunk still being sent on after HELD_AFTER: the child that
 * has not taken it holds the stream back.  Said once per chunk. */
static void check_held(const struct stg_bcast_args *a, struct inflight *f, const struct tree *t)
{
    if (!a->held || f->n == 0)
        return;
    struct slot *s = inflight_at(f, 0);
    if (!s->forwarding || s->told || stg_now() - s->since < HELD_AFTER)
        return;
    int k = (int)(s->seq % 2);
    for (int i = 0; i < t->nchild[k]; i++) {
        int done = 0;
        MPI_Test(&s->req[1 + i], &done, MPI_STATUS_IGNORE);
        if (!done) {
            s->told = true;
            a->held(a->held_arg, t->child[k][i]);
            return;
        }
    }
}

/* The oldest chunk, once forwarded to every child; else NULL. */
static struct stg_chunk *inflight_pop(struct inflight *f)
{
    if (f->n == 0)
        return NULL;
    struct slot *s = inflight_at(f, 0);
    if (!s->forwarding || !s->checked || !sends_done(f, s))
        return NULL;
    f->head = (f->head + 1) % f->cap;
    f->n--;
    return s->c;
}

/* The votes: one non-blocking all-reduce every vote_every chunks, on the
 * leaders' vote communicator, so they never mix with the chunks. */
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
        stg_wait(v->a->watch, &v->req[v->done % (uint64_t)v->cap]);
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
        stg_wait(v->a->watch, &v->req[v->done % (uint64_t)v->cap]);
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

static void nap(struct stg_watchdog *w, long usec)
{
    stg_watchdog_check(w);
    struct timespec ts = {0, usec * 1000};
    nanosleep(&ts, NULL);
}

#ifndef STG_SIM
/* Nothing moved: let the requests progress a little, then look again. */
static void idle(const struct stg_bcast_args *a, struct inflight *f, struct votes *v)
{
    (void)f;
    (void)v;
    nap(a->watch, 20);
}

/* The running digest takes in a chunk's data. */
static void digest_data(struct stg_hash *h, const unsigned char *data, size_t len)
{
    stg_hash_update(h, data, len);
}
#else
/* Built for the simulation (tests/bench/sim.c, SimGrid's SMPI), which
 * runs every simulated rank on this machine's one core.  There a rank
 * that cannot move blocks until one of its chunk requests or its oldest
 * vote completes, instead of napping: each nap is an event of the
 * simulation, and 10 000 ranks napping every 20 us of a stream of seconds
 * make billions.  In the simulation only a request moves these loops (no
 * pack thread, no deadline, no held callback), so this leaves out only the
 * nap's delay, at most 20 us per chunk and hop.  (sim.c stands in for this
 * MPI_Waitany, for the sends and for the votes: see there.) */
static void idle(const struct stg_bcast_args *a, struct inflight *f, struct votes *v)
{
    MPI_Request *any = stg_xcalloc(3 * (size_t)f->cap + 1, sizeof *any);
    MPI_Request **where = stg_xcalloc(3 * (size_t)f->cap + 1, sizeof *where);
    int n = 0, idx = MPI_UNDEFINED;
    for (int i = 0; i < f->n; i++) {
        struct slot *s = inflight_at(f, i);
        for (int j = 0; j < 3; j++)
            if (s->req[j] != MPI_REQUEST_NULL)
                where[n++] = &s->req[j];
    }
    if (v->done < v->posted)
        where[n++] = &v->req[v->done % (uint64_t)v->cap];
    for (int i = 0; i < n; i++)
        any[i] = *where[i];
    if (n > 0)
        MPI_Waitany(n, any, &idx, MPI_STATUS_IGNORE);
    if (idx != MPI_UNDEFINED)
        *where[idx] = any[idx];     /* done: MPI_REQUEST_NULL, which tests as done */
    else
        nap(a->watch, 20);
    free(where);
    free(any);
}

/* The simulation moves message sizes, not data, and hashing every
 * simulated rank's copy of the stream on one core would take hours: there
 * the digest stays that of an empty stream on every rank, and its cost is
 * left out of the simulated times. */
static void digest_data(struct stg_hash *h, const unsigned char *data, size_t len)
{
    (void)h;
    (void)data;
    (void)len;
}
#endif

static bool failed_here(void)
{
    return stg_err_status() != STG_OK;
}

/* Stop the stream early: tell the feeder and the drain. */
static void stop(const struct stg_bcast_args *a, struct stg_bcast_result *r)
{
    if (a->stop)
        a->stop(a->stop_arg);
    r->stopped = true;
}

static int run_root(const struct stg_bcast_args *a, struct stg_bcast_result *r)
{
    struct stg_chunk_pool *pool = a->pool;
    struct stg_chunkq *outq = a->in;
    struct tree t;
    tree_of(a->comm, a->algo, &t);
    struct inflight f = {.cap = a->depth};
    f.s = stg_xcalloc((size_t)f.cap, sizeof *f.s);
    struct votes v;
    votes_init(&v, a);
    struct stg_chunk **ready = stg_xcalloc(pool->n, sizeof *ready);
    size_t nready = 0;
    uint64_t produced = 0, seq = 0, completed = 0, offset = 0;
    bool ended = false, stopping = false;
    struct stg_hash *h = stg_hash_new();
    r->t0 = stg_now();
    while (!ended || nready > 0 || f.n > 0) {
        bool progressed = false;
        votes_test(&v);
        if (!stopping && (votes_say_stop(&v) || a->source_failed)) {
            /* Another node failed: what is left goes out as empty ABORT
             * chunks, and this node stops unpacking. */
            stopping = true;
            stop(a, r);
        }
        /* Take what the pack thread produced; wait a little if nothing else can move. */
        if (a->feed && !ended)
            a->feed(a->feed_arg);
        long wait = (!ended && nready == 0 && f.n == 0) ? 1000 : 0;
        struct stg_chunk *c;
        while (!ended && (c = stg_chunkq_trypop(outq, wait)) != NULL) {
            ready[nready++] = c;
            produced++;
            if (stg_chunk_hdr(c)->flags & STG_CHUNK_LAST)
                ended = true;
            progressed = true;
            wait = 0;
        }
        /* Send chunk seq as soon as the votes of the rounds before it are
         * known; it announces every chunk packed so far, all of which will
         * be sent. */
        while (nready > 0 && f.n < f.cap &&
               seq < (v.done + VOTE_LAG) * (uint64_t)a->vote_every &&
               may_send(&f, (int)(seq % 2))) {
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
            hd->post_upto = produced;
            digest_data(h, stg_chunk_data(c), hd->len);
            offset += hd->len;
            stg_hash_digest(h, hd->digest);
            memcpy(r->digest, hd->digest, sizeof r->digest);
            stg_log_debug("send chunk %llu: %u bytes, flags %u, leaders may post up to %llu",
                          (unsigned long long)seq, hd->len, hd->flags,
                          (unsigned long long)hd->post_upto);
            struct slot *sl = inflight_push(&f, c, seq);
            sl->checked = true;
            forward(a, &t, &f, sl);
            seq++;
            progressed = true;
            if (a->sent)
                a->sent(a->sent_arg, offset, seq);
        }
        /* Sent to both children: the chunk goes to this node's unpacking. */
        while ((c = inflight_pop(&f)) != NULL) {
            votes_chunk_done(&v, completed++, failed_here());
            stg_chunkq_push(a->out ? a->out : &pool->free, c);
            progressed = true;
        }
        check_held(a, &f, &t);
        if (!progressed && (f.n > 0 || nready > 0))
            idle(a, &f, &v);
    }
    votes_finish(&v);
    r->t1 = stg_now();
    r->stream_bytes = offset;
    r->chunks = seq;
    stg_hash_free(&h);
    free(ready);
    free(f.s);
    return STG_OK;
}

/* A leader's view of the stream so far. */
struct follow {
    const struct stg_bcast_args *a;
    struct stg_bcast_result *r;
    struct tree t;
    struct stg_hash *h;
    uint64_t expect;        /* the next chunk's sequence number */
    uint64_t offset;        /* stream bytes received */
    uint64_t post_upto;     /* receives that may be posted: the root's announcement */
    bool ended;             /* the LAST chunk arrived */
    int rc;                 /* this leader's status */
};

/* A chunk that arrived from the parent: check it, follow the stream's
 * state, and send it on to the children. */
static void arrived(struct follow *st, struct slot *s)
{
    const struct stg_bcast_args *a = st->a;
    struct stg_bcast_result *r = st->r;
    struct stg_chunk_hdr *hd = stg_chunk_hdr(s->c);
    if (hd->seq != st->expect || hd->len > a->chunk_size || hd->offset != st->offset) {
        stg_log_error("broken stream: chunk %llu arrived as %llu",
                      (unsigned long long)st->expect, (unsigned long long)hd->seq);
        MPI_Abort(MPI_COMM_WORLD, STG_EINTERNAL);
    }
    stg_log_debug("chunk %llu arrived: %u bytes, flags %u", (unsigned long long)hd->seq, hd->len,
                  hd->flags);
    st->expect++;
    if (hd->post_upto > st->post_upto)
        st->post_upto = hd->post_upto;
    digest_data(st->h, stg_chunk_data(s->c), hd->len);
    st->offset += hd->len;
    stg_hash_digest(st->h, r->digest);
    if (hd->flags & STG_CHUNK_ABORT) {
        r->stopped = true;  /* the chunk itself tells the drain */
        st->rc = STG_EFAIL;   /* the failing node's own error says why */
    } else if (st->rc == STG_OK && memcmp(r->digest, hd->digest, sizeof r->digest) != 0) {
        /* Checked at every chunk: the node votes on it at once. */
        char got[2 * STG_DIGEST_LEN + 1], want[2 * STG_DIGEST_LEN + 1];
        stg_hex(r->digest, STG_DIGEST_LEN, got);
        stg_hex(hd->digest, STG_DIGEST_LEN, want);
        st->rc = stg_err_set(STG_EFAIL, "digest mismatch at chunk %llu: received %s, the "
                             "root sent %s; the copy is discarded",
                             (unsigned long long)hd->seq, got, want);
        if (a->stop)
            a->stop(a->stop_arg);   /* this copy is lost; the stream goes on for the rest */
    }
    if (hd->flags & STG_CHUNK_LAST)
        st->ended = true;
    s->checked = true;
}

/* A chunk is here from a parent: whatever this node makes of it, the trees
 * below need it, so it goes on at once, in whatever order chunks come from
 * the two parents (what goes on is what came: damage on the way in reaches
 * the nodes below too, whose digests find it as well). */
static void received(const struct stg_bcast_args *a, const struct tree *t, struct inflight *f,
                     struct slot *s)
{
    struct stg_chunk_hdr *hd = stg_chunk_hdr(s->c);
    if ((long)s->seq == a->corrupt_seq && hd->len > 0 && hd->len <= a->chunk_size) {
        /* STAGE_PY_TEST_CORRUPT: damage the data as a bad link would. */
        stg_chunk_data(s->c)[hd->len / 2] ^= 0x5a;
    }
    forward(a, t, f, s);
}

static int run_leader(const struct stg_bcast_args *a, struct stg_bcast_result *r)
{
    struct follow st = {.a = a, .r = r, .h = stg_hash_new(), .post_upto = 1, .rc = STG_OK};
    tree_of(a->comm, a->algo, &st.t);
    struct inflight f = {.cap = a->depth};
    f.s = stg_xcalloc((size_t)f.cap, sizeof *f.s);
    struct votes v;
    votes_init(&v, a);
    uint64_t posted = 0, fwd_next[2] = {0, 1};
    r->t0 = stg_now();
    while (!st.ended || f.n > 0) {
        bool progressed = false;
        votes_test(&v);
        if (votes_say_stop(&v) && !r->stopped)
            stop(a, r);     /* a node failed: this copy will not be used */
        struct stg_chunk *c;
        /* The chunks announced, and the one after the last received: a
         * chunk without LAST always has a successor. */
        uint64_t upto = st.post_upto > st.expect + 1 ? st.post_upto : st.expect + 1;
        while (!st.ended && posted < upto && f.n < f.cap &&
               (c = stg_chunkq_trypop(&a->pool->free, 0)) != NULL) {
            struct slot *s = inflight_push(&f, c, posted);
            MPI_Irecv(c->buf, (int)(STG_CHUNK_HDR_SIZE + a->chunk_size), MPI_BYTE,
                      st.t.parent[posted % 2], TAG_CHUNK + (int)(posted % 2), a->comm,
                      &s->req[0]);
            posted++;
            progressed = true;
        }
        /* The two trees' chunks come in any order: each goes on as soon
         * as it is here and its tree's earlier chunks have gone on (a
         * tree's chunks must reach a child in order) ... */
        for (int i = 0; i < f.n; i++) {
            struct slot *s = inflight_at(&f, i);
            int k = (int)(s->seq % 2);
            if (s->forwarding || s->seq != fwd_next[k] || !may_send(&f, k))
                continue;
            int done = 0;
            MPI_Test(&s->req[0], &done, MPI_STATUS_IGNORE);
            if (done) {
                received(a, &st.t, &f, s);
                fwd_next[k] += 2;
                progressed = true;
            }
        }
        /* ... and is checked, counted and voted on in the stream's order. */
        for (int i = 0; i < f.n; i++) {
            struct slot *s = inflight_at(&f, i);
            if (s->checked)
                continue;
            if (!s->forwarding)
                break;
            arrived(&st, s);
            votes_chunk_done(&v, s->seq, failed_here());
            stg_watchdog_progress(a->watch, st.expect);
            progressed = true;
        }
        /* Sent on to the children: the chunk goes to this node's unpacking. */
        while ((c = inflight_pop(&f)) != NULL) {
            stg_chunkq_push(a->out ? a->out : &a->pool->free, c);
            progressed = true;
        }
        check_held(a, &f, &st.t);
        if (!progressed)
            idle(a, &f, &v);
    }
    votes_finish(&v);
    r->t1 = stg_now();
    r->stream_bytes = st.offset;
    r->chunks = st.expect;
    stg_hash_free(&st.h);
    free(f.s);
    return st.rc;
}

int stg_bcast_depth_auto(enum stg_bcast_algo algo, int receivers, size_t chunk_size)
{
    if (algo == STG_BCAST_BINARY)
        return 4;
    int levels = 0;
    while (levels < 31 && (1L << levels) < (long)receivers + 1)
        levels++;
    /* up to 3 levels (8 nodes) 4 cover the lag (measured: 92 % of the
     * link), and a larger pool costs fresh pages where the links are fast */
    long depth = levels <= 3 ? 4 : 4 + 4L * levels;
    long fits = chunk_size ? ((64L << 20) / (long)chunk_size - 3) / 2 : depth;
    if (depth > fits)
        depth = fits;
    if (depth > 64)
        depth = 64;
    return depth < 4 ? 4 : (int)depth;
}

int stg_bcast_run(const struct stg_bcast_args *a, struct stg_bcast_result *r)
{
    memset(r, 0, sizeof *r);
    int rank;
    MPI_Comm_rank(a->comm, &rank);
    return rank == 0 ? run_root(a, r) : run_leader(a, r);
}
