/* SPDX-License-Identifier: MIT */
/*
 * conf: the site file and the manifest, and their precedence.
 */
#include "config.h"

#include "conf.h"

#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "log.h"
#include "pyenv.h"
#include "util.h"

static unsigned manifest_flags(const struct stg_conf *c, unsigned flags)
{
    return flags | (c->site.writable_manifests_warn ? STG_MANIFEST_WRITABLE_OK : 0);
}

int stg_conf_load(struct stg_conf *c, const char *path, unsigned flags)
{
    memset(c, 0, sizeof *c);
    int rc = stg_site_load(&c->site);
    if (rc)
        return rc;
    if (!path)
        return STG_OK;
    return stg_conf_reload(c, path, flags);
}

int stg_conf_load_text(struct stg_conf *c, const char *text, const char *label,
                       const char *path, unsigned flags)
{
    int rc = stg_conf_load(c, NULL, flags);
    if (rc)
        return rc;
    c->text = stg_xstrdup(text);
    c->label = stg_xstrdup(label);
    return stg_pyenv_load_text(text, label, path, manifest_flags(c, flags), &c->m);
}

int stg_conf_load_bundle(struct stg_conf *c, const char *path, unsigned flags)
{
    struct stg_bundle b;
    int rc = stg_bundle_open(&b, path, NULL);
    if (rc == STG_OK && !b.manifest_text)
        rc = stg_err_set(STG_EUSAGE, "bundle '%s' carries no manifest (an older stage-py packed "
                         "it): pack it again, or give its manifest with --manifest", path);
    if (rc == STG_OK) {
        char *label = stg_xasprintf("%s (its manifest)", path);
        rc = stg_conf_load_text(c, b.manifest_text, label, path, flags);
        free(label);
    } else {
        memset(c, 0, sizeof *c);
    }
    stg_bundle_close(&b);
    return rc;
}

int stg_conf_reload(struct stg_conf *c, const char *path, unsigned flags)
{
    stg_manifest_free(&c->m);
    if (!path && c->text)
        return stg_pyenv_load_text(c->text, c->label, NULL, manifest_flags(c, flags), &c->m);
    return stg_pyenv_load(path, manifest_flags(c, flags), &c->m);
}

void stg_conf_free(struct stg_conf *c)
{
    stg_manifest_free(&c->m);
    free(c->text);
    free(c->label);
    c->text = c->label = NULL;
    stg_site_free(&c->site);
}

const char *stg_conf_dest(const struct stg_conf *c, const char *given)
{
    if (given)
        return given;
    if (c->m && c->m->dest)
        return c->m->dest;
    return c->site.dest ? c->site.dest : STG_DEFAULT_DEST;
}

const char *stg_conf_compress(const struct stg_conf *c, const char *given)
{
    if (given)
        return given;
    return c->site.compress ? c->site.compress : "none";
}
