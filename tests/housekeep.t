#!/bin/bash
# SPDX-License-Identifier: MIT
# Pins, list, clean, the Slurm epilog and the cache budget: a copy that a
# job pins is never removed, list and clean report every node, and the
# budget evicts the least recently used unpinned copies first.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 setpriv

uid=$(id -u)
mk() {  # mk NAME: a tree and manifest NAME.ini staging it as copy NAME
    t_make_tree "$T_TMP/$1"
    printf '[stage]\nname = %s\n[tree a]\nsource = %s\n' "$1" "$T_TMP/$1" >"$T_TMP/$1.ini"
}
mk alpha
mk beta
mk gamma
run() { t_run 2 1 "$@"; }
stage() { local n=$1; shift; run -m "$T_TMP/$n.ini" -v "$@"; }
cache() { printf '%s\n' "$(t_node_shm "$1")/stage-py-$uid"; }
names() { find "$(cache "$1")" -mindepth 1 -maxdepth 1 -name '[a-z]*' -printf '%f\n' | sed 's/-.*//' | sort | tr '\n' ' '; }

t_ok "list on nodes that hold nothing" run list
t_is "$(tail -n +2 "$T_TMP/stdout")" "" "... lists nothing"
t_ok "... and creates nothing" test ! -e "$(cache 1)"

SLURM_JOB_ID=11 t_ok "job 11 stages alpha" stage alpha
SLURM_JOB_ID=12 t_ok "job 12 stages beta" stage beta

t_ok "list" run list
t_is "$(awk 'NR > 1 {print $1, $2, $NF}' "$T_TMP/stdout" | sort | tr '\n' ';')" \
    "node1 alpha 11;node1 beta 12;node2 alpha 11;node2 beta 12;" \
    "... shows every node's copies with their pins"
t_like "$(head -1 "$T_TMP/stdout")" '^NODE +NAME +KEY +SIZE +FILES +CREATED +LAST USED +PINS$' "... under a header"
t_ok "list --json" run list --json
t_is "$(python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
print(len(v), sorted(set(x["node"] for x in v)), v[0]["name"], v[0]["pins"], v[0]["files"] > 10,
      v[0]["path"].startswith("/dev/shm/stage-py-"), v[0]["bytes"] > 300000)' "$T_TMP/stdout")" \
    "4 ['node1', 'node2'] alpha ['11'] True True True" "... is JSON with the same facts"

SLURM_JOB_ID=13 t_ok "clean --all by another job" run clean --all
t_is "$(names 1)$(names 2)" "alpha beta alpha beta " "... leaves pinned copies alone"
t_like "$(cat "$T_TMP/stdout")" "^node1: kept alpha-[0-9a-f]{16}: pinned by job 11$" "... and says why"
t_like "$(cat "$T_TMP/stdout")" "^freed 0 B in 0 copies on 2 nodes$" "... and that nothing was freed"

# The epilog of job 11, as slurmd runs it on each node.
for k in 1 2; do
    SLURM_JOB_ID=11 STAGE_PY_DEST=$(t_node_shm $k) sh "$T_SRCDIR/etc/slurm-epilog.sh"
done
t_ok "the epilog drops job 11's pins on every node" test ! -e "$(cache 1)/.pins/11" -a ! -e "$(cache 2)/.pins/11"
t_ok "... not job 12's" test -d "$(cache 1)/.pins/12"
if id stagepy-test >/dev/null 2>&1; then
    # Another user's directory, entered as that user: their pins go, and a
    # link they planted leads nowhere root could be made to remove.
    tuid=$(id -u stagepy-test)
    shm=$T_TMP/other-shm
    victim=$T_TMP/victim
    mkdir -p "$shm/stage-py-$tuid/.pins/11/x" "$victim/11" "$shm/stage-py-$((tuid + 1))"
    chmod 1777 "$shm"
    chmod 711 "$T_TMP"            # the user must reach $shm, as it reaches /dev/shm
    chown -R stagepy-test "$shm/stage-py-$tuid"
    chown stagepy-test "$shm/stage-py-$((tuid + 1))"
    ln -s "$victim" "$shm/stage-py-$((tuid + 1))/.pins"
    SLURM_JOB_ID=11 STAGE_PY_DEST=$shm sh "$T_SRCDIR/etc/slurm-epilog.sh" 2>/dev/null
    t_ok "the epilog drops another user's pins of the job" test ! -e "$shm/stage-py-$tuid/.pins/11"
    t_ok "... and removes nothing through a link a user planted" test -d "$victim/11"
    # Root itself looks at nothing below a user's directory: a link there
    # could lead it into a hung mount.  Every call that names .pins comes
    # from a process that has become the user (setresuid), or its child.
    if command -v strace >/dev/null; then
        mkdir -p "$shm/stage-py-$tuid/.pins/11"
        chown -R stagepy-test "$shm/stage-py-$tuid"
        SLURM_JOB_ID=11 STAGE_PY_DEST=$shm strace -f -qq -o "$T_TMP/epilog.strace" \
            sh "$T_SRCDIR/etc/slurm-epilog.sh" 2>/dev/null
        as_root=$(awk '
            # pass 1: who made whom, and who became another user
            NR == FNR {
                if ($0 ~ /(clone|clone3|fork|vfork)(\(| resumed>)/ && $NF ~ /^[0-9]+$/)
                    parent[$NF] = $1
                if ($0 ~ /set(res|re)?uid\(/ && $NF == "0")
                    user[$1] = 1
                next
            }
            # pass 2: a call on .pins by a process none of whose line did
            /\.pins/ {
                p = $1; u = 0
                while (p != "" && !u) { u = user[p]; p = parent[p] }
                if (!u) print
            }' "$T_TMP/epilog.strace" "$T_TMP/epilog.strace")
        t_is "$as_root" "" "... root makes no call on a path below a user's directory"
        t_ok "... and the user's pins are gone" test ! -e "$shm/stage-py-$tuid/.pins/11"
    else
        t_skip 2 "no strace"
    fi
    # A user's step that never ends (a hung mount, here a stand-in for
    # setpriv that sleeps) is cut off at STAGE_PY_EPILOG_TIMEOUT: the
    # epilog goes on, says so and still exits 0.
    mkdir -p "$T_TMP/hung-bin" "$shm/stage-py-$tuid/.pins/11"
    printf '#!/bin/sh\nexec sleep 600\n' >"$T_TMP/hung-bin/setpriv"
    chmod +x "$T_TMP/hung-bin/setpriv"
    rc=0
    SLURM_JOB_ID=11 STAGE_PY_DEST=$shm STAGE_PY_EPILOG_TIMEOUT=1 PATH=$T_TMP/hung-bin:$PATH \
        sh "$T_SRCDIR/etc/slurm-epilog.sh" 2>"$T_TMP/epilog.err" || rc=$?
    t_like "$rc:$(cat "$T_TMP/epilog.err")" "^0:stage-py epilog: cannot remove '$shm/stage-py-$tuid/.pins/11' \(as uid $tuid, within 1 s\)" \
        "a user's step that hangs is cut off at STAGE_PY_EPILOG_TIMEOUT; the epilog exits 0"
else
    t_skip 5 "no user stagepy-test (.ci/run creates it)"
fi

SLURM_JOB_ID=13 t_ok "clean --all --dry-run" run clean --all --dry-run
t_like "$(cat "$T_TMP/stdout")" "^node2: would remove alpha-[0-9a-f]{16} \([0-9.]+ KiB\)$" "... names what would go"
t_is "$(names 1)$(names 2)" "alpha beta alpha beta " "... and removes nothing"

SLURM_JOB_ID=13 t_ok "clean --manifest beta.ini" run clean -m "$T_TMP/beta.ini"
t_is "$(names 1)" "alpha beta " "... leaves beta, pinned by job 12"
SLURM_JOB_ID=12 t_ok "clean by job 12 itself" run clean
t_like "$(cat "$T_TMP/stdout")" "^node1: dropped 1 pin of job 12$" "... drops its pins"
t_is "$(names 1)" "alpha beta " "... and, without a selection, removes nothing"

SLURM_JOB_ID=13 t_ok "clean --all --older-than 1h" run clean --all --older-than 1h
t_is "$(names 1)" "alpha beta " "... keeps copies used within the hour"
touch -d '3 hours ago' "$(cache 1)"/beta-*/.stage-py.json "$(cache 2)"/beta-*/.stage-py.json
SLURM_JOB_ID=13 t_ok "clean --all --older-than 2h, beta unused for 3 h" run clean --all --older-than 2h
t_is "$(names 1)$(names 2)" "alpha alpha " "... removes beta only"
t_like "$(cat "$T_TMP/stdout")" "^freed [0-9.]+ KiB in 2 copies on 2 nodes$" "... and reports what it freed"
t_is "$(find "$(cache 1)" -name '.lock-beta-*' -o -name '.del-*' | wc -l)" 0 "... with its lock, and nothing left behind"

# The cache budget: 300 KB copies, room for two.
SLURM_JOB_ID=21 t_ok "stage beta" stage beta
touch -d '1 hour ago' "$(cache 1)"/alpha-*/.stage-py.json "$(cache 2)"/alpha-*/.stage-py.json
SLURM_JOB_ID=21 t_ok "stage gamma with --max-cache 700K" stage gamma --max-cache 700K
t_is "$(names 1)$(names 2)" "beta gamma beta gamma " "... evicts alpha, the least recently used"
t_like "$(cat "$T_TMP/stderr")" "node1: evicted '/dev/shm/stage-py-$uid/alpha-[0-9a-f]{16}' \(" "... and says so"
SLURM_JOB_ID=21 t_fails "stage alpha with --max-cache 700K, beta and gamma pinned" stage alpha --max-cache 700K
t_like "$(cat "$T_TMP/stderr")" "the cache budget of 700 KiB \(--max-cache\) cannot take 'alpha-[0-9a-f]{16}' .*pinned by job 21" \
    "... fails, naming the budget and the pinned copies"
t_is "$(names 1)$(names 2)" "beta gamma beta gamma " "... and removes nothing"
SLURM_JOB_ID=21 t_fails "a copy larger than the budget" stage alpha --max-cache 100K
t_like "$(cat "$T_TMP/stderr")" "'alpha-[0-9a-f]{16}' takes [0-9.]+ KiB, more than the cache budget of 100 KiB \(--max-cache\)" "... is refused"
SLURM_JOB_ID=21 run clean
printf '[stage]\nname = alpha\nmax_cache = 700K\n[tree a]\nsource = %s\n' "$T_TMP/alpha" >"$T_TMP/alpha2.ini"
SLURM_JOB_ID=22 t_ok "the manifest's max_cache, job 21's pins dropped" run -m "$T_TMP/alpha2.ini" -v
t_is "$(names 1)" "alpha gamma " "... evicts beta, now the least recently used"

# A job that ended without its clean or an epilog: its pins stay until
# someone drops them by its id.
SLURM_JOB_ID=31 t_ok "job 31 stages beta" stage beta
SLURM_JOB_ID=32 t_ok "clean --job 31 --all" run clean --job 31 --all
t_like "$(cat "$T_TMP/stdout")" "^node2: dropped 1 pin of job 31$" "... drops job 31's pins"
t_is "$(names 1)$(names 2)" "alpha alpha " "... and removes beta, which no job pins any more (job 22 pins alpha)"
t_fails "clean --job ../x" run clean --job ../x
t_like "$(cat "$T_TMP/stderr")" "--job '../x': give a job id" "... is a usage error"

t_fails "list --all" run list --all
t_like "$(cat "$T_TMP/stderr")" "--all: not an option of 'list'" "... is a usage error"
t_fails "list --timeout 5 (an option of stage, its value apart)" run list --timeout 5
t_like "$(cat "$T_TMP/stderr")" "stage-py: --timeout: not an option of 'list'" "... names the option, not its value"
t_fails "clean --manifest with --all" run clean --all -m "$T_TMP/alpha.ini"
t_like "$(cat "$T_TMP/stderr")" "give --manifest FILE or --all, not both" "... is a usage error"
t_fails "stage --json" run -m "$T_TMP/alpha.ini" --json
t_like "$(cat "$T_TMP/stderr")" "--json: not an option of 'stage'" "... is a usage error"
t_done
