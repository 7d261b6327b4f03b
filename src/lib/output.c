/* SPDX-License-Identifier: MIT */
/*
 * output: atomic writes relative to a checked directory.
 */
#include "config.h"

#include "output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "trust.h"
#include "util.h"

/* Record why o cannot be written, prefixed with the option that named it. */
static int fail(const char *what, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(const char *what, int status, const char *fmt, ...)
{
    char msg[STG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return what ? stg_err_set(status, "%s: %s", what, msg) : stg_err_set(status, "%s", msg);
}

/* The status of a failure to open: a path from the command line that
 * cannot be written is the user's to fix. */
static int open_status(const struct stg_output *o)
{
    return o->what ? STG_EUSAGE : STG_EFAIL;
}

static void reset(struct stg_output *o)
{
    if (o->fd >= 0)
        close(o->fd);
    if (o->dirfd >= 0)
        close(o->dirfd);
    free(o->path);
    free(o->name);
    free(o->tmp);
    memset(o, 0, sizeof *o);
    o->fd = o->dirfd = -1;
}

/* A device or a FIFO: written in place, as a redirection would; never
 * replaced by a file (root would otherwise replace /dev/null). */
static int open_in_place(struct stg_output *o, const struct stat *st)
{
    if (S_ISCHR(st->st_mode)) {
        o->fd = open(o->path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    } else {
        /* without waiting: a FIFO that nobody reads would hang the run */
        o->fd = open(o->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (o->fd < 0 && errno == ENXIO) {
            int rc = fail(o->what, open_status(o), "cannot write '%s': a FIFO that nobody reads",
                          o->path);
            reset(o);
            return rc;
        }
        if (o->fd >= 0)
            fcntl(o->fd, F_SETFL, fcntl(o->fd, F_GETFL) & ~O_NONBLOCK);
    }
    if (o->fd < 0) {
        int rc = fail(o->what, open_status(o), "cannot write '%s': %s", o->path,
                      strerror(errno));
        reset(o);
        return rc;
    }
    return STG_OK;
}

int stg_output_open(struct stg_output *o, const char *path, mode_t mode, const char *what)
{
    memset(o, 0, sizeof *o);
    o->fd = o->dirfd = -1;
    o->path = stg_xstrdup(path);
    o->what = what;
    int rc;
    /* a link to a file: that file is written (in its own directory) */
    struct stat st;
    bool exists = stat(path, &st) == 0;
    char *target = exists && S_ISREG(st.st_mode) ? realpath(path, NULL) : NULL;
    const char *p = target ? target : path;
    const char *slash = strrchr(p, '/');
    if (!slash || !slash[1]) {
        rc = fail(what, open_status(o), "cannot write '%s': not a file name", path);
        free(target);
        reset(o);
        return rc;
    }
    if (exists && S_ISDIR(st.st_mode)) {
        rc = fail(what, open_status(o), "cannot write '%s': it is a directory", path);
        free(target);
        reset(o);
        return rc;
    }
    if (exists && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        rc = fail(what, open_status(o), "cannot write '%s': not a regular file, a character "
                  "device or a FIFO", path);
        free(target);
        reset(o);
        return rc;
    }
    o->name = stg_xstrdup(slash + 1);
    char *dir = slash == p ? stg_xstrdup("/") : stg_xasprintf("%.*s", (int)(slash - p), p);
    free(target);
    char *real = realpath(dir, NULL);
    if (!real) {
        rc = fail(what, open_status(o), "cannot write '%s': directory '%s': %s", path, dir,
                  strerror(errno));
        free(dir);
        reset(o);
        return rc;
    }
    free(dir);
    /* As root, the path as given answers to root alone: a link that another
     * user planted (to /etc/shadow, say) must not choose what root
     * replaces.  One walk: its directories, each link on the way and the
     * directories it leads to (so the real directory's too). */
    if (geteuid() == 0) {
        struct stg_trust t;
        stg_trust_init(&t);
        struct stat lst;
        char *given = stg_xstrdup(path);
        if (lstat(path, &lst) < 0)
            *strrchr(given, '/') = '\0';   /* not there: its directory */
        stg_trust_check(*given ? given : "/", 0, 0, &t);
        free(given);
        if (!t.ok) {
            rc = fail(what, open_status(o), "refusing to write '%s' as root: %s; another "
                      "user could put what root writes where they choose", path, t.why);
            free(real);
            reset(o);
            return rc;
        }
    }
    if (exists && !S_ISREG(st.st_mode)) {
        free(real);
        return open_in_place(o, &st);
    }
    /* the directory just resolved and checked, or an error: never another */
    o->dirfd = stg_trust_open(real, O_RDONLY | O_DIRECTORY);
    free(real);
    if (o->dirfd < 0) {
        rc = fail(what, open_status(o), "cannot write '%s': its directory changed: %s", path,
                  strerror(errno));
        reset(o);
        return rc;
    }
    if (mode == 0) {
        mode_t um = umask(0);
        umask(um);
        mode = 0666 & ~um;
    }
    o->mode = mode;
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)(uintptr_t)o;
    for (int tries = 0; o->fd < 0 && tries < 100; tries++) {
        char suffix[7];
        for (int i = 0; i < 6; i++)
            suffix[i] = letters[rand_r(&seed) % (sizeof letters - 1)];
        suffix[6] = '\0';
        free(o->tmp);
        o->tmp = stg_xasprintf(".%s.tmp.%s", o->name, suffix);
        o->fd = openat(o->dirfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600);
        if (o->fd < 0 && errno != EEXIST)
            break;
    }
    if (o->fd < 0) {
        rc = fail(what, open_status(o), "cannot create '%s' beside '%s': %s", o->tmp, path,
                  strerror(errno));
        reset(o);
        return rc;
    }
    return STG_OK;
}

void stg_output_abort(struct stg_output *o)
{
    if (o->tmp && o->dirfd >= 0)
        unlinkat(o->dirfd, o->tmp, 0);
    reset(o);
}

int stg_output_commit(struct stg_output *o)
{
    if (!o->tmp) {      /* in place: a device or a FIFO */
        int fd = o->fd;
        o->fd = -1;
        if (close(fd) < 0) {
            int rc = fail(o->what, STG_EFAIL, "cannot write '%s': %s", o->path,
                          strerror(errno));
            reset(o);
            return rc;
        }
        reset(o);
        return STG_OK;
    }
    const char *step = "chmod";
    if (fchmod(o->fd, o->mode) < 0)
        goto fail;
    step = "fsync";
    if (fsync(o->fd) < 0)
        goto fail;
    step = "close";
    int fd = o->fd;
    o->fd = -1;
    if (close(fd) < 0)
        goto fail;
    step = "rename";
    if (renameat(o->dirfd, o->tmp, o->dirfd, o->name) < 0)
        goto fail;
    fsync(o->dirfd);    /* the new name survives a crash of the node */
    free(o->tmp);
    o->tmp = NULL;
    reset(o);
    return STG_OK;
fail:;
    int rc = fail(o->what, STG_EFAIL, "cannot write '%s' (%s): %s", o->path, step,
                  strerror(errno));
    stg_output_abort(o);
    return rc;
}

int stg_output_put(struct stg_output *o, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(o->fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int rc = fail(o->what, STG_EFAIL, "cannot write '%s': %s", o->path,
                          strerror(errno));
            stg_output_abort(o);
            return rc;
        }
        off += (size_t)w;
    }
    return stg_output_commit(o);
}
