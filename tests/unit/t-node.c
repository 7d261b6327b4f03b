/* SPDX-License-Identifier: MIT */
/*
 * t-node: who is where, on the fake cluster (tests/unit-mpi.t runs it as
 * t-node NODES PPN on NODES fake nodes of PPN ranks each): world rank and
 * size, the ranks of each node, its leader, the leaders' communicator, the
 * node count, and the node's name (the host name, or SLURMD_NODENAME when
 * set).
 */
#include "config.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpitap.h"
#include "node.h"

/* What a rank knows of itself, for every other rank to check against. */
struct facts {
    int rank, size, local_rank, local_size, leader_rank, nnodes;
    int is_leader, is_root, leaders_null;
    char host[64];
    char name[256];
};

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    mt_init();
    int want_nodes = argc > 1 ? atoi(argv[1]) : 0, want_ppn = argc > 2 ? atoi(argv[2]) : 0;
    int wrank, wsize;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &wsize);
    const char *slurm = getenv("SLURMD_NODENAME");
    char *slurm0 = slurm && *slurm ? strdup(slurm) : NULL;     /* a real Slurm job's */
    mt_diag("%d ranks; SLURMD_NODENAME %s", wsize, slurm0 ? slurm0 : "unset");

    struct stg_node n;
    stg_node_init(&n);

    struct facts me = {n.rank, n.size, n.local_rank, n.local_size, n.leader_rank, n.nnodes,
                       n.is_leader, n.is_root, n.leaders == MPI_COMM_NULL, "", ""};
    snprintf(me.host, sizeof me.host, "%s", mt_host);
    snprintf(me.name, sizeof me.name, "%s", n.name);
    struct facts *all = calloc((size_t)wsize, sizeof *all);
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, MPI_COMM_WORLD);

    /* What the table says about this rank's node. */
    int same = 0, below = 0, hosts = 0, node_index = 0;
    for (int r = 0; r < wsize; r++) {
        bool first = true;          /* the lowest rank of its host */
        for (int q = 0; q < r; q++)
            if (strcmp(all[q].host, all[r].host) == 0)
                first = false;
        hosts += first;
        if (first && r < wrank && strcmp(all[r].host, mt_host) != 0)
            node_index++;           /* nodes whose first rank comes before ours */
        if (strcmp(all[r].host, mt_host) == 0) {
            same++;
            below += r < wrank;
        }
    }

    int cmp = MPI_UNEQUAL;
    MPI_Comm_compare(n.world, MPI_COMM_WORLD, &cmp);
    mt_ok(n.rank == wrank && n.size == wsize,
          mt_fmt("rank %d of %d, MPI says %d of %d", n.rank, n.size, wrank, wsize),
          "rank and size are those of MPI_COMM_WORLD");
    mt_ok(cmp == MPI_CONGRUENT, mt_fmt("MPI_Comm_compare: %d", cmp),
          "world is a private duplicate of MPI_COMM_WORLD (congruent, not identical)");

    int lsize = -1, lrank = -1;
    MPI_Comm_size(n.local, &lsize);
    MPI_Comm_rank(n.local, &lrank);
    mt_ok(n.local_size == same && lsize == same && n.local_rank == lrank,
          mt_fmt("local_size %d (communicator: %d), %d ranks on host %s", n.local_size, lsize,
                 same, mt_host),
          "local: exactly the ranks on this rank's host");
    mt_ok(n.local_rank == below,
          mt_fmt("local_rank %d, %d ranks of this host below world rank %d", n.local_rank,
                 below, wrank),
          "local ranks follow world ranks (world rank 0 is local rank 0)");
    /* The local communicator's members, by world rank, are the host's ranks. */
    int *members = calloc((size_t)n.local_size, sizeof *members);
    MPI_Allgather(&wrank, 1, MPI_INT, members, 1, MPI_INT, n.local);
    bool members_ok = true;
    for (int i = 0; i < n.local_size; i++)
        members_ok = members_ok && strcmp(all[members[i]].host, mt_host) == 0 &&
                     (i == 0 || members[i] > members[i - 1]);
    free(members);
    mt_ok(members_ok, NULL, "the local communicator holds this host's ranks, in world order");
    if (want_ppn > 0)
        mt_ok(n.local_size == want_ppn, mt_fmt("local_size %d", n.local_size),
              "%d ranks on every node", want_ppn);

    mt_ok(n.is_leader == (n.local_rank == 0),
          mt_fmt("is_leader %d, local_rank %d", n.is_leader, n.local_rank),
          "is_leader == (local_rank == 0)");
    mt_ok(n.is_root == (wrank == 0) && (!n.is_root || (n.is_leader && n.leader_rank == 0)),
          mt_fmt("is_root %d, is_leader %d, leader_rank %d", n.is_root, n.is_leader,
                 n.leader_rank),
          "is_root on world rank 0 alone, which is leader rank 0");
    mt_ok(n.is_leader ? n.leaders != MPI_COMM_NULL : n.leaders == MPI_COMM_NULL &&
                                                          n.leader_rank == -1,
          mt_fmt("is_leader %d, leaders %s, leader_rank %d", n.is_leader,
                 n.leaders == MPI_COMM_NULL ? "MPI_COMM_NULL" : "a communicator",
                 n.leader_rank),
          "leaders: a communicator on leaders, MPI_COMM_NULL and leader_rank -1 elsewhere");
    int nl = -1, lr = -1;
    if (n.is_leader) {
        MPI_Comm_size(n.leaders, &nl);
        MPI_Comm_rank(n.leaders, &lr);
    }
    mt_ok(!n.is_leader || (nl == n.nnodes && lr == n.leader_rank && lr == node_index),
          mt_fmt("leaders: size %d, rank %d; nnodes %d, leader_rank %d, node %d in world order",
                 nl, lr, n.nnodes, n.leader_rank, node_index),
          "leaders: one rank per node, numbered in world order");
    bool nn_same = true;
    for (int r = 0; r < wsize; r++)
        nn_same = nn_same && all[r].nnodes == n.nnodes;
    mt_ok(nn_same && n.nnodes == hosts,
          mt_fmt("nnodes %d, %d host names among the ranks", n.nnodes, hosts),
          "nnodes is the same on every rank: the number of nodes");
    if (want_nodes > 0)
        mt_ok(n.nnodes == want_nodes, mt_fmt("nnodes %d", n.nnodes),
              "nnodes is the number of fake nodes, %d", want_nodes);

    /* The name. */
    if (slurm0) {
        mt_is_str(n.name, slurm0, "name: SLURMD_NODENAME of the job");
    } else {
        mt_is_str(n.name, mt_host, "name: the host name (SLURMD_NODENAME unset)");
        bool distinct = true;
        for (int r = 0; r < wsize; r++)
            if ((strcmp(all[r].name, n.name) == 0) != (strcmp(all[r].host, mt_host) == 0))
                distinct = false;
        mt_ok(distinct, NULL, "... the same on the ranks of a node, another on every node");
    }
    char buf[256];
    stg_node_name(buf, sizeof buf);
    mt_is_str(buf, n.name, "stg_node_name() says the same");

    /* SLURMD_NODENAME set: it names the node (a second stg_node_init is fine). */
    char sn[128];
    snprintf(sn, sizeof sn, "slurm-%s", mt_host);
    setenv("SLURMD_NODENAME", sn, 1);
    struct stg_node n2;
    stg_node_init(&n2);
    mt_is_str(n2.name, sn, "SLURMD_NODENAME set: it is the node's name");
    stg_node_name(buf, sizeof buf);
    mt_is_str(buf, sn, "... for stg_node_name() too");
    mt_ok(n2.rank == n.rank && n2.local_rank == n.local_rank && n2.nnodes == n.nnodes &&
              n2.leader_rank == n.leader_rank,
          NULL, "... and a second stg_node_init() gives the same topology");
    stg_node_fini(&n2);
    setenv("SLURMD_NODENAME", "", 1);
    stg_node_name(buf, sizeof buf);
    mt_is_str(buf, mt_host, "SLURMD_NODENAME empty: the host name");
    unsetenv("SLURMD_NODENAME");
    stg_node_name(buf, sizeof buf);
    mt_is_str(buf, mt_host, "SLURMD_NODENAME unset: the host name");
    memset(buf, 'x', sizeof buf);
    stg_node_name(buf, 4);
    mt_ok(memchr(buf, '\0', 4) != NULL, NULL, "a short buffer: the name is cut, NUL-terminated");
    setenv("SLURMD_NODENAME", "a-rather-long-node-name", 1);
    memset(buf, 'x', sizeof buf);
    stg_node_name(buf, 5);
    mt_is_str(buf, "a-ra", "... SLURMD_NODENAME too");
    if (slurm0)
        setenv("SLURMD_NODENAME", slurm0, 1);
    else
        unsetenv("SLURMD_NODENAME");

    stg_node_fini(&n);
    mt_ok(n.local == MPI_COMM_NULL && n.world == MPI_COMM_NULL && n.leaders == MPI_COMM_NULL,
          NULL, "stg_node_fini frees the communicators");
    free(all);
    free(slurm0);
    int rc = mt_done();
    MPI_Finalize();
    return rc;
}
