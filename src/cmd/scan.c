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

/* The manifest's name: --name, else the first module, else the first
 * script's name without ".py", each with "-env" for --whole-env (a copy of
 * the whole environment is not that of the module's trees: check tells
 * copies apart by name), else "env". */
static char *manifest_name(const struct stg_opts *o)
{
    char *name;
    if (o->name || o->imports.n) {
        name = stg_xasprintf("%.40s", o->name ? o->name : o->imports.v[0]);
    } else if (o->scripts.n) {
        const char *base = strrchr(o->scripts.v[0], '/') + 1;
        size_t n = strlen(base);
        if (n > 3 && strcmp(base + n - 3, ".py") == 0)
            n -= 3;
        name = stg_xasprintf("%.*s", (int)(n < 40 ? n : 40), base);
    } else {
        return stg_xstrdup("env");
    }
    stg_manifest_make_name(name);
    if (o->whole_env && !o->name) {
        char *e = stg_xasprintf("%s-env", name);
        free(name);
        name = e;
    }
    return name;
}

/* What the trees of the imports leave out: the test suites (unless the
 * imports load from one, or --keep-tests), then --exclude. */
static void excludes(const struct stg_opts *o, const struct stg_strv *suites,
                     struct stg_strv *out)
{
    static const char *const tests[] = {"tests", "test"};
    for (size_t i = 0; i < 2 && !o->keep_tests; i++) {
        if (stg_strv_has(suites, tests[i])) {
            stg_log_warn("scan: the imports load modules from a directory named '%s': "
                         "'%s/' is not excluded", tests[i], tests[i]);
            continue;
        }
        char *p = stg_xasprintf("%s/", tests[i]);
        stg_strv_push(out, p);
        free(p);
    }
    for (size_t i = 0; i < o->excludes.n; i++)
        stg_strv_push(out, o->excludes.v[i]);
}

static int scan_root(const struct stg_opts *o, struct stg_watchdog *watch, char **text)
{
    (void)watch;
    const char *args[STG_IMPORTS_MAX + 1];
    size_t k = 0;
    for (size_t i = 0; i < o->imports.n && k < STG_IMPORTS_MAX; i++)
        args[k++] = o->imports.v[i];
    for (size_t i = 0; i < o->scripts.n && k < STG_IMPORTS_MAX; i++)
        args[k++] = o->scripts.v[i];
    args[k] = NULL;
    char *res = NULL;
    int rc = stg_python_run(o->python, NULL, false, scan_script, args, &res);
    if (rc)
        return rc;
    char *name = manifest_name(o);
    struct stg_buf f = {0};
    char version[64] = "?";
    struct stg_strv taken = {0}, suites = {0}, ex = {0};
    /* what was imported: `python -c "import a; import b"`, the imports of s.py */
    struct stg_buf what = {0};
    for (size_t i = 0; i < o->imports.n; i++)
        stg_buf_printf(&what, "%simport %s", i ? "; " : "`" , o->imports.v[i]);
    if (o->imports.n)
        stg_buf_printf(&what, "\"`");
    for (size_t i = 0; i < o->scripts.n; i++)
        stg_buf_printf(&what, "%s%s", i ? ", " : what.s ? " and the imports of " : "the imports of ",
                       o->scripts.v[i]);
    /* first the facts, then the manifest: T lines come before P lines */
    char *prefix = NULL;
    for (char *line = res, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > 2 && line[0] == 'T') {
            char *t = stg_xasprintf("%.*s", (int)(len - 2), line + 2);
            stg_strv_push(&suites, t);
            free(t);
        }
        else if (len > 2 && line[0] == 'E' && !prefix)
            prefix = stg_xasprintf("%.*s", (int)(len - 2), line + 2);
        else if (len > 2 && line[0] == 'V')
            snprintf(version, sizeof version, "%.*s", (int)(len - 2), line + 2);
    }
    excludes(o, &suites, &ex);
    if (what.s && what.s[0] == '`') {
        /* `import a` -> `python -c "import a"` */
        char *w = stg_xasprintf("`%s -c \"%s", o->python, what.s + 1);
        free(what.s);
        what.s = w;
    }
    if (o->whole_env)
        stg_buf_printf(&f, "; The whole environment of %s (Python %s)%s%s, written by\n",
                       o->python, version, what.s ? ", for " : "", what.s ? what.s : "");
    else
        stg_buf_printf(&f, "; What %s load%s (Python %s), written by\n", what.s,
                       (o->imports.n > 0) + o->scripts.n > 1 ? "" : "s", version);
    if (o->whole_env)
        stg_buf_printf(&f, "; stage-py scan: its prefix as a [python] section, then the\n"
                           "; directories of the shared objects it mapped outside it.\n");
    else
        stg_buf_printf(&f, "; stage-py scan: one tree per sys.path entry, in sys.path order, then\n"
                           "; the directories of the shared objects it mapped.\n");
    stg_buf_printf(&f, "[stage]\nname = %s\n", name);
    if (o->bundle)
        stg_buf_printf(&f, "bundle = %s\n", o->bundle);
    if (o->whole_env) {
        if (!prefix || strlen(prefix) > 180)
            rc = stg_err_set(STG_EFAIL, "scan: '%s' did not tell its prefix, or it is longer "
                             "than a manifest's line holds", o->python);
        else
            stg_buf_printf(&f, "\n[python env]\nprefix = %s\n", prefix);
        if (ex.n)
            emit_list(&f, "exclude", ex.v, ex.n);
    } else {
        stg_buf_printf(&f, "python = %s\n", o->python);
    }
    bool trees = false;
    char *save = NULL;
    for (char *line = strtok_r(res, "\n", &save); line && rc == STG_OK;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == 'W') {
            stg_log_warn("scan: %s", line + 2);
            continue;
        }
        /* a whole environment: the [python] section stages sys.path */
        if (line[0] != 'L' && (line[0] != 'P' || o->whole_env))
            continue;
        trees = trees || line[0] == 'P';
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
        if (line[0] == 'P' && ex.n)
            emit_list(&f, "exclude", ex.v, ex.n);
        stg_buf_printf(&f, "env = %s\n", line[0] == 'P' ? "PYTHONPATH" : "LD_LIBRARY_PATH");
        free(tn);
        stg_strv_free(&w);
    }
    free(what.s);
    free(name);
    free(prefix);
    free(res);
    stg_strv_free(&taken);
    stg_strv_free(&suites);
    stg_strv_free(&ex);
    if (rc == STG_OK && !trees && !o->whole_env)
        rc = stg_err_set(STG_EFAIL, "scan: '%s' loaded nothing from its sys.path", o->python);
    if (rc) {
        free(f.s);
        return rc;
    }
    *text = f.s;
    return STG_OK;
}

int stg_cmd_scan(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_on_root(o, n, w, "scan", scan_root, true);
}
