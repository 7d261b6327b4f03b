#!/bin/bash
# SPDX-License-Identifier: MIT
# The layering of src/, written down once and kept: the library (src/lib/)
# never includes a command's header (src/cmd/), and no module of the
# library includes the header of a module above it.  The layers, from the
# bottom: a module may include its own layer's header only for itself.
. "${srcdir:-.}/tests/lib.sh"
cd "$T_SRCDIR/src"

declare -A layer=(
    [log]=0 [util]=0 [launch]=0 [node]=0
    [hash]=1 [match]=1 [trust]=1 [space]=1 [relocate]=1 [watchdog]=1
    [chunk]=2 [output]=2 [python]=2 [site]=2 [agree]=2 [testhook]=2
    [manifest]=3
    [pyenv]=4 [walk]=4 [env]=4 [cache]=4
    [pack]=5 [bcast]=5
    [bundle]=6
    [conf]=7
    [unpack]=7
    [stream]=8
)

for f in lib/*.c lib/*.h; do
    m=$(basename "${f%.*}")
    t_ok "src/$f: its module has a layer" test -n "${layer[$m]+x}"
done
for f in lib/*.c lib/*.h; do
    m=$(basename "${f%.*}")
    bad=
    while read -r h; do
        case $h in config | *.py) continue ;; esac
        if [ ! -f "lib/$h.h" ]; then
            bad="$bad $h.h (not the library's)"
        elif [ "$h" != "$m" ] && [ "${layer[$h]:-99}" -ge "${layer[$m]:-0}" ]; then
            bad="$bad $h.h (layer ${layer[$h]}, not below ${layer[$m]})"
        fi
    done < <(sed -n 's/^#include "\([a-z_.]*\)\.h"$/\1/p' "$f")
    t_is "${bad# }" "" "src/$f includes only lower layers of the library"
done
t_done
