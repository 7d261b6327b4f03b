#!/bin/bash
# SPDX-License-Identifier: MIT
# The Python that stage-py runs (src/py/*.py), run by the interpreter
# directly, as stage-py runs it (python -c, glibc.py first for scan and
# check): each says what its header says it prints.
. "${srcdir:-.}/tests/lib.sh"
py=/usr/bin/python3
[ -x "$py" ] || t_skip_all "no /usr/bin/python3"
d=$T_SRCDIR/src/py

for f in "$d"/*.py; do
    t_ok "$(basename "$f") compiles" "$py" -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$f"
done
if "$py" -m pyflakes --version >/dev/null 2>&1; then
    t_ok "pyflakes finds nothing in compile.py and facts.py" "$py" -m pyflakes "$d/compile.py" "$d/facts.py"
    t_ok "... nor in glibc.py + scan.py, glibc.py + check.py" sh -c \
        "cat '$d/glibc.py' '$d/scan.py' | '$py' -m pyflakes && cat '$d/glibc.py' '$d/check.py' | '$py' -m pyflakes"
else
    t_skip 2 "no pyflakes (Debian: python3-pyflakes)"
fi

# facts.py: what an environment is made of
out=$("$py" -I -c "$(cat "$d/facts.py")")
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
t_like "$out" "^V $ver$" "facts.py: the version"
t_like "$out" "^X $(realpath "$py")$" "... the real executable"
t_like "$out" "^T /usr/lib/python$ver$" "... the standard library"
t_like "$out" "^S /usr/lib/python$ver/lib-dynload$" "... sys.path, lib-dynload included"

# compile.py: bytecode for a .py without an up-to-date .pyc
mkdir -p "$T_TMP/tree/pkg" "$T_TMP/out"
echo 'x = 1' >"$T_TMP/tree/pkg/mod.py"
echo 'def (' >"$T_TMP/tree/pkg/bad.py"
printf 'F\t7\t%s\tt/pkg/mod.py\nF\t8\t%s\tt/pkg/bad.py\n' "$T_TMP/tree/pkg/mod.py" \
    "$T_TMP/tree/pkg/bad.py" >"$T_TMP/list"
out=$("$py" -I -c "$(cat "$d/compile.py")" "$T_TMP/list" "$T_TMP/out")
tag=$("$py" -c 'import sys; print(sys.implementation.cache_tag)')
t_like "$out" "^$ver$" "compile.py: the version first"
t_like "$out" "^7	t/pkg/__pycache__/mod\.$tag\.pyc$" "... the index and the .pyc of a module"
t_ok "... written where it says" test -s "$T_TMP/out/t/pkg/__pycache__/mod.$tag.pyc"
t_like "$out" "^E	$T_TMP/tree/pkg/bad.py	" "... and an E line for what does not compile"
t_is "$(od -An -tu1 -j4 -N1 "$T_TMP/out/t/pkg/__pycache__/mod.$tag.pyc" | tr -d ' ')" 1 \
    "... in unchecked-hash mode (flags 1)"

# scan.py (after glibc.py): what an import loads
out=$("$py" -c "$(cat "$d/glibc.py" "$d/scan.py")" json)
t_like "$out" "^V $ver\.[0-9]+$" "scan.py: the version"
t_like "$out" "^P /usr/lib/python$ver	(.*	)?json(	|$)" "... json, under the standard library's entry"

# check.py (after glibc.py): what comes from outside a copy
mkdir -p "$T_TMP/copy"
out=$("$py" -c "$(cat "$d/glibc.py" "$d/check.py")" "$T_TMP/copy" "=/usr/lib/python$ver" json)
t_like "$out" "^ORIGINAL	module	/usr/lib/python$ver/json/__init__\.py	missing from the copy" \
    "check.py: a module from a staged tree's original place, missing from the copy"
t_like "$(printf '%s\n' "$out" | tail -1)" "^[0-9]+ [1-9][0-9]*$" "... and the counts last"
t_done
