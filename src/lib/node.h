/* SPDX-License-Identifier: MIT */
/*
 * node: who is where.  Every rank learns its node (MPI_COMM_TYPE_SHARED),
 * local rank 0 of each node leads it, and the leaders get a communicator
 * of their own, on which the archive travels.  The time limit and signals
 * are watchdog.h's; the agreement that ends a phase is agree.h's.
 */
#ifndef STG_NODE_H
#define STG_NODE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

struct stg_node {
    MPI_Comm world;         /* a duplicate of MPI_COMM_WORLD */
    MPI_Comm local;         /* the ranks of this node */
    MPI_Comm leaders;       /* one rank per node; MPI_COMM_NULL elsewhere */
    int rank, size;
    int local_rank, local_size;
    int leader_rank, nnodes;  /* leader_rank: -1 on other ranks */
    bool is_leader;
    bool is_root;           /* world rank 0, also leader rank 0 */
    char name[256];         /* stg_node_name(), else "rank<world rank>" */
};

/* Collective over MPI_COMM_WORLD.  OUT n. */
void stg_node_init(struct stg_node *n);
void stg_node_fini(struct stg_node *n);

/* This machine's name as stage-py reports it, whether or not MPI runs:
 * SLURMD_NODENAME when set, else the host name.  OUT buf.  Returns false
 * (buf "") when there is neither. */
bool stg_node_name(char *buf, size_t len);

#endif
