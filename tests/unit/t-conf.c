/* SPDX-License-Identifier: MIT */
/*
 * t-conf: the site file ($STAGE_PY_CONF) and the manifest loaded together:
 * the destination's precedence (given, then the manifest's, the site's,
 * /dev/shm), the site's writable_manifests = warn letting a manifest that
 * its group can write (or, as root, another user's) load with a warning,
 * errors that name the manifest or the site file, and the manifest loaded
 * again with the same site.
 */
#include "config.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fixture.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static char top[4096];
static char site[4200], mpath[4200], src[4200];

static void write_site(const char *text)
{
    fx_write_text(site, text, 0644);
    setenv("STAGE_PY_CONF", site, 1);
}

/* The manifest, with dest = dest if not NULL. */
static void write_manifest(const char *dest, mode_t mode)
{
    char *text = stg_xasprintf("[stage]\nname = t\n%s%s%s[tree a]\nsource = %s\n",
                               dest ? "dest = " : "", dest ? dest : "", dest ? "\n" : "", src);
    fx_write_text(mpath, text, mode);
    free(text);
}

/* stg_conf_load() of path, its recorded error in OUT err, its warnings (on
 * stderr) in OUT warn. */
static int load(struct stg_conf *c, const char *path, unsigned flags, char *err, size_t len,
                char *warn, size_t wlen)
{
    struct fx_capture e;
    stg_err_take(NULL, 0);
    fx_capture(&e, STDERR_FILENO, top);
    int rc = stg_conf_load(c, path, flags);
    fx_captured(&e, warn, wlen);
    stg_err_take(err, len);
    return rc;
}

int main(void)
{
    if (!fx_tmpdir(top, sizeof top, "t-conf"))
        return 1;
    chmod(top, 0755);
    snprintf(site, sizeof site, "%s/site.conf", top);
    snprintf(mpath, sizeof mpath, "%s/m.ini", top);
    snprintf(src, sizeof src, "%s/src", top);
    mkdir(src, 0755);
    bool root = geteuid() == 0;
    struct stg_conf c;
    char err[STG_MSG_MAX], warn[4096];

    /* --- no site file, no manifest --- */
    setenv("STAGE_PY_CONF", "/dev/null", 1);   /* no site file */
    int rc = load(&c, NULL, 0, err, sizeof err, warn, sizeof warn);
    ok(rc == STG_OK && c.m == NULL && c.site.path == NULL, "no site file and no manifest: "
       "loaded, with neither (%s)", err);
    is_str(stg_conf_dest(&c, NULL), STG_DEFAULT_DEST, "dest: the default, " STG_DEFAULT_DEST);
    is_str(stg_conf_dest(&c, "/given/dest"), "/given/dest", "dest given: that");
    stg_conf_free(&c);

    /* --- the precedence of the destination --- */
    write_site("[site]\ndest = /site/dest\n");
    write_manifest("/manifest/dest", 0644);
    rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
    ok(rc == STG_OK && c.m && c.site.path && strcmp(c.site.path, site) == 0,
       "a site file and a manifest: both loaded (%s)", err);
    is_str(c.m ? c.m->path : NULL, mpath, "... the manifest from its path");
    is_str(stg_conf_dest(&c, "/given/dest"), "/given/dest", "dest given: it wins over the "
           "manifest's and the site's");
    is_str(stg_conf_dest(&c, NULL), "/manifest/dest", "not given: the manifest's, over the "
           "site's");
    stg_conf_free(&c);
    ok(c.m == NULL, "free: the manifest gone");

    write_manifest(NULL, 0644);
    rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
    ok(rc == STG_OK, "a manifest without dest (%s)", err);
    is_str(stg_conf_dest(&c, NULL), "/site/dest", "... dest: the site's");
    is_str(stg_conf_dest(&c, "/given/dest"), "/given/dest", "... unless given");

    /* --- loaded again, with the same site --- */
    write_manifest("/manifest/second", 0644);
    stg_err_take(NULL, 0);
    rc = stg_conf_reload(&c, mpath, STG_MANIFEST_SOURCES);
    stg_err_take(err, sizeof err);
    ok(rc == STG_OK && c.m && c.m->dest, "reload: the manifest read again (%s)", err);
    is_str(stg_conf_dest(&c, NULL), "/manifest/second", "... its new dest");
    is_str(c.site.dest, "/site/dest", "... with the same site");
    char *gone = stg_xasprintf("%s/gone.ini", top);
    stg_err_take(NULL, 0);
    rc = stg_conf_reload(&c, gone, STG_MANIFEST_SOURCES);
    stg_err_take(err, sizeof err);
    ok(rc == STG_EUSAGE && c.m == NULL, "reload of a manifest that is not there: status 2, "
       "no manifest");
    like(err, gone, "... the error names it");
    is_str(stg_conf_dest(&c, NULL), "/site/dest", "... and dest falls back to the site's");
    stg_conf_free(&c);

    /* --- a manifest that is not there --- */
    rc = load(&c, gone, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
    char *want = stg_xasprintf("manifest '%s'", gone);
    ok(rc == STG_EUSAGE && c.m == NULL, "a manifest that is not there: status 2");
    like(err, want, "... the error names it");
    like(err, "No such file or directory", "... and why");
    free(want);
    stg_conf_free(&c);
    free(gone);

    /* --- sources checked or not --- */
    char *text = stg_xasprintf("[stage]\nname = t\n[tree a]\nsource = %s/nosuch\n", top);
    fx_write_text(mpath, text, 0644);
    free(text);
    rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
    want = stg_xasprintf("%s:4:", mpath);
    ok(rc == STG_EUSAGE && c.m == NULL, "a source that is not there, sources checked: status 2");
    like(err, want, "... naming file:line");
    free(want);
    stg_conf_free(&c);
    rc = load(&c, mpath, 0, err, sizeof err, warn, sizeof warn);
    ok(rc == STG_OK && c.m, "... not checked (clean, list): loaded (%s)", err);
    stg_conf_free(&c);

    /* --- a manifest that its group can write --- */
    write_site("[site]\ndest = /site/dest\n");
    write_manifest(NULL, 0664);
    rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
    want = stg_xasprintf("refusing manifest '%s': writable by group or others (mode 0664)",
                         mpath);
    ok(rc == STG_EUSAGE && c.m == NULL, "a manifest its group can write: refused, status 2");
    like(err, want, "... naming it and why");
    free(want);
    stg_conf_free(&c);
    write_site("[site]\nwritable_manifests = warn\n");
    rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
    want = stg_xasprintf("warning: using manifest '%s': writable by group or others", mpath);
    ok(rc == STG_OK && c.m && c.site.writable_manifests_warn, "... with writable_manifests = "
       "warn in the site file: loaded (%s)", err);
    like(warn, want, "... with a warning naming it");
    free(want);
    is_str(stg_conf_dest(&c, NULL), STG_DEFAULT_DEST, "... and, with no dest anywhere, the "
           "default");
    stg_conf_free(&c);
    chmod(mpath, 0644);

    /* --- as root, another user's manifest --- */
    struct passwd *pw = fx_user();
    if (pw) {
        int crc = chown(mpath, pw->pw_uid, pw->pw_gid);
        write_site("[site]\n");
        rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
        want = stg_xasprintf("refusing manifest '%s'", mpath);
        ok(crc == 0 && rc == STG_EUSAGE && c.m == NULL, "as root, a manifest of " FX_USER
           "'s: refused, status 2");
        like(err, want, "... naming it");
        like(err, "is owned by " FX_USER, "... and its owner");
        free(want);
        stg_conf_free(&c);
        write_site("[site]\nwritable_manifests = warn\n");
        rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
        want = stg_xasprintf("warning: using manifest '%s'", mpath);
        ok(rc == STG_OK && c.m, "... with writable_manifests = warn: loaded (%s)", err);
        like(warn, want, "... with a warning naming it");
        free(want);
        stg_conf_free(&c);
        if (chown(mpath, 0, 0) < 0)
            diag("chown back: failed");
    } else {
        for (int i = 0; i < 5; i++)
            skip(root ? "no user " FX_USER : "not root: cannot give a manifest to another "
                 "user");
    }

    /* --- a bad site file --- */
    write_site("[site]\ndset = /x\n");
    write_manifest("/manifest/dest", 0644);
    rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
    want = stg_xasprintf("%s:2: unknown key 'dset'", site);
    ok(rc == STG_EUSAGE, "a mistake in the site file: status 2");
    like(err, want, "... naming file:line");
    ok(c.m == NULL, "... and the manifest is not loaded");
    free(want);
    stg_conf_free(&c);
    fx_write_text(site, "[site]\n", 0664);
    rc = load(&c, NULL, 0, err, sizeof err, warn, sizeof warn);
    want = stg_xasprintf("'%s'", site);
    ok(rc == STG_EUSAGE && strstr(err, want) && strstr(err, "0664"), "a site file its group "
       "can write: refused, naming it (%s)", err);
    free(want);
    stg_conf_free(&c);

    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
