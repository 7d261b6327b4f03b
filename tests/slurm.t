#!/bin/bash
# SPDX-License-Identifier: MIT
# A real Slurm on this host (slurmctld, slurmd, munge; configured here, in a
# temporary directory, and stopped at the end): the documented batch script,
# submitted with sbatch, stages with srun and its application step imports
# from the staged copy; a staging step that fails stops the script; the
# installed epilog, as slurm.conf's Epilog, drops the pins of a job that
# ends normally, is cancelled or runs out of time, and leaves the copies.
. "${srcdir:-.}/tests/lib.sh"
t_need slurmctld slurmd sbatch srun sinfo munged runuser
[ -x /usr/bin/python3 ] || t_skip_all "no /usr/bin/python3"
[ "$(id -u)" = 0 ] || t_skip_all "starting slurmctld, slurmd and munged needs root"
[ -r /etc/munge/munge.key ] || t_skip_all "no /etc/munge/munge.key (package munge)"

host=$(hostname)
S=$T_TMP/slurm
mkdir -p "$S/state" "$S/spool" "$T_TMP/munge"
chown munge: "$T_TMP/munge"
chmod 711 "$T_TMP"
export SLURM_CONF=$S/slurm.conf
# The installed epilog: make install into a prefix of this test's own
# (under DESTDIR), whose site file, where the epilog looks, names the
# test's destination
inst=$T_TMP/inst
epilog=$T_TMP/root$inst/libexec/stage-py/slurm-epilog.sh
installed=0
make -C "$T_BUILDDIR" install DESTDIR="$T_TMP/root" prefix="$inst" exec_prefix="$inst" \
    sysconfdir="$inst/etc" libexecdir="$inst/libexec" >"$T_TMP/install.log" 2>&1 && installed=1
mkdir -p "$inst/etc"
printf '[site]\ndest = %s   ; the test destination\n' "$T_TMP/shm" >"$inst/etc/stage-py.conf"
# ports of our own, derived from the pid: another Slurm may run here
port=$((16000 + $$ % 2000 * 2))
cat >"$SLURM_CONF" <<EOT
ClusterName=stagepytest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T_TMP/munge/munge.socket
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
$([ "$installed" = 1 ] && echo "Epilog=$epilog")
KillWait=2
NodeName=$host CPUs=2 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
EOT
printf 'CgroupPlugin=cgroup/v1\nIgnoreSystemd=yes\n' >"$S/cgroup.conf"

t_cleanup() {
    local f
    for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$T_TMP/munge/munged.pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 1
}
runuser -u munge -- munged --socket="$T_TMP/munge/munge.socket" \
    --pid-file="$T_TMP/munge/munged.pid" --log-file="$T_TMP/munge/munged.log" \
    --seed-file="$T_TMP/munge/munged.seed" >/dev/null 2>&1 ||
    t_skip_all "munged does not start here"
slurmctld >"$S/ctld.out" 2>&1 || t_skip_all "slurmctld does not start: $(tail -1 "$S/slurmctld.log" 2>/dev/null)"
slurmd >"$S/d.out" 2>&1 || t_skip_all "slurmd does not start: $(tail -1 "$S/slurmd.log" 2>/dev/null)"
for _ in $(seq 100); do
    sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break
    sleep 0.2
done
sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' ||
    t_skip_all "the Slurm node does not come up: $(tail -2 "$S/slurmd.log" 2>/dev/null | tr '\n' ' ')"
t_diag "MPI plugins: $(srun --mpi=list 2>&1 | tr -s '\n ' ' ')"

# What the job stages, into a destination of this test's own
src=$T_TMP/src
t_make_tree "$src" 5
echo 'WHERE = __file__' >"$src/pkg/__init__.py"
mkdir -p "$T_TMP/shm"
printf '[stage]\nname = sl\ndest = %s\n[tree a]\nsource = %s\n' "$T_TMP/shm" "$src" >"$T_TMP/m.ini"
printf '[stage]\nname = sl\n[tree a]\nsource = %s/nowhere\n' "$T_TMP" >"$T_TMP/bad.ini"

# The MPI plugin that starts the ranks of one MPI_COMM_WORLD: pmix for
# Debian's Open MPI, pmi2 for its MPICH.
case ${T_MPI:-openmpi} in
    mpich) mpi=pmi2 ;;
    *) mpi=pmix ;;
esac

# The batch script of README.md and stage-py(1), with this test's manifest
job() {
    cat >"$T_TMP/job.sh" <<EOT
#!/bin/bash
set -e
cd "$T_TMP"
srun --mpi=$mpi --ntasks-per-node=1 "$STAGE_PY" --manifest "$1" --output env.sh --stats st.json
. ./env.sh
srun /usr/bin/python3 -c 'import os, pkg; open("$T_TMP/app.%d" % os.getpid(), "w").write(pkg.WHERE + "\\n")'
srun --mpi=$mpi --ntasks-per-node=1 "$STAGE_PY" clean --dest "$T_TMP/shm"
EOT
    rm -f "$T_TMP"/app.* "$T_TMP/env.sh"
    sbatch --wait -N 1 -n 2 -o "$T_TMP/$(basename "$1").out" "$T_TMP/job.sh" >/dev/null
}

t_ok "sbatch of the documented batch script" job "$T_TMP/m.ini"
t_is "$(t_json "$T_TMP/st.json" ranks)" 2 "... srun --mpi=$mpi starts both tasks as one MPI job"
t_is "$(cat "$T_TMP"/app.* 2>/dev/null | grep -c "^$T_TMP/shm/stage-py-0/sl-[0-9a-f]\{16\}$src/pkg/__init__.py$")" 2 \
    "... both tasks of the application step import from the staged copy"
t_ok "... the job's pins are gone at its end (clean)" test -z "$(ls -A "$T_TMP/shm/stage-py-0/.pins" 2>/dev/null)"
t_ok "... the copy stays for the next job" test -d "$(ls -d "$T_TMP/shm/stage-py-0"/sl-* | head -1)"
# A launcher that does not make one MPI job: srun --mpi=none (Slurm's
# MpiDefault=none).  Every task exits 2 before MPI_Init, one says why, and
# no task opens anything below the trees.
t_need strace
mkdir "$T_TMP/trace"
rc=0; srun --mpi=none -N 1 -n 2 strace -f -qq -e trace=%file -o "$T_TMP/trace/none" \
    "$STAGE_PY" --manifest "$T_TMP/m.ini" >"$T_TMP/none.out" 2>"$T_TMP/none.err" || rc=$?
t_is "$rc" 2 "srun --mpi=none -n 2: every task exits with status 2"
t_is "$(grep -c "stage-py: srun started 2 tasks (SLURM_STEP_NUM_TASKS) with no MPI plugin" "$T_TMP/none.err")" 1 \
    "... one message says why"
t_like "$(cat "$T_TMP/none.err")" "launch with srun --mpi=$mpi " "... and names the plugin that fits"
t_is "$(cat "$T_TMP/none.out")" false "... stdout makes an eval fail"
t_is "$(cat "$T_TMP"/trace/none* | grep -c "$src")" 0 "... and no task opened anything below the trees"
# mpirun or mpiexec inside an allocation: its ranks inherit a Slurm step
# of the launcher's own; it must still stage.
case ${T_MPI:-openmpi} in
    mpich) launcher=mpiexec.mpich ;;
    *) launcher="mpiexec.openmpi --oversubscribe" ;;
esac
cat >"$T_TMP/mpirun.sh" <<EOT
#!/bin/bash
set -e
cd "$T_TMP"
$launcher -n 2 "$STAGE_PY" --manifest "$T_TMP/m.ini" --output env2.sh --stats st2.json
EOT
t_ok "$launcher -n 2 inside sbatch stages" \
    sbatch --wait -N 1 -n 2 -o "$T_TMP/mpirun.out" "$T_TMP/mpirun.sh"
t_is "$(t_json "$T_TMP/st2.json" ranks 2>/dev/null)" 2 "... as one MPI job of 2 ranks"

# The epilog.  Jobs that stage and keep their pin (no clean), then end:
# normally, by scancel, by their time limit (1 minute: Slurm's least).  The
# epilog is a shell script, the same whatever MPI built stage-py: it is
# tested once, with the Open MPI build.
if [ "${T_MPI:-openmpi}" = mpich ]; then
    t_skip 16 "the epilog: tested with the Open MPI build"
elif [ "$installed" != 1 ]; then
    t_ok "make install into a prefix of the test's own" false
    t_diag "$(tail -5 "$T_TMP/install.log")"
    t_skip 15 "the epilog: make install failed"
else
    t_ok "make install puts the epilog where Epilog= names it, executable" test -x "$epilog"
    t_like "$(cat "$epilog")" "^site_conf='$inst/etc/stage-py.conf'$" "... told where the site file is"
    pins=$T_TMP/shm/stage-py-0/.pins
    cat >"$T_TMP/pin.sh" <<EOT
#!/bin/bash
set -e
srun --mpi=$mpi --ntasks-per-node=1 "$STAGE_PY" --manifest "$T_TMP/m.ini" --output "$T_TMP/pin.\$SLURM_JOB_ID.sh"
if [ -d "$pins/\$SLURM_JOB_ID" ]; then touch "$T_TMP/pinned.\$SLURM_JOB_ID"; fi
sleep "\$1"
EOT
    # ended JOB: wait (at most 4 minutes) until Slurm no longer knows JOB as
    # running and its pin is gone
    ended() {
        for _ in $(seq 1200); do
            squeue -h -j "$1" -t all -o %T 2>/dev/null | grep -qE '^(PENDING|CONFIGURING|RUNNING|COMPLETING)$' ||
                { [ ! -e "$pins/$1" ] && return 0; }
            sleep 0.2
        done
        return 1
    }
    # staged JOB: wait (at most 2 minutes) until JOB has staged
    staged() {
        for _ in $(seq 600); do [ -s "$T_TMP/pin.$1.sh" ] && return 0; sleep 0.2; done
        return 1
    }
    over=$(sbatch --parsable --time=1 -N 1 -n 1 -o "$T_TMP/over.out" "$T_TMP/pin.sh" 600)
    cancelled=$(sbatch --parsable -N 1 -n 1 -o "$T_TMP/cancelled.out" "$T_TMP/pin.sh" 600)
    normal=$(sbatch --parsable --wait -N 1 -n 1 -o "$T_TMP/normal.out" "$T_TMP/pin.sh" 0)
    t_ok "a job that stages and ends normally" test -s "$T_TMP/pin.$normal.sh"
    t_ok "... held its pin while it ran" test -e "$T_TMP/pinned.$normal"
    t_ok "... its pin is gone after the epilog" ended "$normal"
    t_ok "a job that stages, then is cancelled" staged "$cancelled"
    t_ok "... holds its pin while it runs" test -d "$pins/$cancelled"
    scancel "$cancelled"
    t_ok "... its pin is gone after scancel and the epilog" ended "$cancelled"
    t_ok "a job that stages, then runs out of time" staged "$over"
    t_ok "... holds its pin while it runs" test -d "$pins/$over"
    t_ok "... its pin is gone after its time limit and the epilog" ended "$over"
    t_like "$(cat "$T_TMP/over.out")" "DUE TO TIME LIMIT" "... (Slurm killed it for its time limit)"
    t_ok "no job's pin is left" test -d "$pins" -a -z "$(ls -A "$pins")"
    t_is "$(ls -d "$T_TMP/shm/stage-py-0"/sl-* | wc -l)" 1 "... and the copy stays for the next job"
    t_ok "the next job stages" job "$T_TMP/m.ini"
    t_is "$(t_json "$T_TMP/st.json" cold_nodes)" 0 "... from the copy on the node: nothing sent"
fi

t_fails "the same script, staging a manifest whose source is missing" job "$T_TMP/bad.ini"
t_is "$(ls "$T_TMP"/app.* 2>/dev/null | wc -l)" 0 "... stops before the application step"
t_like "$(cat "$T_TMP/bad.ini.out")" "source '$T_TMP/nowhere'" "... and the job's output says why"
t_done
