#!/bin/bash
# SPDX-License-Identifier: MIT
# The node-local cache: a node that already holds a complete copy of the
# same content takes no part in the transfer; when every node does, nothing
# is read or sent.  A copy without its record is never trusted.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3

uid=$(id -u)
src=$T_TMP/src
t_make_tree "$src" 20 200000
printf '[stage]\nname = c\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"

stage() { t_run 3 2 -m "$T_TMP/m.ini" --stats "$T_TMP/st.json" -v "$@"; }
copy() { ls -d "$(t_node_shm "$1")/stage-py-$uid"/c-* 2>/dev/null; }
ino() { stat -c %i "$(copy "$1")$src/pkg/m1.py"; }

t_ok "a first run on 3 cold nodes" stage
t_is "$(t_stat cold_nodes)" 3 "... all three took part"
key=$(t_stat key)
t_like "$(cat "$(copy 2)/.stage-py.json")" "\"key\": \"$key\"" "each copy carries its record, naming its key"
i1=$(ino 1) i2=$(ino 2) i3=$(ino 3)
touch -d '2001-01-01' "$(copy 3)/.stage-py.json"

t_ok "a second identical run" stage
t_is "$(t_stat cold_nodes):$(t_stat bytes_broadcast):$(t_stat chunks)" 0:0:0 \
    "... every node is warm: nothing is sent"
t_like "$(cat "$T_TMP/stderr")" "every node holds 'c-$key': nothing to send" "... and says so"
t_is "$(ino 1):$(ino 2):$(ino 3)" "$i1:$i2:$i3" "... every copy is left as it was"
t_ok "... and is marked used now (the record's mtime)" \
    test "$(stat -c %Y "$(copy 3)/.stage-py.json")" -gt 1000000000
t_ok "... the settings are written as before" test -s "$T_TMP/stdout"

rm -rf "$(copy 2)"
t_ok "one of three nodes wiped" stage
t_is "$(t_stat cold_nodes)" 1 "... only that node takes part"
t_ok "... and bytes reach it" test "$(t_stat bytes_broadcast)" -gt 200000
t_is "$(ino 1):$(ino 3)" "$i1:$i3" "... the others unpack nothing"
t_ok "... node2 holds the copy again" test -f "$(copy 2)$src/pkg/m1.py"

rm -rf "$(copy 2)" "$(copy 3)"
t_ok "the root's node warm, the two others wiped" stage
t_is "$(t_stat cold_nodes)" 2 "... the two take part, the root sends"
t_is "$(ino 1)" "$i1" "... the root's copy stays as it was"
t_ok "... both hold the copy again" test -f "$(copy 2)$src/pkg/m1.py" -a -f "$(copy 3)$src/pkg/m1.py"

rm "$(copy 3)/.stage-py.json"
t_ok "a copy without its record" stage
t_like "$(cat "$T_TMP/stderr")" "node3: warning: removing '/dev/shm/stage-py-$uid/c-$key': it has no valid .stage-py.json record" \
    "... is not trusted, and removed"
t_is "$(t_stat cold_nodes)" 1 "... and that node is staged again"
t_ok "... with its record" test -f "$(copy 3)/.stage-py.json"

echo 'v = "changed"' >"$src/pkg/m1.py"
t_ok "one file changed" stage
t_ok "... gives a new key" test "$(t_stat key)" != "$key"
t_is "$(t_stat cold_nodes)" 3 "... and a new copy on every node"
t_is "$(ls -d "$(t_node_shm 1)/stage-py-$uid"/c-* | wc -l)" 2 "... beside the old one"
t_done
