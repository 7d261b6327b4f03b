#!/bin/bash
# SPDX-License-Identifier: MIT
#
# archer.sh: the figure of the 2014 ARCHER report that started this work, at
# the scale of one machine.  A Poisson solve with legacy DOLFIN
# (tests/bench/poisson.py, an MESH x MESH mesh) runs under
# `mpiexec -n N`, N = 1 2 4 8 16 (or ARCHER_NS), with the interpreter's trees
# behind slowfs (DELAY µs a metadata operation, one at a time), as storm.sh
# puts them, and so is the form compiler's cache (DIJITSO_CACHE_DIR, as on
# a shared home), filled beforehand by one serial run.  Two ways:
#   naive     every rank imports DOLFIN from there, and loads its compiled
#             forms from there;
#   staged    stage-py --bundle stages the whole environment and the cache
#             (etc/fenics-jit.ini) from a bundle packed beforehand (not
#             counted) and kept on the slow file system, then the ranks run
#             the staged python3.
# Staging is counted.  Prints CSV: way, N, total (the job's wall time, from
# the start of staging), compute (mesh, assembly and solve: the slowest
# rank's, as poisson.py reports it), metadata operations that slowfs
# served.  On this machine's 2 cores the computation cannot shrink as N
# grows; what the figure shows is the import growing beside it.
#
#     [MESH=900] [ARCHER_NS="1 2 4 8 16"] tests/bench/archer.sh [-d DELAY]
#
# Needs root (mounts), slowfs (make tests/bench/slowfs) and Debian's
# python3-dolfin; see tests/bench/lib.sh for the binary.
rounds=1 delay=100
. "$(dirname "$0")/lib.sh" "$@"
slow_trees archer.sh
$py -c 'import dolfin' 2>/dev/null || { echo "archer.sh: needs Debian's python3-dolfin" >&2; exit 77; }
MESH=${MESH:-900}
poisson=$here/tests/bench/poisson.py
# the form compiler's cache, filled once, then as slow as the trees
export DIJITSO_CACHE_DIR=$T_TMP/forms
$py "$poisson" 16 >/dev/null
echo "$DIJITSO_CACHE_DIR" >>"$T_TMP/trees"
sed "s|/apps/fenics/dijitso-cache|$DIJITSO_CACHE_DIR|" "$here/etc/fenics-jit.ini" >"$T_TMP/jit.ini"
chmod 644 "$T_TMP/jit.ini"
"$STAGE_PY" pack -q -m "$T_TMP/jit.ini" -o "$T_TMP/env.bundle" >/dev/null

# run WAY N: one run in a mount namespace of its own; prints
# "total,compute,metadata_ops"
run() {
    "$slowfs" / "$mnt" --delay-us "$delay" --count "$T_TMP/count" &
    local fs=$! k
    for k in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.05; done
    unshare --mount --propagation private bash -c '
        set -e
        while read -r t; do mount --bind "$MNT$t" "$t"; done <"$TMP/trees"
        mount -t tmpfs stage-py-bench /dev/shm
        py=/usr/bin/python3
        t0=$(date +%s.%N)
        if [ "$WAY" = staged ]; then
            "$STAGE" -q --bundle "$MNT$TMP/env.bundle" -o /dev/shm/env.sh
            . /dev/shm/env.sh
            py=python3
        fi
        c=$(mpiexec.openmpi -n "$N" --oversubscribe --bind-to none "$py" "$POISSON" "$MESH" |
            sed -n "s/^compute //p")
        t1=$(date +%s.%N)
        python3 -c "import sys; print(\"%.3f,%s\" % (float(sys.argv[2]) - float(sys.argv[1]), sys.argv[3]))" \
            "$t0" "$t1" "$c"' 2>>"$T_TMP/errors" || echo "failed,"
    umount "$mnt"
    wait "$fs"
}
# one line: the run's, and slowfs's count
run_line() { local r; r=$(run); echo "$r,$(cat "$T_TMP/count")"; }
export MNT=$mnt TMP=$T_TMP STAGE=$STAGE_PY POISSON=$poisson MESH

echo "way,ranks,total,compute,metadata_ops"
for n in ${ARCHER_NS:-1 2 4 8 16}; do
    for way in naive staged; do
        N=$n WAY=$way
        export N WAY
        echo "$way,$n,$(run_line)"
    done
done
[ -s "$T_TMP/errors" ] && sed 's/^/archer.sh: a run said: /' "$T_TMP/errors" | sort -u | head -20 >&2
_t_finished=1
