#!/bin/bash
# SPDX-License-Identifier: MIT
#
# storm.sh: the import storm at the scale of one machine.  N interpreters
# (N = 1 2 4 8 16) import MODULE at once, their trees on a shared file
# system stood in for by slowfs (one request at a time, DELAY µs per
# metadata operation), five ways:
#   naive     the trees of MANIFEST, through slowfs, first on PYTHONPATH;
#   zip       the remedy of 2014: each tree's pure-Python files in a zip on
#             the shared file system, first on PYTHONPATH, the trees after
#             them for what a zip cannot hold (.so files, data read by path);
#   stage-py  stage-py reads the trees through slowfs once and stages them
#             into a private /dev/shm, then the N interpreters import from
#             there (the staging time is counted);
#   bundle    the same from a bundle that stage-py pack wrote beforehand
#             (from cron: not counted), on the shared file system;
#   env       stage-py stages the whole environment of ENV_MANIFEST (a
#             [python] section, default etc/fenics-env.ini: the interpreter
#             itself) read through slowfs, and the N interpreters are the
#             staged one, first on PATH.
# Prints a CSV table: way, N, seconds (wall time until the last
# interpreter is done), metadata operations that slowfs served.
#
#     tests/bench/storm.sh [-m MANIFEST] [-e ENV_MANIFEST] [-i MODULE] [-d DELAY]
#
# MODULE defaults to dolfin when FEniCS is installed, else sympy (with
# MANIFEST a manifest of sympy's trees).  Needs root (mounts) and slowfs
# (make tests/bench/slowfs); see tests/bench/lib.sh for the binary.
rounds=1 delay=200
. "$(dirname "$0")/lib.sh" "$@"
slowfs=$(dirname "$STAGE_PY")/tests/bench/slowfs
[ -x "$slowfs" ] || { echo "storm.sh: build $slowfs first (make tests/bench/slowfs)" >&2; exit 77; }
pick_module

mnt=$T_TMP/slow
mkdir -p "$mnt" "$T_TMP/shm"
# the manifest, reading its trees through slowfs
sed -E "s|^source = /|source = $mnt/|" "$manifest" >"$T_TMP/slow.ini"
chmod 644 "$T_TMP/slow.ini"
# bundle: packed once, beforehand; the job reads it through slowfs
sed -E "s|^\[stage\]$|[stage]\nbundle = $mnt$T_TMP/b.bundle|" "$T_TMP/slow.ini" >"$T_TMP/bundle.ini"
chmod 644 "$T_TMP/bundle.ini"
# env: the whole environment (a [python] section), its prefix read through slowfs
sed -E "s|^prefix = /|prefix = $mnt/|" "$env_manifest" >"$T_TMP/env-slow.ini"
chmod 644 "$T_TMP/env-slow.ini"
# naive: the same trees through slowfs, first on PYTHONPATH
naive_path=$(sed -n -E "s|^source = (.*)|$mnt\\1|p" "$manifest" | paste -sd:)

mount_slow() {
    "$slowfs" / "$mnt" --delay-us "$delay" --count "$T_TMP/count" &
    for _ in $(seq 100); do mountpoint -q "$mnt" && return; sleep 0.05; done
    echo "storm.sh: slowfs did not mount" >&2; exit 1
}
umount_slow() { umount "$mnt"; wait; }

# imports N [PYTHONPATH]: N interpreters at once; prints the seconds
imports() {
    local n=$1 t0 t1 i pids=()
    t0=$(date +%s.%N)
    for ((i = 0; i < n; i++)); do
        PYTHONPATH=$2 $py -c "import $module" >/dev/null 2>&1 & pids+=($!)
    done
    local bad=0
    for i in "${pids[@]}"; do wait "$i" || bad=1; done
    [ "$bad" = 0 ] || return 1
    t1=$(date +%s.%N)
    python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"
}

# zip: one zip per tree, kept on the shared file system
make_zips "$T_TMP/zips"
zip_path=$(ls "$T_TMP"/zips/*.zip | sed "s|^|$mnt|" | paste -sd:):$naive_path

mount_slow
"$STAGE_PY" pack -q -m "$T_TMP/bundle.ini" -o "$T_TMP/b.bundle" >/dev/null
umount_slow

echo "way,interpreters,seconds,metadata_ops"
for n in 1 2 4 8 16; do
    mount_slow
    s=$(imports "$n" "$zip_path" || echo failed)
    umount_slow
    echo "zip,$n,$s,$(cat "$T_TMP/count")"

    mount_slow
    s=$(imports "$n" "$naive_path") || { echo "storm.sh: an import failed" >&2; exit 1; }
    umount_slow
    echo "naive,$n,$s,$(cat "$T_TMP/count")"

    for way in stage-py bundle env; do
        ini=$T_TMP/slow.ini runpy=$py
        [ $way = bundle ] && ini=$T_TMP/bundle.ini
        # the whole environment: its interpreter, staged, first on PATH
        [ $way = env ] && ini=$T_TMP/env-slow.ini runpy=python3
        mount_slow
        t0=$(date +%s.%N)
        # a private /dev/shm: the staged copy and nothing else of this host's
        unshare --mount --propagation private sh -c '
            mount -t tmpfs stage-py-bench /dev/shm &&
            "$1" -q -m "$2" -o "$3/env.sh" &&
            . "$3/env.sh" && shift 3 && exec "$@"' _ "$STAGE_PY" "$ini" "$T_TMP" \
            bash -c "$(declare -f imports); py=$runpy module=$module; imports $n \"\${PYTHONPATH-}\" >/dev/null"
        t1=$(date +%s.%N)
        umount_slow
        echo "$way,$n,$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"),$(cat "$T_TMP/count")"
    done
done
_t_finished=1
