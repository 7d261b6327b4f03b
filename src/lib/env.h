/* SPDX-License-Identifier: MIT */
/*
 * env: the last stage, the settings that make the job use the staged
 * copy, written for the shell that will read them.
 */
#ifndef STG_ENV_H
#define STG_ENV_H

#include <stdbool.h>

#include "manifest.h"
#include "util.h"

enum stg_shell { STG_SHELL_SH, STG_SHELL_CSH, STG_SHELL_FISH, STG_SHELL_JSON };

struct stg_envvar {
    char *name;
    struct stg_strv paths;  /* staged paths, in manifest order */
    bool prepend;           /* true: ahead of the existing value; false: set */
};

struct stg_env {
    struct stg_envvar *v;
    size_t n;
};

/* "sh", "csh", "fish" or "json".  Returns 0 or -1. */
int stg_env_shell_parse(const char *s, enum stg_shell *out);

/* The settings for manifest m staged at root (the copy's directory):
 * with a [python] section, PATH gets the staged prefix's bin first, and
 * VIRTUAL_ENV or CONDA_PREFIX the staged prefix when it is a venv or a
 * conda environment; each env variable gets its trees' staged paths, each
 * set variable its tree's staged path, and STAGE_PY_DIR the root; with
 * python = or a [python] section, PYTHONDONTWRITEBYTECODE=1. */
void stg_env_build(const struct stg_manifest *m, const char *root, struct stg_env *env);
/* With --on-node-failure skip, when some node has no copy: the trees'
 * source paths (and the prefix's bin) follow the staged ones on each
 * prepended variable, so that ranks there import from the sources. */
void stg_env_add_sources(const struct stg_manifest *m, struct stg_env *env);
/* Add one variable (for tests and later stages). */
void stg_env_add(struct stg_env *env, const char *name, const char *path, bool prepend);
void stg_env_free(struct stg_env *env);

/*
 * The settings as text for shell sh.  sh keeps the existing value with
 * ${VAR:+:$VAR}; csh, fish and json carry complete values computed from
 * this process's environment.  Returns a malloc'd string, or NULL with the
 * reason recorded (stg_err_set(), STG_EFAIL) when a value cannot be
 * written for that shell (a newline for csh).
 */
char *stg_env_render(const struct stg_env *env, enum stg_shell sh);

/* What stdout carries when staging failed: a command that makes an
 * `eval "$(stage-py ...)"` fail ("false"), nothing for json. */
const char *stg_env_failure(enum stg_shell sh);

#endif
