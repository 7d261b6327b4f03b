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
# Where the copies are: the site file's dest (make install and the package
# write its path below), and /dev/shm, the default; a job that staged
# elsewhere (--dest, or a manifest's dest) keeps its pins until
# `stage-py clean --job`.
#
# Environment (slurmd gives an epilog only Slurm's own variables: to set
# these, name an epilog of your own that sets them and runs this one):
#   SLURM_JOB_ID     the ending job (set by slurmd)
#   STAGE_PY_DEST    the node-local roots of the copies, separated by
#                    blanks, instead of the site file's dest and /dev/shm
#   STAGE_PY_CONF    the site file to read instead of the one below
#   STAGE_PY_EPILOG_TIMEOUT
#                    seconds for each user's pins (default 30; keep the sum
#                    within slurm.conf's PrologEpilogTimeout)
site_conf='/usr/local/etc/stage-py.conf'

job=${SLURM_JOB_ID-}
case $job in
    '' | *[!A-Za-z0-9._-]* | .*)
        echo "stage-py epilog: SLURM_JOB_ID '$job' is not a job id" >&2
        exit 0 ;;       # an epilog that fails drains the node: never for this
esac

limit=${STAGE_PY_EPILOG_TIMEOUT:-30}
case $limit in
    '' | *[!0-9]* | 0) limit=30 ;;
esac

# The destinations, one a line.  The site's dest as inih reads it: "=" or
# ":", blanks around the value, a ";" after a blank starts a comment; a dest
# may hold blanks (stage-py refuses a site file with two, or with a
# continued one).  (Read here, not with `stage-py
# config`: an epilog must not start MPI at every job's end, nor leave the
# pins behind when the MPI library fails on the node.)
if [ -n "${STAGE_PY_DEST-}" ]; then
    dests=$(printf '%s\n' "$STAGE_PY_DEST" | tr -s '[:blank:]' '\n')   # split on blanks
else
    dests=/dev/shm
    conf=${STAGE_PY_CONF:-$site_conf}
    if [ -r "$conf" ]; then
        site_dest=$(sed -n -e 's/[[:space:]];.*$//' -e 's/[[:space:]]*$//' \
            -e 's/^[[:space:]]*dest[[:space:]]*[=:][[:space:]]*//p' "$conf" | tail -n 1)
        if [ -n "$site_dest" ] && [ "$site_dest" != /dev/shm ]; then
            dests=$(printf '%s\n%s\n' "$site_dest" /dev/shm)
        fi
    fi
fi

printf '%s\n' "$dests" | while IFS= read -r dest; do
    [ -n "$dest" ] || continue
    for dir in "$dest"/stage-py-*; do
        # a real directory of stage-py's (not a link someone planted: -L
        # first, which does not follow it)
        if [ -L "$dir" ] || [ ! -d "$dir" ]; then continue; fi
        if ! uid=$(stat -c %u "$dir") || ! gid=$(stat -c %g "$dir"); then continue; fi
        [ "$dir" = "$dest/stage-py-$uid" ] || continue
        # As the user from here, and bounded: below their directory every
        # name is theirs to choose (a link into a hung mount must not hold
        # the node in COMPLETING until slurmd drains it; only a wait that
        # no signal ends still can).
        timeout -k 5 "$limit" setpriv --reuid="$uid" --regid="$gid" --clear-groups \
            sh -c '[ ! -e "$1" ] && [ ! -L "$1" ] || rm -rf -- "$1"' sh "$dir/.pins/$job" ||
            echo "stage-py epilog: cannot remove '$dir/.pins/$job' (as uid $uid, within ${limit} s)" >&2
    done
done
exit 0
