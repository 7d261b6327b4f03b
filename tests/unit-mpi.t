#!/bin/bash
# SPDX-License-Identifier: MIT
# The MPI unit tests (tests/unit/t-node, t-agree, t-bcast, t-stream,
# t-watchdog) on the fake cluster.  Each program runs as one MPI job; world
# rank 0 prints its TAP, whose test points are passed through here, each
# named after the program and the cluster's shape, then one more point for
# the job itself: its plan complete and its exit status 0.  The watchdog's
# time limit and signals end the job: those runs are checked here by their
# exit status, stderr and the files that their cleanups leave.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
unit=${T_BUILDDIR:-.}/tests/unit

# unit NODES PPN PROGRAM [ARGS...]: run PROGRAM on NODES fake nodes of PPN
# ranks each and pass its test points through.
unit() {
    local nodes=$1 ppn=$2 prog=$3
    shift 3
    local name="$prog ${nodes}x$ppn${*:+ $*}" out=$T_TMP/$prog.out err=$T_TMP/$prog.err
    local rc=0 n=0 plan='' line desc bad=0
    if [ ! -x "$unit/$prog" ]; then
        t_skip 1 "$unit/$prog not built (make check builds it)"
        return
    fi
    t_cluster "$nodes" "$ppn" "$unit/$prog" "$@" >"$out" 2>"$err" || rc=$?
    while IFS= read -r line; do
        case $line in
            "ok "*" # SKIP"*)
                t_skip 1 "$name: ${line#* # SKIP }"
                n=$((n + 1)) ;;
            "ok "*|"not ok "*)
                desc=${line#* - }
                [ "$desc" != "$line" ] || desc=${line#ok }
                case $line in
                    ok*) t_is ok ok "$name: $desc" ;;
                    *) t_is "not ok" ok "$name: $desc"; bad=1 ;;
                esac
                n=$((n + 1)) ;;
            "1..0 # SKIP"*)
                t_skip 1 "$name: ${line#1..0 # SKIP }"
                plan=0 ;;
            "1.."*) plan=${line#1..} ;;
            "#"*) echo "$line" ;;
            *) t_diag "$name: $line" ;;
        esac
    done <"$out"
    t_is "status $rc, plan ${plan:-none}" "status 0, plan $n" \
        "$name: the job ends with status 0 after its $n test points"
    if [ "$rc" != 0 ] || [ "$plan" != "$n" ]; then bad=1; fi
    if [ "$bad" = 1 ] && [ -s "$err" ]; then
        t_diag "$name: stderr (its last 200 lines):"
        t_diag "$(tail -n 200 "$err")"
    fi
}

# --- node: topology and names ---------------------------------------------
unit 3 2 t-node 3 2
unit 2 3 t-node 2 3
unit 4 1 t-node 4 1

# --- agree: the end of a phase, gather, the shared directory check -------
unit 3 2 t-agree

# --- bcast: the chunk tree over 2, 3 and 5 leaders ------------------------
unit 2 2 t-bcast
unit 3 2 t-bcast
unit 5 2 t-bcast

# --- stream: pack, broadcast, unpack; every copy is the tree ---------------
unit 3 2 t-stream

# --- watchdog: set up, time limits, phases, waits, cleanups --------------
unit 3 2 t-watchdog

# --- watchdog: a node that never arrives, a signal -------------------------
# t-watchdog MODE DIR ends the job; each job is bounded (a watchdog that never
# fires fails here rather than hangs), and DIR gets cleanup-RANK from every
# cleanup that ran (only the root's is certain: it runs before MPI_Abort).
marks=$T_TMP/marks
mkdir -p "$marks"
wd() {
    rm -f "$marks"/*
    rc=0
    T_TIMEOUT=60 t_cluster 3 2 "$unit/t-watchdog" "$1" "$marks" \
        >"$T_TMP/wd.out" 2>"$T_TMP/wd.err" || rc=$?
    err=$(cat "$T_TMP/wd.err")
}

wd timeout-leader
t_is "$rc" 3 "watchdog, 1 s limit, node3's leader never reaches the agreement: the job ends with status 3 (STG_ETIMEOUT)"
t_like "$err" "^stage-py: timeout: 1 s passed in phase 'slow-phase'; not finished: node3$" \
    "... and the root names the phase and the late node"
t_ok "... after its cleanup ran on the root" test -e "$marks/cleanup-0"

wd timeout-rank
t_is "$rc" 3 "watchdog, 1 s limit, a rank that is no leader never arrives: status 3 too"
# Only leaders send the root a note, so the late node cannot be named here.
t_like "$err" "^stage-py: timeout: 1 s passed in phase 'slow-phase'; not finished: " \
    "... and the root names the phase"

wd signal
t_ok "watchdog: SIGTERM on the root while it waits: the job fails (status $rc)" \
    test "$rc" != 0 -a "$rc" != 124 -a "$rc" != 137
t_like "$err" "^stage-py: node1: stopped by signal 15 \(Terminated\)$" "... the root says so"
t_is "$(grep -c "stopped by signal" "$T_TMP/wd.err")" 1 "... once"
t_ok "... after its cleanup ran" test -e "$marks/cleanup-0"

t_done
