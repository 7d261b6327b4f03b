# SPDX-License-Identifier: MIT
#
# lib.sh: prelude for stage-py's benchmarks (bash), after tests/lib.sh,
# whose fake cluster they run on.
#
#     rounds=5; . "$(dirname "$0")/lib.sh" "$@"
#
# Parses -m MANIFEST (default etc/fenics.ini), -n NODES (default 3) and
# -r ROUNDS (default: $rounds), and finds the binary: $STAGE_PY, else
# ./stage-py (the build directory; `make bench` sets STAGE_PY).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
manifest=$here/etc/fenics.ini nodes=3 rounds=${rounds:-3}
while getopts m:n:r: o; do
    case $o in
        m) manifest=$OPTARG ;;
        n) nodes=$OPTARG ;;
        r) rounds=$OPTARG ;;
        *) echo "usage: $0 [-m MANIFEST] [-n NODES] [-r ROUNDS]" >&2; exit 2 ;;
    esac
done
STAGE_PY=$(realpath "${STAGE_PY:-./stage-py}")
srcdir=$here
. "$here/tests/lib.sh"
unshare --mount --uts true 2>/dev/null || {
    echo "$(basename "$0"): needs root (mount namespaces), like the tests" >&2
    exit 77
}
# wipe: no node holds a copy
wipe() { local k; for ((k = 1; k <= nodes; k++)); do rm -rf "$(t_node_shm $k)"/stage-py-*; done; }
