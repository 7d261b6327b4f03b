/* SPDX-License-Identifier: MIT */
/*
 * manifest: the INI file that names what to stage (stage-py.ini(5)),
 * parsed with inih and checked so that every error names file:line.
 */
#ifndef STG_MANIFEST_H
#define STG_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* inih's fixed buffers (ini.c: MAX_SECTION, MAX_NAME): longer names are cut
 * silently by the library, so the reader refuses them. */
#define STG_INI_MAX_SECTION 49
#define STG_INI_MAX_NAME 49

struct stg_tree {
    char *name;             /* from [tree NAME] */
    int line;               /* line of the section header */
    char *source;           /* absolute, normalised: the path mirrored below the copy */
    int source_line;
    char *real;             /* realpath(source) */
    struct stg_strv include;
    int include_line;
    struct stg_strv exclude;
    struct stg_strv env;    /* variables to prepend to; empty with env_none */
    bool env_none;
    bool env_given;
    int env_line;
    struct stg_strv set;    /* variables set to the staged path */
    int set_line;
    int nkeys;
    bool derived;           /* made from the [python] section (stg_pyenv_resolve()) */
};

/* What a [python] section's prefix is, for the settings. */
enum stg_env_kind { STG_ENV_PLAIN, STG_ENV_VENV, STG_ENV_CONDA };

/* [python NAME]: a whole Python environment (see pyenv.h). */
struct stg_pyenv {
    char *name;
    int line;
    char *prefix;           /* absolute, normalised */
    int prefix_line;
    struct stg_strv include;    /* paths relative to the prefix; empty: the default */
    int include_line;
    struct stg_strv exclude;
    int exclude_line;
    bool user_site;         /* user_site = yes: leave the user's site directory on */
    int user_site_line;
    int nkeys;
    /* Known once resolved (or read from a bundle's trailer). */
    char *interpreter;      /* PREFIX/bin/python3 (or python) */
    enum stg_env_kind kind;
};

struct stg_manifest {
    char *path;             /* as given */
    char *text;             /* the file as read (a bundle carries it) */
    char *name;
    int name_line;
    char *dest;             /* NULL: not given */
    int dest_line;
    double timeout;         /* seconds; < 0: not given */
    int timeout_line;
    char *bundle;           /* absolute (relative ones: to the manifest's directory); NULL: none */
    int bundle_line;
    bool fallback_to_trees; /* a bad bundle: stage from the trees, with a warning */
    int fallback_to_trees_line;
    char *python;           /* the interpreter the trees are for; NULL: not given */
    int python_line;
    uint64_t max_cache;     /* the cache budget */
    int max_cache_line;     /* 0: not given */
    int stage_line;         /* 0: no [stage] section */
    struct stg_pyenv *pyenv;    /* the [python] section, or NULL */
    struct stg_tree *trees;     /* [tree] sections, then the derived trees */
    size_t ntrees;
};

/* Flags of stg_manifest_load(). */
#define STG_MANIFEST_SOURCES 1      /* require every source to be a readable directory */
#define STG_MANIFEST_WRITABLE_OK 2  /* a manifest others can write: warn, not refuse */
#define STG_MANIFEST_BUNDLE_FIRST 4 /* with 'bundle =', leave the sources alone (a job
                                     * that streams the bundle never touches them) */
#define STG_MANIFEST_RELOAD 8       /* read again (the trees instead of a bundle): its
                                     * warnings were given the first time */

/* The settings' variables that a [python] section sets itself. */
#define STG_PYENV_VARS {"PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONNOUSERSITE", NULL}

/*
 * Parse and check the manifest at path.  OUT m: the manifest, or NULL.
 * A [python] section is not resolved here (that runs its interpreter):
 * stg_pyenv_load() does both.  Returns STG_OK, or STG_EUSAGE with
 * "file:line: what" recorded (stg_err_set()).
 */
int stg_manifest_load(const char *path, unsigned flags, struct stg_manifest **m);
/* The same for a manifest's text, as a bundle carries it (its file's
 * owner and mode were the bundle's to check); label stands for the file in
 * messages ("label:line: what"). */
int stg_manifest_load_text(const char *text, const char *label, unsigned flags,
                           struct stg_manifest **m);
void stg_manifest_free(struct stg_manifest **m);

/* OUT hex (17 bytes): a digest of what decides the copy's content (the
 * trees' names, sources, include and exclude lists, the interpreter, the
 * [python] section as written), so that a bundle made from another
 * manifest is recognised. */
void stg_manifest_digest(const struct stg_manifest *m, char hex[17]);

/* true if s is a valid copy or tree name: [A-Za-z0-9._-]+, not starting with ".". */
bool stg_manifest_valid_name(const char *s);
/* Make s such a name in place (but no shorter): every other character
 * becomes '_', and so does a leading '.'. */
void stg_manifest_make_name(char *s);
/* true if s is a valid environment variable name. */
bool stg_manifest_valid_var(const char *s);
/* A slip in an env variable: the path list that var differs from by case
 * or by at most two letters (PYTHONPAHT, pythonpath: "PYTHONPATH"); NULL
 * when var is such a list itself or near none.  A name nothing reads
 * leaves the job importing from the original trees, silently. */
const char *stg_manifest_env_slip(const char *var);

#endif
