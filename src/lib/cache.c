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
#include "manifest.h"
#include "node.h"
#include "trust.h"
#include "util.h"

int stg_cache_open(struct stg_cache *c, const char *dest)
{
    return stg_cache_open_as(c, dest, geteuid());
}

char *stg_cache_dir(const char *dest, uid_t uid)
{
    return stg_xasprintf("%s/stage-py-%u", dest, (unsigned)uid);
}

bool stg_cache_dir_uid(const char *name, uid_t *uid)
{
    if (strncmp(name, "stage-py-", 9) != 0 || name[9] < '0' || name[9] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long u = strtoul(name + 9, &end, 10);
    if (*end || errno || u != (unsigned long)(uid_t)u)
        return false;
    *uid = (uid_t)u;
    return true;
}

int stg_cache_open_existing(struct stg_cache *c, const char *dest, bool *absent)
{
    char *dir = stg_cache_dir(dest, geteuid());
    struct stat st;
    *absent = lstat(dir, &st) < 0 && errno == ENOENT;
    free(dir);
    if (*absent)
        return STG_OK;
    return stg_cache_open(c, dest);
}

int stg_cache_open_as(struct stg_cache *c, const char *dest, uid_t uid)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->tmpfd = -1;
    c->lockfd = -1;
    c->budgetfd = -1;
    c->uid = uid;
    c->dest = stg_xstrdup(dest);
    c->dir = stg_cache_dir(dest, uid);
    /* Only the per-user directory is ours to make: a destination that is
     * missing is a typo, or a node set up unlike the others. */
    struct stat st;
    if (stat(dest, &st) < 0 && errno == ENOENT)
        return stg_err_set(STG_EFAIL, "destination '%s' does not exist (stage-py makes only "
                           "its per-user directory below it; a shared destination is made "
                           "once per node by an administrator, mode 1777 like /dev/shm)", dest);
    /* Whoever can rename what lies below it could put a copy of their own
     * in the place of this user's. */
    struct stg_trust t;
    stg_trust_init(&t);
    stg_trust_check(dest, uid, 0, &t);
    if (!t.ok)
        return stg_err_set(STG_EFAIL, "refusing destination '%s': %s; another user could "
                           "replace the copies below it", dest, t.why);
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
    stg_cache_release(c);
    stg_cache_budget_unlock(c);
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

/* The record's text, at most 4 KiB.  touch: mark the copy used now (the
 * record's mtime is the copy's last use).  OUT used: that time. */
static bool read_record(int dirfd, char *buf, size_t len, bool touch, long long *used)
{
    int fd = openat(dirfd, STG_RECORD, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, len - 1);
    if (touch)
        futimens(fd, NULL);
    struct stat st;
    if (used)
        *used = fstat(fd, &st) == 0 ? (long long)st.st_mtime : 0;
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Read copy's record into rec (touch: mark it used), checking that the copy
 * is a real directory of ours whose record names key.  OUT used. */
static bool check_copy(const struct stg_cache *c, const char *copy, bool touch, char *rec,
                       size_t len, long long *used)
{
    const char *dash = strrchr(copy, '-');
    const char *key = dash ? dash + 1 : copy;
    int fd = openat(c->fd, copy, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    char want[64];
    snprintf(want, sizeof want, "\"key\": \"%s\"", key);
    bool ok = fstat(fd, &st) == 0 && st.st_uid == c->uid &&
              read_record(fd, rec, len, touch, used) && strstr(rec, want) != NULL;
    close(fd);
    return ok;
}

/* stg_cache_use(), with the record's text in OUT rec. */
static bool has_copy(const struct stg_cache *c, const char *copy, char *rec, size_t len)
{
    struct stat st;
    if (fstatat(c->fd, copy, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    if (!S_ISDIR(st.st_mode)) {
        stg_log_warn("removing '%s/%s': not a directory of stage-py's", c->dir, copy);
        stg_rm_tree_at(c->fd, copy);
        return false;
    }
    bool ok = check_copy(c, copy, true, rec, len, NULL);
    if (!ok) {
        /* Copies appear complete, by rename, with their record: this one
         * was not made so, and must not be trusted or left in the way. */
        stg_log_warn("removing '%s/%s': it has no valid %s record", c->dir, copy, STG_RECORD);
        if (stg_rm_tree_at(c->fd, copy) < 0)
            stg_log_warn("cannot remove '%s/%s': %s", c->dir, copy, strerror(errno));
    }
    return ok;
}

bool stg_cache_use(const struct stg_cache *c, const char *copy)
{
    char rec[4096];
    return has_copy(c, copy, rec, sizeof rec);
}

int stg_cache_record(const struct stg_cache *c, const char *tmp, const struct stg_record *r)
{
    char host[256];
    stg_node_name(host, sizeof host);     /* the name messages use */
    char *qhost = stg_json_quote(host);
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    char *text = stg_xasprintf("{\n  \"name\": \"%s\",\n  \"key\": \"%s\",\n  \"digest\": \"%s\",\n"
                               "  \"bytes\": %llu,\n  \"files\": %llu,\n  \"created\": \"%s\",\n"
                               "  \"job\": \"%s\",\n  \"host\": %s\n}\n",
                               r->name, r->key, r->digest, r->bytes, r->files, when, r->job,
                               qhost);
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
    free(qhost);
    return rc;
}

int stg_cache_tmp_new(struct stg_cache *c, const char *copy, uint64_t bytes, char **tmp)
{
    /* Made under a ".new-" name, locked, then renamed to ".tmp-": a sweeping
     * run only takes ".tmp-" directories it can lock, so it never sees one
     * between mkdir and flock, and a budget count only those it cannot. */
    char *fresh = stg_xasprintf(".new-%s-%ld", copy, (long)getpid());
    *tmp = stg_xasprintf(".tmp-%s-%ld-%llu", copy, (long)getpid(), (unsigned long long)bytes);
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
        } else if (strncmp(n, ".lock-", 6) == 0 &&
                   fstatat(c->fd, n + 6, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
            /* The lock of a copy that is gone.  Taken first: a run that
             * holds it is making that copy; one that opened it but has not
             * locked it yet finds it unlinked and opens a new one. */
            int l = openat(c->fd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (l >= 0 && flock(l, LOCK_EX | LOCK_NB) == 0)
                unlinkat(c->fd, n, 0);
            if (l >= 0)
                close(l);
        } else if ((strncmp(n, ".new-", 5) == 0 || strncmp(n, ".probe-", 7) == 0 ||
                    strncmp(n, ".del-", 5) == 0) &&
                   fstatat(c->fd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   now - st.st_mtime > 3600) {
            if (stg_rm_tree_at(c->fd, n) == 0)
                stg_log_info("removed '%s/%s', left by a run that ended", c->dir, n);
        }
    }
    closedir(d);
}

int stg_cache_commit(struct stg_cache *c, const char *tmp, const char *copy, bool replace)
{
    int r = renameat2(c->fd, tmp, c->fd, copy, RENAME_NOREPLACE);
    /* A file system without RENAME_NOREPLACE (FUSE, NFS: allowed by the
     * site's allow_fs): a plain rename cannot replace a copy either, since
     * a copy is a directory that is never empty (its record). */
    if (r < 0 && errno == EINVAL)
        r = renameat(c->fd, tmp, c->fd, copy);
    if (r < 0 && errno == ENOTEMPTY)
        errno = EEXIST;
    if (r == 0) {
        close(c->tmpfd);
        c->tmpfd = -1;
        return STG_OK;
    }
    int e = errno;
    /* One atomic swap: whoever imports from the copy sees the old tree or
     * the new one, never a missing or half one. */
    if (e == EEXIST && replace && renameat2(c->fd, tmp, c->fd, copy, RENAME_EXCHANGE) == 0) {
        stg_log_info("'%s/%s' replaced", c->dir, copy);
        stg_cache_discard(c, tmp);      /* the old copy, now under tmp's name */
        return STG_OK;
    }
    if (e == EEXIST && replace && errno == EINVAL) {
        /* No RENAME_EXCHANGE here either: the old copy leaves its name,
         * then the new one takes it; for a moment there is none. */
        char *del = stg_xasprintf(".del-%s-%ld", copy, (long)getpid());
        if (renameat(c->fd, copy, c->fd, del) == 0 && renameat(c->fd, tmp, c->fd, copy) == 0) {
            close(c->tmpfd);
            c->tmpfd = -1;
            stg_rm_tree_at(c->fd, del);
            free(del);
            stg_log_info("'%s/%s' replaced", c->dir, copy);
            return STG_OK;
        }
        free(del);
        errno = EEXIST;
    }
    e = errno;
    if (e == EEXIST && stg_cache_use(c, copy)) {
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

const char *stg_cache_job(char *buf, size_t len)
{
    static const char *const vars[] = {"SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID"};
    const char *id = NULL;
    for (size_t i = 0; i < sizeof vars / sizeof *vars && !id; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            id = v;
    }
    if (id)
        snprintf(buf, len, "%s", id);
    else
        snprintf(buf, len, "session-%ld", (long)getsid(0));
    /* A directory name; never ".", "..", or a path. */
    stg_manifest_make_name(buf);
    return buf;
}

/*
 * Take the copy's lock without waiting.  OUT got.  The lock file stays in
 * place: a remover unlinks it only while holding it, so a lock taken on a
 * file that is no longer under the name locks nothing, and is taken again.
 */
static int lock_try(const struct stg_cache *c, const char *copy, int *lockfd)
{
    char *name = stg_xasprintf(".lock-%s", copy);
    int rc = STG_OK;
    *lockfd = -1;
    for (int tries = 0; tries < 16 && *lockfd < 0 && rc == STG_OK; tries++) {
        int fd = openat(c->fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = stg_err_set(STG_EFAIL, "cannot open '%s/%s': %s", c->dir, name, strerror(errno));
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno != EWOULDBLOCK)
                rc = stg_err_set(STG_EFAIL, "cannot lock '%s/%s': %s", c->dir, name,
                                 strerror(errno));
            close(fd);
            break;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && fstatat(c->fd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            a.st_ino == b.st_ino && a.st_dev == b.st_dev)
            *lockfd = fd;
        else
            close(fd);
    }
    free(name);
    return rc;
}

void stg_cache_release(struct stg_cache *c)
{
    if (c->lockfd >= 0)
        close(c->lockfd);   /* drops the flock */
    c->lockfd = -1;
}

/* A pin's job is alive?  Only "session-N" pins can be checked here: the
 * session is gone when no process leads it.  Batch jobs' pins go with the
 * job's clean or the epilog. */
static bool pin_alive(const char *job)
{
    if (strncmp(job, "session-", 8) != 0)
        return true;
    char *end;
    long sid = strtol(job + 8, &end, 10);
    if (*end || sid <= 0)
        return true;
    pid_t s = getsid((pid_t)sid);
    return s == (pid_t)sid || (s < 0 && errno == EPERM);
}

/* The jobs that pin copy, comma-separated, into buf, leaving out skip
 * (NULL: none); with tidy, stale session pins are dropped on the way. */
static void pins_of(const struct stg_cache *c, const char *copy, const char *skip, bool tidy,
                    char *buf, size_t len)
{
    buf[0] = '\0';
    int pfd = openat(c->fd, ".pins", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = pfd >= 0 ? fdopendir(pfd) : NULL;
    if (!d) {
        if (pfd >= 0)
            close(pfd);
        return;
    }
    size_t off = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *job = de->d_name;
        if (job[0] == '.' || (skip && strcmp(job, skip) == 0))
            continue;
        if (!pin_alive(job)) {
            if (tidy)
                stg_rm_tree_at(dirfd(d), job);
            continue;
        }
        char *pin = stg_xasprintf("%s/%s", job, copy);
        struct stat st;
        if (fstatat(dirfd(d), pin, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            int w = snprintf(buf + off, len - off, "%s%s", off ? "," : "", job);
            if (w > 0 && (size_t)w < len - off)
                off += (size_t)w;
        }
        free(pin);
    }
    closedir(d);
}

int stg_cache_pin(const struct stg_cache *c, const char *copy, const char *job)
{
    int rc = STG_OK;
    if (mkdirat(c->fd, ".pins", 0700) < 0 && errno != EEXIST)
        return stg_err_set(STG_EFAIL, "cannot create '%s/.pins': %s", c->dir, strerror(errno));
    int pfd = openat(c->fd, ".pins", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return stg_err_set(STG_EFAIL, "cannot open '%s/.pins': %s", c->dir, strerror(errno));
    if (mkdirat(pfd, job, 0700) < 0 && errno != EEXIST)
        rc = stg_err_set(STG_EFAIL, "cannot create '%s/.pins/%s': %s", c->dir, job,
                         strerror(errno));
    int jfd = rc ? -1 : openat(pfd, job, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = jfd < 0 ? -1 : openat(jfd, copy, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (rc == STG_OK && fd < 0)
        rc = stg_err_set(STG_EFAIL, "cannot pin '%s/%s' for job %s: %s", c->dir, copy, job,
                         strerror(errno));
    if (fd >= 0) {
        futimens(fd, NULL);
        close(fd);
    }
    if (jfd >= 0)
        close(jfd);
    close(pfd);
    return rc;
}

/* Whether pin (a copy's name, "<name>-<key>") is of a copy named name. */
static bool pin_of(const char *pin, const char *name)
{
    size_t n = strlen(name);
    return strncmp(pin, name, n) == 0 && pin[n] == '-' && strlen(pin + n + 1) == 16 &&
           strspn(pin + n + 1, "0123456789abcdef") == 16;
}

int stg_cache_unpin(const struct stg_cache *c, const char *job, const char *name, bool dry_run,
                    unsigned *count)
{
    *count = 0;
    int pfd = openat(c->fd, ".pins", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return STG_OK;
    int jfd = openat(pfd, job, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int dfd = jfd >= 0 ? fcntl(jfd, F_DUPFD_CLOEXEC, 0) : -1;
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    int rc = STG_OK;
    unsigned left = 0;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            if (name && !pin_of(de->d_name, name)) {
                left++;
                continue;
            }
            (*count)++;
            if (!dry_run && name && unlinkat(jfd, de->d_name, 0) < 0 && rc == STG_OK)
                rc = stg_err_set(STG_EFAIL, "cannot remove '%s/.pins/%s/%s': %s", c->dir, job,
                                 de->d_name, strerror(errno));
        }
        closedir(d);
    } else if (dfd >= 0) {
        close(dfd);
    }
    if (jfd >= 0)
        close(jfd);
    /* the job's directory goes with its last pin */
    if (rc == STG_OK && !dry_run && left == 0 && stg_rm_tree_at(pfd, job) < 0)
        rc = stg_err_set(STG_EFAIL, "cannot remove '%s/.pins/%s': %s", c->dir, job,
                         strerror(errno));
    close(pfd);
    return rc;
}

/* Whether copy (for job, or any job with reuse) can be used as it is. */
static bool usable(const struct stg_cache *c, const char *copy, const char *job, bool reuse)
{
    char rec[4096], made_by[128];
    if (!has_copy(c, copy, rec, sizeof rec))
        return false;
    if (reuse)
        return true;
    stg_json_field(rec, "job", made_by, sizeof made_by);
    return strcmp(made_by, job) == 0;
}

int stg_cache_claim(struct stg_cache *c, const char *copy, const char *job, bool reuse,
                    bool force, enum stg_claim *claim)
{
    int rc = lock_try(c, copy, &c->lockfd);
    if (rc)
        return rc;
    if (c->lockfd < 0) {
        *claim = STG_CLAIM_BUSY;
        return STG_OK;
    }
    if (!force && usable(c, copy, job, reuse)) {
        /* Pinned under the lock: a clean that takes the lock next sees it. */
        rc = stg_cache_pin(c, copy, job);
        stg_cache_release(c);
        *claim = STG_CLAIM_WARM;
        return rc;
    }
    *claim = STG_CLAIM_OWNER;
    return STG_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct stg_copy_info *)a)->copy, ((const struct stg_copy_info *)b)->copy);
}

int stg_cache_list(const struct stg_cache *c, bool tidy, struct stg_copy_info **out,
                   size_t *nout)
{
    *out = NULL;
    *nout = 0;
    int fd = openat(c->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return stg_err_set(STG_EFAIL, "cannot read '%s': %s", c->dir, strerror(e));
    }
    struct stg_copy_info *v = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *copy = de->d_name;
        char rec[4096];
        long long used;
        if (copy[0] == '.' || strlen(copy) >= sizeof v->copy ||
            !check_copy(c, copy, false, rec, sizeof rec, &used))
            continue;
        v = stg_xrealloc(v, (n + 1) * sizeof *v);
        struct stg_copy_info *x = &v[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->copy, sizeof x->copy, "%s", copy);
        stg_json_field(rec, "name", x->name, sizeof x->name);
        stg_json_field(rec, "key", x->key, sizeof x->key);
        stg_json_field(rec, "created", x->created, sizeof x->created);
        x->bytes = stg_json_u64(rec, "bytes");
        x->files = stg_json_u64(rec, "files");
        x->used = used;
        pins_of(c, copy, NULL, tidy, x->pins, sizeof x->pins);
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, by_name);
    *out = v;
    *nout = n;
    return STG_OK;
}

int stg_cache_remove(struct stg_cache *c, const char *copy, bool dry_run, const char *job,
                     bool *kept, char *why, size_t whylen)
{
    int lockfd;
    *kept = false;
    int rc = lock_try(c, copy, &lockfd);
    if (rc)
        return rc;
    if (lockfd < 0) {
        snprintf(why, whylen, "a run is staging it");
        *kept = true;
        return STG_OK;
    }
    /* A dry run leaves out its own job's pins: the real clean drops them
     * first. */
    char pins[256];
    pins_of(c, copy, dry_run ? job : NULL, !dry_run, pins, sizeof pins);
    if (pins[0] || dry_run) {
        snprintf(why, whylen, "pinned by job %s", pins);
        close(lockfd);
        *kept = pins[0] != '\0';
        return STG_OK;
    }
    /* Gone from its name at once; the tree goes after. */
    char *del = stg_xasprintf(".del-%s-%ld", copy, (long)getpid());
    if (renameat(c->fd, copy, c->fd, del) < 0) {
        rc = stg_err_set(STG_EFAIL, "cannot remove '%s/%s': %s", c->dir, copy, strerror(errno));
    } else {
        if (stg_rm_tree_at(c->fd, del) < 0)
            stg_log_warn("cannot remove '%s/%s': %s", c->dir, del, strerror(errno));
        char *lock = stg_xasprintf(".lock-%s", copy);
        unlinkat(c->fd, lock, 0);   /* while held: see lock_try() */
        free(lock);
    }
    free(del);
    close(lockfd);
    return rc;
}

static int by_use(const void *a, const void *b)
{
    long long x = ((const struct stg_copy_info *)a)->used;
    long long y = ((const struct stg_copy_info *)b)->used;
    return x < y ? -1 : x > y;
}

int stg_cache_budget_trylock(struct stg_cache *c, bool *got)
{
    *got = false;
    if (c->budgetfd < 0) {
        c->budgetfd = openat(c->fd, ".budget-lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                             0600);
        if (c->budgetfd < 0)
            return stg_err_set(STG_EFAIL, "cannot open '%s/.budget-lock': %s", c->dir,
                               strerror(errno));
    }
    if (flock(c->budgetfd, LOCK_EX | LOCK_NB) == 0)
        *got = true;
    else if (errno != EWOULDBLOCK)
        return stg_err_set(STG_EFAIL, "cannot lock '%s/.budget-lock': %s", c->dir,
                           strerror(errno));
    return STG_OK;
}

void stg_cache_budget_unlock(struct stg_cache *c)
{
    if (c->budgetfd >= 0)
        close(c->budgetfd);     /* drops the flock */
    c->budgetfd = -1;
}

/* The room that copies in the making take: every ".tmp-...-<bytes>" that a
 * live run holds locked.  OUT names: them, for messages. */
static uint64_t reserved(const struct stg_cache *c, char *names, size_t len)
{
    int fd = openat(c->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    uint64_t total = 0;
    size_t off = 0;
    names[0] = '\0';
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name, *dash = strrchr(n, '-');
        if (strncmp(n, ".tmp-", 5) != 0 || !dash)
            continue;
        int t = openat(c->fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (t < 0)
            continue;
        if (flock(t, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
            uint64_t b = strtoull(dash + 1, NULL, 10);
            char sz[32];
            total += b;
            int w = snprintf(names + off, len - off, "%s%s (%s, being made by another run)",
                             off ? ", " : "", n + 5, stg_format_size(b, sz, sizeof sz));
            if (w > 0 && (size_t)w < len - off)
                off += (size_t)w;
        }
        close(t);   /* a shared lock taken here goes with it */
    }
    closedir(d);
    return total;
}

int stg_cache_evict(struct stg_cache *c, const char *keep, uint64_t need, uint64_t budget,
                    const char *from)
{
    char a[32], b[32], h[32];
    if (need > budget)
        return stg_err_set(STG_EFAIL, "'%s' takes %s, more than the cache budget of %s (%s)",
                           keep, stg_format_size(need, a, sizeof a),
                           stg_format_size(budget, b, sizeof b), from);
    struct stg_copy_info *v;
    size_t n;
    int rc = stg_cache_list(c, true, &v, &n);
    if (rc)
        return rc;
    char held[STG_MSG_MAX] = "";
    uint64_t total = reserved(c, held, sizeof held);
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].copy, keep) != 0)
            total += v[i].bytes;
    qsort(v, n, sizeof *v, by_use);
    size_t off = strlen(held);
    for (size_t i = 0; i < n && total + need > budget; i++) {
        if (strcmp(v[i].copy, keep) == 0)
            continue;
        char why[300];
        bool kept;
        int r = stg_cache_remove(c, v[i].copy, false, NULL, &kept, why, sizeof why);
        if (r == STG_OK && !kept) {
            total -= v[i].bytes;
            stg_log_info("evicted '%s/%s' (%s, last used %lld s ago) to stay within the cache "
                         "budget of %s", c->dir, v[i].copy,
                         stg_format_size(v[i].bytes, a, sizeof a),
                         (long long)time(NULL) - v[i].used, stg_format_size(budget, b, sizeof b));
        } else if (r == STG_OK) {
            int w = snprintf(held + off, sizeof held - off, "%s%s (%s)", off ? ", " : "",
                             v[i].copy, why);
            if (w > 0 && (size_t)w < sizeof held - off)
                off += (size_t)w;
        } else {
            rc = r;
            break;
        }
    }
    free(v);
    if (rc == STG_OK && total + need > budget)
        rc = stg_err_set(STG_EFAIL, "the cache budget of %s (%s) cannot take '%s' (%s): %s is "
                         "held by copies that stay: %s", stg_format_size(budget, b, sizeof b),
                         from, keep, stg_format_size(need, a, sizeof a),
                         stg_format_size(total, h, sizeof h), held[0] ? held : "none");
    return rc;
}
