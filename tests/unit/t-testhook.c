/* SPDX-License-Identifier: MIT */
/*
 * t-testhook: the test suite's hooks, without MPI (a node made by hand,
 * a watchdog with nothing armed).  Unset or empty, no hook does anything;
 * STAGE_PY_TEST_CORRUPT=NODE[:SEQ] names a chunk on NODE's leader alone;
 * STAGE_PY_TEST_PAUSE=POINT:DIR leaves DIR/POINT and waits at POINT, and
 * only there, until DIR/POINT.go appears (made here by another thread once
 * the marker is there); STAGE_PY_TEST_STALL=NODE:PHASE hangs NODE's leader
 * at PHASE, and nobody else anywhere else.
 */
#include "config.h"

#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "node.h"
#include "tap.h"
#include "testhook.h"
#include "util.h"
#include "watchdog.h"

static char top[4096];

/* A node as stg_node_init() would leave it, without MPI. */
static struct stg_node node(const char *name, bool leader)
{
    struct stg_node n;
    memset(&n, 0, sizeof n);
    n.world = n.local = n.leaders = MPI_COMM_NULL;
    n.size = n.local_size = n.nnodes = 1;
    n.is_leader = leader;
    n.leader_rank = leader ? 0 : -1;
    snprintf(n.name, sizeof n.name, "%s", name);
    return n;
}

/* A watchdog with nothing armed (no MPI): no deadline, no word to wait
 * for, so that stg_watchdog_check() looks at signals alone. */
static struct stg_watchdog watchdog(const struct stg_node *n)
{
    struct stg_watchdog w;
    memset(&w, 0, sizeof w);
    w.node = n;
    w.notes = MPI_COMM_NULL;
    w.stop_req = MPI_REQUEST_NULL;
    return w;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* --- the one who lets a pause go --- */

struct releaser {
    const char *marker, *go;
    bool saw_marker;        /* the marker appeared while the pause waited */
};

static void *release(void *arg)
{
    struct releaser *r = arg;
    for (int i = 0; i < 3000 && !r->saw_marker; i++) {
        r->saw_marker = exists(r->marker);
        if (!r->saw_marker)
            sleep_ms(10);
    }
    sleep_ms(100);      /* a pause that does not wait would be back by now */
    fx_write_text(r->go, "", 0644);
    return NULL;
}

static void test_unset(void)
{
    unsetenv("STAGE_PY_TEST_STALL");
    unsetenv("STAGE_PY_TEST_CORRUPT");
    unsetenv("STAGE_PY_TEST_PAUSE");
    struct stg_node n = node("node1", true);
    struct stg_watchdog w = watchdog(&n);
    alarm(30);
    stg_test_stall(&w, "plan");
    ok(1, "STAGE_PY_TEST_STALL unset: stg_test_stall() returns");
    ok(stg_test_corrupt_seq(&n) == -1, "STAGE_PY_TEST_CORRUPT unset: -1");
    stg_test_pause(&w, "after-scan");
    stg_test_pause(NULL, "reserved");
    ok(1, "STAGE_PY_TEST_PAUSE unset: stg_test_pause() returns, with a watchdog or none");
    setenv("STAGE_PY_TEST_STALL", "", 1);
    setenv("STAGE_PY_TEST_CORRUPT", "", 1);
    setenv("STAGE_PY_TEST_PAUSE", "", 1);
    stg_test_stall(&w, "plan");
    stg_test_pause(&w, "after-scan");
    ok(stg_test_corrupt_seq(&n) == -1, "... each empty: nothing either");
    alarm(0);
    unsetenv("STAGE_PY_TEST_STALL");
    unsetenv("STAGE_PY_TEST_CORRUPT");
    unsetenv("STAGE_PY_TEST_PAUSE");
}

static void test_corrupt(void)
{
    struct stg_node leader1 = node("node1", true), leader2 = node("node2", true);
    struct stg_node rank2 = node("node2", false), leader22 = node("node22", true);
    setenv("STAGE_PY_TEST_CORRUPT", "node2", 1);
    ok(stg_test_corrupt_seq(&leader2) == 0, "CORRUPT=node2: chunk 0 on node2's leader");
    ok(stg_test_corrupt_seq(&rank2) == -1 && stg_test_corrupt_seq(&leader1) == -1 &&
       stg_test_corrupt_seq(&leader22) == -1,
       "... -1 on another rank of node2, on node1's leader and on node22's");
    setenv("STAGE_PY_TEST_CORRUPT", "node2:7", 1);
    ok(stg_test_corrupt_seq(&leader2) == 7, "CORRUPT=node2:7: chunk 7 on node2's leader");
    ok(stg_test_corrupt_seq(&rank2) == -1 && stg_test_corrupt_seq(&leader1) == -1 &&
       stg_test_corrupt_seq(&leader22) == -1, "... -1 everywhere else");
    setenv("STAGE_PY_TEST_CORRUPT", "node22:3", 1);
    ok(stg_test_corrupt_seq(&leader22) == 3 && stg_test_corrupt_seq(&leader2) == -1,
       "CORRUPT=node22:3: node22's leader, not node2's (a name is matched whole)");
    setenv("STAGE_PY_TEST_CORRUPT", "node:1", 1);
    ok(stg_test_corrupt_seq(&leader2) == -1 && stg_test_corrupt_seq(&leader1) == -1,
       "CORRUPT=node:1: no node (node1 and node2 only start so)");
    unsetenv("STAGE_PY_TEST_CORRUPT");
}

/* Two test points: a pause at point with STAGE_PY_TEST_PAUSE=point:top
 * (w may be NULL) leaves its marker and waits until another thread, once
 * it sees the marker, makes the marker's .go. */
static void pause_at(struct stg_watchdog *w, const char *point, const char *desc)
{
    char *var = stg_xasprintf("%s:%s", point, top);
    char *marker = fx_path(top, point), *go = stg_xasprintf("%s.go", marker);
    setenv("STAGE_PY_TEST_PAUSE", var, 1);
    struct releaser r = {marker, go, false};
    pthread_t t;
    bool started = pthread_create(&t, NULL, release, &r) == 0;
    alarm(60);
    stg_test_pause(w, point);
    bool went = exists(go);     /* back only once .go is there */
    alarm(0);
    if (started)
        pthread_join(t, NULL);
    ok(started && r.saw_marker && exists(marker), "PAUSE=%s:DIR, %s: DIR/%s made while it "
       "waits", point, desc, point);
    ok(went, "... and it goes on once DIR/%s.go exists", point);
    unlink(marker);
    unlink(go);
    unsetenv("STAGE_PY_TEST_PAUSE");
    free(var);
    free(marker);
    free(go);
}

static void test_pause(void)
{
    struct stg_node n = node("node1", true);
    struct stg_watchdog w = watchdog(&n);
    pause_at(&w, "after-scan", "a watchdog with nothing armed");
    pause_at(NULL, "reserved", "no watchdog");

    /* another point: no pause, no marker */
    char *var = stg_xasprintf("after-scan:%s", top);
    char *marker = fx_path(top, "reserved"), *scan = fx_path(top, "after-scan");
    setenv("STAGE_PY_TEST_PAUSE", var, 1);
    alarm(30);
    stg_test_pause(&w, "reserved");
    stg_test_pause(&w, "after-sca");
    stg_test_pause(&w, "after-scan-2");
    alarm(0);
    ok(!exists(marker) && !exists(scan), "PAUSE=after-scan:DIR: other points (reserved, "
       "after-sca, after-scan-2) go on at once, leaving no marker");
    setenv("STAGE_PY_TEST_PAUSE", "after-scan", 1);
    alarm(30);
    stg_test_pause(&w, "after-scan");
    alarm(0);
    ok(1, "PAUSE=after-scan (no ':DIR'): no pause");
    unsetenv("STAGE_PY_TEST_PAUSE");
    free(var);
    free(marker);
    free(scan);
}

/* Does stg_test_stall(phase) on n still run after 300 ms?  In a child. */
static bool stalls(const struct stg_node *n, const char *phase)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct stg_watchdog w = watchdog(n);
        stg_test_stall(&w, phase);
        _exit(0);
    }
    if (pid < 0)
        return false;
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 30 && done == 0; i++) {
        sleep_ms(10);
        done = waitpid(pid, &status, WNOHANG);
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return true;
    }
    return false;
}

static void test_stall(void)
{
    struct stg_node leader1 = node("node1", true), rank1 = node("node1", false);
    struct stg_node leader2 = node("node2", true);
    setenv("STAGE_PY_TEST_STALL", "node1:plan", 1);
    ok(stalls(&leader1, "plan"), "STALL=node1:plan: node1's leader hangs in phase plan");
    ok(!stalls(&leader1, "stream") && !stalls(&leader1, "pla"),
       "... not in another phase (stream, pla)");
    ok(!stalls(&rank1, "plan") && !stalls(&leader2, "plan"),
       "... nor another rank of node1, nor node2's leader");
    unsetenv("STAGE_PY_TEST_STALL");
}

int main(void)
{
    fx_bail_on_alarm("Bail out! t-testhook: a hook hung\n");
    if (!fx_tmpdir(top, sizeof top, "t-testhook"))
        return 1;
    test_unset();
    test_corrupt();
    test_pause();
    test_stall();
    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
