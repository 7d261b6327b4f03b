/* SPDX-License-Identifier: MIT */
/*
 * watchdog: what a rank checks whenever it waits.
 *
 * --timeout: the run has a deadline.  At the start of every collective
 * phase the root posts one receive per other leader; each leader sends its
 * note when it reaches the phase's agreement (agree.h).  Past the deadline
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
};

/* Collective over the world (of n).  Installs the signal handlers.  OUT w. */
void stg_watchdog_init(struct stg_watchdog *w, const struct stg_node *n);
void stg_watchdog_fini(struct stg_watchdog *w);

/* Set the time limit, in seconds from the start of the run (0: none). */
void stg_watchdog_set_timeout(struct stg_watchdog *w, double seconds);

/* Start of a collective phase named name (for timeout messages).
 * Collective over the world; ended by stg_agree() on the world. */
void stg_watchdog_phase(struct stg_watchdog *w, const char *name);

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
