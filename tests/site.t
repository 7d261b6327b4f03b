#!/bin/bash
# SPDX-License-Identifier: MIT
# The site file ($STAGE_PY_CONF here): its defaults apply, its limits hold
# against the manifest and the command line, and its errors name file:line.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3

uid=$(id -u)
src=$T_TMP/src
t_make_tree "$src"
printf '[stage]\nname = s\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/m.ini"
export STAGE_PY_CONF=$T_TMP/site.conf
site() { printf '[site]\n' >"$STAGE_PY_CONF"; printf '%s\n' "$@" >>"$STAGE_PY_CONF"; chmod 644 "$STAGE_PY_CONF"; }
run() { t_run 2 1 "$@"; }
stage() { run -m "$T_TMP/m.ini" --stats "$T_TMP/st.json" -v "$@"; }

# destinations exist (stage-py makes only its per-user directory below them)
for k in 1 2; do
    mkdir -p "$(t_node_shm $k)/site-dest" "$(t_node_shm $k)/mine"
    chmod 1777 "$(t_node_shm $k)/site-dest" "$(t_node_shm $k)/mine"
done
site "dest = /dev/shm/site-dest"
t_ok "the site's dest" stage
t_ok "... is where the copies go" test -d "$(t_node_shm 2)/site-dest/stage-py-$uid"
t_like "$(cat "$T_TMP/stdout")" "/dev/shm/site-dest/stage-py-$uid/s-" "... and what the settings name"
t_ok "list uses it too" run list
t_like "$(cat "$T_TMP/stdout")" "^node2 +s " "... and finds the copies there"
t_ok "--dest still wins" stage --dest /dev/shm/mine
t_ok "... copies in /dev/shm/mine" test -d "$(t_node_shm 2)/mine/stage-py-$uid"

site "headroom = 64T"
t_fails "the site's headroom of 64T" stage --headroom 0
t_like "$(t_err)" "warning: --headroom 0 B is below the site's headroom \($STAGE_PY_CONF:2\), 64 TiB: using 64 TiB" \
    "... is a lower limit: --headroom 0 is raised, with a warning"
t_like "$(t_err)" "node[12]: not enough space in .* and 64 TiB of headroom" "... and the space check fails with it"

site "max_cache = 400K"
find "$(t_node_shm 1)" "$(t_node_shm 2)" -mindepth 1 -delete
SLURM_JOB_ID=1 t_ok "the site's max_cache of 400K, --max-cache 10M asked" stage --max-cache 10M
t_like "$(t_err)" "warning: --max-cache 10 MiB is beyond the site's max_cache \($STAGE_PY_CONF:2\), 400 KiB: using 400 KiB" \
    "... is an upper limit, with a warning"
SLURM_JOB_ID=1 run clean
echo 'v = "changed"' >"$src/pkg/m1.py"
SLURM_JOB_ID=2 t_ok "a second copy" stage --max-cache 10M
t_is "$(find "$(t_node_shm 1)/stage-py-$uid" -mindepth 1 -maxdepth 1 -name 's-*' | wc -l)" 1 \
    "... evicts the first to stay within the site's 400K"
SLURM_JOB_ID=2 run clean

site "timeout = 5m"
t_ok "the site's timeout of 5m, --timeout 0 asked" stage --timeout 0
t_like "$(t_err)" "warning: --timeout 0 \(none\) is beyond the site's timeout \($STAGE_PY_CONF:2\), 300 s: using 300 s" \
    "... is an upper limit: no timeout becomes 5m"

site "reuse = no"
SLURM_JOB_ID=3 t_ok "reuse = no: job 3 stages" stage
SLURM_JOB_ID=3 t_ok "... job 3 again" stage
t_is "$(t_stat cold_nodes)" 0 "... uses its own job's copies"
SLURM_JOB_ID=4 t_ok "... job 4" stage
t_is "$(t_stat cold_nodes)" 2 "... does not use job 3's: it stages its own"
t_like "$(cat "$(t_node_shm 1)/stage-py-$uid"/s-*/.stage-py.json)" '"job": "4"' "... in their place"

site "compress = lz4"
t_ok "the site's compress = lz4" stage --force
t_is "$(t_stat compress)" lz4 "... compresses the stream from the trees"
t_ok "... to fewer bytes than the archive" test "$(t_stat bytes_broadcast)" -lt "$(t_stat bytes_archive)"
t_ok "--compress none still wins" stage --force --compress none
t_is "$(t_stat compress)" none "... as --stats says"
site "compress = xz"
t_fails "compress = xz" stage
t_like "$(t_err)" "^stage-py: $STAGE_PY_CONF:2: compress 'xz': use none, gzip, zstd or lz4$" "... names file:line and the choices"

site "writable_manifests = warn"
chmod g+w "$T_TMP/m.ini"
t_ok "writable_manifests = warn: a group-writable manifest" stage
t_like "$(t_err)" "warning: using manifest '$T_TMP/m.ini': writable by group or others" "... is used, with a warning"
site ""
t_fails "without it" stage
t_like "$(t_err)" "refusing manifest '$T_TMP/m.ini': writable by group or others" "... it is refused"
chmod g-w "$T_TMP/m.ini"

site "max_cache = 4X"
t_fails "a bad value" stage
t_like "$(t_err)" "^stage-py: $STAGE_PY_CONF:2: max_cache '4X': give a size" "... names file:line"
site "" "colour = blue"
t_fails "an unknown key" stage
t_like "$(t_err)" "$STAGE_PY_CONF:3: unknown key 'colour' in \[site\]" "... names file:line and the key"
printf '[limits]\nmax_cache = 1G\n' >"$STAGE_PY_CONF"
t_fails "an unknown section" run list
t_like "$(t_err)" "$STAGE_PY_CONF:2: unknown section \[limits\]" "... also for list"
site "dest = /dev/shm"
chmod o+w "$STAGE_PY_CONF"
t_fails "a site file others can write" stage
t_like "$(t_err)" "refusing the site file '$STAGE_PY_CONF': writable by group or others" "... is refused"
STAGE_PY_CONF=$T_SRCDIR/etc/stage-py.conf t_ok "the sample site file in etc/ parses" \
    t_cluster 1 1 "$STAGE_PY" list
sed 's/^; \([a-z_]* =\)/\1/' "$T_SRCDIR/etc/stage-py.conf" >"$T_TMP/uncommented.conf"
chmod 644 "$T_TMP/uncommented.conf"
t_is "$(grep -c '^[a-z_]* =' "$T_TMP/uncommented.conf")" 10 "... with all 10 settings commented out"
STAGE_PY_CONF=$T_TMP/uncommented.conf t_ok "... each of which, uncommented, parses" \
    t_cluster 1 1 "$STAGE_PY" list
rc=0; STAGE_PY_CONF=$T_TMP/nosuch.conf run list || rc=$?
t_is "$rc" 2 "a site file that STAGE_PY_CONF names and that is missing: status 2"
t_like "$(t_err)" "^stage-py: the site file '$T_TMP/nosuch.conf' \(STAGE_PY_CONF\): No such file or directory \(unset STAGE_PY_CONF for the default, .*, or set it to /dev/null for none\)$" \
    "... naming it, and what to do"
STAGE_PY_CONF=/dev/null t_ok "STAGE_PY_CONF=/dev/null: no site file" run list
# config: the settings in force, and where each came from
for k in 1 2; do mkdir -p "$(t_node_shm $k)/site-dest" && chmod 1777 "$(t_node_shm $k)/site-dest"; done
site "timeout = 10m" "max_cache = 1G" "headroom = 128M" "compress = lz4" "dest = /dev/shm/site-dest" \
    "lock_wait = 2m" "allow_fs = nfs lustre" "writable_manifests = warn"
printf '[stage]\nname = c\ntimeout = 20m\nmax_cache = 512M\n[tree a]\nsource = %s\n' "$src" >"$T_TMP/c.ini"
chmod 644 "$T_TMP/c.ini"
t_ok "config, with a site file, a manifest and options" \
    run config -m "$T_TMP/c.ini" --headroom 64M --pipeline-depth 8 --lock-wait 1m
out=$(t_out)
t_like "$out" "^site file +$STAGE_PY_CONF +STAGE_PY_CONF$" "... names the site file"
t_like "$out" "^manifest +$T_TMP/c.ini +--manifest$" "... and the manifest"
t_like "$out" "^dest +/dev/shm/site-dest +the site's dest \($STAGE_PY_CONF:6\)$" "... a site setting, file:line"
t_like "$out" "^max_cache +512 MiB +the manifest's max_cache \($T_TMP/c.ini:4\)$" "... a manifest's, file:line"
t_like "$out" "^lock_wait +60s +--lock-wait$" "... the command line's"
t_like "$out" "^allow_fs +nfs lustre +the site's allow_fs \($STAGE_PY_CONF:8\)$" "... allow_fs, file:line"
t_like "$out" "^writable_manifests +warn +the site's writable_manifests \($STAGE_PY_CONF:9\)$" \
    "... writable_manifests, file:line"
t_like "$out" "^pipeline_depth +8 +--pipeline-depth$" "... an option that only the command line sets"
t_like "$out" "^chunk_size +256 KiB +default$" "... a default"
t_like "$out" "^timeout +600s +the site's timeout \($STAGE_PY_CONF:2\), its limit$" \
    "... the manifest's 20m brought back to the site's limit"
t_like "$out" "^headroom +128 MiB +the site's headroom \($STAGE_PY_CONF:4\), its floor$" \
    "... --headroom 64M raised to the site's floor"
t_like "$(t_err)" "warning: the manifest's timeout \($T_TMP/c.ini:3\) 1200 s is beyond the site's timeout" \
    "... with the warnings that staging gives"
t_like "$out" "^compress +lz4 +the site's compress \($STAGE_PY_CONF:5\)$" "... compress from the site"
t_is "$(grep -c . "$T_TMP/stdout")" 19 "... 19 lines: the site file, the manifest and 17 settings"
t_ok "config --max-cache 5G --lock-wait 0" run config -m "$T_TMP/c.ini" --max-cache 5G --lock-wait 0
t_like "$(t_out)" "^max_cache +1.0 GiB +the site's max_cache \($STAGE_PY_CONF:3\), its limit$" \
    "... 5G brought back to the site's limit"
t_like "$(t_out)" "^lock_wait +0 \(no wait\) +--lock-wait$" "... --lock-wait 0: no wait"
printf '[stage]\nname = c\nbundle = %s/gone.bundle\nfallback_to_trees = yes\n[tree a]\nsource = %s\n' \
    "$T_TMP" "$src" >"$T_TMP/fb.ini"
chmod 644 "$T_TMP/fb.ini"
t_ok "config of a manifest whose bundle is missing, with fallback_to_trees" run config -m "$T_TMP/fb.ini"
t_like "$(t_out)" "^fallback_to_trees +yes +the manifest's fallback_to_trees \($T_TMP/fb.ini:4\)$" \
    "... the fallback, file:line"
t_like "$(t_out)" "^compress +lz4 +the site's compress" "... the trees' compression, which staging would use"
t_like "$(t_out)" "^lock_wait +120s +the site's lock_wait \($STAGE_PY_CONF:7\)$" "... lock_wait, file:line"
t_like "$(t_err)" "warning: .*gone.bundle.*; staging would use the trees instead" "... with a warning that says why"
t_ok "staging with the same options" stage --force --headroom 64M -m "$T_TMP/c.ini"
t_is "$(t_stat compress)" lz4 "... compresses as config said"
t_like "$(t_out)" "/dev/shm/site-dest/stage-py-$uid/c-" "... into the destination config named"
t_ok "pack it with the site's lz4" run pack -m "$T_TMP/c.ini" -o "$T_TMP/c.bundle"
STAGE_PY_CONF=/dev/null t_ok "config --bundle, no site file" \
    run config --bundle "$T_TMP/c.bundle" --compress zstd --chunk-size 1M --on-node-failure skip
out=$(t_out)
t_like "$out" "^site file +\(none\) +STAGE_PY_CONF=/dev/null$" "... says there is none, and why"
t_like "$out" "^manifest +$T_TMP/c.bundle +--bundle \(the manifest it carries\)$" "... the bundle's manifest"
t_like "$out" "^timeout +1200s +the manifest's timeout \($T_TMP/c.bundle \(its manifest\):3\)$" \
    "... its settings, named by the bundle's manifest's line"
t_like "$out" "^compress +lz4 +the bundle, as packed" "... a bundle's compression, not --compress"
t_like "$out" "^chunk_size +1.0 MiB +--chunk-size$" "... --chunk-size"
t_like "$out" "^on_node_failure +skip +--on-node-failure$" "... --on-node-failure"
STAGE_PY_CONF=/dev/null t_ok "config with neither" run config
t_like "$(t_out)" "^dest +/dev/shm +default$" "... the defaults"
t_fails "config --output" run config -o "$T_TMP/x"
t_like "$(t_err)" "-o: not an option of 'config'" "... is refused: config prints on stdout"
t_done
