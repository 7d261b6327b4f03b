/* SPDX-License-Identifier: MIT */
/*
 * t-stream: the whole way of the archive on the fake cluster
 * (tests/unit-mpi.t; 3 nodes of 2 ranks): the root walks a small tree
 * (a manifest and stg_walk_run, as t-pack.c does), stg_stream_run packs
 * it, sends it down the leaders' tree and every leader (the root too)
 * unpacks it into a temporary directory of its own; every copy must equal
 * the source.  Then a leader that cannot write its copy stops the stream
 * for everyone, and the agreement names it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agree.h"
#include "conf.h"
#include "fixture.h"
#include "log.h"
#include "mpitap.h"
#include "node.h"
#include "stream.h"
#include "util.h"
#include "walk.h"
#include "watchdog.h"

static struct stg_node n;
static struct stg_watchdog w;
static char base[4096];     /* the test's directory, the same on every rank */

static void put(const char *rel, const char *text, size_t len, mode_t mode)
{
    char *p = stg_xasprintf("%s/src/%s", base, rel);
    fx_write(p, text, len, mode);
    free(p);
}

/* The source tree: files of several sizes and modes, an empty file and an
 * empty directory, a deep directory, relative links, fixed mtimes. */
static void make_tree(void)
{
    const char *dirs[] = {"src", "src/pkg", "src/pkg/sub", "src/pkg/sub/deeper", "src/pkg/empty",
                          "src/data"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char *d = fx_path(base, dirs[i]);
        fx_mkdir(d, 0755);
        free(d);
    }
    put("pkg/__init__.py", "ANSWER = 42\n", 12, 0644);
    put("pkg/mod.py", "def f():\n    return 'mod'\n", 26, 0644);
    put("pkg/run.sh", "#!/bin/sh\necho run\n", 19, 0755);
    put("pkg/nothing", "", 0, 0644);
    put("pkg/sub/deeper/leaf.py", "leaf = True\n", 12, 0444);
    size_t big = 700001;    /* many chunks, the last one partial */
    char *blob = stg_xmalloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)((i * 2654435761u) >> 11);
    put("data/blob.bin", blob, big, 0644);
    free(blob);
    char *l = stg_xasprintf("%s/src/pkg/link.py", base);
    if (symlink("mod.py", l) < 0)
        perror(l);
    free(l);
    l = stg_xasprintf("%s/src/pkg/datalink", base);
    if (symlink("../data", l) < 0)
        perror(l);
    free(l);
    /* fixed times, deepest first, so that no later write changes them */
    const char *timed[] = {"pkg/sub/deeper/leaf.py", "pkg/sub/deeper", "pkg/sub", "pkg/mod.py",
                           "data/blob.bin", "pkg/link.py"};
    for (size_t i = 0; i < sizeof timed / sizeof *timed; i++) {
        char *p = stg_xasprintf("%s/src/%s", base, timed[i]);
        struct timespec t[2] = {{1000000000, 123456789}, {1000000000 + (long)i, 987654321}};
        utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW);
        free(p);
    }
    char *m = fx_path(base, "m.ini"), *trees = stg_xasprintf("[tree a]\nsource = %s/src\n", base);
    fx_manifest(m, "t", trees);
    free(trees);
    free(m);
}

/* Is the tree at b the tree at a (names, types, modes, sizes, contents,
 * link targets, mtimes to the nanosecond)?  OUT why. */
static bool same_tree(const char *a, const char *b, char *why, size_t len)
{
    struct stat sa, sb;
    if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0) {
        snprintf(why, len, "'%s': %s", b, strerror(errno));
        return false;
    }
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT) ||
        (sa.st_mode & 07777) != (sb.st_mode & 07777) ||
        (!S_ISDIR(sa.st_mode) && sa.st_size != sb.st_size)) {
        snprintf(why, len, "'%s': mode %o size %lld, the source's %o %lld", b,
                 (unsigned)sb.st_mode, (long long)sb.st_size, (unsigned)sa.st_mode,
                 (long long)sa.st_size);
        return false;
    }
    if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec) {
        snprintf(why, len, "'%s': another mtime", b);
        return false;
    }
    if (S_ISLNK(sa.st_mode)) {
        char ta[4096], tb[4096];
        ssize_t ka = readlink(a, ta, sizeof ta - 1), kb = readlink(b, tb, sizeof tb - 1);
        if (ka < 0 || kb != ka || memcmp(ta, tb, (size_t)ka) != 0) {
            snprintf(why, len, "'%s': another link target", b);
            return false;
        }
        return true;
    }
    if (S_ISREG(sa.st_mode)) {
        bool eq = fx_same_file(a, b);
        if (!eq)
            snprintf(why, len, "'%s': other bytes", b);
        return eq;
    }
    if (!S_ISDIR(sa.st_mode))
        return true;
    /* The same names on both sides, each the same. */
    int count[2] = {0, 0};
    const char *dirs[2] = {a, b};
    for (int side = 0; side < 2; side++) {
        DIR *d = opendir(dirs[side]);
        if (!d) {
            snprintf(why, len, "'%s': %s", dirs[side], strerror(errno));
            return false;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            count[side]++;
            if (side == 1)
                continue;
            char *ca = stg_xasprintf("%s/%s", a, e->d_name);
            char *cb = stg_xasprintf("%s/%s", b, e->d_name);
            bool eq = same_tree(ca, cb, why, len);
            free(ca);
            free(cb);
            if (!eq) {
                closedir(d);
                return false;
            }
        }
        closedir(d);
    }
    if (count[0] != count[1]) {
        snprintf(why, len, "'%s': %d entries, the source has %d", b, count[1], count[0]);
        return false;
    }
    return true;
}

struct shared {             /* what the root tells everyone about the walk */
    int rc;
    unsigned long long entries, bytes;
};

/* One stream: every leader unpacks below prefix (relative to base). */
static int stream(const struct stg_walk *s, const struct shared *sh, size_t chunk, int depth,
                  int threads, const char *prefix, struct stg_stream_result *r)
{
    memset(r, 0, sizeof *r);
    if (!n.is_leader)
        return STG_OK;
    MPI_Comm comm, votes;
    MPI_Comm_dup(n.leaders, &comm);
    MPI_Comm_dup(comm, &votes);
    struct stg_stream_args a = {
        .watch = &w, .comm = comm, .votes = votes, .members = n.nnodes,
        .chunk_size = chunk, .depth = depth, .unpack_threads = threads,
        .scan = s, .bundle = NULL, .unpack = true, .prefix = prefix, .relocate_root = NULL,
        .need = sh->bytes, .vote_every = depth < 2 ? 2 : depth, .stop_on_failure = true,
        .corrupt_seq = -1,
    };
    int rc = stg_stream_run(&a, r);
    MPI_Comm_free(&votes);
    MPI_Comm_free(&comm);
    return rc;
}

static int agree(int rc, char msg[STG_MSG_MAX])
{
    return mt_agree(&w, &n, "stream", rc, msg);
}

static void test_copies(const struct stg_walk *s, const struct shared *sh, size_t chunk,
                        int depth, int threads)
{
    char prefix[64], msg[STG_MSG_MAX], err[STG_MSG_MAX], why[1024] = "";
    snprintf(prefix, sizeof prefix, "copy-%zu-%d-%d-%d", chunk, depth, threads, n.leader_rank);
    if (n.is_leader && mkdir(prefix, 0700) < 0)
        perror(prefix);
    struct stg_stream_result r;
    stg_err_take(NULL, 0);
    int rc = stream(s, sh, chunk, depth, threads, prefix, &r);
    stg_err_get(err, sizeof err);
    char *src = stg_xasprintf("%s/src", base);
    char *copy = stg_xasprintf("%s/%s%s/src", base, prefix, base);
    bool same = !n.is_leader || (rc == STG_OK && same_tree(src, copy, why, sizeof why));
    mt_ok(same, mt_fmt("status %d (%s): %s", rc, err, why),
          "%zu-byte chunks, depth %d, %d unpack thread(s): every leader's copy is the tree",
          chunk, depth, threads);
    /* The same stream everywhere. */
    struct {
        unsigned long long bytes, chunks;
        unsigned char digest[STG_DIGEST_LEN];
    } mine = {r.stream_bytes, r.chunks, {0}}, root;
    memcpy(mine.digest, r.digest, sizeof mine.digest);
    root = mine;
    if (n.is_leader)
        MPI_Bcast(&root, sizeof root, MPI_BYTE, 0, n.leaders);
    mt_ok(!n.is_leader || (memcmp(&mine, &root, sizeof mine) == 0 && r.chunks > 1 &&
                           r.stream_bytes > (unsigned long long)sh->bytes && !r.stopped),
          mt_fmt("%llu bytes in %llu chunks, stopped %d; the root's: %llu in %llu",
                 (unsigned long long)r.stream_bytes, (unsigned long long)r.chunks, r.stopped,
                 root.bytes, root.chunks),
          "... the same stream (bytes, chunks, digest) on every leader, not stopped");
    mt_ok(!n.is_leader || (r.entries == sh->entries && r.unpacked_bytes == sh->bytes),
          mt_fmt("%llu entries, %llu bytes unpacked; the walk: %llu, %llu",
                 (unsigned long long)r.entries, (unsigned long long)r.unpacked_bytes,
                 sh->entries, sh->bytes),
          "... every leader unpacked every entry and byte that the root walked");
    agree(rc, msg);
    free(src);
    free(copy);
}

/* The last leader cannot write its copy: a name too long for the file
 * system (ENAMETOOLONG; root passes any permission check) on its way. */
static void test_failure(const struct stg_walk *s, const struct shared *sh)
{
    char prefix[512], msg[STG_MSG_MAX], err[STG_MSG_MAX];
    bool bad = n.leader_rank == n.nnodes - 1;
    if (bad) {
        memset(prefix, 'x', 300);
        snprintf(prefix + 300, sizeof prefix - 300, "/copy");
    } else {
        snprintf(prefix, sizeof prefix, "copy-fail-%d", n.leader_rank);
        if (n.is_leader && mkdir(prefix, 0700) < 0)
            perror(prefix);
    }
    struct stg_stream_result r;
    stg_err_take(NULL, 0);
    int rc = stream(s, sh, 4096, 2, 2, prefix, &r);
    stg_err_get(err, sizeof err);
    mt_ok(!bad || (rc != STG_OK && strstr(err, "unpack '/") && strstr(err, strerror(ENAMETOOLONG))),
          mt_fmt("status %d: '%s'", rc, err),
          "a leader that cannot write its copy fails, saying where and why");
    mt_ok(!n.is_leader || (r.stopped && r.chunks < 700001 / 4096),
          mt_fmt("stopped %d after %llu chunks", r.stopped, (unsigned long long)r.chunks),
          "... and the stream stops early on every leader");
    char names[64] = "";
    if (n.is_root || bad) {
        /* the failing node's name, to the root */
        if (bad && !n.is_root)
            MPI_Send(n.name, 64, MPI_CHAR, 0, 5, n.leaders);
        else if (n.is_root && !bad)
            MPI_Recv(names, 64, MPI_CHAR, n.nnodes - 1, 5, n.leaders, MPI_STATUS_IGNORE);
        else
            snprintf(names, sizeof names, "%s", n.name);
    }
    MPI_Bcast(names, 64, MPI_CHAR, 0, n.world);
    int arc = agree(rc, msg);
    char *want = stg_xasprintf("%s: ", names);
    mt_ok(arc != STG_OK && strncmp(msg, want, strlen(want)) == 0 &&
              strstr(msg, strerror(ENAMETOOLONG)),
          mt_fmt("status %d: '%s'", arc, msg),
          "... and the agreement carries its message, naming its node");
    free(want);
}

int main(int argc, char **argv)
{
    mt_start(&argc, &argv, &n, &w);
    stg_watchdog_set_timeout(&w, 240);
    if (n.is_root) {
        if (!fx_tmpdir(base, sizeof base, "t-stream"))
            base[0] = '\0';
        else {
            chmod(base, 0755);  /* as root, only what others can reach is staged */
            make_tree();
        }
    }
    MPI_Bcast(base, sizeof base, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!base[0] || chdir(base) < 0) {
        if (n.rank == 0)
            printf("1..0 # SKIP no temporary directory\n");
        MPI_Finalize();
        return 0;
    }

    /* The root walks the tree. */
    struct stg_conf c = {0};
    struct stg_walk *s = NULL;
    struct shared sh = {STG_OK, 0, 0};
    char err[STG_MSG_MAX] = "";
    if (n.is_root) {
        setenv("STAGE_PY_CONF", "/dev/null", 1);     /* no site file: its defaults */
        sh.rc = fx_load_walk(&c, "m.ini", &s);
        if (s) {
            sh.entries = s->n;
            sh.bytes = s->bytes;
        }
        stg_err_take(err, sizeof err);
    }
    MPI_Bcast(&sh, sizeof sh, MPI_BYTE, 0, MPI_COMM_WORLD);
    mt_ok(sh.rc == STG_OK, n.is_root ? err : NULL,
          "the root walks its tree: %llu entries, %llu bytes", sh.entries, sh.bytes);
    if (sh.rc == STG_OK) {
        test_copies(s, &sh, 4096, 1, 1);
        test_copies(s, &sh, 65536, 2, 2);
        test_copies(s, &sh, 10000, 4, 3);
        test_failure(s, &sh);
    }
    stg_walk_free(&s);
    if (n.is_root)
        stg_conf_free(&c);
    MPI_Barrier(MPI_COMM_WORLD);
    if (n.is_root && chdir("/") == 0)
        stg_rm_tree_at(AT_FDCWD, base);
    return mt_finish(&n, &w, mt_done());
}
