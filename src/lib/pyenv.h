/* SPDX-License-Identifier: MIT */
/*
 * pyenv: a [python NAME] section resolved into trees: what the prefix's
 * interpreter needs to start and import from the copy alone.
 */
#ifndef STG_PYENV_H
#define STG_PYENV_H

#include <stdbool.h>
#include <stddef.h>

#include "manifest.h"

/*
 * On the root, before the trees are walked: find the prefix's interpreter
 * (bin/python3, else bin/python), run it once (isolated, -I) to learn its
 * executable, standard library, sys.path and the shared objects it maps
 * from its prefixes, and append to m->trees one derived tree (env = none)
 * per directory that holds something to stage.  Sets m->pyenv's
 * interpreter and kind.  Returns STG_OK, or STG_EUSAGE (STG_EFAIL when the
 * interpreter fails) with "file:line: what" recorded (stg_err_set()).
 */
int stg_pyenv_resolve(struct stg_manifest *m);

/*
 * stg_manifest_load(), then, with STG_MANIFEST_SOURCES and sources that are
 * to be walked (not a bundle with STG_MANIFEST_BUNDLE_FIRST), the [python]
 * section resolved into trees (stg_pyenv_resolve()).  Returns as they do.
 */
int stg_pyenv_load(const char *path, unsigned flags, struct stg_manifest **m);
/* The same for a manifest's text (a bundle's; label names it in messages),
 * whose bundle is then bundle (NULL: as the text says). */
int stg_pyenv_load_text(const char *text, const char *label, const char *bundle, unsigned flags,
                        struct stg_manifest **m);

/* "plain", "venv", "conda": a bundle records the kind, since a job that
 * streams it does not look at the prefix. */
const char *stg_pyenv_kind_name(enum stg_env_kind k);
/* Returns 0, or -1 for an unknown name. */
int stg_pyenv_kind_parse(const char *s, enum stg_env_kind *k);

/* true for /usr and /usr/local: by default only the interpreter and its
 * sys.path entries come from such a prefix, not all of it. */
bool stg_pyenv_is_system(const char *prefix);

/* Exposed for tests: the section's exclude pattern (anchored at the prefix
 * when it has a '/' before its end) for a tree whose source is rel below
 * the prefix ("" for the prefix itself, NULL outside it).  Returns a
 * malloc'd pattern, or NULL where it does not apply. */
char *stg_pyenv_exclude_for(const char *pattern, const char *rel);

#endif
