#!/bin/bash
# SPDX-License-Identifier: MIT
# Whole environments beyond Debian's /usr: a Python built from source by
# pyenv, and a venv made from it, each staged as a [python] prefix on 2
# fake nodes; the staged interpreter runs from the copy, imports from it,
# and makes no call on the original prefix.  pyenv's builds lie below
# root's 0700 home, which stage-py rightly refuses to publish, so the test
# stages a world-readable copy of one version's prefix (without its test
# suite).  Skipped where pyenv has no build of Python 3.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need strace
root=$(pyenv root 2>/dev/null || true)
[ -n "$root" ] || root=${PYENV_ROOT:-/root/.pyenv}
# the newest Python 3 build (3.6 to 3.13 on these machines)
ver=
for d in "$root"/versions/3.*; do
    v=${d##*/}
    if ! [[ $v =~ ^3\.[0-9]+\.[0-9]+$ ]] || [ ! -x "$d/bin/python3" ]; then
        continue
    fi
    if [ -z "$ver" ] || [ "$(printf '%s\n%s\n' "$ver" "$v" | sort -V | tail -1)" = "$v" ]; then
        ver=$v
    fi
done
[ -n "$ver" ] || t_skip_all "no Python 3 built by pyenv ($root/versions)"
short=${ver%.*}

prefix=$T_TMP/py/$ver
mkdir -p "$prefix"
chmod 755 "$T_TMP/py"
t_ok "a world-readable copy of pyenv's Python $ver, without its test suite" \
    sh -c 'tar -C "$1" --exclude="./lib/python$2/test" -cf - . | tar -C "$3" -xf - &&
        chmod -R go-w,a+rX "$3"' sh "$root/versions/$ver" "$short" "$prefix"
printf '[stage]\nname = pyb\n[python src]\nprefix = %s\nexclude = tests/ test/\n' "$prefix" \
    >"$T_TMP/pyb.ini"
probe='import decimal, json, sqlite3, ssl, sys; print(sys.prefix, sys.base_prefix, sys.executable, decimal.__file__, json.__file__)'

# stage INI ENV TRACES: stage INI on 2 nodes, then the staged python3 from
# PATH runs the probe on each node under strace (TRACES.nodeK, OUT.nodeK)
stage() {
    t_ok "stage $(basename "$1") on 2 nodes" t_cluster 2 1 "$STAGE_PY" -m "$1" -o "$2" &&
    t_ok "... the staged python3 runs the probe on every node, under strace" \
        t_cluster 2 1 sh -c '. "$1" && cd / && h=$(hostname) &&
            exec strace -f -e trace=%file -o "$2.trace.$h" python3 -c "$3" >"$2.out.$h"' \
        sh "$2" "$3" "$probe"
}

stage "$T_TMP/pyb.ini" "$T_TMP/pyb.sh" "$T_TMP/pyb"
copy=$(t_staged_dir "$T_TMP/pyb.sh")
for node in node1 node2; do
    read -r p base exe dec json <"$T_TMP/pyb.out.$node" || true
    t_is "$p:$base" "$copy$prefix:$copy$prefix" "$node: sys.prefix is the staged build"
    t_is "$exe" "$copy$prefix/bin/python3" "$node: the interpreter is the staged one"
    t_like "$dec $json" "^$copy$prefix/lib/python$short/decimal\.py $copy$prefix/lib/python$short/json/__init__\.py$" \
        "$node: its standard library from the copy"
    t_is "$(grep -c "\"${prefix}[/\"]" "$T_TMP/pyb.trace.$node" || true)" 0 \
        "$node: strace: no call on the original prefix"
done

# A venv of that build: the venv and its base interpreter, both staged
venv=$T_TMP/venv$short
t_ok "a venv of Python $ver" "$prefix/bin/python3" -m venv --without-pip "$venv"
chmod -R go-w,a+rX "$venv"
printf '[stage]\nname = pybv\n[python venv]\nprefix = %s\n' "$venv" >"$T_TMP/pybv.ini"
stage "$T_TMP/pybv.ini" "$T_TMP/pybv.sh" "$T_TMP/pybv"
copy=$(t_staged_dir "$T_TMP/pybv.sh")
for node in node1 node2; do
    read -r p base exe dec json <"$T_TMP/pybv.out.$node" || true
    t_is "$p" "$copy$venv" "$node: sys.prefix is the staged venv"
    t_is "$base" "$copy$prefix" "$node: sys.base_prefix is the staged build"
    t_like "$dec" "^$copy$prefix/lib/python$short/decimal\.py$" "$node: the base's library from the copy"
    t_is "$(grep -cE "\"($prefix|$venv)[/\"]" "$T_TMP/pybv.trace.$node" || true)" 0 \
        "$node: strace: no call on the original venv or build"
done
t_done
