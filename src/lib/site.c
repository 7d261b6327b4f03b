/* SPDX-License-Identifier: MIT */
/*
 * site: the site configuration file, parsed with inih.  One section,
 * [site]; an unknown key or a bad value is an error that names file:line,
 * so that a typo never silently drops a limit.
 */
#include "config.h"

#include "site.h"

#include <errno.h>
#include <stdbool.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "space.h"
#include "trust.h"
#include "util.h"

#ifndef STG_SITE_CONF
#define STG_SITE_CONF "/etc/stage-py.conf"
#endif

struct parse {
    struct stg_site *s;
    int line;               /* inih does not pass it: counted from the reader */
    bool indented;          /* the line starts with a blank */
    bool failed;
    /* the keys given so far, and their lines: every key takes one value */
    struct { char name[32]; int line; } seen[32];
    size_t nseen;
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parse *p, const char *fmt, ...)
{
    if (p->failed)
        return 0;
    p->failed = true;
    char msg[STG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stg_err_set(STG_EUSAGE, "%s:%d: %s", p->s->path, p->line, msg);
    return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    struct stg_site *s = p->s;
    if (p->failed)
        return 0;
    if (!*section)
        return fail(p, "'%s' before any section: put it below [site]", name);
    if (strcmp(section, "site") != 0)
        return fail(p, "unknown section [%s] (the site file has one section, [site])",
                    section);
    /* Once each: a second one (or an indented continuation line, which
     * inih passes as the same key again) would silently win over the
     * first, and the Slurm epilog, which reads dest itself, takes no
     * continuations. */
    for (size_t i = 0; i < p->nseen; i++)
        if (strcmp(p->seen[i].name, name) == 0)
            return fail(p, "'%s' given again (first at line %d)%s", name, p->seen[i].line,
                        p->indented ? ": an indented line continues the one above it" : "");
    if (p->nseen < sizeof p->seen / sizeof p->seen[0] && strlen(name) < sizeof p->seen[0].name) {
        snprintf(p->seen[p->nseen].name, sizeof p->seen[0].name, "%s", name);
        p->seen[p->nseen++].line = p->line;
    }
    if (strcmp(name, "dest") == 0) {
        free(s->dest);
        s->dest = stg_path_strip_slash(stg_xstrdup(value));
        if (!stg_path_is_clean_absolute(s->dest))
            return fail(p, "dest '%s' is not a clean absolute path", value);
        if (!stg_path_listable(s->dest))
            return fail(p, "dest '%s' has a ':' or a newline, which a path list cannot hold",
                        value);
        s->dest_line = p->line;
    } else if (strcmp(name, "reuse") == 0) {
        if (stg_parse_bool(value, &s->reuse) < 0)
            return fail(p, "reuse '%s': use yes or no", value);
        s->reuse_line = p->line;
    } else if (strcmp(name, "max_cache") == 0) {
        if (stg_parse_size(value, &s->max_cache) < 0)
            return fail(p, "max_cache '%s': give a size such as 8G, or 0 for no limit", value);
        s->max_cache_line = p->line;
    } else if (strcmp(name, "max_node_cache") == 0) {
        if (stg_parse_size(value, &s->max_node_cache) < 0)
            return fail(p, "max_node_cache '%s': give a size such as 32G, or 0 for no cap",
                        value);
        s->max_node_cache_line = p->line;
    } else if (strcmp(name, "headroom") == 0) {
        if (stg_parse_size(value, &s->headroom) < 0)
            return fail(p, "headroom '%s': give a size such as 256M", value);
        s->headroom_line = p->line;
    } else if (strcmp(name, "timeout") == 0) {
        if (stg_parse_duration(value, &s->timeout) < 0)
            return fail(p, "timeout '%s': give a duration such as 10m, or 0 for none", value);
        s->timeout_line = p->line;
    } else if (strcmp(name, "lock_wait") == 0) {
        if (stg_parse_duration(value, &s->lock_wait) < 0)
            return fail(p, "lock_wait '%s': give a duration such as 5m", value);
        s->lock_wait_line = p->line;
    } else if (strcmp(name, "allow_fs") == 0) {
        /* a typo must not silently allow nothing */
        for (const char *v = value; *v;) {
            v += strspn(v, " \t,");
            size_t k = strcspn(v, " \t,");
            if (k && !stg_space_fs_shared_name(v, k))
                return fail(p, "allow_fs: '%.*s' is not a shared file-system type (known: "
                            "nfs lustre gpfs beegfs ceph cifs smb2 smb panfs 9p fuse afs kafs "
                            "coda ocfs2 gfs2 orangefs ncp vboxsf)", (int)k, v);
            v += k;
        }
        free(s->allow_fs);
        s->allow_fs = stg_xstrdup(value);
        s->allow_fs_line = p->line;
    } else if (strcmp(name, "compress") == 0) {
        if (stg_parse_compress(value, &s->compress) < 0)
            return fail(p, "compress '%s': use " STG_COMPRESS_CHOICES, value);
        s->compress_line = p->line;
    } else if (strcmp(name, "writable_manifests") == 0) {
        if (strcmp(value, "refuse") == 0)
            s->writable_manifests_warn = false;
        else if (strcmp(value, "warn") == 0)
            s->writable_manifests_warn = true;
        else
            return fail(p, "writable_manifests '%s': use refuse or warn", value);
        s->writable_manifests_line = p->line;
    } else {
        return fail(p, "unknown key '%s' in [site] (known: dest, reuse, max_cache, "
                    "max_node_cache, headroom, timeout, lock_wait, compress, "
                    "writable_manifests, allow_fs)", name);
    }
    return 1;
}

/* inih's reader, counting lines so that errors can name them. */
static char *reader(char *str, int num, void *stream)
{
    struct parse *p = ((void **)stream)[1];
    FILE *f = ((void **)stream)[0];
    char *r = fgets(str, num, f);
    if (!r)
        return NULL;
    p->line++;
    p->indented = r && (r[0] == ' ' || r[0] == '\t');
    /* inih would read the rest as a line of its own: refuse instead. */
    size_t len = strlen(r);
    if (len == (size_t)num - 1 && r[len - 1] != '\n' && !feof(f)) {
        fail(p, "line too long (at most %d characters)", num - 2);
        return NULL;
    }
    return r;
}

int stg_site_load(struct stg_site *s)
{
    memset(s, 0, sizeof *s);
    s->reuse = true;
    s->lock_wait = -1;
    const char *path = getenv("STAGE_PY_CONF");
    bool named = path && *path;
    if (!named)
        path = STG_SITE_CONF;
    if (named && strcmp(path, "/dev/null") == 0)
        return STG_OK;      /* no site file, on purpose */
    struct stat st;
    int known = stat(path, &st);
    /* the default may be absent; one named on purpose may not */
    if (known < 0 && errno == ENOENT && !named)
        return STG_OK;
    if (known < 0 && errno == ENOENT)
        return stg_err_set(STG_EUSAGE, "the site file '%s' (STAGE_PY_CONF): %s (unset "
                           "STAGE_PY_CONF for the default, %s, or set it to /dev/null for "
                           "none)", path, strerror(errno), STG_SITE_CONF);
    s->path = stg_xstrdup(path);
    /* Its limits hold for every user: nobody but its owner may change them. */
    if (known == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        return stg_err_set(STG_EUSAGE, "refusing the site file '%s': writable by group or "
                           "others (mode %04o)", path, (unsigned)(st.st_mode & 07777));
    }
    int fd = stg_trust_open_input(path, "the site file", false);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd < 0)
            return STG_EUSAGE;      /* recorded */
        close(fd);
        return stg_err_set(STG_EUSAGE, "cannot read the site file '%s': %s", path, strerror(errno));
    }
    struct parse p = {.s = s};
    void *stream[2] = {f, &p};
    int rc = ini_parse_stream(reader, stream, handler, &p);
    fclose(f);
    if (p.failed)
        return STG_EUSAGE;
    if (rc == -2)
        return stg_err_set(STG_EUSAGE, "%s: out of memory while parsing", path);
    if (rc != 0)
        return stg_err_set(STG_EUSAGE, "%s:%d: syntax error", path, rc);
    return STG_OK;
}

void stg_site_free(struct stg_site *s)
{
    free(s->path);
    free(s->dest);
    free(s->allow_fs);
    s->path = s->dest = s->allow_fs = NULL;
}

char *stg_site_where(const struct stg_site *s, const char *key, int line)
{
    return stg_xasprintf("the site's %s (%s:%d)", key, s->path ? s->path : "?", line);
}
