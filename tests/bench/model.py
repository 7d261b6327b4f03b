#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# model.py: the cost model of stage-py-performance(7), evaluated.  Prints,
# for 1 000 and 10 000 nodes and a 300 MB and a 10 GB stack, the time until
# every node is ready (stage-py from a bundle and from the trees), the
# time that the naive import and the zip remedy spend on the shared file
# system, and a broadcast followed by an untar (python-mpi-bcast's way).
#
#     tests/bench/model.py [NAME=VALUE ...]
#     tests/bench/model.py bcast NODES GBIT BYTES CHUNK two-tree|binary|mpi [NAME=VALUE ...]
#
# The second form prints the broadcast's time alone, in seconds, for links
# of GBIT Gbit/s: the two trees' or the binary tree's T_stream with chunks
# of CHUNK bytes, or (mpi) a binomial MPI_Bcast of the whole stream; the
# simulation (tests/bench/sim.sh) compares with it.
#
# Every constant below can be given on the command line (model.py
# unpack_file=30e-6 link=25e9).  "measured" ones come from the
# benchmarks of this directory on the 2-core machine that the man page
# names; the others are assumptions about a cluster, said as such there.
import math
import sys

K = {
    # measured here (speed.sh on synthetic trees, one fake node, tmpfs)
    "unpack_file": 23e-6,   # s per entry: create, write, mode, times
    "unpack_byte": 0.65e-9,  # s per byte through pack, stream and unpack
    "walk_ops": 9.2,        # metadata operations per entry of the root's walk
                            # and pack (slowfs count, etc/fenics.ini)
    "import_calls": 5438,   # path-based calls of one `from dolfin import *`
                            # on the shared trees (calls.sh, naive)
    # assumed for a cluster
    "link": 10e9,           # B/s per node link (InfiniBand EDR/HDR class)
    "latency": 2e-6,        # s per message
    "chunk": 256 << 10,     # bytes (the default)
    "md_rtt": 0.2e-3,       # s per metadata round trip, one client
    "md_rate": 60e3,        # metadata operations per s the servers sustain
                            # (ARCHER: 768 ranks x 5 500 calls in 71 s)
    "fs_read": 1e9,         # B/s one client reads one large file
    "zip_factor": 39 / 71,  # zip vs naive (ARCHER: 39 s against 71 s)
    "ranks_per_node": 32,
    "launch_a": 0.5,        # s: launch and MPI_Init, a + b log2(nodes)
    "launch_b": 0.3,
}
args = sys.argv[1:]
case = None
if args[:1] == ["bcast"]:
    case, args = args[1:6], args[6:]
    if len(case) != 5 or case[4] not in ("two-tree", "binary", "mpi"):
        sys.exit("usage: model.py bcast NODES GBIT BYTES CHUNK two-tree|binary|mpi [NAME=VALUE ...]")
for arg in args:
    name, _, value = arg.partition("=")
    if name not in K or not value:
        sys.exit("model.py: unknown constant '%s' (known: %s)" % (name, ", ".join(K)))
    K[name] = float(value)

STACKS = [("300 MB, 12 000 files", 300e6, 12000), ("10 GB, 300 000 files", 10e9, 300000)]
NODES = [1000, 10000]


def launch(n):
    return K["launch_a"] + K["launch_b"] * math.log2(n)


def levels(n):
    """Levels of the two trees: about 2 log2 n (tests/unit/t-bcast.c holds
    them to 2 log2 n + 2)."""
    return 2 * math.ceil(math.log2(n + 1))


def tree_stream(n, m, binary=False):
    """The two trees: every node sends at most what it receives, so the
    stream needs m / link, plus a chunk time per level.  The binary tree
    (--broadcast binary): each inner node sends every chunk twice."""
    if binary:
        step = 2 * (K["latency"] + K["chunk"] / K["link"])
        return 2 * m / K["link"] + math.ceil(math.log2(n + 1)) * step
    return m / K["link"] + levels(n) * (K["latency"] + K["chunk"] / K["link"])


def unpack(m, f):
    return f * K["unpack_file"] + m * K["unpack_byte"]


def stage(n, m, f, bundle, binary=False):
    """Launch, the root's read, then the pipeline: its slowest stage, plus
    the chunks in flight to fill it."""
    read = m / K["fs_read"] if bundle else f * K["walk_ops"] * K["md_rtt"] + m / K["fs_read"]
    fill = (math.ceil(math.log2(n + 1)) * 2 if binary else levels(n)) * K["chunk"] / K["link"]
    return launch(n) + max(read, tree_stream(n, m, binary), unpack(m, f)) + fill


def bcast_then_untar(n, m, f):
    """The whole archive read, broadcast (binomial tree: log2 n sends of it
    from the root), and only then unpacked."""
    return launch(n) + m / K["fs_read"] + math.ceil(math.log2(n)) * m / K["link"] + unpack(m, f)


def naive(n):
    return n * K["ranks_per_node"] * K["import_calls"] / K["md_rate"]


def mpi_bcast(n, m):
    """A binomial tree: the root sends the whole stream ceil(log2 n) times,
    one after another (SMPI's MPI_Bcast, and Open MPI's MPI_Ibcast)."""
    return math.ceil(math.log2(n)) * (K["latency"] + m / K["link"])


if case:
    n, gbit, m = int(case[0]), float(case[1]), float(case[2])
    K["link"], K["chunk"] = gbit * 1e9 / 8, float(case[3])
    t = mpi_bcast(n, m) if case[4] == "mpi" else tree_stream(n, m, case[4] == "binary")
    print("%.6f" % t)
    sys.exit(0)

print("%-8s %-22s %12s %12s %14s %14s %12s %12s" % ("nodes", "stack", "bundle", "trees",
                                                    "bundle,binary", "bcast+untar", "naive",
                                                    "zip"))
for n in NODES:
    for name, m, f in STACKS:
        print("%-8d %-22s %11.1fs %11.1fs %13.1fs %13.1fs %11.0fs %11.0fs" % (
            n, name, stage(n, m, f, True), stage(n, m, f, False),
            stage(n, m, f, True, binary=True), bcast_then_untar(n, m, f),
            naive(n), K["zip_factor"] * naive(n)))
print("(naive and zip: the import's metadata load alone, %d ranks per node; "
      "stage-py and bcast+untar: until every node holds the copy)" % K["ranks_per_node"])
