/* SPDX-License-Identifier: MIT */
/*
 * chunk: buffers and the queues between threads.
 */
#include "config.h"

#include "chunk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

_Static_assert(sizeof(struct stg_chunk_hdr) <= STG_CHUNK_HDR_SIZE, "chunk header too large");

void stg_chunkq_init(struct stg_chunkq *q, size_t cap)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    q->v = stg_xcalloc(cap, sizeof *q->v);
    q->cap = cap;
    q->head = q->n = 0;
}

void stg_chunkq_destroy(struct stg_chunkq *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    free(q->v);
    q->v = NULL;
}

void stg_chunkq_push(struct stg_chunkq *q, struct stg_chunk *c)
{
    pthread_mutex_lock(&q->lock);
    /* Never full: a queue has room for every chunk of its pool. */
    q->v[(q->head + q->n) % q->cap] = c;
    q->n++;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static struct stg_chunk *take(struct stg_chunkq *q)
{
    struct stg_chunk *c = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return c;
}

struct stg_chunk *stg_chunkq_pop(struct stg_chunkq *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->n == 0)
        pthread_cond_wait(&q->cond, &q->lock);
    struct stg_chunk *c = take(q);
    pthread_mutex_unlock(&q->lock);
    return c;
}

struct stg_chunk *stg_chunkq_trypop(struct stg_chunkq *q, long usec)
{
    struct stg_chunk *c = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->n == 0 && usec > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += usec * 1000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        while (q->n == 0)
            if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) == ETIMEDOUT)
                break;
    }
    if (q->n > 0)
        c = take(q);
    pthread_mutex_unlock(&q->lock);
    return c;
}

void stg_chunk_pool_init(struct stg_chunk_pool *p, size_t n, size_t cap)
{
    p->n = n;
    p->chunks = stg_xcalloc(n, sizeof *p->chunks);
    stg_chunkq_init(&p->free, n);
    for (size_t i = 0; i < n; i++) {
        p->chunks[i].buf = stg_xmalloc(STG_CHUNK_HDR_SIZE + cap);
        p->chunks[i].cap = cap;
        memset(p->chunks[i].buf, 0, STG_CHUNK_HDR_SIZE);
        stg_chunkq_push(&p->free, &p->chunks[i]);
    }
}

void stg_chunk_pool_destroy(struct stg_chunk_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->chunks[i].buf);
    free(p->chunks);
    p->chunks = NULL;
    stg_chunkq_destroy(&p->free);
}
