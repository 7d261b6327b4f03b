/* SPDX-License-Identifier: MIT */
/*
 * cache: the per-user directory in node-local memory, and the publication
 * of a copy by rename(2), so that nobody ever sees half a tree.
 */
#include "config.h"

#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* mkdir -p for dest itself (which normally exists: /dev/shm). */
static int make_dest(const char *dest)
{
    char *p = stg_xstrdup(dest);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            int rc = stg_err_set(STG_EFAIL, "cannot create '%s': %s", p, strerror(e));
            free(p);
            return rc;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return STG_OK;
}

int stg_cache_open(struct stg_cache *c, const char *dest)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->tmpfd = -1;
    c->dest = stg_xstrdup(dest);
    uid_t uid = geteuid();
    c->dir = stg_xasprintf("%s/stage-py-%u", dest, (unsigned)uid);
    int rc = make_dest(dest);
    if (rc)
        return rc;
    int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return stg_err_set(STG_EFAIL, "cannot open '%s': %s", dest, strerror(errno));
    char *base = strrchr(c->dir, '/') + 1;
    if (mkdirat(dfd, base, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        close(dfd);
        return stg_err_set(STG_EFAIL, "cannot create '%s': %s", c->dir, strerror(e));
    }
    /* O_NOFOLLOW: another user may have planted a link to a directory of theirs. */
    c->fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(dfd);
    if (c->fd < 0) {
        if (e == ELOOP || e == ENOTDIR)
            return stg_err_set(STG_EFAIL, "refusing '%s': not a real directory (a symbolic "
                               "link or a file is in its place)", c->dir);
        return stg_err_set(STG_EFAIL, "cannot open '%s': %s", c->dir, strerror(e));
    }
    struct stat st;
    if (fstat(c->fd, &st) < 0)
        return stg_err_set(STG_EFAIL, "cannot stat '%s': %s", c->dir, strerror(errno));
    if (st.st_uid != uid)
        return stg_err_set(STG_EFAIL, "refusing '%s': owned by uid %u, not by uid %u",
                           c->dir, (unsigned)st.st_uid, (unsigned)uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return stg_err_set(STG_EFAIL, "refusing '%s': writable by group or others "
                           "(mode %04o)", c->dir, (unsigned)(st.st_mode & 07777));
    return STG_OK;
}

void stg_cache_close(struct stg_cache *c)
{
    if (c->tmpfd >= 0)
        close(c->tmpfd);
    c->tmpfd = -1;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->dest);
    free(c->dir);
    c->dest = c->dir = NULL;
}

char *stg_cache_copy_name(const char *name, const char *key)
{
    return stg_xasprintf("%s-%s", name, key);
}

/* The record's text, at most 4 KiB. */
static bool read_record(int dirfd, char *buf, size_t len)
{
    int fd = openat(dirfd, STG_RECORD, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, len - 1);
    /* Used now: the record's mtime is the copy's last use. */
    futimens(fd, NULL);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

bool stg_cache_has(const struct stg_cache *c, const char *copy)
{
    const char *dash = strrchr(copy, '-');
    const char *key = dash ? dash + 1 : copy;
    int fd = openat(c->fd, copy, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        struct stat st;
        if (fstatat(c->fd, copy, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            stg_log_warn("removing '%s/%s': not a directory of stage-py's", c->dir, copy);
            stg_rm_tree_at(c->fd, copy);
        }
        return false;
    }
    struct stat st;
    char rec[4096], want[64];
    snprintf(want, sizeof want, "\"key\": \"%s\"", key);
    bool ok = fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
              read_record(fd, rec, sizeof rec) && strstr(rec, want) != NULL;
    close(fd);
    if (!ok) {
        /* Copies appear complete, by rename, with their record: this one
         * was not made so, and must not be trusted or left in the way. */
        stg_log_warn("removing '%s/%s': it has no valid %s record", c->dir, copy, STG_RECORD);
        if (stg_rm_tree_at(c->fd, copy) < 0)
            stg_log_warn("cannot remove '%s/%s': %s", c->dir, copy, strerror(errno));
    }
    return ok;
}

int stg_cache_record(const struct stg_cache *c, const char *tmp, const struct stg_record *r)
{
    char host[256] = "";
    const char *sn = getenv("SLURMD_NODENAME");   /* the name messages use */
    if (sn && *sn)
        snprintf(host, sizeof host, "%s", sn);
    else
        gethostname(host, sizeof host - 1);
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    char *text = stg_xasprintf("{\n  \"name\": \"%s\",\n  \"key\": \"%s\",\n  \"digest\": \"%s\",\n"
                               "  \"bytes\": %llu,\n  \"files\": %llu,\n  \"created\": \"%s\",\n"
                               "  \"host\": \"%s\"\n}\n",
                               r->name, r->key, r->digest, r->bytes, r->files, when, host);
    int rc = STG_OK;
    int fd = openat(c->tmpfd, STG_RECORD, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
        rc = stg_err_set(STG_EFAIL, "cannot write '%s/%s/%s': %s", c->dir, tmp, STG_RECORD,
                         strerror(errno));
    if (fd >= 0 && close(fd) < 0 && rc == STG_OK)
        rc = stg_err_set(STG_EFAIL, "cannot write '%s/%s/%s': %s", c->dir, tmp, STG_RECORD,
                         strerror(errno));
    free(text);
    return rc;
}

int stg_cache_tmp_new(struct stg_cache *c, const char *copy, char **tmp)
{
    /* Made under a ".new-" name, locked, then renamed to ".tmp-": a sweeping
     * run only takes ".tmp-" directories it can lock, so it never sees one
     * between mkdir and flock. */
    char *fresh = stg_xasprintf(".new-%s-%ld", copy, (long)getpid());
    *tmp = stg_xasprintf(".tmp-%s-%ld", copy, (long)getpid());
    stg_rm_tree_at(c->fd, fresh);   /* leftovers of an earlier run with our pid */
    stg_rm_tree_at(c->fd, *tmp);
    int rc = STG_OK;
    if (mkdirat(c->fd, fresh, 0700) < 0) {
        rc = stg_err_set(STG_EFAIL, "cannot create '%s/%s': %s", c->dir, fresh, strerror(errno));
    } else {
        c->tmpfd = openat(c->fd, fresh, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (c->tmpfd < 0 || flock(c->tmpfd, LOCK_EX | LOCK_NB) < 0 ||
            renameat(c->fd, fresh, c->fd, *tmp) < 0) {
            rc = stg_err_set(STG_EFAIL, "cannot prepare '%s/%s': %s", c->dir, *tmp,
                             strerror(errno));
            stg_rm_tree_at(c->fd, fresh);
        }
    }
    free(fresh);
    if (rc) {
        if (c->tmpfd >= 0)
            close(c->tmpfd);
        c->tmpfd = -1;
        free(*tmp);
        *tmp = NULL;
    }
    return rc;
}

void stg_cache_sweep(const struct stg_cache *c)
{
    int fd = openat(c->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        struct stat st;
        if (strncmp(n, ".tmp-", 5) == 0) {
            int t = openat(c->fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (t < 0)
                continue;
            /* Locked: a live run is writing it.  Unlocked: its run is gone. */
            if (flock(t, LOCK_EX | LOCK_NB) == 0) {
                if (stg_rm_tree_at(c->fd, n) == 0)
                    stg_log_info("removed '%s/%s', left by a run that ended", c->dir, n);
                else
                    stg_log_warn("cannot remove '%s/%s': %s", c->dir, n, strerror(errno));
            }
            close(t);
        } else if ((strncmp(n, ".new-", 5) == 0 || strncmp(n, ".probe-", 7) == 0) &&
                   fstatat(c->fd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   now - st.st_mtime > 3600) {
            if (stg_rm_tree_at(c->fd, n) == 0)
                stg_log_info("removed '%s/%s', left by a run that ended", c->dir, n);
        }
    }
    closedir(d);
}

int stg_cache_commit(struct stg_cache *c, const char *tmp, const char *copy)
{
    if (renameat2(c->fd, tmp, c->fd, copy, RENAME_NOREPLACE) == 0) {
        close(c->tmpfd);
        c->tmpfd = -1;
        return STG_OK;
    }
    int e = errno;
    if (e == EEXIST && stg_cache_has(c, copy)) {
        stg_log_info("'%s/%s' appeared meanwhile: keeping it", c->dir, copy);
        stg_cache_discard(c, tmp);
        return STG_OK;
    }
    stg_cache_discard(c, tmp);
    return stg_err_set(STG_EFAIL, "cannot rename '%s/%s' to '%s': %s", c->dir, tmp, copy,
                       strerror(e));
}

void stg_cache_discard(struct stg_cache *c, const char *tmp)
{
    if (tmp && stg_rm_tree_at(c->fd, tmp) < 0)
        stg_log_warn("cannot remove '%s/%s': %s", c->dir, tmp, strerror(errno));
    if (c->tmpfd >= 0)
        close(c->tmpfd);
    c->tmpfd = -1;
}
