# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# lib.sh: prelude for stage-py's benchmarks (bash), after tests/lib.sh,
# whose fake cluster they run on.
#
#     rounds=5; . "$(dirname "$0")/lib.sh" "$@"
#
# Parses -m MANIFEST (default etc/fenics.ini), -e ENV_MANIFEST (a whole
# environment; default etc/fenics-env.ini), -n NODES (default 3), -r
# ROUNDS (default: $rounds), -i MODULE (default: see pick_module) and -d
# DELAY (µs, default: $delay), and finds the binary: $STAGE_PY, else
# ./stage-py (the build directory; `make bench` sets STAGE_PY).
# shellcheck disable=SC2034  # its variables are for the benchmarks that source it
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
manifest=$here/etc/fenics.ini env_manifest=$here/etc/fenics-env.ini
nodes=3 rounds=${rounds:-3} module='' delay=${delay:-200}
while getopts m:e:n:r:i:d: o; do
    case $o in
        m) manifest=$OPTARG ;;
        e) env_manifest=$OPTARG ;;
        n) nodes=$OPTARG ;;
        r) rounds=$OPTARG ;;
        i) module=$OPTARG ;;
        d) delay=$OPTARG ;;
        *) echo "usage: $0 [-m MANIFEST] [-e ENV_MANIFEST] [-n NODES] [-r ROUNDS] [-i MODULE] [-d DELAY_US]" >&2
           exit 2 ;;
    esac
done
STAGE_PY=$(realpath "${STAGE_PY:-./stage-py}")
srcdir=$here
. "$here/tests/lib.sh"
unshare --mount --uts true 2>/dev/null || {
    echo "$(basename "$0"): needs root (mount namespaces), like the tests" >&2
    exit 77
}
# The fake nodes' /dev/shm is memory, as on a real node: one tmpfs holds
# every node's directory (tests/fake-rsh bind-mounts $T_NODES/nodeK/shm),
# where the tests keep them on whatever file system holds $TMPDIR.
mount -t tmpfs -o mode=0755 stage-py-bench-nodes "$T_NODES"
t_cleanup() { umount "$T_NODES"; }
# wipe: no node holds a copy
wipe() { local k; for ((k = 1; k <= nodes; k++)); do rm -rf "$(t_node_shm $k)"/stage-py-*; done; }

py=/usr/bin/python3

# slow_trees NAME: for a benchmark (NAME) of the shared file system: slowfs
# (built beside the binary, else exit 77), its mount point mnt, and
# $T_TMP/trees: the interpreter's trees, its executable and the sys.path
# entries, none inside another, over which the runs bind-mount slowfs.
slow_trees() {
    slowfs=$(dirname "$STAGE_PY")/tests/bench/slowfs
    [ -x "$slowfs" ] || { echo "$1: build $slowfs first (make tests/bench/slowfs)" >&2; exit 77; }
    mnt=$T_TMP/slow
    mkdir -p "$mnt"
    $py -I -c '
import os, sys
ps = sorted({os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)})
top = [p for p in ps if not any(p.startswith(q + "/") for q in ps)]
print("\n".join(top + [os.path.realpath(sys.executable)]))' >"$T_TMP/trees"
}

# pick_module: MODULE defaults to dolfin when FEniCS is installed, else
# sympy, whose trees `stage-py scan` then writes as the manifest (unless -m
# gave one).  Sets import_code: the import that the interpreters run
# ("from dolfin import *", as FEniCS scripts start, or "import MODULE").
pick_module() {
    if [ -z "$module" ]; then
        module=sympy
        $py -c 'import dolfin' 2>/dev/null && module=dolfin
    fi
    import_code="import $module"
    [ "$module" = dolfin ] && import_code="from dolfin import *"
    if [ "$module" != dolfin ] && [ "$manifest" = "$here/etc/fenics.ini" ]; then
        "$STAGE_PY" scan -q --python $py --import "$module" -o "$T_TMP/$module.ini"
        manifest=$T_TMP/$module.ini
    fi
}

# make_zips DIR: the zip remedy of 2014, one zip in DIR per tree of the
# manifest, of the .py files that it stages (taken from a staged copy, so
# that include and exclude hold).
make_zips() {
    mkdir -p "$1"
    unshare --mount --propagation private sh -c '
        mount -t tmpfs stage-py-bench /dev/shm && "$1" -q -m "$2" -o "$3/plain.sh" &&
        . "$3/plain.sh" && exec python3 - "$STAGE_PY_DIR" "$4" "$2"' _ \
        "$STAGE_PY" "$manifest" "$T_TMP" "$1" <<'PY'
import os, re, sys, zipfile
copy, out, manifest = sys.argv[1:]
for k, src in enumerate(re.findall(r'^source = (.*)$', open(manifest).read(), re.M)):
    with zipfile.ZipFile(os.path.join(out, '%02d.zip' % k), 'w') as z:
        for d, dirs, files in os.walk(copy + src):
            dirs[:] = [x for x in dirs if x != '__pycache__']
            for f in files:
                if f.endswith('.py'):
                    z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), copy + src))
PY
}
