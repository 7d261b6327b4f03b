/* SPDX-License-Identifier: MIT */
/*
 * t-agree: the agreement that ends a phase and the collectives the
 * commands share, on the fake cluster (tests/unit-mpi.t; 3 nodes of 2
 * ranks): stg_agree (which rank's status and message win),
 * stg_gather_text, stg_agree_shared_dir.  The watchdog that they wait
 * through is t-watchdog's.
 */
#include "config.h"

#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agree.h"
#include "fixture.h"
#include "log.h"
#include "mpitap.h"
#include "node.h"
#include "util.h"
#include "watchdog.h"

static struct stg_node n;
static struct stg_watchdog w;
static char (*names)[256];  /* every rank's node name, by world rank */
static int *leader_of;      /* every rank's leader_rank, by world rank */

/* One phase on the world: this rank fails with status (STG_OK: it does
 * not), with an error of its own recorded first when own is not NULL.
 * Returns the agreed status; OUT msg. */
static int phase(int status, const char *own, char msg[STG_MSG_MAX])
{
    stg_err_take(NULL, 0);
    if (own)
        stg_err_set(status == STG_OK ? STG_EFAIL : status, "%s", own);
    return mt_agree(&w, &n, "test", status, msg);
}

/* The agreed status and message on every rank. */
static void expect(int rc, const char *msg, int want_rc, const char *want_msg, const char *what)
{
    bool good = rc == want_rc && strcmp(msg, want_msg) == 0;
    mt_ok(good, good ? NULL : mt_fmt("status %d, message '%s'; want %d, '%s'", rc, msg, want_rc,
                                     want_msg), "%s", what);
}

static void test_agree(void)
{
    char msg[STG_MSG_MAX], want[STG_MSG_MAX + 300];
    int me = n.rank, hi = n.size - 1, lo = 1, mid = n.size / 2;
    int rc;

    rc = phase(STG_OK, NULL, msg);
    expect(rc, msg, STG_OK, "", "every rank OK: STG_OK and an empty message on every rank");
    rc = phase(STG_OK, NULL, msg);
    expect(rc, msg, STG_OK, "", "... again, in a second phase");

    rc = phase(me == hi ? STG_EFAIL : STG_OK, me == hi ? "disk full on the last rank" : NULL, msg);
    snprintf(want, sizeof want, "%s: disk full on the last rank", names[hi]);
    expect(rc, msg, STG_EFAIL, want, "the last rank fails: its status and '<node>: message' "
                                     "on every rank");

    rc = phase(me == 0 ? STG_EFAIL : STG_OK, me == 0 ? "the root failed" : NULL, msg);
    snprintf(want, sizeof want, "%s: the root failed", names[0]);
    expect(rc, msg, STG_EFAIL, want, "the root fails: the same");

    rc = phase(me == lo ? STG_EINTERNAL : me == hi ? STG_EFAIL : STG_OK,
               me == lo ? "low" : me == hi ? "high" : NULL, msg);
    snprintf(want, sizeof want, "%s: low", names[lo]);
    expect(rc, msg, STG_EINTERNAL, want, "two ranks fail: the lower rank's status and message win");
    rc = phase(me == lo ? STG_EFAIL : me == hi ? STG_EINTERNAL : STG_OK,
               me == lo ? "low" : me == hi ? "high" : NULL, msg);
    snprintf(want, sizeof want, "%s: low", names[lo]);
    expect(rc, msg, STG_EFAIL, want, "... whatever their statuses");

    rc = phase(me == lo ? STG_EFAIL : me == hi ? STG_EINTERNAL : STG_OK,
               me == hi ? "the cause" : NULL, msg);
    snprintf(want, sizeof want, "%s: the cause", names[hi]);
    expect(rc, msg, STG_EINTERNAL, want, "a lower rank failing as a consequence (no error of its "
                                         "own) ranks below a higher one with its own error");
    rc = phase(me == lo || me == hi ? STG_EFAIL : me == mid ? STG_EINTERNAL : STG_OK,
               me == hi ? "cause one" : me == mid ? "cause two" : NULL, msg);
    snprintf(want, sizeof want, "%s: cause two", names[mid]);
    expect(rc, msg, STG_EINTERNAL, want, "... and of two with errors of their own, the lower wins");

    rc = phase(me == lo ? STG_EFAIL : me == hi ? STG_EINTERNAL : STG_OK, NULL, msg);
    snprintf(want, sizeof want, "%s: ", names[lo]);
    mt_ok(rc == STG_EFAIL && strncmp(msg, want, strlen(want)) == 0 && strlen(msg) > strlen(want),
          mt_fmt("status %d, message '%s'", rc, msg),
          "only consequences: the lowest failing rank's status, its node named");

    rc = phase(me == hi ? STG_EUSAGE : STG_OK, me == hi ? "unknown option --frobnicate" : NULL,
               msg);
    expect(rc, msg, STG_EUSAGE, "unknown option --frobnicate",
           "STG_EUSAGE: the message as it is, without a node name");
    rc = phase(me == hi ? STG_EUSAGE : STG_OK, NULL, msg);
    snprintf(want, sizeof want, "%s:", names[hi]);
    mt_ok(rc == STG_EUSAGE && msg[0] && strncmp(msg, want, strlen(want)) != 0,
          mt_fmt("status %d, message '%s'", rc, msg),
          "... also without a message of its own: some text, no node name");

    rc = phase(STG_OK, me == mid ? "handled, not failed" : NULL, msg);
    expect(rc, msg, STG_OK, "", "an error recorded by a rank that brings STG_OK: nobody failed");

    rc = phase(me == mid ? STG_EFAIL : STG_OK,
               me == mid ? "name 'a\nstage-py: done'" : NULL, msg);
    snprintf(want, sizeof want, "%s: name 'a\\nstage-py: done'", names[mid]);
    expect(rc, msg, STG_EFAIL, want, "a newline in the message arrives escaped, one line");

    char *big = stg_xmalloc(STG_MSG_MAX + 1);
    memset(big, 'x', STG_MSG_MAX);
    big[STG_MSG_MAX] = '\0';
    rc = phase(me == hi ? STG_EFAIL : STG_OK, me == hi ? big : NULL, msg);
    free(big);
    snprintf(want, sizeof want, "%s: xxx", names[hi]);
    mt_ok(rc == STG_EFAIL && strlen(msg) == STG_MSG_MAX - 1 &&
              strncmp(msg, want, strlen(want)) == 0,
          mt_fmt("status %d, %zu bytes", rc, strlen(msg)),
          "a message of STG_MSG_MAX bytes: cut to fit, node name first");

    /* On the leaders alone (not the world: no watchdog phase). */
    rc = STG_OK;
    msg[0] = '\0';
    if (n.is_leader) {
        stg_err_take(NULL, 0);
        int fail = n.leader_rank == n.nnodes - 1;
        if (fail)
            stg_err_set(STG_EFAIL, "leader %d failed", n.leader_rank);
        rc = stg_agree(&w, n.leaders, fail ? STG_EFAIL : STG_OK, msg);
        stg_err_take(NULL, 0);
    }
    int last_leader = 0;
    for (int r = 0; r < n.size; r++)
        if (leader_of[r] == n.nnodes - 1)
            last_leader = r;
    snprintf(want, sizeof want, "%s: leader %d failed", names[last_leader], n.nnodes - 1);
    mt_ok(!n.is_leader || (rc == STG_EFAIL && strcmp(msg, want) == 0),
          mt_fmt("status %d, message '%s', want '%s'", rc, msg, want),
          "on the leaders' communicator: the last leader's failure reaches every leader");

    /* On each node's ranks: each node agrees on its own last rank's error. */
    stg_err_take(NULL, 0);
    int fail = n.local_size > 1 && n.local_rank == n.local_size - 1;
    if (fail)
        stg_err_set(STG_EFAIL, "local rank %d of %s", n.local_rank, n.name);
    rc = stg_agree(&w, n.local, fail ? STG_EFAIL : STG_OK, msg);
    stg_err_take(NULL, 0);
    if (n.local_size > 1)
        snprintf(want, sizeof want, "%s: local rank %d of %s", n.name, n.local_size - 1, n.name);
    else
        want[0] = '\0';
    expect(rc, msg, n.local_size > 1 ? STG_EFAIL : STG_OK, want,
           "on each node's communicator: every node agrees on its own last rank's error");
}

static void test_gather(void)
{
    /* Leader i brings "[i:name]" and i stars: texts of different lengths. */
    char mine[512];
    int len = snprintf(mine, sizeof mine, "[%d:%s]", n.leader_rank, n.name);
    for (int i = 0; n.is_leader && i < n.leader_rank && len < 500; i++)
        mine[len++] = '*', mine[len] = '\0';
    char *all = stg_gather_text(&w, n.is_leader ? mine : "");
    struct stg_buf want = {0};
    stg_buf_put(&want, "", 0);
    for (int l = 0; l < n.nnodes; l++)
        for (int r = 0; r < n.size; r++)
            if (leader_of[r] == l) {
                stg_buf_printf(&want, "[%d:%s]", l, names[r]);
                for (int i = 0; i < l; i++)
                    stg_buf_put(&want, "*", 1);
            }
    if (n.is_root)
        mt_is_str(all, want.s, "stg_gather_text: every leader's text, in leader order, on the root");
    else
        mt_ok(all == NULL, mt_fmt("got '%s'", all ? all : ""),
              "stg_gather_text: every leader's text, in leader order, on the root (NULL elsewhere)");
    free(all);
    free(want.s);
    const char *some = n.is_leader && n.leader_rank == n.nnodes - 1 ? "only me" : "";
    all = stg_gather_text(&w, some);
    mt_ok(!n.is_root || (all && strcmp(all, n.nnodes > 1 ? "only me" : "") == 0),
          mt_fmt("got '%s'", all ? all : "(null)"), "... empty texts add nothing");
    free(all);
}

static void test_shared_dir(void)
{
    char base[4096] = "";
    if (n.is_root && !fx_tmpdir(base, sizeof base, "t-agree"))
        base[0] = '\0';
    MPI_Bcast(base, sizeof base, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!base[0]) {
        mt_ok(false, NULL, "a temporary directory");
        return;
    }
    char *shared = stg_xasprintf("%s/shared", base);
    char *own = stg_xasprintf("%s/rank-%d", base, n.rank);
    char *missing = stg_xasprintf("%s/missing/rank-%d", base, n.rank);
    mkdir(own, 0700);
    if (n.is_root)
        mkdir(shared, 0700);
    MPI_Barrier(MPI_COMM_WORLD);
    char msg[STG_MSG_MAX], err[STG_MSG_MAX], want[STG_MSG_MAX + 300];

    /* One directory that every rank sees. */
    stg_err_take(NULL, 0);
    int rc = stg_agree_shared_dir(&w, shared, true);
    stg_err_take(err, sizeof err);
    mt_ok(rc == STG_OK, mt_fmt("status %d: %s", rc, err),
          "stg_agree_shared_dir: a directory every rank of a node sees: OK on every rank");
    int arc = mt_agree(&w, &n, "shared", rc, msg);
    mt_ok(arc == STG_OK && fx_entries(shared, NULL) == 0,
          mt_fmt("%d entries left", fx_entries(shared, NULL)),
          "... and the leaders' probe files are gone");

    /* Every rank its own directory: every rank but the leaders fails. */
    rc = stg_agree_shared_dir(&w, own, true);
    stg_err_get(err, sizeof err);
    char *seen = stg_xasprintf("rank %d does not see '%s/", n.rank, own);
    bool good = n.is_leader ? rc == STG_OK && !err[0]
                            : rc == STG_EFAIL && strstr(err, seen) && strstr(err, "do not share");
    free(seen);
    mt_ok(good, mt_fmt("status %d: '%s'", rc, err),
          "each rank its own directory: the leaders OK, every other rank fails, saying so");
    int first = -1;
    for (int r = n.size - 1; r >= 0; r--)
        if (leader_of[r] < 0)
            first = r;
    arc = mt_agree(&w, &n, "shared", rc, msg);
    snprintf(want, sizeof want, "%s: rank %d does not see", first >= 0 ? names[first] : "",
             first);
    mt_ok(first < 0 ? arc == STG_OK : arc == STG_EFAIL && strncmp(msg, want, strlen(want)) == 0,
          mt_fmt("status %d, message '%s'", arc, msg),
          "... and the agreement names the lowest such rank and its node");

    /* The ranks of the last node see another directory than their leader. */
    int node_leader = n.leader_rank;
    MPI_Bcast(&node_leader, 1, MPI_INT, 0, n.local);
    bool odd = node_leader == n.nnodes - 1;
    rc = stg_agree_shared_dir(&w, odd && !n.is_leader ? own : shared, true);
    stg_err_take(err, sizeof err);
    mt_ok(rc == (odd && !n.is_leader ? STG_EFAIL : STG_OK), mt_fmt("status %d: '%s'", rc, err),
          "the ranks of one node see another directory than their leader: they alone fail");

    /* leader_ok false: nothing is checked. */
    rc = stg_agree_shared_dir(&w, own, false);
    stg_err_take(err, sizeof err);
    mt_ok(rc == STG_OK, mt_fmt("status %d: '%s'", rc, err),
          "leader_ok false: nothing to look for, OK everywhere");

    /* A leader that cannot write there: it fails; its ranks do not look. */
    rc = stg_agree_shared_dir(&w, missing, true);
    stg_err_take(err, sizeof err);
    snprintf(want, sizeof want, "cannot write in '%s': ", missing);
    good = n.is_leader ? rc == STG_EFAIL && strncmp(err, want, strlen(want)) == 0
                       : rc == STG_OK;
    mt_ok(good, mt_fmt("status %d: '%s'", rc, err),
          "a directory the leader cannot write in: the leader fails, naming it; its ranks do not");

    MPI_Barrier(MPI_COMM_WORLD);
    if (n.is_root)
        stg_rm_tree_at(AT_FDCWD, base);
    free(shared);
    free(own);
    free(missing);
}

int main(int argc, char **argv)
{
    mt_start(&argc, &argv, &n, &w);
    names = stg_xcalloc((size_t)n.size, sizeof *names);
    leader_of = stg_xcalloc((size_t)n.size, sizeof *leader_of);
    MPI_Allgather(n.name, sizeof n.name, MPI_CHAR, names, sizeof *names, MPI_CHAR, n.world);
    MPI_Allgather(&n.leader_rank, 1, MPI_INT, leader_of, 1, MPI_INT, n.world);
    if (n.size < 4 || n.nnodes < 2) {
        if (n.rank == 0)
            printf("1..0 # SKIP needs 2 nodes and 4 ranks\n");
    } else {
        /* A limit far away: the phases below must not trip it. */
        stg_watchdog_set_timeout(&w, 600);
        test_agree();
        test_gather();
        test_shared_dir();
        mt_diag("%d ranks on %d nodes", n.size, n.nnodes);
    }
    free(names);
    free(leader_of);
    return mt_finish(&n, &w, n.size < 4 || n.nnodes < 2 ? 0 : mt_done());
}
