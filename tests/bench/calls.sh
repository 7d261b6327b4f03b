#!/bin/bash
# SPDX-License-Identifier: MIT
#
# calls.sh: what one interpreter's import asks of the shared file system,
# four ways, counted with strace (path-based calls: strace -e trace=%file):
#   naive     the interpreter and its trees where they are;
#   zip       the remedy of 2014: the pure-Python files of the trees of
#             MANIFEST zipped, first on PYTHONPATH (the trees after them,
#             for .so files and data read by path);
#   trees     the trees of MANIFEST staged, first on PYTHONPATH;
#   env       the whole environment staged (ENV_MANIFEST, a [python]
#             section), its interpreter first on PATH.
# "The shared trees" are the interpreter's own: its executable and every
# sys.path entry of `python3 -I`, by path and by resolved path.  Prints a
# CSV table: way, calls on the shared trees, all path-based calls, the
# first as a percentage of naive's, modules imported, status.
#
#     tests/bench/calls.sh [-m MANIFEST] [-e ENV_MANIFEST] [-i MODULE]
#
# MODULE defaults to dolfin (from dolfin import *) when FEniCS is
# installed, with etc/fenics.ini and etc/fenics-env.ini; else sympy, with
# manifests that stage-py scan writes.  Needs root (mount namespaces).
rounds=1
env_manifest= module=
args=()
while [ $# -gt 0 ]; do
    case $1 in
        -i) module=$2; shift 2 ;;
        -e) env_manifest=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]}"
. "$(dirname "$0")/lib.sh" "$@"
command -v strace >/dev/null || { echo "calls.sh: needs strace" >&2; exit 77; }
py=/usr/bin/python3
if [ -z "$module" ]; then
    module=sympy
    $py -c 'import dolfin' 2>/dev/null && module=dolfin
fi
if [ "$module" != dolfin ] && [ "$manifest" = "$here/etc/fenics.ini" ]; then
    "$STAGE_PY" scan -q --python $py --import "$module" -o "$T_TMP/trees.ini"
    manifest=$T_TMP/trees.ini
fi
if [ -z "$env_manifest" ]; then
    env_manifest=$here/etc/fenics-env.ini
    if [ "$module" != dolfin ]; then
        printf '[stage]\nname = env\n[python system]\nprefix = /usr\n' >"$T_TMP/env.ini"
        env_manifest=$T_TMP/env.ini
    fi
fi
chmod 644 "$T_TMP"/*.ini 2>/dev/null || true
code="import sys; import $module"
[ "$module" = dolfin ] && code="import sys; from dolfin import *"
code="$code; print(len(sys.modules))"

# The shared trees, as one extended regular expression on strace's quoted paths.
trees=$($py -I -c '
import os, re, sys
ps = {sys.executable, os.path.realpath(sys.executable)}
for p in sys.path:
    if p and os.path.exists(p):
        ps.update({p, os.path.realpath(p)})
print("\"(" + "|".join(sorted(re.escape(p) for p in ps)) + ")[/\"]")')

# zips of the .py files that MANIFEST stages (from a staged copy, so that
# include and exclude hold), one per tree
mkdir -p "$T_TMP/zips"
unshare --mount --propagation private sh -c '
    mount -t tmpfs stage-py-bench /dev/shm && "$1" -q -m "$2" -o "$3/plain.sh" &&
    . "$3/plain.sh" && exec python3 - "$STAGE_PY_DIR" "$3/zips" "$2"' _ \
    "$STAGE_PY" "$manifest" "$T_TMP" <<'PY'
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
sources=$(sed -n -E 's|^source = (.*)|\1|p' "$manifest" | paste -sd:)
zip_path=$(ls "$T_TMP"/zips/*.zip | paste -sd:):$sources

# run WAY: one interpreter under strace in a private /dev/shm, after
# staging for WAY; prints "calls_on_trees,all_calls,modules,status"
run() {
    local log=$T_TMP/$1.strace out=$T_TMP/$1.out
    unshare --mount --propagation private bash -c '
        way=$1 stage=$2 log=$3 out=$4 code=$5 zip_path=$6 trees=$7 env=$8 py=$9
        mount -t tmpfs stage-py-bench /dev/shm || exit 1
        case $way in
            trees) "$stage" -q -m "$trees" -o /dev/shm/env.sh && . /dev/shm/env.sh ;;
            env) "$stage" -q -m "$env" -o /dev/shm/env.sh && . /dev/shm/env.sh && py=python3 ;;
            zip) export PYTHONPATH=$zip_path ;;
        esac || exit 1
        cd / && exec strace -f -e trace=%file -o "$log" "$py" -c "$code" >"$out" 2>&1' _ \
        "$1" "$STAGE_PY" "$log" "$out" "$code" "$zip_path" "$manifest" "$env_manifest" "$py"
    local rc=$? status=ok
    [ "$rc" = 0 ] || status="failed: $(grep -E '^[A-Za-z]*Error' "$out" | tail -1 | tr ',' ';')"
    printf '%s,%s,%s,%s\n' "$(grep -cE "$trees" "$log" || true)" "$(wc -l <"$log")" \
        "$([ "$rc" = 0 ] && tail -1 "$out" || echo -)" "$status"
}

echo "way,calls_on_shared_trees,all_path_calls,percent_of_naive,modules,status"
base=
for way in naive zip trees env; do
    r=$(run $way)
    n=${r%%,*}
    [ -n "$base" ] || base=$n
    pct=$(python3 -c "import sys; print('%.2f' % (100 * int(sys.argv[1]) / max(int(sys.argv[2]), 1)))" "$n" "$base")
    echo "$way,$n,$(cut -d, -f2 <<<"$r"),$pct,$(cut -d, -f3- <<<"$r")"
done
_t_finished=1
