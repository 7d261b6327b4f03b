#!/bin/bash
# SPDX-License-Identifier: MIT
#
# storm.sh: the import storm at the scale of one machine.  N interpreters
# (N = 1 2 4 8 16, or STORM_NS) import MODULE at once ("from dolfin import *" for
# dolfin).  In each run the interpreter's own trees (its executable and
# every sys.path entry, as `python3 -I` lists them) are the shared file
# system: slowfs, which serves one request at a time and adds DELAY µs to
# every metadata operation, is bind-mounted over each of them, at its own
# path, in a mount namespace of the run's own.  Seven ways:
#   naive     the interpreters import from there;
#   zip       the remedy of 2014: each tree of MANIFEST's pure-Python files
#             in a zip, kept on the slow file system, first on PYTHONPATH
#             (the trees stay behind them for what a zip cannot hold: .so
#             files, data read by path);
#   stage-py  stage-py stages the trees of MANIFEST (reading them through
#             slowfs) into the run's own /dev/shm, then the interpreters
#             import with the staged trees first on PYTHONPATH;
#   bundle    the same from a bundle that stage-py pack wrote beforehand
#             (from cron: not counted), kept on the slow file system;
#   env       stage-py stages the whole environment of ENV_MANIFEST (a
#             [python] section, default etc/fenics-env.ini), and the
#             interpreters are the staged one, first on PATH;
#   env-bundle  the same from a bundle of ENV_MANIFEST that stage-py pack
#             wrote beforehand (not counted), kept on the slow file
#             system, staged with stage-py --bundle;
#   warm      env-bundle again, on a node that holds the copy already (a
#             second job): the bundle's trailer is read, nothing is sent.
# Staging is counted.  ROUNDS rounds (default 3), each of every N and every
# way in turn, so that a change in the machine's load falls on all ways
# alike.  Prints a CSV table: way, N, seconds (the median over the rounds
# of the wall time until the last interpreter is done, or "failed" if a
# run failed), metadata operations that slowfs served (the median), and
# every round's seconds.
#
#     tests/bench/storm.sh [-m MANIFEST] [-e ENV_MANIFEST] [-i MODULE] [-d DELAY] [-r ROUNDS]
#
# MODULE defaults to dolfin when FEniCS is installed, else sympy (with
# MANIFEST a manifest of sympy's trees).  Needs root (mounts) and slowfs
# (make tests/bench/slowfs); see tests/bench/lib.sh for the binary.
rounds=3 delay=200
. "$(dirname "$0")/lib.sh" "$@"
slow_trees storm.sh
pick_module

# bundle: packed once, beforehand, kept on the slow file system
"$STAGE_PY" pack -q -m "$manifest" -o "$T_TMP/b.bundle" >/dev/null
"$STAGE_PY" pack -q -m "$env_manifest" -o "$T_TMP/env.bundle" >/dev/null
sed -E "s|^\[stage\]$|[stage]\nbundle = $mnt$T_TMP/b.bundle|" "$manifest" >"$T_TMP/bundle.ini"
chmod 644 "$T_TMP/bundle.ini"
# zip: one zip per tree, kept on the slow file system
make_zips "$T_TMP/zips"
zip_path=$(ls "$T_TMP"/zips/*.zip | sed "s|^|$mnt|" | paste -sd:)

mount_slow() {
    "$slowfs" / "$mnt" --delay-us "$delay" --count "$T_TMP/count" &
    export SLOWFS=$!
    for _ in $(seq 100); do mountpoint -q "$mnt" && return; sleep 0.05; done
    echo "storm.sh: slowfs did not mount" >&2; exit 1
}
umount_slow() { umount "$mnt"; wait; }

# imports N: N interpreters at once ($py, PYTHONPATH as it is); prints
# the seconds, or fails
imports() {
    local n=$1 t0 t1 i pids=()
    t0=$(date +%s.%N)
    for ((i = 0; i < n; i++)); do
        $py -c "$import_code" >/dev/null 2>&1 & pids+=($!)
    done
    local bad=0
    for i in "${pids[@]}"; do wait "$i" || bad=1; done
    [ "$bad" = 0 ] || return 1
    t1=$(date +%s.%N)
    python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"
}

# run WAY N: one run in a mount namespace of its own, where the trees are
# slowfs and /dev/shm is a fresh tmpfs; prints "seconds,metadata_ops"
run() {
    local way=$1 n=$2 s
    mount_slow
    s=$(unshare --mount --propagation private bash -c '
        set -e
        while read -r t; do mount --bind "$MNT$t" "$t"; done <"$TMP/trees"
        mount -t tmpfs stage-py-bench /dev/shm
        t0=$(date +%s.%N)
        case $WAY in
            naive) ;;
            zip) export PYTHONPATH=$ZIPS ;;
            stage-py) "$STAGE" -q -m "$MANIFEST" -o /dev/shm/env.sh && . /dev/shm/env.sh ;;
            bundle) "$STAGE" -q -m "$TMP/bundle.ini" -o /dev/shm/env.sh && . /dev/shm/env.sh ;;
            env) "$STAGE" -q -m "$ENV_MANIFEST" -o /dev/shm/env.sh && . /dev/shm/env.sh && py=python3 ;;
            env-bundle | warm)
                if [ "$WAY" = warm ]; then      # the first job, not counted
                    "$STAGE" -q --bundle "$MNT$TMP/env.bundle" -o /dev/shm/env.sh
                    kill -USR1 "$SLOWFS"        # slowfs counts from here
                    t0=$(date +%s.%N)
                fi
                "$STAGE" -q --bundle "$MNT$TMP/env.bundle" -o /dev/shm/env.sh && . /dev/shm/env.sh &&
                    py=python3 ;;
        esac
        eval "$IMPORTS"
        imports "$N" >/dev/null
        t1=$(date +%s.%N)
        python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"' \
        2>>"$T_TMP/errors") || s=failed
    umount_slow
    echo "$s,$(cat "$T_TMP/count")"
}
IMPORTS=$(declare -f imports)
export MNT=$mnt TMP=$T_TMP STAGE=$STAGE_PY MANIFEST=$manifest ENV_MANIFEST=$env_manifest \
    ZIPS=$zip_path py import_code IMPORTS

for ((r = 1; r <= rounds; r++)); do
    for n in ${STORM_NS:-1 2 4 8 16}; do
        for way in ${STORM_WAYS:-naive zip stage-py bundle env env-bundle warm}; do
            N=$n WAY=$way
            export N WAY
            echo "$way,$n,$(run "$way" "$n")" >>"$T_TMP/runs"
            echo "storm.sh: round $r, $way, $n: $(tail -1 "$T_TMP/runs" | cut -d, -f3-)" >&2
        done
    done
done
# the medians, in the order of the runs
python3 - "$T_TMP/runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    way, n, s, ops = line.strip().split(",")
    runs.setdefault((way, int(n)), []).append((s, int(ops)))
print("way,interpreters,seconds,metadata_ops,rounds")
for (way, n), rs in sorted(runs.items(), key=lambda kv: kv[0][1]):
    secs = [s for s, _ in rs]
    med = "failed" if "failed" in secs else "%.2f" % statistics.median(float(s) for s in secs)
    print("%s,%d,%s,%d,%s" % (way, n, med, statistics.median(o for _, o in rs),
                              " ".join(s if s == "failed" else "%.2f" % float(s) for s in secs)))
PY
[ -s "$T_TMP/errors" ] && sed 's/^/storm.sh: a run said: /' "$T_TMP/errors" | sort -u | head -20 >&2
_t_finished=1
