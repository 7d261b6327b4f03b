#!/bin/bash
# SPDX-License-Identifier: MIT
#
# net.sh: staging over a real network.  Every fake node is in a network
# namespace of its own, its link limited to RATE both ways (T_NET_RATE,
# tests/lib.sh); cold, the FEniCS stack (MANIFEST).  For each node count of
# NODES_LIST, ROUNDS alternating runs of
#   two-tree   stage-py (the default broadcast, --broadcast two-tree)
#   binary     stage-py --broadcast binary (the earlier tree)
#   bcast-tar  what python-mpi-bcast does: the root reads a tar of the same
#              entries whole, one MPI_Bcast carries it to one rank per node,
#              and each untars it with tar(1) (tests/bench/bcast-tar)
# each the job's wall time with the launcher (the same launch for all
# three), and for stage-py its own total and stream time (--stats).
#
# First, without a rate limit, 8 nodes cold: how fast this machine's cores
# unpack 8 copies, against how long RATE takes to deliver one: the network
# is the limit when the cores are at least twice as fast.  Then, still
# without a limit, on NOLIMIT_NODES (default 3) nodes, ROUNDS alternating
# runs of the two trees and the binary tree (stage-py's total).
#
# Prints CSV (nodes,method,round,wall,total,stream,bytes) on stdout, the
# medians and ratios on stderr.
#
#     [RATE=1gbit] [NODES_LIST="1 2 4 8"] tests/bench/net.sh [-m MANIFEST] [-r ROUNDS]
#
# Needs root (namespaces, veth, tc), like the tests; see tests/bench/lib.sh.
rounds=3
. "$(dirname "$0")/lib.sh" "$@"
RATE=${RATE:-250mbit}
NODES_LIST=${NODES_LIST:-1 2 4 8}
BCAST_TAR=${BCAST_TAR:-$(dirname "$STAGE_PY")/tests/bench/bcast-tar}
[ -x "$BCAST_TAR" ] || { echo "net.sh: no $BCAST_TAR (make tests/bench/bcast-tar)" >&2; exit 1; }
export SLURM_JOB_ID=bench-$$
max=0
for n in $NODES_LIST; do [ "$n" -gt "$max" ] && max=$n; done
nodes=$max     # for lib.sh's wipe
# wipe_all: no node holds a copy, of either kind
wipe_all() { wipe; rm -rf "$T_NODES"/node*/shm/bcast-tar; }

# The entries a copy holds, and a tar of them for the baseline.
t_cluster 1 1 "$STAGE_PY" -q -m "$manifest" -o "$T_TMP/env.sh"
copy=$(t_node_shm 1)/stage-py-$(id -u)/$(sed -n "s|^STAGE_PY_DIR='.*/\(.*\)'; export STAGE_PY_DIR$|\1|p" "$T_TMP/env.sh")
(cd "$copy" && find . -mindepth 1 ! -name .stage-py.json | sed 's|^\./||') >"$T_TMP/entries"
tar -chf "$T_TMP/stack.tar" -C / --no-recursion -T "$T_TMP/entries"
wipe_all

# run METHOD N: one cold run on N nodes; prints "wall total stream bytes"
run() {
    local method=$1 n=$2 t0 t1
    wipe_all
    t0=$(date +%s.%N)
    case $method in
    bcast-tar)
        t_cluster "$n" 1 "$BCAST_TAR" "$T_TMP/stack.tar" /dev/shm/bcast-tar || exit 1
        t1=$(date +%s.%N)
        python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]), 0, 0, sys.argv[3])' \
            "$t0" "$t1" "$(stat -c %s "$T_TMP/stack.tar")"
        return ;;
    two-tree | binary)
        t_cluster "$n" 1 "$STAGE_PY" -q -m "$manifest" --broadcast "$method" \
            --stats "$T_TMP/st.json" -o "$T_TMP/env.sh" || exit 1 ;;
    esac
    t1=$(date +%s.%N)
    python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
print(float(sys.argv[3]) - float(sys.argv[2]), s["seconds"]["total"],
      s["timeline"]["broadcast"][1] - s["timeline"]["broadcast"][0], s["bytes_broadcast"])' \
        "$T_TMP/st.json" "$t0" "$t1"
}

# The cores against the link: 8 (or max) nodes, no limit.
unset T_NET_RATE
read -r _ cores _ bytes < <(run two-tree "$max")
# Without a limit, on NOLIMIT_NODES (3) nodes: the two trees against the
# binary tree, alternating.
for ((r = 1; r <= rounds; r++)); do
    for m in two-tree binary; do
        echo "$m $(run "$m" "${NOLIMIT_NODES:-3}")"
    done
done >"$T_TMP/nolimit"
export T_NET_RATE=$RATE
for n in $NODES_LIST; do
    for ((r = 1; r <= rounds; r++)); do
        for m in two-tree binary bcast-tar; do
            echo "$n,$m,$r,$(run "$m" "$n" | tr ' ' ',')"
        done
    done
done | { echo "nodes,method,round,wall,total,stream,bytes"; cat; } | tee "$T_TMP/net.csv"
wipe_all

python3 "$here/tests/bench/net-summary.py" "$T_TMP/net.csv" "$RATE" "$max" "$cores" "$bytes" \
    "$manifest" >&2
python3 -c 'import statistics, sys
t = {}
for line in open(sys.argv[1]):
    m, _, total, *_ = line.split()
    t.setdefault(m, []).append(float(total))
a, b = statistics.median(t["two-tree"]), statistics.median(t["binary"])
print("without a limit, %s nodes, medians of %d: two trees %.3f s, binary %.3f s: two trees / binary %.3f"
      % (sys.argv[2], len(t["binary"]), a, b, a / b))' "$T_TMP/nolimit" "${NOLIMIT_NODES:-3}" >&2
_t_finished=1
