/* SPDX-License-Identifier: MIT */
/*
 * pyenv: [python NAME] prefix = P, resolved on the root into trees.
 *
 * The interpreter of P is asked once (python -I) what it is made of: its
 * real executable, its standard library (with lib-dynload), every sys.path
 * entry after site processing (so .pth files that add directories are
 * followed), and the libpython it maps from its prefixes (a shared
 * build's).  What is staged:
 *   - from P itself: the include paths if given; else every sys.path entry
 *     below P, and for a system prefix (/usr, /usr/local) the
 *     interpreter's names in bin/, for any other bin, lib, lib64 and
 *     pyvenv.cfg;
 *   - always: the interpreter, the standard library and lib-dynload, every
 *     sys.path entry outside P (a venv's base interpreter and its library),
 *     and that libpython.
 * Each of these paths becomes an include name of a derived tree whose
 * source is its directory, so the walk, the key, links and excludes work
 * as for any tree.  The copy's absolute paths (pyvenv.cfg, .pth files, #!
 * lines) are rewritten on each node after unpacking (relocate.c).
 */
#include "config.h"

#include "pyenv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "match.h"
#include "python.h"
#include "util.h"

/* src/py/facts.py: what the environment of the interpreter is made of. */
static const char facts_script[] =
#include "facts.py.h"
    ;

static const char *const kind_names[] = {"plain", "venv", "conda"};

const char *stg_pyenv_kind_name(enum stg_env_kind k)
{
    return kind_names[k];
}

int stg_pyenv_kind_parse(const char *s, enum stg_env_kind *k)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *k = (enum stg_env_kind)i;
            return 0;
        }
    return -1;
}

bool stg_pyenv_is_system(const char *prefix)
{
    return strcmp(prefix, "/usr") == 0 || strcmp(prefix, "/usr/local") == 0;
}

char *stg_pyenv_exclude_for(const char *pattern, const char *rel)
{
    size_t n = strlen(pattern);
    bool dir = n > 1 && pattern[n - 1] == '/';
    char *core = stg_xstrndup(pattern, dir ? n - 1 : n);
    char *out = NULL;
    if (!strchr(core, '/')) {
        out = stg_xstrdup(pattern);     /* a name: it applies everywhere */
    } else if (rel) {
        const char *c = core[0] == '/' ? core + 1 : core;
        size_t r = strlen(rel);
        if (r == 0)
            out = stg_xasprintf("/%s%s", c, dir ? "/" : "");
        else if (strncmp(c, rel, r) == 0 && c[r] == '/' && c[r + 1])
            out = stg_xasprintf("/%s%s", c + r + 1, dir ? "/" : "");
    }
    free(core);
    return out;
}

/* Record "file:line: what" for the manifest's [python] section. */
static int fail(const struct stg_manifest *m, int status, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(const struct stg_manifest *m, int status, int line, const char *fmt, ...)
{
    char msg[STG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return stg_err_set(status, "%s:%d: %s", m->path, line, msg);
}

/* The logical path of p if it lies below the prefix (given as itself or as
 * its real path), else NULL.  Returns a malloc'd string. */
static char *below(const char *p, const char *prefix, const char *real)
{
    const char *bases[2] = {prefix, real};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(bases[i]);
        if (strncmp(p, bases[i], n) == 0 && (p[n] == '/' || p[n] == '\0'))
            return stg_xasprintf("%s%s", prefix, p + n);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* true if the path p lies below the directory d. */
static bool inside(const char *p, const char *d)
{
    size_t n = strlen(d);
    return strncmp(p, d, n) == 0 && p[n] == '/';
}

/* A name as an include pattern that matches only itself. */
static char *literal(const char *name)
{
    char *out = stg_xmalloc(2 * strlen(name) + 1), *o = out;
    for (const char *c = name; *c; c++) {
        if (strchr("*?[\\", *c))
            *o++ = '\\';
        *o++ = *c;
    }
    *o = '\0';
    return out;
}

/* The selected paths, one derived tree per directory. */
static int add_trees(struct stg_manifest *m, struct stg_strv *sel, const struct stg_strv *globs,
                     const char *real_prefix)
{
    struct stg_pyenv *e = m->pyenv;
    qsort(sel->v, sel->n, sizeof *sel->v, cmp_str);
    size_t first = m->ntrees;
    for (size_t i = 0; i < sel->n; i++) {
        const char *a = sel->v[i];
        bool covered = i > 0 && strcmp(a, sel->v[i - 1]) == 0;
        for (size_t j = 0; j < i && !covered; j++)
            covered = inside(a, sel->v[j]) && !stg_strv_has(globs, sel->v[j]);
        if (covered)
            continue;
        const char *slash = strrchr(a, '/');
        if (slash == a) {
            stg_log_warn("[python %s]: '%s' is a top-level directory: not staged", e->name, a);
            continue;
        }
        char *dir = stg_xstrndup(a, (size_t)(slash - a));
        struct stg_tree *t = NULL;
        for (size_t k = first; k < m->ntrees && !t; k++)
            if (strcmp(m->trees[k].source, dir) == 0)
                t = &m->trees[k];
        if (!t) {
            char *real = realpath(dir, NULL);
            if (!real) {
                int rc = fail(m, STG_EUSAGE, e->prefix_line,
                              "[python %s]: '%s': %s", e->name, dir, strerror(errno));
                free(dir);
                return rc;
            }
            m->trees = stg_xrealloc(m->trees, (m->ntrees + 1) * sizeof *m->trees);
            t = &m->trees[m->ntrees++];
            memset(t, 0, sizeof *t);
            t->name = stg_xasprintf("%s:%s", e->name, dir);
            t->line = e->line;
            t->source = dir;
            t->source_line = e->prefix_line;
            t->real = real;
            t->include_line = e->include.n ? e->include_line : e->prefix_line;
            t->env_none = true;
            t->env_given = true;
            t->derived = true;
            char *rel = below(dir, e->prefix, real_prefix);
            const char *r = rel ? rel + strlen(e->prefix) : NULL;
            if (r && *r == '/')
                r++;
            for (size_t k = 0; k < e->exclude.n; k++) {
                char *x = stg_pyenv_exclude_for(e->exclude.v[k], r);
                if (x)
                    stg_strv_push(&t->exclude, x);
                free(x);
            }
            free(rel);
        } else {
            free(dir);
        }
        /* a glob of the include key stays a glob; any other name is literal */
        char *name = stg_strv_has(globs, a) ? stg_xstrdup(slash + 1) : literal(slash + 1);
        if (!stg_strv_has(&t->include, name))
            stg_strv_push(&t->include, name);
        free(name);
    }
    return STG_OK;
}

static int resolve_walked(int rc, unsigned flags, struct stg_manifest **m);

int stg_pyenv_load(const char *path, unsigned flags, struct stg_manifest **m)
{
    return resolve_walked(stg_manifest_load(path, flags, m), flags, m);
}

int stg_pyenv_load_text(const char *text, const char *label, const char *bundle, unsigned flags,
                        struct stg_manifest **m)
{
    int rc = stg_manifest_load_text(text, label, flags, m);
    if (rc == STG_OK && bundle) {
        free((*m)->bundle);
        (*m)->bundle = stg_xstrdup(bundle);
    }
    return resolve_walked(rc, flags, m);
}

/* After loading: with STG_MANIFEST_SOURCES and sources to walk, resolve
 * the [python] section. */
static int resolve_walked(int rc, unsigned flags, struct stg_manifest **m)
{
    bool walked = (flags & STG_MANIFEST_SOURCES) &&
                  !((*m && (*m)->bundle) && (flags & STG_MANIFEST_BUNDLE_FIRST));
    if (rc == STG_OK && (*m)->pyenv && walked) {
        /* The environment's interpreter says what it needs: trees of their own. */
        rc = stg_pyenv_resolve(*m);
        if (rc)
            stg_manifest_free(m);
    }
    return rc;
}

int stg_pyenv_resolve(struct stg_manifest *m)
{
    struct stg_pyenv *e = m->pyenv;
    const char *P = e->prefix;
    struct stat st;
    if (stat(P, &st) < 0)
        return fail(m, STG_EUSAGE, e->prefix_line, "prefix '%s': %s", P,
                    strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(m, STG_EUSAGE, e->prefix_line, "prefix '%s' is not a "
                    "directory", P);
    static const char *const names[] = {"bin/python3", "bin/python"};
    for (size_t i = 0; i < 2 && !e->interpreter; i++) {
        char *x = stg_xasprintf("%s/%s", P, names[i]);
        if (access(x, X_OK) == 0)
            e->interpreter = x;
        else
            free(x);
    }
    if (!e->interpreter)
        return fail(m, STG_EUSAGE, e->prefix_line, "prefix '%s' has no "
                    "bin/python3 or bin/python: not a Python environment", P);
    char *cfg = stg_xasprintf("%s/pyvenv.cfg", P), *meta = stg_xasprintf("%s/conda-meta", P);
    e->kind = stat(cfg, &st) == 0 && S_ISREG(st.st_mode)   ? STG_ENV_VENV
              : stat(meta, &st) == 0 && S_ISDIR(st.st_mode) ? STG_ENV_CONDA
                                                             : STG_ENV_PLAIN;
    free(cfg);
    free(meta);

    char *facts = NULL;
    const char *args[] = {NULL};
    if (stg_python_run(e->interpreter, NULL, true, facts_script, args, &facts) != STG_OK) {
        char why[STG_MSG_MAX];
        int status = stg_err_take(why, sizeof why);  /* a refusal to run it as root is the manifest's */
        return fail(m, status, e->prefix_line, "[python %s]: %s", e->name, why);
    }
    char *real_prefix = realpath(P, NULL);
    if (!real_prefix)
        real_prefix = stg_xstrdup(P);
    char version[16] = "", *exe = NULL;
    struct stg_strv sel = {0}, globs = {0};
    bool whole = !e->include.n && !stg_pyenv_is_system(P);
    /* the prefix's own part */
    if (e->include.n) {
        for (size_t i = 0; i < e->include.n; i++) {
            char *a = stg_xasprintf("%s/%s", P, e->include.v[i]);
            stg_strv_push(&sel, a);
            if (stg_match_is_glob(e->include.v[i]))
                stg_strv_push(&globs, a);
            free(a);
        }
    } else if (whole) {
        static const char *const tops[] = {"bin", "lib", "lib64", "pyvenv.cfg"};
        for (size_t i = 0; i < sizeof tops / sizeof *tops; i++) {
            char *a = stg_xasprintf("%s/%s", P, tops[i]);
            if (lstat(a, &st) == 0)
                stg_strv_push(&sel, a);
            free(a);
        }
    }
    stg_strv_push(&sel, e->interpreter);
    char *save = NULL;
    for (char *line = strtok_r(facts, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strlen(line) < 3 || line[1] != ' ' || line[2] != '/') {
            if (line[0] == 'V')
                snprintf(version, sizeof version, "%s", line + 2);
            continue;
        }
        const char *p = line + 2;
        char *mine = below(p, P, real_prefix);
        const char *base = strrchr(p, '/') + 1;
        bool stdlib = line[0] == 'T' || strcmp(base, "lib-dynload") == 0;
        /* below P: the default or the include list decide, except for what
         * the interpreter cannot start without */
        if (line[0] == 'X') {
            exe = stg_xstrdup(mine ? mine : p);
            stg_strv_push(&sel, exe);
        } else if (!mine || stdlib || line[0] == 'L' || !e->include.n) {
            stg_strv_push(&sel, mine ? mine : p);
        }
        free(mine);
    }
    free(facts);
    int rc = STG_OK;
    if (!exe || !version[0])
        rc = fail(m, STG_EFAIL, e->prefix_line, "[python %s]: '%s' did not say "
                  "what it is made of", e->name, e->interpreter);
    if (rc == STG_OK && !e->include.n && !whole) {
        /* a system prefix: the interpreter's other names in bin/ */
        char *names3[3] = {stg_xasprintf("%s/bin/python", P), stg_xasprintf("%s/bin/python3", P),
                           stg_xasprintf("%s/bin/python%s", P, version)};
        for (int i = 0; i < 3; i++) {
            char *r = realpath(names3[i], NULL);
            char *rl = r ? below(r, P, real_prefix) : NULL;
            if (rl && strcmp(rl, exe) == 0)
                stg_strv_push(&sel, names3[i]);
            free(rl);
            free(r);
            free(names3[i]);
        }
    }
    if (rc == STG_OK)
        rc = add_trees(m, &sel, &globs, real_prefix);
    if (rc == STG_OK)
        stg_log_debug("[python %s]: '%s' (Python %s, %s): %zu paths in %zu trees", e->name,
                      e->interpreter, version, kind_names[e->kind], sel.n, m->ntrees);
    free(exe);
    free(real_prefix);
    stg_strv_free(&sel);
    stg_strv_free(&globs);
    return rc;
}
