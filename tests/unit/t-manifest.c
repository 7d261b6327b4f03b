/* SPDX-License-Identifier: MIT */
/* Unit tests: manifest parsing and every error it reports. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "manifest.h"
#include "tap.h"

static char dir[4096];
static char path[4200];
static char err[1024];

/* rc, with the message recorded meanwhile in err (and set aside). */
static int with_err(int rc)
{
    stg_err_take(err, sizeof err);
    return rc;
}

/* Write text as the manifest and load it (stg_manifest_load(): a [python]
 * section is checked, not resolved; t-pyenv.c resolves them).  Returns the
 * status. */
static int load(const char *text, struct stg_manifest **m)
{
    return fx_manifest_load(path, text, stg_manifest_load, m, err, sizeof err);
}

/* Expect an error whose text has want (after "path:"). */
static void fails(const char *text, const char *want, const char *desc)
{
    fx_manifest_refused(path, text, stg_manifest_load, want, desc, err, sizeof err);
}

int main(void)
{
    if (!fx_tmpdir(dir, sizeof dir, "t-manifest"))
        return 1;
    snprintf(path, sizeof path, "%s/m.ini", dir);
    char src[4200], file[4200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(file, sizeof file, "%s/file", dir);
    mkdir(src, 0755);
    fx_write_text(file, "", 0);

    char t[4096];

    /* A complete manifest. */
    char text[4096];
    snprintf(text, sizeof text,
             "; a comment\n"
             "# another\n"
             "[stage]\n"
             "name = fenics-1.0_x\n"
             "dest = /dev/shm/\n"
             "\n"
             "[tree site]\n"
             "source = %s/\n"
             "include = sympy ufl\n"
             "   ffc numpy  ; continued\n"
             "exclude = tests *.orig\n"
             "\n"
             "[tree bin]\n"
             "source = %s\n"
             "env = PATH LD_LIBRARY_PATH\n"
             "[tree home]\n"
             "source = %s\n"
             "env = none\n"
             "set = MYHOME\n",
             src, src, src);
    struct stg_manifest *m = NULL;
    int rc = load(text, &m);
    if (!ok(rc == 0 && m, "a valid manifest loads"))
        diag("%s", err);
    if (m) {
        is_str(m->name, "fenics-1.0_x", "name");
        is_str(m->dest, "/dev/shm", "dest, without its trailing slash");
        ok(m->ntrees == 3, "three trees, in order");
        is_str(m->trees[0].name, "site", "tree name");
        is_str(m->trees[0].source, src, "source normalised (no trailing /)");
        ok(m->trees[0].include.n == 4, "continuation lines append to include");
        is_str(m->trees[0].include.v[2], "ffc", "continued words in order");
        ok(m->trees[0].exclude.n == 2, "exclude list");
        ok(m->trees[0].env.n == 1 && strcmp(m->trees[0].env.v[0], "PYTHONPATH") == 0,
           "env defaults to PYTHONPATH");
        ok(m->trees[1].env.n == 2 && strcmp(m->trees[1].env.v[1], "LD_LIBRARY_PATH") == 0,
           "env takes several variables");
        ok(m->trees[2].env_none && m->trees[2].env.n == 0, "env = none");
        ok(m->trees[2].set.n == 1, "set");
        ok(m->trees[0].line == 7 && m->trees[0].include_line == 9, "line numbers kept");
    }
    stg_manifest_free(&m);
    ok(m == NULL, "free sets the pointer to NULL");

    /* Structure. */
    snprintf(t, sizeof t, "[stage]\nname = x\ntimeout = 5m\n[tree a]\nsource = %s\n", src);
    rc = load(t, &m);
    ok(rc == 0 && m && m->timeout == 300, "timeout = 5m");
    stg_manifest_free(&m);
    fails("[stage]\nname = x\ntimeout = soon\n", "3: timeout 'soon': give a duration",
          "a bad timeout");
    fails("[stage]\nname = x\nbogus = 1\n", "3: unknown key 'bogus' in [stage]", "unknown key in [stage]");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\nsorce = /x\n", src);
    fails(t, "5: unknown key 'sorce' in [tree a]", "unknown key in [tree]");
    fails("[stage]\nname = x\n[trees a]\n", "3: unknown section [trees a]", "unknown section");
    fails("[stage]\nname = x\n[other]\n", "3: unknown section [other]", "unknown empty section");
    fails("name = x\n", "1: 'name' outside a section", "key outside a section");
    fails("[stage]\nname x\n", "2: expected 'key = value'", "a line without '='");
    fails("[stage\nname = x\n", "1: section header without ']'", "unclosed section header");
    fails("", " no [stage] section", "empty file");
    snprintf(t, sizeof t, "[tree a]\nsource = %s\n", src);
    fails(t, " no [stage] section", "no [stage]");
    fails("[stage]\ndest = /dev/shm\n", "1: [stage] has no 'name'", "no name");
    fails("[stage]\nname = x\n", " no [tree NAME] or [python NAME] section", "no tree");
    fails("[stage]\nname = x\n[stage]\n", "3: second [stage] section", "two [stage] sections");

    /* inih's silent limits. */
    char longline[400];
    memset(longline, 'a', sizeof longline);
    snprintf(longline, sizeof longline, "[stage]\nname = x\n; %0250d\n", 0);
    fails(longline, "3: line longer than 197 characters", "a line longer than inih's buffer");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree %060d]\n", 0);
    fails(t, "3: section name longer than 49", "a section name longer than inih's limit");
    snprintf(t, sizeof t, "[stage]\nname = x\n%060d = 1\n", 0);
    fails(t, "3: key longer than 49", "a key longer than inih's limit");

    /* Trees. */
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\n[tree b]\n\n", src);
    fails(t, "5: [tree b] is empty", "an empty [tree] section");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\n[tree a]\nsource = %s\n",
             src, src);
    fails(t, "5: duplicate [tree a] (the first is at line 3)", "duplicate tree names");
    fails("[stage]\nname = x\n[tree]\nsource = /\n", "3: [tree] needs a name", "[tree] without a name");
    fails("[stage]\nname = x\n[tree a/b]\nsource = /\n", "3: invalid tree name 'a/b'", "tree name with /");
    fails("[stage]\nname = x\n[tree a]\ninclude = b\n", "3: [tree a] has no 'source'", "missing source");
    fails("[stage]\nname = x\n[tree a]\nsource = usr/lib\n", "4: source 'usr/lib' is not an absolute path",
          "relative source");
    fails("[stage]\nname = x\n[tree a]\nsource = /nonexistent/stage-py\n",
          "4: source '/nonexistent/stage-py': No such file or directory", "missing source directory");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\n", file);
    fails(t, "4: source '", "source that is a file");
    like(err, "is not a directory", "source that is a file: says so");
    fails("[stage]\nname = x\n[tree a]\nsource = /\n", "4: source '/' would stage", "source /");
    fails("[stage]\nname = x\n[tree a]\nsource = /.stage-py.json/x\n",
          "4: source '/.stage-py.json/x' would overlay the copy's record", "source over the record");

    /* Duplicates and continuations. */
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\nsource = %s\n", src, src);
    fails(t, "5: duplicate key 'source' (first at line 4)", "a repeated key");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\ninclude = a\ninclude = b\n", src);
    fails(t, "6: duplicate key 'include' (first at line 5)", "a repeated list key");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\n  /other\n", src);
    fails(t, "5: 'source' takes one value", "a continued scalar");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\ninclude = a\n\n    b\n", src);
    rc = load(t, &m);
    ok(rc == 0 && m && m->trees[0].include.n == 2, "a continuation after a blank line still appends");
    stg_manifest_free(&m);

    /* Names and variables. */
    fails("[stage]\nname = a/b\n[tree a]\nsource = /usr\n", "2: invalid name 'a/b'", "name with /");
    fails("[stage]\nname = ..\n[tree a]\nsource = /usr\n", "2: invalid name '..'", "name ..");
    fails("[stage]\nname = $(x)\n[tree a]\nsource = /usr\n", "2: invalid name '$(x)'", "name with shell characters");
    fails("[stage]\nname = x\ndest = tmp\n[tree a]\nsource = /usr\n", "3: dest 'tmp' is not a clean absolute path",
          "relative dest");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\nenv = none PATH\n", src);
    fails(t, "5: 'none' cannot be combined", "env none with a variable");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\nenv = 1BAD\n", src);
    fails(t, "5: invalid variable name '1BAD'", "bad variable name");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\nenv = none\nset = H\n"
             "[tree b]\nsource = %s\nenv = none\nset = H\n", src, src);
    fails(t, "10: 'H' is already set by [tree a]", "a variable set twice");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\nset = PYTHONPATH\n", src);
    fails(t, "5: 'PYTHONPATH' is set here and prepended to", "a variable both set and prepended");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\ninclude =\n", src);
    fails(t, "5: 'include' is empty", "an empty include");
    fails("[stage]\nname = x\ndest = /a:b\n[tree a]\nsource = /usr\n", "3: dest '/a:b' has a ':'",
          "dest with a colon");
    fails("[stage]\nname = x\n[tree a]\nsource = /a:b\n", "4: source '/a:b' has a ':'",
          "source with a colon");
    snprintf(t, sizeof t, "[stage]\nname = x\n[tree a]\nsource = %s\ninclude = a/b\n", src);
    fails(t, "5: include 'a/b' is not a top-level name", "include with /");

    /* [python NAME]: parsed and checked as written (its interpreter is
     * asked only when the trees are walked: t-pyenv.c, tests/pyenv.t). */
    struct stg_manifest *pm = NULL;
    fx_write_text(path, "[stage]\nname = x\n[python env]\nprefix = /opt/envs/x/\n"
                  "include = bin lib/python3.11\n  lib/libpython3*.so*\nexclude = test/ /lib/a\n",
                  0);
    rc = with_err(stg_manifest_load(path, 0, &pm));
    if (!ok(rc == 0 && pm && pm->pyenv, "a [python] section loads"))
        diag("%s", err);
    if (pm && pm->pyenv) {
        is_str(pm->pyenv->name, "env", "... its name");
        is_str(pm->pyenv->prefix, "/opt/envs/x", "... its prefix, normalised");
        ok(pm->pyenv->include.n == 3 && strcmp(pm->pyenv->include.v[2], "lib/libpython3*.so*") == 0,
           "... its include paths, continued");
        ok(pm->pyenv->exclude.n == 2, "... its exclude patterns");
        ok(pm->ntrees == 0, "... and no trees until it is resolved");
        char d1[17], d2[17];
        stg_manifest_digest(pm, d1);
        free(pm->pyenv->prefix);
        pm->pyenv->prefix = strdup("/opt/envs/y");
        stg_manifest_digest(pm, d2);
        ok(strcmp(d1, d2) != 0, "... the prefix is part of the manifest's digest");
    }
    stg_manifest_free(&pm);
    fails("[stage]\nname = x\n[python]\nprefix = /usr\n", "3: [python] needs a name",
          "[python] without a name");
    fails("[stage]\nname = x\n[python e]\ninclude = bin\n", "3: [python e] has no 'prefix'",
          "[python] without a prefix");
    fails("[stage]\nname = x\n[python e]\n", "3: [python e] is empty", "empty [python]");
    fails("[stage]\nname = x\n[python e]\nprefix = usr\n",
          "4: prefix 'usr' is not an absolute path", "relative prefix");
    fails("[stage]\nname = x\n[python e]\nprefix = /\n", "4: prefix '/': give the",
          "prefix /");
    fails("[stage]\nname = x\n[python e]\nprefix = /a:b\n", "4: prefix '/a:b' has a ':'",
          "prefix with a colon");
    fails("[stage]\nname = x\n[python e]\nprefix = /usr\nroot = /\n",
          "5: unknown key 'root' in [python e] (known: prefix, include, exclude, user_site)",
          "unknown key in [python]");
    fails("[stage]\nname = x\n[python e]\nprefix = /usr\n[python f]\nprefix = /opt\n",
          "5: second [python] section (the first is at line 3)", "two [python] sections");
    fails("[stage]\nname = x\npython = /usr/bin/python3\n[python e]\nprefix = /usr\n",
          "3: 'python' in [stage] and a [python e] section (line 4)",
          "python = beside a [python] section");
    fails("[stage]\nname = x\n[python e]\nprefix = /usr\ninclude = ../etc\n",
          "5: include '../etc' is not a path below the prefix", "include with ..");
    fails("[stage]\nname = x\n[python e]\nprefix = /usr\ninclude = /bin\n",
          "5: include '/bin' is not a path below the prefix", "absolute include");
    fails("[stage]\nname = x\n[python e]\nprefix = /usr\ninclude = lib/*/site-packages\n",
          "5: include 'lib/*/site-packages' is not a path below the prefix",
          "a glob before the last part");
    snprintf(t, sizeof t, "[stage]\nname = x\n[python e]\nprefix = /usr\n"
             "[tree a]\nsource = %s\nset = VIRTUAL_ENV\n", src);
    fails(t, "7: 'VIRTUAL_ENV' is set by the [python e] section (line 3)",
          "a tree that sets what [python] sets");

    /* The file itself. */
    struct stg_manifest *m2 = NULL;
    rc = with_err(stg_manifest_load("/nonexistent/m.ini", STG_MANIFEST_SOURCES, &m2));
    ok(rc == STG_EUSAGE && m2 == NULL, "a missing manifest is refused");
    like(err, "cannot open manifest '/nonexistent/m.ini': No such file or directory",
         "... naming it and why");

    /* A manifest's text, as a bundle carries it. */
    char *txt = stg_xasprintf("[stage]\nname = tx\n\n[tree a]\nsource = %s\n", src);
    rc = with_err(stg_manifest_load_text(txt, "/b/x.bundle (its manifest)", STG_MANIFEST_SOURCES,
                                         &m2));
    ok(rc == STG_OK && m2 && strcmp(m2->name, "tx") == 0 && m2->ntrees == 1,
       "a manifest's text: loaded (%s)", err);
    ok(m2 && m2->text && strcmp(m2->text, txt) == 0, "... and its text kept as it was read");
    stg_manifest_free(&m2);
    free(txt);
    txt = stg_xasprintf("[stage]\nname = tx\n[tree a]\nsource = %s\nkey = 1\n", src);
    rc = with_err(stg_manifest_load_text(txt, "/b/x.bundle (its manifest)", 0, &m2));
    ok(rc == STG_EUSAGE && !m2, "a mistake in a manifest's text: refused");
    like(err, "/b/x.bundle (its manifest):5: unknown key 'key' in [tree a]",
         "... naming the label and the line");
    free(txt);

    /* A slip in an env variable: warned of, never refused. */
    static const struct { const char *var, *meant; } slips[] = {
        {"PYTHONPAHT", "PYTHONPATH"},   /* two letters swapped */
        {"pythonpath", "PYTHONPATH"},   /* case */
        {"PYTHONPAT", "PYTHONPATH"},    /* one dropped */
        {"PYTONPATH", "PYTHONPATH"},
        {"LD_LIBRARYPATH", "LD_LIBRARY_PATH"},
        {"LD_LIBARY_PATH", "LD_LIBRARY_PATH"},
        {"Path", "PATH"},
        {"PYTHONPATH", NULL},           /* the lists themselves */
        {"PATH", NULL},
        {"LD_LIBRARY_PATH", NULL},
        {"DYLD_LIBRARY_PATH", NULL},
        {"PYTHONHOME", NULL},
        {"PERLLIB", NULL},              /* path lists near others */
        {"CDPATH", NULL},
        {"PATHS", NULL},                /* short: only its case */
        {"MY_TOOL_DIRS", NULL},         /* near nothing */
        {"DIJITSO_PATH", NULL},
    };
    for (size_t i = 0; i < sizeof slips / sizeof slips[0]; i++) {
        const char *got = stg_manifest_env_slip(slips[i].var);
        ok(slips[i].meant ? got && strcmp(got, slips[i].meant) == 0 : !got,
           "env '%s': %s%s", slips[i].var, slips[i].meant ? "did you mean " : "no slip",
           slips[i].meant ? slips[i].meant : "");
    }
    txt = stg_xasprintf("[stage]\nname = tx\n[tree a]\nsource = %s\nenv = PYTHONPAHT\n", src);
    stg_log_init(NULL, STG_QUIET);     /* its warning: tests/errors.t */
    rc = with_err(stg_manifest_load_text(txt, "slip.ini", 0, &m2));
    stg_log_init(NULL, STG_NORMAL);
    ok(rc == STG_OK && m2 && strcmp(m2->trees[0].env.v[0], "PYTHONPAHT") == 0,
       "a manifest with env = PYTHONPAHT loads as it is written (a warning, not an error)");
    stg_manifest_free(&m2);
    free(txt);

    unlink(path);
    unlink(file);
    rmdir(src);
    rmdir(dir);
    return done_testing();
}
