#!/bin/bash
# SPDX-License-Identifier: MIT
# The workload stage-py exists for: etc/fenics.ini staged on 2 fake nodes,
# then `from dolfin import *` on every node loads DOLFIN and nearly every
# module from the node's /dev/shm; etc/fenics-env.ini (the whole
# environment, interpreter included) makes that import call the original
# trees at most 1% as often as the unstaged import does, with the same
# modules at the same versions.  Needs Debian's python3-dolfin.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
if ! { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import dolfin' 2>/dev/null; }; then
    t_skip_all "Debian's python3-dolfin is not installed"
fi

uid=$(id -u)
# stage INI ENV STATS: stage etc/INI on 2 nodes, settings to ENV; say what it took
stage() {
    t_ok "stage etc/$1 on 2 nodes" \
        t_cluster 2 1 "$STAGE_PY" -m "$T_SRCDIR/etc/$1" --output "$2" --stats "$3"
    t_diag "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print("%s: %d entries, %.0f MiB, %.2f s" % (sys.argv[2], s["files"], s["bytes"] / 2**20, s["seconds"]["total"]))' \
        "$3" "$1")"
}
stage fenics.ini "$T_TMP/env.sh" "$T_TMP/stats.json"

mkdir "$T_TMP/imports"
t_ok "from dolfin import * on every node" \
    t_cluster 2 1 sh -c '. "$1" && cd / && exec /usr/bin/python3 -c "
import os, socket, sys
from dolfin import *
import dolfin
files = [m.__file__ for m in list(sys.modules.values()) if getattr(m, \"__file__\", None)]
staged = [f for f in files if f.startswith(os.environ[\"STAGE_PY_DIR\"] + \"/\")]
with open(os.path.join(sys.argv[1], socket.gethostname()), \"w\") as f:
    print(dolfin.__file__, len(files), len(staged), file=f)" "$2"' sh "$T_TMP/env.sh" "$T_TMP/imports"

for node in node1 node2; do
    read -r file total staged <"$T_TMP/imports/$node" || true
    t_like "$file" "^/dev/shm/stage-py-$uid/fenics-[0-9a-f]{16}/usr/lib/petsc/lib/python3/dist-packages/dolfin/__init__.py$" \
        "$node: dolfin comes from the node's copy"
    t_ok "$node: at least 97% of $total modules come from the copy ($staged)" \
        test $((staged * 100)) -ge $((total * 97))
done

# The whole environment.  Path-based calls on the trees it stages, counted
# with strace: the unstaged import here, the staged one on each node.
t_need strace
trees='"(/usr/bin/python3|/usr/lib/python3\.11|/usr/lib/python3/dist-packages|/usr/local/lib/python3\.11|/usr/lib/petsc|/usr/lib/petscdir|/usr/lib/slepc|/usr/lib/slepcdir)[/"]'
probe='
import sys
from dolfin import *
for n, m in sorted(sys.modules.items()):
    v = getattr(m, "__version__", "")
    print(n, v if isinstance(v, str) else "")
'
stage fenics-env.ini "$T_TMP/env-env.sh" "$T_TMP/stats-env.json"
t_ok "unstaged: from dolfin import * under strace" \
    sh -c 'cd / && exec strace -f -e trace=%file -o "$1" /usr/bin/python3 -c "$2" >"$3"' \
    sh "$T_TMP/unstaged.strace" "$probe" "$T_TMP/unstaged.modules"
base=$(grep -cE "$trees" "$T_TMP/unstaged.strace" || true)
t_ok "... $base path-based calls on the trees" test "$base" -gt 1000
mkdir "$T_TMP/env"
t_ok "staged: python3 from PATH, from dolfin import *, on every node under strace" \
    t_cluster 2 1 sh -c '. "$1" && cd / && h=$(hostname) &&
        exec strace -f -e trace=%file -o "$2/strace.$h" python3 -c "$3" >"$2/modules.$h"' \
    sh "$T_TMP/env-env.sh" "$T_TMP/env" "$probe"
for node in node1 node2; do
    n=$(grep -cE "$trees" "$T_TMP/env/strace.$node" || true)
    t_diag "$node: $n path-based calls on the original trees, unstaged $base ($(python3 -c "print('%.2f' % (100 * $n / $base))") %)"
    t_ok "$node: at most 1% of the unstaged calls on the original trees ($n of $base)" \
        test $((n * 100)) -le "$base"
    t_ok "$node: the interpreter ran from the copy" \
        grep -qE '^[0-9]+ +execve\("/dev/shm/stage-py-[0-9]+/fenics-env-[0-9a-f]{16}/usr/bin/python3", .* = 0$' \
        "$T_TMP/env/strace.$node"
    t_is "$(wc -l <"$T_TMP/env/modules.$node")" "$(wc -l <"$T_TMP/unstaged.modules")" \
        "$node: as many modules as unstaged"
    t_ok "$node: the same modules, at the same versions" \
        cmp "$T_TMP/unstaged.modules" "$T_TMP/env/modules.$node"
done
# From cron to job: scan --whole-env of a script of the ARCHER report's
# kind, pack, then --bundle alone; every module from the copy.
mkdir -m 755 "$T_TMP/job"
cat >"$T_TMP/job/poisson.py" <<'EOP'
from dolfin import *
import os, sys
home = os.environ["STAGE_PY_DIR"] + "/"
files = [m.__file__ for n, m in list(sys.modules.items())
         if getattr(m, "__file__", None) and n != "__main__"]   # but the script itself
print(len(files), len([f for f in files if not f.startswith(home)]))
EOP
t_ok "scan --whole-env --script poisson.py (from dolfin import *) --bundle" \
    "$STAGE_PY" scan -q --python /usr/bin/python3 --whole-env --script "$T_TMP/job/poisson.py" \
    --bundle "$T_TMP/job/poisson.bundle" -o "$T_TMP/job/poisson.ini"
t_ok "... pack, with no edit of the manifest" "$STAGE_PY" pack -q -m "$T_TMP/job/poisson.ini"
t_ok "... stage-py --bundle on 2 nodes, with no manifest" \
    t_cluster 2 1 "$STAGE_PY" --bundle "$T_TMP/job/poisson.bundle" -o "$T_TMP/job/env.sh"
t_ok "... then the script on every node" \
    t_cluster 2 1 sh -c '. "$1" && cd / && python3 "$2" >"$3.$(hostname)"' sh "$T_TMP/job/env.sh" \
    "$T_TMP/job/poisson.py" "$T_TMP/job/out"
for node in node1 node2; do
    read -r total outside <"$T_TMP/job/out.$node" || true
    t_ok "$node: $total module files, every one from the copy ($outside outside it)" \
        test "${total:-0}" -gt 500 -a "${outside:-1}" = 0
done
# The form compiler's cache (etc/fenics-jit.ini): filled once, as from
# cron, then staged with the environment; on every node the Poisson job
# finds its compiled forms in the copy, and makes no call on the cache's
# original place.  A form that the cache lacks is compiled into the node's
# copy, which the next job still uses.
forms=$T_TMP/forms
t_ok "fill a cache of compiled forms (DIJITSO_CACHE_DIR, one serial run)" \
    env DIJITSO_CACHE_DIR="$forms" /usr/bin/python3 "$T_SRCDIR/tests/bench/poisson.py" 8
nforms=$(ls "$forms/lib" | wc -l)
sed "s|/apps/fenics/dijitso-cache|$forms|" "$T_SRCDIR/etc/fenics-jit.ini" >"$T_TMP/jit.ini"
chmod 644 "$T_TMP/jit.ini"
t_ok "stage etc/fenics-jit.ini (the environment and the cache) on 2 nodes" \
    t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/jit.ini" -o "$T_TMP/jit.sh"
mkdir "$T_TMP/jit"
t_ok "the Poisson job, one rank on each node, under strace" \
    t_cluster 2 1 sh -c '. "$1" && cd / && h=$(hostname) &&
        strace -f -e trace=%file -o "$2/strace.$h" python3 "$3" 8 >"$2/out.$h" 2>&1 &&
        printf "%s\n" "$DIJITSO_CACHE_DIR" >"$2/cache.$h"' \
    sh "$T_TMP/jit.sh" "$T_TMP/jit" "$T_SRCDIR/tests/bench/poisson.py"
t_like "$(cat "$T_TMP/jit/out.node1")" "^compute [0-9.]+$" "it ran (rank 0 says how long it computed)"
for node in node1 node2; do
    t_like "$(cat "$T_TMP/jit/cache.$node")" "^/dev/shm/stage-py-$uid/fenics-jit-[0-9a-f]{16}$forms$" \
        "$node: DIJITSO_CACHE_DIR is the node's copy of the cache"
    t_ok "$node: ... with no form compiled (all found in the copy)" \
        sh -c '! grep -q "Calling FFC just-in-time" "$1"' sh "$T_TMP/jit/out.$node"
    t_ok "$node: ... forms loaded from the copy" \
        grep -qE "openat\(AT_FDCWD, \"/dev/shm/stage-py-$uid/fenics-jit-[0-9a-f]{16}$forms/lib/libdijitso-ffc_form_[0-9a-f]+\.so\", .* = [0-9]+$" \
        "$T_TMP/jit/strace.$node"
    t_is "$(grep -c "\"$forms" "$T_TMP/jit/strace.$node")" 0 \
        "$node: ... and no call on the cache's original place"
done
sed 's/"P", 1/"P", 2/' "$T_SRCDIR/tests/bench/poisson.py" >"$T_TMP/jit/p2.py"
t_ok "a form that the cache lacks (P2): the job compiles it" \
    t_cluster 2 1 sh -c '. "$1" && python3 "$2" 8' sh "$T_TMP/jit.sh" "$T_TMP/jit/p2.py"
copy=$(sed -n "s|^STAGE_PY_DIR='\(.*\)'.*|\1|p" "$T_TMP/jit.sh")
for k in 1 2; do
    lib=$(t_node_shm $k)/stage-py-$uid/$(basename "$copy")$forms/lib
    t_ok "... on node$k, into the node's copy" test "$(ls "$lib" | wc -l)" -gt "$nforms"
done
t_is "$(ls "$forms/lib" | wc -l)" "$nforms" "... not into the cache it came from"
t_ok "the next job still uses the copies" \
    t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/jit.ini" -o "$T_TMP/jit2.sh" --stats "$T_TMP/jit.json"
t_is "$(t_json "$T_TMP/jit.json" cold_nodes)" 0 "... nothing sent"
t_done
