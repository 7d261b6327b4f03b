/* SPDX-License-Identifier: MIT */
/*
 * watchdog: what a rank checks whenever it waits.
 *
 * --timeout: the run has a deadline.  At the start of every collective
 * phase the root posts one receive per other leader; each leader sends its
 * note once every rank of its node has reached the phase's agreement
 * (agree.h).  Past the deadline
 * the root names the nodes whose notes are missing, tells every leader to
 * clean up and go, and aborts the job (STG_ETIMEOUT); other ranks wait a
 * little longer, so that the root, which knows who is late, speaks first.
 *
 * Signals: SIGTERM, SIGINT and SIGHUP (a cancelled job) are noted by a
 * handler and acted on from the loops that wait: the cleanup runs (it
 * removes this run's temporary directory), then the signal is raised again
 * with its default action.  The MPI library may also end the process with
 * exit() when a peer dies: the cleanup runs then too.
 *
 * The one watchdog of a run is passed to whatever waits; it is the MPI
 * thread's (the pack and unpack threads never touch it).  A handler can
 * only reach a global: the signal number is one, and so is the watchdog
 * armed for exit().
 */
#ifndef STG_WATCHDOG_H
#define STG_WATCHDOG_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "node.h"

struct stg_watchdog {
    const struct stg_node *node;
    MPI_Comm notes;         /* leaders: the leaders again, for the notes */
    char (*names)[64];      /* root: every leader's node name, by leader rank */
    double start, deadline; /* deadline 0: no limit */
    const char *phase;
    int phase_tag;
    bool in_phase;
    MPI_Request *note_req;  /* root: one receive per other leader; leaders: one send */
    int *note_buf;
    MPI_Request stop_req;   /* leaders: the root's word to stop (timeout) */
    int stop_buf;
    void (*cleanup)(void *);
    void *cleanup_arg;
    bool fired;             /* the deadline passed: checked no more */
    const int *tree;        /* root: the phase's tree, each leader's parent; NULL: none */
    int *held_by;           /* root: whom each leader's stream waits for (-1: nobody) */
    int64_t *lag_by;        /* root: each leader's lag at its last word of progress (-1: none) */
    uint64_t sent;          /* root: chunks sent, as stg_watchdog_sent() was last told */
    double progress_next;   /* leaders: when to tell the root that again */
    MPI_Request held_req;   /* leaders: the last word of that to the root */
    int held_buf;           /* leaders: a word on its way (>= 0: whom it waits for;
                             * < 0: -(chunks received + 1)) */
    int held_sent;          /* leaders: such words sent */
    int held_got;           /* root: such words received */
};

/* Collective over the leaders of n (every rank calls it; only leaders
 * communicate).  Installs the signal handlers.  OUT w.  A watchdog is
 * either made here or NULL (no checks but signals): a zeroed struct is
 * not one (MPI_REQUEST_NULL need not be 0). */
void stg_watchdog_init(struct stg_watchdog *w, const struct stg_node *n);
void stg_watchdog_fini(struct stg_watchdog *w);

/* Set the time limit, in seconds from the start of the run (0: none). */
void stg_watchdog_set_timeout(struct stg_watchdog *w, double seconds);

/* Start of a collective phase named name (for timeout messages).
 * Collective over the world; ended by stg_agree() on the world. */
void stg_watchdog_phase(struct stg_watchdog *w, const char *name);

/* The root, for the phase under way: the tree that data goes down, as
 * each leader's parent leader (-1: none), kept (not copied) until set to
 * NULL.  A node that waits only because a node above it is late is then
 * counted, not named: the message names the node where the stream stalled. */
void stg_watchdog_set_tree(struct stg_watchdog *w, const int *parent);

/* This leader's stream waits for the leader `leader` (bcast.h's held):
 * the root learns it, says it at -v, and on a timeout follows these words
 * down to the node where the stream stalls (its link cut, its node hung),
 * which is the one it names. */
void stg_watchdog_held_by(struct stg_watchdog *w, int leader);

/* This leader has received chunks chunks of the stream.  At -v, at most
 * once a second, it tells the root (a word of the same channel as
 * stg_watchdog_held_by()'s: -(chunks + 1)), for its progress lines. */
void stg_watchdog_progress(struct stg_watchdog *w, uint64_t chunks);

/* The root has sent chunks chunks so far (told as it sends, for the lag
 * of the words of progress that come in). */
void stg_watchdog_sent(struct stg_watchdog *w, uint64_t chunks);
/* The root: the leader furthest behind, by the last word of each in this
 * phase (how many chunks the root had sent then, beyond those the leader
 * had received), OUT that lag; -1: none told yet. */
int stg_watchdog_slowest(struct stg_watchdog *w, uint64_t *lag);

/* After a stream, collective over the leaders (every rank may call it):
 * the root takes every word of stg_watchdog_held_by() that is still on its
 * way, so that no message is left unmatched (which some MPI libraries
 * never complete). */
void stg_watchdog_held_settle(struct stg_watchdog *w);

/* What runs on a signal, a timeout or exit() before the run's end (NULL:
 * nothing).  Called again with NULL once the run no longer needs it. */
void stg_watchdog_on_cleanup(struct stg_watchdog *w, void (*cleanup)(void *), void *arg);

/* Act on a signal, the root's word to stop, or a passed deadline (these do
 * not return).  Called wherever a rank waits; w may be NULL (no checks but
 * signals). */
void stg_watchdog_check(struct stg_watchdog *w);

/* Wait for a request, polling with a growing sleep, checking w: ranks that
 * only wait (non-leaders during the broadcast) leave the cores to those
 * that work. */
void stg_wait(struct stg_watchdog *w, MPI_Request *req);

/* For agree.h: this rank reached the end of the phase (leaders note it to
 * the root); and the agreement is over (every note can be completed). */
void stg_watchdog_arrived(struct stg_watchdog *w);
void stg_watchdog_close(struct stg_watchdog *w);

#endif
