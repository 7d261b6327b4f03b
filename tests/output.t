#!/bin/bash
# SPDX-License-Identifier: MIT
# Where output goes, and what a slip at the keyboard gets: a device or a
# FIFO is written in place (never replaced by a file, also as root), a FIFO
# that nobody reads, a directory or a missing directory is an error before
# anything is staged, "-" is standard output, and scan writes a manifest
# that staging accepts whatever the umask.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need mknod mkfifo python3

src=$T_TMP/src
t_make_tree "$src" 3 1000
printf '[stage]\nname = out\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"
run() { t_run 2 1 "$@"; }
stage() { run -m "$T_TMP/m.ini" "$@"; }
fresh() { rm -rf "$T_NODES"; mkdir "$T_NODES"; }

# A character device of the test's own, the same as /dev/null (1,3): the
# machine's own is never put at risk.
mknod "$T_TMP/null" c 1 3
chmod 666 "$T_TMP/null"
t_ok "--output to a character device (/dev/null)" stage --output "$T_TMP/null"
t_ok "... is written in place: it is still a character device" test -c "$T_TMP/null"
fresh
t_ok "--stats to a character device too" stage --stats "$T_TMP/null"
t_ok "... still a character device" test -c "$T_TMP/null"

mkfifo "$T_TMP/fifo"
timeout 60 cat "$T_TMP/fifo" >"$T_TMP/got" &   # bounded: a writer that never comes fails the test, not hangs it
reader=$!
fresh
t_ok "--output to a FIFO that a reader reads" stage --output "$T_TMP/fifo"
wait "$reader"
t_like "$(cat "$T_TMP/got")" "^PYTHONPATH=.*export PYTHONPATH" "... the reader gets the settings"
t_ok "... and the FIFO stays a FIFO" test -p "$T_TMP/fifo"

fresh
rc=0; stage --output "$T_TMP/fifo" --timeout 60s || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: cannot write '$T_TMP/fifo': a FIFO that nobody reads" \
    "--output to a FIFO that nobody reads: an error at once"
t_is "$(t_copies out)" 0 "... before anything is staged"

mkdir "$T_TMP/adir"
fresh
rc=0; stage --output "$T_TMP/adir" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: cannot write '$T_TMP/adir': it is a directory" \
    "--output to a directory: an error"
t_is "$(t_copies out):$(ls -A "$T_TMP/adir" | wc -l)" 0:0 "... before anything is staged; nothing written"

fresh
rc=0; stage --output "$T_TMP/nosuch/env.sh" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output: cannot write '$T_TMP/nosuch/env.sh': directory '$T_TMP/nosuch': No such file or directory" \
    "--output in a directory that does not exist: an error"
t_is "$(t_copies out)" 0 "... before anything is staged"
fresh
rc=0; stage --stats "$T_TMP/nosuch/s.json" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --stats: cannot write '$T_TMP/nosuch/s.json'" "--stats likewise"
t_is "$(t_copies out)" 0 "... before anything is staged"

fresh
(cd "$T_TMP" && t_cluster 2 1 "$STAGE_PY" -m "$T_TMP/m.ini" -o - >"$T_TMP/stdout" 2>"$T_TMP/stderr")
t_like "$(cat "$T_TMP/stdout")" "^PYTHONPATH=.*export PYTHONPATH" "-o -: the settings on standard output"
t_ok "... and no file named '-'" test ! -e "$T_TMP/-"
rc=0; stage --stats - || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --stats -: standard output carries the settings" \
    "--stats -: refused (standard output carries the settings)"
rc=0; run pack -m "$T_TMP/m.ini" -o - || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: pack --output -: a bundle is not written to standard output" \
    "pack -o -: refused"

echo old >"$T_TMP/real.sh"
ln -s real.sh "$T_TMP/link.sh"
fresh
t_ok "--output through a symbolic link to a file" stage --output "$T_TMP/link.sh"
t_ok "... the link stays a link" test -L "$T_TMP/link.sh"
t_like "$(cat "$T_TMP/real.sh")" "^PYTHONPATH=.*export PYTHONPATH" "... and its file gets the settings"
t_is "$(find "$T_TMP" -maxdepth 1 -name '.*.tmp.*' | wc -l)" 0 "... nothing temporary left beside it"

rc=0; (umask 002 && t_cluster 1 1 "$STAGE_PY" scan --python /usr/bin/python3 --import json \
    --name sj -o "$T_TMP/scan.ini" >/dev/null 2>"$T_TMP/stderr") || rc=$?
t_is "$rc:$(stat -c %a "$T_TMP/scan.ini")" 0:644 \
    "scan -o under umask 002: a manifest without group or other write bits"
fresh
t_ok "... which staging accepts as it is" t_cluster 1 1 "$STAGE_PY" -m "$T_TMP/scan.ini" -o "$T_TMP/sj.sh"

# An output that is one of the inputs would replace it: refused before
# anything is read or staged, whatever the name it is given by.
cp "$T_TMP/m.ini" "$T_TMP/keep.ini"
same() {   # same WHAT EXPECTED-MESSAGE FILE COMMAND...: refused, FILE unchanged
    local what=$1 msg=$2 file=$3; shift 3
    local before rc=0
    before=$(sha256sum <"$file")
    fresh
    run "$@" || rc=$?
    t_like "$rc:$(t_err)" "^2:stage-py: $msg" "$what: refused"
    t_is "$(sha256sum <"$file"):$(t_copies out)" "$before:0" "... the file unchanged, nothing staged"
}
same "--output the manifest" "--output '$T_TMP/m.ini' is the manifest" \
    "$T_TMP/m.ini" -m "$T_TMP/m.ini" -o "$T_TMP/m.ini"
ln -s m.ini "$T_TMP/m-link.ini"
same "--output a link to the manifest" "--output '$T_TMP/m-link.ini' is the manifest" \
    "$T_TMP/m.ini" -m "$T_TMP/m.ini" -o "$T_TMP/m-link.ini"
ln "$T_TMP/m.ini" "$T_TMP/m-hard.ini"
same "--stats a hard link to the manifest" "--stats '$T_TMP/m-hard.ini' is the manifest" \
    "$T_TMP/m.ini" -m "$T_TMP/m.ini" --stats "$T_TMP/m-hard.ini"
fresh
rc=0; run -m "$T_TMP/m.ini" -o "$T_TMP/new.out" --stats "$T_TMP/./new.out" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output '$T_TMP/new.out' is the file of --stats" \
    "--output and --stats one file that does not exist yet: refused"
t_ok "... and nothing written" test ! -e "$T_TMP/new.out"
fresh
t_ok "--output and --stats both to a character device" \
    run -m "$T_TMP/m.ini" -o "$T_TMP/null" --stats "$T_TMP/null"
echo keep >"$T_TMP/both.txt"
same "--output and --stats the same file" "--output '$T_TMP/both.txt' is the file of --stats" \
    "$T_TMP/both.txt" -m "$T_TMP/m.ini" -o "$T_TMP/both.txt" --stats "$T_TMP/both.txt"
echo '# site' >"$T_TMP/site.conf"
STAGE_PY_CONF=$T_TMP/site.conf same "--output the site file" \
    "--output '$T_TMP/site.conf' is the site file" "$T_TMP/site.conf" -m "$T_TMP/m.ini" \
    -o "$T_TMP/site.conf"
same "pack --output the manifest" "--output '$T_TMP/m.ini' is the manifest" \
    "$T_TMP/m.ini" pack -m "$T_TMP/m.ini" -o "$T_TMP/m.ini"
printf 'import json\n' >"$T_TMP/app.py"
same "scan --output the script" "--output '$T_TMP/app.py' is a script" \
    "$T_TMP/app.py" scan --python /usr/bin/python3 --script "$T_TMP/app.py" -o "$T_TMP/app.py"
run pack -m "$T_TMP/m.ini" -o "$T_TMP/m.bundle" >/dev/null
same "--output the bundle (--bundle)" "--output '$T_TMP/m.bundle' is the bundle" \
    "$T_TMP/m.bundle" --bundle "$T_TMP/m.bundle" -o "$T_TMP/m.bundle"
same "scan --output the --bundle it names" "--output '$T_TMP/m.bundle' is the bundle" \
    "$T_TMP/m.bundle" scan --python /usr/bin/python3 --import json --bundle "$T_TMP/m.bundle" \
    -o "$T_TMP/m.bundle"
# a manifest whose bundle = is the manifest itself: pack would replace it
printf '[stage]\nname = self\nbundle = self.ini\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/self.ini"
same "pack: bundle = the manifest itself" "bundle '$T_TMP/self.ini' is the manifest" \
    "$T_TMP/self.ini" pack -m "$T_TMP/self.ini"
printf '[stage]\nname = out\nbundle = m.bundle\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/mb.ini"
same "stage: --output the manifest's bundle =" \
    "--output '$T_TMP/m.bundle' is the manifest's bundle \\(bundle = at $T_TMP/mb.ini:3\\)" \
    "$T_TMP/m.bundle" -m "$T_TMP/mb.ini" -o "$T_TMP/m.bundle"
same "stage: --stats the bundle that a --bundle's manifest names" \
    "--stats '$T_TMP/m.bundle' is the manifest's bundle" \
    "$T_TMP/m.bundle" -m "$T_TMP/mb.ini" --stats "$T_TMP/m.bundle"
t_ok "the manifest is as it was after all of them" cmp -s "$T_TMP/m.ini" "$T_TMP/keep.ini"

# pack writes a bundle only as a regular file: a job seeks in it.
rc=0; run pack -m "$T_TMP/m.ini" -o "$T_TMP/null" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output '$T_TMP/null': not a regular file" \
    "pack --output a character device: refused"
t_ok "... which is still a character device" test -c "$T_TMP/null"
rc=0; run pack -m "$T_TMP/m.ini" -o "$T_TMP/nosuch/m.bundle" || rc=$?
t_like "$rc:$(t_err)" "^2:stage-py: --output '$T_TMP/nosuch/m.bundle': directory '$T_TMP/nosuch': No such file or directory" \
    "pack --output in a directory that does not exist: a usage error (status 2)"
t_done
