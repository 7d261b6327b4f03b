/* SPDX-License-Identifier: MIT */
/*
 * conf: what a command is told to do, loaded once on the root: the site
 * file (site.h), then the manifest (manifest.h, its [python] section
 * resolved by pyenv.h) under the site's rule for manifests, and the
 * precedence between them and the command line.
 */
#ifndef STG_CONF_H
#define STG_CONF_H

#include "manifest.h"
#include "site.h"

#define STG_DEFAULT_DEST "/dev/shm"

struct stg_conf {
    struct stg_site site;
    struct stg_manifest *m;     /* NULL: no manifest was named */
    /* A bundle's own manifest (stg_conf_load_text()), for a reload */
    char *text, *label;
};

/*
 * The site file, then the manifest at path (none when path is NULL) with
 * flags (STG_MANIFEST_*; the site's writable_manifests = warn adds
 * STG_MANIFEST_WRITABLE_OK).  OUT c, to free with stg_conf_free() also
 * after a failure.  Returns STG_OK or the error recorded (stg_err_set()).
 */
int stg_conf_load(struct stg_conf *c, const char *path, unsigned flags);

/*
 * The site file, then a manifest's text as a bundle at path carries it
 * (label names it in messages), with path as its bundle.  Returns as
 * stg_conf_load().
 */
int stg_conf_load_text(struct stg_conf *c, const char *text, const char *label,
                       const char *path, unsigned flags);

/*
 * The site file, then the manifest that the bundle at path carries (the
 * bundle opened for it, and checked as a manifest is: its owner, mode and
 * the directories above it), with path as its bundle.  Returns as
 * stg_conf_load(); a bundle that carries none is a usage error.
 */
int stg_conf_load_bundle(struct stg_conf *c, const char *path, unsigned flags);

/* Load the manifest again (a bundle that could not be used: the trees
 * instead), with the same site: the file at path, or, with path NULL,
 * the text of stg_conf_load_text().  Returns as stg_conf_load(). */
int stg_conf_reload(struct stg_conf *c, const char *path, unsigned flags);

void stg_conf_free(struct stg_conf *c);

/* The destination: given (--dest) if not NULL, else the manifest's, else
 * the site's, else STG_DEFAULT_DEST. */
const char *stg_conf_dest(const struct stg_conf *c, const char *given);

/* The compression of the trees' archive: given (--compress) if not NULL,
 * else the site's, else "none". */
const char *stg_conf_compress(const struct stg_conf *c, const char *given);

#endif
