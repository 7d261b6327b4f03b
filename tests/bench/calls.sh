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
# first as a percentage of naive's, modules imported, status; then a
# second table, per package: files opened by the naive import, and every
# way's calls on the shared trees.
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
code="import sys; $import_code; print(len(sys.modules))"

# The shared trees, one per line, and as one extended regular expression
# on strace's quoted paths.
$py -I -c '
import os, sys
ps = {sys.executable, os.path.realpath(sys.executable)}
for p in sys.path:
    if p and os.path.exists(p):
        ps.update({p, os.path.realpath(p)})
print("\n".join(sorted(ps)))' >"$T_TMP/trees"
trees=$(python3 -c '
import re, sys
print("\"(" + "|".join(re.escape(l.strip()) for l in open(sys.argv[1])) + ")[/\"]")' "$T_TMP/trees")

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

# Per package: the top-level name below a shared tree (the standard
# library, lib-dynload included, as one; the interpreter itself as one),
# the files that the naive import opened there, and every way's
# path-based calls there.
echo
python3 - "$T_TMP/trees" "$T_TMP" <<'PY'
import collections, os, re, sys
trees = sorted((l.strip() for l in open(sys.argv[1]) if l.strip()), key=len, reverse=True)
stdlib = re.compile(r"/lib/python3\.\d+(/lib-dynload)?$")
# (a call that another thread interrupted is cut in two: "<unfinished ...>")
call = re.compile(r'^\d+ +(\w+)\((?:AT_FDCWD, )?"([^"]*)"(.*?)(?:= (-?\d+).*)?$')
def package(path):
    for t in trees:
        if path == t or path.startswith(t + "/"):
            if os.path.isfile(t):
                return "(the interpreter)"
            if stdlib.search(t):
                return "(standard library)"
            rest = path[len(t) + 1:].split("/")[0]
            name = re.split(r"[.-]", rest)[0] if rest else "(the directory itself)"
            return name or rest
    return None
ways = ["naive", "zip", "trees", "env"]
calls = {w: collections.Counter() for w in ways}
opened = collections.Counter()
for w in ways:
    for line in open(os.path.join(sys.argv[2], w + ".strace"), errors="replace"):
        m = call.match(line)
        if not m:
            continue
        p = package(m.group(2))
        if p is None:
            continue
        calls[w][p] += 1
        if w == "naive" and m.group(1) in ("open", "openat") and m.group(4) \
                and int(m.group(4)) >= 0 \
                and "O_DIRECTORY" not in m.group(3):
            opened[p] += 1
print("package,files_opened_naive," + ",".join("calls_" + w for w in ways))
for p, n in sorted(calls["naive"].items(), key=lambda kv: (-kv[1], kv[0])):
    print("%s,%d,%s" % (p, opened[p], ",".join(str(calls[w][p]) for w in ways)))
PY
_t_finished=1
