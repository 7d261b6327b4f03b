/* SPDX-License-Identifier: MIT */
/*
 * node: topology.
 */
#include "config.h"

#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool stg_node_name(char *buf, size_t len)
{
    if (len == 0)
        return false;
    const char *sn = getenv("SLURMD_NODENAME");
    if (sn && *sn) {
        snprintf(buf, len, "%s", sn);
        return true;
    }
    if (gethostname(buf, len - 1) < 0) {
        buf[0] = '\0';
        return false;
    }
    buf[len - 1] = '\0';
    return buf[0] != '\0';
}

void stg_node_init(struct stg_node *n)
{
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
    if (n->is_leader) {
        MPI_Comm_rank(n->leaders, &n->leader_rank);
        MPI_Comm_size(n->leaders, &n->nnodes);
    }
    /* Everyone learns the node count (for --stats and messages). */
    MPI_Bcast(&n->nnodes, 1, MPI_INT, 0, n->world);
    if (!stg_node_name(n->name, sizeof n->name))
        snprintf(n->name, sizeof n->name, "rank%d", n->rank);     /* unique all the same */
}

void stg_node_fini(struct stg_node *n)
{
    if (n->leaders != MPI_COMM_NULL)
        MPI_Comm_free(&n->leaders);
    MPI_Comm_free(&n->local);
    MPI_Comm_free(&n->world);
}
