/* SPDX-License-Identifier: MIT */
/*
 * watchdog: the --timeout deadline, the root's word to stop, and signals.
 */
#include "config.h"

#include "watchdog.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* The signal a handler noted; 0: none. */
static volatile sig_atomic_t caught;
/* The watchdog whose cleanup exit() must run: an atexit() handler takes
 * no argument. */
static struct stg_watchdog *armed;
/* Ranks other than the root wait this much longer, so that the root, which
 * knows which nodes are late, normally speaks first. */
#define DEADLINE_GRACE 3.0
/* The tags of the root's word to stop and of a leader's word of whom its
 * stream waits for, on the notes communicator (phase notes use the phase
 * number). */
#define TAG_STOP 32000
#define TAG_HELD 32001

static void note_signal(int sig)
{
    caught = sig;
}

static void run_cleanup(struct stg_watchdog *w)
{
    if (w && w->cleanup) {
        void (*fn)(void *) = w->cleanup;
        w->cleanup = NULL;
        fn(w->cleanup_arg);
    }
}

static void cleanup_at_exit(void)
{
    run_cleanup(armed);
}

void stg_watchdog_init(struct stg_watchdog *w, const struct stg_node *n)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    static bool registered;
    if (!registered)
        registered = atexit(cleanup_at_exit) == 0;

    memset(w, 0, sizeof *w);
    w->node = n;
    w->notes = MPI_COMM_NULL;
    w->stop_req = MPI_REQUEST_NULL;
    w->held_req = MPI_REQUEST_NULL;
    w->start = stg_now();
    if (n->is_leader) {
        /* The root learns every node's name once, for timeout messages. */
        MPI_Comm_dup(n->leaders, &w->notes);
        char mine[64];
        snprintf(mine, sizeof mine, "%s", n->name);
        if (n->is_root)
            w->names = stg_xcalloc((size_t)n->nnodes, sizeof *w->names);
        MPI_Gather(mine, 64, MPI_CHAR, w->names, 64, MPI_CHAR, 0, n->leaders);
        w->note_req = stg_xcalloc((size_t)n->nnodes, sizeof *w->note_req);
        w->note_buf = stg_xcalloc((size_t)n->nnodes, sizeof *w->note_buf);
        if (n->is_root) {
            w->held_by = stg_xmalloc((size_t)n->nnodes * sizeof *w->held_by);
            w->lag_by = stg_xmalloc((size_t)n->nnodes * sizeof *w->lag_by);
            for (int i = 0; i < n->nnodes; i++)
                w->held_by[i] = w->lag_by[i] = -1;
        }
    }
    if (n->is_leader && !n->is_root) {
        /* Posted now, tested where the leader waits: on a timeout the root
         * tells every leader to clean up and go, before it aborts the job. */
        MPI_Irecv(&w->stop_buf, 1, MPI_INT, 0, TAG_STOP, w->notes, &w->stop_req);
    }
}

void stg_watchdog_fini(struct stg_watchdog *w)
{
    if (armed == w)
        armed = NULL;
    if (w->stop_req != MPI_REQUEST_NULL) {
        MPI_Cancel(&w->stop_req);
        MPI_Wait(&w->stop_req, MPI_STATUS_IGNORE);
    }
    if (w->held_req != MPI_REQUEST_NULL)
        MPI_Wait(&w->held_req, MPI_STATUS_IGNORE);     /* received: held_settle */
    free(w->held_by);
    free(w->lag_by);
    free(w->names);
    free(w->note_req);
    free(w->note_buf);
    if (w->notes != MPI_COMM_NULL)
        MPI_Comm_free(&w->notes);
}

void stg_watchdog_on_cleanup(struct stg_watchdog *w, void (*cleanup)(void *), void *arg)
{
    w->cleanup = cleanup;
    w->cleanup_arg = arg;
    armed = cleanup ? w : NULL;
}

void stg_watchdog_set_tree(struct stg_watchdog *w, const int *parent)
{
    w->tree = parent;
}

void stg_watchdog_set_timeout(struct stg_watchdog *w, double seconds)
{
    w->deadline = seconds > 0 ? w->start + seconds : 0;
}

static bool send_word(struct stg_watchdog *w, int word);

void stg_watchdog_held_by(struct stg_watchdog *w, int leader)
{
    if (!w)
        return;
    const struct stg_node *n = w->node;
    if (leader < 0 || leader >= n->nnodes || !n->is_leader)
        return;
    if (n->is_root) {
        if (w->held_by[0] != leader)
            stg_log_info("the stream waits for %s", w->names[leader]);
        w->held_by[0] = leader;
        return;
    }
    send_word(w, leader);
}

/* A leader's word to the root (stg_watchdog_held_by()'s or
 * stg_watchdog_progress()'s), unless the last is still on its way.
 * Returns whether it went. */
static bool send_word(struct stg_watchdog *w, int word)
{
    if (w->held_req != MPI_REQUEST_NULL) {
        int done = 0;
        MPI_Test(&w->held_req, &done, MPI_STATUS_IGNORE);
        if (!done)
            return false;
    }
    w->held_buf = word;
    MPI_Isend(&w->held_buf, 1, MPI_INT, 0, TAG_HELD, w->notes, &w->held_req);
    w->held_sent++;
    return true;
}

/* The root: take the leaders' words of whom their streams wait for. */
static void drain_held(struct stg_watchdog *w)
{
    for (;;) {
        int flag = 0, v;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_HELD, w->notes, &flag, &st);
        if (!flag)
            return;
        MPI_Recv(&v, 1, MPI_INT, st.MPI_SOURCE, TAG_HELD, w->notes, MPI_STATUS_IGNORE);
        w->held_got++;
        if (st.MPI_SOURCE <= 0 || st.MPI_SOURCE >= w->node->nnodes || v >= w->node->nnodes)
            continue;
        if (v < 0) {    /* -(chunks received + 1): stg_watchdog_progress() */
            uint64_t got = (uint64_t)(-(int64_t)v - 1);
            w->lag_by[st.MPI_SOURCE] = w->sent > got ? (int64_t)(w->sent - got) : 0;
            continue;
        }
        if (w->held_by[st.MPI_SOURCE] != v)
            stg_log_info("%s: the stream waits for %s", w->names[st.MPI_SOURCE], w->names[v]);
        w->held_by[st.MPI_SOURCE] = v;
    }
}

void stg_watchdog_progress(struct stg_watchdog *w, uint64_t chunks)
{
    if (!w || !w->node->is_leader || w->node->is_root || stg_log_verbosity() < STG_VERBOSE)
        return;
    double now = stg_now();
    if (now < w->progress_next || chunks > INT_MAX - 1)
        return;
    if (send_word(w, -(int)chunks - 1))
        w->progress_next = now + 1;
}

void stg_watchdog_sent(struct stg_watchdog *w, uint64_t chunks)
{
    if (w)
        w->sent = chunks;
}

int stg_watchdog_slowest(struct stg_watchdog *w, uint64_t *lag)
{
    if (!w || !w->lag_by)
        return -1;
    drain_held(w);
    int slow = -1;
    for (int i = 1; i < w->node->nnodes; i++)
        if (w->lag_by[i] >= 0 && (slow < 0 || w->lag_by[i] > w->lag_by[slow]))
            slow = i;
    if (slow > 0)
        *lag = (uint64_t)w->lag_by[slow];
    return slow;
}

void stg_watchdog_held_settle(struct stg_watchdog *w)
{
    const struct stg_node *n = w->node;
    if (!n->is_leader)
        return;
    int total = 0;
    MPI_Request req;
    MPI_Ireduce(&w->held_sent, &total, 1, MPI_INT, MPI_SUM, 0, w->notes, &req);
    stg_wait(w, &req);
    while (n->is_root && w->held_got < total) {
        drain_held(w);      /* every one was sent: they come */
        if (w->held_got < total) {
            stg_watchdog_check(w);
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (w->held_req != MPI_REQUEST_NULL)
        stg_wait(w, &w->held_req);
}

void stg_watchdog_phase(struct stg_watchdog *w, const char *name)
{
    const struct stg_node *n = w->node;
    if (n->is_root) {
        drain_held(w);
        for (int i = 0; i < n->nnodes; i++)
            w->held_by[i] = w->lag_by[i] = -1;
    }
    w->phase = name;
    w->phase_tag++;
    w->in_phase = true;
    /* The root expects a note from every other leader at the end of the
     * phase; the notes still missing at the deadline name the late nodes. */
    if (n->is_root)
        for (int i = 1; i < n->nnodes; i++)
            MPI_Irecv(&w->note_buf[i], 1, MPI_INT, i, w->phase_tag, w->notes, &w->note_req[i]);
}

void stg_watchdog_arrived(struct stg_watchdog *w)
{
    if (!w || !w->in_phase)
        return;
    if (w->node->is_leader && !w->node->is_root) {
        w->note_buf[0] = 1;
        MPI_Isend(&w->note_buf[0], 1, MPI_INT, 0, w->phase_tag, w->notes, &w->note_req[0]);
    }
}

void stg_watchdog_close(struct stg_watchdog *w)
{
    if (!w || !w->in_phase)
        return;
    const struct stg_node *n = w->node;
    w->in_phase = false;
    if (n->is_root && n->nnodes > 1)
        MPI_Waitall(n->nnodes - 1, w->note_req + 1, MPI_STATUSES_IGNORE);
    else if (n->is_leader && !n->is_root)
        MPI_Wait(&w->note_req[0], MPI_STATUS_IGNORE);
}

static void check_signal(struct stg_watchdog *w)
{
    int sig = caught;
    if (!sig)
        return;
    /* Once for the job, not once per rank: a cancelled job signals them all. */
    if (w && w->node->is_root)
        stg_log_error("stopped by signal %d (%s)", sig, strsignal(sig));
    run_cleanup(w ? w : armed);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Leaders: the root's word to stop arrived (it timed out): clean up, go. */
static void check_stop(struct stg_watchdog *w)
{
    int got = 0;
    if (w->stop_req == MPI_REQUEST_NULL)
        return;
    MPI_Test(&w->stop_req, &got, MPI_STATUS_IGNORE);
    if (!got)
        return;
    run_cleanup(w);
    /* The root aborts the job; leave without waiting for MPI. */
    _exit(STG_ETIMEOUT);
}

/* The root: name the late nodes, and tell every leader to stop. */
static void timeout_root(struct stg_watchdog *w, const char *phase)
{
    const struct stg_node *n = w->node;
    bool *behind = stg_xcalloc((size_t)n->nnodes, sizeof *behind);
    for (int i = 1; w->in_phase && i < n->nnodes; i++) {
        int done = 0;
        MPI_Test(&w->note_req[i], &done, MPI_STATUS_IGNORE);
        behind[i] = !done;
    }
    /* Name the nodes that are late of their own; those that wait for a
     * late node above them in the tree are counted. */
    char late[STG_MSG_MAX] = "";
    size_t off = 0;
    int below = 0;
    for (int i = 1; i < n->nnodes; i++) {
        if (!behind[i])
            continue;
        int up = w->tree ? w->tree[i] : -1;
        if (up > 0 && behind[up]) {
            below++;
            continue;
        }
        int len = snprintf(late + off, sizeof late - off, "%s%s", off ? ", " : "", w->names[i]);
        if (len > 0 && (size_t)len < sizeof late - off)
            off += (size_t)len;
    }
    /* Where the words of whom each stream waits for lead: that node's
     * link or the node itself holds the stream back, and the others wait
     * behind it. */
    drain_held(w);
    int x = w->held_by[0];
    for (int steps = 0; x > 0 && w->held_by[x] > 0 && steps < n->nnodes; steps++)
        x = w->held_by[x];
    if (x > 0 && behind[x]) {
        int others = -1;
        for (int i = 1; i < n->nnodes; i++)
            others += behind[i];
        snprintf(late, sizeof late, "%s, where the stream stalls", w->names[x]);
        off = strlen(late);
        below = others;
    }
    free(behind);
    if (below && off < sizeof late)
        snprintf(late + off, sizeof late - off, " (and %d other node%s, which %s for it)", below,
                 below == 1 ? "" : "s", below == 1 ? "waits" : "wait");
    fprintf(stderr, "stage-py: timeout: %.0f s passed in phase '%s'; not finished: %s\n",
            w->deadline - w->start, phase, off ? late : n->name);
    fflush(stderr);
    /* MPI_Abort kills without a signal that could be caught: first tell
     * every leader to remove its temporary directory, and give them a
     * moment (one that hangs for real leaves it locked-then-dead: the
     * next run's sweep removes it). */
    MPI_Request *req = stg_xcalloc((size_t)n->nnodes, sizeof *req);
    int word = 1;
    for (int i = 1; i < n->nnodes; i++)
        MPI_Isend(&word, 1, MPI_INT, i, TAG_STOP, w->notes, &req[i]);
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
}

void stg_watchdog_check(struct stg_watchdog *w)
{
    check_signal(w);
    if (!w || w->fired)
        return;
    if (w->held_by)
        drain_held(w);
    check_stop(w);
    if (w->deadline <= 0)
        return;
    const struct stg_node *n = w->node;
    double now = stg_now();
    if (now < w->deadline + (n->is_root ? 0 : DEADLINE_GRACE))
        return;
    w->fired = true;    /* once */
    const char *phase = w->phase ? w->phase : "start";
    if (n->is_root) {
        timeout_root(w, phase);
    } else {
        fprintf(stderr, "stage-py: %s: timeout: %.0f s passed in phase '%s'%s\n", n->name,
                now - w->start, phase,
                strcmp(phase, "plan") == 0 ? "; the root was still reading the trees" : "");
        fflush(stderr);
    }
    run_cleanup(w);
    MPI_Abort(MPI_COMM_WORLD, STG_ETIMEOUT);
}

void stg_wait(struct stg_watchdog *w, MPI_Request *req)
{
    int done = 0;
    long usec = 0;
    for (;;) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        stg_watchdog_check(w);
        if (usec) {
            struct timespec ts = {0, usec * 1000};
            nanosleep(&ts, NULL);
        }
        usec = usec ? (usec < 2000 ? usec * 2 : 2000) : 10;
    }
}
