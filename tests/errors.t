#!/bin/bash
# SPDX-License-Identifier: MIT
# Failures on the fake cluster: every rank exits with the same status, the
# root prints one message naming the file:line or the node, no settings
# are written (stdout carries `false` for eval), and no node keeps a
# temporary directory.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster

uid=$(id -u)
src=$T_TMP/src
mkdir -p "$src/pkg"
echo 'x = 1' >"$src/pkg/__init__.py"
head -c 600000 /dev/urandom >"$src/pkg/big.bin"
manifest() {
    cat >"$T_TMP/m.ini" <<EOT
[stage]
name = e
[tree a]
source = $1
$2
EOT
}

stage() {
    local nodes=$1 ppn=$2
    shift 2
    t_run "$nodes" "$ppn" -m "$T_TMP/m.ini" "$@"
}
errors() { grep -c '^stage-py: ' "$T_TMP/stderr" || true; }

# --- the manifest ------------------------------------------------------------
manifest "$src" "bogus = 1"
t_fails "a manifest error fails the run" stage 3 2 --output "$T_TMP/env.sh"
rc=0; stage 3 2 || rc=$?
t_is "$rc" 2 "... with exit status 2 on every rank"
t_is "$(errors)" 1 "... and one message"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: $T_TMP/m.ini:5: unknown key 'bogus' in \[tree a\]" \
    "... naming file:line"
t_is "$(cat "$T_TMP/stdout")" false "stdout carries 'false' for eval"
out=$(cat "$T_TMP/stdout")
t_fails "eval \"\$(stage-py ...)\" stops a 'set -e' script" \
    bash -c 'set -e; eval "$1"; echo reached' sh "$out"
t_ok "--output FILE is not written on failure" test ! -e "$T_TMP/env.sh"
t_is "$(find "$T_NODES" -name 'stage-py-*' | wc -l)" 0 "no node was touched"

manifest /nonexistent/stage-py-src ""
rc=0; stage 3 2 || rc=$?
t_is "$rc" 2 "a missing source: exit status 2"
t_like "$(cat "$T_TMP/stderr")" \
    "^stage-py: $T_TMP/m.ini:4: source '/nonexistent/stage-py-src': No such file or directory$" \
    "... naming file:line and the path"

# a slip in env: staged as written (a name is the manifest's to choose),
# but never silently
manifest "$src" "env = PYTHONPAHT"
t_ok "env = PYTHONPAHT: staged" stage 2 1 --output "$T_TMP/slip.sh"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node1: warning: $T_TMP/m.ini:5: env 'PYTHONPAHT' in \[tree a\]: did you mean 'PYTHONPATH'\?" \
    "... with a warning naming file:line and the variable it looks like"
t_is "$(grep -c '^stage-py: .*warning: .*PYTHONPAHT' "$T_TMP/stderr")" 1 "... once, from the root"
rm -rf "$T_NODES"; mkdir "$T_NODES"
manifest "$src" "env = PYTHONPAHT"
sed -i "s|^name = e$|name = e\nbundle = $T_TMP/none.bundle\nfallback_to_trees = yes|" "$T_TMP/m.ini"
t_ok "... and with a missing bundle, staged from the trees instead" stage 2 1 --output "$T_TMP/slip.sh"
t_is "$(grep -c '^stage-py: .*warning: .*PYTHONPAHT' "$T_TMP/stderr")" 1 \
    "... still once, though the manifest is read again for the trees"
rm -rf "$T_NODES"; mkdir "$T_NODES"

# --- the command line ----------------------------------------------------------
# A check of a file that nodes see differently (a --script in node-local
# memory, only on node2): every rank exits with the usage error, none waits
# in a collective for the others
mkdir -p "$(t_node_shm 2)"
printf 'import json\n' >"$(t_node_shm 2)/app.py"
rc=0; t_run 2 1 scan --python /usr/bin/python3 --script /dev/shm/app.py || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --script '/dev/shm/app.py': No such file or directory" \
    "a --script that the root cannot see: status 2 on every rank, no hang"
rm "$(t_node_shm 2)/app.py"
mkdir -p "$(t_node_shm 1)"
printf 'import json\n' >"$(t_node_shm 1)/app.py"
rc=0; t_run 2 1 scan --python /usr/bin/python3 --script /dev/shm/app.py -o "$T_TMP/app.ini" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: rank 1: --script '/dev/shm/app.py': No such file or directory" \
    "one that only another rank cannot see: status 2 everywhere, its message printed by the root"
t_ok "... and nothing written" test ! -e "$T_TMP/app.ini"
rm -rf "$T_NODES"; mkdir "$T_NODES"

manifest "$src" ""
t_fails "--chunk-size 1 is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --chunk-size 1
t_like "$(cat "$T_OUT")" "chunk-size '1': give a size from 4K to 1G" "... saying why"
t_fails "--pipeline-depth 0 is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --pipeline-depth 0
t_like "$(cat "$T_OUT")" "pipeline-depth '0': give a number from 1 to 64, or auto$" "... saying why"
t_fails "--broadcast with an unknown shape is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --broadcast chain
t_like "$(cat "$T_OUT")" "broadcast 'chain': use two-tree or binary$" "... saying which there are"
t_fails "--compress with an unknown method is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --compress xz
t_like "$(cat "$T_OUT")" "compress 'xz': use none, gzip, zstd or lz4$" "... saying which there are"
t_fails "--compress is not an option of clean" "$STAGE_PY" clean --all --compress lz4
t_like "$(cat "$T_OUT")" "compress: not an option of 'clean'" "... saying so"
t_fails "--broadcast is not an option of list" "$STAGE_PY" list --broadcast binary
t_like "$(cat "$T_OUT")" "broadcast: not an option of 'list'" "... saying so"
t_fails "--unpack-threads 65 is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --unpack-threads 65
t_like "$(cat "$T_OUT")" "unpack-threads '65': give a number from 1 to 64, or auto$" "... saying why"
t_fails "an unknown option is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --bogus
t_like "$(cat "$T_OUT")" "unknown option '--bogus'" "... naming it"
t_fails "no manifest is refused" "$STAGE_PY"
t_like "$(cat "$T_OUT")" "no manifest: give --manifest FILE" "... saying what is missing"
t_fails "--shell with an unknown shell is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --shell cmd
t_fails "a relative --dest is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --dest shm
t_fails "a --dest with ':' is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --dest /dev/shm:x
t_like "$(cat "$T_OUT")" "a ':' or a newline cannot stand in a path list" "... saying why"
t_fails "an empty --output is refused" "$STAGE_PY" -m "$T_TMP/m.ini" --output ''
rc=0; "$STAGE_PY" --bogus --shell json -m "$T_TMP/m.ini" >"$T_TMP/v" 2>/dev/null || rc=$?
t_is "$rc:$(cat "$T_TMP/v")" "2:" "an error before --shell json: no 'false' on stdout for JSON"
rc=0; "$STAGE_PY" --version >"$T_TMP/v" 2>&1 || rc=$?
t_is "$rc" 0 "--version exits 0"
t_like "$(cat "$T_TMP/v")" '^stage-py [0-9]+\.[0-9]+' "--version prints the version"
t_like "$(cat "$T_TMP/v")" "^MPI: (Open MPI|MPICH)" "... the MPI library it runs with (MPI_Get_library_version)"
t_is "$(grep -c "$(printf '\t')" "$T_TMP/v" || true)" 0 "... on lines without a tab (MPICH puts one in its version)"
t_like "$(cat "$T_TMP/v")" "^libarchive: libarchive [0-9]+\.[0-9]+\.[0-9]+ " "... libarchive's version at run time"
t_like "$(cat "$T_TMP/v")" "^xxHash: 0\.[0-9]+\.[0-9]+$" "... xxHash's"
t_like "$(cat "$T_TMP/v")" "^inih: [0-9]+ \(built against\)$" "... and inih's, as built"

# --- a node that cannot write its /dev/shm --------------------------------------
rm -rf "$T_NODES"
rc=0; T_RO_node2=1 stage 3 2 --output "$T_TMP/env.sh" || rc=$?
t_is "$rc" 1 "read-only /dev/shm on node2: exit status 1"
t_is "$(errors)" 1 "... one message"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node2: cannot create '/dev/shm/stage-py-$uid': Read-only file system$" \
    "... naming the node, the path and the cause"
t_ok "... no settings written" test ! -e "$T_TMP/env.sh"
t_is "$(t_leftovers)" 0 "... no temporary directory or probe left on any node"

# --- a node without room for the copy: found before any byte is sent ----------
rm -rf "$T_NODES"
rc=0; T_SHM_SIZE_node3=256k stage 3 2 --output "$T_TMP/env.sh" --stats "$T_TMP/st.json" || rc=$?
t_is "$rc" 1 "node3's /dev/shm is too small: exit status 1"
t_is "$(errors)" 1 "... one message"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node3: not enough space in '/dev/shm/stage-py-$uid': the copy needs 60[0-9] KiB and 256 MiB of headroom, 2[0-9]{2} KiB free$" \
    "... naming the node, the need, the headroom and the free space"
t_ok "... no settings written" test ! -e "$T_TMP/env.sh"
t_is "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_broadcast"])' "$T_TMP/st.json")" 0 \
    "... before any byte was sent"
t_is "$(t_leftovers)" 0 "... no temporary directory left on the other nodes"

# --- the per-user directory must be ours ------------------------------------------
rm -rf "$T_NODES"
mkdir -p "$T_NODES/node1/shm" "$T_TMP/elsewhere"
ln -s "$T_TMP/elsewhere" "$T_NODES/node1/shm/stage-py-$uid"
rc=0; stage 3 1 || rc=$?
t_is "$rc" 1 "a symbolic link in place of the per-user directory is refused"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node1: refusing '/dev/shm/stage-py-$uid': not a real directory" \
    "... naming the node and the path"
t_is "$(ls -A "$T_TMP/elsewhere")" "" "... and nothing is written through it"

rm -rf "$T_NODES"
mkdir -p "$T_NODES/node2/shm/stage-py-$uid"
chmod 777 "$T_NODES/node2/shm/stage-py-$uid"
rc=0; stage 3 1 || rc=$?
t_is "$rc" 1 "a per-user directory writable by others is refused"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node2: refusing '/dev/shm/stage-py-$uid': writable by group or others \(mode 0777\)" \
    "... naming the node and the mode"

rm -rf "$T_NODES"
mkdir -p "$T_NODES/node3/shm/stage-py-$uid"
chown 65534 "$T_NODES/node3/shm/stage-py-$uid"
rc=0; stage 3 1 || rc=$?
t_is "$rc" 1 "a per-user directory owned by another user is refused"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node3: refusing '/dev/shm/stage-py-$uid': owned by uid 65534, not by uid $uid" \
    "... naming the node and the owner"

# --- ranks of one node that do not share /dev/shm --------------------------------
if [ "${T_MPI:-openmpi}" = mpich ]; then
    # MPICH's MPI_Init itself needs the ranks of a node to share /dev/shm.
    t_skip 2 "MPICH cannot start ranks of one node with different /dev/shm"
else
    rm -rf "$T_NODES"
    rc=0; t_cluster 1 2 unshare -m sh -c 'mount -t tmpfs private /dev/shm && exec "$0" "$@"' \
        "$STAGE_PY" -m "$T_TMP/m.ini" >"$T_TMP/stdout" 2>"$T_TMP/stderr" || rc=$?
    t_is "$rc" 1 "ranks of one node with different /dev/shm: refused"
    t_like "$(cat "$T_TMP/stderr")" "^stage-py: node1: rank 1 does not see '/dev/shm/stage-py-$uid/.probe-[0-9a-f]*' that its node leader wrote" \
        "... saying that the ranks do not share it"
fi

t_done
