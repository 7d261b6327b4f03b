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

#include "cmd.h"
#include "conf.h"
#include "log.h"
#include "match.h"
#include "python.h"

/* src/py/check.py (after glibc.py): what the imports load from outside the copy. */
static const char check_script[] =
#include "glibc.py.h"
#include "check.py.h"
    ;

static int check_root(const struct stg_opts *o, struct stg_watchdog *watch, char **report)
{
    (void)watch;
    struct stg_conf conf;
    /* the sources as staged: a [python] section's trees too */
    int rc = stg_conf_load(&conf, o->manifest, STG_MANIFEST_SOURCES);
    const struct stg_manifest *m = conf.m;
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
    if (stat(copy, &st) < 0 || !S_ISDIR(st.st_mode)) {
        stg_conf_free(&conf);
        return stg_err_set(STG_EFAIL, "check: STAGE_PY_DIR '%s': no staged copy on this node",
                           copy);
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
    rc = stg_python_run(o->python, NULL, false, check_script, args, &res);
    free(sources.s);
    stg_conf_free(&conf);
    if (rc)
        return rc;
    struct stg_buf out = {0};
    stg_buf_put(&out, "", 0);
    unsigned long total = 0, original = 0;
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
        if (nf == 4)
            stg_buf_printf(&out, "%s %s: %s (%s)\n", strcmp(v[0], "ORIGINAL") == 0 ? "original"
                                                                        : "outside", v[1],
                    v[2], v[3]);
        else if (nf == 1)
            sscanf(v[0], "%lu %lu", &total, &original);
    }
    stg_buf_printf(&out, "%lu file(s) from outside the copy '%s', %lu module(s) from a staged tree's "
               "original location\n", total, copy, original);
    free(res);
    *report = out.s;
    if (original > 0)
        return stg_err_set(STG_EFAIL, "check: some modules still come from the trees' original "
                           "locations (listed as 'original module')");
    return STG_OK;
}

int stg_cmd_check(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_on_root(o, n, w, "check", check_root, false);
}
