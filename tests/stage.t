#!/bin/bash
# SPDX-License-Identifier: MIT
# stage-py stages a tree with every kind of entry onto 3 fake nodes of 2
# ranks each; every node's copy must be complete, identical to the source
# (paths, contents, modes, mtimes, links) and to the other nodes' copies,
# and the settings, read by a real shell, must make Debian's python3
# import a real package (sympy) from the node's own /dev/shm.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 md5sum

uid=$(id -u)
src=$T_TMP/src
out=$T_TMP/outside

# --- a source tree with every kind of entry -------------------------------
mkdir -p "$src/pkg/data" "$src/pkg/tests" "$src/pkg/ro" "$src/other" "$out/extdir"
long=$src/pkg/deep
for c in aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff gggggggggg; do
    long=$long/$c-$c
done
mkdir -p "$long"
echo 'ANSWER = 42' >"$src/pkg/__init__.py"
echo 'def f(): return "mod"' >"$src/pkg/mod.py"
head -c 300000 /dev/urandom >"$src/pkg/data/blob.bin"
printf '#!/bin/sh\necho run\n' >"$src/pkg/run.sh"; chmod 755 "$src/pkg/run.sh"
echo secret >"$src/pkg/odd"; chmod 604 "$src/pkg/odd"
echo inside >"$src/pkg/ro/file"
: >"$src/pkg/empty"
echo spaces >"$src/pkg/name with spaces.py"
echo deep >"$long/deep-file.py"
echo test >"$src/pkg/tests/test_x.py"
echo orig >"$src/pkg/x.orig"
echo other >"$src/other/o.py"
echo ext >"$out/ext.py"
echo extdir >"$out/extdir/file.txt"
ln -s . "$out/extdir/cycle"
ln -s mod.py "$src/pkg/lnk_rel"
ln -s "$src/pkg/mod.py" "$src/pkg/lnk_abs"
ln -s data "$src/pkg/lnk_dir"
ln -s "$out/ext.py" "$src/pkg/lnk_out_file"
ln -s "$out/extdir" "$src/pkg/lnk_out_dir"
ln -s nowhere "$src/pkg/dangling"
ln -s loop2 "$src/pkg/loop1"
ln -s loop1 "$src/pkg/loop2"
ln -s "${long#"$src/pkg/"}/deep-file.py" "$src/pkg/longlink"
echo hard >"$src/pkg/hard1"
ln "$src/pkg/hard1" "$src/pkg/hard2"
touch -h -d '2001-02-03 04:05:06.123456789' "$src/pkg/mod.py" "$src/pkg/data/blob.bin"
chmod 555 "$src/pkg/ro"

cat >"$T_TMP/m.ini" <<EOT
[stage]
name = t

[tree a]
source = $src
include = pkg
exclude = tests *.orig

; nested inside tree a: staged once, listed on the path on its own
[tree data]
source = $src/pkg/data
env = PYTHONPATH TESTVAR
EOT

stage() { t_run 3 2 -m "$T_TMP/m.ini" "$@"; }

copies() { ls -d "$(t_node_shm "$1")/stage-py-$uid"/t-* 2>/dev/null; }

# Listing of a tree: path, type, mode, size, mtime (ns) and link target.
listing() {
    (cd "$1" && find . -printf '%P|%y|%m|%s|%T@|%l\n' | LC_ALL=C sort)
}
sums() {
    (cd "$1" && find . -type f -exec md5sum {} + | LC_ALL=C sort -k2)
}

t_ok "3 nodes x 2 ranks: staging succeeds" \
    stage --output "$T_TMP/env.sh" --stats "$T_TMP/stats.json" --dest /dev/shm
t_is "$(cat "$T_TMP/stdout")" "" "with --output, stdout stays empty"
t_like "$(cat "$T_TMP/stderr")" "dangling symbolic link '$src/pkg/dangling': skipped" \
    "a dangling link is skipped with a warning"
t_like "$(cat "$T_TMP/stderr")" "symbolic link cycle at '$src/pkg/loop1': skipped" \
    "a link cycle is skipped with a warning"
t_like "$(cat "$T_TMP/stderr")" "symbolic link cycle at '$out/extdir/cycle': skipped" \
    "a cycle through a followed directory is detected"

for k in 1 2 3; do
    t_is "$(copies $k | wc -l)" 1 "node$k holds one copy"
    t_is "$(find "$(t_node_shm $k)/stage-py-$uid" -mindepth 1 -maxdepth 1 -name '.tmp*' | wc -l)" 0 \
        "node$k: no temporary directory is left"
done
copy=$(copies 1)
key=${copy##*/t-}
t_like "$key" '^[0-9a-f]{16}$' "the copy is named <name>-<16 hex digit key>"
c=$copy$src/pkg
s=$src/pkg

# Everything that is neither a link nor excluded is copied exactly.
plain() {
    (cd "$1" && find . \( -path ./tests -o -name '*.orig' -o -name 'lnk_out_*' \) -prune \
        -o ! -type l -printf '%P|%y|%m|%s|%T@\n' | LC_ALL=C sort)
}
t_is "$(plain "$c")" "$(plain "$s")" "paths, types, modes, sizes and mtimes (ns) match the source"
t_ok "file contents match the source" \
    diff <(cd "$s" && find . \( -path ./tests -o -name '*.orig' -o -name 'lnk_*' \) -prune \
               -o -type f -exec md5sum {} + | LC_ALL=C sort -k2) \
         <(cd "$c" && find . -name 'lnk_*' -prune -o -type f -exec md5sum {} + | LC_ALL=C sort -k2)
t_is "$(stat -c %a "$c/ro")" 555 "a read-only directory keeps its mode"
t_is "$(stat -c %y "$c/mod.py")" "$(stat -c %y "$s/mod.py")" "mtime to the nanosecond"
t_is "$(readlink "$c/lnk_rel")" mod.py "a relative link inside stays as it is"
t_is "$(readlink "$c/lnk_abs")" mod.py "an absolute link inside becomes relative"
t_is "$(readlink "$c/lnk_dir")" data "a link to a directory inside stays a link"
t_is "$(readlink "$c/longlink")" "$(readlink "$s/longlink")" "a link target over 100 characters"
t_is "$(cat "$c/longlink")" deep "... resolves in the copy"
t_ok "a link that leads outside is staged as the file it points to" \
    test -f "$c/lnk_out_file" -a ! -L "$c/lnk_out_file"
t_is "$(cat "$c/lnk_out_file")" ext "... with its content"
t_ok "a link to a directory outside is staged as that directory" \
    test -d "$c/lnk_out_dir" -a ! -L "$c/lnk_out_dir" -a -f "$c/lnk_out_dir/file.txt"
t_ok "... without the cycle inside it" test ! -e "$c/lnk_out_dir/cycle"
t_ok "dangling links and loops are not staged" \
    test ! -e "$c/dangling" -a ! -L "$c/dangling" -a ! -L "$c/loop1" -a ! -L "$c/loop2"
t_is "$(stat -c %i "$c/hard1")" "$(stat -c %i "$c/hard2")" "hard links stay hard links"
t_ok "excluded entries are not staged" test ! -e "$c/tests" -a ! -e "$c/x.orig"
t_ok "entries that include does not name are not staged" test ! -e "$copy$src/other"
t_ok "a path over 100 characters" test -f "${long/#$src/$copy$src}/deep-file.py"

for k in 2 3; do
    t_is "$(listing "$(copies $k)$src")" "$(listing "$copy$src")" "node$k's copy lists the same as node1's"
    t_is "$(sums "$(copies $k)$src")" "$(sums "$copy$src")" "node$k's copy has the same contents"
done

# --- the settings -----------------------------------------------------------
r=/dev/shm/stage-py-$uid/t-$key
t_is "$(grep '^PYTHONPATH=' "$T_TMP/env.sh")" \
    "PYTHONPATH='$r$src:$r$src/pkg/data'\"\${PYTHONPATH:+:\$PYTHONPATH}\"; export PYTHONPATH" \
    "PYTHONPATH: the trees in manifest order, ahead of the old value"
t_like "$(cat "$T_TMP/env.sh")" "^TESTVAR='/dev/shm/stage-py-$uid/t-$key$src/pkg/data'" \
    "a tree's env can name other variables"
t_like "$(cat "$T_TMP/env.sh")" "^STAGE_PY_DIR='/dev/shm/stage-py-$uid/t-$key'; export STAGE_PY_DIR$" \
    "STAGE_PY_DIR names the copy"
got=$(PYTHONPATH='' sh -c '. "$1" && printf %s "$PYTHONPATH"' sh "$T_TMP/env.sh")
t_is "$got" "/dev/shm/stage-py-$uid/t-$key$src:/dev/shm/stage-py-$uid/t-$key$src/pkg/data" \
    "an empty PYTHONPATH gains no empty element"

# --- --stats ----------------------------------------------------------------
t_ok "--stats writes JSON with the documented keys" python3 - "$T_TMP/stats.json" <<'EOP'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ranks"] == 6 and s["nodes"] == 3, s
assert s["files"] > 20 and s["bytes"] >= 300000, s
assert s["bytes_broadcast"] > s["bytes"] and s["chunk_size"] == 256 << 10, s
for k in ("scan", "pack", "broadcast", "unpack", "total"):
    assert s["seconds"][k] >= 0, k
assert s["status"] == 0 and s["error"] == "", s
EOP

# --- many chunks in flight ---------------------------------------------------
rm -rf "$T_NODES"/node*/shm/stage-py-*
t_ok "4 KiB chunks, 8 in flight" \
    stage --chunk-size 4K --pipeline-depth 8 --stats "$T_TMP/stats2.json" --output "$T_TMP/env2.sh"
t_ok "... the stream took over 70 chunks" python3 -c '
import json, sys; s = json.load(open(sys.argv[1])); assert s["chunks"] > 70, s["chunks"]' "$T_TMP/stats2.json"
t_like "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); t=s["timeline"]
print("overlap" if t["unpack"][0] < t["broadcast"][1] and t["broadcast"][0] < t["pack"][1] else "serial")' \
    "$T_TMP/stats2.json")" '^overlap$' "--stats shows pack, broadcast and unpack overlapping"
for k in 1 2 3; do
    t_is "$(listing "$(copies $k)$src")" "$(listing "$copy$src")" "node$k: the same copy as with one chunk"
    t_is "$(sums "$(copies $k)$src")" "$(sums "$copy$src")" "node$k: the same contents"
done

# --- writer threads ----------------------------------------------------------
rm -rf "$T_NODES"/node*/shm/stage-py-*
t_ok "3 threads write each copy" \
    stage --unpack-threads 3 --chunk-size 64K --stats "$T_TMP/stats4.json" --output "$T_TMP/env4.sh"
t_is "$(t_json "$T_TMP/stats4.json" unpack_threads)" 3 "... as --stats says"
for k in 1 2 3; do
    t_is "$(listing "$(copies $k)$src")" "$(listing "$copy$src")" "node$k: the same copy as with one"
    t_is "$(sums "$(copies $k)$src")" "$(sums "$copy$src")" "node$k: the same contents"
done
t_is "$(stat -c %i "$(copies 2)$src/pkg/hard1")" "$(stat -c %i "$(copies 2)$src/pkg/hard2")" \
    "... hard links stay hard links"
t_is "$(stat -c %a:%y "$(copies 3)$src/pkg/ro")" "$(stat -c %a:%y "$s/ro")" \
    "... and a read-only directory its mode and time"

# --- compressed on the wire ----------------------------------------------------
for z in lz4 zstd gzip; do
    rm -rf "$T_NODES"/node*/shm/stage-py-*
    t_ok "--compress $z: staging succeeds" \
        stage --compress "$z" --chunk-size 16K --stats "$T_TMP/stats-$z.json" --output "$T_TMP/env-$z.sh"
    t_is "$(t_json "$T_TMP/stats-$z.json" compress)" "$z" "... as --stats says"
    t_ok "... fewer bytes on the wire than the archive holds" python3 -c '
import json, sys; s = json.load(open(sys.argv[1]))
assert 0 < s["bytes_broadcast"] < s["bytes_archive"], s' "$T_TMP/stats-$z.json"
    for k in 1 2 3; do
        t_is "$(listing "$(copies $k)$src")" "$(listing "$copy$src")" "node$k: the same copy as uncompressed"
        t_is "$(sums "$(copies $k)$src")" "$(sums "$copy$src")" "node$k: the same contents"
    done
done
t_is "$(t_json "$T_TMP/stats2.json" compress)" none "uncompressed, --stats says none"

# --- a warm node keeps its copy ---------------------------------------------
ino=$(stat -c %i "$(copies 2)$src/pkg/mod.py")
t_ok "a second run on warm nodes succeeds" stage --output "$T_TMP/env3.sh"
t_is "$(stat -c %i "$(copies 2)$src/pkg/mod.py")" "$ino" "... and leaves the copy in place"
t_is "$(cat "$T_TMP/env3.sh")" "$(cat "$T_TMP/env2.sh")" "... with the same settings"

# --- a real package, imported on every node from that node's copy -------------
if [ -d /usr/lib/python3/dist-packages/sympy ] && [ -x /usr/bin/python3 ]; then
    cat >"$T_TMP/sympy.ini" <<EOT
[stage]
name = sympy
[tree site]
source = /usr/lib/python3/dist-packages
include = sympy mpmath
exclude = tests/
EOT
    t_ok "stage sympy from Debian's dist-packages" \
        t_cluster 3 2 "$STAGE_PY" -m "$T_TMP/sympy.ini" -o "$T_TMP/sympy.sh"
    # Each rank writes its own file: lines forwarded by the launcher may
    # interleave.
    mkdir "$T_TMP/imports"
    t_ok "every rank imports sympy from its node's /dev/shm" \
        t_cluster 3 2 sh -c '. "$1" && exec /usr/bin/python3 -c "
import os, socket, sys, sympy, mpmath
with open(os.path.join(sys.argv[1], str(os.getpid())), \"w\") as f:
    print(socket.gethostname(), sympy.__file__, mpmath.__file__, file=f)" "$2"' \
        sh "$T_TMP/sympy.sh" "$T_TMP/imports"
    imports=$(cat "$T_TMP"/imports/*)
    t_is "$(grep -c "^node[123] /dev/shm/stage-py-$uid/sympy-[0-9a-f]*/usr/lib/python3/dist-packages/sympy/__init__.py /dev/shm/stage-py-$uid/sympy-[0-9a-f]*/usr/lib/python3/dist-packages/mpmath/__init__.py$" <<<"$imports")" 6 \
        "six ranks, each from the staged copy"
    t_is "$(cut -d' ' -f1 <<<"$imports" | sort | uniq -c | awk '{print $1}' | sort -u)" 2 \
        "two ranks on each of the three nodes"
else
    t_skip 4 "Debian's python3-sympy is not installed"
fi

# Where the settings may not reach the application's ranks, stage-py warns.
SLURM_EXPORT_ENV=NONE t_ok "under --export=NONE (SLURM_EXPORT_ENV=NONE)" stage
t_like "$(cat "$T_TMP/stderr")" "warning: SLURM_EXPORT_ENV=NONE \(--export=NONE\): srun steps start without the environment" \
    "... warns that srun steps will not see the settings"
SLURM_HET_SIZE=2 t_ok "in a heterogeneous job (SLURM_HET_SIZE)" stage
t_like "$(cat "$T_TMP/stderr")" "warning: a heterogeneous job: this step stages only on the nodes of its own component" \
    "... warns that only this component's nodes are staged"
t_ok "otherwise" stage
t_is "$(grep -c -e 'warning: SLURM_EXPORT_ENV' -e 'warning: a heterogeneous' "$T_TMP/stderr" || true)" 0 \
    "... neither warning"

t_done
