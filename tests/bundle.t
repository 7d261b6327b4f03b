#!/bin/bash
# SPDX-License-Identifier: MIT
# Bundles: stage-py pack writes one file from cron; a job streams it as it
# is and never walks the trees (counted with strace); a bundle that is
# truncated, damaged, writable by others or from another manifest is an
# error everywhere, and nothing is staged; pack is idempotent.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 strace bsdtar
[ -x /usr/bin/python3 ] || t_skip_all "no /usr/bin/python3"

uid=$(id -u)
src=$T_TMP/src
t_make_tree "$src" 20
touch "$src/pkg/__init__.py"
bundle=$T_TMP/b/tb.bundle
mkdir -p "$T_TMP/b"
printf '[stage]\nname = tb\nbundle = b/tb.bundle\npython = /usr/bin/python3\n[tree a]\nsource = %s\nenv = PYTHONPATH\n' \
    "$src" >"$T_TMP/m.ini"
run() { t_run 3 1 "$@"; }
stage() { run -m "$T_TMP/m.ini" --stats "$T_TMP/st.json" -v "$@"; }
wipe() { find "$(t_node_shm 1)" "$(t_node_shm 2)" "$(t_node_shm 3)" -mindepth 1 -delete 2>/dev/null || true; }
copies() { find "$T_NODES" -path '*/stage-py-*/tb-*' -prune -o -path '*/stage-py-*/.tmp-*' -prune | grep -c -e '/tb-' -e '/.tmp-' || true; }
pack() { "$STAGE_PY" pack -m "$T_TMP/m.ini" -v "$@" >"$T_TMP/stdout" 2>"$T_TMP/stderr"; }

t_ok "pack, a single process without a launcher" pack
t_like "$(cat "$T_TMP/stdout")" "^$bundle: written \(key [0-9a-f]{16}, [0-9]+ entries" "... says what it wrote"
t_like "$(t_err)" "bytecode: 21 of 21 modules compiled by '/usr/bin/python3' \(Python 3\.[0-9]+\)" \
    "... compiled every module with the manifest's interpreter"
t_like "$(bsdtar -tvf "$bundle" 2>&1 | head -1)" ' \.stage-py-bundle\.json$' "bsdtar -tvf lists it, its description first"
t_ok "... with a .pyc beside each module" bsdtar -tf "$bundle" "${src#/}/pkg/__pycache__/m7.$(/usr/bin/python3 -c 'import sys; print(sys.implementation.cache_tag)').pyc"
ino=$(stat -c %i:%Y "$bundle")
sleep 1
t_ok "pack again, nothing changed" pack
t_like "$(cat "$T_TMP/stdout")" "up to date, left as it was" "... says so"
t_is "$(stat -c %i:%Y "$bundle")" "$ino" "... and leaves the bundle untouched"

# -y: a call by descriptor (fstatat(fd, "name")) shows the directory's path too
T_WRAP="strace -f -qq -y -e trace=%file -o $T_TMP/trace" t_ok "stage from the bundle, under strace" \
    t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/m.ini" --stats "$T_TMP/st.json"
t_is "$(t_stat source):$(t_stat cold_nodes)" bundle:3 "... streams the bundle to the 3 nodes"
t_is "$(grep -cE "[\"<]${src}[/\">]" "$T_TMP/trace" || true)" 0 "... and no process touches the trees"
wipe
printf '[stage]\nname = tb\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/plain.ini"
T_WRAP="strace -f -qq -y -e trace=%file -o $T_TMP/trace2" t_ok "for comparison: from the trees, under strace" \
    t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/plain.ini"
t_ok "... the walk touches them" test "$(grep -cE "[\"<]${src}[/\">]" "$T_TMP/trace2")" -gt 20
wipe

t_ok "stage from the bundle" stage
copy=$(ls -d "$(t_node_shm 3)/stage-py-$uid"/tb-*)
t_ok "... the copy holds the trees" diff -r -x __pycache__ "$src" "$copy$src"
t_ok "... without the bundle's description" test ! -e "$copy/.stage-py-bundle.json"
t_like "$(cat "$T_TMP/stdout")" "PYTHONDONTWRITEBYTECODE='1'" "... the settings keep ranks from writing bytecode"
# each rank writes a file of its own: the launcher's output lines interleave
touch "$T_TMP/before"
sleep 1
t_cluster 3 1 sh -c ". '$T_TMP/stdout' && cd / && /usr/bin/python3 -c 'import pkg.m3 as m; print(m.__file__, m.__cached__)' >'$T_TMP/imp.'\$(hostname)" \
    >/dev/null 2>&1 || true
t_is "$(cat "$T_TMP"/imp.node* | grep -c "^/dev/shm/stage-py-$uid/tb-[0-9a-f]*$src/pkg/m3.py ")" 3 "... every node imports from its copy"
t_is "$(find "$T_NODES" -name '*.pyc' -newer "$T_TMP/before" | wc -l)" 0 "... and writes no bytecode"

echo 'v = "new"' >"$src/pkg/m1.py"
# and a .pyc in the source's own __pycache__ that its source has outdated
tag=$(/usr/bin/python3 -c 'import sys; print(sys.implementation.cache_tag)')
/usr/bin/python3 -m py_compile "$src/pkg/m5.py"
echo 'v = "five"' >"$src/pkg/m5.py"
t_ok "pack after a change" pack
t_like "$(cat "$T_TMP/stdout")" "written" "... writes a new bundle"
t_is "$(bsdtar -xOf "$bundle" "${src#/}/pkg/__pycache__/m5.$tag.pyc" | od -An -tu1 -j4 -N1 | tr -d ' ')" 1 \
    "... with a fresh, hash-based .pyc in place of an outdated one"
t_ok "... which stages" stage
t_is "$(t_stat cold_nodes)" 3 "... as a new copy"
t_is "$(ls -d "$(t_node_shm 1)/stage-py-$uid"/tb-* | wc -l)" 2 "... beside the old one"
wipe

# A bundle stands on its own: it carries its manifest
t_ok "stage from the bundle, with the manifest" stage -o "$T_TMP/m.sh"
t_ok "stage --bundle, with no manifest" run --bundle "$bundle" --stats "$T_TMP/st.json" -o "$T_TMP/nb.sh"
t_is "$(t_stat source):$(t_stat cold_nodes)" bundle:0 "... the same copy, already on every node"
t_is "$(cat "$T_TMP/nb.sh")" "$(cat "$T_TMP/m.sh")" "... and the same settings as with the manifest"
t_fails "stage --bundle and --manifest" run --bundle "$bundle" -m "$T_TMP/m.ini"
t_like "$(t_err)" "give --manifest FILE or --bundle FILE, not both" "... is a usage error"
wipe
t_ok "stage --bundle on cold nodes" run --bundle "$bundle" --stats "$T_TMP/st.json" -o "$T_TMP/nb.sh"
t_is "$(t_stat source):$(t_stat cold_nodes)" bundle:3 "... streams it to the 3 nodes"
t_ok "... the copy holds the trees" diff -r -x __pycache__ "$src" "$(ls -d "$(t_node_shm 2)/stage-py-$uid"/tb-*)$src"
t_like "$(tail -c 2000 "$bundle" | tr -d '\0')" '"manifest_text": "\[stage\]\\u000aname = tb\\u000abundle = b/tb\.bundle' \
    "... its trailer carries the manifest's text"
t_ok "check under its settings" \
    t_cluster 1 1 sh -c ". '$T_TMP/nb.sh' && exec '$STAGE_PY' check -m '$T_TMP/m.ini' --import pkg.m3"
t_like "$(cat "$T_OUT")" "^bundle $bundle: packed from the trees as they are now \(the trees' key [0-9a-f]{16}; its copies are tb-[0-9a-f]{16}\)$" \
    "... finds the bundle packed from the trees as they are"
copykey=$(sed -n "s|^STAGE_PY_DIR='.*/tb-\([0-9a-f]*\)'; export STAGE_PY_DIR$|\1|p" "$T_TMP/nb.sh")
t_like "$(cat "$T_OUT")" "its copies are tb-$copykey\)$" "... naming the key of the copy it staged"
t_ok "check --bundle, with no manifest" \
    t_cluster 1 1 sh -c ". '$T_TMP/nb.sh' && exec '$STAGE_PY' check --bundle '$bundle' --import pkg.m3"
t_like "$(cat "$T_OUT")" "^[0-9]+ file\(s\) from outside the copy '[^']*/tb-$copykey', 0 module\(s\) from a staged tree's original location$" \
    "... finds no module of the trees outside the copy"
t_fails "check --bundle and --manifest" "$STAGE_PY" check --bundle "$bundle" -m "$T_TMP/m.ini" --import pkg.m3
t_like "$(cat "$T_OUT")" "give --manifest FILE or --bundle FILE, not both" "... is a usage error"
cp -p "$src/pkg/m2.py" "$T_TMP/m2.py"
echo 'v = "changed"' >"$src/pkg/m2.py"
t_fails "check after a change of the trees" \
    t_cluster 1 1 sh -c ". '$T_TMP/nb.sh' && exec '$STAGE_PY' check -m '$T_TMP/m.ini' --import pkg.m3"
t_like "$(cat "$T_OUT")" "^bundle $bundle: packed from the trees with key [0-9a-f]{16}; they have key [0-9a-f]{16} now \(the trees' key, not its copies': tb-$copykey\)$" \
    "... tells the difference"
t_like "$(cat "$T_OUT")" "check: the trees have changed since bundle '$bundle' was packed: jobs stage what was packed \(stage-py pack it again\)" \
    "... and fails, saying what a job stages"
cp -p "$T_TMP/m2.py" "$src/pkg/m2.py"
cp "$bundle" "$T_TMP/b/gw.bundle"
chmod g+w "$T_TMP/b/gw.bundle"
t_fails "stage --bundle of a bundle its group can write" run --bundle "$T_TMP/b/gw.bundle"
t_like "$(t_err)" "bundle '$T_TMP/b/gw.bundle': refusing it: writable by group or others" \
    "... is refused, as its manifest would be"
rm "$T_TMP/b/gw.bundle"
# made by an earlier stage-py: no manifest in the trailer
python3 - "$bundle" "$T_TMP/b/old.bundle" <<'EOP'
import re, struct, sys
data = open(sys.argv[1], "rb").read()
tlen = struct.unpack("<Q", data[-8:])[0]
body = data[-tlen + 8:-16].decode()
body = re.sub(r'\n  "manifest_text": "(?:[^"\\]|\\.)*",', "", body)
t = struct.pack("<II", 0x184D2A5F, len(body) + 16) + body.encode()
t += b"STGPYBN1" + struct.pack("<Q", len(t) + 16)
open(sys.argv[2], "wb").write(data[:-tlen] + t)
EOP
chmod 644 "$T_TMP/b/old.bundle"
t_fails "stage --bundle of a bundle without a manifest" run --bundle "$T_TMP/b/old.bundle"
t_like "$(t_err)" "bundle '$T_TMP/b/old.bundle' carries no manifest \(an older stage-py packed it\): pack it again, or give its manifest with --manifest" \
    "... says so"
rm "$T_TMP/b/old.bundle"
wipe

# pack with neither --output nor 'bundle =': NAME.bundle beside the manifest
printf '[stage]\nname = nobundle\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/b/nb.ini"
t_ok "pack of a manifest without 'bundle ='" "$STAGE_PY" pack -m "$T_TMP/b/nb.ini"
t_like "$(cat "$T_OUT")" "^$T_TMP/b/nobundle.bundle: written" "... writes NAME.bundle beside the manifest"
t_ok "... which stages with --bundle" run --bundle "$T_TMP/b/nobundle.bundle"
wipe

# Broken bundles: a clear error, and nothing staged anywhere.
cp "$bundle" "$T_TMP/good"
truncate -s -1000 "$bundle"
t_fails "a truncated bundle" stage
t_like "$(t_err)" "^stage-py: node1: bundle '$bundle': no stage-py trailer at its end: not a bundle, or truncated" "... is named as such"
t_is "$(copies)" 0 "... nothing is staged"
t_ok "--fallback-to-trees" stage --fallback-to-trees
t_like "$(t_err)" "warning: bundle '$bundle': no stage-py trailer .*; staging from the trees instead" "... warns"
t_is "$(t_stat source)" trees "... and stages from the trees"
wipe
t_fails "--bundle of the truncated bundle with --fallback-to-trees" run --bundle "$bundle" --fallback-to-trees
t_like "$(t_err)" "no stage-py trailer .* \(--fallback-to-trees cannot help: the trees are named by the manifest that the bundle carries; stage with --manifest\)" \
    "... fails, saying why the fallback cannot help"
t_is "$(copies)" 0 "... nothing is staged"

cp "$T_TMP/good" "$bundle"
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(4000); b = f.read(1); f.seek(4000); f.write(bytes([b[0] ^ 1]))' "$bundle"
t_fails "a bundle with one bit flipped" stage
t_like "$(t_err)" "bundle '$bundle' is damaged: its digest is [0-9a-f]{32}, its trailer records [0-9a-f]{32}" "... is caught by its digest"
t_is "$(copies)" 0 "... nothing is staged, nothing left behind"

# Its first bytes damaged: the unpack cannot even start, and may say so
# before the digest does; either way the bundle is named, not the node.
cp "$T_TMP/good" "$bundle"
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.write(b"\xff\xfe")' "$bundle"
t_fails "a bundle whose first bytes are damaged" stage
t_like "$(t_err)" "^stage-py: node[0-9]: bundle '$bundle' is damaged(, or compressed with a filter that this node's libarchive lacks \(unpack: damaged archive: .*\): pack it again|: its digest is .*\(pack it again\))$" \
    "... is named as damaged, with the cure"
t_is "$(copies)" 0 "... nothing is staged, nothing left behind"
wipe

# The manifest record in its trailer damaged: with --bundle, the manifest it
# carries is not the one it records; not "another manifest" than itself.
cp "$T_TMP/good" "$bundle"
python3 - "$bundle" <<'EOP'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
at = data.rindex(b'"manifest": "') + len(b'"manifest": "')
data[at] = ord("0") if data[at] != ord("0") else ord("1")
open(sys.argv[1], "wb").write(data)
EOP
t_fails "stage --bundle of a bundle whose manifest record is damaged" run --bundle "$bundle"
t_like "$(t_err)" "bundle '$bundle': its trailer is damaged \(the manifest it carries is not the one it records\): pack it again" \
    "... says its trailer is damaged"
t_is "$(copies)" 0 "... nothing is staged"

rm "$bundle"
t_fails "a missing bundle" stage
t_like "$(t_err)" "^stage-py: node1: cannot open bundle '$bundle': No such file or directory" "... is named as such"
t_is "$(copies)" 0 "... nothing is staged"

cp "$T_TMP/good" "$bundle"
chmod o+w "$bundle"
t_fails "a bundle others can write" stage
t_like "$(t_err)" "bundle '$bundle': refusing it: writable by group or others" "... is refused"
chmod o-w "$bundle"

sed -i 's|^python = .*|python = /usr/bin/python3\nfallback_to_trees = no|; s|^env = PYTHONPATH|env = PYTHONPATH\nexclude = m2.py|' "$T_TMP/m.ini"
t_fails "a bundle made from another manifest" stage
t_like "$(t_err)" "bundle '$bundle' was made from another manifest than '$T_TMP/m.ini' \(or from an earlier version of it\): pack it again" \
    "... is refused"
t_is "$(copies)" 0 "... nothing is staged"

for c in gzip zstd lz4; do
    t_ok "pack --compress $c" pack --compress "$c"
    t_ok "... bsdtar lists it" bsdtar -tf "$bundle"
    t_ok "... it stages" stage --stats "$T_TMP/st.json"
    t_is "$(t_stat compress)" "$c" "... compressed as it was packed, as --stats says"
    t_ok "... completely" test -f "$(ls -d "$(t_node_shm 2)/stage-py-$uid"/tb-*)$src/pkg/m20.py"
    wipe
done
# An interpreter that is not the version the bundle's standard library is for.
mkdir -p "$T_TMP/py" "$T_TMP/std/lib/python3.11"
echo 'x = 1' >"$T_TMP/std/lib/python3.11/mod.py"
printf '#!/bin/sh\nexec /usr/bin/python3 "$@"\n' >"$T_TMP/py/python3.99"
chmod +x "$T_TMP/py/python3.99"
printf '[stage]\nname = std\nbundle = std.bundle\npython = %s\n[tree std]\nsource = %s\n' \
    "$T_TMP/py/python3.99" "$T_TMP/std/lib/python3.11" >"$T_TMP/std.ini"
t_ok "pack a standard library with an interpreter named python3.99" "$STAGE_PY" pack -m "$T_TMP/std.ini"
t_fails "... staging it" run -m "$T_TMP/std.ini"
t_like "$(t_err)" "bundle '$T_TMP/std.bundle' stages the standard library of Python 3\.11 \(tree 'std': $T_TMP/std/lib/python3\.11\), but '$T_TMP/py/python3\.99' is Python 3\.99 now: pack it again" \
    "... is refused: its interpreter is another version now"

t_ok "pack --compress zstd" pack --compress zstd
t_ok "staging it with --compress lz4" stage --compress lz4 --stats "$T_TMP/st.json"
t_like "$(t_err)" "warning: --compress lz4 is for staging from the trees: bundle '$bundle' is streamed as it was packed \(compress: zstd\)" \
    "... warns that the bundle is streamed as it is"
t_is "$(t_stat compress)" zstd "... which --stats says"
t_fails "pack --compress xz" pack --compress xz
t_like "$(t_err)" "--compress 'xz': use none, gzip, zstd or lz4" "... is a usage error"
t_done
