#!/bin/bash
# SPDX-License-Identifier: MIT
# The settings of a real run, on stdout or in --output, for every --shell,
# read by the real shell: the staged tree comes first, the old value stays.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3

uid=$(id -u)
src="$T_TMP/src dir"
mkdir -p "$src/shellpkg"
echo 'WHERE = __file__' >"$src/shellpkg/__init__.py"
cat >"$T_TMP/m.ini" <<EOT
[stage]
name = shells
[tree a]
source = $src
EOT

stage() { t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/m.ini" "$@" 2>"$T_TMP/stderr"; }

export PYTHONPATH="/old one:/old two"
out=$(stage)
t_like "$out" "^STAGE_PY_DIR='/dev/shm/stage-py-$uid/shells-[0-9a-f]{16}'; export STAGE_PY_DIR$" \
    "stdout carries the sh settings"
dir=$(sed -n "s/^STAGE_PY_DIR='\(.*\)'; export STAGE_PY_DIR$/\1/p" <<<"$out")
want="$dir$src:/old one:/old two"
got=$(eval "$out" && printf %s "$PYTHONPATH")
t_is "$got" "$want" "eval \"\$(stage-py ...)\" puts the staged tree first"

for sh in sh bash dash zsh ksh; do
    if command -v "$sh" >/dev/null; then
        stage --output "$T_TMP/env.$sh" >/dev/null
        got=$("$sh" -c '. "$1" && printf %s "$PYTHONPATH"' "$sh" "$T_TMP/env.$sh")
        t_is "$got" "$want" "$sh reads --output FILE"
    else
        t_skip 1 "$sh is not installed"
    fi
done

for sh in csh tcsh; do
    if command -v "$sh" >/dev/null; then
        stage --shell csh --output "$T_TMP/env.$sh" >/dev/null
        got=$("$sh" -f -c "source '$T_TMP/env.$sh' && printenv PYTHONPATH")
        t_is "$got" "$want" "$sh reads --shell csh"
    else
        t_skip 1 "$sh is not installed"
    fi
done

if command -v fish >/dev/null; then
    stage --shell fish --output "$T_TMP/env.fish" >/dev/null
    got=$(fish --no-config -c "source '$T_TMP/env.fish'; and printenv PYTHONPATH")
    t_is "$got" "$want" "fish reads --shell fish"
else
    t_skip 1 "fish is not installed"
fi

stage --shell json --output "$T_TMP/env.json" >/dev/null
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["PYTHONPATH"])' "$T_TMP/env.json")
t_is "$got" "$want" "--shell json gives the complete value"

unset PYTHONPATH
stage --shell csh --output "$T_TMP/env2.csh" >/dev/null
t_is "$(tcsh -f -c "source '$T_TMP/env2.csh' && printenv PYTHONPATH" 2>&1)" "$dir$src" \
    "csh: no empty element when PYTHONPATH was unset"

# The copies live in the fake nodes' /dev/shm: import there.  Each node
# writes its own file (lines forwarded by the launcher may interleave).
mkdir "$T_TMP/where"
t_ok "python3 imports the package from the copy on every node" \
    t_cluster 2 1 sh -c '. "$1" && cd / && exec /usr/bin/python3 -c "
import shellpkg, socket, sys
open(sys.argv[1] + \"/\" + socket.gethostname(), \"w\").write(shellpkg.WHERE)" "$2"' \
    sh "$T_TMP/env.sh" "$T_TMP/where"
t_is "$(cat "$T_TMP/where/node1"; echo; cat "$T_TMP/where/node2")" \
    "$dir$src/shellpkg/__init__.py
$dir$src/shellpkg/__init__.py" "... from the staged path"
t_done
