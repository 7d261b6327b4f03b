#!/bin/bash
# SPDX-License-Identifier: MIT
#
# compress.sh: which compression pays, for a bundle and on the wire.
#
# Bundles: packs a manifest (default etc/fenics.ini) once per compression
# (none, lz4, zstd, gzip), then stages each bundle cold on a fake cluster
# of NODES nodes, ROUNDS times, and reports the bundle's size, the time to
# pack it and the median staging time, with each one's ratio to "none".
#
# On the wire: stages the manifest's trees cold with --compress none, lz4,
# zstd and gzip, in alternating rounds, once without a rate limit and once
# with every fake node's link limited to RATE (default 250mbit, as
# net.sh; needs the namespaces of T_NET_RATE), and reports the median of
# stage-py's total and the bytes sent, with each one's ratio to "none".
#
# Everything is measured in this run.
#
#     [RATE=250mbit] tests/bench/compress.sh [-m MANIFEST] [-n NODES] [-r ROUNDS]
#
# Needs root for the fake nodes' mount namespaces, like the tests; see
# tests/bench/lib.sh for the binary.
rounds=3
. "$(dirname "$0")/lib.sh" "$@"

for c in none lz4 zstd gzip; do
    # the manifest, naming a bundle of this compression
    sed "s|^\[stage\]$|[stage]\nbundle = $T_TMP/b.$c|" "$manifest" >"$T_TMP/m.$c.ini"
    chmod 644 "$T_TMP/m.$c.ini"
    t0=$(date +%s.%N)
    "$STAGE_PY" pack -q -m "$T_TMP/m.$c.ini" --compress $c >/dev/null
    t1=$(date +%s.%N)
    echo "$c pack $t0 $t1 $(stat -c %s "$T_TMP/b.$c")" >>"$T_TMP/res"
    for ((r = 0; r < rounds; r++)); do
        wipe
        t_cluster "$nodes" 1 "$STAGE_PY" -m "$T_TMP/m.$c.ini" --stats "$T_TMP/st.json" \
            -o "$T_TMP/env.sh" 2>"$T_TMP/err" || { cat "$T_TMP/err" >&2; exit 1; }
        python3 -c 'import json, sys; print(sys.argv[2], "stage", json.load(open(sys.argv[1]))["seconds"]["total"])' \
            "$T_TMP/st.json" $c >>"$T_TMP/res"
    done
done
wipe

# On the wire, from the trees: RATE 0 is no limit.
RATE=${RATE:-250mbit}
for rate in 0 "$RATE"; do
    if [ "$rate" = 0 ]; then unset T_NET_RATE; else export T_NET_RATE=$rate; fi
    for ((r = 0; r < rounds; r++)); do
        for c in none lz4 zstd gzip; do
            wipe
            t_cluster "$nodes" 1 "$STAGE_PY" -m "$manifest" --compress $c --stats "$T_TMP/st.json" \
                -o "$T_TMP/env.sh" 2>"$T_TMP/err" || { cat "$T_TMP/err" >&2; exit 1; }
            python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))
print(sys.argv[2], "wire", sys.argv[3], s["seconds"]["total"], s["bytes_broadcast"])' \
                "$T_TMP/st.json" $c "$rate" >>"$T_TMP/res"
        done
    done
done
unset T_NET_RATE
wipe
python3 - "$T_TMP/res" "$nodes" "$rounds" "$manifest" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
pack = {r[0]: (float(r[3]) - float(r[2]), int(r[4])) for r in rows if r[1] == "pack"}
stage = {}
for r in rows:
    if r[1] == "stage":
        stage.setdefault(r[0], []).append(float(r[2]))
med = {c: statistics.median(v) for c, v in stage.items()}
print("manifest %s, %s nodes, %s cold stagings each (median of stage-py's total)" % (sys.argv[4], sys.argv[2], sys.argv[3]))
print("bundles, no rate limit:")
print("  %-5s %10s %8s %10s %12s %8s" % ("", "bundle", "ratio", "pack", "stage", "ratio"))
for c in ("none", "lz4", "zstd", "gzip"):
    print("  %-5s %8.1f MiB %8.3f %8.2f s %10.3f s %8.3f" % (c, pack[c][1] / 2**20, pack[c][1] / pack["none"][1],
          pack[c][0], med[c], med[c] / med["none"]))
print("  fastest to stage here: %s" % min(med, key=med.get))
for rate in dict.fromkeys(r[2] for r in rows if r[1] == "wire"):
    wire, sent = {}, {}
    for r in rows:
        if r[1] == "wire" and r[2] == rate:
            wire.setdefault(r[0], []).append(float(r[3]))
            sent[r[0]] = int(r[4])
    med = {c: statistics.median(v) for c, v in wire.items()}
    print("on the wire, from the trees (--compress), %s:" % ("no rate limit" if rate == "0" else "links of " + rate))
    print("  %-5s %10s %8s %12s %8s" % ("", "sent", "ratio", "stage", "ratio"))
    for c in ("none", "lz4", "zstd", "gzip"):
        print("  %-5s %8.1f MiB %8.3f %10.3f s %8.3f" % (c, sent[c] / 2**20, sent[c] / sent["none"],
              med[c], med[c] / med["none"]))
    print("  fastest here: %s" % min(med, key=med.get))
PY
_t_finished=1
