#!/bin/bash
# SPDX-License-Identifier: MIT
# The fake cluster with a real network (T_NET_RATE, tests/lib.sh): each
# fake node in a network namespace of its own, its link limited by a token
# bucket.  The links are really used and really limited: a stream of known
# size to another node takes at least size / rate; without the limit the
# same run is not held to it.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need ip tc
[ "${T_MPI:-openmpi}" = mpich ] && t_need cc
# With MPICH, UCX is held to TCP and t_cluster preloads the remedy for
# MPICH 4.0.2's MPI_Finalize over UCX's TCP (_t_mpich_tcp_finalize in
# tests/lib.sh): without it, a run hangs in MPI_Finalize when one node
# finishes before another (a slow link), whatever the token bucket.
if ip link add "sbprobe$$" type bridge 2>/dev/null; then
    ip link del "sbprobe$$"
else
    t_skip_all "cannot make a bridge here (network namespaces need root)"
fi

src=$T_TMP/src
mkdir -p "$src/pkg"
head -c 12000000 /dev/urandom >"$src/pkg/blob.bin"
echo 'v = 1' >"$src/pkg/__init__.py"
printf '[stage]\nname = net\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"
wipe() { rm -rf "$T_NODES"/node*/shm/stage-py-*; }
stage() { t_run "$1" 1 -m "$T_TMP/m.ini" --stats "$T_TMP/st.json" -o "$T_TMP/env.sh"; }
# seconds BYTES RATE_MBIT: the least time BYTES take at that rate
least() { python3 -c 'import sys; print(int(sys.argv[1]) * 8 / (float(sys.argv[2]) * 1e6))' "$1" "$2"; }
bcast_s() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["seconds"]["broadcast"])' "$T_TMP/st.json"; }
at_least() { python3 -c 'import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]))' "$1" "$2"; }

export T_NET_RATE=100mbit
t_ok "a run on two fake nodes, each on a 100 Mbit/s link" stage 2
t_is "$(t_err)" "" "... says nothing at the default level, progress included"
bytes=$(t_stat bytes_broadcast)
min=$(least "$bytes" 100)
t_ok "... the stream to the other node took at least size/rate ($(bcast_s) s for $bytes bytes, at least $min s)" \
    at_least "$(bcast_s)" "$min"
t_is "$(t_stat cold_nodes)" 2 "... both nodes cold"
copy=$(t_staged_dir "$T_TMP/env.sh")
t_ok "... node2's copy is whole" cmp "$src/pkg/blob.bin" "$(t_node_shm 2)/${copy#/dev/shm/}$src/pkg/blob.bin"
ns=$(t_net_ns 2)
t_like "$(ip netns exec "$ns" cat /sys/class/net/eth0/statistics/rx_bytes)" "^[0-9]{8,}$" \
    "... and node2's link carried the stream (its rx_bytes)"

# node2's link alone at 50 Mbit/s: that node holds the stream to its rate
wipe
export T_NET_RATE_node2=50mbit
t_ok "node2's link at 50 Mbit/s" stage 2
min=$(least "$bytes" 50)
t_ok "... the stream took at least size/(its rate) ($(bcast_s) s, at least $min s)" \
    at_least "$(bcast_s)" "$min"
unset T_NET_RATE_node2

# --- faults on a real network --------------------------------------------------
mkdir -p "$T_TMP/big/pkg"
head -c 40000000 /dev/urandom >"$T_TMP/big/pkg/blob.bin"
printf '[stage]\nname = big\n[tree a]\nsource = %s\n' "$T_TMP/big" >"$T_TMP/big.ini"
rx() { ip netns exec "$(t_net_ns "$1")" cat /sys/class/net/eth0/statistics/rx_bytes; }
# stage_py_on K: stage-py processes on node K (in its network namespace)
stage_py_on() {
    local pid n=0
    for pid in $(ip netns pids "$(t_net_ns "$1")" 2>/dev/null); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = stage-py ] && n=$((n + 1))
    done
    echo "$n"
}

# One link cut in the middle of the stream: the root names that node, not
# the nodes behind it, and the ranks it can reach end.  The launcher
# itself may hang on the lost node (Open MPI's does): T_TIMEOUT bounds it.
wipe
export T_NET_RATE=50mbit
t_net_up 4
base=$(rx 2)
T_TIMEOUT=40 t_run 4 1 -m "$T_TMP/big.ini" --timeout 8s -v -o "$T_TMP/env.sh" & job=$!
for _ in $(seq 1 600); do [ $(($(rx 2) - base)) -gt 3000000 ] && break; sleep 0.05; done
ip -n "$(t_net_ns 2)" link set eth0 down
for _ in $(seq 1 300); do grep -q "timeout:" "$T_TMP/stderr" 2>/dev/null && break; sleep 0.1; done
t_like "$(grep 'timeout:' "$T_TMP/stderr")" \
    "^stage-py: timeout: 8 s passed in phase 'stream'; not finished: node2, where the stream stalls \(and 2 other nodes, which wait for it\)$" \
    "node2's link cut in the stream: the root names node2, where the stream stalls"
for _ in $(seq 1 200); do
    [ "$(stage_py_on 1)$(stage_py_on 3)$(stage_py_on 4)" = 000 ] && break
    sleep 0.1
done
t_is "$(stage_py_on 1):$(stage_py_on 3):$(stage_py_on 4)" 0:0:0 \
    "... and every rank it can reach has ended"
ip -n "$(t_net_ns 2)" link set eth0 up
wait "$job" || true     # 3, or 124 where the launcher hung on the lost node
t_is "$(find "$T_NODES" -name '.tmp-*' -path '*node[134]*' | wc -l)" 0 \
    "... leaving no temporary directory on the nodes it reached"

# One slow link (a tenth of the others): the run completes, and -v says
# which node holds the stream back.
wipe
export T_NET_RATE=100mbit T_NET_RATE_node3=10mbit
t_ok "node3's link at a tenth of the others' rate: the run completes" \
    t_run 3 1 -m "$T_TMP/m.ini" -v -o "$T_TMP/env.sh"
t_like "$(t_err)" "^stage-py: \[[0-9.]+\] node1: (node[0-9]: )?the stream waits for node3$" \
    "... and -v names node3 as the one the stream waits for"
t_like "$(t_err)" "^stage-py: \[[0-9.]+\] node1: sent [0-9.]+ [KM]iB of [0-9.]+ MiB \([0-9]+ %\), [0-9]+ of 4 entries, [0-9.]+ [KM]iB/s(, [0-9]+ s left)?; furthest behind: node[23], [0-9]+ chunks? behind$" \
    "... and -v prints progress lines: bytes, entries, rate, time left, the node furthest behind"
t_ok "... about one a second" test "$(t_err | grep -c '\] node1: sent ')" -ge 3
copy=$(t_staged_dir "$T_TMP/env.sh")
t_ok "... node3's copy is whole" cmp "$src/pkg/blob.bin" "$(t_node_shm 3)/${copy#/dev/shm/}$src/pkg/blob.bin"
# from a bundle: the archive's bytes, said to be those, and no entries
"$STAGE_PY" pack -q -m "$T_TMP/m.ini" -o "$T_TMP/m.bundle" >/dev/null
wipe
t_ok "the same from a bundle" t_run 3 1 --bundle "$T_TMP/m.bundle" -v -o "$T_TMP/env.sh"
t_like "$(t_err)" "^stage-py: \[[0-9.]+\] node1: sent [0-9.]+ [KM]iB of [0-9.]+ MiB of archive \([0-9]+ %\), [0-9.]+ [KM]iB/s(, [0-9]+ s left)?; furthest behind: node[23], [0-9]+ chunks? behind$" \
    "... -v counts the archive's bytes, and says so"
unset T_NET_RATE_node3

# Loss on a link: TCP makes up for it.
wipe
export T_NET_LOSS_node2=1
t_ok "1 % of the packets to node2 lost: the run completes" \
    t_run 3 1 -m "$T_TMP/m.ini" -o "$T_TMP/env.sh"
t_ok "... node2's copy is whole" cmp "$src/pkg/blob.bin" "$(t_node_shm 2)/${copy#/dev/shm/}$src/pkg/blob.bin"
t_like "$(ip netns exec "$(t_net_ns 2)" nft list table inet stgloss)" "numgen random mod 1000 < 10 drop" \
    "... (the loss was in place)"
unset T_NET_LOSS_node2

t_done
