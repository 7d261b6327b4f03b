#!/bin/bash
# SPDX-License-Identifier: MIT
# Cache housekeeping that says what it did: a copy that cannot be removed
# is a failure, not "kept"; clean --manifest drops only that manifest's
# pins; root's clean --all-users cleans every user's copies, entering each
# directory as its user; the site's node-wide cap is never exceeded.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need_user

for t in a b; do
    t_make_tree "$T_TMP/$t" 3 2000
    printf '[stage]\nname = %s\n[tree a]\nsource = %s\n' "$t" "$T_TMP/$t" >"$T_TMP/$t.ini"
done
run() { t_run 1 1 "$@"; }
as_user() { T_AS_USER=$user run "$@"; }
shm=$(t_node_shm 1)

# ---- a removal that fails is a failure -----------------------------------
SLURM_JOB_ID=31 as_user -m "$T_TMP/a.ini"
chmod 500 "$shm/stage-py-$uid"
rc=0; SLURM_JOB_ID=31 as_user clean --all || rc=$?
chmod 700 "$shm/stage-py-$uid"
t_is "$rc" 1 "a copy that cannot be removed: clean fails (exit status 1)"
t_like "$(t_err)" "^stage-py: node1: cannot remove '/dev/shm/stage-py-$uid/a-[0-9a-f]{16}': Permission denied" \
    "... saying why"
t_is "$(grep -c 'kept' "$T_TMP/stdout")" 0 "... and does not call it kept"
t_is "$(find "$shm/stage-py-$uid" -maxdepth 1 -name 'a-*' | wc -l)" 1 "... the copy is still whole"

# ---- clean --manifest drops only that manifest's pins --------------------
SLURM_JOB_ID=41 run -m "$T_TMP/a.ini"
SLURM_JOB_ID=41 run -m "$T_TMP/b.ini"
rc=0; SLURM_JOB_ID=41 run clean -m "$T_TMP/a.ini" || rc=$?
t_is "$rc" 0 "clean --manifest a.ini within the job that staged a and b"
t_is "$(ls "$shm/stage-py-0/.pins/41" | sed 's/-.*//' | tr '\n' ' ')" "b " \
    "... drops a's pin only: b stays pinned for the job"
t_is "$(find "$shm/stage-py-0" -maxdepth 1 -name 'a-*' | wc -l):$(find "$shm/stage-py-0" -maxdepth 1 -name 'b-*' | wc -l)" \
    0:1 "... removes a, keeps b (which another job's budget cannot evict)"

# ---- clean --all-users ----------------------------------------------------
SLURM_JOB_ID=51 run -m "$T_TMP/a.ini"
SLURM_JOB_ID=51 as_user -m "$T_TMP/b.ini"
mkdir -p "$T_TMP/victim/52"
echo keep >"$T_TMP/victim/52/file"
ln -s "$T_TMP/victim" "$shm/stage-py-$uid/.pins-planted"
rm -rf "$shm/stage-py-$uid/.pins/52"
ln -s "$T_TMP/victim/52" "$shm/stage-py-$uid/.pins/52"
chown -h "$user" "$shm/stage-py-$uid/.pins/52" "$shm/stage-py-$uid/.pins-planted"
rc=0; as_user clean --all-users --all || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: clean --all-users: only root may clean other users' copies" \
    "clean --all-users as an ordinary user: refused"
rc=0; run clean --all-users --job 51 --all || rc=$?
t_is "$rc" 0 "root's clean --all-users --job 51 --all"
t_like "$(t_out)" "^node1: removed stage-py-$uid/b-[0-9a-f]{16} " "... removes the user's copy"
t_like "$(t_out)" "^node1: removed stage-py-0/a-[0-9a-f]{16} " "... and root's"
t_like "$(t_out)" "^node1: dropped 1 pin of job stage-py-$uid/51$" "... after dropping the job's pins"
t_is "$(cd "$shm" && find . -mindepth 2 -maxdepth 2 -name '[ab]-*' | sed 's/-[0-9a-f]*$//')" \
    "./stage-py-0/b" "... leaving only the copy that job 41 still pins"
t_ok "... and follows no link a user planted" test -f "$T_TMP/victim/52/file"
rc=0; run clean --all-users --job 52 || rc=$?
t_ok "... not even one named as the job's pins" test -f "$T_TMP/victim/52/file"

# ---- one user's directory that is refused spares nobody else -----------
SLURM_JOB_ID=61 run -m "$T_TMP/a.ini"
SLURM_JOB_ID=61 as_user -m "$T_TMP/a.ini"
chmod 777 "$shm/stage-py-$uid"
rc=0; run clean --all-users --job 61 --all || rc=$?
chmod 700 "$shm/stage-py-$uid"
t_like "$rc:$(t_err)" "^1:stage-py: node1: refusing '/dev/shm/stage-py-$uid': writable by group or others" \
    "clean --all-users with a user's directory that is refused: fails, naming it"
t_is "$(find "$shm/stage-py-0" -maxdepth 1 -name 'a-*' | wc -l)" 0 "... and still cleans root's"

# ---- the node-wide cap -------------------------------------------------------
t_make_tree "$T_TMP/big" 2 2000000
printf '[stage]\nname = big\n[tree a]\nsource = %s\n' "$T_TMP/big" >"$T_TMP/big.ini"
printf '[site]\nmax_node_cache = 1M\n' >"$T_TMP/site.conf"
rc=0; T_SHM_SIZE_node1=16m STAGE_PY_CONF=$T_TMP/site.conf run -m "$T_TMP/big.ini" --headroom 0 || rc=$?
t_like "$rc:$(t_err)" "^1:stage-py: node1: the node-wide cap of 1.0 MiB \(the site's max_node_cache \($T_TMP/site.conf:2\)\) cannot take 'big-[0-9a-f]{16}'" \
    "a copy beyond the site's node-wide cap: refused, naming the cap"
printf '[site]\nmax_node_cache = 12M\n' >"$T_TMP/site.conf"
rc=0; T_SHM_SIZE_node1=16m STAGE_PY_CONF=$T_TMP/site.conf run -m "$T_TMP/big.ini" --headroom 0 || rc=$?
t_is "$rc" 0 "... and staged within it"
t_done
