#!/bin/bash
# SPDX-License-Identifier: MIT
# Every script of the project through shellcheck: the tests, the benchmarks,
# etc/ and .ci/.  Clean, or each exception commented where it stands (or
# in .shellcheckrc, for those that hold everywhere).
. "${srcdir:-.}/tests/lib.sh"
t_need shellcheck
cd "$T_SRCDIR"
for f in tests/*.t tests/lib.sh tests/fake-rsh tests/bench/*.sh tests/bench/lib.sh \
    etc/*.sh etc/stage-py.sbatch etc/stage-py.cron .ci/run .ci/deps .ci/deb \
    debian/*.postinst debian/*.prerm; do
    [ -f "$f" ] || continue
    case $f in
        *.cron) continue ;;     # a crontab, not a script (tests/scan.t runs its lines)
    esac
    t_ok "shellcheck $f" shellcheck -x "$f"
done
t_done
