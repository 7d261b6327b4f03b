/* SPDX-License-Identifier: MIT */
/*
 * check: stage-py check.  Under the settings of a staging run, the
 * interpreter imports the modules with an audit hook that sees every file
 * it opens, then reports each one that came from outside the copy, and why
 * where it can tell.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "cmd.h"
#include "conf.h"
#include "log.h"
#include "match.h"
#include "python.h"
#include "walk.h"

/* src/py/check.py (after glibc.py): what the imports load from outside the copy. */
static const char check_script[] =
#include "glibc.py.h"
#include "check.py.h"
    ;

/* Is dir's last component "<name>-<key>", a copy of the manifest named
 * name (cache.h's naming)? */
static bool copy_of(const char *dir, const char *name)
{
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    size_t n = strlen(name);
    if (strncmp(base, name, n) != 0 || base[n] != '-' || strlen(base + n + 1) != 16)
        return false;
    return strspn(base + n + 1, "0123456789abcdef") == 16;
}

/* A manifest that names a bundle: were the trees the same when it was
 * packed?  (A job stages what was packed; it does not walk the trees.)
 * Appends to out what it finds. */
static int check_bundle(const struct stg_manifest *m, struct stg_buf *out)
{
    struct stg_bundle b;
    struct stg_walk *s = NULL;
    int rc = stg_bundle_open(&b, m->bundle, m);
    if (rc == STG_OK && b.trees_key[0])
        rc = stg_walk_run(m, &s);
    if (rc == STG_OK && s && strcmp(s->trees_key, b.trees_key) != 0) {
        stg_buf_printf(out, "bundle %s: packed from the trees with key %s; they have key %s "
                       "now (the trees' key, not its copies': %s-%s)\n", m->bundle, b.trees_key,
                       s->trees_key, m->name, b.key);
        rc = stg_err_set(STG_EFAIL, "check: the trees have changed since bundle '%s' was "
                         "packed: jobs stage what was packed (stage-py pack it again)",
                         m->bundle);
    } else if (rc == STG_OK && s) {
        stg_buf_printf(out, "bundle %s: packed from the trees as they are now (the trees' "
                       "key %s; its copies are %s-%s)\n", m->bundle, s->trees_key, m->name,
                       b.key);
    }
    stg_walk_free(&s);
    stg_bundle_close(&b);
    return rc;
}

static int check_root(const struct stg_opts *o, struct stg_watchdog *watch, char **report)
{
    (void)watch;
    struct stg_conf conf;
    /* the sources as staged: a [python] section's trees too */
    int rc = o->bundle ? stg_conf_load_bundle(&conf, o->bundle, STG_MANIFEST_SOURCES)
                       : stg_conf_load(&conf, o->manifest, STG_MANIFEST_SOURCES);
    const struct stg_manifest *m = conf.m;
    /* in messages: the manifest, or the bundle that carries it */
    const char *what = o->bundle ? o->bundle : o->manifest;
    if (rc) {
        stg_conf_free(&conf);
        return rc;
    }
    const char *copy = getenv("STAGE_PY_DIR");
    struct stat st;
    if (!copy || !*copy) {
        stg_conf_free(&conf);
        return stg_err_set(STG_EUSAGE, "check: STAGE_PY_DIR is not set: run it with the "
                           "settings of a staging run (. ./env.sh, or eval \"$(stage-py ...)\")");
    }
    if (!copy_of(copy, m->name)) {
        rc = stg_err_set(STG_EUSAGE, "check: STAGE_PY_DIR '%s' is not a copy of '%s' (whose "
                         "copies are named '%s-<key>'): source the settings of the run that "
                         "staged this manifest",
                         copy, what, m->name);
        stg_conf_free(&conf);
        return rc;
    }
    /* the interpreter that the job runs: given, else the staged one of a
     * whole environment, else the manifest's */
    char *staged = NULL;
    if (m->pyenv)
        staged = stg_xasprintf("%s%s", copy, m->pyenv->interpreter ? m->pyenv->interpreter : "");
    const char *python = o->python ? o->python : staged ? staged : m->python;
    if (!python) {
        stg_conf_free(&conf);
        return stg_err_set(STG_EUSAGE, "check: '%s' names no interpreter (no 'python =', no "
                           "[python] section): give --python", what);
    }
    if (stat(copy, &st) < 0 || !S_ISDIR(st.st_mode)) {
        free(staged);
        stg_conf_free(&conf);
        return stg_err_set(STG_EFAIL, "check: STAGE_PY_DIR '%s': no staged copy on this node",
                           copy);
    }
    /* the name is not enough: two manifests may share one (the trees of
     * some modules, and the whole environment around them) */
    for (size_t i = 0; i < m->ntrees; i++) {
        char *at = stg_xasprintf("%s%s", copy, m->trees[i].source);
        bool has = lstat(at, &st) == 0;
        free(at);
        if (!has) {
            rc = stg_err_set(STG_EUSAGE, "check: STAGE_PY_DIR '%s' is not a copy of '%s': it "
                             "holds no '%s' (tree '%s'); it is the copy of another manifest "
                             "named '%s': source the settings of the run that staged this "
                             "manifest", copy, what, m->trees[i].source,
                             m->trees[i].name, m->name);
            free(staged);
            stg_conf_free(&conf);
            return rc;
        }
    }
    struct stg_buf sources = {0};
    stg_buf_put(&sources, "", 0);
    for (size_t i = 0; i < m->ntrees; i++) {
        const struct stg_tree *tr = &m->trees[i];
        if (!tr->derived)
            stg_buf_printf(&sources, "~%s\n", tr->source);
        for (size_t k = 0; k < (tr->include.n ? tr->include.n : 1); k++) {
            if (!tr->include.n) {
                stg_buf_printf(&sources, "=%s\n", tr->source);
            } else if (stg_match_is_glob(tr->include.v[k]) &&
                       !strchr(tr->include.v[k], '\\')) {
                stg_buf_printf(&sources, "*%s/%s\n", tr->source, tr->include.v[k]);
            } else {
                /* a name (derived trees escape their names' glob characters) */
                char *name = stg_xstrdup(tr->include.v[k]), *w = name;
                for (const char *c = tr->include.v[k]; *c; c++) {
                    if (*c == '\\' && c[1])
                        c++;
                    *w++ = *c;
                }
                *w = '\0';
                stg_buf_printf(&sources, "=%s/%s\n", tr->source, name);
                free(name);
            }
        }
    }
    const char *args[STG_IMPORTS_MAX + 3] = {copy, sources.s};
    size_t k = 2;
    for (size_t i = 0; i < o->imports.n && k < STG_IMPORTS_MAX + 2; i++)
        args[k++] = o->imports.v[i];
    args[k] = NULL;
    char *res = NULL;
    rc = stg_python_run(python, NULL, false, check_script, args, &res);
    free(sources.s);
    if (rc) {
        free(staged);
        stg_conf_free(&conf);
        return rc;
    }
    char exe[4096] = "";
    struct stg_buf out = {0};
    stg_buf_put(&out, "", 0);
    unsigned long total = 0, original = 0;
    bool bypassed = false;
    char *save = NULL;
    for (char *line = strtok_r(res, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *v[4];
        int nf = 0;
        for (char *p = line, *tab; p && nf < 4; p = tab ? tab + 1 : NULL) {
            tab = strchr(p, '\t');
            if (tab)
                *tab = '\0';
            v[nf++] = p;
        }
        /* bypassed: that is the reason for each module, not what the line
         * would guess */
        if (nf == 4 && bypassed && strcmp(v[0], "ORIGINAL") == 0 && strcmp(v[1], "module") == 0 &&
            strncmp(v[3], "the copy has it", 15) == 0)
            stg_buf_printf(&out, "original module: %s (the copy has it, but '%s' ran, not the "
                           "staged interpreter)\n", v[2], exe);
        else if (nf == 4)
            stg_buf_printf(&out, "%s %s: %s (%s)\n", strcmp(v[0], "ORIGINAL") == 0 ? "original"
                                                                        : "outside", v[1],
                    v[2], v[3]);
        else if (nf == 2 && strcmp(v[0], "EXE") == 0) {
            /* first (check.py): a whole environment's modules come from the
             * copy only if its staged interpreter runs; /usr/bin/python3 by
             * its absolute path is the original, with the original's
             * sys.path */
            snprintf(exe, sizeof exe, "%s", v[1]);
            bypassed = staged && strncmp(exe, copy, strlen(copy)) != 0;
        }
        else if (nf == 1)
            sscanf(v[0], "%lu %lu", &total, &original);
    }
    stg_buf_printf(&out, "%lu file(s) from outside the copy '%s', %lu module(s) from a staged tree's "
               "original location\n", total, copy, original);
    free(res);
    if (original > 0 && bypassed)
        rc = stg_err_set(STG_EFAIL, "check: some modules still come from the trees' original "
                         "locations (listed as 'original module'): '%s' ran, not the staged "
                         "interpreter '%s'; run python3 as the settings put it first on PATH, "
                         "not by an absolute path", exe, staged);
    else if (original > 0)
        rc = stg_err_set(STG_EFAIL, "check: some modules still come from the trees' original "
                         "locations (listed as 'original module')");
    if (rc == STG_OK && m->bundle)
        rc = check_bundle(m, &out);
    *report = out.s;
    free(staged);
    stg_conf_free(&conf);
    return rc;
}

int stg_cmd_check(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_on_root(o, n, w, "check", check_root, false);
}
