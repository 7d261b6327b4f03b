/* SPDX-License-Identifier: MIT */
/*
 * t-pyenv: a [python] section resolved into trees.  The kinds by name and
 * back; which prefixes are the system's; a section's exclude patterns for
 * each derived tree; and stg_pyenv_resolve() on real prefixes made here: a
 * venv of /usr/bin/python3 (its trees appended after the manifest's own,
 * its interpreter, the base interpreter and standard library, the kind
 * venv, the excludes), the same with include, a conda-like prefix, /usr
 * itself; and every prefix that cannot be resolved (missing, a file, no
 * interpreter, one that fails or says nothing) an error naming file:line.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "manifest.h"
#include "pyenv.h"
#include "tap.h"
#include "util.h"

#define PY "/usr/bin/python3"

static char top[4096];
static char *path;          /* the manifest */
static char err[STG_MSG_MAX];

static void excl(const char *pat, const char *rel, const char *want)
{
    char *got = stg_pyenv_exclude_for(pat, rel);
    is_str(got ? got : "(none)", want, "exclude '%s' for '%s'", pat, rel ? rel : "(outside)");
    free(got);
}

/* Load "[stage] name = t" with sections (stg_manifest_load()), then
 * stg_pyenv_resolve().  OUT m (NULL if it did not load), err. */
static int resolve(const char *sections, struct stg_manifest **m)
{
    char *text = stg_xasprintf("[stage]\nname = t\n%s", sections);
    int rc = fx_manifest_load(path, text, stg_manifest_load, m, err, sizeof err);
    free(text);
    if (rc != STG_OK) {
        diag("the manifest did not load: %s", err);
        return rc;
    }
    rc = stg_pyenv_resolve(*m);
    stg_err_take(err, sizeof err);
    return rc;
}

/* The tree of m whose source is source, or NULL. */
static const struct stg_tree *tree(const struct stg_manifest *m, const char *source)
{
    for (size_t i = 0; m && i < m->ntrees; i++)
        if (strcmp(m->trees[i].source, source) == 0)
            return &m->trees[i];
    return NULL;
}

/* Does the tree of m at source include every name of the NULL-terminated
 * names? */
static bool includes(const struct stg_manifest *m, const char *source, const char *const *names)
{
    const struct stg_tree *t = tree(m, source);
    for (size_t i = 0; t && names[i]; i++)
        if (!stg_strv_has(&t->include, names[i]))
            return false;
    return t != NULL;
}

/* The trees of m after the first `own` are each derived, env = none, and
 * named "NAME:SOURCE". */
static bool derived_after(const struct stg_manifest *m, size_t own, const char *name)
{
    if (!m || m->ntrees <= own)
        return false;
    for (size_t i = 0; i < m->ntrees; i++) {
        const struct stg_tree *t = &m->trees[i];
        char *want = stg_xasprintf("%s:%s", name, t->source);
        bool good = i < own ? !t->derived
                            : t->derived && t->env_none && strcmp(t->name, want) == 0;
        free(want);
        if (!good)
            return false;
    }
    return true;
}

static void show(const struct stg_manifest *m)
{
    for (size_t i = 0; m && i < m->ntrees; i++) {
        struct stg_buf b = {0};
        stg_buf_printf(&b, "tree %s: %s:", m->trees[i].name, m->trees[i].source);
        for (size_t k = 0; k < m->trees[i].include.n; k++)
            stg_buf_printf(&b, " %s", m->trees[i].include.v[k]);
        for (size_t k = 0; k < m->trees[i].exclude.n; k++)
            stg_buf_printf(&b, " -%s", m->trees[i].exclude.v[k]);
        diag("%s", b.s);
        free(b.s);
    }
}

/* OUT dir, name: p split at its last '/' (malloc'd). */
static void split(const char *p, char **dir, char **name)
{
    const char *slash = strrchr(p, '/');
    *dir = stg_xstrndup(p, slash ? (size_t)(slash - p) : 0);
    *name = stg_xstrdup(slash ? slash + 1 : p);
}

/* One line of what /usr/bin/python3 prints for code, or "". */
static void ask_python(const char *code, char *out, size_t len)
{
    char *cmd = stg_xasprintf("%s -I -c '%s'", PY, code);
    FILE *p = popen(cmd, "r");
    out[0] = '\0';
    if (p) {
        if (!fgets(out, (int)len, p))
            out[0] = '\0';
        pclose(p);
    }
    out[strcspn(out, "\n")] = '\0';
    free(cmd);
}

static void test_names(void)
{
    static const enum stg_env_kind kinds[] = {STG_ENV_PLAIN, STG_ENV_VENV, STG_ENV_CONDA};
    static const char *const names[] = {"plain", "venv", "conda"};
    bool round = true;
    for (int i = 0; i < 3; i++) {
        enum stg_env_kind k = STG_ENV_PLAIN;
        const char *n = stg_pyenv_kind_name(kinds[i]);
        round = round && n && strcmp(n, names[i]) == 0 && stg_pyenv_kind_parse(n, &k) == 0 &&
                k == kinds[i];
    }
    ok(round, "every kind: its name, and the name parsed back to it (plain, venv, conda)");
    enum stg_env_kind k = STG_ENV_CONDA;
    ok(stg_pyenv_kind_parse("virtualenv", &k) < 0 && stg_pyenv_kind_parse("Venv", &k) < 0 &&
       stg_pyenv_kind_parse("venv ", &k) < 0 && k == STG_ENV_CONDA,
       "an unknown name (another word, another case, a blank): -1, the kind untouched");

    /* moved from t-relocate.c */
    ok(stg_pyenv_is_system("/usr") && stg_pyenv_is_system("/usr/local") &&
       !stg_pyenv_is_system("/opt/envs/x") && !stg_pyenv_is_system("/usr/lib"),
       "system prefixes");
    ok(!stg_pyenv_is_system("/") && !stg_pyenv_is_system("/usrx") &&
       !stg_pyenv_is_system("/usr/local/x") && !stg_pyenv_is_system("/opt/usr"),
       "... not /, /usrx, /usr/local/x nor /opt/usr");
    ok(stg_pyenv_kind_parse("venv", &k) == 0 && k == STG_ENV_VENV &&
       stg_pyenv_kind_parse("conda", &k) == 0 && k == STG_ENV_CONDA &&
       strcmp(stg_pyenv_kind_name(STG_ENV_PLAIN), "plain") == 0 &&
       stg_pyenv_kind_parse("", &k) < 0, "kinds by name");
}

static void test_excludes(void)
{
    /* moved from t-relocate.c */
    excl("test/", "lib", "test/");
    excl("*.a", NULL, "*.a");
    excl("/lib/python3.11/test", "", "/lib/python3.11/test");
    excl("/lib/python3.11/test", "lib", "/python3.11/test");
    excl("/lib/python3.11/test/", "lib/python3.11", "/test/");
    excl("lib/python3.11/test", "lib/python3.11", "/test");
    excl("/lib/python3.11/test", "lib/python3", "(none)");
    excl("/lib/python3.11/test", "share", "(none)");
    excl("/lib/python3.11", "lib/python3.11", "(none)");
    excl("/lib/python3.11/test", NULL, "(none)");
    /* more */
    excl("__pycache__/", NULL, "__pycache__/");
    excl("*.pyc", "lib/python3.11", "*.pyc");
    excl("lib/x", "", "/lib/x");
    excl("/lib/x/", "", "/lib/x/");
    excl("/lib/x", "lib/x/y", "(none)");
    excl("/lib/python3.11/test", "lib/python3.11/test", "(none)");
}

static void test_venv(void)
{
    char version[32], stdlib[4096], exe[4096];
    ask_python("import sys; print(\"%d.%d\" % sys.version_info[:2])", version, sizeof version);
    ask_python("import sysconfig; print(sysconfig.get_path(\"stdlib\"))", stdlib, sizeof stdlib);
    char *real = realpath(PY, NULL);
    snprintf(exe, sizeof exe, "%s", real ? real : "");
    free(real);
    char *venv = fx_path(top, "venv");
    char *cmd = stg_xasprintf("%s -m venv --without-pip '%s' >/dev/null 2>&1", PY, venv);
    bool made = access(PY, X_OK) == 0 && version[0] && stdlib[0] && exe[0] &&
                system(cmd) == 0;
    free(cmd);
    if (!made) {
        for (int i = 0; i < 14; i++)
            skip("no venv of " PY " (python3-venv)");
        free(venv);
        return;
    }
    char *src = fx_path(top, "src");
    fx_mkdir(src, 0755);
    char *sp = stg_xasprintf("lib/python%s/site-packages/skipme", version);
    char *sections = stg_xasprintf("[tree own]\nsource = %s\n[python env]\nprefix = %s\n"
                                   "exclude = __pycache__/ /%s\n", src, venv, sp);
    struct stg_manifest *m = NULL;
    int rc = resolve(sections, &m);
    free(sections);
    ok(rc == STG_OK && m, "a venv of " PY ": resolved (%s)", err);
    char *interp = stg_xasprintf("%s/bin/python3", venv);
    is_str(m && m->pyenv ? m->pyenv->interpreter : NULL, interp, "... its interpreter, "
           "PREFIX/bin/python3");
    free(interp);
    ok(m && m->pyenv && m->pyenv->kind == STG_ENV_VENV, "... its kind: venv (a pyvenv.cfg)");
    ok(m && m->ntrees > 1 && strcmp(m->trees[0].name, "own") == 0 && derived_after(m, 1, "env"),
       "... the manifest's own tree first, then the derived trees, appended: each env = none, "
       "named env:SOURCE (%zu trees)", m ? m->ntrees : 0);
    static const char *const whole[] = {"bin", "lib", "pyvenv.cfg", NULL};
    ok(includes(m, venv, whole), "... the prefix: its bin, lib and pyvenv.cfg");
    char *exe_dir, *exe_name, *lib_dir, *lib_name;
    split(exe, &exe_dir, &exe_name);
    split(stdlib, &lib_dir, &lib_name);
    const char *const exe_names[] = {exe_name, NULL}, *const lib_names[] = {lib_name, NULL};
    ok(includes(m, exe_dir, exe_names), "... the real interpreter it leads to (%s)", exe);
    ok(includes(m, lib_dir, lib_names), "... the base interpreter's standard library (%s)",
       stdlib);
    const struct stg_tree *own = tree(m, venv);
    char *anchored = stg_xasprintf("/%s", sp);
    ok(own && stg_strv_has(&own->exclude, "__pycache__/") &&
       stg_strv_has(&own->exclude, anchored), "... the prefix's tree: both exclude patterns");
    const struct stg_tree *base = tree(m, lib_dir);
    ok(base && base->exclude.n == 1 && strcmp(base->exclude.v[0], "__pycache__/") == 0,
       "... a tree outside the prefix: only the pattern that applies everywhere");
    if (tap_failed)
        show(m);
    stg_manifest_free(&m);

    /* include: only those paths of the prefix (and what it cannot start without) */
    sections = stg_xasprintf("[python env]\nprefix = %s\ninclude = bin\n", venv);
    rc = resolve(sections, &m);
    free(sections);
    own = tree(m, venv);
    ok(rc == STG_OK && own && own->include.n == 1 && strcmp(own->include.v[0], "bin") == 0,
       "include = bin: of the prefix, its bin alone (%s)", err);
    ok(includes(m, lib_dir, lib_names) && derived_after(m, 0, "env"),
       "... and still the standard library, in derived trees");
    stg_manifest_free(&m);

    /* the same interpreter with a conda-meta directory: a conda prefix */
    char *conda = fx_path(top, "conda"), *cbin = fx_path(top, "conda/bin");
    char *cpy = fx_path(top, "conda/bin/python3"), *meta = fx_path(top, "conda/conda-meta");
    fx_mkdir(conda, 0755);
    fx_mkdir(cbin, 0755);
    fx_mkdir(meta, 0755);
    if (symlink(PY, cpy) < 0)
        diag("symlink %s: %s", cpy, strerror(errno));
    sections = stg_xasprintf("[python c]\nprefix = %s\n", conda);
    rc = resolve(sections, &m);
    free(sections);
    static const char *const cbins[] = {"bin", NULL};
    ok(rc == STG_OK && m && m->pyenv->kind == STG_ENV_CONDA && includes(m, conda, cbins),
       "a prefix with conda-meta/: its kind conda, its bin staged (%s)", err);
    stg_manifest_free(&m);

    /* a system prefix: the interpreter's names in bin/, not all of /usr */
    rc = resolve("[python sys]\nprefix = /usr\n", &m);
    const struct stg_tree *ub = tree(m, "/usr/bin");
    ok(rc == STG_OK && m && m->pyenv->kind == STG_ENV_PLAIN && ub &&
       stg_strv_has(&ub->include, "python3") && !stg_strv_has(&ub->include, "bin") &&
       !tree(m, "/usr") && !tree(m, "/"),
       "prefix /usr: its kind plain, python3 in /usr/bin staged, not the whole prefix (%s)",
       err);
    ok(includes(m, lib_dir, lib_names), "... and its standard library");
    if (tap_failed)
        show(m);
    stg_manifest_free(&m);

    free(anchored);
    free(exe_dir);
    free(exe_name);
    free(lib_dir);
    free(lib_name);
    free(conda);
    free(cbin);
    free(cpy);
    free(meta);
    free(sp);
    free(src);
    free(venv);
}

/* stg_pyenv_resolve() of prefix fails with status, the message at the
 * prefix's line (4) naming want. */
static void resolve_fails(const char *prefix, int status, const char *want, const char *desc)
{
    struct stg_manifest *m = NULL;
    char *sections = stg_xasprintf("[python e]\nprefix = %s\n", prefix);
    int rc = resolve(sections, &m);
    free(sections);
    char *full = stg_xasprintf("%s:4: ", path);
    ok(rc == status, "%s: status %d (%d)", desc, status, rc);
    ok(strncmp(err, full, strlen(full)) == 0 && strstr(err, want),
       "... the message names file:line and says '%s' (%s)", want, err);
    free(full);
    stg_manifest_free(&m);
}

static void test_errors(void)
{
    char src[4096], file[4096], t[8192];
    snprintf(src, sizeof src, "%s/empty", top);
    snprintf(file, sizeof file, "%s/file", top);
    fx_mkdir(src, 0755);
    fx_write_text(file, "", 0644);

    /* moved from t-manifest.c: stg_pyenv_load() resolves as the trees are walked */
    snprintf(t, sizeof t, "[stage]\nname = x\n[python e]\nprefix = %s\n", file);
    fx_manifest_refused(path, t, stg_pyenv_load, "4: prefix '",
                        "a prefix that is not a directory, when the trees are walked", err,
                        sizeof err);
    like(err, "' is not a directory", "... says so");
    snprintf(t, sizeof t, "[stage]\nname = x\n[python e]\nprefix = %s\n", src);
    fx_manifest_refused(path, t, stg_pyenv_load, "4: prefix '", "a prefix without an interpreter",
                        err, sizeof err);
    like(err, "has no bin/python3 or bin/python: not a Python environment", "... says so");

    char *missing = fx_path(top, "nosuch");
    char *want = stg_xasprintf("prefix '%s': No such file or directory", missing);
    resolve_fails(missing, STG_EUSAGE, want, "a prefix that does not exist");
    free(want);
    free(missing);
    want = stg_xasprintf("prefix '%s' is not a directory", file);
    resolve_fails(file, STG_EUSAGE, want, "a prefix that is a file");
    free(want);

    /* an interpreter that fails, one that says nothing */
    char *bin = fx_path(top, "bad"), *bbin = fx_path(top, "bad/bin");
    char *bpy = fx_path(top, "bad/bin/python3");
    fx_mkdir(bin, 0755);
    fx_mkdir(bbin, 0755);
    fx_write_text(bpy, "#!/bin/sh\nexit 3\n", 0755);
    resolve_fails(bin, STG_EFAIL, "[python e]: ", "an interpreter that fails");
    like(err, bpy, "... naming it");
    fx_write_text(bpy, "#!/bin/sh\nexit 0\n", 0755);
    want = stg_xasprintf("[python e]: '%s' did not say what it is made of", bpy);
    resolve_fails(bin, STG_EFAIL, want, "an interpreter that says nothing");
    free(want);
    free(bin);
    free(bbin);
    free(bpy);
}

int main(void)
{
    if (!fx_tmpdir(top, sizeof top, "t-pyenv"))
        return 1;
    chmod(top, 0755);
    path = fx_path(top, "m.ini");
    test_names();
    test_excludes();
    test_venv();
    test_errors();
    free(path);
    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
