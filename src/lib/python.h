/* SPDX-License-Identifier: MIT */
/*
 * python: running the interpreter that a manifest names.
 */
#ifndef STG_PYTHON_H
#define STG_PYTHON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Whom an interpreter runs as. */
struct stg_python_id {
    bool drop;              /* as uid, gid and uid's groups, not as root */
    uid_t uid;
    gid_t gid;
};

/*
 * As root, whom python answers to.  Python runs code of its environment at
 * start-up, even with -I (.pth files, sitecustomize), so root never runs
 * an interpreter that another user could have changed.  Checked with
 * stg_trust_check(): the interpreter as named and as resolved, the prefix
 * above its bin/ (both ways), its pyvenv.cfg, and the library and site
 * directories below it with their .pth, sitecustomize and usercustomize
 * files.  Nobody else: run as root.  One other owner: run as that user
 * (OUT id->drop).  Several, or anything writable by group or others:
 * refused (STG_EUSAGE, with what was found).  Not root: run as oneself.
 */
int stg_python_identity(const char *python, struct stg_python_id *id);

/* The most arguments a script is given (more is an error, STG_EINTERNAL). */
#define STG_PYTHON_ARGS_MAX 16
/* The most output a script may write (more stops it: an error). */
#define STG_PYTHON_OUT_MAX ((size_t)256 << 20)

/*
 * Run python -c script args... (args NULL-terminated, at most
 * STG_PYTHON_ARGS_MAX), its standard output (at most STG_PYTHON_OUT_MAX)
 * into OUT out (malloc'd), its standard error passed on,
 * without the launcher's variables (a module that starts MPI starts a job
 * of its own).  id: whom it runs as (NULL: stg_python_identity() decides).
 * isolated: -I, no PYTHONPATH or user site.  Returns STG_OK, or an error
 * naming the interpreter.
 */
int stg_python_run(const char *python, const struct stg_python_id *id, bool isolated,
                   const char *script, const char *const *args, char **out);

/* OUT version: "X.Y" of python, from its file name (python3.11) when that
 * tells, else by running it.  Returns STG_OK or an error. */
int stg_python_version(const char *python, char *version, size_t len);

#endif
