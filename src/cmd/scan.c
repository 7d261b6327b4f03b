/* SPDX-License-Identifier: MIT */
/*
 * scan: stage-py scan.  The interpreter imports the modules once and
 * reports what it loaded (sys.modules, and /proc/self/maps for shared
 * objects); the root writes the manifest that stages exactly that,
 * atomically.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "manifest.h"
#include "python.h"

/* src/py/scan.py (after glibc.py): what the imports load. */
static const char scan_script[] =
#include "glibc.py.h"
#include "scan.py.h"
    ;

/* A tree's name from its source: the last component, made valid and
 * unique. */
static char *tree_name(const char *source, struct stg_strv *taken)
{
    const char *base = strrchr(source, '/');
    base = base && base[1] ? base + 1 : "root";
    /* "[tree NAME]" must fit inih's section buffer (STG_INI_MAX_SECTION) */
    char *n = stg_xasprintf("%.40s", base);
    stg_manifest_make_name(n);
    char *u = stg_xstrdup(n);
    for (int k = 2; stg_strv_has(taken, u); k++) {
        free(u);
        u = stg_xasprintf("%s-%d", n, k);
    }
    free(n);
    stg_strv_push(taken, u);
    return u;
}

/* "key = a b c", wrapped onto indented continuation lines. */
static void emit_list(struct stg_buf *f, const char *key, char **v, size_t n)
{
    size_t indent = strlen(key) + 3, col = (size_t)stg_buf_printf(f, "%s =", key);
    for (size_t i = 0; i < n; i++) {
        if (col > indent && col + 1 + strlen(v[i]) > 78) {
            stg_buf_printf(f, "\n%*s%s", (int)indent, "", v[i]);
            col = indent + strlen(v[i]);
        } else {
            col += (size_t)stg_buf_printf(f, " %s", v[i]);
        }
    }
    stg_buf_put(f, "\n", 1);
}

static int scan_root(const struct stg_opts *o, struct stg_watchdog *watch, char **text)
{
    (void)watch;
    const char *args[STG_IMPORTS_MAX + 3];
    size_t k = 0;
    for (size_t i = 0; i < o->imports.n && k < STG_IMPORTS_MAX; i++)
        args[k++] = o->imports.v[i];
    args[k] = NULL;
    char *res = NULL;
    int rc = stg_python_run(o->python, NULL, false, scan_script, args, &res);
    if (rc)
        return rc;
    char *name = stg_xasprintf("%.40s", o->name ? o->name : o->imports.v[0]);
    stg_manifest_make_name(name);
    struct stg_buf f = {0};
    char version[64] = "?";
    struct stg_strv taken = {0};
    struct stg_buf imports = {0};
    for (size_t i = 0; i < o->imports.n; i++)
        stg_buf_printf(&imports, "%simport %s", i ? "; " : "", o->imports.v[i]);
    char *save = NULL;
    bool header = false;
    for (char *line = strtok_r(res, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == 'V') {
            snprintf(version, sizeof version, "%s", line + 2);
            continue;
        }
        if (line[0] == 'W') {
            stg_log_warn("scan: %s", line + 2);
            continue;
        }
        if (line[0] != 'P' && line[0] != 'L')
            continue;
        if (!header) {
            stg_buf_printf(&f, "; What `%s -c \"%s\"` loads (Python %s), written by\n"
                       "; stage-py scan: one tree per sys.path entry, in sys.path order, then\n"
                       "; the directories of the shared objects it mapped.\n"
                       "[stage]\nname = %s\npython = %s\n",
                    o->python, imports.s, version, name, o->python);
            header = true;
        }
        /* the manifest reader takes lines of at most 197 characters */
        struct stg_strv w = {0};
        for (char *p = line + 2, *tab; p; p = tab ? tab + 1 : NULL) {
            tab = strchr(p, '\t');
            if (tab)
                *tab = '\0';
            if (strlen(p) <= 180)
                stg_strv_push(&w, p);
            else if (w.n)
                stg_log_warn("scan: '%s/%s': a name too long for a manifest, left out", w.v[0],
                             p);
            else
                rc = stg_err_set(STG_EFAIL, "scan: '%s': a path too long for a manifest "
                                 "(at most 180 characters)", p);
        }
        if (rc) {
            stg_strv_free(&w);
            break;
        }
        char *tn = tree_name(w.v[0], &taken);
        stg_buf_printf(&f, "\n[tree %s]\nsource = %s\n", tn, w.v[0]);
        if (w.n > 1)
            emit_list(&f, "include", w.v + 1, w.n - 1);
        stg_buf_printf(&f, "env = %s\n", line[0] == 'P' ? "PYTHONPATH" : "LD_LIBRARY_PATH");
        free(tn);
        stg_strv_free(&w);
    }
    free(imports.s);
    free(name);
    free(res);
    stg_strv_free(&taken);
    if (rc) {
        free(f.s);
        return rc;
    }
    if (!header) {
        free(f.s);
        return stg_err_set(STG_EFAIL, "scan: '%s' loaded nothing from its sys.path", o->python);
    }
    *text = f.s;
    return STG_OK;
}

int stg_cmd_scan(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_on_root(o, n, w, "scan", scan_root, true);
}
