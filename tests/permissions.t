#!/bin/bash
# SPDX-License-Identifier: MIT
# Permissions, as an ordinary user (root passes every permission check):
# the fake cluster runs stage-py as $T_USER (default stagepy-test, which
# .ci/run creates).  Unreadable input is an error naming it, never a hole in
# the copy; a per-user directory that is not the user's is refused.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need_user

chmod 755 "$T_TMP"
src=$T_TMP/src
mkdir -p "$src/pkg/sub"
echo 'x = 1' >"$src/pkg/__init__.py"
echo 'y = 2' >"$src/pkg/sub/mod.py"
chmod -R a+rX "$src"
mkdir "$T_TMP/out"            # where the user may write its settings
chown "$user" "$T_TMP/out"
manifest() {
    printf '[stage]\nname = p\n[tree a]\nsource = %s\n' "$1" >"$T_TMP/m.ini"
    chmod 644 "$T_TMP/m.ini"
}
stage() { T_AS_USER=$user t_run 2 1 -m "$T_TMP/m.ini" "$@"; }
copies() { find "$T_NODES" -maxdepth 4 -name 'p-*' | wc -l; }

manifest "$src"
rc=0; stage --output "$T_TMP/out/env.sh" || rc=$?
t_is "$rc" 0 "an ordinary user stages a readable tree"
t_ok "... and gets the settings" test -s "$T_TMP/out/env.sh"
t_is "$(stat -c %U:%a "$(t_node_shm 2)/stage-py-$uid")" "$user:700" \
    "... into a per-user directory of mode 0700"
t_is "$(stat -c %U "$(ls -d "$(t_node_shm 2)/stage-py-$uid"/p-*)$src/pkg/__init__.py")" "$user" \
    "... and the copy is the user's"

rm -rf "$T_NODES"
echo 'secret = 1' >"$src/pkg/secret.py"
chmod 600 "$src/pkg/secret.py"
rc=0; stage --output "$T_TMP/out/env2.sh" || rc=$?
t_is "$rc" 1 "a file the user cannot read: exit status 1"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node1: cannot open '$src/pkg/secret.py': Permission denied$" \
    "... naming it"
t_is "$(copies):$(t_leftovers)" 0:0 "... no copy, nothing left behind"
t_ok "... no settings" test ! -e "$T_TMP/out/env2.sh"
rm -f "$src/pkg/secret.py"

rm -rf "$T_NODES"
chmod 700 "$src/pkg/sub"
rc=0; stage || rc=$?
t_is "$rc" 1 "a directory the user cannot read: exit status 1"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node1: cannot read directory '$src/pkg/sub': Permission denied$" \
    "... naming it"
chmod 755 "$src/pkg/sub"

chmod 700 "$src"
rc=0; stage || rc=$?
t_is "$rc" 2 "a source the user cannot read: exit status 2"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: $T_TMP/m.ini:4: source '$src' is not readable: Permission denied$" \
    "... naming file:line and the path"
chmod 755 "$src"

rm -rf "$T_NODES"
mkdir -p "$(t_node_shm 2)/stage-py-$uid"
chmod 700 "$(t_node_shm 2)/stage-py-$uid"
rc=0; stage || rc=$?
t_is "$rc" 1 "another user's directory in place of the per-user directory is refused"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node2: (refusing '/dev/shm/stage-py-$uid': owned by uid 0, not by uid $uid|cannot open '/dev/shm/stage-py-$uid': Permission denied)$" \
    "... naming the node and the path"

rm -rf "$T_NODES"
mkdir -p "$(t_node_shm 1)/rootonly"
chmod 755 "$(t_node_shm 1)/rootonly"
rc=0; stage --dest /dev/shm/rootonly || rc=$?
t_is "$rc" 1 "a destination the user cannot write: exit status 1"
t_like "$(cat "$T_TMP/stderr")" "^stage-py: node1: cannot create '/dev/shm/rootonly/stage-py-$uid': Permission denied$" \
    "... naming the node and the path"
t_is "$(t_leftovers)" 0 "... and node2 keeps nothing half-made"

# A site's bundle in a directory that only root writes: a user's pack of
# the same trees finds it up to date and writes nothing beside it
mkdir "$T_TMP/apps"
chmod 755 "$T_TMP/apps"
rm -f "$src/pkg/secret.py"
manifest "$src"
"$STAGE_PY" pack -q -m "$T_TMP/m.ini" -o "$T_TMP/apps/p.bundle" >/dev/null
rc=0; T_AS_USER=$user t_run 1 1 pack -m "$T_TMP/m.ini" -o "$T_TMP/apps/p.bundle" || rc=$?
t_like "$rc:$(t_out)" "^0:$T_TMP/apps/p.bundle: up to date, left as it was" \
    "pack by a user, of a bundle up to date in a directory it cannot write: exit 0"
echo 'z = 3' >"$src/pkg/new.py"
chmod 644 "$src/pkg/new.py"
rc=0; T_AS_USER=$user t_run 1 1 pack -m "$T_TMP/m.ini" -o "$T_TMP/apps/p.bundle" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: cannot create .*'$T_TMP/apps/p.bundle'.*Permission denied" \
    "... once the trees changed: refused, naming the bundle and why"
t_is "$(ls -A "$T_TMP/apps")" "p.bundle" "... and nothing left beside it"
t_done
