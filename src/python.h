/* SPDX-License-Identifier: MIT */
/*
 * python: running the interpreter that a manifest names.
 */
#ifndef STG_PYTHON_H
#define STG_PYTHON_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Run python -c script args... (args NULL-terminated, at most 12), its
 * standard output into OUT out (malloc'd), its standard error passed on,
 * without the launcher's variables (a module that starts MPI starts a job
 * of its own).  isolated: -I, no PYTHONPATH or user site.  Returns STG_OK,
 * or an error naming the interpreter.
 */
int stg_python_run(const char *python, bool isolated, const char *script,
                   const char *const *args, char **out);

/* OUT version: "X.Y" of python, from its file name (python3.11) when that
 * tells, else by running it.  Returns STG_OK or an error. */
int stg_python_version(const char *python, char *version, size_t len);

#endif
