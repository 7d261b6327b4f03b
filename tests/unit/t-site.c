/* SPDX-License-Identifier: MIT */
/*
 * t-site: the site file: every key read, and every mistake an error that
 * names file:line, since a typo must never silently drop a limit.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "site.h"
#include "tap.h"
#include "util.h"

static char dir[4096], path[4200];

/* stg_site_load(), with the message it records in err. */
static int site_load(struct stg_site *s, char *err, size_t len)
{
    stg_err_take(NULL, 0);
    int rc = stg_site_load(s);
    stg_err_take(err, len);
    return rc;
}

/* Write text as the site file and load it.  OUT err. */
static int load(const char *text, struct stg_site *s, char *err, size_t len)
{
    fx_write_text(path, text, 0644);
    setenv("STAGE_PY_CONF", path, 1);
    return site_load(s, err, len);
}

static void fails(const char *text, const char *want, const char *desc)
{
    struct stg_site s;
    char err[STG_MSG_MAX];
    int rc = load(text, &s, err, sizeof err);
    ok(rc == STG_EUSAGE && strstr(err, want), "%s (%s)", desc, err);
    stg_site_free(&s);
}

int main(void)
{
    if (!fx_tmpdir(dir, sizeof dir, "t-site"))
        return 1;
    chmod(dir, 0755);
    snprintf(path, sizeof path, "%s/site.conf", dir);
    struct stg_site s;
    char err[STG_MSG_MAX];
    int rc = load("[site]\ndest = /local/stage/\nreuse = no\nmax_cache = 8G\n"
                  "max_node_cache = 32G\nheadroom = 512M\ntimeout = 10m\nlock_wait = 90s\n"
                  "writable_manifests = warn\nallow_fs = fuse nfs\n", &s, err, sizeof err);
    ok(rc == STG_OK, "every key (%s)", err);
    is_str(s.dest, "/local/stage", "dest, its trailing slash dropped");
    ok(!s.reuse && s.reuse_line == 3, "reuse = no, line 3");
    ok(s.max_cache == 8ull << 30 && s.max_cache_line == 4, "max_cache 8G");
    ok(s.max_node_cache == 32ull << 30 && s.max_node_cache_line == 5, "max_node_cache 32G");
    ok(s.headroom == 512ull << 20 && s.timeout == 600 && s.lock_wait == 90, "headroom, timeout, "
       "lock_wait");
    ok(s.writable_manifests_warn, "writable_manifests = warn");
    is_str(s.allow_fs, "fuse nfs", "allow_fs");
    stg_site_free(&s);

    fails("[site]\nmax_cahce = 8G\n", "site.conf:2: unknown key 'max_cahce'",
          "a misspelt key: an error naming file:line");
    fails("[stage]\nname = x\n", "site.conf:2: unknown section [stage]", "another section, at its first key");
    fails("dest = /x\n[site]\n", "site.conf:1: 'dest' before any section: put it below [site]",
          "a key before [site]");
    fails("[site]\ndest = /a\ndest = /b\n", "site.conf:3: 'dest' given again (first at line 2)",
          "a key given twice: an error, not the last one silently");
    fails("[site]\ndest = /a\n  /b\n",
          "site.conf:3: 'dest' given again (first at line 2): an indented line continues the "
          "one above it", "an indented continuation line: the same error, saying why");
    fails("[site]\nreuse = maybe\n", "site.conf:2: reuse 'maybe': use yes or no", "a bad yes/no");
    fails("[site]\nmax_node_cache = lots\n", "max_node_cache 'lots'", "a bad size");
    fails("[site]\nallow_fs = fuse fsue\n", "site.conf:2: allow_fs: 'fsue' is not a shared "
          "file-system type", "allow_fs with a typo");
    fails("[site]\nallow_fs = tmpfs\n", "'tmpfs' is not a shared", "allow_fs of a local type");
    fails("[site]\ndest = relative\n", "dest 'relative' is not a clean absolute path",
          "a relative dest");

    fx_write_text(path, "[site]\nreuse = yes\n", 0664);
    rc = site_load(&s, err, sizeof err);
    ok(rc == STG_EUSAGE && strstr(err, "writable by group or others (mode 0664)"),
       "a site file its group can write: refused (%s)", err);
    stg_site_free(&s);
    setenv("STAGE_PY_CONF", dir, 1);
    rc = site_load(&s, err, sizeof err);
    ok(rc == STG_EUSAGE && strstr(err, "is not a regular file (a directory)"),
       "STAGE_PY_CONF naming a directory: an error (%s)", err);
    stg_site_free(&s);
    char *none = stg_xasprintf("%s/none.conf", dir);
    setenv("STAGE_PY_CONF", none, 1);
    rc = site_load(&s, err, sizeof err);
    ok(rc == STG_EUSAGE && strstr(err, "none.conf' (STAGE_PY_CONF): No such file or directory"),
       "STAGE_PY_CONF naming a file that is not there: an error naming it (%s)", err);
    stg_site_free(&s);
    free(none);
    setenv("STAGE_PY_CONF", "/dev/null", 1);
    rc = site_load(&s, err, sizeof err);
    ok(rc == STG_OK && !s.path && s.reuse, "STAGE_PY_CONF=/dev/null: no site file, the defaults");
    stg_site_free(&s);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
