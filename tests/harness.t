#!/bin/bash
# SPDX-License-Identifier: MIT
#
# harness.t: checks stage-py's test harness itself (tests/lib.sh and
# tests/fake-rsh): a fake cluster of 3 nodes x 2 ranks must give every node
# its own hostname and its own /dev/shm, shared by the ranks of that node
# only, size limits must bite, and MPI must see one node communicator per
# fake node.

. "${srcdir:-$(dirname "${BASH_SOURCE[0]}")/..}/tests/lib.sh"

t_need_cluster      # launcher, unshare, timeout, root

NODES=3 PPN=2

# A script each rank runs: rank numbers come from whichever MPI started it.
rank_sh=$T_TMP/rank.sh
cat >"$rank_sh" <<'EOF'
rank=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:?no MPI rank in the environment}}
lrank=${OMPI_COMM_WORLD_LOCAL_RANK:-${MPI_LOCALRANKID:?no local rank}}
host=$(hostname)
EOF

# rank_job NAME BODY: write a rank script NAME.sh (BODY after rank.sh).
rank_job() {
    { echo ". '$rank_sh'"; echo "$2"; } >"$T_TMP/$1.sh"
}

tag=harness-$$-$RANDOM      # file names that no one else uses

# ---- 1. one hostname per fake node --------------------------------------

t_ok "3x$PPN job runs hostname" t_cluster $NODES $PPN hostname
t_is "$(sort "$T_OUT" | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')" \
    "node1=2 node2=2 node3=2" "each of node1..node3 reports its name twice"

# ---- 2. a file in node2's /dev/shm lands in node2's directory only ------

rank_job write2 "[ \$host = node2 ] && [ \$lrank = 0 ] && echo hi >/dev/shm/$tag.w2
exit 0"
t_ok "a rank on node2 writes into /dev/shm" \
    t_cluster $NODES $PPN sh "$T_TMP/write2.sh"
t_ok "the file is in node2's shm directory" \
    grep -qx hi "$(t_node_shm 2)/$tag.w2"
others=
for f in "$(t_node_shm 1)/$tag.w2" "$(t_node_shm 3)/$tag.w2" "/dev/shm/$tag.w2"; do
    if [ -e "$f" ]; then others="$others $f"; fi
done
t_is "$others" "" "the file is not on node1, node3 or the host"

# ---- 3. ranks of one node share its /dev/shm, and only they -------------

# Every rank drops a file named after its rank, waits (bounded) until its
# node has $PPN such files, then prints: host rank rank-files-it-sees.
rank_job share "touch /dev/shm/$tag.r.\$rank
i=0
while [ \$(ls /dev/shm | grep -c '^$tag\\.r\\.') -lt $PPN ] && [ \$i -lt 300 ]; do
    sleep 0.1; i=\$((i + 1))
done
echo \$host \$rank \$(ls /dev/shm | sed -n 's/^$tag\\.r\\.//p' | sort -n)"
t_ok "ranks list their node's /dev/shm" \
    t_cluster $NODES $PPN sh "$T_TMP/share.sh"
# Expected for each rank: the ranks that reported the same host.
share_out=$(sort -k2n "$T_OUT")
share_want=$(echo "$share_out" | awk '
    { host[$2] = $1; members[$1] = members[$1] " " $2 }
    END { for (r in host) print host[r], r members[host[r]] }' | sort -k2n)
t_is "$share_out" "$share_want" \
    "each rank sees exactly the files of the ranks on its own node"
t_is "$(echo "$share_out" | awk '{print $1}' | sort -u | paste -sd' ')" \
    "node1 node2 node3" "the ranks came from 3 nodes"

# ---- 4. a size-limited /dev/shm and a read-only one ---------------------

rank_job fill "if err=\$(dd if=/dev/zero of=/dev/shm/$tag.big.\$rank bs=1M count=2 2>&1)
then echo \$host written
else echo \$host failed: \$(echo \"\$err\" | grep -o 'No space left on device')
fi
rm -f /dev/shm/$tag.big.\$rank"
T_SHM_SIZE_node3=1m t_ok "2 MB written into /dev/shm on every node (1 MB on node3)" \
    t_cluster $NODES $PPN sh "$T_TMP/fill.sh"
t_is "$(sort "$T_OUT" | uniq -c | awk '{$1 = $1 "x"; print}' | paste -sd';')" \
    "2x node1 written;2x node2 written;2x node3 failed: No space left on device" \
    "node3 runs out of space, node1 and node2 do not"

rank_job ro "if touch /dev/shm/$tag.ro 2>/dev/null; then echo \$host rw; else echo \$host ro; fi"
T_RO_node1=1 t_ok "writing into /dev/shm with node1's read-only" \
    t_cluster $NODES $PPN sh "$T_TMP/ro.sh"
t_is "$(sort "$T_OUT" | uniq -c | awk '{$1 = $1 "x"; print}' | paste -sd';')" \
    "2x node1 ro;2x node2 rw;2x node3 rw" "only node1's /dev/shm is read-only"

# ---- 5. exit status and time limit --------------------------------------

t_is "$(t_cluster 2 1 sh -c 'exit 3' 2>/dev/null; echo $?)" 3 \
    "the job's exit status is t_cluster's"

stamp=$((300 + RANDOM % 600)).$$       # "sleep <stamp>" finds our sleepers
T_TIMEOUT=3 t_fails "a hung job is stopped by T_TIMEOUT" \
    t_cluster 2 1 sleep "$stamp"
t_like "$(cat "$T_OUT")" "stopped after 3 s" "and says so"
sleep 1
t_is "$(pgrep -fx "sleep $stamp" || true)" "" "no rank of it is left running"

# ---- 6. MPI sees one node communicator per fake node --------------------

if ! command -v "$T_MPICC" >/dev/null 2>&1; then
    t_skip 3 "$T_MPICC not found"
    t_done
fi

cat >"$T_TMP/split.c" <<'EOF'
/* Print world rank, node-local size, the lowest world rank of the node
 * communicator (naming it) and the host name for every rank. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank, size, leader;
    char host[256] = "";
    MPI_Comm node;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank,
                        MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &size);
    MPI_Allreduce(&rank, &leader, 1, MPI_INT, MPI_MIN, node);
    gethostname(host, sizeof host - 1);
    printf("rank %d size %d comm %d host %s\n", rank, size, leader, host);
    MPI_Comm_free(&node);
    MPI_Finalize();
    return 0;
}
EOF
t_ok "compile an MPI program with $T_MPICC" \
    "$T_MPICC" -o "$T_TMP/split" "$T_TMP/split.c"
t_ok "run it on 3x$PPN" t_cluster $NODES $PPN "$T_TMP/split"
# one line per (communicator, size, host) seen: "comm LEADER size S HOST xCOUNT"
t_is "$(awk '$1 == "rank" { print "comm", $6, "size", $4, $8 }' "$T_OUT" |
        sort | uniq -c | awk '{print $2, $3, $4, $5, $6, "x" $1}' | paste -sd';')" \
    "comm 0 size 2 node1 x2;comm 2 size 2 node2 x2;comm 4 size 2 node3 x2" \
    "3 node communicators of 2 ranks each, one per fake node"

t_done
