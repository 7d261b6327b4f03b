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
t_like "$(printf '%s\n' "$out" | head -1)" "^EXE	" "... and the interpreter first, which the reasons depend on"
# Scratch files that the run maps in the temporary directory (Open MPI's
# shared memory segments) are not files of any tree; other maps are.
mkdir -p "$T_TMP/mods" "$T_TMP/scratch" "$T_TMP/other"
head -c 8192 /dev/zero >"$T_TMP/scratch/segment"
head -c 8192 /dev/zero >"$T_TMP/other/segment"
cat >"$T_TMP/mods/mapper.py" <<EOP
# opened by C, as Open MPI opens them (Python's open() would be an audit event)
import ctypes, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
fds = [libc.open(p.encode(), os.O_RDWR) for p in ('$T_TMP/scratch/segment', '$T_TMP/other/segment')]
maps = [mmap.mmap(fd, 0) for fd in fds]
EOP
out=$(TMPDIR=$T_TMP/scratch PYTHONPATH=$T_TMP/mods "$py" -c "$(cat "$d/glibc.py" "$d/check.py")" \
    "$T_TMP/copy" "=$T_TMP/mods" mapper)
t_is "$(printf '%s\n' "$out" | grep -c "$T_TMP/scratch/segment" || true)" 0 \
    "check.py: a segment mapped in TMPDIR is not listed"
t_like "$out" "^OUTSIDE	shared object	$T_TMP/other/segment	" "... one mapped elsewhere is"
t_done
