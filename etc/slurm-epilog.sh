#!/bin/sh
# SPDX-License-Identifier: MIT
#
# slurm-epilog.sh: drop the pins that an ending Slurm job holds on
# stage-py's staged copies on this node, so that `stage-py clean` and the
# cache budget may remove those copies later.
#
# Install as (or call from) the Epilog of slurm.conf.  slurmd runs it as
# root on every node of the job when the job ends, also after a timeout or
# a cancel, with SLURM_JOB_ID set.  The copies themselves stay: the next
# job of the same user on this node uses them without staging again.
#
# Every user's directory is entered as that user (setpriv), never as root:
# a user cannot make root remove anything of someone else's by planting a
# symbolic link.
#
# Environment:
#   SLURM_JOB_ID     the ending job (set by slurmd)
#   STAGE_PY_DEST    the node-local root of the copies (default /dev/shm);
#                    several may be given, separated by blanks.  slurmd
#                    gives an epilog only Slurm's own variables: for another
#                    destination, name an epilog of your own that sets it
#                    and runs this one.

job=${SLURM_JOB_ID-}
case $job in
    '' | *[!A-Za-z0-9._-]* | .*)
        echo "stage-py epilog: SLURM_JOB_ID '$job' is not a job id" >&2
        exit 0 ;;       # an epilog that fails drains the node: never for this
esac

for dest in ${STAGE_PY_DEST:-/dev/shm}; do
    for dir in "$dest"/stage-py-*; do
        # a real directory of stage-py's (not a link someone planted)
        if [ ! -d "$dir" ] || [ -L "$dir" ]; then continue; fi
        if ! uid=$(stat -c %u "$dir") || ! gid=$(stat -c %g "$dir"); then continue; fi
        [ "$dir" = "$dest/stage-py-$uid" ] || continue
        [ -d "$dir/.pins/$job" ] || continue
        setpriv --reuid="$uid" --regid="$gid" --clear-groups \
            rm -rf -- "$dir/.pins/$job" ||
            echo "stage-py epilog: cannot remove '$dir/.pins/$job'" >&2
    done
done
exit 0
