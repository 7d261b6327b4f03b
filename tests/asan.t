#!/bin/bash
# SPDX-License-Identifier: MIT
# Under AddressSanitizer (a build configured with -fsanitize=address; .ci/run
# makes one and sets T_ASAN=1): small runs on the fake cluster, successful
# and failing, show no invalid memory access on any rank and no leak of
# memory that stage-py's own code allocated.  The MPI library's own
# allocations at exit (some in plugins unloaded before the leak check) are
# not stage-py's and are left out by looking at the allocation stacks.
. "${srcdir:-.}/tests/lib.sh"
[ "${T_ASAN:-0}" = 1 ] || t_skip_all "not an AddressSanitizer build (T_ASAN=1 with -fsanitize=address)"
t_need_cluster

src=$T_TMP/src
mkdir -p "$src/pkg/sub"
for i in $(seq 1 50); do echo "v = $i" >"$src/pkg/sub/m$i.py"; done
ln -s sub/m1.py "$src/pkg/link.py"
head -c 300000 /dev/urandom >"$src/pkg/blob.bin"
printf '[stage]\nname = asan\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"
mkdir "$T_TMP/asan"
# Leaks are judged below from the reports, not by the exit status.
export ASAN_OPTIONS="log_path=$T_TMP/asan/log:detect_leaks=1:abort_on_error=0"
export LSAN_OPTIONS="exitcode=0"

t_ok "stage on 3 nodes x 2 ranks" \
    t_cluster 3 2 "$STAGE_PY" -m "$T_TMP/m.ini" --chunk-size 16K --output "$T_TMP/env.sh"
t_ok "a warm rerun" t_cluster 3 2 "$STAGE_PY" -m "$T_TMP/m.ini" --output "$T_TMP/env.sh"
rm -rf "$T_NODES"
t_fails "a run that fails mid-stream" \
    env T_SHM_SIZE_node2=16m,nr_inodes=20 bash -c '. "$1"; t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/m.ini" --chunk-size 4K --headroom 0' \
    sh "$T_SRCDIR/tests/lib.sh"
rm -rf "$T_NODES"
t_ok "3 threads write each copy" \
    t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/m.ini" --chunk-size 16K --unpack-threads 3
rm -rf "$T_NODES"
t_fails "... and one fails mid-stream" \
    env T_SHM_SIZE_node2=16m,nr_inodes=20 bash -c '. "$1"; t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/m.ini" --chunk-size 4K --headroom 0 --unpack-threads 3' \
    sh "$T_SRCDIR/tests/lib.sh"
t_fails "a run with a damaged chunk" \
    env STAGE_PY_TEST_CORRUPT=node3 bash -c '. "$1"; t_cluster 3 1 "$STAGE_PY" -m "$T_TMP/m.ini" --chunk-size 16K' \
    sh "$T_SRCDIR/tests/lib.sh"
printf '[stage]\nname = asan\nbogus = 1\n' >"$T_TMP/bad.ini"
t_fails "a bad manifest" t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/bad.ini"

nlogs=$(ls "$T_TMP/asan" | wc -l)
t_ok "every rank wrote a sanitizer report ($nlogs)" test "$nlogs" -ge 6
t_is "$(cat "$T_TMP"/asan/log.* | grep -c 'ERROR: AddressSanitizer' || true)" 0 \
    "no invalid memory access on any rank"
# A leak is stage-py's if its allocation stack goes through stage-py's code.
ours=$(awk '/^(Direct|Indirect) leak/ { block = $0; keep = 1; next }
            keep && /^$/ { if (block ~ / in stg_|\/src\/[a-z]+\.c/) print block; keep = 0; next }
            keep { block = block "\n" $0 }' "$T_TMP"/asan/log.*)
t_is "$ours" "" "no leak of memory that stage-py allocated"
t_done
