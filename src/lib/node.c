/* SPDX-License-Identifier: MIT */
/*
 * node: topology, agreement, and the shared-directory check.
 */
#include "config.h"

#include "node.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static volatile sig_atomic_t caught;
/* The node whose deadline the waiting loops watch. */
static struct stg_node *watched;
/* Ranks other than the root wait this much longer, so that the root, which
 * knows which nodes are late, normally speaks first. */
#define DEADLINE_GRACE 3.0
/* The tag of the root's word to stop, on the notes communicator (phase
 * notes use the phase number). */
#define TAG_STOP 32000
static void (*on_signal_cleanup)(void *);
static void *on_signal_arg;

static void note_signal(int sig)
{
    caught = sig;
}

/* The MPI library may end the process with exit() when a peer dies (the
 * root aborting on a timeout): clean up then too. */
static void cleanup_at_exit(void)
{
    if (on_signal_cleanup)
        on_signal_cleanup(on_signal_arg);
}

void stg_node_on_signal(void (*cleanup)(void *), void *arg)
{
    static bool registered;
    if (!registered)
        registered = atexit(cleanup_at_exit) == 0;
    on_signal_cleanup = cleanup;
    on_signal_arg = arg;
}

void stg_node_check_signal(void)
{
    int sig = caught;
    if (!sig)
        return;
    /* Once for the job, not once per rank: a cancelled job signals them all. */
    if (watched && watched->is_root)
        stg_log_error("stopped by signal %d (%s)", sig, strsignal(sig));
    if (on_signal_cleanup)
        on_signal_cleanup(on_signal_arg);
    signal(sig, SIG_DFL);
    raise(sig);
}

int stg_node_init(struct stg_node *n)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    memset(n, 0, sizeof *n);
    /* A private communicator: our traffic never mixes with the caller's. */
    MPI_Comm_dup(MPI_COMM_WORLD, &n->world);
    MPI_Comm_rank(n->world, &n->rank);
    MPI_Comm_size(n->world, &n->size);
    /* Ranks that share memory share a node; key = world rank, so world rank 0
     * is local rank 0 of its node and leader rank 0. */
    MPI_Comm_split_type(n->world, MPI_COMM_TYPE_SHARED, n->rank, MPI_INFO_NULL, &n->local);
    MPI_Comm_rank(n->local, &n->local_rank);
    MPI_Comm_size(n->local, &n->local_size);
    n->is_leader = n->local_rank == 0;
    n->is_root = n->rank == 0;
    MPI_Comm_split(n->world, n->is_leader ? 0 : MPI_UNDEFINED, n->rank, &n->leaders);
    n->leader_rank = -1;
    if (n->is_leader) {
        MPI_Comm_rank(n->leaders, &n->leader_rank);
        MPI_Comm_size(n->leaders, &n->nnodes);
    }
    /* Everyone learns the node count (for --stats and messages). */
    MPI_Bcast(&n->nnodes, 1, MPI_INT, 0, n->world);
    const char *sn = getenv("SLURMD_NODENAME");
    if (sn && *sn)
        snprintf(n->name, sizeof n->name, "%s", sn);
    else if (gethostname(n->name, sizeof n->name - 1) < 0)
        snprintf(n->name, sizeof n->name, "rank%d", n->rank);
    n->notes = MPI_COMM_NULL;
    n->start = stg_now();
    if (n->is_leader) {
        /* The root learns every node's name once, for timeout messages. */
        MPI_Comm_dup(n->leaders, &n->notes);
        char mine[64];
        snprintf(mine, sizeof mine, "%s", n->name);
        if (n->is_root)
            n->names = stg_xcalloc((size_t)n->nnodes, sizeof *n->names);
        MPI_Gather(mine, 64, MPI_CHAR, n->names, 64, MPI_CHAR, 0, n->leaders);
        n->note_req = stg_xcalloc((size_t)n->nnodes, sizeof *n->note_req);
        n->note_buf = stg_xcalloc((size_t)n->nnodes, sizeof *n->note_buf);
    }
    n->stop_req = MPI_REQUEST_NULL;
    if (n->is_leader && !n->is_root) {
        /* Posted now, tested where the leader waits: on a timeout the root
         * tells every leader to clean up and go, before it aborts the job. */
        MPI_Irecv(&n->stop_buf, 1, MPI_INT, 0, TAG_STOP, n->notes, &n->stop_req);
    }
    watched = n;
    return STG_OK;
}

void stg_node_fini(struct stg_node *n)
{
    watched = NULL;
    if (n->stop_req != MPI_REQUEST_NULL) {
        MPI_Cancel(&n->stop_req);
        MPI_Wait(&n->stop_req, MPI_STATUS_IGNORE);
    }
    free(n->names);
    free(n->note_req);
    free(n->note_buf);
    if (n->notes != MPI_COMM_NULL)
        MPI_Comm_free(&n->notes);
    if (n->leaders != MPI_COMM_NULL)
        MPI_Comm_free(&n->leaders);
    MPI_Comm_free(&n->local);
    MPI_Comm_free(&n->world);
}

void stg_node_wait(MPI_Request *req)
{
    int done = 0;
    long usec = 0;
    for (;;) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        stg_node_check_signal();
        stg_node_check_deadline();
        if (usec) {
            struct timespec ts = {0, usec * 1000};
            nanosleep(&ts, NULL);
        }
        usec = usec ? (usec < 2000 ? usec * 2 : 2000) : 10;
    }
}

void stg_node_set_timeout(struct stg_node *n, double seconds)
{
    n->deadline = seconds > 0 ? n->start + seconds : 0;
}

void stg_node_phase(struct stg_node *n, const char *name)
{
    n->phase = name;
    n->phase_tag++;
    n->in_phase = true;
    /* The root expects a note from every other leader at the end of the
     * phase; the notes still missing at the deadline name the late nodes. */
    if (n->is_root)
        for (int i = 1; i < n->nnodes; i++)
            MPI_Irecv(&n->note_buf[i], 1, MPI_INT, i, n->phase_tag, n->notes, &n->note_req[i]);
}

/* End of the phase on this rank: leaders tell the root. */
static void phase_arrived(struct stg_node *n)
{
    if (!n->in_phase)
        return;
    if (n->is_leader && !n->is_root) {
        n->note_buf[0] = 1;
        MPI_Isend(&n->note_buf[0], 1, MPI_INT, 0, n->phase_tag, n->notes, &n->note_req[0]);
    }
}

/* After the agreement every note has been sent: complete them. */
static void phase_close(struct stg_node *n)
{
    if (!n->in_phase)
        return;
    n->in_phase = false;
    if (n->is_root && n->nnodes > 1)
        MPI_Waitall(n->nnodes - 1, n->note_req + 1, MPI_STATUSES_IGNORE);
    else if (n->is_leader && !n->is_root)
        MPI_Wait(&n->note_req[0], MPI_STATUS_IGNORE);
}

/* Leaders: the root's word to stop arrived (it timed out): clean up, go. */
static void check_stop(struct stg_node *n)
{
    int got = 0;
    if (n->stop_req == MPI_REQUEST_NULL)
        return;
    MPI_Test(&n->stop_req, &got, MPI_STATUS_IGNORE);
    if (!got)
        return;
    if (on_signal_cleanup)
        on_signal_cleanup(on_signal_arg);
    on_signal_cleanup = NULL;
    /* The root aborts the job; leave without waiting for MPI. */
    _exit(STG_ETIMEOUT);
}

void stg_node_check_deadline(void)
{
    struct stg_node *n = watched;
    if (!n)
        return;
    check_stop(n);
    if (n->deadline <= 0)
        return;
    double now = stg_now();
    if (now < n->deadline + (n->is_root ? 0 : DEADLINE_GRACE))
        return;
    watched = NULL;     /* once */
    const char *phase = n->phase ? n->phase : "start";
    if (n->is_root) {
        char late[STG_MSG_MAX] = "";
        size_t off = 0;
        for (int i = 1; n->in_phase && i < n->nnodes; i++) {
            int done = 0;
            MPI_Test(&n->note_req[i], &done, MPI_STATUS_IGNORE);
            if (!done) {
                int w = snprintf(late + off, sizeof late - off, "%s%s", off ? ", " : "",
                                 n->names[i]);
                if (w > 0 && (size_t)w < sizeof late - off)
                    off += (size_t)w;
            }
        }
        fprintf(stderr, "stage-py: timeout: %.0f s passed in phase '%s'; not finished: %s\n",
                n->deadline - n->start, phase, off ? late : n->name);
        fflush(stderr);
        /* MPI_Abort kills without a signal that could be caught: first tell
         * every leader to remove its temporary directory, and give them a
         * moment (one that hangs for real leaves it locked-then-dead: the
         * next run's sweep removes it). */
        MPI_Request *req = stg_xcalloc((size_t)n->nnodes, sizeof *req);
        int word = 1;
        for (int i = 1; i < n->nnodes; i++)
            MPI_Isend(&word, 1, MPI_INT, i, TAG_STOP, n->notes, &req[i]);
        for (double until = stg_now() + 2.0; stg_now() < until;) {
            int done = 0;
            MPI_Testall(n->nnodes - 1, req + 1, &done, MPI_STATUSES_IGNORE);
            if (done)
                break;
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);   /* the words are out; let the leaders act on them */
    } else {
        fprintf(stderr, "stage-py: %s: timeout: %.0f s passed in phase '%s'%s\n", n->name,
                now - n->start, phase,
                strcmp(phase, "plan") == 0 ? "; the root was still reading the trees" : "");
        fflush(stderr);
    }
    if (on_signal_cleanup)
        on_signal_cleanup(on_signal_arg);
    on_signal_cleanup = NULL;
    MPI_Abort(MPI_COMM_WORLD, STG_ETIMEOUT);
}

int stg_agree(struct stg_node *n, MPI_Comm comm, int status, char msg[STG_MSG_MAX])
{
    int rank;
    if (comm == n->world)
        phase_arrived(n);
    MPI_Comm_rank(comm, &rank);
    /* The lowest failing rank that recorded an error of its own; failing
     * only as a consequence (a stopped stream) ranks below any such error.
     * Encoded so that MAX finds it: bit 30 for an own error, then
     * 0x3fffffff - rank. */
    bool own = stg_err_status() != STG_OK;
    int mine = status != STG_OK ? (own ? 1 << 30 : 0) | (0x3fffffff - rank) : -1, first;
    MPI_Request req;
    MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MAX, comm, &req);
    stg_node_wait(&req);
    if (comm == n->world)
        phase_close(n);
    msg[0] = '\0';
    if (first < 0)
        return STG_OK;
    /* The failing rank's status and text reach everyone, so every rank exits
     * the same way and the root can print the text once. */
    struct {
        int status;
        char text[STG_MSG_MAX];
    } word;
    int from = 0x3fffffff - (first & 0x3fffffff);
    if (rank == from) {
        char e[STG_MSG_MAX];
        stg_err_get(e, sizeof e);
        word.status = status;
        /* A usage error is the same everywhere: no node name. */
        if (status == STG_EUSAGE)
            snprintf(word.text, sizeof word.text, "%s", e[0] ? e : "usage error");
        else
            snprintf(word.text, sizeof word.text, "%s: %s", n->name,
                     e[0] ? e : "failed (no message)");
    }
    MPI_Ibcast(&word, (int)sizeof word, MPI_BYTE, from, comm, &req);
    stg_node_wait(&req);
    snprintf(msg, STG_MSG_MAX, "%s", word.text);
    return word.status;
}

int stg_node_check_shared(const struct stg_node *n, const char *dir, bool leader_ok)
{
    /* The leader leaves a file with a random name; every local rank must see
     * it.  The status word goes first, so nobody looks for a file that the
     * leader could not write. */
    struct {
        int ok;
        char name[64];
    } probe = {0, ""};
    int rc = STG_OK;
    if (n->is_leader && leader_ok) {
        unsigned long long nonce = ((unsigned long long)getpid() << 32) ^
                                   (unsigned long long)time(NULL) ^
                                   (unsigned long long)(uintptr_t)&probe;
        snprintf(probe.name, sizeof probe.name, ".probe-%016llx", nonce);
        char *path = stg_xasprintf("%s/%s", dir, probe.name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = stg_err_set(STG_EFAIL, "cannot write in '%s': %s", dir, strerror(errno));
        else
            close(fd);
        probe.ok = fd >= 0;
        free(path);
    }
    if (n->local_size > 1) {
        MPI_Request req;
        MPI_Ibcast(&probe, (int)sizeof probe, MPI_BYTE, 0, n->local, &req);
        stg_node_wait(&req);
        if (!n->is_leader && probe.ok) {
            char *path = stg_xasprintf("%s/%s", dir, probe.name);
            struct stat st;
            if (lstat(path, &st) < 0)
                rc = stg_err_set(STG_EFAIL, "rank %d does not see '%s' that its node leader "
                                 "wrote: the ranks of this node do not share '%s'",
                                 n->rank, path, dir);
            free(path);
        }
        /* The leader removes the probe only once every local rank looked. */
        MPI_Ibarrier(n->local, &req);
        stg_node_wait(&req);
    }
    if (n->is_leader && probe.ok) {
        char *path = stg_xasprintf("%s/%s", dir, probe.name);
        unlink(path);
        free(path);
    }
    return rc;
}

char *stg_node_gather_text(const struct stg_node *n, const char *mine)
{
    if (!n->is_leader)
        return NULL;
    int len = (int)strlen(mine), *lens = NULL, *displs = NULL, total = 0;
    char *all = NULL;
    if (n->is_root) {
        lens = stg_xcalloc((size_t)n->nnodes, sizeof *lens);
        displs = stg_xcalloc((size_t)n->nnodes, sizeof *displs);
    }
    MPI_Request req;
    /* The sizes first, so that the root can place every node's text. */
    MPI_Igather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, n->leaders, &req);
    stg_node_wait(&req);
    if (n->is_root) {
        for (int i = 0; i < n->nnodes; i++) {
            displs[i] = total;
            total += lens[i];
        }
        all = stg_xmalloc((size_t)total + 1);
        all[total] = '\0';
    }
    MPI_Igatherv(mine, len, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, n->leaders, &req);
    stg_node_wait(&req);
    free(lens);
    free(displs);
    return all;
}
