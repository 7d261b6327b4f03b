/* SPDX-License-Identifier: MIT */
/*
 * env: settings for sh (bash, zsh, ksh, dash), csh/tcsh, fish and JSON.
 *
 * Quoting is the whole job: any byte a path may hold must come out as
 * itself, never as shell code, and no value may gain an empty element
 * (Python reads an empty PYTHONPATH element as the current directory).
 */
#include "config.h"

#include "env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void put(struct stg_buf *b, const char *s, size_t n) { stg_buf_put(b, s, n); }
static void puts_(struct stg_buf *b, const char *s) { stg_buf_put(b, s, strlen(s)); }

int stg_env_shell_parse(const char *s, enum stg_shell *out)
{
    static const struct { const char *name; enum stg_shell sh; } shells[] = {
        {"sh", STG_SHELL_SH}, {"bash", STG_SHELL_SH}, {"zsh", STG_SHELL_SH},
        {"ksh", STG_SHELL_SH}, {"dash", STG_SHELL_SH}, {"csh", STG_SHELL_CSH},
        {"tcsh", STG_SHELL_CSH}, {"fish", STG_SHELL_FISH}, {"json", STG_SHELL_JSON},
    };
    for (size_t i = 0; i < sizeof shells / sizeof *shells; i++)
        if (strcmp(s, shells[i].name) == 0) {
            *out = shells[i].sh;
            return 0;
        }
    return -1;
}

void stg_env_add(struct stg_env *env, const char *name, const char *path, bool prepend)
{
    struct stg_envvar *v = NULL;
    for (size_t i = 0; i < env->n; i++)
        if (strcmp(env->v[i].name, name) == 0)
            v = &env->v[i];
    if (!v) {
        env->v = stg_xrealloc(env->v, (env->n + 1) * sizeof *env->v);
        v = &env->v[env->n++];
        memset(v, 0, sizeof *v);
        v->name = stg_xstrdup(name);
        v->prepend = prepend;
    }
    if (!stg_strv_has(&v->paths, path))
        stg_strv_push(&v->paths, path);
}

void stg_env_build(const struct stg_manifest *m, const char *root, struct stg_env *env)
{
    memset(env, 0, sizeof *env);
    const struct stg_pyenv *e = m->pyenv;
    if (e) {
        /* The staged interpreter first on PATH: its sys.prefix is then in
         * the copy, and it processes the copy's site directories. */
        char *bin = stg_xasprintf("%s%s/bin", root, e->prefix);
        char *prefix = stg_xasprintf("%s%s", root, e->prefix);
        stg_env_add(env, "PATH", bin, true);
        if (e->kind == STG_ENV_VENV)
            stg_env_add(env, "VIRTUAL_ENV", prefix, false);
        else if (e->kind == STG_ENV_CONDA)
            stg_env_add(env, "CONDA_PREFIX", prefix, false);
        /* ~/.local/lib/pythonX.Y/site-packages is on the shared home:
         * every rank would look there at start-up, and find what is not
         * part of the copy. */
        if (!e->user_site)
            stg_env_add(env, "PYTHONNOUSERSITE", "1", false);
        free(bin);
        free(prefix);
    }
    for (size_t i = 0; i < m->ntrees; i++) {
        const struct stg_tree *t = &m->trees[i];
        char *p = stg_xasprintf("%s%s", root, t->source);
        for (size_t k = 0; k < t->env.n; k++)
            stg_env_add(env, t->env.v[k], p, true);
        for (size_t k = 0; k < t->set.n; k++)
            stg_env_add(env, t->set.v[k], p, false);
        free(p);
    }
    stg_env_add(env, "STAGE_PY_DIR", root, false);
    /* The copy is shared by every rank and holds its bytecode (stage-py
     * pack compiles it): no rank compiles into it or writes there. */
    if (m->python || e)
        stg_env_add(env, "PYTHONDONTWRITEBYTECODE", "1", false);
}

void stg_env_add_sources(const struct stg_manifest *m, struct stg_env *env)
{
    if (m->pyenv) {
        char *bin = stg_xasprintf("%s/bin", m->pyenv->prefix);
        stg_env_add(env, "PATH", bin, true);
        free(bin);
    }
    for (size_t i = 0; i < m->ntrees; i++)
        for (size_t k = 0; k < m->trees[i].env.n; k++)
            stg_env_add(env, m->trees[i].env.v[k], m->trees[i].source, true);
}

void stg_env_free(struct stg_env *env)
{
    for (size_t i = 0; i < env->n; i++) {
        free(env->v[i].name);
        stg_strv_free(&env->v[i].paths);
    }
    free(env->v);
    env->v = NULL;
    env->n = 0;
}

/* The staged paths joined with ':'. */
static void join_paths(struct stg_buf *b, const struct stg_envvar *v)
{
    for (size_t i = 0; i < v->paths.n; i++) {
        if (i)
            puts_(b, ":");
        puts_(b, v->paths.v[i]);
    }
}

/* The complete value: staged paths, then the existing value if not empty. */
static char *full_value(const struct stg_envvar *v)
{
    struct stg_buf b = {0};
    puts_(&b, "");
    join_paths(&b, v);
    const char *old = getenv(v->name);
    if (v->prepend && old && *old) {
        puts_(&b, ":");
        puts_(&b, old);
    }
    return b.s;
}

/* sh: '...' with ' written as '\''. */
static void quote_sh(struct stg_buf *b, const char *s)
{
    puts_(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            puts_(b, "'\\''");
        else
            put(b, s, 1);
    }
    puts_(b, "'");
}

/* csh: as sh, and ! (history) outside the quotes as \!. */
static void quote_csh(struct stg_buf *b, const char *s)
{
    puts_(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            puts_(b, "'\\''");
        else if (*s == '!')
            puts_(b, "'\\!'");
        else
            put(b, s, 1);
    }
    puts_(b, "'");
}

/* fish: inside '...' only \ and ' are special. */
static void quote_fish(struct stg_buf *b, const char *s)
{
    puts_(b, "'");
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            puts_(b, "\\");
        put(b, s, 1);
    }
    puts_(b, "'");
}

static void quote_json(struct stg_buf *b, const char *s)
{
    char *q = stg_json_quote(s);
    puts_(b, q);
    free(q);
}

char *stg_env_render(const struct stg_env *env, enum stg_shell sh)
{
    struct stg_buf b = {0};
    puts_(&b, "");
    if (sh == STG_SHELL_JSON)
        puts_(&b, "{");
    for (size_t i = 0; i < env->n; i++) {
        const struct stg_envvar *v = &env->v[i];
        if (sh == STG_SHELL_SH) {
            /* NAME='staged'"${NAME:+:$NAME}"; export NAME -- works in dash too,
             * where `export NAME=...` would split an unquoted expansion. */
            struct stg_buf val = {0};
            puts_(&val, "");
            join_paths(&val, v);
            puts_(&b, v->name);
            puts_(&b, "=");
            quote_sh(&b, val.s);
            free(val.s);
            if (v->prepend) {
                puts_(&b, "\"${");
                puts_(&b, v->name);
                puts_(&b, ":+:$");
                puts_(&b, v->name);
                puts_(&b, "}\"");
            }
            puts_(&b, "; export ");
            puts_(&b, v->name);
            puts_(&b, "\n");
            continue;
        }
        char *full = full_value(v);
        switch (sh) {
        case STG_SHELL_CSH:
            if (strchr(full, '\n')) {
                stg_err_set(STG_EFAIL, "the value of %s has a newline, which csh cannot "
                            "take: use --shell sh", v->name);
                free(full);
                free(b.s);
                return NULL;
            }
            puts_(&b, "setenv ");
            puts_(&b, v->name);
            puts_(&b, " ");
            quote_csh(&b, full);
            puts_(&b, ";\n");
            break;
        case STG_SHELL_FISH:
            puts_(&b, "set -gx ");
            puts_(&b, v->name);
            puts_(&b, " ");
            quote_fish(&b, full);
            puts_(&b, ";\n");
            break;
        default:
            puts_(&b, i ? ",\n  " : "\n  ");
            quote_json(&b, v->name);
            puts_(&b, ": ");
            quote_json(&b, full);
            break;
        }
        free(full);
    }
    if (sh == STG_SHELL_JSON)
        puts_(&b, "\n}\n");
    return b.s;
}

const char *stg_env_failure(enum stg_shell sh)
{
    return sh == STG_SHELL_JSON ? "" : "false\n";
}
