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
#include "log.h"
#include "tap.h"
#include "util.h"

#define TEST_USER "stagepy-test"

static char top[64];
static char site[128], mpath[128], src[128], stderr_path[128];
static int saved_stderr = -1;

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
}

static void write_site(const char *text)
{
    write_file(site, text, 0644);
    setenv("STAGE_PY_CONF", site, 1);
}

/* The manifest, with dest = dest if not NULL. */
static void write_manifest(const char *dest, mode_t mode)
{
    char *text = stg_xasprintf("[stage]\nname = t\n%s%s%s[tree a]\nsource = %s\n",
                               dest ? "dest = " : "", dest ? dest : "", dest ? "\n" : "", src);
    write_file(mpath, text, mode);
    free(text);
}

/* Warnings go to stderr: keep them for a look. */
static void stderr_to_file(void)
{
    fflush(stderr);
    int fd = open(stderr_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static void stderr_back(char *text, size_t len)
{
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(stderr_path, "r");
    size_t n = f ? fread(text, 1, len - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
}

/* stg_conf_load() of path, its recorded error in OUT err, its warnings in
 * OUT warn. */
static int load(struct stg_conf *c, const char *path, unsigned flags, char *err, size_t len,
                char *warn, size_t wlen)
{
    stg_err_take(NULL, 0);
    stderr_to_file();
    int rc = stg_conf_load(c, path, flags);
    stderr_back(warn, wlen);
    stg_err_take(err, len);
    return rc;
}

int main(void)
{
    snprintf(top, sizeof top, "/tmp/t-conf-XXXXXX");
    if (!mkdtemp(top))
        return 1;
    chmod(top, 0755);
    snprintf(site, sizeof site, "%s/site.conf", top);
    snprintf(mpath, sizeof mpath, "%s/m.ini", top);
    snprintf(src, sizeof src, "%s/src", top);
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr", top);
    mkdir(src, 0755);
    bool root = geteuid() == 0;
    struct stg_conf c;
    char err[STG_MSG_MAX], warn[4096];

    /* --- no site file, no manifest --- */
    char *nosite = stg_xasprintf("%s/none.conf", top);
    setenv("STAGE_PY_CONF", nosite, 1);
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
    write_file(mpath, text, 0644);
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
    struct passwd *pw = root ? getpwnam(TEST_USER) : NULL;
    if (pw) {
        int crc = chown(mpath, pw->pw_uid, pw->pw_gid);
        write_site("[site]\n");
        rc = load(&c, mpath, STG_MANIFEST_SOURCES, err, sizeof err, warn, sizeof warn);
        want = stg_xasprintf("refusing manifest '%s'", mpath);
        ok(crc == 0 && rc == STG_EUSAGE && c.m == NULL, "as root, a manifest of " TEST_USER
           "'s: refused, status 2");
        like(err, want, "... naming it");
        like(err, "is owned by " TEST_USER, "... and its owner");
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
            skip(root ? "no user " TEST_USER : "not root: cannot give a manifest to another "
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
    write_file(site, "[site]\n", 0664);
    rc = load(&c, NULL, 0, err, sizeof err, warn, sizeof warn);
    want = stg_xasprintf("'%s'", site);
    ok(rc == STG_EUSAGE && strstr(err, want) && strstr(err, "0664"), "a site file its group "
       "can write: refused, naming it (%s)", err);
    free(want);
    stg_conf_free(&c);

    free(nosite);
    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
