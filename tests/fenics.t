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
t_done
