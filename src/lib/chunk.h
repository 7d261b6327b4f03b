/* SPDX-License-Identifier: MIT */
/*
 * chunk: the fixed-size buffers the archive travels in, and the queues that
 * hand them between the MPI thread and the libarchive threads.
 *
 * A chunk is one MPI message: a header, then up to chunk_size bytes of the
 * archive.  Every message has the same size (a collective needs the same
 * count on every rank); the header says how much of it is data.
 */
#ifndef STG_CHUNK_H
#define STG_CHUNK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

/* The largest chunk a single message can carry (an MPI count is an int). */
#define STG_CHUNK_MAX ((size_t)1 << 30)
#define STG_CHUNK_MIN ((size_t)4096)

enum stg_chunk_flags {
    STG_CHUNK_LAST = 1,     /* the last message of the stream, always */
    STG_CHUNK_ABORT = 2     /* the stream was stopped: no data here, the copy is incomplete */
};

/* Header of every message.  The nodes of one job share an architecture, so it
 * travels as raw bytes. */
struct stg_chunk_hdr {
    uint64_t seq;           /* 0, 1, 2, ... */
    uint64_t post_upto;     /* leaders may post every message with seq below this */
    uint64_t offset;        /* stream offset of the first data byte */
    uint32_t len;           /* data bytes in this chunk */
    uint32_t flags;         /* enum stg_chunk_flags */
    unsigned char digest[STG_DIGEST_LEN]; /* XXH3-128 of the stream up to here */
    uint64_t reserved[2];
};

#define STG_CHUNK_HDR_SIZE 64

struct stg_chunk {
    unsigned char *buf;     /* header, then data */
    size_t cap;             /* data capacity (the chunk size) */
};

static inline struct stg_chunk_hdr *stg_chunk_hdr(struct stg_chunk *c)
{
    return (struct stg_chunk_hdr *)(void *)c->buf;
}

static inline unsigned char *stg_chunk_data(struct stg_chunk *c)
{
    return c->buf + STG_CHUNK_HDR_SIZE;
}

/* A blocking FIFO of chunk pointers, bounded by construction: there are only
 * so many chunks. */
struct stg_chunkq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct stg_chunk **v;
    size_t cap, head, n;
};

void stg_chunkq_init(struct stg_chunkq *q, size_t cap);
void stg_chunkq_destroy(struct stg_chunkq *q);
void stg_chunkq_push(struct stg_chunkq *q, struct stg_chunk *c);
/* Blocks until a chunk is there. */
struct stg_chunk *stg_chunkq_pop(struct stg_chunkq *q);
/* NULL if empty after waiting at most usec microseconds (0: do not wait). */
struct stg_chunk *stg_chunkq_trypop(struct stg_chunkq *q, long usec);

/* A pool of n chunks of cap data bytes each, all in the free queue. */
struct stg_chunk_pool {
    struct stg_chunk *chunks;
    size_t n;
    struct stg_chunkq free;
};

void stg_chunk_pool_init(struct stg_chunk_pool *p, size_t n, size_t cap);
void stg_chunk_pool_destroy(struct stg_chunk_pool *p);

#endif
