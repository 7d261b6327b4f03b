/* SPDX-License-Identifier: MIT */
/*
 * t-chunk: the chunk pool (n chunks of cap data bytes, all in its free
 * queue), the queues (first in, first out, around the ring many times;
 * pop that waits for a push; trypop that gives up after its timeout, or
 * takes what another thread pushes meanwhile), the header accessors, and a
 * producer thread and a consumer thread that pass every chunk of a long
 * stream through a small pool, in order, with nothing lost.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "fixture.h"
#include "tap.h"
#include "util.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* --- a late push, from another thread --- */

struct late {
    struct stg_chunkq *q;
    struct stg_chunk *c;
    long delay_ms;
};

static void *push_later(void *arg)
{
    struct late *l = arg;
    sleep_ms(l->delay_ms);
    stg_chunkq_push(l->q, l->c);
    return NULL;
}

/* --- the producer and the consumer --- */

#define STREAM_CHUNKS 20000

struct pipeline {
    struct stg_chunk_pool pool;
    struct stg_chunkq mid;
    /* what the consumer saw */
    uint64_t received, out_of_order, bad_data, bad_offset, bad_len, last_seen;
    uint64_t bytes;
    unsigned char seen[STREAM_CHUNKS];
};

/* The data byte i of chunk seq: different in every chunk and position. */
static unsigned char pattern(uint64_t seq, size_t i)
{
    return (unsigned char)(seq * 131 + i * 7 + (seq >> 8));
}

/* The length of chunk seq: every length from 1 to the capacity occurs. */
static uint32_t length_of(uint64_t seq, size_t cap)
{
    return (uint32_t)(1 + (seq * 2654435761u) % cap);
}

static void *producer(void *arg)
{
    struct pipeline *p = arg;
    uint64_t offset = 0;
    for (uint64_t seq = 0; seq < STREAM_CHUNKS; seq++) {
        struct stg_chunk *c = stg_chunkq_pop(&p->pool.free);
        struct stg_chunk_hdr *h = stg_chunk_hdr(c);
        uint32_t len = length_of(seq, c->cap);
        unsigned char *d = stg_chunk_data(c);
        for (size_t i = 0; i < len; i++)
            d[i] = pattern(seq, i);
        h->seq = seq;
        h->offset = offset;
        h->len = len;
        h->flags = seq + 1 == STREAM_CHUNKS ? STG_CHUNK_LAST : 0;
        offset += len;
        stg_chunkq_push(&p->mid, c);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pipeline *p = arg;
    uint64_t expect = 0, offset = 0;
    for (;;) {
        struct stg_chunk *c = stg_chunkq_pop(&p->mid);
        struct stg_chunk_hdr *h = stg_chunk_hdr(c);
        const unsigned char *d = stg_chunk_data(c);
        if (h->seq != expect)
            p->out_of_order++;
        if (h->seq < STREAM_CHUNKS)
            p->seen[h->seq]++;
        if (h->offset != offset)
            p->bad_offset++;
        if (h->len == 0 || h->len > c->cap || h->len != length_of(h->seq, c->cap))
            p->bad_len++;
        for (size_t i = 0; i < h->len && i < c->cap; i++) {
            if (d[i] != pattern(h->seq, i)) {
                p->bad_data++;
                break;
            }
        }
        bool last = h->flags & STG_CHUNK_LAST;
        offset += h->len;
        p->bytes += h->len;
        p->received++;
        expect = h->seq + 1;
        if (last)
            p->last_seen = h->seq;
        stg_chunkq_push(&p->pool.free, c);
        if (last)
            return NULL;
    }
}

int main(void)
{
    /* A queue that loses a wake-up must fail the test, not hang it. */
    fx_bail_on_alarm("Bail out! t-chunk: a queue operation hung\n");
    alarm(120);

    /* --- the header and the data --- */
    ok(sizeof(struct stg_chunk_hdr) <= STG_CHUNK_HDR_SIZE, "the header (%zu bytes) fits in "
       "its %d bytes", sizeof(struct stg_chunk_hdr), STG_CHUNK_HDR_SIZE);

    /* --- the pool --- */
    enum { N = 5 };
    struct stg_chunk_pool pool;
    stg_chunk_pool_init(&pool, N, STG_CHUNK_MIN);
    ok(pool.n == N, "a pool of %d chunks", N);
    struct stg_chunk *got[N + 1] = {NULL};
    size_t ngot = 0;
    for (size_t i = 0; i < N; i++) {
        got[i] = stg_chunkq_trypop(&pool.free, 0);
        if (got[i])
            ngot++;
    }
    ok(ngot == N, "... all %d in its free queue (%zu taken)", N, ngot);
    ok(stg_chunkq_trypop(&pool.free, 0) == NULL, "... and no more");
    bool distinct = true, in_pool = true, caps = true, zero_hdr = true, accessors = true;
    for (size_t i = 0; i < ngot; i++) {
        struct stg_chunk *c = got[i];
        in_pool = in_pool && c >= pool.chunks && c < pool.chunks + pool.n;
        caps = caps && c->cap == STG_CHUNK_MIN;
        for (size_t j = 0; j < i; j++)
            distinct = distinct && got[j] != c && got[j]->buf != c->buf;
        struct stg_chunk_hdr *h = stg_chunk_hdr(c);
        zero_hdr = zero_hdr && h->seq == 0 && h->len == 0 && h->flags == 0 && h->offset == 0;
        accessors = accessors && (unsigned char *)h == c->buf &&
                    stg_chunk_data(c) == c->buf + STG_CHUNK_HDR_SIZE;
    }
    ok(distinct && in_pool, "... distinct chunks of the pool, with buffers of their own");
    ok(caps, "... each of %zu data bytes", STG_CHUNK_MIN);
    ok(zero_hdr, "... with a cleared header");
    ok(accessors, "the header is at the start of the buffer, the data %d bytes after it",
       STG_CHUNK_HDR_SIZE);

    /* The header and the data do not overlap: fill the data, then every
     * header field, and the data is as it was (under ASan, every byte of
     * the capacity is also written). */
    {
        struct stg_chunk *c = got[0];
        unsigned char *d = stg_chunk_data(c);
        for (size_t i = 0; i < c->cap; i++)
            d[i] = pattern(7, i);
        struct stg_chunk_hdr *h = stg_chunk_hdr(c);
        h->seq = UINT64_MAX;
        h->post_upto = UINT64_MAX;
        h->offset = UINT64_MAX;
        h->len = UINT32_MAX;
        h->flags = STG_CHUNK_LAST | STG_CHUNK_ABORT;
        memset(h->digest, 0xff, sizeof h->digest);
        h->reserved[0] = h->reserved[1] = UINT64_MAX;
        bool intact = true;
        for (size_t i = 0; i < c->cap; i++)
            intact = intact && d[i] == pattern(7, i);
        ok(intact, "writing every header field leaves the data alone");
        ok(h->seq == UINT64_MAX && h->len == UINT32_MAX &&
           h->flags == (STG_CHUNK_LAST | STG_CHUNK_ABORT),
           "... and the header holds what was written");
        memset(h, 0, STG_CHUNK_HDR_SIZE);
    }

    /* --- the queue: first in, first out --- */
    struct stg_chunkq q;
    stg_chunkq_init(&q, N);
    ok(stg_chunkq_trypop(&q, 0) == NULL, "a new queue is empty");
    for (size_t i = 0; i < N; i++)
        stg_chunkq_push(&q, got[i]);
    bool order = true;
    for (size_t i = 0; i < N; i++)
        order = order && stg_chunkq_pop(&q) == got[i];
    ok(order, "pop gives the chunks in the order they were pushed");
    ok(stg_chunkq_trypop(&q, 0) == NULL, "... and the queue is empty again");

    /* Around the ring: pushes and pops interleaved, the queue never more
     * than full, many times its capacity. */
    {
        size_t in = 0, out = 0, mism = 0;
        for (int round = 0; round < 1000; round++) {
            size_t k = 1 + (size_t)round % N;        /* 1..N in flight */
            /* never more than N in the queue: it has room for its pool */
            while (in - out + k > N)
                if (stg_chunkq_pop(&q) != got[(out++) % N])
                    mism++;
            for (size_t i = 0; i < k; i++)
                stg_chunkq_push(&q, got[(in++) % N]);
            size_t take = round % 3 == 0 ? k : k - (k > 1);
            for (size_t i = 0; i < take; i++) {
                struct stg_chunk *c = round % 2 ? stg_chunkq_pop(&q) : stg_chunkq_trypop(&q, 0);
                if (c != got[(out++) % N])
                    mism++;
            }
        }
        while (in > out)
            if (stg_chunkq_pop(&q) != got[(out++) % N])
                mism++;
        ok(mism == 0 && in > 10 * N, "around the ring %zu times: still first in, first out "
           "(%zu out of order)", in / N, mism);
        ok(stg_chunkq_trypop(&q, 0) == NULL, "... and nothing extra comes out");
    }

    /* --- waiting --- */
    double t0 = stg_now();
    struct stg_chunk *none = stg_chunkq_trypop(&q, 100000);
    double waited = stg_now() - t0;
    ok(none == NULL, "trypop on an empty queue with a timeout: NULL once it passes");
    diag("it waited %.3f s for a 0.1 s timeout", waited);

    struct late l = {&q, got[2], 50};
    pthread_t th;
    pthread_create(&th, NULL, push_later, &l);
    struct stg_chunk *c = stg_chunkq_trypop(&q, 60L * 1000 * 1000);
    pthread_join(th, NULL);
    ok(c == got[2], "trypop with a timeout takes a chunk pushed by another thread meanwhile");

    l.c = got[3];
    pthread_create(&th, NULL, push_later, &l);
    c = stg_chunkq_pop(&q);
    pthread_join(th, NULL);
    ok(c == got[3], "pop waits for a chunk pushed by another thread");

    /* A zero timeout does not wait: a chunk that comes later is not taken. */
    l.c = got[4];
    l.delay_ms = 300;
    pthread_create(&th, NULL, push_later, &l);
    c = stg_chunkq_trypop(&q, 0);
    ok(c == NULL, "trypop(0) does not wait for a chunk that comes later");
    pthread_join(th, NULL);
    ok(stg_chunkq_trypop(&q, 0) == got[4], "... which is there once pushed");
    stg_chunkq_destroy(&q);
    ok(q.v == NULL, "destroy frees the ring");
    for (size_t i = 0; i < N; i++)
        stg_chunkq_push(&pool.free, got[i]);
    stg_chunk_pool_destroy(&pool);
    ok(pool.chunks == NULL, "destroying the pool frees its chunks");

    /* --- a producer thread and a consumer thread --- */
    struct pipeline *p = stg_xcalloc(1, sizeof *p);
    stg_chunk_pool_init(&p->pool, 3, STG_CHUNK_MIN);
    stg_chunkq_init(&p->mid, p->pool.n);
    pthread_t prod, cons;
    pthread_create(&cons, NULL, consumer, p);
    pthread_create(&prod, NULL, producer, p);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    uint64_t want_bytes = 0;
    for (uint64_t seq = 0; seq < STREAM_CHUNKS; seq++)
        want_bytes += length_of(seq, STG_CHUNK_MIN);
    size_t missing = 0, twice = 0;
    for (size_t i = 0; i < STREAM_CHUNKS; i++) {
        missing += p->seen[i] == 0;
        twice += p->seen[i] > 1;
    }
    ok(p->received == STREAM_CHUNKS && missing == 0 && twice == 0,
       "%d chunks through a pool of 3: every one received once (%llu received, %zu missing, "
       "%zu twice)", STREAM_CHUNKS, (unsigned long long)p->received, missing, twice);
    ok(p->out_of_order == 0 && p->bad_offset == 0, "... in order, at their offsets");
    ok(p->bad_len == 0 && p->bad_data == 0 && p->bytes == want_bytes,
       "... with their lengths and data (%llu bytes)", (unsigned long long)p->bytes);
    ok(p->last_seen == STREAM_CHUNKS - 1, "... the last one flagged last");
    size_t back = 0;
    while (stg_chunkq_trypop(&p->pool.free, 0))
        back++;
    ok(back == p->pool.n && stg_chunkq_trypop(&p->mid, 0) == NULL,
       "... and every chunk is back in the free queue (%zu of %zu)", back, p->pool.n);
    stg_chunkq_destroy(&p->mid);
    stg_chunk_pool_destroy(&p->pool);
    free(p);
    alarm(0);
    return done_testing();
}
