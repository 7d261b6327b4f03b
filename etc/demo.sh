#!/bin/sh
# SPDX-License-Identifier: MIT
# Stage the demo package with stage-py on this machine and import it from
# the staged copy.  Usage: etc/demo.sh STAGE_PY MANIFEST [MPIEXEC [DEST]]
# (DEST: a destination of its own instead of the manifest's or /dev/shm,
# as make installcheck gives; it is removed at the end)
set -eu
stage_py=$1
manifest=$2
mpiexec=${3:-mpiexec}
dest=${4-}
work=$(mktemp -d)
trap 'rm -rf "$work" ${dest:+"$dest"}' EXIT
if [ "$(id -u)" = 0 ]; then
    # Open MPI refuses root unless told; the demo is harmless.
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
fi
echo "+ $mpiexec -n 2 $stage_py --manifest $manifest${dest:+ --dest $dest} --output $work/env.sh --stats $work/stats.json -v"
"$mpiexec" -n 2 "$stage_py" --manifest "$manifest" ${dest:+--dest "$dest"} --output "$work/env.sh" \
    --stats "$work/stats.json" -v
echo "+ cat env.sh"
cat "$work/env.sh"
# shellcheck source=/dev/null  # written just above
. "$work/env.sh"
echo "+ python3 -c 'import stagepy_demo; ...'"
python3 -c 'import stagepy_demo; print(stagepy_demo.greeting()); print("imported from", stagepy_demo.where())'
case "$(python3 -c 'import stagepy_demo; print(stagepy_demo.where())')" in
    "$STAGE_PY_DIR"/*) echo "demo: OK, the package came from the staged copy" ;;
    *) echo "demo: FAILED, the package did not come from $STAGE_PY_DIR" >&2; exit 1 ;;
esac
