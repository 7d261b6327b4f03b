#!/bin/bash
# SPDX-License-Identifier: MIT
#
# storm.sh: the import storm at the scale of one machine.  N interpreters
# (N = 1 2 4 8 16) import MODULE at once, their trees on a shared file
# system stood in for by slowfs (one request at a time, DELAY µs per
# metadata operation), three ways:
#   naive     the trees of MANIFEST, through slowfs, first on PYTHONPATH;
#   zip       the remedy of 2014: each tree's pure-Python files in a zip on
#             the shared file system, first on PYTHONPATH, the trees after
#             them for what a zip cannot hold (.so files, data read by path);
#   stage-py  stage-py reads the trees through slowfs once and stages them
#             into a private /dev/shm, then the N interpreters import from
#             there (the staging time is counted);
#   bundle    the same from a bundle that stage-py pack wrote beforehand
#             (from cron: not counted), on the shared file system.
# Prints a CSV table: way, N, seconds (wall time until the last
# interpreter is done), metadata operations that slowfs served.
#
#     tests/bench/storm.sh [-m MANIFEST] [-i MODULE] [-d DELAY]
#
# MODULE defaults to dolfin when FEniCS is installed, else sympy (with
# MANIFEST a manifest of sympy's trees).  Needs root (mounts) and slowfs
# (make tests/bench/slowfs); see tests/bench/lib.sh for the binary.
rounds=1
delay=200 module=
args=()
while [ $# -gt 0 ]; do
    case $1 in
        -i) module=$2; shift 2 ;;
        -d) delay=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]}"
. "$(dirname "$0")/lib.sh" "$@"
slowfs=$(dirname "$STAGE_PY")/tests/bench/slowfs
[ -x "$slowfs" ] || { echo "storm.sh: build $slowfs first (make tests/bench/slowfs)" >&2; exit 77; }
py=/usr/bin/python3
if [ -z "$module" ]; then
    module=sympy
    $py -c 'import dolfin' 2>/dev/null && module=dolfin
fi
if [ "$module" = sympy ] && [ "$manifest" = "$here/etc/fenics.ini" ]; then
    "$STAGE_PY" scan -q --python $py --import sympy -o "$T_TMP/sympy.ini"
    manifest=$T_TMP/sympy.ini
fi

mnt=$T_TMP/slow
mkdir -p "$mnt" "$T_TMP/shm"
# the manifest, reading its trees through slowfs
sed -E "s|^source = /|source = $mnt/|" "$manifest" >"$T_TMP/slow.ini"
chmod 644 "$T_TMP/slow.ini"
# bundle: packed once, beforehand; the job reads it through slowfs
sed -E "s|^\[stage\]$|[stage]\nbundle = $mnt$T_TMP/b.bundle|" "$T_TMP/slow.ini" >"$T_TMP/bundle.ini"
chmod 644 "$T_TMP/bundle.ini"
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

# zip: one zip per tree, of the .py files that the manifest stages (taken
# from a staged copy, so that include and exclude hold), kept on the
# shared file system
mkdir -p "$T_TMP/zips"
unshare --mount --propagation private sh -c '
    mount -t tmpfs stage-py-bench /dev/shm && "$1" -q -m "$2" -o "$3/plain.sh" &&
    . "$3/plain.sh" && exec python3 - "$STAGE_PY_DIR" "$3/zips" "$4"' _ \
    "$STAGE_PY" "$manifest" "$T_TMP" "$manifest" <<'PY'
import os, re, sys, zipfile
copy, out, manifest = sys.argv[1:]
for k, src in enumerate(re.findall(r'^source = (.*)$', open(manifest).read(), re.M)):
    root = copy + src
    with zipfile.ZipFile(os.path.join(out, '%02d.zip' % k), 'w') as z:
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if x != '__pycache__']
            for f in files:
                if f.endswith('.py'):
                    z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), root))
PY
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

    for way in stage-py bundle; do
        ini=$T_TMP/slow.ini
        [ $way = bundle ] && ini=$T_TMP/bundle.ini
        mount_slow
        t0=$(date +%s.%N)
        # a private /dev/shm: the staged copy and nothing else of this host's
        unshare --mount --propagation private sh -c '
            mount -t tmpfs stage-py-bench /dev/shm &&
            "$1" -q -m "$2" -o "$3/env.sh" &&
            . "$3/env.sh" && shift 3 && exec "$@"' _ "$STAGE_PY" "$ini" "$T_TMP" \
            bash -c "$(declare -f imports); py=$py module=$module; imports $n \"\$PYTHONPATH\" >/dev/null"
        t1=$(date +%s.%N)
        umount_slow
        echo "$way,$n,$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"),$(cat "$T_TMP/count")"
    done
done
_t_finished=1
