/* SPDX-License-Identifier: MIT */
/*
 * agree: the agreement that ends every collective phase, and the other
 * collectives the commands share.  Each waits through stg_wait(), so
 * signals and the time limit act while it waits.
 */
#ifndef STG_AGREE_H
#define STG_AGREE_H

#include <mpi.h>
#include <stdbool.h>

#include "log.h"
#include "watchdog.h"

/*
 * Each rank of comm brings its status (STG_OK or an error recorded with
 * stg_err_set()); every rank returns the status of the lowest-ranked
 * failing rank that recorded an error of its own (else of the lowest
 * failing rank), and OUT msg (on every rank) gets that rank's message
 * prefixed with its node name (usage errors, the same everywhere, go
 * without).  On the world it ends the watchdog's phase: each rank first
 * waits for the other ranks of its node, so that a leader notes its node's
 * end of the phase to the root (watchdog.h) only once they all reached it.
 */
int stg_agree(struct stg_watchdog *w, MPI_Comm comm, int status, char msg[STG_MSG_MAX]);

/* Every rank of a node must see the leader's directory: containers may
 * give ranks of one node different /dev/shm.  dir: the per-user directory,
 * valid on the leader when leader_ok.  Collective over the world.  Returns
 * this rank's status. */
int stg_agree_shared_dir(struct stg_watchdog *w, const char *dir, bool leader_ok);

/* Collective over the leaders: every leader's text, concatenated in
 * leader order, on the root (malloc'd); NULL elsewhere. */
char *stg_gather_text(struct stg_watchdog *w, const char *mine);

#endif
