/* SPDX-License-Identifier: MIT */
/*
 * stage: manifest -> scan -> (pack | broadcast | unpack) -> environment.
 *
 * Phases, each ending in stg_agree() on the world, so that no rank waits for
 * data that is not coming and every rank leaves with the same status:
 *   1. plan:    the root reads the manifest and walks the trees; then the
 *               plan (destination, name, key) goes to every rank;
 *   2. prepare: each leader checks its per-user directory, its ranks check
 *               that they share it, and cold leaders make a private
 *               temporary directory;
 *   3. stream:  the archive goes to every leader, which unpacks it, checks
 *               the digest and renames the copy into place;
 *   4. settings: the root writes the environment settings.
 */
#include "config.h"

#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcast.h"
#include "cache.h"
#include "log.h"
#include "manifest.h"
#include "scan.h"
#include "util.h"

/* What every rank needs to know once the root has scanned. */
struct plan {
    char dest[PATH_MAX];
    char name[80];
    char key[24];
    uint64_t chunk_size;
    int depth;
};

struct times {
    double start, scan0, scan1;
    struct stg_bcast_result br;
    double unpack_max, bcast_max;   /* slowest leader */
};

static const char *dest_of(const struct stg_opts *o, const struct stg_manifest *m)
{
    if (o->dest)
        return o->dest;
    if (m && m->dest)
        return m->dest;
    return STG_DEFAULT_DEST;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static double rel(double t, double t0) { return t > 0 ? t - t0 : 0; }

/* --stats FILE: one JSON object, written by the root, also on failure. */
static void write_stats(const struct stg_opts *o, const struct stg_node *n,
                        const struct stg_scan *scan, const struct plan *p,
                        const struct times *t, int status, const char *msg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    const struct stg_bcast_result *b = &t->br;
    double end = stg_now();
    fprintf(f, "{\n  \"status\": %d,\n  \"error\": ", status);
    json_str(f, status ? msg : "");
    fprintf(f, ",\n  \"ranks\": %d,\n  \"nodes\": %d,\n", n->size, n->nnodes);
    fprintf(f, "  \"name\": ");
    json_str(f, p->name);
    fprintf(f, ",\n  \"key\": ");
    json_str(f, p->key);
    fprintf(f, ",\n  \"files\": %llu,\n  \"bytes\": %llu,\n",
            (unsigned long long)(scan ? scan->files : 0),
            (unsigned long long)(scan ? scan->bytes : 0));
    fprintf(f, "  \"bytes_broadcast\": %llu,\n  \"chunks\": %llu,\n",
            (unsigned long long)b->stream_bytes, (unsigned long long)b->chunks);
    fprintf(f, "  \"chunk_size\": %llu,\n  \"pipeline_depth\": %d,\n",
            (unsigned long long)o->chunk_size, o->depth);
    fprintf(f, "  \"seconds\": {\"scan\": %.6f, \"pack\": %.6f, \"broadcast\": %.6f, "
            "\"unpack\": %.6f, \"total\": %.6f},\n",
            t->scan1 - t->scan0, b->t_pack1 - b->t_pack0, t->bcast_max, t->unpack_max,
            end - t->start);
    /* Start and end of each phase on the root's node, in seconds since the
     * start: overlapping intervals show the pipeline at work. */
    fprintf(f, "  \"timeline\": {\"scan\": [%.6f, %.6f], \"pack\": [%.6f, %.6f], "
            "\"broadcast\": [%.6f, %.6f], \"unpack\": [%.6f, %.6f]}\n}\n",
            rel(t->scan0, t->start), rel(t->scan1, t->start),
            rel(b->t_pack0, t->start), rel(b->t_pack1, t->start),
            rel(b->t_bcast0, t->start), rel(b->t_bcast1, t->start),
            rel(b->t_unpack0, t->start), rel(b->t_unpack1, t->start));
    if (fclose(f) != 0) {
        free(text);
        return;
    }
    char err[STG_MSG_MAX];
    if (stg_write_atomic(o->stats, text, len, err, sizeof err) < 0)
        stg_log_warn("--stats: %s", err);
    free(text);
}

/* Phase 1, on the root: manifest and scan. */
static int plan_root(const struct stg_opts *o, struct stg_manifest **m, struct stg_scan **scan,
                     struct plan *p, struct times *t)
{
    char err[STG_MSG_MAX];
    int rc = stg_manifest_load(o->manifest, true, m, err, sizeof err);
    if (rc)
        return stg_err_set(rc, "%s", err);
    const char *dest = dest_of(o, *m);
    if (strlen(dest) >= sizeof p->dest - 128)
        return stg_err_set(STG_EUSAGE, "destination '%.64s...' is too long", dest);
    snprintf(p->dest, sizeof p->dest, "%s", dest);
    snprintf(p->name, sizeof p->name, "%s", (*m)->name);
    t->scan0 = stg_now();
    rc = stg_scan_run(*m, scan);
    t->scan1 = stg_now();
    if (rc)
        return rc;
    snprintf(p->key, sizeof p->key, "%s", (*scan)->key);
    char sz[32];
    stg_log_info("scanned %llu entries, %s, in %.3f s; key %s",
                 (unsigned long long)(*scan)->files,
                 stg_format_size((*scan)->bytes, sz, sizeof sz), t->scan1 - t->scan0, p->key);
    return STG_OK;
}

/* Phase 4, on the root: the settings, to --output or stdout. */
static int write_settings(const struct stg_opts *o, const struct stg_manifest *m,
                          const char *root)
{
    struct stg_env env;
    stg_env_build(m, root, &env);
    char err[STG_MSG_MAX];
    char *text = stg_env_render(&env, o->shell, err, sizeof err);
    stg_env_free(&env);
    if (!text)
        return stg_err_set(STG_EFAIL, "%s", err);
    int rc = STG_OK;
    if (o->output) {
        if (stg_write_atomic(o->output, text, strlen(text), err, sizeof err) < 0)
            rc = stg_err_set(STG_EFAIL, "--output: %s", err);
    } else if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
        rc = stg_err_set(STG_EFAIL, "cannot write the settings to stdout: %s", strerror(errno));
    }
    free(text);
    return rc;
}

int stg_stage_run(const struct stg_opts *o, struct stg_node *n)
{
    struct times t;
    memset(&t, 0, sizeof t);
    t.start = stg_now();
    struct plan p;
    memset(&p, 0, sizeof p);
    struct stg_manifest *m = NULL;
    struct stg_scan *scan = NULL;
    struct stg_cache cache = {.fd = -1};
    char *copy = NULL, *tmp = NULL;
    char msg[STG_MSG_MAX] = "";
    bool warm = false;
    int rc = STG_OK;

    /* 1. plan: only the root touches the shared file system. */
    if (n->is_root) {
        rc = plan_root(o, &m, &scan, &p, &t);
        p.chunk_size = o->chunk_size;
        p.depth = o->depth;
    }
    rc = stg_agree(n, n->world, rc, msg);
    if (rc)
        goto out;
    MPI_Request req;
    MPI_Ibcast(&p, (int)sizeof p, MPI_BYTE, 0, n->world, &req);    /* the plan, to all */
    stg_node_wait(&req);
    copy = stg_cache_copy_name(p.name, p.key);

    /* 2. prepare: a checked per-user directory that all local ranks share. */
    if (n->is_leader)
        rc = stg_cache_open(&cache, p.dest);
    char *dir = stg_xasprintf("%s/stage-py-%u", p.dest, (unsigned)geteuid());
    int src = stg_node_check_shared(n, dir, rc == STG_OK);
    free(dir);
    rc = rc ? rc : src;
    if (n->is_leader && rc == STG_OK) {
        warm = stg_cache_has(&cache, copy);
        if (warm)
            stg_log_info("'%s/%s' is already here", cache.dir, copy);
        else
            rc = stg_cache_tmp_new(&cache, copy, &tmp);
    }
    rc = stg_agree(n, n->world, rc, msg);
    if (rc)
        goto out;

    /* 3. stream: leaders only; the other ranks wait in the agreement. */
    if (n->is_leader) {
        int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        /* libarchive's disk writer takes paths: work relative to the checked
         * directory, not through a path that could be swapped meanwhile. */
        if (fchdir(cache.fd) < 0)
            rc = stg_err_set(STG_EFAIL, "cannot enter '%s': %s", cache.dir, strerror(errno));
        struct stg_bcast_args ba = {
            .node = n, .chunk_size = p.chunk_size, .depth = p.depth,
            .scan = scan, .unpack = !warm && rc == STG_OK, .prefix = tmp,
        };
        int brc = stg_bcast_run(&ba, &t.br);
        rc = rc ? rc : brc;
        if (cwd >= 0) {
            if (fchdir(cwd) < 0)
                stg_log_warn("cannot return to the working directory: %s", strerror(errno));
            close(cwd);
        }
        if (tmp && rc == STG_OK)
            rc = stg_cache_commit(&cache, tmp, copy);
        else if (tmp)
            stg_cache_discard(&cache, tmp);
        free(tmp);
        tmp = NULL;
        if (rc == STG_OK)
            stg_log_info("'%s/%s' complete: %llu entries, %.3f s", cache.dir, copy,
                         (unsigned long long)t.br.entries, t.br.t_bcast1 - t.br.t_bcast0);
    }
    rc = stg_agree(n, n->world, rc, msg);
    /* The slowest node's times, for --stats (after the agreement, so that
     * waiting ranks never spin in a blocking reduction). */
    double mine[2] = {t.br.t_unpack1 - t.br.t_unpack0, t.br.t_bcast1 - t.br.t_bcast0};
    double max[2] = {0, 0};
    MPI_Ireduce(mine, max, 2, MPI_DOUBLE, MPI_MAX, 0, n->world, &req);
    stg_node_wait(&req);
    t.unpack_max = max[0];
    t.bcast_max = max[1];
    if (rc)
        goto out;

    /* 4. settings: only now does every node hold a complete copy. */
    if (n->is_root) {
        char *root = stg_xasprintf("%s/stage-py-%u/%s", p.dest, (unsigned)geteuid(), copy);
        rc = write_settings(o, m, root);
        free(root);
    }
    rc = stg_agree(n, n->world, rc, msg);

out:
    /* A temporary directory of a run that failed elsewhere: never left behind. */
    if (n->is_leader && tmp)
        stg_cache_discard(&cache, tmp);
    if (n->is_root) {
        if (rc) {
            fprintf(stderr, "stage-py: %s\n", msg);
            if (!o->output)
                fputs(stg_env_failure(o->shell), stdout);
        }
        if (o->stats)
            write_stats(o, n, scan, &p, &t, rc, msg);
    }
    if (n->is_leader)
        stg_cache_close(&cache);
    free(tmp);
    free(copy);
    stg_scan_free(&scan);
    stg_manifest_free(&m);
    return rc;
}
