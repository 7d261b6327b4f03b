/* SPDX-License-Identifier: MIT */
/*
 * sim: stage-py's broadcast on a simulated cluster (SimGrid's SMPI), for
 * tests/bench/sim.sh and stage-py-performance(7), THE SIMULATION.  It is
 * built with smpicc from the same src/lib/bcast.c as stage-py, with
 * STG_SIM defined (see bcast.c for the two things that changes).
 *
 * One rank per node, every one a cold leader.  Rank 0, the root, feeds the
 * broadcast synthetic chunks from this thread (no archive, no file), and
 * the leaders drop what they receive (no unpacking).  Only the chunks'
 * headers are copied from rank to rank (copy_header): the simulation moves
 * the sizes of the messages, not their bytes, so that 10 000 ranks fit in
 * time, and in memory: the chunk pools are chunk.c's own mallocs, of which
 * only the first page, the header's, is ever written.  (SMPI's shared
 * mallocs would not do: a chunk's header, which must travel, shares its
 * buffer with the data, and SMPI maps each shared block of 1 MiB
 * separately, more mappings than Linux allows at 10 000 ranks.)  The same run can instead time one MPI_Bcast of the whole stream
 * (in pieces of at most 1 GiB, as tests/bench/bcast-tar.c and
 * python-mpi-bcast do), the way the MPI library would carry it.
 *
 *     smpirun ... sim two-tree|binary|bcast BYTES CHUNK [DEPTH]
 *
 * DEPTH is stage-py's --pipeline-depth (default 4): chunks in flight on
 * each rank, and chunks between votes.
 *
 * Prints on rank 0 one line: algo,nodes,bytes,chunk,chunks,seconds, where
 * seconds is simulated time from the moment every rank is ready to the
 * moment the last one holds the whole stream.
 */
#include "config.h"

#include <mpi.h>
#include <smpi/smpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcast.h"
#include "chunk.h"
#include "log.h"

#define DEPTH 4             /* stage-py's default --pipeline-depth (cmd.h) */
#define PIECE ((size_t)1 << 30)

/* SimGrid's own copy of a message's bytes (C++; SimGrid 3.32's name for
 * it), which also frees the copies it made of small messages. */
void stg_sim_smpi_copy(void *comm, void *buf, size_t n)
    __asm__("_Z30smpi_comm_copy_buffer_callbackPN7simgrid6kernel8activity8CommImplEPvm");

/* Copy a message's first STG_CHUNK_HDR_SIZE bytes only: a chunk's header
 * (which the protocol reads) or a whole vote; never data, which nothing
 * reads here. */
static void copy_header(smx_activity_t comm, void *buf, size_t n)
{
    stg_sim_smpi_copy(comm, buf, n < STG_CHUNK_HDR_SIZE ? n : STG_CHUNK_HDR_SIZE);
}

/*
 * bcast.c's sends and votes are stood in for here: bcast.c's MPI_Isend,
 * MPI_Iallreduce, MPI_Test, MPI_Testall and idle()'s MPI_Waitany (and
 * watchdog.c's MPI_Test, in stg_wait) are renamed at build time to the
 * stg_sim_ functions below, which hand bcast.c a stand-in request that only
 * they read, for two reasons.
 *
 * One message at a time on each connection.  SimGrid shares a link fairly
 * among all the messages on it, so the four chunks that a rank may have
 * on their way to one child would each take four chunk times, and arrive
 * together; on a real network they go one after another down the one
 * connection (TCP, or an InfiniBand queue pair) between the two nodes,
 * and the first can go on after one chunk time.  With a bounded pipeline
 * that difference is the stream's rate (the simulation ran the two trees
 * at 16 nodes at a third of the link without this).  So a send starts
 * when the one before it to the same rank has arrived.  Messages to
 * different ranks still share the sender's link, as on a real one.
 *
 * The votes.  SMPI 3.32's MPI_Iallreduce is an all-to-all exchange, 2
 * (N - 1) messages from every rank, 2e8 per vote at 10 000 ranks, and
 * testing any non-blocking collective of N ranks costs it N^2 steps.  An
 * MPI library reduces in a tree: so does each vote here, a binomial tree
 * towards rank 0 (N - 1 messages of one int, log2 N hops), which lets the
 * root, the only rank that waits for the votes, go on once every leader
 * has voted, as an all-reduce would.  Every rank gets its own vote back:
 * the sum while no node fails, and none fails here.
 */
#define TAG_VOTE 1
#define KIDS 32     /* a binomial tree of up to 2^32 ranks */

struct op {
    bool vote;              /* else a send */
    bool done;
    struct op *next;        /* this rank's stand-ins, oldest first */
    /* A send. */
    bool started;
    MPI_Request real;       /* the message on the wire; MPI_REQUEST_NULL: not yet, or done */
    const void *buf;
    int count, dest, tag;
    MPI_Comm comm;
    /* A vote: the children's, then ours to the parent. */
    MPI_Request kid[KIDS];
    int ballot[KIDS], nkids, mine, parent;
};

/* Every rank's stand-ins (SMPI runs all ranks in this process, and
 * smpi/privatization:no leaves one copy of this array). */
static struct op **ops;

static struct op **mine(void)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return &ops[rank];
}

static struct op *stand_in(MPI_Request r)
{
    for (struct op *o = *mine(); r != MPI_REQUEST_NULL && o; o = o->next)
        if ((MPI_Request)(void *)o == r)
            return o;
    return NULL;
}

static void append(struct op *o, MPI_Request *req)
{
    struct op **p = mine();
    while (*p)
        p = &(*p)->next;
    *p = o;
    *req = (MPI_Request)(void *)o;
}

static struct op *new_op(void)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o)
        MPI_Abort(MPI_COMM_WORLD, 1);
    return o;
}

/* Move what can move: note the sends that arrived, start the oldest
 * waiting send to every rank that has none on the wire, and pass on each
 * vote whose children have all voted. */
static void pump(void)
{
    for (struct op *o = *mine(); o; o = o->next) {
        if (o->done)
            continue;
        if (!o->vote && o->started) {
            int flag = 1;   /* MPI_REQUEST_NULL: stg_sim_waitany() saw it arrive */
            if (o->real != MPI_REQUEST_NULL)
                PMPI_Test(&o->real, &flag, MPI_STATUS_IGNORE);
            o->done = flag;
        } else if (!o->vote) {
            bool busy = false;
            for (struct op *p = *mine(); p != o; p = p->next)
                busy = busy || (!p->vote && p->dest == o->dest && !p->done);
            if (!busy) {
                PMPI_Isend(o->buf, o->count, MPI_BYTE, o->dest, o->tag, o->comm, &o->real);
                o->started = true;
            }
        } else {
            bool all = true;
            for (int i = 0; i < o->nkids; i++) {
                int flag = 1;
                if (o->kid[i] != MPI_REQUEST_NULL)
                    PMPI_Test(&o->kid[i], &flag, MPI_STATUS_IGNORE);
                all = all && flag;
            }
            if (all && o->parent >= 0) {
                MPI_Request up;     /* one int: SMPI sends it at once */
                PMPI_Isend(&o->mine, 1, MPI_INT, o->parent, TAG_VOTE, o->comm, &up);
                PMPI_Request_free(&up);
            }
            o->done = all;
        }
    }
}

/* A stand-in that is done: forget it. */
static void retire(MPI_Request *r)
{
    struct op *o = stand_in(*r);
    struct op **p = mine();
    while (*p != o)
        p = &(*p)->next;
    *p = o->next;
    free(o);
    *r = MPI_REQUEST_NULL;
}

int stg_sim_isend(const void *buf, int count, MPI_Datatype type, int dest, int tag,
                  MPI_Comm comm, MPI_Request *req);
int stg_sim_isend(const void *buf, int count, MPI_Datatype type, int dest, int tag,
                  MPI_Comm comm, MPI_Request *req)
{
    (void)type;     /* bcast.c sends bytes */
    struct op *o = new_op();
    *o = (struct op){.real = MPI_REQUEST_NULL, .buf = buf, .count = count, .dest = dest,
                     .tag = tag, .comm = comm};
    append(o, req);
    pump();
    return MPI_SUCCESS;
}

int stg_sim_iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type,
                       MPI_Op op, MPI_Comm comm, MPI_Request *req);
int stg_sim_iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type,
                       MPI_Op op, MPI_Comm comm, MPI_Request *req)
{
    (void)op;
    (void)count;    /* bcast.c votes one int */
    (void)type;
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    struct op *o = new_op();
    o->vote = true;
    o->comm = comm;
    o->mine = *(const int *)sendbuf;
    *(int *)recvbuf = o->mine;
    o->parent = -1;
    for (int bit = 1; bit < size; bit <<= 1) {
        if (rank & bit) {
            o->parent = rank - bit;
            break;
        }
        if (rank + bit < size)
            PMPI_Irecv(&o->ballot[o->nkids], 1, MPI_INT, rank + bit, TAG_VOTE, comm,
                       &o->kid[o->nkids++]);
    }
    append(o, req);
    pump();
    return MPI_SUCCESS;
}

/* Also the fix of a slip: SMPI 3.32 leaves flag unset for
 * MPI_REQUEST_NULL when the status is ignored, where MPI says true, and
 * idle() leaves the requests that it completed as MPI_REQUEST_NULL. */
int stg_sim_test(MPI_Request *req, int *flag, MPI_Status *status);
int stg_sim_test(MPI_Request *req, int *flag, MPI_Status *status)
{
    *flag = 1;
    if (*req == MPI_REQUEST_NULL)
        return MPI_SUCCESS;
    struct op *o = stand_in(*req);
    if (!o)
        return PMPI_Test(req, flag, status);
    pump();
    *flag = o->done;
    if (o->done)
        retire(req);
    return MPI_SUCCESS;
}

/* bcast.c tests only sends together. */
int stg_sim_testall(int count, MPI_Request *req, int *flag, MPI_Status *statuses);
int stg_sim_testall(int count, MPI_Request *req, int *flag, MPI_Status *statuses)
{
    (void)statuses;
    pump();
    *flag = 1;
    for (int i = 0; i < count; i++) {
        struct op *o = stand_in(req[i]);
        if (req[i] != MPI_REQUEST_NULL && (!o || !o->done))
            *flag = 0;
    }
    for (int i = 0; *flag && i < count; i++)
        if (req[i] != MPI_REQUEST_NULL)
            retire(&req[i]);
    return MPI_SUCCESS;
}

/* Block until one of req (receives, and stand-ins) is done, and complete
 * that one alone.  On the wire, that is one of the receives, this rank's
 * started sends, or its votes' children's. */
int stg_sim_waitany(int count, MPI_Request *req, int *index, MPI_Status *status);
int stg_sim_waitany(int count, MPI_Request *req, int *index, MPI_Status *status)
{
    (void)status;
    int most = count;
    for (struct op *o = *mine(); o; o = o->next)
        most += o->vote ? o->nkids : 1;
    MPI_Request *wire = calloc((size_t)most, sizeof *wire);
    MPI_Request **from = calloc((size_t)most, sizeof *from);   /* where each lives */
    if (!wire || !from)
        MPI_Abort(MPI_COMM_WORLD, 1);
    *index = MPI_UNDEFINED;
    for (;;) {
        pump();
        int n = 0;
        for (int i = 0; i < count && *index == MPI_UNDEFINED; i++) {
            struct op *o = stand_in(req[i]);
            if (o && o->done) {
                retire(&req[i]);
                *index = i;
            } else if (req[i] != MPI_REQUEST_NULL && !o) {
                from[n] = &req[i];
                wire[n++] = req[i];
            }
        }
        if (*index != MPI_UNDEFINED)
            break;
        for (struct op *o = *mine(); o; o = o->next) {
            if (!o->vote && o->started && !o->done) {
                from[n] = &o->real;
                wire[n++] = o->real;
            }
            for (int i = 0; o->vote && i < o->nkids; i++)
                if (o->kid[i] != MPI_REQUEST_NULL) {
                    from[n] = &o->kid[i];
                    wire[n++] = o->kid[i];
                }
        }
        int k = MPI_UNDEFINED;
        if (n > 0)
            PMPI_Waitany(n, wire, &k, MPI_STATUS_IGNORE);
        if (k == MPI_UNDEFINED)
            break;
        *from[k] = MPI_REQUEST_NULL;    /* done; a stand-in's turn comes with the next pump() */
        for (int i = 0; i < count; i++)
            if (from[k] == &req[i])
                *index = i;
        if (*index != MPI_UNDEFINED)
            break;
    }
    free(from);
    free(wire);
    return MPI_SUCCESS;
}

/* The root's stand-in for the pack thread: every free chunk becomes the
 * next piece of the stream at once, as a pack thread reading from memory
 * would make it. */
struct feeder {
    struct stg_chunk_pool *pool;
    struct stg_chunkq *in;
    uint64_t left;          /* stream bytes not yet in a chunk */
    size_t chunk;
    bool done;
};

static void feed(void *arg)
{
    struct feeder *fd = arg;
    struct stg_chunk *c;
    while (!fd->done && (c = stg_chunkq_trypop(&fd->pool->free, 0)) != NULL) {
        struct stg_chunk_hdr *hd = stg_chunk_hdr(c);
        size_t len = fd->left < fd->chunk ? (size_t)fd->left : fd->chunk;
        fd->left -= len;
        fd->done = fd->left == 0;
        hd->len = (uint32_t)len;
        hd->flags = fd->done ? STG_CHUNK_LAST : 0;
        stg_chunkq_push(fd->in, c);
    }
}

static uint64_t run_stream(enum stg_bcast_algo algo, uint64_t bytes, size_t chunk, int depth)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm votes;
    MPI_Comm_dup(MPI_COMM_WORLD, &votes);   /* the votes never mix with the chunks */
    struct stg_chunk_pool pool;
    stg_chunk_pool_init(&pool, 2 * (size_t)depth + 3, chunk);   /* as stream.c sizes it */
    struct stg_chunkq in;
    stg_chunkq_init(&in, pool.n);
    struct feeder fd = {.pool = &pool, .in = &in, .left = bytes, .chunk = chunk};
    struct stg_bcast_args a = {
        .algo = algo, .comm = MPI_COMM_WORLD, .votes = votes, .members = size - 1,
        .chunk_size = chunk, .depth = depth, .vote_every = depth < 2 ? 2 : depth,
        .stop_on_failure = true,
        .corrupt_seq = -1, .pool = &pool, .in = &in,
        .feed = rank == 0 ? feed : NULL, .feed_arg = &fd,
    };
    struct stg_bcast_result r;
    if (stg_bcast_run(&a, &r) != STG_OK || r.stopped || r.stream_bytes != bytes) {
        fprintf(stderr, "sim: rank %d: the stream stopped or fell short (%llu of %llu bytes)\n",
                rank, (unsigned long long)r.stream_bytes, (unsigned long long)bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    stg_chunkq_destroy(&in);
    stg_chunk_pool_destroy(&pool);
    MPI_Comm_free(&votes);
    return r.chunks;
}

/* The whole stream as the MPI library broadcasts it.  One buffer serves
 * every rank: SMPI runs them all in this process, and copies only headers
 * here, so nothing is ever written to it. */
static void run_mpi_bcast(uint64_t bytes)
{
    static unsigned char *payload;
    if (!payload) {
        payload = malloc(bytes);
        if (!payload)
            MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (uint64_t off = 0; off < bytes; off += PIECE) {
        size_t n = bytes - off < PIECE ? (size_t)(bytes - off) : PIECE;
        MPI_Bcast(payload + off, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    enum stg_bcast_algo algo = STG_BCAST_TWO_TREE;
    bool args = argc == 4 || argc == 5;
    bool mpi_bcast = args && strcmp(argv[1], "bcast") == 0;
    char *end1 = NULL, *end2 = NULL;
    uint64_t bytes = args ? strtoull(argv[2], &end1, 10) : 0;
    size_t chunk = args ? strtoull(argv[3], &end2, 10) : 0;
    int depth = argc == 5 ? atoi(argv[4]) : DEPTH;
    if (!args || (!mpi_bcast && stg_bcast_algo_parse(argv[1], &algo) != 0) || bytes == 0 ||
        *end1 || *end2 || chunk < STG_CHUNK_MIN || chunk > STG_CHUNK_MAX || depth < 1 ||
        depth > 64) {
        fprintf(stderr, "usage: sim two-tree|binary|bcast BYTES CHUNK [DEPTH]\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    smpi_comm_set_copy_data_callback(copy_header);
    if (rank == 0) {
        ops = calloc((size_t)size, sizeof *ops);
    }
    MPI_Barrier(MPI_COMM_WORLD);    /* every rank ready: the clock starts */
    double t0 = MPI_Wtime();
    uint64_t chunks = 0;
    if (mpi_bcast)
        run_mpi_bcast(bytes);
    else
        chunks = run_stream(algo, bytes, chunk, depth);
    double t1 = MPI_Wtime(), last = 0;
    /* The time until the last rank holds the whole stream. */
    MPI_Reduce(&t1, &last, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s,%d,%llu,%zu,%llu,%.6f\n", argv[1], size, (unsigned long long)bytes,
               mpi_bcast ? 0 : chunk, (unsigned long long)chunks, last - t0);
    MPI_Finalize();
    return 0;
}
