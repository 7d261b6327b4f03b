#!/bin/bash
# SPDX-License-Identifier: MIT
# The workload stage-py exists for: etc/fenics.ini staged on 2 fake nodes,
# then `from dolfin import *` on every node loads DOLFIN and nearly every
# module from the node's /dev/shm.  Needs Debian's python3-dolfin.
. "${srcdir:-.}/tests/lib.sh"
t_need_cluster
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import dolfin' 2>/dev/null ||
    t_skip_all "Debian's python3-dolfin is not installed"

uid=$(id -u)
t_ok "stage etc/fenics.ini on 2 nodes" \
    t_cluster 2 1 "$STAGE_PY" -m "$T_SRCDIR/etc/fenics.ini" --output "$T_TMP/env.sh" \
    --stats "$T_TMP/stats.json"
t_diag "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print("fenics.ini: %d entries, %.0f MiB, %.2f s" % (s["files"], s["bytes"] / 2**20, s["seconds"]["total"]))' \
    "$T_TMP/stats.json")"

mkdir "$T_TMP/imports"
t_ok "from dolfin import * on every node" \
    t_cluster 2 1 sh -c '. "$1" && cd / && exec /usr/bin/python3 -c "
import os, socket, sys
from dolfin import *
import dolfin
files = [m.__file__ for m in list(sys.modules.values()) if getattr(m, \"__file__\", None)]
staged = [f for f in files if f.startswith(os.environ[\"STAGE_PY_DIR\"] + \"/\")]
with open(os.path.join(sys.argv[1], socket.gethostname()), \"w\") as f:
    print(dolfin.__file__, len(files), len(staged), file=f)" "$2"' sh "$T_TMP/env.sh" "$T_TMP/imports"

for node in node1 node2; do
    read -r file total staged <"$T_TMP/imports/$node" || true
    t_like "$file" "^/dev/shm/stage-py-$uid/fenics-[0-9a-f]{16}/usr/lib/petsc/lib/python3/dist-packages/dolfin/__init__.py$" \
        "$node: dolfin comes from the node's copy"
    t_ok "$node: at least 97% of $total modules come from the copy ($staged)" \
        test $((staged * 100)) -ge $((total * 97))
done
t_done
