#!/bin/bash
# SPDX-License-Identifier: MIT
# The EXAMPLES of stage-py(1), run as written: each block between .EX and
# .EE is taken from the man page and run by bash (tcsh for the tcsh one),
# with `srun` running its command on a fake cluster of two nodes,
# `mpiexec` on this machine, fenics.ini standing for a small manifest
# (sympy from Debian), /apps/fenics/fenics.ini for the same with a bundle
# and an interpreter, and the installed demo manifest for the built one.
# A crontab line runs as its command.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
t_need python3 tcsh
[ -d /usr/lib/python3/dist-packages/sympy ] || t_skip_all "Debian's python3-sympy is not installed"
[ -f "$T_BUILDDIR/etc/demo.ini" ] || t_skip_all "no etc/demo.ini in the build tree (make etc/demo.ini)"

uid=$(id -u)
work=$T_TMP/work
bin=$T_TMP/bin
mkdir -p "$work" "$bin"

# The examples, as plain text: one file per block.
awk -v dir="$T_TMP" '
    /^\.SH / { in_examples = ($2 == "EXAMPLES"); next }
    !in_examples { next }
    /^\.EX/ { n++; file = dir "/example" n; next }
    /^\.EE/ { file = ""; next }
    file {
        gsub(/\\-/, "-"); gsub(/\\e/, "\\"); gsub(/\\\(aq/, "\047"); gsub(/\\\(dq/, "\"")
        gsub(/\\&/, ""); gsub(/\\ /, " ")
        print > file
    }' "$T_SRCDIR/man/stage-py.1"
n=$(ls "$T_TMP"/example* | wc -l)
t_ok "stage-py(1) has examples ($n)" test "$n" -ge 6

# srun OPTIONS... CMD: CMD on every node of a fake cluster of two nodes
# (the same nodes for every call).
cat >"$bin/srun" <<EOT
#!/bin/bash
while [ \$# -gt 0 ]; do case \$1 in -*) shift ;; *) break ;; esac; done
nodes=$T_NODES
. "$T_SRCDIR/tests/lib.sh"
T_NODES=\$nodes
t_cluster 2 1 "\$@"
EOT
# mpiexec -n N CMD: on this machine, as the demo does.
if [ "${T_MPI:-openmpi}" = mpich ]; then
    printf '#!/bin/sh\nexec mpiexec.mpich "$@"\n' >"$bin/mpiexec"
else
    printf '#!/bin/sh\nexec mpiexec.openmpi --oversubscribe "$@"\n' >"$bin/mpiexec"
fi
ln -s "$STAGE_PY" "$bin/stage-py"
chmod +x "$bin/srun" "$bin/mpiexec"
printf '[stage]\nname = example\n[tree site]\nsource = /usr/lib/python3/dist-packages\ninclude = sympy mpmath\nexclude = tests/\n' \
    >"$work/fenics.ini"
printf '[stage]\nname = example\nbundle = fenics.bundle\npython = /usr/bin/python3\n[tree site]\nsource = /usr/lib/python3/dist-packages\ninclude = sympy mpmath\nexclude = tests/\n' \
    >"$work/bundled.ini"
cat >"$work/app.py" <<'EOT'
import os, socket, sympy
with open(os.path.join(os.environ["APP_OUT"], "app." + socket.gethostname()), "w") as f:
    print(sympy.__file__, file=f)
EOT
export PATH="$bin:/usr/bin:$PATH"
export APP_OUT=$T_TMP      # where app.py reports, from every node

run_example() {     # run_example N SHELL: example N in a fresh work directory
    rm -f "$work"/env.* "$work/stats.json" "$T_TMP"/app.*
    (cd "$work" && "$2" "$T_TMP/example$1") >"$T_TMP/ex.out" 2>&1
}
# searchable_by_all DIR: others can search DIR and every directory above it
searchable_by_all() {
    local d
    d=$(realpath "$1")
    while [ "$d" != / ]; do
        [ -n "$(find "$d" -maxdepth 0 -perm -o=x)" ] || return 1
        d=$(dirname "$d")
    done
}
# run_local N SHELL: example N, which runs mpiexec on this machine, with a
# /dev/shm of its own (a private mount namespace): the test never touches
# the machine's /dev/shm.
run_local() {
    rm -f "$work"/env.* "$work/stats.json"
    (cd "$work" && unshare --mount --propagation private sh -c \
        'mount -t tmpfs -o mode=1777,size=512m stage-py-example /dev/shm && exec "$0" "$1"' \
        "$2" "$T_TMP/example$1") >"$T_TMP/ex.out" 2>&1
}
apps_ok() {         # every node's app imported sympy from its /dev/shm copy
    local f
    for f in "$T_TMP"/app.node1 "$T_TMP"/app.node2; do
        grep -q "^/dev/shm/stage-py-$uid/example-[0-9a-f]*/usr/lib/python3/dist-packages/sympy/__init__.py$" "$f" ||
            return 1
    done
}

for i in $(seq 1 "$n"); do
    ex=$T_TMP/example$i
    # the manifest with a bundle; a crontab line: its command
    sed -i -E -e "s|/apps/fenics/fenics.ini|$work/bundled.ini|g" \
        -e 's/^([0-9*][0-9*,\/-]*[[:space:]]+){5}//' "$ex"
    first=$(grep -v '^#!' "$ex" | grep -v '^set -e' | head -1)
    if grep -q 'demo.ini' "$ex"; then
        sed -i "s|/usr/local/share/stage-py/demo.ini|$T_BUILDDIR/etc/demo.ini|" "$ex"
        if [ "$uid" = 0 ] && ! searchable_by_all "$T_SRCDIR/etc/demo"; then
            # root stages only what every user could read (SECURITY in stage-py(1))
            t_skip 2 "the source tree lies below a directory that others cannot search"
            continue
        fi
        t_ok "example $i (the demo): $first" run_local "$i" bash
        t_like "$(cat "$T_TMP/ex.out")" "^/dev/shm/stage-py-$uid/stage-py-demo-[0-9a-f]{16}$T_SRCDIR/etc/demo/stagepy_demo$" \
            "... imports the demo from the copy"
    elif grep -q 'source env.csh' "$ex"; then
        t_ok "example $i (tcsh): $first" run_example "$i" tcsh
        t_ok "... the application imported from each node's copy" apps_ok
    elif grep -q 'stage-py pack' "$ex"; then
        t_ok "example $i (pack): $first" run_example "$i" bash
        t_like "$(cat "$T_TMP/ex.out")" "^$work/fenics.bundle: (written|up to date)" "... writes the bundle"
    elif grep -q 'bundled.ini' "$ex"; then
        t_ok "example $i (a bundle): $first" run_example "$i" bash
        t_ok "... the application imported from each node's copy" apps_ok
        t_is "$(grep -c 'fallback to trees' "$T_TMP/ex.out" || true)" 0 "... staged from the bundle, not from the trees"
    elif grep -q 'rm -rf' "$ex"; then
        t_ok "example $i: $first" run_example "$i" bash
        t_is "$(find "$T_NODES" -name 'stage-py-*' | wc -l)" 0 "... the copies are gone from every node"
    elif grep -q 'app.py' "$ex"; then
        t_ok "example $i: $first" run_example "$i" bash
        t_ok "... the application imported from each node's copy" apps_ok
    else
        t_ok "example $i: $first" run_example "$i" bash
        if grep -q 'stats.json' "$ex"; then
            t_like "$(cat "$T_TMP/ex.out")" "'total': [0-9.]+" "... prints the timings"
        fi
    fi
done
t_done
