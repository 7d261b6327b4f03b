#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs that share a node: the copy's lock makes one run stage a copy while
# the others wait for it and use it; past --lock-wait a run makes a private
# copy instead of hanging; concurrent multi-node jobs on the same nodes
# finish without deadlock, each node staged once.  --force stages again.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 flock

uid=$(id -u)
src=$T_TMP/src
t_make_tree "$src" 30 3000000
printf '[stage]\nname = s\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"
export SLURM_JOB_ID=500

# stage NODES TAG [options]: one run; stats in $T_TMP/TAG.json
stage() {
    local nodes=$1 tag=$2
    shift 2
    t_cluster "$nodes" 1 "$STAGE_PY" -m "$T_TMP/m.ini" --stats "$T_TMP/$tag.json" -v "$@" \
        >"$T_TMP/$tag.out" 2>"$T_TMP/$tag.err"
}
stat_of() { t_json "$T_TMP/$1.json" "$2"; }
cache() { printf '%s\n' "$(t_node_shm "$1")/stage-py-$uid"; }
copies() { find "$(cache "$1")" -mindepth 1 -maxdepth 1 -name 's-*' | wc -l; }
# together NODES TAG1 TAG2: two runs at once; prints their exit statuses
together() {
    local p1 p2 r1=0 r2=0
    stage "$1" "$2" & p1=$!
    stage "$1" "$3" & p2=$!
    wait "$p1" || r1=$?
    wait "$p2" || r2=$?
    echo "$r1:$r2"
}
# held LOCK: wait until the lock taken in the background is held
held() { local i; for i in $(seq 1 100); do flock -n "$1" true || return 0; sleep 0.1; done; return 1; }
leftovers() { find "$(cache "$1")" -mindepth 1 -maxdepth 1 -name '.tmp-*' -o -mindepth 1 -maxdepth 1 -name '.new-*' | wc -l; }

t_ok "a first run on one node" stage 1 first
key=$(stat_of first key)
copy=s-$key
lock=$(cache 1)/.lock-$copy
t_ok "... leaves the copy's lock file beside it" test -f "$lock"
mv "$(cache 1)/$copy" "$T_TMP/stash"

# Another run holds the lock, publishes its copy once this run waits for
# it, releases.  (flock(1) stands in for it: the same lock, held from
# outside the node.)
flock "$lock" sh -c "until [ -e '$T_TMP/go' ]; do sleep 0.1; done; mv '$T_TMP/stash' '$(cache 1)/$copy'" &
holder=$!
held "$lock"
stage 1 wait & run=$!
for _ in $(seq 1 600); do
    grep -q "another run is staging" "$T_TMP/wait.err" 2>/dev/null && break
    sleep 0.1
done
touch "$T_TMP/go"
rc=0; wait "$run" || rc=$?
t_is "$rc" 0 "a run finds another run staging the same copy"
wait "$holder"
t_is "$(stat_of wait waited_nodes):$(stat_of wait cold_nodes):$(stat_of wait bytes_broadcast)" \
    1:0:0 "... waits for it, and nothing is sent"
t_like "$(cat "$T_TMP/wait.err")" "waited [0-9.]+ s for another run's copy" "... and says so"
t_ok "... then uses that copy (pinned for this job)" test -f "$(cache 1)/.pins/500/$copy"
t_is "$(copies 1):$(leftovers 1)" 1:0 "... one copy, nothing left behind"

# The other run fails: it releases the lock without a copy.
rm -rf "$(cache 1)/${copy:?}"
flock "$lock" sleep 2 &
holder=$!
held "$lock"
t_ok "the other run ends without a copy" stage 1 failed
wait "$holder"
t_is "$(stat_of failed waited_nodes):$(stat_of failed cold_nodes)" 1:1 \
    "... this run waited, then staged the copy itself"
t_ok "... which is complete" test -f "$(cache 1)/$copy/.stage-py.json" -a -f "$(cache 1)/$copy$src/pkg/m30.py"

# The other run hangs: past --lock-wait, a private copy rather than a hang.
rm -rf "$(cache 1)/${copy:?}"
flock -o "$lock" sleep 60 &     # -o: the lock goes with flock, not sleep
holder=$!
held "$lock"
t_ok "the other run hangs, --lock-wait 1s" stage 1 hung --lock-wait 1s
t_like "$(cat "$T_TMP/hung.err")" "another run has been staging '/dev/shm/stage-py-$uid/$copy' for over 1 s \(--lock-wait\): making a private copy here" \
    "... warns"
t_is "$(stat_of hung cold_nodes)" 1 "... and stages a copy of its own"
t_ok "... published under the copy's name" test -f "$(cache 1)/$copy$src/pkg/m30.py"
pkill -P "$holder" sleep || true     # flock then ends, and its lock with it
wait "$holder" 2>/dev/null || true

# Two runs at once on one node, for real.
rm -rf "$(cache 1)/${copy:?}"
t_is "$(together 1 a1 a2)" 0:0 "two runs at once on one node both succeed"
t_is "$(( $(stat_of a1 cold_nodes) + $(stat_of a2 cold_nodes) ))" 1 "... one of them staged the copy"
t_is "$(copies 1):$(leftovers 1)" 1:0 "... one copy, nothing left behind"
t_is "$(grep -l "$copy" "$T_TMP/a1.out" "$T_TMP/a2.out" | wc -l)" 2 "... both settings name it"

# Two 2-node jobs at once on the same two nodes: each node is staged by one
# of them, the other waits; neither job waits for the other's transfer.
rm -rf "$(cache 1)/${copy:?}" "$(cache 2)/${copy:?}"
t_is "$(together 2 b1 b2)" 0:0 "two 2-node jobs sharing both nodes finish (no deadlock)"
t_is "$(( $(stat_of b1 cold_nodes) + $(stat_of b2 cold_nodes) ))" 2 "... each node staged once"
t_is "$(copies 1):$(copies 2):$(leftovers 1):$(leftovers 2)" 1:1:0:0 "... one copy per node"

# A third run stages both nodes, then fails without a copy, node1 first,
# while two 2-node jobs wait for it.  Neither job takes node1's lock again
# while its node2 still waits: a job holding node1 while it waits for node2,
# against one holding node2 while it waits for node1, would wait in a cycle
# until --lock-wait.  (flock -o: the lock goes with flock itself.)
rm -rf "$(cache 1)/${copy:?}" "$(cache 2)/${copy:?}"
holders=()
for k in 1 2; do
    flock -o "$(cache $k)/.lock-$copy" sh -c 'while [ ! -e "$1" ]; do sleep 0.1; done' \
        sh "$T_TMP/go$k" &
    holders[k]=$!
    held "$(cache $k)/.lock-$copy"
done
h1=${holders[1]} h2=${holders[2]}
together 2 d1 d2 --lock-wait 60s >"$T_TMP/d.rc" &
pair=$!
waiting() { grep -c "another run is staging" "$T_TMP/d1.err" "$T_TMP/d2.err" 2>/dev/null |
                awk -F: '{ n += $2 } END { print n + 0 }'; }
for _ in $(seq 1 300); do [ "$(waiting)" -ge 4 ] && break; sleep 0.1; done
t_is "$(waiting)" 4 "two 2-node jobs wait for a run that holds both nodes"
touch "$T_TMP/go1"
wait "$h1"
sleep 2     # the waiting runs look every 200 ms at most
t_ok "... which leaves node1 without a copy: neither job holds node1's lock while node2 waits" \
    flock -n "$(cache 1)/.lock-$copy" true
touch "$T_TMP/go2"
wait "$h2"
wait "$pair"
t_is "$(cat "$T_TMP/d.rc")" 0:0 "... then node2 too: both jobs finish"
t_is "$(grep -c "private copy" "$T_TMP/d1.err" "$T_TMP/d2.err" | awk -F: '{ n += $2 } END { print n }')" 0 \
    "... without waiting out --lock-wait"
t_is "$(( $(stat_of d1 cold_nodes) + $(stat_of d2 cold_nodes) ))" 2 "... each node staged once"
t_is "$(copies 1):$(copies 2):$(leftovers 1):$(leftovers 2)" 1:1:0:0 "... one copy per node"

# Half the job's nodes busy: another run holds node2's lock as if staging
# it; this job's transfer to node1 does not wait for that run.
rm -rf "$(cache 1)/${copy:?}" "$(cache 2)/${copy:?}"
flock "$(cache 2)/.lock-$copy" sleep 3 &
holder=$!
held "$(cache 2)/.lock-$copy"
t_ok "a 2-node job whose second node is being staged by another run" stage 2 c1
wait "$holder"
t_is "$(stat_of c1 cold_nodes):$(stat_of c1 waited_nodes)" 2:1 \
    "... stages node1 at once, waits for node2, then stages it after the other run left none"

# --force: stage again although every node holds the copy.
ino=$(stat -c %i "$(cache 1)/$copy$src/pkg/m1.py")
t_ok "--force on warm nodes" stage 2 force --force
t_is "$(stat_of force cold_nodes)" 2 "... stages every node again"
t_ok "... the copy was replaced" test "$(stat -c %i "$(cache 1)/$copy$src/pkg/m1.py")" != "$ino"
t_is "$(copies 1):$(copies 2):$(leftovers 1):$(leftovers 2)" 1:1:0:0 "... in one swap: one copy, nothing left"
t_done
