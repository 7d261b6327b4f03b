#!/bin/bash
# SPDX-License-Identifier: MIT
#
# warm-cold.sh: what the node-local cache saves.  Stages a manifest (default
# etc/fenics.ini) on a fake cluster of NODES nodes (tests/fake-rsh), cold
# (no node holds the copy) and warm (every node does), alternating, ROUNDS
# times each, and reports the medians and their ratio, all measured in this
# one run on this machine.  Two clocks: the job as the user waits for it
# (launcher start-up included) and stage-py's own total from --stats.
#
#     tests/bench/warm-cold.sh [-m MANIFEST] [-n NODES] [-r ROUNDS]
#
# Needs root for the fake nodes' mount namespaces, like the tests; see
# tests/bench/lib.sh for the binary.
rounds=5
. "$(dirname "$0")/lib.sh" "$@"
export SLURM_JOB_ID=bench-$$

# one KIND: a staging run; appends "wall total" to $T_TMP/KIND
one() {
    local t0 t1
    t0=$(date +%s.%N)
    t_cluster "$nodes" 1 "$STAGE_PY" -m "$manifest" --stats "$T_TMP/st.json" \
        --output "$T_TMP/env.sh" 2>"$T_TMP/err" || { cat "$T_TMP/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    python3 - "$T_TMP/st.json" "$t0" "$t1" "$1" >>"$T_TMP/$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
want = {"cold": s["nodes"], "warm": 0}[sys.argv[4]]
if s["cold_nodes"] != want:
    sys.exit("warm-cold.sh: a %s run had %d cold nodes, not %d" % (sys.argv[4], s["cold_nodes"], want))
print(float(sys.argv[3]) - float(sys.argv[2]), s["seconds"]["total"], s["files"], s["bytes"])
PY
}


for ((r = 0; r < rounds; r++)); do
    wipe
    one cold
    one warm
done
wipe

python3 - "$T_TMP/cold" "$T_TMP/warm" "$nodes" "$manifest" <<'PY'
import statistics, sys
def load(p):
    rows = [l.split() for l in open(p)]
    return [float(r[0]) for r in rows], [float(r[1]) for r in rows], rows[0]
cw, ct, first = load(sys.argv[1])
ww, wt, _ = load(sys.argv[2])
mc, mw = statistics.median(cw), statistics.median(ww)
tc, tw = statistics.median(ct), statistics.median(wt)
print("manifest %s: %s entries, %.0f MiB, %s nodes, %d rounds" %
      (sys.argv[4], first[2], int(first[3]) / 2**20, sys.argv[3], len(cw)))
print("  job wall time (launcher included): cold %.2f s, warm %.2f s, warm/cold %.3f (%.1fx)" %
      (mc, mw, mw / mc, mc / mw))
print("  stage-py total (--stats):          cold %.3f s, warm %.3f s, warm/cold %.3f (%.1fx)" %
      (tc, tw, tw / tc, tc / tw))
PY
_t_finished=1
