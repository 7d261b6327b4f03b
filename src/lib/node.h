/* SPDX-License-Identifier: MIT */
/*
 * node: who is where.  Every rank learns its node (MPI_COMM_TYPE_SHARED),
 * local rank 0 of each node leads it, and the leaders get a communicator
 * of their own, on which the archive travels.  Also the one way the ranks
 * agree at the end of every collective phase.
 */
#ifndef STG_NODE_H
#define STG_NODE_H

#include <mpi.h>
#include <stdbool.h>

#include "log.h"

struct stg_node {
    MPI_Comm world;         /* a duplicate of MPI_COMM_WORLD */
    MPI_Comm local;         /* the ranks of this node */
    MPI_Comm leaders;       /* one rank per node; MPI_COMM_NULL elsewhere */
    int rank, size;
    int local_rank, local_size;
    int leader_rank, nnodes;  /* leader_rank: -1 on other ranks */
    bool is_leader;
    bool is_root;           /* world rank 0, also leader rank 0 */
    char name[256];         /* SLURMD_NODENAME, else the host name */
    /* --timeout: the phase under way, and the notes by which the root learns
     * which nodes have finished it. */
    MPI_Comm notes;         /* the leaders again, for the notes */
    char (*names)[64];      /* root: every leader's node name, by leader rank */
    double start, deadline; /* deadline 0: no limit */
    const char *phase;
    int phase_tag;
    MPI_Request *note_req;  /* root: one receive per other leader; leaders: one send */
    int *note_buf;
    bool in_phase;
    MPI_Request stop_req;   /* leaders: the root's word to stop (timeout) */
    int stop_buf;
};

/* Collective over MPI_COMM_WORLD.  OUT n. */
int stg_node_init(struct stg_node *n);
void stg_node_fini(struct stg_node *n);

/* Start of a collective phase named name (for timeout messages).  Collective. */
void stg_node_phase(struct stg_node *n, const char *name);
/* Set the time limit, in seconds from the start of the run (0: none). */
void stg_node_set_timeout(struct stg_node *n, double seconds);
/* Past the deadline: print which phase and which nodes had not finished, and
 * abort the job (MPI_Abort, STG_ETIMEOUT).  Called where ranks wait. */
void stg_node_check_deadline(void);

/*
 * The agreement that ends every collective phase.  Each rank brings its
 * status (STG_OK or an error recorded with stg_err_set()); every rank
 * returns the status of the lowest-ranked failing rank, and OUT msg (on
 * every rank) gets that rank's message prefixed with its node name.
 * Waits without burning a core (see stg_node_wait()).
 */
int stg_agree(struct stg_node *n, MPI_Comm comm, int status, char msg[STG_MSG_MAX]);

/* Wait for a request, polling with a growing sleep: ranks that only wait
 * (non-leaders during the broadcast) leave the cores to those that work. */
void stg_node_wait(MPI_Request *req);

/*
 * SIGTERM, SIGINT and SIGHUP (a cancelled job) are noted by a handler and
 * acted on here, from the loops that wait: cleanup(arg) runs (it removes
 * this run's temporary directory), then the signal is raised again with
 * its default action.  Called from stg_node_wait() and the stream's loops.
 */
void stg_node_on_signal(void (*cleanup)(void *), void *arg);
void stg_node_check_signal(void);

/* Every rank of a node must see the leader's directory: containers may
 * give ranks of one node different /dev/shm.  dir: the per-user directory,
 * valid on the leader when leader_ok.  Returns this rank's status. */
int stg_node_check_shared(const struct stg_node *n, const char *dir, bool leader_ok);

/* Collective over the leaders: every leader's text, concatenated in
 * leader order, on the root (malloc'd); NULL elsewhere. */
char *stg_node_gather_text(const struct stg_node *n, const char *mine);

#endif
