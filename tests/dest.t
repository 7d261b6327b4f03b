#!/bin/bash
# SPDX-License-Identifier: MIT
# A destination that is not node-local: a typo onto a network, parallel or
# FUSE file system would stage onto the very file system the job must
# spare, once per node.  FUSE is what this machine can mount (bindfs): it
# stands for them all (the table of types is tests/unit/t-space.c).
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need bindfs fusermount
[ -e /dev/fuse ] || t_skip_all "no /dev/fuse"
mkdir "$T_TMP/under" "$T_TMP/fusedest"
bindfs "$T_TMP/under" "$T_TMP/fusedest" 2>/dev/null || t_skip_all "cannot mount bindfs here"
t_cleanup() { fusermount -u "$T_TMP/fusedest" 2>/dev/null || umount -l "$T_TMP/fusedest"; }

src=$T_TMP/src
t_make_tree "$src" 3 1000
printf '[stage]\nname = d\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"
# one node: a shared file system would be shared by the fake nodes too
run() { t_run 1 1 -m "$T_TMP/m.ini" "$@"; }

t_is "$(stat -f -c %T "$T_TMP/fusedest")" fuseblk "the test's destination is a FUSE mount" ||
    t_is "$(stat -f -c %t "$T_TMP/fusedest")" 65735546 "... (by its magic number)"
rc=0; run --dest "$T_TMP/fusedest" || rc=$?
t_like "$rc:$(t_err)" "^1:stage-py: node1: refusing destination '$T_TMP/fusedest': it is on fuse, a network, parallel or FUSE file system" \
    "a destination on a FUSE file system: refused, naming the node, the path and the type"
t_is "$(find "$T_TMP/under" -mindepth 1 | wc -l)" 0 "... nothing made there"
printf '[site]\nallow_fs = fuse\n' >"$T_TMP/site.conf"
rc=0; STAGE_PY_CONF=$T_TMP/site.conf run --dest "$T_TMP/fusedest" -o "$T_TMP/env.sh" || rc=$?
t_is "$rc" 0 "the site's allow_fs = fuse allows it"
t_is "$(find "$T_TMP/under" -mindepth 2 -maxdepth 2 -name 'd-*' | wc -l)" 1 \
    "... and the copy is there (published without RENAME_NOREPLACE, which FUSE lacks)"
rc=0; STAGE_PY_CONF=$T_TMP/site.conf run --dest "$T_TMP/fusedest" --force || rc=$?
t_is "$rc:$(find "$T_TMP/under" -mindepth 2 -maxdepth 2 -name 'd-*' | wc -l)" 0:1 \
    "... --force replaces the copy there too (without RENAME_EXCHANGE)"
printf '[site]\nallow_fs = fsue\n' >"$T_TMP/site.conf"
rc=0; STAGE_PY_CONF=$T_TMP/site.conf run --dest "$T_TMP/fusedest" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: $T_TMP/site.conf:2: allow_fs: 'fsue' is not a shared file-system type" \
    "a typo in allow_fs: an error naming file:line"
t_ok "/dev/shm (tmpfs or a local directory here) stays fine" run
t_done
