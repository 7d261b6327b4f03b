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
static void (*on_signal_cleanup)(void *);
static void *on_signal_arg;

static void note_signal(int sig)
{
    caught = sig;
}

void stg_node_on_signal(void (*cleanup)(void *), void *arg)
{
    on_signal_cleanup = cleanup;
    on_signal_arg = arg;
}

void stg_node_check_signal(void)
{
    int sig = caught;
    if (!sig)
        return;
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
    n->votes = MPI_COMM_NULL;
    if (n->is_leader) {
        MPI_Comm_rank(n->leaders, &n->leader_rank);
        MPI_Comm_size(n->leaders, &n->nnodes);
        /* Votes during the stream on a communicator of their own: collectives
         * on one communicator must be called in the same order everywhere,
         * and votes and broadcasts interleave differently on each node. */
        MPI_Comm_dup(n->leaders, &n->votes);
    }
    /* Everyone learns the node count (for --stats and messages). */
    MPI_Bcast(&n->nnodes, 1, MPI_INT, 0, n->world);
    const char *sn = getenv("SLURMD_NODENAME");
    if (sn && *sn)
        snprintf(n->name, sizeof n->name, "%s", sn);
    else if (gethostname(n->name, sizeof n->name - 1) < 0)
        snprintf(n->name, sizeof n->name, "rank%d", n->rank);
    return STG_OK;
}

void stg_node_fini(struct stg_node *n)
{
    if (n->votes != MPI_COMM_NULL)
        MPI_Comm_free(&n->votes);
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
        if (usec) {
            struct timespec ts = {0, usec * 1000};
            nanosleep(&ts, NULL);
        }
        usec = usec ? (usec < 2000 ? usec * 2 : 2000) : 10;
    }
}

int stg_agree(const struct stg_node *n, MPI_Comm comm, int status, char msg[STG_MSG_MAX])
{
    int rank;
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
