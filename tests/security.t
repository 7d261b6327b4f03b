#!/bin/bash
# SPDX-License-Identifier: MIT
# A hostile user on the same node: nobody gets another user's data or code.
# Root never runs an interpreter that a user could have changed; a tree
# swapped between the walk and the pack (a link, a FIFO) fails the run
# instead of leaking what only root can read; a link into a private
# directory is left out; destinations, manifests, site files, bundles and
# root's outputs are refused where another user could change them; a
# missing destination is refused, not made; the cache budget holds for
# runs at once; no copy keeps a set-user-ID bit; no name fakes a log line.
# Races are made deterministic with STAGE_PY_TEST_PAUSE (src/lib/testhook.h).
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 mkfifo
t_need_user
export T_TIMEOUT=90     # a run that blocks (the old FIFO hang) fails, not hangs

mkdir -m 1777 "$T_TMP/marks"
mkdir "$T_TMP/out"
# run ARGS...: stage-py as root on one fake node, stdout and stderr kept
run() { t_run 1 1 "$@"; }
manifest() { printf '[stage]\nname = %s\n[tree a]\nsource = %s\n' "$1" "$2" >"$3"; }
# paused DIR POINT: wait until a run has stopped at POINT (at most 60 s)
paused() {
    local i
    for i in $(seq 1 600); do [ -e "$1/$2" ] && return 0; sleep 0.1; done
    return 1
}

# ---- 1. root runs no code that a user controls ------------------------------
venv=$T_TMP/uvenv
/usr/bin/python3 -m venv --without-pip "$venv"
site=$("$venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "import os; open('$T_TMP/marks/ran-as-%d' % os.getuid(), 'w')" >"$site/marker.pth"
mkdir -p "$venv/src/upkg"
echo 'V = 1' >"$venv/src/upkg/__init__.py"
chown -R "$user" "$venv"
printf '[stage]\nname = uv\n[python v]\nprefix = %s\n' "$venv" >"$T_TMP/uv.ini"
rc=0; run pack -m "$T_TMP/uv.ini" -o "$T_TMP/out/uv.bundle" -v || rc=$?
t_is "$rc" 0 "pack as root of a user's venv succeeds"
t_ok "... its .pth file never ran as root" test ! -e "$T_TMP/marks/ran-as-0"
t_ok "... it ran as the venv's owner" test -e "$T_TMP/marks/ran-as-$uid"
t_like "$(t_err)" "running '$venv/bin/python3' as uid $uid, not as root" "... and -v says so"
rm -f "$T_TMP/marks"/*
rc=0; run -m "$T_TMP/uv.ini" -o "$T_TMP/out/uv.sh" || rc=$?
t_is "$rc:$(test -e "$T_TMP/marks/ran-as-0" && echo ran-as-root)" 0: \
    "staging the user's venv as root runs its interpreter as its owner only"
rm -f "$T_TMP/marks"/*
printf '[stage]\nname = ut\npython = %s\n[tree a]\nsource = %s/src\n' \
    "$venv/bin/python3" "$venv" >"$T_TMP/ut.ini"
rc=0; run pack -m "$T_TMP/ut.ini" -o "$T_TMP/out/ut.bundle" || rc=$?
t_is "$rc:$(test -e "$T_TMP/marks/ran-as-0" && echo ran-as-root)" 0: \
    "pack as root compiles with a user's 'python =' as its owner only"
t_like "$(tar -tf "$T_TMP/out/ut.bundle" 2>/dev/null)" "upkg/__pycache__/__init__\.cpython-.*\.pyc" \
    "... and the bytecode it made is in the bundle"
chmod g+w "$site"
rc=0; run pack -m "$T_TMP/uv.ini" -o "$T_TMP/out/uv2.bundle" || rc=$?
t_is "$rc" 2 "an environment that its group can write too: refused (exit status 2)"
t_like "$(t_err)" "refusing to run '$venv/bin/python3' as root: '$site' \(owner $user \(uid $uid\), mode 2?0?775\) is writable by its group" \
    "... naming the directory, its owner and mode"
t_ok "... nothing ran" test ! -e "$T_TMP/marks/ran-as-0"
chmod g-w "$site"
# A .pth that leaves a process behind, holding the interpreter's stdout:
# root's pack must not wait for it.
cat >"$site/linger.pth" <<EOT
import os, time; os.fork() == 0 and (os.setsid(), open('$T_TMP/marks/linger.%d' % os.getpid(), 'w').close(), time.sleep(120), os._exit(0))
EOT
chown "$user" "$site/linger.pth"
rc=0; run pack -m "$T_TMP/uv.ini" -o "$T_TMP/out/uv3.bundle" || rc=$?
t_is "$rc" 0 "an interpreter whose .pth leaves a process holding its output: pack still ends"
for f in "$T_TMP"/marks/linger.*; do [ -e "$f" ] && kill "${f##*.}" 2>/dev/null; done
rm -f "$site/linger.pth" "$T_TMP"/marks/linger.*

# ---- 2. a tree swapped between the walk and the pack ------------------------
ut=$T_TMP/utree
mkdir -p "$ut/pkg/sub"
echo 'x = 1' >"$ut/pkg/__init__.py"
printf 'public-data' >"$ut/pkg/sub/data.txt"
mkdir -m 700 "$T_TMP/private"
printf 'ZQXJ-secret' >"$T_TMP/private/data.txt"     # the same size
chmod 644 "$T_TMP/private/data.txt"
chown -R "$user" "$ut"
manifest sw "$ut" "$T_TMP/sw.ini"
# swap_run TAG SWAP ARGS...: run ARGS paused after the walk, do SWAP, go on
swap_run() {
    local tag=$1 swap=$2 pid rc=0
    shift 2
    mkdir -p "$T_TMP/p-$tag"
    STAGE_PY_TEST_PAUSE=after-scan:$T_TMP/p-$tag run "$@" & pid=$!
    if paused "$T_TMP/p-$tag" after-scan; then eval "$swap"; fi
    touch "$T_TMP/p-$tag/after-scan.go"
    wait "$pid" || rc=$?
    echo "$rc"
}
to_link="mv '$ut/pkg/sub' '$ut/pkg/sub.old' && ln -s '$T_TMP/private' '$ut/pkg/sub'"
back="if [ -L '$ut/pkg/sub' ]; then rm '$ut/pkg/sub' && mv '$ut/pkg/sub.old' '$ut/pkg/sub'; fi"
t_is "$(swap_run stage "$to_link" -m "$T_TMP/sw.ini")" 1 \
    "a directory swapped for a link to a private one after the walk: staging fails"
t_like "$(t_err)" "'$ut/pkg/sub/data.txt' changed while it was being staged" "... saying what changed"
t_is "$(grep -rl ZQXJ-secret "$T_NODES" | wc -l):$(t_copies sw):$(t_leftovers)" 0:0:0 \
    "... nothing of the private file anywhere, no copy, nothing left behind"
eval "$back"
t_is "$(swap_run pack "$to_link" pack -m "$T_TMP/sw.ini" -o "$T_TMP/out/sw.bundle")" 1 \
    "the same swap under pack fails"
t_ok "... and writes no bundle" test ! -e "$T_TMP/out/sw.bundle"
eval "$back"
to_fifo="rm '$ut/pkg/__init__.py' && mkfifo '$ut/pkg/__init__.py'"
back_fifo="rm -f '$ut/pkg/__init__.py' && echo 'x = 1' >'$ut/pkg/__init__.py'"
t_is "$(swap_run fifo "$to_fifo" -m "$T_TMP/sw.ini" --timeout 60s)" 1 \
    "a file swapped for a FIFO after the walk: staging fails at once, no hang"
t_like "$(t_err)" "'$ut/pkg/__init__.py' changed while it was being staged" "... saying what changed"
t_is "$(t_leftovers)" 0 "... and the root leaves no temporary directory"
eval "$back_fifo"
t_is "$(swap_run fifo2 "$to_fifo" pack -m "$T_TMP/sw.ini" -o "$T_TMP/out/sw.bundle")" 1 \
    "the same FIFO under pack: fails, no hang"
eval "$back_fifo"
t_is "$(swap_run same true -m "$T_TMP/sw.ini")" 0 "nothing swapped: the same run succeeds"

# ---- 3. a link into a private directory --------------------------------------
lt=$T_TMP/ltree
mkdir -p "$lt/pkg"
echo 'x = 1' >"$lt/pkg/__init__.py"
ln -s "$T_TMP/private/data.txt" "$lt/pkg/leak.txt"
manifest lk "$lt" "$T_TMP/lk.ini"
rc=0; run -m "$T_TMP/lk.ini" || rc=$?
t_is "$rc" 0 "a tree with a link to a 0644 file in a 0700 directory stages"
t_is "$(grep -rl ZQXJ-secret "$T_NODES" | wc -l)" 0 "... without the file"
t_like "$(t_err)" "'$T_TMP/private/data.txt' lies below '$T_TMP/private' \(mode 0700\), which others cannot search" \
    "... and says why"
rc=0; run pack -m "$T_TMP/lk.ini" -o "$T_TMP/out/lk.bundle" || rc=$?
t_is "$rc:$(grep -c ZQXJ-secret "$T_TMP/out/lk.bundle")" 0:0 "... nor does pack put it in a bundle"
manifest hid "$T_TMP/private" "$T_TMP/hid.ini"
rc=0; run -m "$T_TMP/hid.ini" || rc=$?
t_is "$rc" 2 "a tree whose source others cannot read: refused as root"
t_like "$(t_err)" "hid.ini:4: source '$T_TMP/private': '$T_TMP/private' \(mode 0700\) cannot be read by others" \
    "... naming file:line and the directory"

# ---- 4. paths that other users can change -----------------------------------
src=$T_TMP/src
t_make_tree "$src" 3 1000
manifest ok "$src" "$T_TMP/ok.ini"
mkdir -p "$(t_node_shm 1)/open" "$(t_node_shm 1)/theirs"
chmod 777 "$(t_node_shm 1)/open"
chown "$user" "$(t_node_shm 1)/theirs"
rc=0; run -m "$T_TMP/ok.ini" --dest /dev/shm/open || rc=$?
t_is "$rc" 1 "a destination that others can write (no sticky bit): refused"
t_like "$(t_err)" "^stage-py: node1: refusing destination '/dev/shm/open': '/dev/shm/open' \(owner root \(uid 0\), mode 0777\) is writable by others" \
    "... naming the node, the directory, its owner and mode"
# as_user ARGS...: stage-py as the ordinary user on one fake node
as_user() { T_AS_USER=$user t_cluster 1 1 "$STAGE_PY" "$@" >"$T_TMP/stdout" 2>"$T_TMP/stderr"; }
rc=0; as_user -m "$T_TMP/ok.ini" --dest /dev/shm/open || rc=$?
t_like "$rc:$(t_err)" "^1:stage-py: node1: refusing destination '/dev/shm/open'" \
    "... for an ordinary user too (another user could swap its per-user directory)"
rc=0; run -m "$T_TMP/ok.ini" --dest /dev/shm/theirs || rc=$?
t_like "$rc:$(t_err)" "^1:stage-py: node1: refusing destination '/dev/shm/theirs': '/dev/shm/theirs' \(mode 0755\) is owned by $user \(uid $uid\)" \
    "a destination owned by another user: refused"
t_is "$(find "$(t_node_shm 1)/open" "$(t_node_shm 1)/theirs" -mindepth 1 | wc -l)" 0 \
    "... nothing made below either"
rc=0; run -m "$T_TMP/ok.ini" --dest /dev/shm/nosuch || rc=$?
t_like "$rc:$(t_err)" "^1:stage-py: node1: destination '/dev/shm/nosuch' does not exist" \
    "a destination that does not exist: refused, naming the node and the path"
t_ok "... and not made" test ! -e "$(t_node_shm 1)/nosuch"
rc=0; as_user -m "$T_TMP/ok.ini" --dest /dev/shm/nosuch || rc=$?
t_like "$rc:$(t_err)" "^1:stage-py: node1: destination '/dev/shm/nosuch' does not exist" \
    "... for an ordinary user too"

cp "$T_TMP/ok.ini" "$T_TMP/theirs.ini"
chown "$user" "$T_TMP/theirs.ini"
rc=0; run -m "$T_TMP/theirs.ini" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: refusing manifest '$T_TMP/theirs.ini': '$T_TMP/theirs.ini' \(mode 0644\) is owned by $user \(uid $uid\)" \
    "a manifest owned by another user: refused as root"
mkdir -m 777 "$T_TMP/ww"
cp "$T_TMP/ok.ini" "$T_TMP/ww/m.ini"
rc=0; run -m "$T_TMP/ww/m.ini" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: refusing manifest '$T_TMP/ww/m.ini': '$T_TMP/ww' \(owner root \(uid 0\), mode 0777\) is writable by others" \
    "a manifest in a directory others can write: refused (a rename replaces it)"
rc=0; as_user -m "$T_TMP/ww/m.ini" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: refusing manifest '$T_TMP/ww/m.ini'" "... for an ordinary user too"
mkdir -m 1777 "$T_TMP/sticky"
cp "$T_TMP/ok.ini" "$T_TMP/sticky/m.ini"
t_ok "... in a sticky directory (like /tmp), root's own manifest is fine" run -m "$T_TMP/sticky/m.ini"
if command -v setfacl >/dev/null && mkdir "$T_TMP/acl" && setfacl -m "u:$user:rwx" "$T_TMP/acl" 2>/dev/null; then
    cp "$T_TMP/ok.ini" "$T_TMP/acl/m.ini"
    rc=0; run -m "$T_TMP/acl/m.ini" || rc=$?
    t_like "$rc:$(t_err)" "^2:.*'$T_TMP/acl' \(owner root \(uid 0\), mode 0775\) is writable by user $uid through an ACL entry" \
        "a manifest in a directory that an ACL lets another user write: refused"
else
    t_skip 1 "no setfacl, or no ACLs on this file system"
fi
printf '[site]\nreuse = yes\n' >"$T_TMP/site.conf"
chown "$user" "$T_TMP/site.conf"
rc=0; STAGE_PY_CONF=$T_TMP/site.conf run -m "$T_TMP/ok.ini" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: refusing the site file '$T_TMP/site.conf': '$T_TMP/site.conf' \(mode 0644\) is owned by $user" \
    "a site file owned by another user: refused"
t_ok "a bundle packed by root" run pack -m "$T_TMP/ok.ini" -o "$T_TMP/out/ok.bundle"
cp "$T_TMP/out/ok.bundle" "$T_TMP/theirs.bundle"
chown "$user" "$T_TMP/theirs.bundle"
printf '[stage]\nname = ok\nbundle = %s\n[tree a]\nsource = %s\n' "$T_TMP/theirs.bundle" "$src" \
    >"$T_TMP/tb.ini"
rc=0; run -m "$T_TMP/tb.ini" || rc=$?
t_like "$rc:$(t_err)" "^1:stage-py: node1: bundle '$T_TMP/theirs.bundle': refusing it: '$T_TMP/theirs.bundle' \(mode 0644\) is owned by $user" \
    "... owned by another user: refused as root"

mkdir "$T_TMP/udir"
chown "$user" "$T_TMP/udir"
rc=0; run -m "$T_TMP/ok.ini" --output "$T_TMP/udir/env.sh" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: refusing to write '$T_TMP/udir/env.sh' as root: '$T_TMP/udir' \(mode 0755\) is owned by $user" \
    "root's --output into a directory another user owns: refused"
rc=0; run pack -m "$T_TMP/ok.ini" -o "$T_TMP/udir/b.bundle" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: refusing to write '$T_TMP/udir/b.bundle' as root" \
    "... pack -o too (a usage error, as for staging's --output)"
rc=0; run -m "$T_TMP/ok.ini" --stats "$T_TMP/udir/s.json" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --stats: refusing to write '$T_TMP/udir/s.json' as root" "... --stats too"
rc=0; run scan --python /usr/bin/python3 --import json -o "$T_TMP/udir/s.ini" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: refusing to write '$T_TMP/udir/s.ini' as root" \
    "... scan -o too"
t_is "$(find "$T_TMP/udir" -mindepth 1 | wc -l)" 0 "... nothing written there"
echo precious >"$T_TMP/victim.txt"
ln -s "$T_TMP/victim.txt" "$T_TMP/udir/planted"
chown -h "$user" "$T_TMP/udir/planted"
rc=0; run scan --python /usr/bin/python3 --import json -o "$T_TMP/udir/planted" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: refusing to write '$T_TMP/udir/planted' as root" \
    "root's output through a link that another user planted (to a file of root's): refused"
t_is "$(cat "$T_TMP/victim.txt")" precious "... the link's target is untouched"
rm "$T_TMP/udir/planted"
rc=0; as_user -m "$T_TMP/ok.ini" --output "$T_TMP/udir/env.sh" || rc=$?
t_is "$rc" 0 "... while its owner writes there"

# ---- 6. FIFOs and directories where a file belongs ---------------------------
mkfifo "$T_TMP/fifo.ini"
rc=0; run -m "$T_TMP/fifo.ini" --timeout 3s || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: manifest '$T_TMP/fifo.ini' is not a regular file \(a FIFO\)" \
    "a manifest that is a FIFO: refused at once"
rc=0; STAGE_PY_CONF=$T_TMP/marks run -m "$T_TMP/ok.ini" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: the site file '$T_TMP/marks' is not a regular file \(a directory\)" \
    "STAGE_PY_CONF naming a directory: an error, not silently no site file"

# ---- 7. the cache budget, with runs at once ----------------------------------
for t in ba bb; do
    t_make_tree "$T_TMP/$t" 2 600000
    manifest "$t" "$T_TMP/$t" "$T_TMP/$t.ini"
done
mkdir "$T_TMP/p-budget"
STAGE_PY_TEST_PAUSE=reserved:$T_TMP/p-budget \
    t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/ba.ini" --max-cache 1M >/dev/null 2>"$T_TMP/ba.err" &
pid=$!
if paused "$T_TMP/p-budget" reserved; then
    rc=0; run -m "$T_TMP/bb.ini" --max-cache 1M || rc=$?
else
    rc=timeout
fi
touch "$T_TMP/p-budget/reserved.go"
rca=0; wait "$pid" || rca=$?
t_is "$rca:$rc" 0:1 "a run whose budget another run's copy in the making already fills: refused"
t_like "$(t_err)" "cannot take 'bb-[0-9a-f]+' .*ba-[0-9a-f]+-[0-9]+-[0-9]+ \([0-9.]+ KiB, being made by another run\)" \
    "... naming the copy being made"
used=$(du -sk --apparent-size "$(t_node_shm 1)/stage-py-0" | cut -f1)
t_ok "... and the cache stays within the budget (${used} KiB)" test "$used" -le 1024
rm -rf "$(t_node_shm 1)/stage-py-0"

# ---- 8. set-user-ID bits, names with newlines --------------------------------
st=$T_TMP/stree
mkdir -p "$st/bin"
cp /bin/true "$st/bin/tool"
chmod 4755 "$st/bin/tool"
touch "$st/bin/$(printf 'x\nstage-py: all done')"
chmod 600 "$st/bin/$(printf 'x\nstage-py: all done')"
manifest su "$st" "$T_TMP/su.ini"
rc=0; run -m "$T_TMP/su.ini" || rc=$?
t_is "$rc:$(stat -c %a "$(find "$T_NODES" -path "*su-*/bin/tool")")" 0:755 \
    "a set-user-ID file staged by root: the copy has no set-user-ID bit"
t_is "$(grep -c '^stage-py: all done' "$T_TMP/stderr")" 0 "a newline in a name fakes no log line"
t_like "$(t_err)" "x\\\\nstage-py: all done' is not readable by others" "... it shows as \\n"
rc=0; run pack -m "$T_TMP/su.ini" -o "$T_TMP/out/su.bundle" || rc=$?
printf '[stage]\nname = su\nbundle = %s\n[tree a]\nsource = %s\n' "$T_TMP/out/su.bundle" "$st" \
    >"$T_TMP/sub.ini"
rm -rf "$T_NODES"
rc=0; run -m "$T_TMP/sub.ini" || rc=$?
t_is "$rc:$(stat -c %a "$(find "$T_NODES" -path "*su-*/bin/tool")")" 0:755 \
    "... nor from a bundle"
t_done
