# SPDX-License-Identifier: MIT
"""net-summary.py: the medians and ratios of tests/bench/net.sh's CSV.

    python3 tests/bench/net-summary.py net.csv RATE NMAX CORES_SECONDS BYTES MANIFEST
"""
import csv
import re
import statistics
import sys

path, rate, nmax, cores, nbytes, manifest = sys.argv[1:]
units = {"k": 1e3, "m": 1e6, "g": 1e9}
m = re.match(r"([0-9.]+)([kmg]?)bit", rate.lower())
bps = float(m.group(1)) * units.get(m.group(2), 1)
link = int(nbytes) * 8 / bps
rows = list(csv.DictReader(open(path)))
med = statistics.median
by = {}
for r in rows:
    by.setdefault((int(r["nodes"]), r["method"]), []).append(r)


def col(n, meth, key):
    return med(float(x[key]) for x in by[(n, meth)])


print("manifest %s: %.0f MB; every link %s, so one copy takes %.2f s on a link" %
      (manifest, int(nbytes) / 1e6, rate, link))
print("without a limit, %s nodes cold: %.2f s (stage-py's total): the cores are %.1f times as "
      "fast as the link%s" % (nmax, float(cores), link / float(cores),
                              "" if link / float(cores) >= 2 else " -- LESS THAN TWICE: lower RATE"))
print("medians of %d alternating rounds; stage-py's total and stream from --stats, every "
      "method's wall time with the launch:" % max(int(r["round"]) for r in rows))
print("  nodes | two trees: total  stream (of link)  wall | binary: total  stream (of link)  wall "
      "| bcast-tar: wall")
ns = sorted({k[0] for k in by})
for n in ns:
    cells = []
    for meth in ("two-tree", "binary"):
        st = col(n, meth, "stream")
        share = "(%3.0f %%)" % (100 * link / st) if n > 1 and st else "(  -  )"
        cells.append("%6.2f s %6.2f s %s %6.2f s" % (col(n, meth, "total"), st, share,
                                                   col(n, meth, "wall")))
    print("  %5d | %s | %s | %6.2f s" % (n, cells[0], cells[1], col(n, "bcast-tar", "wall")))
if 2 in ns and max(ns) > 2:
    top = max(ns)
    for meth in ("two-tree", "binary"):
        print("  %s: %d nodes / 2 nodes: total %.2f, stream %.2f, wall %.2f" % (
            meth, top, col(top, meth, "total") / col(2, meth, "total"),
            col(top, meth, "stream") / col(2, meth, "stream"),
            col(top, meth, "wall") / col(2, meth, "wall")))
    print("  bcast-tar: %d nodes / 2 nodes: wall %.2f" % (
        top, col(top, "bcast-tar", "wall") / col(2, "bcast-tar", "wall")))
