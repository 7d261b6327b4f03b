/* SPDX-License-Identifier: MIT */
/*
 * t-pack: the pack thread and the unpack threads together, as a staging
 * runs them on one node: a tree walked, packed into chunks that go straight
 * to the unpacker, and written below a copy; and a file that changed
 * between the walk and the pack fails the pack, naming it.  (Also what the
 * ThreadSanitizer build of .ci/run runs.)
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk.h"
#include "conf.h"
#include "fixture.h"
#include "log.h"
#include "pack.h"
#include "walk.h"
#include "tap.h"
#include "unpack.h"
#include "util.h"

static char top[4096];

static void put(const char *rel, const char *text, size_t len)
{
    char *p = stg_xasprintf("%s/src/%s", top, rel);
    fx_write(p, text, len, 0);
    free(p);
}

/* Same bytes at the source and in the copy? */
static bool same(const char *rel)
{
    char *a = stg_xasprintf("%s/src/%s", top, rel);
    char *b = stg_xasprintf("copy%s/src/%s", top, rel);
    bool eq = fx_same_file(a, b);
    free(a);
    free(b);
    return eq;
}

/* Walk, then pack (compressed with compress) into chunks of chunk bytes
 * that threads unpack below "copy"; between the walk and the pack,
 * between() runs.  OUT err. */
static int stage(size_t chunk, int threads, const char *compress, void (*between)(void),
                 char *err, size_t len)
{
    char *path = stg_xasprintf("%s/m.ini", top);
    struct stg_conf c;
    struct stg_walk *s = NULL;
    stg_err_take(NULL, 0);
    int rc = fx_load_walk(&c, path, &s);
    free(path);
    if (rc) {
        stg_err_get(err, len);
        stg_conf_free(&c);
        return rc;
    }
    if (between)
        between();
    stg_rm_tree_at(AT_FDCWD, "copy");
    mkdir("copy", 0700);
    struct stg_chunk_pool pool;
    struct stg_chunkq mid;
    stg_chunk_pool_init(&pool, 4, chunk);
    stg_chunkq_init(&mid, pool.n);
    struct stg_pack *p;
    struct stg_unpack *u;
    stg_pack_start(&p, s, compress, &pool.free, &mid);
    stg_unpack_start(&u, "copy", NULL, s->bytes, threads, &mid, &pool.free);
    int prc = stg_pack_join(&p, NULL, NULL, NULL, NULL);
    int urc = stg_unpack_join(&u, NULL);
    stg_err_get(err, len);
    stg_chunkq_destroy(&mid);
    stg_chunk_pool_destroy(&pool);
    stg_walk_free(&s);
    stg_conf_free(&c);
    return prc ? prc : urc;
}

static void touch_later(void)
{
    char *p = stg_xasprintf("%s/src/pkg/a.py", top);
    struct timespec t[2] = {{0, UTIME_OMIT}, {12345, 0}};
    utimensat(AT_FDCWD, p, t, 0);
    free(p);
}

static void swap_for_link(void)
{
    char *d = stg_xasprintf("%s/src/pkg/sub", top), *o = stg_xasprintf("%s/src/pkg/sub.old", top);
    char *t = stg_xasprintf("%s/elsewhere", top);
    if (rename(d, o) < 0 || symlink(t, d) < 0)
        fprintf(stderr, "cannot swap %s\n", d);
    free(d);
    free(o);
    free(t);
}

int main(void)
{
    if (!fx_tmpdir(top, sizeof top, "t-pack"))
        return 1;
    chmod(top, 0755);   /* as root, only what others can reach is staged */
    setenv("STAGE_PY_CONF", "/dev/null", 1);     /* no site file: its defaults */
    char *dirs[] = {fx_path(top, "src"), fx_path(top, "src/pkg"), fx_path(top, "src/pkg/sub"),
                    fx_path(top, "elsewhere"), fx_path(top, "work")};
    for (int i = 0; i < 5; i++) {
        fx_mkdir(dirs[i], 0755);
        free(dirs[i]);
    }
    put("pkg/a.py", "x = 1\n", 6);
    /* half of it random: a compressor's output is then as long as its
     * input, and leaves it while that input is still being read */
    size_t big = 2000000;
    char *blob = stg_xmalloc(big);
    uint64_t x = 88172645463325252u;
    for (size_t i = 0; i < big; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        blob[i] = (char)(i < big / 2 ? i * 7 + i / 255 : x >> 56);
    }
    put("pkg/blob.bin", blob, big);
    free(blob);
    put("pkg/sub/c.txt", "see\n", 4);
    char *other = fx_path(top, "elsewhere/c.txt");
    fx_write_text(other, "ZZZ\n", 0);     /* the same size as sub/c.txt */
    free(other);
    char *m = fx_path(top, "m.ini"), *trees = stg_xasprintf("[tree a]\nsource = %s/src\n", top);
    fx_manifest(m, "t", trees);
    free(trees);
    free(m);
    char *work = stg_xasprintf("%s/work", top);
    if (chdir(work) < 0)
        return 1;
    free(work);

    char err[STG_MSG_MAX];
    for (int threads = 1; threads <= 3; threads++) {
        for (size_t chunk = 4096; chunk <= 65536; chunk *= 16) {
            int rc = stage(chunk, threads, NULL, NULL, err, sizeof err);
            ok(rc == STG_OK && same("pkg/a.py") && same("pkg/blob.bin") && same("pkg/sub/c.txt"),
               "%d unpack thread(s), %zu-byte chunks: the copy is the tree (%s)", threads,
               chunk, err);
        }
    }
    /* compressed on the wire: the compressor's output fills the chunks, so
     * file data must not be read into them */
    for (int k = 0; stg_compressions[k]; k++) {
        for (size_t chunk = 4096; chunk <= 65536; chunk *= 16) {
            int rc = stage(chunk, 2, stg_compressions[k], NULL, err, sizeof err);
            ok(rc == STG_OK && same("pkg/a.py") && same("pkg/blob.bin") && same("pkg/sub/c.txt"),
               "compressed with %s, %zu-byte chunks: the copy is the tree (%s)",
               stg_compressions[k], chunk, err);
        }
    }
    int rc = stage(4096, 2, NULL, touch_later, err, sizeof err);
    ok(rc != STG_OK && strstr(err, "/src/pkg/a.py' changed while it was being staged"),
       "a file changed after the walk: the pack fails, naming it (%s)", err);
    rc = stage(4096, 2, "zstd", swap_for_link, err, sizeof err);
    ok(rc != STG_OK && strstr(err, "/src/pkg/sub/c.txt' changed while it was being staged"),
       "a directory swapped for a link after the walk: the pack fails (%s)", err);
    char *leak = stg_xasprintf("copy%s/src/pkg/sub/c.txt", top);
    struct stat st;
    FILE *c = fopen(leak, "r");
    char got[8] = "";
    if (c) {
        if (!fgets(got, sizeof got, c))
            got[0] = '\0';
        fclose(c);
    }
    ok(strcmp(got, "ZZZ\n") != 0 || stat(leak, &st) < 0, "... and nothing of the link's target "
       "is in the copy");
    free(leak);
    /* what an interpreter run as a user wrote: that user's own, one name */
    struct stg_walk add = {0};
    char *mine = stg_xasprintf("%s/src/pkg/a.py", top);
    stg_err_take(NULL, 0);
    rc = stg_walk_add_file(&add, "x/y.pyc", mine, NULL, 65534);
    stg_err_get(err, sizeof err);
    ok(rc != STG_OK && strstr(err, "written for uid 65534, but owned by uid"),
       "a file that a user's interpreter hands back, not the user's: refused (%s)", err);
    rc = stg_walk_add_file(&add, "x/y.pyc", mine, NULL, geteuid());
    ok(rc == STG_OK && stg_walk_has(&add, "x/y.pyc"), "... and its own: added");
    free(mine);
    for (size_t i = 0; i < add.n; i++) {
        free(add.v[i].path);
        free(add.v[i].src);
        free(add.v[i].link);
    }
    free(add.v);
    stg_strset_free(&add.set);
    if (chdir("/") == 0)
        stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
