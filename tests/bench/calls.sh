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
. "$(dirname "$0")/lib.sh" "$@"
command -v strace >/dev/null || { echo "calls.sh: needs strace" >&2; exit 77; }
pick_module
if [ "$module" != dolfin ] && [ "$env_manifest" = "$here/etc/fenics-env.ini" ]; then
    printf '[stage]\nname = env\n[python system]\nprefix = /usr\n' >"$T_TMP/env.ini"
    chmod 644 "$T_TMP/env.ini"
    env_manifest=$T_TMP/env.ini
fi
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

make_zips "$T_TMP/zips"
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
