# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# lib.sh: prelude for stage-py's TAP test scripts (bash).
#
#     . "$srcdir/tests/lib.sh"
#
# Gives every test a private temporary directory, TAP output helpers and a
# fake cluster: t_cluster runs an MPI job on nodes node1..nodeN, each in its
# own mount + UTS namespace with its own hostname and its own /dev/shm
# (see tests/fake-rsh), so per-node behaviour is tested for real on one host.
#
# Environment knobs:
#   T_KEEP=1          keep $T_TMP after the test (path printed as a diagnostic)
#   T_TRACE=1         set -x
#   T_MPI=openmpi     launcher for t_cluster: openmpi (default) or mpich
#   T_MPI_FLAGS=...   extra launcher flags for t_cluster (split on blanks)
#   T_TIMEOUT=300     hard limit in seconds for one t_cluster job
#   T_WRAP='strace -f -o LOG'   a command that t_cluster runs the launcher under
#   T_SHM_SIZE_nodeK=1m, T_RO_nodeK=1   per-node /dev/shm (see tests/fake-rsh)
#   T_NET_RATE=1gbit  each fake node also in a network namespace of its own,
#                     joined to the others by a link limited to that rate
#                     both ways (tc tbf); T_NET_RATE_nodeK: that node's link;
#                     T_NET_LOSS_nodeK=PCT: loss on it (see t_net_up)

set -eu
if [ "${T_TRACE:-0}" = 1 ]; then set -x; fi
{ : <&0; } 2>/dev/null || exec </dev/null     # jobs below pass stdin on

# ---- where things are ---------------------------------------------------

# Tests run from the build directory with $srcdir exported; when it is not,
# derive it from this file's location (tests/lib.sh).
if [ -z "${srcdir-}" ]; then
    srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
T_SRCDIR=$(cd "$srcdir" && pwd)       # absolute, for the launchers
export srcdir T_SRCDIR

# ---- temporary directory, removed at exit -------------------------------

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/stage-py-test.XXXXXX")
# Readable by others: run as root, stage-py stages only what every user can
# read, and the trees of the tests lie below here.
chmod 755 "$T_TMP"
T_NODES=$T_TMP/nodes                  # node K's /dev/shm is $T_NODES/nodeK/shm
mkdir "$T_NODES"
export T_TMP T_NODES

_t_n=0          # tests run so far
_t_failed=0     # of which failed
_t_plan=        # N once t_plan N was called
_t_finished=0   # t_done / t_skip_all reached
_t_job=         # pid of a running t_cluster job (its timeout process)
_t_child=       # pid of the subshell running a t_ok / t_fails command
_t_filter=      # pid of t_cluster's stderr filter

# _t_stop_job: stop what t_ok / t_cluster started, if still running.
_t_stop_job() {
    local p
    for p in ${_t_child-} ${_t_job-} ${_t_filter-}; do
        kill -TERM "$p" 2>/dev/null || true     # runs in traps: set -e
        wait "$p" 2>/dev/null || true
    done
    _t_child='' _t_job='' _t_filter=''
}

# _t_traps: on a signal, stop the running job, then exit (which runs the
# EXIT trap in the main shell). Re-installed by t_cluster, since subshells
# (t_ok) reset traps.
_t_traps() {
    trap '_t_stop_job; exit 129' HUP
    trap '_t_stop_job; exit 130' INT
    trap '_t_stop_job; exit 143' TERM
}

_t_exit() {
    local rc=$?
    set +e
    _t_stop_job                       # interrupted during a test
    # a test may define t_cleanup (stop its daemons etc.)
    if declare -F t_cleanup >/dev/null; then t_cleanup; fi
    _t_net_down
    # memory cgroups that fake-rsh made for T_MEM_nodeK (empty once the job ended)
    if [ -f "$T_TMP/cgroups" ]; then
        local cg
        while read -r cg; do rmdir "$cg" 2>/dev/null; done <"$T_TMP/cgroups"
    fi
    if [ "$_t_finished" != 1 ] && [ "$rc" != 0 ]; then
        echo "# test script stopped with status $rc after $_t_n tests"
    fi
    if [ "${T_KEEP:-0}" = 1 ]; then
        echo "# T_KEEP=1: kept $T_TMP"
    elif [ -n "$T_TMP" ] && [ -d "$T_TMP" ]; then
        rm -rf "$T_TMP"
    fi
    exit "$rc"
}
trap _t_exit EXIT
_t_traps

# ---- a network between the fake nodes (T_NET_RATE) -------------------------

# With T_NET_RATE set, every fake node is also a network namespace of its
# own (stg<pid>-nodeK), with one veth link (eth0 inside, s<pid>nK outside)
# to a bridge of this test's (sb<pid>), in a /24 of 10.0.0.0/8 that no route
# of the machine uses yet: node K is .K, the bridge .254.  Each link is
# limited to its rate in both directions by a token bucket (tc tbf), so
# traffic between fake nodes costs what it would on a cluster.  Everything
# is removed at the test's exit, also when it is killed (_t_net_down).
_t_net='' _t_net_br=''

# t_net_up NODES: nodes 1..NODES on the network, each link at its rate now
# (T_NET_RATE_nodeK, else T_NET_RATE); t_cluster calls it.
t_net_up() {
    local nodes=$1 k ns host rate loss a b
    # made already, maybe in a subshell (t_ok): its address is on file
    [ -z "$_t_net" ] && [ -f "$T_TMP/net.addr" ] && read -r _t_net _t_net_br <"$T_TMP/net.addr"
    if [ -z "$_t_net" ]; then
        a=$((($$ >> 8) & 255)) b=$(($$ & 255))
        while ip route show | grep -q "^10\.$a\.$b\.0/24 "; do b=$(((b + 1) & 255)); done
        _t_net=10.$a.$b _t_net_br=sb$$
        echo "$_t_net $_t_net_br" >"$T_TMP/net.addr"
        echo "$_t_net_br" >>"$T_TMP/net"
        ip link add "$_t_net_br" type bridge || return 1
        ip addr add "$_t_net.254/24" dev "$_t_net_br"
        ip link set "$_t_net_br" up
    fi
    for ((k = 1; k <= nodes; k++)); do
        ns=stg$$-node$k host=s$$n$k
        if [ ! -e "/run/netns/$ns" ]; then
            echo "$ns $host" >>"$T_TMP/net"
            ip netns add "$ns" || return 1
            ip link add "$host" type veth peer name eth0 netns "$ns" || return 1
            ip link set "$host" master "$_t_net_br" up
            ip -n "$ns" addr add "$_t_net.$k/24" dev eth0
            ip -n "$ns" link set lo up
            ip -n "$ns" link set eth0 up
        fi
        rate=$(eval "printf '%s' \"\${T_NET_RATE_node$k:-$T_NET_RATE}\"")
        tc qdisc replace dev "$host" root tbf rate "$rate" burst 512kb latency 50ms || return 1
        ip netns exec "$ns" tc qdisc replace dev eth0 root tbf rate "$rate" burst 512kb \
            latency 50ms || return 1
        # T_NET_LOSS_nodeK=PCT: that share of the packets coming in to
        # node K is dropped (nftables, in the node's namespace; this
        # kernel has no netem)
        loss=$(eval "printf '%s' \"\${T_NET_LOSS_node$k-}\"")
        ip netns exec "$ns" nft delete table inet stgloss 2>/dev/null || true
        if [ -n "$loss" ]; then
            ip netns exec "$ns" nft -f - <<EOT || return 1
table inet stgloss {
    chain in {
        type filter hook input priority 0;
        iifname "eth0" numgen random mod 1000 < $((loss * 10)) drop
    }
}
EOT
        fi
    done
}

# _t_mpich_tcp_finalize: the path of a library, built once per test
# ($T_TMP), that t_cluster preloads into MPICH ranks whose UCX is held to
# TCP (T_NET_RATE).  Without it such jobs hang in MPI_Finalize whenever one
# rank still calls MPI after another has entered MPI_Finalize: MPICH 4.0.2
# closes every UCX endpoint with a flush, then blocks in a PMI barrier
# without progressing UCX; UCX 1.13's TCP flush sends a zero-length PUT
# and waits for the peer's acknowledgement, and the acknowledgement of a
# peer's flush (sent from inside any MPI call) is itself a send that wants
# a flush.  So a rank that acknowledged a finished peer's flush later
# flushes towards that peer, which sits in the PMI barrier and never
# answers (those 25 bytes stay unread on its socket).  A correct program of
# 20 lines hangs this way over lo too, with or without a token bucket.
# MPICH 4.2 fixed it with a PMI barrier before the endpoints close (commits
# 08d8105b, d6c7cd5b); this library does the same: at the first
# ucp_disconnect_nb, one barrier on the launcher's PMI-1 socket (PMI_FD),
# so every rank flushes its endpoints before any peer stops answering.
# Nothing before MPI_Finalize changes.
_t_mpich_tcp_finalize() {
    local so=$T_TMP/mpich-tcp-finalize.so
    if [ ! -f "$so" ]; then
        cc -O2 -shared -fPIC -o "$so.tmp" -x c - <<'C' || return 1
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* what the ranks start (python) need not load this */
__attribute__((constructor)) static void forget(void) { unsetenv("LD_PRELOAD"); }
static void pmi_barrier(void)
{
    const char *fd_s = getenv("PMI_FD"), *req = "cmd=barrier_in\n";
    char line[256] = "";
    size_t n = 0, len = strlen(req), off = 0;
    if (!fd_s)
        return;     /* a singleton: no launcher */
    int fd = atoi(fd_s);
    while (off < len) {
        ssize_t w = write(fd, req + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    for (;;) {      /* one line and no more: what follows is MPICH's */
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto fail;
        if (c == '\n')
            break;
        if (n < sizeof line - 1)
            line[n++] = c;
    }
    line[n] = '\0';
    if (strncmp(line, "cmd=barrier_out", 15) == 0)
        return;
fail:
    fprintf(stderr, "mpich-tcp-finalize: no PMI barrier (%s)\n", n ? line : strerror(errno));
}
void *ucp_disconnect_nb(void *ep)
{
    static void *(*real)(void *);
    static int met;
    if (!real)
        real = (void *(*)(void *))dlsym(RTLD_NEXT, "ucp_disconnect_nb");
    if (!met) {
        met = 1;
        pmi_barrier();
    }
    return real(ep);
}
C
        mv "$so.tmp" "$so" || return 1
    fi
    printf '%s\n' "$so"
}

# t_net_ns K: node K's network namespace (for ip netns exec).
t_net_ns() { printf 'stg%s-node%s\n' "$$" "$1"; }

# _t_net_down: remove the namespaces, links and bridge that t_net_up made
# (processes left in a namespace are killed first).
_t_net_down() {
    [ -f "$T_TMP/net" ] || return 0
    local ns host pid
    while read -r ns host; do
        [ -n "$host" ] || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip link del "$host" 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done <"$T_TMP/net"
    while read -r ns host; do
        [ -z "$host" ] && ip link del "$ns" 2>/dev/null
    done <"$T_TMP/net"
    rm -f "$T_TMP/net" "$T_TMP/net.addr"
}

# ---- TAP ----------------------------------------------------------------

# t_diag MSG...: print MSG as TAP diagnostic lines ("# ...").
t_diag() {
    printf '%s\n' "$*" | sed 's/^/# /'
}

# t_plan N: announce N tests up front (optional; t_done prints it otherwise).
t_plan() {
    _t_plan=$1
    echo "1..$1"
}

# _t_result STATUS DESC: record and print one result (STATUS 0 = pass).
_t_result() {
    local desc=${2//#/\\#}            # a bare "#" would start a TAP directive
    _t_n=$((_t_n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $_t_n - $desc"
    else
        _t_failed=$((_t_failed + 1))
        echo "not ok $_t_n - $desc"
    fi
}

# _t_show FILE: print FILE as diagnostics (its last ${T_DIAG_LINES:-200} lines).
_t_show() {
    local max=${T_DIAG_LINES:-200} n
    n=$(wc -l <"$1")
    if [ "$n" -gt "$max" ]; then
        t_diag "... ($((n - max)) earlier lines of output not shown)"
    fi
    tail -n "$max" "$1" | sed 's/^/# /'
}

# _t_run CMD...: run CMD in a subshell with errexit in force (it would be
# ignored inside "if"), output to a fresh file named by T_OUT; sets _t_rc.
# The subshell runs in the background (stdin kept) so that a signal to
# this script can stop it at once instead of waiting for it to end.
_t_run() {
    T_OUT=$T_TMP/out.$((_t_n + 1))
    (set -e; "$@") >"$T_OUT" 2>&1 0<&0 &
    _t_child=$!
    _t_rc=0
    wait "$_t_child" || _t_rc=$?
    _t_child=
}

# t_ok DESC CMD...: pass if CMD succeeds. Its stdout+stderr go to the file
# $T_OUT (kept for later checks) and are shown as diagnostics on failure.
t_ok() {
    local desc=$1
    shift
    _t_run "$@"
    if [ "$_t_rc" = 0 ]; then
        _t_result 0 "$desc"
    else
        _t_result 1 "$desc"
        t_diag "command: $* (exit status $_t_rc)"
        _t_show "$T_OUT"
    fi
}

# t_fails DESC CMD...: pass if CMD exits non-zero (output in $T_OUT too).
t_fails() {
    local desc=$1
    shift
    _t_run "$@"
    if [ "$_t_rc" != 0 ]; then
        _t_result 0 "$desc"
    else
        _t_result 1 "$desc"
        t_diag "command: $* (succeeded, expected a failure)"
        _t_show "$T_OUT"
    fi
}

# t_is GOT EXPECTED DESC: pass if the two strings are equal.
t_is() {
    if [ "$1" = "$2" ]; then
        _t_result 0 "$3"
    else
        _t_result 1 "$3"
        t_diag "     got: '$1'"
        t_diag "expected: '$2'"
    fi
}

# t_like GOT REGEX DESC: pass if a line of GOT matches the extended REGEX.
t_like() {
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        _t_result 0 "$3"
    else
        _t_result 1 "$3"
        t_diag "     got: '$1'"
        t_diag "expected to match: $2"
    fi
}

# t_skip N REASON: count N tests as skipped.
t_skip() {
    local i
    for ((i = 0; i < $1; i++)); do
        _t_n=$((_t_n + 1))
        echo "ok $_t_n # SKIP $2"
    done
}

# t_skip_all REASON: skip the whole script (or, if tests already ran, the
# rest of it) and exit.
t_skip_all() {
    if [ "$_t_n" = 0 ] && [ -z "$_t_plan" ]; then
        echo "1..0 # SKIP $*"
        _t_finished=1
        exit 0
    fi
    if [ -n "$_t_plan" ] && [ "$_t_n" -lt "$_t_plan" ]; then
        t_skip $((_t_plan - _t_n)) "$*"
    else
        t_diag "skipping the rest: $*"
    fi
    t_done
}

# t_done: print the plan if t_plan was not used; exit 1 if any test failed
# or the count does not match the plan, 0 otherwise.
t_done() {
    _t_finished=1
    if [ -z "$_t_plan" ]; then
        echo "1..$_t_n"
    elif [ "$_t_n" != "$_t_plan" ]; then
        t_diag "planned $_t_plan tests but ran $_t_n"
        exit 1
    fi
    if [ "$_t_failed" != 0 ]; then
        t_diag "failed $_t_failed of $_t_n tests"
        exit 1
    fi
    exit 0
}

# t_need CMD...: skip the whole script unless every CMD is available.
t_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || t_skip_all "$c not found"
    done
}

# ---- fake cluster -------------------------------------------------------

# t_need_cluster: skip the whole script unless t_cluster can work here: the
# launcher for T_MPI, timeout, and mount namespaces (root) for fake-rsh.
t_need_cluster() {
    case ${T_MPI:-openmpi} in
        mpich) t_need mpiexec.mpich ;;
        *) t_need mpiexec.openmpi ;;
    esac
    t_need unshare timeout
    unshare --mount --uts true 2>/dev/null ||
        t_skip_all "cannot create mount namespaces here (needs root)"
}

# t_need_user: skip the whole script unless it runs as root and the
# ordinary user $T_USER (default stagepy-test, which .ci/run creates)
# exists, for tests that run stage-py as root and as that user (root passes
# every permission check).  Sets user and uid.
t_need_user() {
    t_need setpriv
    user=${T_USER:-stagepy-test}
    [ "$(id -u)" = 0 ] || t_skip_all "needs root to run stage-py as root and as another user"
    id "$user" >/dev/null 2>&1 || t_skip_all "no user '$user' (.ci/run creates it: useradd $user)"
    # shellcheck disable=SC2034  # for the caller
    uid=$(id -u "$user")
}

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# T_MPICC: the MPI compiler matching t_cluster's launcher (a program built
# with one MPI does not start under the other's launcher).
case ${T_MPI:-openmpi} in
    mpich) T_MPICC=mpicc.mpich ;;
    *) T_MPICC=mpicc.openmpi ;;
esac
export T_MPICC

# t_can_limit_memory: true if fake-rsh can put a node in a memory cgroup
# (T_MEM_nodeK): a cgroup file system with the memory controller, writable.
t_can_limit_memory() {
    local base=/sys/fs/cgroup/stage-py-probe-$$
    [ -d /sys/fs/cgroup/memory ] && base=/sys/fs/cgroup/memory/stage-py-probe-$$
    mkdir "$base" 2>/dev/null || return 1
    local ok=1
    [ -e "$base/memory.limit_in_bytes" ] || [ -e "$base/memory.max" ] || ok=0
    rmdir "$base"
    [ "$ok" = 1 ]
}

# t_node_shm K: host-side path of node K's /dev/shm.
t_node_shm() {
    printf '%s\n' "$T_NODES/node$1/shm"
}

# t_cluster NODES PPN CMD...: run CMD as an MPI job of NODES*PPN ranks on
# fake nodes node1..nodeNODES (PPN ranks each). Job stdout/stderr go to ours;
# returns the job's exit status (124 if killed after T_TIMEOUT seconds).
t_cluster() {
    local nodes=$1 ppn=$2 k hosts='' rc
    shift 2
    local np=$((nodes * ppn)) agent=$T_SRCDIR/tests/fake-rsh
    # MPI's own shared-memory segments go here rather than into the nodes'
    # /dev/shm, so a test controls /dev/shm space and contents exactly (a
    # 1 MB node could not even start MPI otherwise: vader wants 4 MB/rank).
    local mpishm=$T_TMP/mpi-shm
    local extra=()
    read -r -a extra <<<"${T_MPI_FLAGS-}"

    for ((k = 1; k <= nodes; k++)); do
        mkdir -p "$T_NODES/node$k/shm"
        chmod 1777 "$T_NODES/node$k/shm"
        hosts=$hosts${hosts:+,}node$k:$ppn
    done
    mkdir -p "$mpishm"
    chmod 1777 "$mpishm"              # also for ranks of an ordinary user (T_AS_USER)
    local -x UCX_POSIX_DIR=$mpishm    # UCX's posix shm transport (both MPIs)
    # A TMPDIR of the job's own: Open MPI keeps its session directories in
    # TMPDIR/ompi.HOST.UID, and the fake nodes of two jobs at once have the
    # same names on the same /tmp; a daemon that ends removes that top
    # directory when it looks empty, under the feet of the other job's
    # daemon that is making its own there, which then dies unseen and the
    # job hangs at launch.
    local -x TMPDIR
    TMPDIR=$(mktemp -d "$T_TMP/mpi-tmp.XXXXXX")
    chmod 1777 "$TMPDIR"              # also for ranks of an ordinary user (T_AS_USER)
    # The network: lo, or with T_NET_RATE the test's bridge (fake-rsh then
    # starts each node in its namespace: T_NET_NS).
    local net=lo iface=lo
    local -x T_NET_NS=''
    if [ -n "${T_NET_RATE-}" ]; then
        t_net_up "$nodes" || { echo "t_cluster: cannot make the network (T_NET_RATE)" >&2; return 2; }
        net=$_t_net.0/24 iface=$_t_net_br T_NET_NS=stg$$-
    fi

    case ${T_MPI:-openmpi} in
    openmpi)
        # --host nodeK:PPN + agent: one orted per fake node, started by
        #   fake-rsh (node names must not be this host's real name, or
        #   Open MPI would start that node locally without the agent);
        # plm_rsh_no_tree_spawn: mpirun starts every orted itself;
        # pml ob1 + btl self,vader,tcp: shared memory within a node, TCP
        #   between nodes (pml ucx would be picked up on some hosts);
        # *_if_include lo: works without any other network interface (with
        #   T_NET_RATE: the nodes' subnet);
        # *_backing_directory: see mpishm above;
        # --bind-to none: 2 cores, many ranks; no hwloc binding.
        set -- mpiexec.openmpi --host "$hosts" -n "$np" --oversubscribe \
            --bind-to none \
            --mca plm_rsh_agent "$agent" \
            --mca plm_rsh_no_tree_spawn 1 \
            --mca pml ob1 --mca btl self,vader,tcp \
            --mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net" \
            --mca btl_vader_backing_directory "$mpishm" \
            --mca osc_sm_backing_directory "$mpishm" \
            --mca osc_rdma_backing_directory "$mpishm" \
            -x UCX_POSIX_DIR \
            "${extra[@]}" "$@"
        ;;
    mpich)
        # hydra: one pmi_proxy per fake node, started by fake-rsh; node
        #   locality (hence MPI_COMM_TYPE_SHARED) comes from hydra;
        # -iface lo: proxies call back to 127.0.0.1, not to this host's
        #   name (which need not resolve); with T_NET_RATE, the bridge.
        # MPICH here is ch4:ucx: UCX identifies a machine by boot id, not
        # host name, so ranks on different fake nodes still talk through
        # UCX shared memory (sysv/posix/cma), not TCP. UCX_TLS=self,tcp
        # would force TCP but then a job hangs in MPI_Finalize as soon as
        # one rank enters it while another still calls MPI (MPICH 4.0.2
        # with UCX 1.13 over TCP: see _t_mpich_tcp_finalize), so it is
        # left alone.
        # With T_NET_RATE, UCX is held to TCP on the nodes' links (it
        # would otherwise reach across them through shared memory), and
        # the ranks preload _t_mpich_tcp_finalize's library for that.
        local ucx=() fin
        if [ -n "$T_NET_NS" ]; then
            fin=$(_t_mpich_tcp_finalize) ||
                { echo "t_cluster: cannot build the MPICH finalize library (cc)" >&2; return 2; }
            ucx=(-genv UCX_TLS tcp -genv UCX_NET_DEVICES eth0 -genv LD_PRELOAD "$fin")
        fi
        set -- mpiexec.mpich -launcher ssh -launcher-exec "$agent" \
            -iface "$iface" -hosts "$hosts" -n "$np" \
            -genv UCX_POSIX_DIR "$mpishm" "${ucx[@]}" \
            "${extra[@]}" "$@"
        ;;
    *)
        echo "t_cluster: T_MPI must be openmpi or mpich, not '$T_MPI'" >&2
        return 2
        ;;
    esac

    # Open MPI's rsh launcher puts each agent in its own process group from
    # both sides of fork(); when the child wins the race (it has exec'd),
    # the parent's setpgid fails with EACCES and mpirun prints a harmless
    # "plm:rsh: Warning: setpgid(...) failed in parent" line now and then.
    # Drop that line from the job's stderr so outputs stay comparable.
    local errfd
    exec {errfd}> >(sed -u \
        '/^\(\[[^]]*\] \)\{0,1\}plm:rsh: Warning: setpgid([0-9,]*) failed in parent /d' >&2)
    _t_filter=$!

    # timeout runs the job in its own process group and signals the whole
    # group, with KILL 10 s after TERM (mpirun then stops its daemons; a
    # daemon that loses mpirun exits by itself). It runs in the background
    # so that an interrupted test can stop it (see _t_stop_job) rather than
    # wait for it. A job in a background process group must not read a
    # terminal, so it then gets /dev/null instead; otherwise it gets our
    # stdin (mpiexec forwards it to rank 0).
    local limit=${T_TIMEOUT:-300} wrap=()
    read -r -a wrap <<<"${T_WRAP-}"
    set -- "${wrap[@]}" "$@"
    # The fake nodes' names are in no DNS, and Open MPI and hydra look
    # every one of them up before they launch: a resolver that drops one
    # query of the pair (A, AAAA) costs 5 s (seen here on 8 nodes, one job
    # in two).  So the job looks names up in files only, through an
    # nsswitch.conf of its own in a mount namespace of its own.
    if [ -f /etc/nsswitch.conf ]; then
        [ -f "$T_TMP/nsswitch.conf" ] ||
            sed 's/^hosts:.*/hosts: files/' /etc/nsswitch.conf >"$T_TMP/nsswitch.conf"
        set -- unshare --mount --propagation private \
            sh -c 'mount --bind "$0" /etc/nsswitch.conf && exec "$@"' "$T_TMP/nsswitch.conf" "$@"
    fi
    _t_traps
    if [ -t 0 ]; then
        timeout -k 10 "$limit" "$@" </dev/null 2>&"$errfd" {errfd}>&- &
    else
        timeout -k 10 "$limit" "$@" 0<&0 2>&"$errfd" {errfd}>&- &
    fi
    _t_job=$!
    exec {errfd}>&-
    rc=0
    wait "$_t_job" || rc=$?
    _t_job=
    # the filter ends once every writer is gone; do not wait forever
    for ((k = 0; k < 100; k++)); do
        kill -0 "$_t_filter" 2>/dev/null || break
        sleep 0.1
    done
    kill "$_t_filter" 2>/dev/null || true
    wait "$_t_filter" 2>/dev/null || true
    _t_filter=
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "t_cluster: MPI job stopped after $limit s: $*" >&2
    fi
    return "$rc"
}

# ---- running stage-py -------------------------------------------------------

# t_run NODES PPN ARGS...: stage-py ARGS on a fake cluster of NODES nodes
# with PPN ranks each (t_cluster); its stdout goes to $T_TMP/stdout, its
# stderr to $T_TMP/stderr.
t_run() {
    local nodes=$1 ppn=$2
    shift 2
    t_cluster "$nodes" "$ppn" "$STAGE_PY" "$@" >"$T_TMP/stdout" 2>"$T_TMP/stderr"
}
# t_out, t_err: what the last t_run printed on stdout, on stderr.
t_out() { cat "$T_TMP/stdout"; }
t_err() { cat "$T_TMP/stderr"; }
# t_stat KEY: KEY of the --stats file $T_TMP/st.json.
t_stat() { t_json "$T_TMP/st.json" "$1"; }
# t_leftovers: what no run may leave on any fake node, however it ended:
# temporary copies, replaced copies, probes of the shared directory.
t_leftovers() { find "$T_NODES" -name '.tmp-*' -o -name '.new-*' -o -name '.probe-*' | wc -l; }
# t_staged_dir FILE: the copy (STAGE_PY_DIR) that the sh settings in FILE name.
t_staged_dir() { sed -n "s|^STAGE_PY_DIR='\(.*\)'; export STAGE_PY_DIR$|\1|p" "$1"; }
# t_copies NAME: the complete copies of manifest NAME on all fake nodes.
t_copies() { find "$T_NODES" -path '*/stage-py-*' -name "$1-*" -prune | wc -l; }

# ---- test data ----------------------------------------------------------

# t_make_tree DIR [FILES] [BYTES]: a small Python package DIR/pkg: FILES
# modules (default 10) and a random blob.bin of BYTES (default 300000).
t_make_tree() {
    local i
    mkdir -p "$1/pkg"
    for ((i = 1; i <= ${2:-10}; i++)); do echo "v = $i" >"$1/pkg/m$i.py"; done
    head -c "${3:-300000}" /dev/urandom >"$1/pkg/blob.bin"
}

# t_json FILE KEY: the top-level value KEY of the JSON object in FILE.
t_json() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# t_make_venv DIR: a venv of Debian's /usr/bin/python3 at DIR, with small
# packages of the test's own installed by pip from local wheels (no
# network): a pure package with a console script (pure-hello), a
# pkgutil-style (nsold) and a PEP 420 (nsnew) namespace package, each split
# over two distributions; a .pth file that adds DIR/src/extra by its
# absolute path and DIR/src/extra2 from an import line; and a C extension
# (cext) linked against DIR/lib/libgreet.so through an $ORIGIN RUNPATH.
t_make_venv() {
    local venv=$1 py=/usr/bin/python3 w=$T_TMP/wheels.$$ site suffix
    "$py" -m venv --without-pip "$venv"
    mkdir -p "$w" "$venv/src/extra" "$venv/src/extra2"
    "$py" - "$w" <<'PY'
import base64, hashlib, os, sys, zipfile
out = sys.argv[1]
def wheel(name, files, entry_points=None):
    dist = name + "-1.0.dist-info"
    files = dict(files)
    files[dist + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % name
    files[dist + "/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: stage-py-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n")
    if entry_points:
        files[dist + "/entry_points.txt"] = entry_points
    record = []
    for p, t in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b"=")
        record.append("%s,sha256=%s,%d" % (p, h.decode(), len(t.encode())))
    files[dist + "/RECORD"] = "\n".join(record + [dist + "/RECORD,,"]) + "\n"
    with zipfile.ZipFile(os.path.join(out, name + "-1.0-py3-none-any.whl"), "w") as z:
        for p, t in files.items():
            z.writestr(p, t)
ext = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
wheel("purepkg", {"purepkg/__init__.py": "def main():\n    print('pure-hello', __file__)\n"},
      "[console_scripts]\npure-hello = purepkg:main\n")
wheel("nsold_a", {"nsold/__init__.py": ext, "nsold/a.py": "X = 'a'\n"})
wheel("nsold_b", {"nsold/__init__.py": ext, "nsold/b.py": "X = 'b'\n"})
wheel("nsnew_x", {"nsnew/x.py": "X = 'x'\n"})
wheel("nsnew_y", {"nsnew/y.py": "X = 'y'\n"})
PY
    "$py" -m pip --python "$venv/bin/python" install --no-index --no-deps \
        --disable-pip-version-check -q "$w"/*.whl
    rm -rf "$w"
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    suffix=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    echo "X = 'extra'" >"$venv/src/extra/extra_mod.py"
    echo "X = 'extra2'" >"$venv/src/extra2/extra2_mod.py"
    printf '%s\n%s\n' "$venv/src/extra" \
        "import sys; p = '$venv/src/extra2'; p in sys.path or sys.path.append(p)" >"$site/extra.pth"
    printf 'const char *greet(void) { return "hello from libgreet"; }\n' >"$venv/src/greet.c"
    cat >"$venv/src/cext.c" <<'C'
#include <Python.h>
const char *greet(void);
static PyObject *hello(PyObject *self, PyObject *args) { return PyUnicode_FromString(greet()); }
static PyMethodDef methods[] = {{"hello", hello, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "cext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_cext(void) { return PyModule_Create(&mod); }
C
    cc -shared -fPIC -o "$venv/lib/libgreet.so" "$venv/src/greet.c"
    # $ORIGIN/../..: from lib/python3.X/site-packages to the env's lib/
    # shellcheck disable=SC2046  # one -I flag, a path without blanks
    cc -shared -fPIC $("$py" -c 'import sysconfig; print("-I" + sysconfig.get_path("include"))') \
        -o "$site/cext$suffix" "$venv/src/cext.c" -L"$venv/lib" -lgreet \
        -Wl,-rpath,'$ORIGIN/../..'
}
