#!/bin/bash
# SPDX-License-Identifier: MIT
# stage-py scan writes the manifest of what real imports load (numpy,
# sympy, and FEniCS when installed); staged, it makes those imports load
# every module from the node's /dev/shm; stage-py check says so, and names
# the files when a tree is left out on purpose.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
py=/usr/bin/python3
if ! { [ -x $py ] && $py -c 'import numpy, sympy' 2>/dev/null; }; then
    t_skip_all "Debian's python3-numpy and python3-sympy are not installed"
fi

uid=$(id -u)
run1() { t_cluster 1 1 "$@"; }
# staged MODULE INI: stage INI on 2 nodes, then on each node import MODULE
# with the settings and print where its modules came from (a file per node)
staged() {
    t_cluster 2 1 "$STAGE_PY" -m "$2" -o "$T_TMP/env.sh" 2>"$T_TMP/stage.err" || return 1
    t_cluster 2 1 sh -c ". '$T_TMP/env.sh' && cd / && $py -c '
import sys, importlib
importlib.import_module(sys.argv[1])
for n, m in sorted(sys.modules.items()):
    f = getattr(m, \"__file__\", None)
    if (n == sys.argv[1] or n.startswith(sys.argv[1] + \".\")) and f: print(f)
' $1 >'$T_TMP/where.'\$(hostname)"
}
outside() { cat "$T_TMP"/where.node* | grep -vc "^/dev/shm/stage-py-$uid/" || true; }
inside() { cat "$T_TMP"/where.node* | grep -c "^/dev/shm/stage-py-$uid/" || true; }
check() { t_cluster 1 1 sh -c ". '$T_TMP/env.sh' && exec '$STAGE_PY' check -m '$1' --python $py --import $2" \
    >"$T_TMP/check.out" 2>"$T_TMP/check.err"; }

for mod in numpy sympy; do
    t_ok "scan --import $mod" "$STAGE_PY" scan --python $py --import $mod -o "$T_TMP/$mod.ini"
    t_like "$(cat "$T_TMP/$mod.ini")" "^python = $py$" "... records the interpreter"
    t_like "$(cat "$T_TMP/$mod.ini")" "^(include =| ) .*[ =]$mod( |\$)" "... includes $mod"
    t_is "$(awk 'length > 80 && !/^;/' "$T_TMP/$mod.ini" | grep -vc '^ *[^ ]*$' || true)" 0 \
        "... long lists wrap onto continuation lines"
    t_ok "... staged on 2 nodes, then imported there" staged $mod "$T_TMP/$mod.ini"
    t_ok "... $(inside) modules of $mod loaded from /dev/shm" test "$(inside)" -gt 10
    t_is "$(outside)" 0 "... none from anywhere else"
    t_ok "... check finds nothing loaded from the original trees" check "$T_TMP/$mod.ini" $mod
    t_ok "... also without --python: the manifest's interpreter" t_cluster 1 1 sh -c \
        ". '$T_TMP/env.sh' && exec '$STAGE_PY' check -m '$T_TMP/$mod.ini' --import $mod"
    t_like "$(cat "$T_TMP/check.out")" "^0 file\(s\) from outside the copy '/dev/shm/stage-py-$uid/$mod-[0-9a-f]{16}', 0 module" \
        "... nothing at all from outside the copy"
done
t_like "$(cat "$T_TMP/numpy.ini")" "^env = LD_LIBRARY_PATH$" "numpy's manifest stages its shared libraries too"
t_like "$(cat "$T_TMP/sympy.ini")" "\bmpmath\b" "sympy's manifest includes mpmath, which it imports"

# test suites and .pth files that the imports do not need
t_ok "scan --import numpy --import sympy" "$STAGE_PY" scan --python $py --import numpy --import sympy \
    -o "$T_TMP/ns.ini"
t_is "$(grep -c '^exclude = tests/ test/$' "$T_TMP/ns.ini")" "$(grep -c '^env = PYTHONPATH$' "$T_TMP/ns.ini")" \
    "... every tree of modules leaves out tests/ and test/"
t_ok "... and names no .pth file that neither adds a path it imports from nor imports what it uses" \
    test "$(grep -cE '(dolfin|petsc4py)\.pth' "$T_TMP/ns.ini")" = 0
t_ok "... staged on 2 nodes, then imported there" staged sympy "$T_TMP/ns.ini"
t_is "$(outside)" 0 "... every sympy module from /dev/shm"
t_is "$(find "$(t_node_shm 1)/stage-py-$uid"/numpy-* -type d \( -name tests -o -name test \) | wc -l)" 0 \
    "... and the copy holds no directory named tests or test"
t_ok "scan --keep-tests --exclude '*.pyi'" "$STAGE_PY" scan --python $py --import numpy --keep-tests \
    --exclude '*.pyi' -o "$T_TMP/keep.ini"
t_is "$(grep '^exclude' "$T_TMP/keep.ini" | sort -u)" "exclude = *.pyi" "... leaves only what --exclude gives"
# a package that imports its own test suite at import time keeps it
mkdir -p "$T_TMP/own/selftest/tests"
echo 'from .tests import check' >"$T_TMP/own/selftest/__init__.py"
echo 'check = 1' >"$T_TMP/own/selftest/tests/__init__.py"
chmod -R go-w "$T_TMP/own"
t_ok "scan of a package that imports its tests/ at import time" \
    env PYTHONPATH="$T_TMP/own" "$STAGE_PY" scan --python $py --import selftest -o "$T_TMP/self.ini"
t_like "$(cat "$T_OUT")" "scan: the imports load modules from a directory named 'tests': 'tests/' is not excluded" \
    "... says so"
t_like "$(cat "$T_TMP/self.ini")" "^exclude = test/$" "... and excludes test/ only"

# --script: the imports of a script, found without running it
mkdir -p "$T_TMP/job"
chmod 755 "$T_TMP/job"
cat >"$T_TMP/job/app.py" <<'EOP'
import sympy as sp
from numpy import linalg
import helper
try:
    import no_such_module_here
except ImportError:
    pass
raise SystemExit("scan must not run the script")
EOP
echo 'import json' >"$T_TMP/job/helper.py"
t_ok "scan --script app.py" "$STAGE_PY" scan --python $py --script "$T_TMP/job/app.py" -o "$T_TMP/app.ini"
t_like "$(cat "$T_OUT")" "scan: $T_TMP/job/app.py:5: import no_such_module_here: No module named 'no_such_module_here': left out" \
    "... warns of an import that fails, with file:line"
t_like "$(cat "$T_OUT")" "scan: $T_TMP/job: helper.py: the job's own code, beside its script: not staged" \
    "... and of the job's own modules beside it"
t_like "$(cat "$T_TMP/app.ini")" "^name = app$" "... the manifest is named after the script"
t_like "$(cat "$T_TMP/app.ini")" "^(include =| ) .*[ =]sympy( |\$)" "... includes sympy"
t_like "$(cat "$T_TMP/app.ini")" "^(include =| ) .*[ =]numpy( |\$)" "... and numpy, from 'from numpy import linalg'"
t_ok "... staged on 2 nodes, then imported there" staged numpy "$T_TMP/app.ini"
t_is "$(outside)" 0 "... every numpy module from /dev/shm"
t_fails "scan --script of a file that is not there" run1 "$STAGE_PY" scan --python $py --script "$T_TMP/nosuch.py"
t_like "$(cat "$T_OUT")" "--script '$T_TMP/nosuch.py': No such file or directory" "... is a usage error naming it"
t_fails "scan --exclude with a blank" run1 "$STAGE_PY" scan --python $py --import numpy --exclude 'a b'
t_like "$(cat "$T_OUT")" "--exclude 'a b': a pattern without blanks" "... is a usage error"

# --whole-env --bundle: a venv as a [python] manifest, packed and staged
# with no edit
venv=$T_TMP/venv
t_make_venv "$venv"
chmod -R go-w "$venv"
t_ok "scan --whole-env --bundle of a venv" "$STAGE_PY" scan --python "$venv/bin/python" --whole-env \
    --import purepkg --bundle "$T_TMP/venv.bundle" -o "$T_TMP/venv.ini"
t_like "$(cat "$T_TMP/venv.ini")" "^\[python env\]$" "... writes a [python] section"
t_like "$(cat "$T_TMP/venv.ini")" "^name = purepkg-env$" \
    "... named after the module with -env (not as the module's trees are)"
t_like "$(cat "$T_TMP/venv.ini")" "^prefix = $venv$" "... of the venv's prefix"
t_like "$(cat "$T_TMP/venv.ini")" "^bundle = $T_TMP/venv.bundle$" "... and names the bundle"
t_ok "... pack writes the bundle" "$STAGE_PY" pack -q -m "$T_TMP/venv.ini"
t_ok "... which stage-py --bundle stages on 2 nodes, with no manifest" \
    t_cluster 2 1 "$STAGE_PY" --bundle "$T_TMP/venv.bundle" -o "$T_TMP/venv.sh"
t_ok "... where the staged interpreter imports purepkg from the copy" \
    t_cluster 2 1 sh -c ". '$T_TMP/venv.sh' && python -c 'import purepkg, sys; assert purepkg.__file__.startswith(\"/dev/shm/\"), purepkg.__file__; assert sys.prefix.startswith(\"/dev/shm/\"), sys.prefix'"

# scanned from a directory above the venv: its library (venv/lib/libgreet.so)
# is a file mapped below the working directory, not a module found there
(cd "$T_TMP" && run1 "$STAGE_PY" scan --python "$venv/bin/python" --import cext \
    -o "$T_TMP/cext.ini") 2>"$T_TMP/cext.err"
t_is "$(grep -c 'imported from the directory scan runs in' "$T_TMP/cext.err" || true)" 0 \
    "scan from a directory above a venv's library: no warning about the working directory"

# numpy left out of its own manifest on purpose
sed '/^\[tree dist-packages\]/,/^env/ s/ numpy / /' "$T_TMP/numpy.ini" >"$T_TMP/less.ini"
t_ok "a manifest without numpy staged" staged numpy "$T_TMP/less.ini"
t_ok "... numpy then loads from the original tree" test "$(outside)" -gt 10
t_fails "... check fails" check "$T_TMP/less.ini" numpy
t_like "$(cat "$T_TMP/check.out")" "^original module: /usr/lib/python3/dist-packages/numpy/__init__.py \(missing from the copy: the tree's include or exclude leaves it out\)$" \
    "... naming the files and why"
t_like "$(cat "$T_TMP/check.err")" "check: some modules still come from the trees' original locations" "... and the reason it fails"

t_fails "check without the settings of a staging run" env -u STAGE_PY_DIR t_cluster 1 1 "$STAGE_PY" check -m "$T_TMP/less.ini" --python $py --import numpy
t_fails "scan without --import" run1 "$STAGE_PY" scan --python $py
t_like "$(cat "$T_OUT")" "scan: give --python PYTHON and at least one --import MODULE or --script FILE \(or --whole-env\)" "... is a usage error"
rc=0; run1 "$STAGE_PY" scan --python /nonexistent/python3 --import json >"$T_TMP/nopy.out" 2>&1 || rc=$?
t_like "$rc:$(cat "$T_TMP/nopy.out")" "^2:stage-py: --python '/nonexistent/python3': No such file or directory" \
    "scan --python of a file that does not exist: a usage error (status 2)"
# a module of the same name in the directory scan runs in: found there
# first, and never staged; said, not silent
mkdir -p "$T_TMP/cwd"
echo 'x = 1' >"$T_TMP/cwd/json.py"
(cd "$T_TMP/cwd" && run1 "$STAGE_PY" scan --python $py --import json -o "$T_TMP/cwd.ini") \
    2>"$T_TMP/cwd.err"
t_like "$(cat "$T_TMP/cwd.err")" "warning: scan: $T_TMP/cwd: json.py: imported from the directory scan runs in, which is not staged" \
    "scan where a module of the same name lies in the working directory: a warning"
t_fails "scan --import '1x'" run1 "$STAGE_PY" scan --python $py --import 1x
t_like "$(cat "$T_OUT")" "--import '1x': not a module name" "... is a usage error"
t_fails "scan of a module that does not exist" run1 "$STAGE_PY" scan --python $py --import no_such_module_here
t_like "$(cat "$T_OUT")" "No module named 'no_such_module_here'" "... shows the interpreter's error"
t_like "$(cat "$T_OUT")" "stage-py: node1: '$py' failed \(exit status 1\)" "... and fails"

# etc/stage-py.cron, its commands as cron would run them: single processes,
# without a launcher (numpy for dolfin, a directory of this test for the
# stack, and a private /dev/shm)
mkdir -p "$T_TMP/stack"
chmod 755 "$T_TMP/stack"
grep -E '^[0-9*]' "$T_SRCDIR/etc/stage-py.cron" | sed -E 's/^([^ ]+ +){5}//; s/dolfin/numpy/g' >"$T_TMP/cron.sh"
t_is "$(wc -l <"$T_TMP/cron.sh")" 2 "etc/stage-py.cron has its two crontab lines"
for k in 1 2; do
    printf 'set -e\nSTACK=%s\nPY=%s\nstage-py() { "$STAGE_PY" "$@"; }\n%s\n' "$T_TMP/stack" $py \
        "$(sed -n ${k}p "$T_TMP/cron.sh")" >"$T_TMP/cron$k.sh"
done
cron() { unshare --mount --propagation private sh -c 'mount -t tmpfs stage-py-test /dev/shm && exec bash "$1"' _ "$1"; }
t_ok "... the first (scan, then pack) runs" cron "$T_TMP/cron1.sh"
t_ok "... and leaves the bundle, and a manifest naming it" \
    test -s "$T_TMP/stack/fenics.bundle" -a "$(grep -c "^bundle = $T_TMP/stack/fenics.bundle\$" "$T_TMP/stack/fenics.ini")" = 1
t_ok "... the second (stage on this node, then check) runs" cron "$T_TMP/cron2.sh"
t_like "$(cat "$T_TMP/stack/check.log")" "0 module\(s\) from a staged tree's original location" "... and its check finds nothing amiss"

if $py -c 'import dolfin' 2>/dev/null; then
    t_ok "scan --import dolfin (FEniCS)" "$STAGE_PY" scan --python $py --import dolfin -o "$T_TMP/dolfin.ini"
    t_ok "... staged on 2 nodes, then imported there" staged dolfin "$T_TMP/dolfin.ini"
    t_is "$(outside)" 0 "... every dolfin module from /dev/shm"
    t_ok "... check finds nothing loaded from the original trees" check "$T_TMP/dolfin.ini" dolfin
    t_diag "$(tail -1 "$T_TMP/check.out")"
else
    t_skip 4 "Debian's python3-dolfin is not installed"
fi
t_done
