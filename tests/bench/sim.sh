#!/bin/bash
# SPDX-License-Identifier: MIT
#
# sim.sh: stage-py's broadcast at 1 000 and 10 000 nodes, simulated with
# SimGrid's SMPI (tests/bench/sim.c, built from the same src/lib/bcast.c),
# beside what the cost model (tests/bench/model.py bcast ...) predicts.
# For each node count of NODES_LIST, link rate of RATES (Gbit/s), stack
# of STACKS (bytes) and way of ALGOS:
#   two-tree  stage-py's broadcast (the default, --broadcast two-tree)
#   binary    stage-py --broadcast binary
#   bcast     one MPI_Bcast of the whole stream (SMPI's, a binomial tree)
# one simulation, one at a time (SimGrid runs every rank on one core).
#
# The platform: a cluster of one host per node, each with its own link,
# full duplex (SPLITDUPLEX), RATE each way and 1 us of latency, so 2 us
# from node to node; no backbone, that is a non-blocking switch (a full
# fat tree): the nodes' links are the limit, as the cost model has it.
# The chunk grows with the node count and the stack (chunk_for), to keep
# the simulation's events (chunks x nodes) within minutes; the model is
# asked about the same chunk.
#
# DEPTH is stage-py's --pipeline-depth, chunks in flight on each node;
# default auto: what stage-py takes with its default chunk of 256 KiB
# (stg_bcast_depth_auto: 4 + 4 x the trees' levels for the two trees, at
# most 64; 4 for the binary tree), not what it would take with the
# simulation's larger chunks: a lag of so many chunk times is so many
# chunks, whatever their size.
#
# Writes CSV (nodes,gbit,bytes,algo,chunk,depth,chunks,simulated,model,
# diff_pct,wall) to OUT and prints it as a table; diff_pct is the
# simulation against the model, wall the seconds the simulation took here.
#
#     [NODES_LIST="1000 10000"] [RATES="10 100"] [STACKS="300000000 10000000000"]
#     [ALGOS="two-tree binary bcast"] [DEPTH=auto|N] tests/bench/sim.sh SIM OUT
set -eu -o pipefail
[ $# -eq 2 ] || { echo "usage: sim.sh SIM OUT" >&2; exit 2; }
sim=$1 out=$2
model="$(dirname "$0")/model.py"
NODES_LIST=${NODES_LIST:-1000 10000}
RATES=${RATES:-10 100}
STACKS=${STACKS:-300000000 10000000000}
ALGOS=${ALGOS:-two-tree binary bcast}
DEPTH=${DEPTH:-auto}
# depth_for NODES ALGO: the depth of a run
depth_for() {
    local levels=0
    if [ "$DEPTH" != auto ]; then echo "$DEPTH"; return; fi
    [ "$2" = two-tree ] || { echo 4; return; }
    while [ $((1 << levels)) -lt "$1" ]; do levels=$((levels + 1)); done  # receivers + 1
    echo $((4 + 4 * levels > 64 ? 64 : 4 + 4 * levels))
}

# The chunk grows with the stack and the node count, to keep the events
# of a run (chunks x nodes) to a few hundred thousand: about 300 chunks
# at 1 000 nodes and 40 at 10 000, where one chunk takes seconds to
# simulate on one core (stage-py's default, 256 KiB, would make 1 145
# chunks of 300 MB and 38 000 of 10 GB).
chunk_for() {   # NODES BYTES
    case $1:$2 in
        1000:300000000) echo $((1 << 20)) ;;
        1000:*) echo $((32 << 20)) ;;
        *:300000000) echo $((8 << 20)) ;;
        *) echo $((256 << 20)) ;;
    esac
}

cfg=(
    # The ranks share this process's memory: sim.c keeps per-rank state in
    # arrays, and 10 000 private copies of the program would not fit.
    --cfg=smpi/privatization:no
    # No CPU time: only the network is simulated (no file I/O, digest or
    # unpacking; see stage-py-performance(7), THE SIMULATION) ...
    --cfg=smpi/simulate-computation:no
    # ... and an MPI_Test costs no simulated time (SMPI's default charges
    # 0.1 ms for it; bcast.c tests often, and a real one takes microseconds).
    --cfg=smpi/test:0
    # Max-min sharing of the links, without SMPI's corrections calibrated
    # on another cluster, nor acknowledgements on the way back.
    --cfg=network/model:CM02
    --cfg=network/crosstraffic:0
    # 10 000 ranks: small stacks, no guard pages.
    --cfg=contexts/stack-size:128
    --cfg=contexts/guard-size:0
    --log=root.thres:warning
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "nodes,gbit,bytes,algo,chunk,depth,chunks,simulated,model,diff_pct,wall" > "$out"
printf '%-7s %-6s %-12s %-9s %-10s %5s %7s %12s %12s %7s %8s\n' nodes Gbit/s bytes algo chunk \
    depth chunks simulated model diff wall
for n in $NODES_LIST; do
    seq 0 $((n - 1)) | sed 's/^/node/' > "$tmp/hosts"
    for gbit in $RATES; do
        cat > "$tmp/platform.xml" <<EOF
<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <cluster id="cluster" prefix="node" radical="0-$((n - 1))" suffix="" speed="1Gf"
           bw="${gbit}Gbps" lat="1us" sharing_policy="SPLITDUPLEX"/>
</platform>
EOF
        for bytes in $STACKS; do
            chunk=$(chunk_for "$n" "$bytes")
            for algo in $ALGOS; do
                start=$(date +%s.%N)
                line=$(smpirun -np "$n" -platform "$tmp/platform.xml" -hostfile "$tmp/hosts" \
                    "${cfg[@]}" "$sim" "$algo" "$bytes" "$chunk" "$(depth_for "$n" "$algo")" \
                    2> "$tmp/err" | tail -n 1) || {
                    echo "sim.sh: $n nodes, $gbit Gbit/s, $bytes bytes, $algo failed:" >&2
                    tail -n 5 "$tmp/err" >&2
                    exit 1
                }
                wall=$(awk "BEGIN { print $(date +%s.%N) - $start }")
                IFS=, read -r _ _ _ _ chunks simulated <<< "$line"
                m=$algo
                [ "$algo" = bcast ] && { m=mpi; chunk=0; }
                predicted=$(python3 "$model" bcast "$n" "$gbit" "$bytes" "$((chunk ? chunk : 1))" "$m")
                diff=$(python3 -c "print('%+.0f' % (100 * ($simulated / $predicted - 1)))")
                d=$(depth_for "$n" "$algo")
                [ "$algo" = bcast ] && d=0
                echo "$n,$gbit,$bytes,$algo,$chunk,$d,$chunks,$simulated,$predicted,$diff,$(printf '%.0f' "$wall")" >> "$out"
                printf '%-7s %-6s %-12s %-9s %-10s %5s %7s %11.3fs %11.3fs %6s%% %7.0fs\n' "$n" \
                    "$gbit" "$bytes" "$algo" "$chunk" "$d" "$chunks" "$simulated" "$predicted" \
                    "$diff" "$wall"
            done
        done
    done
done
