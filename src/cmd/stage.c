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

#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agree.h"
#include "bcast.h"
#include "bundle.h"
#include "conf.h"
#include "cache.h"
#include "hash.h"
#include "log.h"
#include "output.h"
#include "manifest.h"
#include "pyenv.h"
#include "walk.h"
#include "site.h"
#include "space.h"
#include "stream.h"
#include "testhook.h"
#include "unpack.h"
#include "util.h"
#include "watchdog.h"

/* The root's files: opened in phase 1, so that a wrong path fails before
 * anything is staged; the settings written in phase 4, --stats at the
 * end, also after a failure. */
struct outputs {
    struct stg_output settings, stats;
    bool have_settings, have_stats;
};

static int open_outputs(const struct stg_opts *o, struct outputs *w)
{
    int rc;
    if (o->output && (rc = stg_output_open(&w->settings, o->output, 0, "--output")) != STG_OK)
        return rc;
    w->have_settings = o->output != NULL;
    if (o->stats && (rc = stg_output_open(&w->stats, o->stats, 0, "--stats")) != STG_OK)
        return rc;
    w->have_stats = o->stats != NULL;
    return STG_OK;
}

/* Whatever was not written is not left behind either. */
static void abort_outputs(struct outputs *w)
{
    if (w->have_settings)
        stg_output_abort(&w->settings);
    if (w->have_stats)
        stg_output_abort(&w->stats);
    w->have_settings = w->have_stats = false;
}

/* What every rank needs to know once the root has scanned. */
struct plan {
    char dest[PATH_MAX];
    char name[80];
    char key[24];
    uint64_t chunk_size;
    int depth;
    int algo;               /* enum stg_bcast_algo */
    char compress[8];       /* the stream's: the trees' archive's, or the bundle's */
    char bundle[PATH_MAX];  /* the bundle streamed, for messages; "": the trees */
    int unpack_threads;
    uint64_t bytes, files;  /* what the copy holds */
    uint64_t headroom;
    int skip_failed;
    double timeout;
    int force;              /* re-stage where a copy is present */
    int reuse;              /* copies made by other jobs may be used (site) */
    uint64_t max_cache;     /* the cache budget; 0: none */
    char max_cache_from[192];   /* where it was set, for messages */
    uint64_t node_cap;      /* the site's max_node_cache; 0: none */
    char node_cap_from[192];
    char allow_fs[128];     /* the site's allow_fs */
    double lock_wait;       /* bound on waiting for another run's copy */
    int relocate;           /* a whole environment: point its paths at the copy */
};

struct times {
    double start, scan0, scan1;
    struct stg_stream_result br;
    double unpack_max, bcast_max;   /* slowest leader */
    int cold;                       /* nodes that received the stream */
    int waited;                     /* nodes that waited for another run's copy */
    int rounds;                     /* transfers tried (a second one is rare) */
    int depth;                      /* chunks in flight, as used; 0: no transfer */
};

/*
 * One staging run on one rank: every phase takes this one handle (as
 * libarchive's calls take one struct archive), and reads and writes what
 * its rank holds.  Static in stg_cmd_stage(): the exit handler of a signal
 * may still need it after that has returned.
 */
struct run {
    const struct stg_opts *o;
    struct stg_node *n;
    struct stg_watchdog *w;     /* checked wherever this rank waits */
    struct plan p;              /* the same on every rank after phase 1 */
    struct times t;
    struct stg_conf conf;       /* the root's: site file and manifest */
    struct stg_manifest *m;     /* the root's: conf.m */
    struct stg_walk *walk;      /* the root's, staging from the trees */
    struct stg_bundle bundle;   /* the root's, staging from a bundle */
    struct outputs outs;        /* the root's files */
    struct stg_cache cache;     /* leaders: the per-user directory */
    char *copy;                 /* "<name>-<key>" */
    char *tmp;                  /* a leader making the copy: its temporary directory */
    char job[128];              /* whose pins */
    enum stg_claim claim;
    bool skipped;               /* --on-node-failure skip set this node aside */
    bool waits;                 /* this node waits for another run's copy */
    int rc;                     /* this rank's status */
    char msg[STG_MSG_MAX];      /* the agreed error */
    char failed_nodes[STG_MSG_MAX];     /* the root: nodes set aside, "name\n" each */
};

/* What a signal must not leave behind: this run's temporary directory and
 * the root's unwritten outputs. */
static void cleanup_on_signal(void *arg)
{
    struct run *r = arg;
    if (r->cache.fd >= 0 && r->tmp)
        stg_cache_discard(&r->cache, r->tmp);
    if (r->n->is_root)
        abort_outputs(&r->outs);
    /* The run ends here (a signal, the timeout): make `eval "$(stage-py)"` fail. */
    if (r->n->is_root && !r->o->output) {
        fputs(stg_env_failure(r->o->shell), stdout);
        fflush(stdout);
    }
}

/* "the manifest's KEY (file:line)": where a value came from. */
static char *from_manifest(const struct stg_manifest *m, const char *key, int line)
{
    return stg_xasprintf("the manifest's %s (%s:%d)", key, m->path, line);
}

/* config's table: setting, value, where it came from; one row each, every
 * cell escaped (stg_log_escape()) so that no name can break a row. */
struct shown {
    struct stg_strv col[3];
};

/* config: one setting (shown NULL: staging, which shows nothing). */
static void show(struct shown *shown, const char *key, const char *value, const char *from)
{
    if (!shown)
        return;
    const char *cell[3] = {key, value, from};
    for (int k = 0; k < 3; k++) {
        char e[STG_MSG_MAX];
        snprintf(e, sizeof e, "%s", cell[k]);
        stg_log_escape(e, sizeof e);
        stg_strv_push(&shown->col[k], e);
    }
}

/* A duration; zero says what it means for this setting. */
static const char *seconds(double s, const char *zero, char *buf, size_t len)
{
    if (s == 0)
        return zero;
    snprintf(buf, len, "%gs", s);
    return buf;
}

static const char *size_or_none(uint64_t n, char *buf, size_t len)
{
    return n ? stg_format_size(n, buf, len) : "0 (none)";
}

/* A setting that the site file may give, else the default. */
static char *from_site(const struct stg_site *site, const char *key, int line)
{
    return line ? stg_site_where(site, key, line) : stg_xstrdup("default");
}

/*
 * The settings of this run, on the root (shown: config's table, else
 * NULL).  Precedence: command line, then manifest, then site file, then
 * built-in defaults; then the site's limits hold: a value above the site's
 * max_cache or timeout, or below its headroom, is brought back to it with
 * a warning.
 */
static void resolve(const struct stg_opts *o, const struct stg_conf *c, struct plan *p,
                    struct shown *shown)
{
    const struct stg_manifest *m = c->m;     /* NULL: config without one */
    const struct stg_site *site = &c->site;
    char a[32], b[32];
    char *f;

    snprintf(p->dest, sizeof p->dest, "%s", stg_conf_dest(c, o->dest));
    f = o->dest ? stg_xstrdup("--dest")
        : m && m->dest ? from_manifest(m, "dest", m->dest_line)
                       : from_site(site, "dest", site->dest_line);
    show(shown, "dest", p->dest, f);
    free(f);

    p->force = o->force;
    p->reuse = site->reuse;
    f = from_site(site, "reuse", site->reuse_line);
    show(shown, "reuse", p->reuse ? "yes" : "no", f);
    free(f);

    p->lock_wait = o->lock_wait >= 0 ? o->lock_wait
                   : site->lock_wait >= 0 ? site->lock_wait : STG_DEFAULT_LOCK_WAIT;
    f = o->lock_wait >= 0 ? stg_xstrdup("--lock-wait")
                          : from_site(site, "lock_wait", site->lock_wait_line);
    show(shown, "lock_wait", seconds(p->lock_wait, "0 (no wait)", a, sizeof a), f);
    free(f);

    p->headroom = o->headroom_set ? o->headroom
                  : site->headroom_line ? site->headroom : STG_DEFAULT_HEADROOM;
    f = o->headroom_set ? stg_xstrdup("--headroom") : from_site(site, "headroom",
                                                                 site->headroom_line);
    if (site->headroom_line && p->headroom < site->headroom) {
        char *w = stg_site_where(site, "headroom", site->headroom_line);
        stg_log_warn("--headroom %s is below %s, %s: using %s",
                     stg_format_size(p->headroom, a, sizeof a), w,
                     stg_format_size(site->headroom, b, sizeof b), b);
        free(f);
        f = stg_xasprintf("%s, its floor", w);
        free(w);
        p->headroom = site->headroom;
    }
    show(shown, "headroom", stg_format_size(p->headroom, a, sizeof a), f);
    free(f);

    const char *given = NULL;
    double timeout = 0;
    if (o->timeout >= 0) {
        timeout = o->timeout;
        f = stg_xstrdup("--timeout");
        given = f;
    } else if (m && m->timeout >= 0) {
        timeout = m->timeout;
        f = from_manifest(m, "timeout", m->timeout_line);
        given = f;
    } else {
        timeout = site->timeout_line ? site->timeout : 0;
        f = from_site(site, "timeout", site->timeout_line);
    }
    if (site->timeout_line && site->timeout > 0 && (timeout == 0 || timeout > site->timeout)) {
        char *w = stg_site_where(site, "timeout", site->timeout_line);
        if (given && timeout == 0)
            stg_log_warn("%s 0 (none) is beyond %s, %.0f s: using %.0f s", given, w,
                         site->timeout, site->timeout);
        else if (given)
            stg_log_warn("%s %.0f s is beyond %s, %.0f s: using %.0f s", given, timeout, w,
                         site->timeout, site->timeout);
        free(f);
        f = stg_xasprintf("%s, its limit", w);
        free(w);
        timeout = site->timeout;
    }
    p->timeout = timeout;
    show(shown, "timeout", seconds(p->timeout, "0 (none)", a, sizeof a), f);
    free(f);

    char *mfrom = NULL;
    bool asked = true;      /* by the command line or the manifest */
    p->max_cache = 0;
    if (o->max_cache_set) {
        p->max_cache = o->max_cache;
        mfrom = stg_xstrdup("--max-cache");
    } else if (m && m->max_cache_line) {
        p->max_cache = m->max_cache;
        mfrom = from_manifest(m, "max_cache", m->max_cache_line);
    } else if (site->max_cache_line) {
        p->max_cache = site->max_cache;
        mfrom = stg_site_where(site, "max_cache", site->max_cache_line);
        asked = false;
    }
    if (site->max_cache_line && site->max_cache > 0 &&
        (p->max_cache == 0 || p->max_cache > site->max_cache)) {
        char *w = stg_site_where(site, "max_cache", site->max_cache_line);
        if (mfrom && asked)
            stg_log_warn("%s %s is beyond %s, %s: using %s", mfrom,
                         p->max_cache ? stg_format_size(p->max_cache, a, sizeof a) : "0 (none)",
                         w, stg_format_size(site->max_cache, b, sizeof b), b);
        free(mfrom);
        mfrom = w;
        p->max_cache = site->max_cache;
    }
    snprintf(p->max_cache_from, sizeof p->max_cache_from, "%s", mfrom ? mfrom : "");
    /* the site's value, when something else was asked: its limit */
    f = !mfrom ? stg_xstrdup("default")
        : asked && strncmp(mfrom, "the site's", 10) == 0 ? stg_xasprintf("%s, its limit", mfrom)
                                                         : stg_xstrdup(mfrom);
    show(shown, "max_cache", size_or_none(p->max_cache, a, sizeof a), f);
    free(f);
    free(mfrom);

    snprintf(p->allow_fs, sizeof p->allow_fs, "%s", site->allow_fs ? site->allow_fs : "");
    f = from_site(site, "allow_fs", site->allow_fs_line);
    show(shown, "allow_fs", p->allow_fs[0] ? p->allow_fs : "(none)", f);
    free(f);
    if (site->max_node_cache_line && site->max_node_cache) {
        p->node_cap = site->max_node_cache;
        char *w = stg_site_where(site, "max_node_cache", site->max_node_cache_line);
        snprintf(p->node_cap_from, sizeof p->node_cap_from, "%s", w);
        free(w);
    }
    f = from_site(site, "max_node_cache", site->max_node_cache_line);
    show(shown, "max_node_cache", size_or_none(p->node_cap, a, sizeof a), f);
    free(f);
}

static double rel(double t, double t0) { return t > 0 ? t - t0 : 0; }

/* --stats FILE: one JSON object, written by the root, also on failure. */
/* --pipeline-depth given (0: auto), or the one for this many receivers. */
static int pipeline_depth(int given, enum stg_bcast_algo algo, int receivers, uint64_t chunk)
{
    return given ? given : stg_bcast_depth_auto(algo, receivers, (size_t)chunk);
}

static void write_stats(const struct stg_opts *o, struct outputs *w, const struct stg_node *n,
                        const struct stg_walk *scan, const struct stg_bundle *bundle,
                        const struct plan *p,
                        const struct times *t, int status, const char *msg,
                        const char *failed_nodes)
{
    struct stg_buf f = {0};
    const struct stg_stream_result *b = &t->br;
    double end = stg_now();
    stg_buf_printf(&f, "{\n  \"status\": %d,\n  \"error\": ", status);
    stg_buf_json_str(&f, status ? msg : "");
    stg_buf_printf(&f, ",\n  \"ranks\": %d,\n  \"nodes\": %d,\n", n->size, n->nnodes);
    stg_buf_printf(&f, "  \"name\": ");
    stg_buf_json_str(&f, p->name);
    stg_buf_printf(&f, ",\n  \"key\": ");
    stg_buf_json_str(&f, p->key);
    stg_buf_printf(&f, ",\n  \"source\": \"%s\",\n  \"files\": %llu,\n  \"bytes\": %llu,\n",
            scan ? "trees" : bundle && bundle->fd >= 0 ? "bundle" : "",
            (unsigned long long)p->files, (unsigned long long)p->bytes);
    stg_buf_printf(&f, "  \"cold_nodes\": %d,\n  \"waited_nodes\": %d,\n", t->cold, t->waited);
    stg_buf_printf(&f, "  \"bytes_broadcast\": %llu,\n  \"bytes_archive\": %llu,\n  \"chunks\": %llu,\n",
            (unsigned long long)b->stream_bytes, (unsigned long long)b->archive_bytes,
            (unsigned long long)b->chunks);
    stg_buf_printf(&f, "  \"compress\": \"%s\",\n", p->compress);
    stg_buf_printf(&f, "  \"tree\": \"%s\",\n", o->algo == STG_BCAST_BINARY ? "binary"
                                                                              : "two-tree");
    stg_buf_printf(&f, "  \"chunk_size\": %llu,\n  \"pipeline_depth\": %d,\n  \"unpack_threads\": %d,\n",
            (unsigned long long)o->chunk_size,
            t->depth ? t->depth : pipeline_depth(o->depth, o->algo, n->nnodes - 1, o->chunk_size),
            o->unpack_threads ? o->unpack_threads : stg_unpack_threads_auto());
    stg_buf_printf(&f, "  \"stopped_early\": %s,\n  \"failed_nodes\": [",
            b->stopped ? "true" : "false");
    /* failed_nodes: "name\n" for each node that --on-node-failure skip left out */
    for (const char *s = failed_nodes; *s;) {
        size_t nl = strcspn(s, "\n");
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)nl, s);
        stg_buf_printf(&f, "%s", s == failed_nodes ? "" : ", ");
        stg_buf_json_str(&f, name);
        s += nl + (s[nl] == '\n');
    }
    stg_buf_printf(&f, "],\n");
    stg_buf_printf(&f, "  \"seconds\": {\"scan\": %.6f, \"pack\": %.6f, \"broadcast\": %.6f, "
            "\"unpack\": %.6f, \"total\": %.6f},\n",
            t->scan1 - t->scan0, b->t_pack1 - b->t_pack0, t->bcast_max, t->unpack_max,
            end - t->start);
    /* Start and end of each phase on the root's node, in seconds since the
     * start: overlapping intervals show the pipeline at work. */
    stg_buf_printf(&f, "  \"timeline\": {\"scan\": [%.6f, %.6f], \"pack\": [%.6f, %.6f], "
            "\"broadcast\": [%.6f, %.6f], \"unpack\": [%.6f, %.6f]}\n}\n",
            rel(t->scan0, t->start), rel(t->scan1, t->start),
            rel(b->t_pack0, t->start), rel(b->t_pack1, t->start),
            rel(b->t_bcast0, t->start), rel(b->t_bcast1, t->start),
            rel(b->t_unpack0, t->start), rel(b->t_unpack1, t->start));
    w->have_stats = false;
    /* The run's own error (if any) is set aside meanwhile: a failure to
     * write the figures is a warning, and must say why it is one. */
    char run_msg[STG_MSG_MAX];
    int run_status = stg_err_take(run_msg, sizeof run_msg);
    if (stg_output_put(&w->stats, f.s, f.n) != STG_OK) {
        char why[STG_MSG_MAX];  /* the run stands: the figures are lost */
        stg_err_take(why, sizeof why);
        stg_log_warn("%s", why);
    }
    if (run_status != STG_OK)
        stg_err_set(run_status, "%s", run_msg);
    free(f.s);
}

/* A stream from a bundle that is not a whole archive (the pack and unpack
 * threads have ended): the bundle is at fault, not the node, and packing
 * it again is the cure. */
static void blame_bundle(const char *bundle)
{
    char msg[STG_MSG_MAX];
    stg_err_get(msg, sizeof msg);
    if (strncmp(msg, "unpack", 6) != 0 || !strstr(msg, ": damaged archive: "))
        return;
    int status = stg_err_take(NULL, 0);
    stg_err_set(status, "bundle '%s' is damaged, or compressed with a filter that this node's "
                "libarchive lacks (%s): pack it again", bundle, msg);
}

/* Phase 1, on the root: manifest and scan. */
static int plan_root(struct run *r)
{
    const struct stg_opts *o = r->o;
    struct stg_manifest **m = &r->m;
    struct stg_walk **scan = &r->walk;
    struct stg_bundle *b = &r->bundle;
    struct plan *p = &r->p;
    struct times *t = &r->t;
    int rc = o->bundle ? stg_conf_load_bundle(&r->conf, o->bundle,
                                            STG_MANIFEST_SOURCES | STG_MANIFEST_BUNDLE_FIRST)
                       : stg_conf_load(&r->conf, o->manifest,
                                       STG_MANIFEST_SOURCES | STG_MANIFEST_BUNDLE_FIRST);
    *m = r->conf.m;
    if (rc && o->bundle && o->fallback_to_trees) {
        char why[STG_MSG_MAX];
        stg_err_take(why, sizeof why);
        return stg_err_set(rc, "%s (--fallback-to-trees cannot help: the trees are named by "
                           "the manifest that the bundle carries; stage with --manifest)", why);
    }
    if (rc)
        return rc;
    /* the bundle that the manifest names is an input too (main.c checks
     * those on the command line) */
    const char *outs[2][2] = {{"--output", o->output}, {"--stats", o->stats}};
    for (int k = 0; k < 2 && !o->bundle; k++)
        if (stg_path_same_file(outs[k][1], (*m)->bundle)) {
            abort_outputs(&r->outs);    /* not even the stats of this failure */
            return stg_err_set(STG_EUSAGE, "%s '%s' is the manifest's bundle (bundle = at "
                               "%s:%d): it would be replaced; give another file", outs[k][0],
                               outs[k][1], (*m)->path, (*m)->bundle_line);
        }
    resolve(o, &r->conf, p, NULL);
    if (strlen(p->dest) >= sizeof p->dest - 128)
        return stg_err_set(STG_EUSAGE, "destination '%.64s...' is too long", p->dest);
    snprintf(p->name, sizeof p->name, "%s", (*m)->name);
    p->relocate = (*m)->pyenv != NULL;
    char sz[32];
    t->scan0 = stg_now();
    if ((*m)->bundle) {
        /* A bundle: its trailer says what it holds; no tree is walked. */
        rc = stg_bundle_open(b, (*m)->bundle, *m);
        if (rc == STG_OK && (*m)->pyenv && stg_pyenv_kind_parse(b->env, &(*m)->pyenv->kind) < 0)
            rc = stg_err_set(STG_EFAIL, "bundle '%s': its trailer does not say what kind of "
                             "environment [python %s] is: pack it again", b->path,
                             (*m)->pyenv->name);
        /* a whole environment brings its own interpreter, the one its
         * bytecode was compiled by */
        if (rc == STG_OK && !(*m)->pyenv)
            rc = stg_bundle_check_python(b, *m);
        t->scan1 = stg_now();
        if (rc == STG_OK) {
            snprintf(p->key, sizeof p->key, "%s", b->key);
            p->bytes = b->bytes;
            p->files = b->files;
            stg_log_info("bundle '%s': %llu entries, %s; key %s", b->path,
                         (unsigned long long)b->files, stg_format_size(b->bytes, sz, sizeof sz),
                         p->key);
            if (o->compress && strcmp(o->compress, b->compress) != 0)
                stg_log_warn("--compress %s is for staging from the trees: bundle '%s' is "
                             "streamed as it was packed (compress: %s)", o->compress, b->path,
                             b->compress);
            snprintf(p->compress, sizeof p->compress, "%s", b->compress);
            snprintf(p->bundle, sizeof p->bundle, "%s", b->path);
            return STG_OK;
        }
        stg_bundle_close(b);
        if (!o->fallback_to_trees && !(*m)->fallback_to_trees)
            return rc;
        char why[STG_MSG_MAX];
        stg_err_take(why, sizeof why);
        stg_log_warn("%s; staging from the trees instead (fallback to trees)", why);
        /* again, now checking the sources it left alone */
        rc = stg_conf_reload(&r->conf, o->manifest, STG_MANIFEST_SOURCES | STG_MANIFEST_RELOAD);
        *m = r->conf.m;
        if (rc)
            return rc;
    }
    rc = stg_walk_run(*m, scan);
    t->scan1 = stg_now();
    if (rc)
        return rc;
    stg_test_pause(r->w, "after-scan");
    snprintf(p->key, sizeof p->key, "%s", (*scan)->key);
    snprintf(p->compress, sizeof p->compress, "%s", stg_conf_compress(&r->conf, o->compress));
    p->bytes = (*scan)->bytes;
    p->files = (*scan)->files;
    stg_log_info("scanned %llu entries, %s, in %.3f s; key %s",
                 (unsigned long long)(*scan)->files,
                 stg_format_size((*scan)->bytes, sz, sizeof sz), t->scan1 - t->scan0, p->key);
    return STG_OK;
}

/* Where the settings might not reach the application's ranks, say so:
 * stage-py cannot pass them on itself. */
static void warn_reach(void)
{
    const char *e = getenv("SLURM_EXPORT_ENV");
    if (e && strcmp(e, "NONE") == 0)
        stg_log_warn("SLURM_EXPORT_ENV=NONE (--export=NONE): srun steps start without the "
                     "environment of the batch script, so the settings will not reach them; "
                     "pass them on, e.g. srun --export=ALL, or source them in the step");
    if (getenv("SLURM_HET_SIZE"))
        stg_log_warn("a heterogeneous job: this step stages only on the nodes of its own "
                     "component(s) (SLURM_HET_SIZE=%s); stage for each component whose ranks "
                     "import from the copy", getenv("SLURM_HET_SIZE"));
}

/* Phase 4, on the root: the settings, to --output or stdout. */
static int write_settings(const struct stg_opts *o, struct outputs *w,
                          const struct stg_manifest *m, const char *root, bool some_failed)
{
    warn_reach();
    struct stg_env env;
    stg_env_build(m, root, &env);
    if (some_failed)
        stg_env_add_sources(m, &env);
    char *text = stg_env_render(&env, o->shell);
    stg_env_free(&env);
    if (!text)
        return STG_EFAIL;   /* recorded */
    int rc = STG_OK;
    if (w->have_settings) {
        w->have_settings = false;
        rc = stg_output_put(&w->settings, text, strlen(text));
    } else if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
        rc = stg_err_set(STG_EFAIL, "cannot write the settings to stdout: %s", strerror(errno));
    }
    free(text);
    return rc;
}

/*
 * --on-node-failure skip, at the end of the stream: the root learns which
 * nodes failed.  If all did, their errors stand; otherwise they are set
 * aside (those nodes have no copy) and the root names them on stderr.
 * OUT failed: the failed nodes' names, one per line (root).
 */
static int settle_skipped(struct stg_watchdog *w, int rc, bool skipped, char *failed,
                          size_t flen)
{
    const struct stg_node *n = w->node;
    struct report {
        int failed;
        char name[64];
        char msg[512];
    } mine, *all = NULL;
    int all_failed = 0;
    MPI_Request req;
    if (n->is_leader) {
        memset(&mine, 0, sizeof mine);
        mine.failed = skipped || rc != STG_OK;
        snprintf(mine.name, sizeof mine.name, "%s", n->name);
        stg_err_get(mine.msg, sizeof mine.msg);
        if (n->is_root)
            all = stg_xcalloc((size_t)n->nnodes, sizeof *all);
        /* Every node's outcome, to the root. */
        MPI_Igather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0,
                    n->leaders, &req);
        stg_wait(w, &req);
    }
    if (n->is_root) {
        int count = 0;
        const char *first = NULL;
        size_t off = 0;
        failed[0] = '\0';
        for (int i = 0; i < n->nnodes; i++) {
            if (!all[i].failed)
                continue;
            count++;
            if (!first && all[i].msg[0])
                first = all[i].msg;
            int len = snprintf(failed + off, flen - off, "%s\n", all[i].name);
            if (len > 0 && (size_t)len < flen - off)
                off += (size_t)len;
        }
        all_failed = count == n->nnodes;
        if (count && !all_failed) {
            /* "node2\nnode3\n" -> "node2,node3" */
            char list[STG_MSG_MAX];
            snprintf(list, sizeof list, "%s", failed);
            for (char *s = list; *s; s++)
                if (*s == '\n')
                    *s = s[1] ? ',' : '\0';
            stg_log_warn("--on-node-failure skip: %d of %d nodes have no copy and will read "
                         "the shared file system (the settings list the sources after the "
                         "copies): %s (first error: %s)", count, n->nnodes, list,
                         first ? first : "unknown");
        }
    }
    /* The decision, to every rank. */
    MPI_Ibcast(&all_failed, 1, MPI_INT, 0, n->world, &req);
    stg_wait(w, &req);
    free(all);
    if (!n->is_leader)
        return rc;
    if (all_failed)
        return skipped ? STG_EFAIL : rc;   /* its own error is still recorded */
    if (rc != STG_OK || skipped)
        stg_err_take(NULL, 0);  /* set aside: this node simply has no copy */
    return STG_OK;
}

/* Sleep a little while waiting for another run: signals and the timeout
 * are acted on meanwhile.  *ms grows to 200. */
static void nap(struct run *r, long *ms)
{
    struct timespec ts = {0, *ms * 1000 * 1000};
    nanosleep(&ts, NULL);
    *ms = *ms < 100 ? *ms * 2 : 200;
    stg_watchdog_check(r->w);
}

/* The copy's lock, tried for about a second: runs that pin or remove a
 * copy hold it for milliseconds, a run that makes the copy for its whole
 * transfer (r->claim BUSY).  Leaders. */
static int claim_copy(struct run *r)
{
    long ms = 5;
    for (int i = 0;; i++) {
        int rc = stg_cache_claim(&r->cache, r->copy, r->job, r->p.reuse, r->p.force, &r->claim);
        if (rc || r->claim != STG_CLAIM_BUSY || i >= 10)
            return rc;
        nap(r, &ms);
    }
}

/* An owner's (or a private copy's) preparations: room within the cache
 * budget, space in memory, a temporary directory that reserves its room
 * (r->tmp).  The count and the reservation happen under the budget lock,
 * which other runs hold for moments only.  Leaders. */
static int make_room(struct run *r)
{
    const struct plan *p = &r->p;
    struct stg_cache *cache = &r->cache;
    int rc = STG_OK;
    bool got = !p->max_cache;
    long ms = 5;
    double t0 = stg_now();
    while (rc == STG_OK && !got) {
        rc = stg_cache_budget_trylock(cache, &got);
        if (rc == STG_OK && !got && stg_now() - t0 > p->lock_wait)
            rc = stg_err_set(STG_EFAIL, "'%s/.budget-lock' has been held for over %.0f s "
                             "(--lock-wait)", cache->dir, p->lock_wait);
        else if (rc == STG_OK && !got)
            nap(r, &ms);
    }
    if (rc == STG_OK && p->max_cache)
        rc = stg_cache_evict(cache, r->copy, p->bytes, p->max_cache, p->max_cache_from);
    if (rc == STG_OK)
        rc = stg_space_check(cache->dir, stg_space_need(p->bytes, p->files), p->headroom);
    if (rc == STG_OK && p->node_cap)
        rc = stg_space_cap_check(cache->dest, r->copy, stg_space_need(p->bytes, p->files),
                                 p->node_cap, p->node_cap_from);
    if (rc == STG_OK)
        rc = stg_cache_tmp_new(cache, r->copy, p->bytes, &r->tmp);
    stg_cache_budget_unlock(cache);
    if (rc)
        stg_cache_release(cache);
    else
        stg_test_pause(r->w, "reserved");
    return rc;
}

/*
 * Another run on this node is making the copy: wait until it lets go of
 * the copy's lock, at most p.lock_wait seconds from t0, holding no lock
 * meanwhile.  r->claim: WARM (its copy is here, pinned), OWNER (it left no
 * copy: this run should make it, but the lock is released again, see
 * stream()) or BUSY (past the bound: this run makes a private copy, and
 * whichever is published first is kept).
 */
static int wait_for_copy(struct run *r, double t0)
{
    const char *dir = r->cache.dir, *copy = r->copy;
    long ms = 10;
    for (;;) {
        int rc = stg_cache_claim(&r->cache, copy, r->job, r->p.reuse, r->p.force, &r->claim);
        if (rc)
            return rc;
        if (r->claim == STG_CLAIM_WARM)
            stg_log_info("waited %.1f s for another run's copy '%s/%s'", stg_now() - t0, dir,
                         copy);
        if (r->claim == STG_CLAIM_OWNER) {
            stg_log_info("the other run left no copy of '%s/%s' after %.1f s", dir, copy,
                         stg_now() - t0);
            stg_cache_release(&r->cache);
        }
        if (r->claim != STG_CLAIM_BUSY)
            return STG_OK;
        if (stg_now() - t0 >= r->p.lock_wait) {
            stg_log_warn("another run has been staging '%s/%s' for over %.0f s "
                         "(--lock-wait): making a private copy here", dir, copy,
                         r->p.lock_wait);
            return STG_OK;
        }
        nap(r, &ms);
    }
}

/* Add one transfer's result to the run's. */
static void merge(struct stg_stream_result *t, const struct stg_stream_result *r)
{
    t->stream_bytes += r->stream_bytes;
    t->archive_bytes += r->archive_bytes;
    t->chunks += r->chunks;
    t->stopped = t->stopped || r->stopped;
    t->entries += r->entries;
    t->unpacked_bytes += r->unpacked_bytes;
    t->relocated += r->relocated;
    double *tt[3][2] = {{&t->t_pack0, &t->t_pack1}, {&t->t_bcast0, &t->t_bcast1},
                        {&t->t_unpack0, &t->t_unpack1}};
    const double rr[3][2] = {{r->t_pack0, r->t_pack1}, {r->t_bcast0, r->t_bcast1},
                             {r->t_unpack0, r->t_unpack1}};
    for (int i = 0; i < 3; i++) {
        if (rr[i][0] <= 0)
            continue;
        if (*tt[i][0] <= 0)
            *tt[i][0] = rr[i][0];
        *tt[i][1] = rr[i][1];
    }
}

/*
 * One transfer: the root sends; the leaders that hold a temporary directory
 * (r->tmp) receive, unpack and publish their copy, with its record and this
 * job's pin.  Collective over the leaders, each bringing its status so far
 * (r->rc): no transfer starts after a failure, unless --on-node-failure
 * skip sets failures aside.  r->waits: this node will wait for another
 * run's copy.  Updates r->rc.
 */
/* The stream's ranks (scomm, a part of the leaders) as leader ranks. */
static int *stream_members(MPI_Comm scomm, MPI_Comm leaders, int *size)
{
    MPI_Comm_size(scomm, size);
    MPI_Group gs, gl;
    MPI_Comm_group(scomm, &gs);
    MPI_Comm_group(leaders, &gl);
    int *in = stg_xcalloc((size_t)*size, sizeof *in);
    int *out = stg_xcalloc((size_t)*size, sizeof *out);
    for (int i = 0; i < *size; i++)
        in[i] = i;
    MPI_Group_translate_ranks(gs, *size, in, gl, out);
    free(in);
    MPI_Group_free(&gs);
    MPI_Group_free(&gl);
    return out;
}

/* The root: each leader's parent in the stream's tree (of the even chunks),
 * by leader rank; -1 for the root and for leaders outside the stream
 * (watchdog.h). */
static int *stream_tree(enum stg_bcast_algo algo, const int *members, int size, int nnodes)
{
    int *parent = stg_xmalloc((size_t)nnodes * sizeof *parent);
    for (int i = 0; i < nnodes; i++)
        parent[i] = -1;
    for (int j = 1; j < size; j++) {
        int up, child[2];
        stg_bcast_tree(algo, size, j, 0, &up, child);
        parent[members[j]] = members[up];
    }
    return parent;
}

/* -v on the root: a line about every second while the stream runs. */
struct progress_ctx {
    struct stg_watchdog *w;
    uint64_t total;             /* file bytes of the trees, or the bundle's archive bytes */
    uint64_t files;             /* entries of the trees; 0: from a bundle */
    double last;                /* when the last line was printed (or the stream began) */
    uint64_t last_data;
};
static void progress(void *arg, const struct stg_stream_progress *pr)
{
    struct progress_ctx *c = arg;
    stg_watchdog_sent(c->w, pr->chunks);
    double now = stg_now();
    if (now - c->last < 1.0)
        return;
    uint64_t lag = 0;
    int slow = stg_watchdog_slowest(c->w, &lag);
    double rate = (double)(pr->data - c->last_data) / (now - c->last);
    c->last = now;
    c->last_data = pr->data;
    char done[32], total[32], rs[32], entries[64] = "", left[32] = "";
    if (c->files)
        snprintf(entries, sizeof entries, ", %llu of %llu entries",
                 (unsigned long long)pr->entries, (unsigned long long)c->files);
    if (rate > 0 && pr->data <= c->total)
        snprintf(left, sizeof left, ", %.0f s left", (double)(c->total - pr->data) / rate);
    char who[128] = "";
    if (slow > 0)
        snprintf(who, sizeof who, "; furthest behind: %s, %llu chunk%s behind", c->w->names[slow],
                 (unsigned long long)lag, lag == 1 ? "" : "s");
    /* from a bundle: its archive's bytes, headers and padding included,
     * not the files' bytes that the line "bundle ...: N entries" gives */
    stg_log_info("sent %s of %s%s (%.0f %%)%s, %s/s%s%s",
                 stg_format_size(pr->data, done, sizeof done),
                 stg_format_size(c->total, total, sizeof total), c->files ? "" : " of archive",
                 c->total ? 100.0 * (double)pr->data / (double)c->total : 100.0, entries,
                 stg_format_size((uint64_t)rate, rs, sizeof rs), left, who);
}

/* bcast.h's held: the child (a rank of the stream) holds this node's
 * stream back; the watchdog tells the root, by leader rank. */
struct held_ctx {
    struct stg_watchdog *w;
    const int *members;
};
static void held(void *arg, int child)
{
    const struct held_ctx *h = arg;
    stg_watchdog_held_by(h->w, h->members[child]);
}

static void stream_round(struct run *r)
{
    struct stg_node *n = r->n;
    const struct plan *p = &r->p;
    struct times *t = &r->t;
    struct stg_cache *cache = &r->cache;
    if (!n->is_leader)
        return;
    bool first = t->rounds++ == 0;
    /* how many nodes receive, have failed, were set aside, will wait */
    int mine[4] = {r->tmp != NULL && r->rc == STG_OK, r->rc != STG_OK, r->skipped, r->waits};
    int sum[4] = {0, 0, 0, 0};
    MPI_Request req;
    MPI_Iallreduce(mine, sum, 4, MPI_INT, MPI_SUM, n->leaders, &req);
    stg_wait(r->w, &req);
    if (first)
        t->waited = sum[3];
    if (sum[0] == 0 || (sum[1] > 0 && !p->skip_failed)) {
        if (first && n->is_root && sum[0] == 0 && sum[1] == 0) {
            if (sum[2] == 0 && sum[3] == 0)
                stg_log_info("every node holds '%s': nothing to send", r->copy);
            else if (sum[3] > 0)
                stg_log_info("%d node(s) wait for another run's copy of '%s', the others "
                             "hold it: nothing to send now", sum[3], r->copy);
            else
                stg_log_info("no node that could take '%s' lacks it: nothing to send",
                             r->copy);
        }
        return;
    }
    t->cold += sum[0];
    bool cold = mine[0];
    MPI_Comm scomm = MPI_COMM_NULL, svotes = MPI_COMM_NULL;
    /* The root and the receivers; key = leader rank: the root stays rank 0,
     * the sender, even when its own node needs nothing. */
    MPI_Comm_split(n->leaders, cold || n->is_root ? 0 : MPI_UNDEFINED, n->leader_rank, &scomm);
    if (scomm == MPI_COMM_NULL)
        return;
    MPI_Comm_dup(scomm, &svotes);   /* votes: a communicator of their own */
    char *final = p->relocate ? stg_xasprintf("%s/%s", cache->dir, r->copy) : NULL;
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    /* libarchive's disk writer takes paths: work relative to the checked
     * directory, not through a path that could be swapped meanwhile. */
    if (cold && fchdir(cache->fd) < 0)
        r->rc = stg_err_set(STG_EFAIL, "cannot enter '%s': %s", cache->dir, strerror(errno));
    int depth = pipeline_depth(p->depth, (enum stg_bcast_algo)p->algo, sum[0], p->chunk_size);
    t->depth = depth;
    struct stg_stream_args ba = {
        .watch = r->w, .algo = (enum stg_bcast_algo)p->algo, .comm = scomm, .votes = svotes, .members = sum[0],
        .chunk_size = p->chunk_size, .depth = depth,
        .unpack_threads = p->unpack_threads ? p->unpack_threads : stg_unpack_threads_auto(),
        .scan = r->walk, .compress = p->compress, .bundle = r->bundle.fd >= 0 ? &r->bundle : NULL,
        .unpack = cold && r->rc == STG_OK, .prefix = r->tmp, .relocate_root = final,
        .need = stg_space_need(p->bytes, p->files),
        .vote_every = depth < 2 ? 2 : depth,
        .stop_on_failure = !p->skip_failed,
        .corrupt_seq = stg_test_corrupt_seq(n),
    };
    struct stg_stream_result br;
    memset(&br, 0, sizeof br);
    int nmembers;
    int *members = stream_members(scomm, n->leaders, &nmembers);
    int *tree = n->is_root ? stream_tree((enum stg_bcast_algo)p->algo, members, nmembers,
                                         n->nnodes) : NULL;
    struct held_ctx hc = {r->w, members};
    struct progress_ctx pc = {
        .w = r->w, .total = r->bundle.fd >= 0 ? r->bundle.archive_bytes : p->bytes,
        .files = r->bundle.fd >= 0 ? 0 : p->files, .last = stg_now(),
    };
    if (n->is_root && stg_log_verbosity() >= STG_VERBOSE) {
        ba.progress = progress;
        ba.progress_arg = &pc;
    }
    ba.held = held;
    ba.held_arg = &hc;
    stg_watchdog_set_tree(r->w, tree);
    int brc = stg_stream_run(&ba, &br);
    stg_watchdog_set_tree(r->w, NULL);
    if (brc && r->tmp && p->bundle[0])
        blame_bundle(p->bundle);
    free(tree);
    free(members);
    r->rc = r->rc ? r->rc : brc;
    merge(&t->br, &br);
    free(final);
    if (cwd >= 0) {
        if (fchdir(cwd) < 0)
            stg_log_warn("cannot return to the working directory: %s", strerror(errno));
        close(cwd);
    }
    MPI_Comm_free(&svotes);
    MPI_Comm_free(&scomm);
    if (!r->tmp)
        return;
    int rc = r->rc;
    if (rc == STG_OK) {
        char hex[2 * STG_DIGEST_LEN + 1];
        stg_hex(br.digest, STG_DIGEST_LEN, hex);
        struct stg_record rec = {p->name, p->key, r->job, hex, p->bytes, p->files};
        rc = stg_cache_record(cache, r->tmp, &rec);     /* the copy's last file */
    }
    if (rc == STG_OK)
        rc = stg_cache_commit(cache, r->tmp, r->copy, p->force || !p->reuse);
    else
        stg_cache_discard(cache, r->tmp);
    if (rc == STG_OK)
        rc = stg_cache_pin(cache, r->copy, r->job);
    if (rc == STG_OK)
        stg_log_info("'%s/%s' complete: %llu entries (%llu relocated), %.3f s", cache->dir,
                     r->copy, (unsigned long long)br.entries,
                     (unsigned long long)br.relocated, br.t_bcast1 - br.t_bcast0);
    stg_cache_release(cache);   /* waiting runs now find the copy */
    free(r->tmp);
    r->tmp = NULL;
    r->rc = rc;
}

/* Phase 1, plan: only the root touches the shared file system; then the
 * plan goes to every rank. */
static int plan(struct run *r)
{
    const struct stg_opts *o = r->o;
    struct stg_node *n = r->n;
    stg_watchdog_set_timeout(r->w, o->timeout > 0 ? o->timeout : 0);
    stg_watchdog_phase(r->w, "plan");
    if (n->is_root) {
        r->rc = open_outputs(o, &r->outs);
        if (r->rc == STG_OK)
            r->rc = plan_root(r);
        r->p.chunk_size = o->chunk_size;
        r->p.depth = o->depth;
        r->p.algo = (int)o->algo;
        r->p.unpack_threads = o->unpack_threads;
        r->p.skip_failed = o->skip_failed;
    }
    stg_watchdog_on_cleanup(r->w, cleanup_on_signal, r);
    r->rc = stg_agree(r->w, n->world, r->rc, r->msg);
    if (r->rc)
        return r->rc;
    MPI_Request req;
    MPI_Ibcast(&r->p, (int)sizeof r->p, MPI_BYTE, 0, n->world, &req);    /* the plan, to all */
    stg_wait(r->w, &req);
    stg_watchdog_set_timeout(r->w, r->p.timeout);
    r->copy = stg_cache_copy_name(r->p.name, r->p.key);
    return STG_OK;
}

/* Phase 2, prepare: a checked per-user directory that all local ranks
 * share; each leader learns whether its node holds the copy, makes it, or
 * waits for another run that is making it. */
static int prepare(struct run *r)
{
    struct stg_node *n = r->n;
    const struct plan *p = &r->p;
    stg_watchdog_phase(r->w, "prepare");
    stg_test_stall(r->w, "prepare");
    /* node-local, or nothing is made there */
    if (n->is_leader)
        r->rc = stg_space_local_check(p->dest, p->allow_fs);
    if (n->is_leader && r->rc == STG_OK)
        r->rc = stg_cache_open(&r->cache, p->dest);
    char *dir = stg_cache_dir(p->dest, geteuid());
    int src = stg_agree_shared_dir(r->w, dir, r->rc == STG_OK);
    free(dir);
    r->rc = r->rc ? r->rc : src;
    r->claim = STG_CLAIM_WARM;
    if (n->is_leader && r->rc == STG_OK) {
        stg_cache_job(r->job, sizeof r->job);
        stg_cache_sweep(&r->cache);
        r->rc = claim_copy(r);
        if (r->rc == STG_OK && r->claim == STG_CLAIM_WARM)
            stg_log_info("'%s/%s' is already here", r->cache.dir, r->copy);
        else if (r->rc == STG_OK && r->claim == STG_CLAIM_OWNER)
            r->rc = make_room(r);
        else if (r->rc == STG_OK)
            stg_log_info("another run is staging '%s/%s': waiting for it after the transfer",
                         r->cache.dir, r->copy);
    }
    if (p->skip_failed && n->is_leader && r->rc != STG_OK && r->rc != STG_EUSAGE) {
        /* skip: this node gets no copy, and says so at the end */
        r->skipped = true;
        r->rc = STG_OK;
    }
    /* Every node's part is settled here, before anyone waits for a lock:
     * the transfer takes only the root and the nodes that make the copy,
     * so no run's transfer depends on another run's. */
    r->rc = stg_agree(r->w, n->world, r->rc, r->msg);
    return r->rc;
}

/* Phase 3, stream: leaders only; the other ranks wait in the agreement. */
static int stream(struct run *r)
{
    struct stg_node *n = r->n;
    stg_watchdog_phase(r->w, "stream");
    stg_test_stall(r->w, "stream");
    r->waits = n->is_leader && r->claim == STG_CLAIM_BUSY && !r->skipped;
    double wait0 = 0;
    MPI_Request req;
    for (;;) {
        stream_round(r);
        if (!n->is_leader)
            break;
        /* Does any node still wait for another run?  A failed transfer ends
         * the run: then nobody waits (unless skip sets failures aside). */
        int mine[2] = {r->rc != STG_OK && !r->p.skip_failed, r->waits && r->rc == STG_OK};
        int any[2] = {0, 0};
        MPI_Iallreduce(mine, any, 2, MPI_INT, MPI_MAX, n->leaders, &req);
        stg_wait(r->w, &req);
        if (any[0] || !any[1])
            break;
        /* Wait holding no lock, and take locks again only once every node
         * has stopped waiting: a run holds locks only in a transfer, which
         * never waits for a lock, so runs that share nodes never wait for
         * each other in a cycle. */
        bool retry = false;
        if (r->waits && r->rc == STG_OK) {
            if (wait0 <= 0)
                wait0 = stg_now();
            r->rc = wait_for_copy(r, wait0);
            retry = r->rc == STG_OK && r->claim == STG_CLAIM_OWNER;
            if (r->rc == STG_OK && r->claim == STG_CLAIM_BUSY)
                r->rc = make_room(r);   /* a private copy */
        }
        MPI_Ibarrier(n->leaders, &req);     /* every node's wait is over */
        stg_wait(r->w, &req);
        if (retry) {
            /* The other run left no copy: this run makes it, unless yet
             * another run took the lock first (then wait for that one). */
            r->rc = stg_cache_claim(&r->cache, r->copy, r->job, r->p.reuse, r->p.force,
                                    &r->claim);
            if (r->rc == STG_OK && r->claim == STG_CLAIM_OWNER)
                r->rc = make_room(r);
        }
        r->waits = retry && r->rc == STG_OK && r->claim == STG_CLAIM_BUSY;
        if (r->rc != STG_OK && r->p.skip_failed && r->rc != STG_EUSAGE) {
            r->skipped = true;
            r->rc = STG_OK;
        }
    }
    stg_watchdog_held_settle(r->w);
    if (r->p.skip_failed)
        r->rc = settle_skipped(r->w, r->rc, r->skipped, r->failed_nodes, sizeof r->failed_nodes);
    r->rc = stg_agree(r->w, n->world, r->rc, r->msg);
    /* The slowest node's times, for --stats (after the agreement, so that
     * waiting ranks never spin in a blocking reduction). */
    double mine[2] = {r->t.br.t_unpack1 - r->t.br.t_unpack0, r->t.br.t_bcast1 - r->t.br.t_bcast0};
    double max[2] = {0, 0};
    MPI_Ireduce(mine, max, 2, MPI_DOUBLE, MPI_MAX, 0, n->world, &req);
    stg_wait(r->w, &req);
    r->t.unpack_max = max[0];
    r->t.bcast_max = max[1];
    return r->rc;
}

/* Phase 4, settings: only now does every node hold a complete copy. */
static int settings(struct run *r)
{
    struct stg_node *n = r->n;
    stg_watchdog_phase(r->w, "settings");
    /* Every node holds its copy: a timeout now would only contradict the
     * settings the root is about to write. */
    stg_watchdog_set_timeout(r->w, 0);
    if (n->is_root) {
        char *dir = stg_cache_dir(r->p.dest, geteuid());
        char *root = stg_xasprintf("%s/%s", dir, r->copy);
        r->rc = write_settings(r->o, &r->outs, r->m, root, r->failed_nodes[0] != '\0');
        free(root);
        free(dir);
    }
    r->rc = stg_agree(r->w, n->world, r->rc, r->msg);
    return r->rc;
}

/* The end of a run, however it went: nothing half-made is left, the root
 * says what failed and writes --stats. */
static int finish(struct run *r)
{
    struct stg_node *n = r->n;
    /* A temporary directory of a run that failed elsewhere: never left behind. */
    if (n->is_leader && r->tmp)
        stg_cache_discard(&r->cache, r->tmp);
    stg_watchdog_on_cleanup(r->w, NULL, NULL);
    if (n->is_root) {
        if (r->rc) {
            fprintf(stderr, "stage-py: %s\n", r->msg);
            if (!r->o->output)
                fputs(stg_env_failure(r->o->shell), stdout);
        }
        if (r->outs.have_stats)
            write_stats(r->o, &r->outs, n, r->walk, &r->bundle, &r->p, &r->t, r->rc, r->msg,
                        r->failed_nodes);
        abort_outputs(&r->outs);    /* the settings of a run that failed */
    }
    if (n->is_leader)
        stg_cache_close(&r->cache);
    free(r->tmp);
    free(r->copy);
    r->tmp = r->copy = NULL;
    stg_walk_free(&r->walk);
    stg_bundle_close(&r->bundle);
    stg_conf_free(&r->conf);
    r->m = NULL;
    return r->rc;
}

int stg_cmd_stage(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    /* static: the exit handler may run after this function has returned */
    static struct run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.n = n;
    r.w = w;
    r.t.start = stg_now();
    r.bundle.fd = -1;
    r.cache = (struct stg_cache){.fd = -1, .tmpfd = -1, .lockfd = -1, .budgetfd = -1};
    if (plan(&r) == STG_OK && prepare(&r) == STG_OK && stream(&r) == STG_OK)
        settings(&r);
    return finish(&r);
}

/* ---- config: the settings that staging would use ---------------------- */

/* The root: the site file and the manifest (or the bundle's) as staging
 * loads them, then resolve()'s settings and those of the stream. */
static int config_root(const struct stg_opts *o, struct stg_watchdog *w, char **text)
{
    (void)w;
    struct stg_conf conf;
    struct plan p = {0};
    struct shown t = {0};
    /* loaded and checked as staging does (plan_root()) */
    int rc = o->bundle ? stg_conf_load_bundle(&conf, o->bundle,
                                            STG_MANIFEST_SOURCES | STG_MANIFEST_BUNDLE_FIRST)
                       : stg_conf_load(&conf, o->manifest,
                                       STG_MANIFEST_SOURCES | STG_MANIFEST_BUNDLE_FIRST);
    if (rc) {
        stg_conf_free(&conf);
        return rc;
    }
    const struct stg_manifest *m = conf.m;
    const struct stg_site *site = &conf.site;
    char a[32];
    char *f;
    const char *named = getenv("STAGE_PY_CONF");
    show(&t, "site file", site->path ? site->path : "(none)",
         named && *named ? (site->path ? "STAGE_PY_CONF" : "STAGE_PY_CONF=/dev/null")
         : site->path    ? "default"
                         : "default, absent (" STG_SITE_CONF ")");
    if (o->bundle)
        show(&t, "manifest", o->bundle, "--bundle (the manifest it carries)");
    else
        show(&t, "manifest", m ? m->path : "(none)", m ? "--manifest" : "not given");
    resolve(o, &conf, &p, &t);

    f = o->bundle             ? stg_xstrdup("--bundle")
        : m && m->bundle_line ? from_manifest(m, "bundle", m->bundle_line)
                              : stg_xstrdup("not given: from the trees");
    show(&t, "bundle", m && m->bundle ? m->bundle : "(none)", f);
    free(f);
    bool fallback = o->fallback_to_trees || (m && m->fallback_to_trees);
    bool trees = !m || !m->bundle;
    if (!trees) {
        /* a bundle is streamed as it was packed, if staging can use it */
        struct stg_bundle b;
        if (stg_bundle_open(&b, m->bundle, o->bundle ? NULL : m) == STG_OK) {
            f = stg_xasprintf("the bundle, as packed%s", o->compress || site->compress_line
                              ? " (--compress and the site's are for the trees)" : "");
            show(&t, "compress", b.compress, f);
            free(f);
        } else {
            char why[STG_MSG_MAX];
            stg_err_take(why, sizeof why);
            stg_log_warn("%s%s", why, fallback ? "; staging would use the trees instead "
                                                 "(fallback to trees)" : "");
            if (!fallback)
                show(&t, "compress", "?", "the bundle, which staging cannot use (see the warning)");
            trees = fallback;
        }
        stg_bundle_close(&b);
    }
    if (trees) {
        f = o->compress ? stg_xstrdup("--compress")
                        : from_site(site, "compress", site->compress_line);
        show(&t, "compress", stg_conf_compress(&conf, o->compress), f);
        free(f);
    }
    f = o->fallback_to_trees ? stg_xstrdup("--fallback-to-trees")
        : m && m->fallback_to_trees ? from_manifest(m, "fallback_to_trees",
                                                    m->fallback_to_trees_line)
                                    : stg_xstrdup("default");
    show(&t, "fallback_to_trees", fallback ? "yes" : "no", f);
    free(f);
    f = from_site(site, "writable_manifests", site->writable_manifests_line);
    show(&t, "writable_manifests", site->writable_manifests_warn ? "warn" : "refuse", f);
    free(f);

#define GIVEN(bit, opt) ((o->given & (bit)) ? (opt) : "default")
    show(&t, "chunk_size", stg_format_size(o->chunk_size, a, sizeof a),
         GIVEN(STG_GIVEN_CHUNK, "--chunk-size"));
    snprintf(a, sizeof a, "%d", o->depth);
    show(&t, "pipeline_depth", o->depth ? a : "auto", GIVEN(STG_GIVEN_DEPTH, "--pipeline-depth"));
    show(&t, "broadcast", o->algo == STG_BCAST_BINARY ? "binary" : "two-tree",
         GIVEN(STG_GIVEN_ALGO, "--broadcast"));
    snprintf(a, sizeof a, "%d", o->unpack_threads);
    show(&t, "unpack_threads", o->unpack_threads ? a : "auto",
         GIVEN(STG_GIVEN_THREADS, "--unpack-threads"));
    show(&t, "on_node_failure", o->skip_failed ? "skip" : "abort",
         GIVEN(STG_GIVEN_FAILURE, "--on-node-failure"));
#undef GIVEN
    stg_conf_free(&conf);

    /* the columns aligned */
    int width[2] = {0, 0};
    for (size_t r = 0; r < t.col[0].n; r++)
        for (int k = 0; k < 2; k++) {
            int len = (int)strlen(t.col[k].v[r]);
            width[k] = len > width[k] ? len : width[k];
        }
    struct stg_buf out = {0};
    for (size_t r = 0; r < t.col[0].n; r++)
        stg_buf_printf(&out, "%-*s  %-*s  %s\n", width[0], t.col[0].v[r], width[1],
                       t.col[1].v[r], t.col[2].v[r]);
    for (int k = 0; k < 3; k++)
        stg_strv_free(&t.col[k]);
    *text = out.s;
    return STG_OK;
}

int stg_cmd_config(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_on_root(o, n, w, "config", config_root, false);
}
