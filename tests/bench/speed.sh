#!/bin/bash
# SPDX-License-Identifier: MIT
#
# speed.sh: how fast a cold staging is, as ratios measured in this one run,
# each the median over ROUNDS alternating runs:
#   tar       tar -chf - ENTRIES | tar -xf - -C DEST: the least work that
#             copies the same entries (those that a staged copy of MANIFEST
#             holds) into a tmpfs on one machine (-h: links are copied as
#             what they point to, never extracted as links to outside);
#   1 node    stage-py, cold, on one fake node (stage-py's own total from
#             --stats, and the job's wall time with the launcher);
#   N nodes   the same on NODES fake nodes;
#   base      with BASE=/path/to/another/stage-py (an earlier build), the
#             same two measurements with it, in the same rounds, so that a
#             change is judged against what came before in one sitting;
# then, on NODES nodes, the chunk size and pipeline depth: every pair of
# CHUNKS and DEPTHS, cold, as a ratio to the default (256K, 4); and on one
# node, every number of unpack threads in THREADS, as a ratio to 1 (empty
# CHUNKS or THREADS: not measured).
#
#     [BASE=OLD-STAGE-PY] tests/bench/speed.sh [-m MANIFEST] [-n NODES] [-r ROUNDS]
#
# Needs root for the fake nodes' mount namespaces, like the tests; see
# tests/bench/lib.sh for the binary.
rounds=5
. "$(dirname "$0")/lib.sh" "$@"
CHUNKS=${CHUNKS-256K 1M 4M 16M}
DEPTHS=${DEPTHS-2 4 8}
THREADS=${THREADS-1 2 3}
BASE=${BASE:+$(realpath "$BASE")}
export SLURM_JOB_ID=bench-$$

# The entries a copy holds, as paths below /, in the order of the walk.
t_cluster 1 1 "$STAGE_PY" -q -m "$manifest" -o "$T_TMP/env.sh"
copy=$(t_node_shm 1)/stage-py-$(id -u)/$(sed -n "s|^STAGE_PY_DIR='.*/\(.*\)'; export STAGE_PY_DIR$|\1|p" "$T_TMP/env.sh")
(cd "$copy" && find . -mindepth 1 ! -name .stage-py.json | sed 's|^\./||') >"$T_TMP/entries"
wipe

# tar: one run, a fresh tmpfs of its own; appends the seconds to $T_TMP/tar
tar_once() {
    unshare --mount --propagation private bash -c '
        mount -t tmpfs stage-py-bench /dev/shm && mkdir /dev/shm/dest &&
        t0=$(date +%s.%N) &&
        tar -chf - -C / --no-recursion -T "$1" | tar -xf - -C /dev/shm/dest &&
        t1=$(date +%s.%N) &&
        python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"' \
        _ "$T_TMP/entries" >>"$T_TMP/tar"
}

# stage KEY NODES [OPTIONS...]: one cold run of $bin (default $STAGE_PY);
# appends "wall total scan stream_end unpack_end" to $T_TMP/KEY (the last
# two on the root's node, from the start)
stage() {
    local key=$1 n=$2 t0 t1
    shift 2
    wipe
    t0=$(date +%s.%N)
    t_cluster "$n" 1 "${bin:-$STAGE_PY}" -m "$manifest" --stats "$T_TMP/st.json" -o "$T_TMP/env.sh" \
        "$@" 2>"$T_TMP/err" || { cat "$T_TMP/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
assert s["cold_nodes"] == int(sys.argv[4]), "not cold"
tl = s["timeline"]
print(float(sys.argv[3]) - float(sys.argv[2]), s["seconds"]["total"], s["seconds"]["scan"],
      tl["broadcast"][1], tl["unpack"][1])' \
        "$T_TMP/st.json" "$t0" "$t1" "$n" >>"$T_TMP/$key"
}

for ((r = 0; r < rounds; r++)); do
    tar_once
    stage one 1
    stage many "$nodes"
    if [ -n "$BASE" ]; then
        bin=$BASE stage base-one 1
        bin=$BASE stage base-many "$nodes"
    fi
done
for c in $CHUNKS; do
    for d in $DEPTHS; do
        for ((r = 0; r < rounds; r++)); do
            stage "tune-$c-$d" "$nodes" --chunk-size "$c" --pipeline-depth "$d"
        done
    done
done
for ((r = 0; r < rounds; r++)); do
    for t in $THREADS; do
        stage "threads-$t" 1 --unpack-threads "$t"
    done
done
wipe

python3 - "$T_TMP" "$nodes" "$manifest" "$(wc -l <"$T_TMP/entries")" "$CHUNKS" "$DEPTHS" \
    "$THREADS" "$BASE" <<'PY'
import os, statistics, sys
tmp, nodes, manifest, entries, chunks, depths, threads, base_bin = sys.argv[1:]
med = statistics.median
def col(name, k):
    return [float(l.split()[k]) for l in open(os.path.join(tmp, name))]
tar = med(col("tar", 0))
one_w, one_t = med(col("one", 0)), med(col("one", 1))
many_w, many_t = med(col("many", 0)), med(col("many", 1))
print("manifest %s: %s entries; medians of %d rounds" % (manifest, entries, len(col("tar", 0))))
print("  tar | tar, one machine:        %.3f s" % tar)
print("  stage-py, 1 node, cold:       %.3f s (job %.2f s)  stage-py/tar %.2f" % (one_t, one_w, one_t / tar))
print("    of which the walk (scan) %.3f s; the unpacker finished %.3f s after the stream" %
      (med(col("one", 2)), med([u - b for b, u in zip(col("one", 3), col("one", 4))])))
print("  stage-py, %s nodes, cold:      %.3f s (job %.2f s)  %s nodes/1 node %.2f" %
      (nodes, many_t, many_w, nodes, many_t / one_t))
if base_bin:
    b_one, b_many = med(col("base-one", 1)), med(col("base-many", 1))
    print("  base %s:" % base_bin)
    print("    1 node, cold:   %.3f s  base/tar %.2f;  this/base %.3f" %
          (b_one, b_one / tar, one_t / b_one))
    print("    %s nodes, cold:  %.3f s  base/tar %.2f;  this/base %.3f" %
          (nodes, b_many, b_many / tar, many_t / b_many))
base = med(col("tune-256K-4", 1)) if os.path.exists(os.path.join(tmp, "tune-256K-4")) else many_t
if chunks.split():
    print("  chunk size x pipeline depth, %s nodes, cold (stage-py total; ratio to 256K x 4):" % nodes)
for c in chunks.split():
    row = []
    for d in depths.split():
        t = med(col("tune-%s-%s" % (c, d), 1))
        row.append("%s x %s: %.3f s (%.2f)" % (c, d, t, t / base))
    print("    " + "   ".join(row))
if threads.split():
    one = med(col("threads-%s" % threads.split()[0], 1))
    print("  unpack threads, 1 node, cold (stage-py total; ratio to %s):" % threads.split()[0])
    print("    " + "   ".join("%s: %.3f s (%.2f)" % (t, med(col("threads-" + t, 1)),
                                                     med(col("threads-" + t, 1)) / one)
                              for t in threads.split()))
PY
_t_finished=1
