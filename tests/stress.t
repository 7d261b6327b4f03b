#!/bin/bash
# SPDX-License-Identifier: MIT
# Sizes that break naive tools, on 3 fake nodes: tens of thousands of small
# files in deep directories, and one file larger than 2 GiB (sparse at the
# source, sparse in the copies).  Every node's copy is complete and verified.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 md5sum truncate

uid=$(id -u)
listing() { (cd "$1" && find . -printf '%P|%y|%m|%s|%T@|%l\n' | LC_ALL=C sort); }
contents() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 cat | md5sum); }

# --- 30 000 small files, some 40 directories deep --------------------------------
src=$T_TMP/many
python3 - "$src" <<'EOP'
import os, sys
top = sys.argv[1]
for d in range(30):
    path = os.path.join(top, "pkg%02d" % d)
    os.makedirs(path)
    for f in range(1000):
        with open(os.path.join(path, "m%04d.py" % f), "w") as fh:
            fh.write("value = %d\n" % (d * 1000 + f))
deep = os.path.join(top, *["level%02d" % i for i in range(40)])
os.makedirs(deep)
with open(os.path.join(deep, "bottom.py"), "w") as fh:
    fh.write("deep = True\n")
EOP
printf '[stage]\nname = many\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/many.ini"
t_ok "30 000 files staged on 3 nodes" \
    t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/many.ini" --stats "$T_TMP/many.json" --headroom 0
t_is "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"])' "$T_TMP/many.json")" 30072 \
    "... every entry counted (30 000 files, 72 directories)"
want_list=$(listing "$src")
want_sum=$(contents "$src")
for k in 1 2 3; do
    copy=$(ls -d "$(t_node_shm $k)/stage-py-$uid"/many-*)$src
    t_is "$(listing "$copy")" "$want_list" "node$k: every path, mode, size and mtime"
    t_is "$(contents "$copy")" "$want_sum" "node$k: every byte"
done
rm -rf "$src" "$T_NODES"

# --- one file over 2 GiB ---------------------------------------------------------------
big=$T_TMP/big
mkdir "$big"
printf 'head' >"$big/huge.bin"
truncate -s 2500M "$big/huge.bin"
printf 'tail' >>"$big/huge.bin"
printf '[stage]\nname = huge\n[tree a]\nsource = %s\n' "$big" >"$T_TMP/huge.ini"
t_ok "a 2.5 GiB file staged on 3 nodes" \
    t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/huge.ini" --stats "$T_TMP/huge.json" --headroom 0
t_ok "... the stream carried all of it" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["bytes"] == 2500 * 2**20 + 4 and s["bytes_broadcast"] > s["bytes"], s' "$T_TMP/huge.json"
want=$(md5sum <"$big/huge.bin")
for k in 1 2 3; do
    copy=$(ls -d "$(t_node_shm $k)/stage-py-$uid"/huge-*)$big/huge.bin
    t_is "$(stat -c %s "$copy")" $((2500 * 1048576 + 4)) "node$k: the size"
    t_is "$(md5sum <"$copy")" "$want" "node$k: the content"
    t_ok "node$k: the zeros are holes, not memory" test "$(stat -c %b "$copy")" -lt 1024
done
t_done
