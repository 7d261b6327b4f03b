/* SPDX-License-Identifier: MIT */
/*
 * t-watchdog: what a rank checks whenever it waits, on the fake cluster
 * (tests/unit-mpi.t; 3 nodes of 2 ranks).
 *
 *   t-watchdog              the watchdog set up on every rank (the root
 *                           knows every node's name), the time limit set
 *                           and cleared, phases that end in time, a wait
 *                           that ends when its request does, checks with
 *                           nothing due, and a cleanup armed then disarmed
 *   t-watchdog timeout-leader DIR   a node's leader never reaches the end
 *                           of a phase: with a 1 s time limit the job ends
 *                           with status 3 and the root names the phase and
 *                           the node (unit-mpi.t checks the status and
 *                           stderr; DIR gets a file from every cleanup
 *                           that ran)
 *   t-watchdog timeout-rank DIR     the same with a rank that is not a leader
 *   t-watchdog signal DIR   the root gets SIGTERM while it waits: its
 *                           cleanup runs, it says so, the job ends
 */
#include "config.h"

#include <fcntl.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agree.h"
#include "log.h"
#include "mpitap.h"
#include "node.h"
#include "util.h"
#include "watchdog.h"

static struct stg_node n;
static struct stg_watchdog w;
static const char *mark_dir;

/* A cleanup: leaves DIR/cleanup-RANK. */
static void mark(void *arg)
{
    (void)arg;
    char *p = stg_xasprintf("%s/cleanup-%d", mark_dir, n.rank);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
    free(p);
}

/* The watchdog modes: these end the job, never return. */
static void stall(const char *mode, const char *dir)
{
    char msg[STG_MSG_MAX];
    mark_dir = dir;
    stg_watchdog_on_cleanup(&w, mark, NULL);
    if (strcmp(mode, "signal") == 0) {
        stg_watchdog_phase(&w, "signal-phase");
        if (n.is_root) {
            /* Noted by the handler, acted on where the root waits: for a
             * word that never comes, so that the others wait for it. */
            raise(SIGTERM);
            int word;
            MPI_Request req;
            MPI_Irecv(&word, 1, MPI_INT, 1, 77, n.world, &req);
            stg_wait(&w, &req);
            fprintf(stderr, "t-watchdog: the root's wait ended after a signal\n");
        } else {
            stg_agree(&w, n.world, STG_OK, msg);
            fprintf(stderr, "t-watchdog: rank %d: the agreement ended without the root\n",
                    n.rank);
        }
        exit(99);
    }
    stg_watchdog_set_timeout(&w, 1);
    stg_watchdog_phase(&w, "slow-phase");
    bool late = n.leader_rank == n.nnodes - 1;    /* the last node's leader */
    if (strcmp(mode, "timeout-rank") == 0)        /* or the last rank, not a leader */
        late = !n.is_leader && n.rank == n.size - 1;
    if (late)
        for (;;)
            sleep(1);           /* never arrives, never checks */
    stg_agree(&w, n.world, STG_OK, msg);
    fprintf(stderr, "t-watchdog: rank %d: the agreement ended without the late rank\n", n.rank);
    exit(99);
}

static int cleanups;

static void count_cleanup(void *arg)
{
    (void)arg;
    cleanups++;
}

static void test_init(void)
{
    /* every rank's node name, by leader rank, as the root should know them */
    char (*names)[256] = stg_xcalloc((size_t)n.size, sizeof *names);
    int *leader_of = stg_xcalloc((size_t)n.size, sizeof *leader_of);
    MPI_Allgather(n.name, sizeof n.name, MPI_CHAR, names, sizeof *names, MPI_CHAR, n.world);
    MPI_Allgather(&n.leader_rank, 1, MPI_INT, leader_of, 1, MPI_INT, n.world);
    bool good = w.node == &n && !w.fired && !w.in_phase && w.deadline == 0 && !w.cleanup &&
                (n.is_leader ? w.notes != MPI_COMM_NULL : w.notes == MPI_COMM_NULL);
    mt_ok(good, mt_fmt("leader %d, notes %s", n.is_leader,
                       w.notes == MPI_COMM_NULL ? "none" : "set"),
          "stg_watchdog_init: no limit, no phase, no cleanup; the leaders, and only they, "
          "have a communicator for the notes");
    good = true;
    char seen[512] = "";
    for (int r = 0; n.is_root && r < n.size; r++) {
        int l = leader_of[r];
        if (l < 0)
            continue;
        good = good && w.names && strcmp(w.names[l], names[r]) == 0;
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %d:%s", l,
                 w.names ? w.names[l] : "?");
    }
    mt_ok(good && (n.is_root ? w.names != NULL : w.names == NULL), seen,
          "... the root knows every node's name by leader rank, for its messages");
    free(names);
    free(leader_of);
}

static void test_timeout(void)
{
    stg_watchdog_set_timeout(&w, 600);
    double d = w.deadline - w.start;
    stg_watchdog_set_timeout(&w, 0);
    double none = w.deadline;
    stg_watchdog_set_timeout(&w, -5);
    mt_ok(d > 600 - 1e-6 && d < 600 + 1e-6 && none == 0 && w.deadline == 0,
          mt_fmt("600 s: %.3f; 0: %.3f; -5: %.3f", d, none, w.deadline),
          "stg_watchdog_set_timeout: a limit from the run's start; 0 or less: none");
}

static void test_phases(void)
{
    char msg[STG_MSG_MAX];
    stg_watchdog_set_timeout(&w, 600);
    int tag = w.phase_tag, rc = STG_OK;
    bool closed = true;
    static const char *const phases[] = {"plan", "prepare", "stream"};
    for (int i = 0; i < 3; i++) {
        stg_watchdog_phase(&w, phases[i]);
        bool open = w.in_phase && strcmp(w.phase, phases[i]) == 0;
        int r = stg_agree(&w, n.world, STG_OK, msg);
        rc = rc ? rc : r;
        closed = closed && open && !w.in_phase;
    }
    mt_ok(rc == STG_OK && closed && w.phase_tag == tag + 3 && !w.fired,
          mt_fmt("status %d, closed %d, tag %d -> %d", rc, closed, tag, w.phase_tag),
          "three phases under a distant limit: each opened, ended by its agreement, "
          "none timed out");
    /* a phase on the leaders, not the world: the watchdog's phase stays open */
    stg_watchdog_phase(&w, "leaders");
    if (n.is_leader)
        rc = stg_agree(&w, n.leaders, STG_OK, msg);
    bool open = w.in_phase;
    rc = rc ? rc : stg_agree(&w, n.world, STG_OK, msg);
    mt_ok(rc == STG_OK && open && !w.in_phase, mt_fmt("status %d, open %d", rc, open),
          "... an agreement on the leaders alone leaves the phase open; the world's ends it");
    stg_watchdog_set_timeout(&w, 0);
}

static void test_wait(void)
{
    /* every rank receives a word from the next, sent late by some */
    int next = (n.rank + 1) % n.size, prev = (n.rank + n.size - 1) % n.size;
    int word = -1, mine = 1000 + n.rank;
    MPI_Request rreq, sreq;
    MPI_Irecv(&word, 1, MPI_INT, next, 5, n.world, &rreq);
    if (n.rank % 2)
        usleep(100 * 1000);
    MPI_Isend(&mine, 1, MPI_INT, prev, 5, n.world, &sreq);
    stg_wait(&w, &rreq);
    stg_wait(&w, &sreq);
    mt_ok(word == 1000 + next && rreq == MPI_REQUEST_NULL && sreq == MPI_REQUEST_NULL,
          mt_fmt("word %d", word), "stg_wait: back once its request is complete, "
          "with what it brought");
    stg_watchdog_check(&w);
    stg_watchdog_check(NULL);
    mt_ok(true, NULL, "stg_watchdog_check with nothing due (and with no watchdog): "
          "it returns");
}

static void test_cleanup(void)
{
    stg_watchdog_on_cleanup(&w, count_cleanup, NULL);
    bool armed = w.cleanup == count_cleanup;
    stg_watchdog_check(&w);
    char msg[STG_MSG_MAX];
    stg_watchdog_phase(&w, "with-cleanup");
    int rc = stg_agree(&w, n.world, STG_OK, msg);
    stg_watchdog_on_cleanup(&w, NULL, NULL);
    mt_ok(armed && rc == STG_OK && cleanups == 0 && w.cleanup == NULL,
          mt_fmt("armed %d, %d cleanups", armed, cleanups),
          "a cleanup armed: not run while nothing goes wrong; then disarmed");
}

int main(int argc, char **argv)
{
    mt_start(&argc, &argv, &n, &w);
    if (argc > 2)
        stall(argv[1], argv[2]);
    test_init();
    test_timeout();
    test_phases();
    test_wait();
    test_cleanup();
    mt_diag("%d ranks on %d nodes", n.size, n.nnodes);
    return mt_finish(&n, &w, mt_done());
}
