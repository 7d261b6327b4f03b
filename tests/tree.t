#!/bin/bash
# SPDX-License-Identifier: MIT
# The stream goes down two trees of the cold nodes (bcast.c), or with
# --broadcast binary down one: every node gets the whole copy, in many
# small chunks, either way; a chunk damaged on its way into a node reaches
# the nodes below it in that chunk's tree, and no other; a warm node is
# left out of the trees.
#
# The binary tree on 7 nodes: node1 (the root) sends to node2 and node3,
# node2 to node4 and node5, node3 to node6 and node7.  The two trees on 7
# nodes (6 receivers): even chunks go node1 -> node2 -> node6 -> {node4 ->
# {node3, node5}, node7}, odd ones node1 -> node7 -> node3 -> {node5 ->
# {node6, node4}, node2}: a node interior in one is a leaf in the other.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 md5sum

uid=$(id -u)
src=$T_TMP/src
t_make_tree "$src" 40 600000
printf '[stage]\nname = tree\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"
# listing DIR / contents DIR: every entry with its kind, mode, size, mtime
# and link target / every file's bytes
listing() { (cd "$1" && find . -printf '%P|%y|%m|%s|%T@|%l\n' | LC_ALL=C sort); }
contents() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 cat | md5sum); }
copy_of() { ls -d "$(t_node_shm "$1")/stage-py-$uid"/tree-* 2>/dev/null; }
# stage NODES [options]: one run of 1 rank per node, 8 KiB chunks, 2 in
# flight: about 80 chunks through the tree
stage() {
    local n=$1
    shift
    t_cluster "$n" 1 "$STAGE_PY" -m "$T_TMP/m.ini" --chunk-size 8K --pipeline-depth 2 \
        --stats "$T_TMP/st.json" -o "$T_TMP/env.sh" "$@" 2>"$T_TMP/stderr"
}

for algo in two-tree binary; do
    rm -rf "$T_NODES"
    t_ok "7 nodes, cold, --broadcast $algo" stage 7 --broadcast "$algo"
    t_is "$(t_stat cold_nodes):$(t_stat tree)" "7:$algo" "... every node receives the stream"
    t_ok "... in many chunks ($(t_stat chunks))" test "$(t_stat chunks)" -gt 50
    want_list=$(listing "$src")
    want_sum=$(contents "$src")
    for k in 1 2 3 4 5 6 7; do
        t_is "$(listing "$(copy_of $k)$src"):$(contents "$(copy_of $k)$src")" "$want_list:$want_sum" \
            "... node$k: the whole copy, every byte"
    done
done

# A chunk damaged on its way into node2: node2 checks the digest, but it
# forwards what it received, and its children find the damage too.
rm -rf "$T_NODES"
rc=0; STAGE_PY_TEST_CORRUPT=node2:5 stage 7 --on-node-failure skip --broadcast binary || rc=$?
t_is "$rc" 0 "a chunk damaged on its way into node2, --on-node-failure skip: exit status 0"
t_is "$(t_stat failed_nodes)" "['node2', 'node4', 'node5']" \
    "... node2 and the nodes below it in the tree fail, no other"
t_like "$(cat "$T_TMP/stderr")" "node2,node4,node5 \(first error: digest mismatch at chunk 5: " \
    "... for a digest mismatch at that chunk"
for k in 1 3 6 7; do
    t_is "$(contents "$(copy_of $k)$src")" "$want_sum" "... node$k: the whole copy"
done

# The two trees: the damage goes down the damaged chunk's tree only.
rm -rf "$T_NODES"
rc=0; STAGE_PY_TEST_CORRUPT=node3:4 stage 7 --on-node-failure skip || rc=$?
t_is "$rc:$(t_stat failed_nodes)" "0:['node3']" \
    "two trees: an even chunk damaged into node3, a leaf of the even tree: node3 alone fails"
rm -rf "$T_NODES"
rc=0; STAGE_PY_TEST_CORRUPT=node3:5 stage 7 --on-node-failure skip || rc=$?
t_is "$rc:$(t_stat failed_nodes)" "0:['node2', 'node3', 'node4', 'node5', 'node6']" \
    "... an odd one: node3 and the nodes below it in the odd tree fail, no other"
for k in 1 7; do
    t_is "$(contents "$(copy_of $k)$src")" "$want_sum" "... node$k: the whole copy"
done

# A warm node is not in the tree: the cold nodes form it without node2.
rm -rf "$T_NODES"
t_ok "node2 alone, first" stage 2
rm -rf "$(t_node_shm 1)"
rc=0; STAGE_PY_TEST_CORRUPT=node3:5 stage 5 --on-node-failure skip --broadcast binary || rc=$?
t_is "$rc:$(t_stat cold_nodes)" 0:4 "then 5 nodes, node2 warm: 4 cold nodes"
t_is "$(t_stat failed_nodes)" "['node3', 'node5']" \
    "... the tree is node1 -> node3, node4; node3 -> node5: damage into node3 reaches node5"
t_is "$(contents "$(copy_of 4)$src")" "$want_sum" "... node4 has the whole copy"
t_done
