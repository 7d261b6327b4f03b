#!/bin/bash
# SPDX-License-Identifier: MIT
# Whole Python environments ([python NAME] prefix = ...): a venv made here,
# staged on 2 fake nodes, runs its interpreter and its console script from
# each node's copy, imports all of its packages there (a .pth file, two
# kinds of namespace package split over two distributions, a C extension
# linked through $ORIGIN), and makes no file-system call on the original
# venv or its base interpreter; the same from a bundle; a conda-like
# prefix; and the errors.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need strace cc
py=/usr/bin/python3
if ! { [ -x $py ] && $py -c 'import ensurepip, venv' 2>/dev/null; }; then
    t_skip_all "Debian's python3-venv is not installed"
fi
[ -f "$($py -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h" ] ||
    t_skip_all "Debian's python3-dev is not installed (Python.h, for the C extension)"
pip_ok=$($py -c 'import pip; print(int(pip.__version__.split(".")[0]) >= 23)' 2>/dev/null || true)
[ "$pip_ok" = True ] || t_skip_all "Debian's python3-pip (23 or later) is not installed"

uid=$(id -u)
# node1_copy SETTINGS: where node1's copy is, seen from this host
node1_copy() {
    local d
    d=$(t_staged_dir "$1")
    printf '%s\n' "$(t_node_shm 1)/stage-py-$uid/${d##*/}"
}
venv=$T_TMP/envs/demo
t_ok "a venv with packages of the test's own" t_make_venv "$venv"
pyver=$($py -c 'import sys; print("%d.%d" % sys.version_info[:2])')
base=$(readlink -f $py)
cat >"$T_TMP/venv.ini" <<EOF
[stage]
name = venv

[python demo]
prefix = $venv
EOF

t_ok "stage the venv on 2 nodes" \
    t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/venv.ini" -o "$T_TMP/env.sh" --stats "$T_TMP/stats.json"
copy=$(t_staged_dir "$T_TMP/env.sh")
t_like "$copy" "^/dev/shm/stage-py-$uid/venv-[0-9a-f]{16}$" "... into each node's /dev/shm"
t_is "$(grep '^PATH=' "$T_TMP/env.sh")" "PATH='$copy$venv/bin'\"\${PATH:+:\$PATH}\"; export PATH" \
    "... the staged bin first on PATH"
t_like "$(cat "$T_TMP/env.sh")" "^VIRTUAL_ENV='$copy$venv'; export VIRTUAL_ENV$" \
    "... VIRTUAL_ENV, as the venv has"
t_is "$(grep -c PYTHONPATH "$T_TMP/env.sh" || true)" 0 "... and no PYTHONPATH"
t_like "$(cat "$T_TMP/env.sh")" "^PYTHONNOUSERSITE='1'; export PYTHONNOUSERSITE$" \
    "... and PYTHONNOUSERSITE=1: the user site directory is off"

node1=$(node1_copy "$T_TMP/env.sh")
t_like "$(cat "$node1$venv/pyvenv.cfg")" "^home = $copy$(dirname "$base")$" \
    "the staged pyvenv.cfg points at the staged base interpreter"
t_ok "... which is a copy, not a link" test -f "$node1$base" -a ! -L "$node1$base"
t_is "$(readlink "$node1$venv/bin/python3")" \
    "$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$base" "$venv/bin")" \
    "the venv's interpreter links to it inside the copy"
t_is "$(head -1 "$node1$venv/bin/pure-hello")" "#!$copy$venv/bin/python" \
    "the console script's #! line names the staged interpreter"
site=lib/python$pyver/site-packages
t_is "$(cat "$node1$venv/$site/extra.pth")" \
    "$copy$venv/src/extra
import sys; p = '$copy$venv/src/extra2'; p in sys.path or sys.path.append(p)" \
    "the .pth file names the staged directories"
t_is "$(head -1 "$venv/$site/extra.pth")" "$venv/src/extra" "... the original is untouched"

# On each node: the staged interpreter (found on PATH) imports everything
# and the console script runs, under strace.
probe='
import os, sys, sysconfig, site
import purepkg, nsold.a, nsold.b, nsnew.x, nsnew.y, cext, extra_mod, extra2_mod
libs = [l.split()[-1] for l in open("/proc/self/maps") if "libgreet" in l]
print("prefix", sys.prefix)
print("base_prefix", sys.base_prefix)
print("executable", sys.executable)
print("cext", cext.hello(), libs[0])
for m in (purepkg, nsold.a, nsold.b, nsnew.x, nsnew.y, cext, extra_mod, extra2_mod):
    print("module", m.__name__, m.__file__)
print("site", sysconfig.get_path("purelib"))
print("usersite", site.ENABLE_USER_SITE)
'
mkdir "$T_TMP/runs"
t_ok "on each node: the staged python imports every package, the console script runs" \
    t_cluster 2 1 sh -c '. "$1" && cd / && h=$(hostname) &&
        strace -f -y -e trace=%file -o "$2/strace.$h" sh -c "python3 -c \"\$0\" && pure-hello" "$3" \
        >"$2/out.$h"' sh "$T_TMP/env.sh" "$T_TMP/runs" "$probe"
for node in node1 node2; do
    out=$(cat "$T_TMP/runs/out.$node")
    t_like "$out" "^prefix $copy$venv$" "$node: sys.prefix is the staged venv"
    t_like "$out" "^base_prefix $copy/usr$" "$node: sys.base_prefix is the staged base"
    t_like "$out" "^executable $copy$venv/bin/python3$" "$node: sys.executable is staged"
    t_like "$out" "^site $copy$venv/$site$" "$node: its site directory is the staged one"
    t_like "$out" "^usersite False$" "$node: the user site directory is off"
    t_like "$out" "^cext hello from libgreet $copy$venv/lib/libgreet.so$" \
        "$node: the C extension loads the staged lib/ through \$ORIGIN"
    t_is "$(grep -c "^module " <<<"$out")" 8 "$node: 8 modules imported"
    t_is "$(grep "^module " <<<"$out" | grep -vc " $copy$venv/" || true)" 0 \
        "$node: ... every one from the staged venv"
    t_like "$out" "^pure-hello $copy$venv/$site/purepkg/__init__.py$" \
        "$node: the console script runs with the staged interpreter"
    t_is "$(grep -cE "[\"<]${venv}[/\">]" "$T_TMP/runs/strace.$node" || true)" 0 \
        "$node: strace: no call on the original venv"
    t_is "$(grep -cE "[\"<]($base|/usr/lib/python$pyver)[\"/>]" "$T_TMP/runs/strace.$node" || true)" 0 \
        "$node: strace: none on the base interpreter or its standard library"
    t_ok "$node: strace: the interpreter ran from the copy" \
        grep -q "execve(\"$copy$venv/bin/python3\"" "$T_TMP/runs/strace.$node"
done

t_ok "stage-py check reports nothing outside the copy" \
    t_cluster 1 1 sh -c '. "$1" && exec "$2" check -m "$3" --python "$STAGE_PY_DIR$4/bin/python3" \
        --import purepkg --import nsold.a --import nsold.b --import nsnew.x --import nsnew.y \
        --import cext --import extra_mod --import extra2_mod' \
    sh "$T_TMP/env.sh" "$STAGE_PY" "$T_TMP/venv.ini" "$venv"
t_like "$(cat "$T_OUT")" "^0 file\(s\) from outside the copy '$copy', 0 module" "... none at all"
t_ok "... also without --python: the staged interpreter of the [python] section" \
    t_cluster 1 1 sh -c '. "$1" && exec "$2" check -m "$3" --import purepkg --import cext' \
    sh "$T_TMP/env.sh" "$STAGE_PY" "$T_TMP/venv.ini"
t_like "$(cat "$T_OUT")" "^0 file\(s\) from outside the copy '$copy', 0 module" "... none at all"
t_fails "check with the venv's original interpreter, by its absolute path" \
    t_cluster 1 1 sh -c '. "$1" && exec "$2" check -m "$3" --python "$4/bin/python3" --import purepkg' \
    sh "$T_TMP/env.sh" "$STAGE_PY" "$T_TMP/venv.ini" "$venv"
t_like "$(cat "$T_OUT")" "^original module: $venv/$site/purepkg/__init__.py \(the copy has it, but '$venv/bin/python3' ran, not the staged interpreter\)$" \
    "... lists the original modules, each with that reason"
t_like "$(cat "$T_OUT")" "check: some modules still come from the trees' original locations \(listed as 'original module'\): '$venv/bin/python3' ran, not the staged interpreter '$copy$venv/bin/python3'; run python3 as the settings put it first on PATH, not by an absolute path" \
    "... and says which interpreter ran and which to run"
printf '[stage]\nname = other\n[tree a]\nsource = %s/src/extra\n' "$venv" >"$T_TMP/other.ini"
t_fails "check of another manifest under this one's settings" \
    t_cluster 1 1 sh -c '. "$1" && exec "$2" check -m "$3" --python /usr/bin/python3 --import json' \
    sh "$T_TMP/env.sh" "$STAGE_PY" "$T_TMP/other.ini"
t_like "$(cat "$T_OUT")" "check: STAGE_PY_DIR '$copy' is not a copy of '$T_TMP/other.ini' \(whose copies are named 'other-<key>'\): source the settings of the run that staged this manifest" \
    "... is refused, naming both"
# the same name, another manifest: the trees of a module, not the whole
# environment (as scan --import and scan --whole-env of one module were)
mkdir -p "$T_TMP/mod"
printf '[stage]\nname = venv\n[tree m]\nsource = %s/mod\n' "$T_TMP" >"$T_TMP/same-name.ini"
t_fails "check of another manifest of the same name under this one's settings" \
    t_cluster 1 1 sh -c '. "$1" && exec "$2" check -m "$3" --python /usr/bin/python3 --import json' \
    sh "$T_TMP/env.sh" "$STAGE_PY" "$T_TMP/same-name.ini"
t_like "$(cat "$T_OUT")" "check: STAGE_PY_DIR '$copy' is not a copy of '$T_TMP/same-name.ini': it holds no '$T_TMP/mod' \(tree 'm'\); it is the copy of another manifest named 'venv'" \
    "... is refused: the copy holds none of its trees"
t_fails "check of a manifest without an interpreter, and no --python" \
    t_cluster 1 1 sh -c 'STAGE_PY_DIR=/dev/shm/x/other-0123456789abcdef exec "$1" check -m "$2" --import json' \
    sh "$STAGE_PY" "$T_TMP/other.ini"
t_like "$(cat "$T_OUT")" "check: '$T_TMP/other.ini' names no interpreter \(no 'python =', no \[python\] section\): give --python" \
    "... is a usage error"

t_is "$(grep -c '/\.local/lib/python' "$T_TMP/runs/strace.node1" || true)" 0 \
    "node1: strace: no call on the user site directory"
sed 's|^prefix = .*|&\nuser_site = yes|' "$T_TMP/venv.ini" >"$T_TMP/usersite.ini"
t_ok "user_site = yes" t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/usersite.ini" -o "$T_TMP/envu.sh"
t_is "$(grep -c PYTHONNOUSERSITE "$T_TMP/envu.sh" || true)" 0 "... leaves PYTHONNOUSERSITE unset"
t_is "$(grep -v PYTHONNOUSERSITE "$T_TMP/env.sh")" "$(cat "$T_TMP/envu.sh")" "... and is the only difference"

t_ok "a warm node stages nothing and gives the same settings" \
    t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/venv.ini" -o "$T_TMP/env2.sh" --stats "$T_TMP/stats2.json"
t_is "$(t_json "$T_TMP/stats2.json" bytes_broadcast)" 0 "... 0 bytes sent"
t_is "$(cat "$T_TMP/env2.sh")" "$(cat "$T_TMP/env.sh")" "... the same settings"

# A bundle of the venv: packed once, then streamed without running or
# walking anything of the venv; relocated on each node all the same.
t_ok "pack the venv into a bundle" "$STAGE_PY" pack -m "$T_TMP/venv.ini" -o "$T_TMP/venv.bundle"
t_like "$(tail -c 2000 "$T_TMP/venv.bundle" | tr -d '\0')" '"env": "venv"' \
    "... its trailer says it is a venv"
sed "s|^name = venv$|name = venv\nbundle = $T_TMP/venv.bundle|" "$T_TMP/venv.ini" >"$T_TMP/vb.ini"
# (its bytecode gives the bundle another key: both nodes are cold again)
T_WRAP="strace -f -y -e trace=%file -o $T_TMP/bundle.strace" \
    t_ok "stage the bundle on 2 nodes" \
    t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/vb.ini" -o "$T_TMP/envb.sh" --stats "$T_TMP/statsb.json"
t_is "$(t_json "$T_TMP/statsb.json" cold_nodes)" 2 "... both nodes receive it"
t_is "$(grep -cE "[\"<]${venv}[/\">]" "$T_TMP/bundle.strace" || true)" 0 \
    "... strace: the job makes no call on the venv"
t_like "$(cat "$T_TMP/envb.sh")" "^VIRTUAL_ENV='/dev/shm/stage-py-$uid/venv-[0-9a-f]{16}$venv'" \
    "... VIRTUAL_ENV from the bundle's trailer"
t_ok "... and its interpreter imports from the copy" \
    t_cluster 1 1 sh -c '. "$1" && cd / && python3 -c "import sys, purepkg, cext, extra2_mod
assert sys.prefix == sys.argv[1] + sys.argv[2], sys.prefix
for m in (purepkg, cext, extra2_mod): assert m.__file__.startswith(sys.argv[1] + \"/\"), m.__file__
" "$STAGE_PY_DIR" "$2"' sh "$T_TMP/envb.sh" "$venv"

# A conda-like prefix: an interpreter of its own in bin/ and its library in
# lib/ (here a link to Debian's), a conda-meta directory.
conda=$T_TMP/envs/conda
mkdir -p "$conda/bin" "$conda/lib" "$conda/conda-meta" "$conda/share/doc"
cp "$base" "$conda/bin/"
ln -s "$(basename "$base")" "$conda/bin/python3"
ln -s "/usr/lib/python$pyver" "$conda/lib/python$pyver"
printf '[stage]\nname = conda\n[python c]\nprefix = %s\n' "$conda" >"$T_TMP/conda.ini"
t_ok "stage a conda-like prefix" t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/conda.ini" -o "$T_TMP/envc.sh"
t_like "$(cat "$T_TMP/envc.sh")" "^CONDA_PREFIX='/dev/shm/stage-py-$uid/conda-[0-9a-f]{16}$conda'" \
    "... CONDA_PREFIX, as a conda environment has"
cnode=$(node1_copy "$T_TMP/envc.sh")
t_ok "... bin and lib staged, its library as a directory" test -d "$cnode$conda/lib/python$pyver" \
    -a ! -L "$cnode$conda/lib/python$pyver" -a -f "$cnode$conda/bin/$(basename "$base")"
t_ok "... but not share/ (not in the default)" test ! -e "$cnode$conda/share"
t_ok "... its interpreter runs from the copy" \
    t_cluster 1 1 sh -c '. "$1" && cd / && python3 -c "import sys, json
assert sys.prefix == sys.argv[1] + sys.argv[2], sys.prefix
assert json.__file__.startswith(sys.argv[1] + \"/\"), json.__file__" "$STAGE_PY_DIR" "$2"' \
    sh "$T_TMP/envc.sh" "$conda"

# include = chooses what comes from the prefix; exclude is anchored there.
printf '[stage]\nname = chosen\n[python c]\nprefix = %s\ninclude = bin/python3*\nexclude = /lib/python%s/email __pycache__/\n' \
    "$conda" "$pyver" >"$T_TMP/chosen.ini"
t_ok "include and exclude" t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/chosen.ini" -o "$T_TMP/envi.sh"
inode=$(node1_copy "$T_TMP/envi.sh")
t_ok "... the interpreter and its standard library come" \
    test -f "$inode$conda/bin/python3" -a -f "$inode$conda/lib/python$pyver/os.py"
t_ok "... without what exclude names" test ! -e "$inode$conda/lib/python$pyver/email" \
    -a -d "$inode$conda/lib/python$pyver/json" -a ! -e "$inode$conda/lib/python$pyver/json/__pycache__"
t_ok "... and nothing else of the prefix" test ! -e "$inode$conda/conda-meta"

# The examples of stage-py.ini(5): the venv one, with this venv, stages;
# the FEniCS one is etc/fenics-env.ini.
awk -v dir="$T_TMP" '
    /^\.SH / { in_examples = ($2 == "EXAMPLES"); next }
    !in_examples { next }
    /^\.EX/ { n++; file = dir "/man-example" n; next }
    /^\.EE/ { file = ""; next }
    file { gsub(/\\-/, "-"); gsub(/\\e/, "\\"); print > file }' "$T_SRCDIR/man/stage-py.ini.5"
ex_venv=$(grep -l '^\[python venv\]$' "$T_TMP"/man-example* | head -1)
ex_fenics=$(grep -l '^\[python debian\]$' "$T_TMP"/man-example* | head -1)
t_ok "stage-py.ini(5) has a venv example and the FEniCS one" test -n "$ex_venv" -a -n "$ex_fenics"
sed "s|^prefix = .*|prefix = $venv|" "$ex_venv" >"$T_TMP/ex-venv.ini"
t_ok "... the venv example stages this venv" \
    t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/ex-venv.ini" -o "$T_TMP/ex-env.sh"
t_like "$(cat "$T_TMP/ex-env.sh")" "^VIRTUAL_ENV='/dev/shm/stage-py-$uid/myproject-[0-9a-f]{16}$venv'" \
    "... as a venv"
t_is "$(grep -v '^;' "$T_SRCDIR/etc/fenics-env.ini")" "$(cat "$ex_fenics")" \
    "... the FEniCS example is etc/fenics-env.ini"

# Errors: each names the manifest's line.
printf '[stage]\nname = bad\n[python b]\nprefix = %s\n' "$T_TMP/envs" >"$T_TMP/bad.ini"
t_fails "a prefix without an interpreter" t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/bad.ini"
t_like "$(cat "$T_OUT")" "$T_TMP/bad.ini:4: prefix '$T_TMP/envs' has no bin/python3 or bin/python" \
    "... names the file and line"
t_ok "... with status 2" test "$_t_rc" = 2
mkdir -p "$T_TMP/envs/broken/bin"
printf '#!/bin/sh\necho broken >&2\nexit 3\n' >"$T_TMP/envs/broken/bin/python3"
chmod 755 "$T_TMP/envs/broken/bin/python3"
printf '[stage]\nname = bad\n[python b]\nprefix = %s\n' "$T_TMP/envs/broken" >"$T_TMP/bad.ini"
t_fails "an interpreter that fails" t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/bad.ini"
t_like "$(cat "$T_OUT")" "$T_TMP/bad.ini:4: \[python b\]: '$T_TMP/envs/broken/bin/python3' failed \(exit status 3\)" \
    "... names the file, line and interpreter"
t_ok "... with status 1" test "$_t_rc" = 1
printf '[stage]\nname = bad\n[python b]\nprefix = %s\ninclude = bin/nothing\n' "$conda" >"$T_TMP/bad.ini"
t_fails "an include that names nothing" t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/bad.ini"
t_like "$(cat "$T_OUT")" "$T_TMP/bad.ini:5: include 'nothing': no such entry in '$conda/bin'" \
    "... names the file, line and path"
t_done
