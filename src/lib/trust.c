/* SPDX-License-Identifier: MIT */
/*
 * trust: the owner-and-mode walk of a path, the ACL rule, and opens that
 * follow no symbolic link anywhere on the way.
 */
#include "config.h"

#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LINKS_MAX 40        /* the kernel's own bound (ELOOP) */

void stg_trust_init(struct stg_trust *t)
{
    memset(t, 0, sizeof *t);
    t->ok = true;
    t->other = (uid_t)-1;
}

/* "alice (uid 1000)", or "uid 1000" when the name is not known. */
static const char *owner_name(uid_t uid, char *buf, size_t len)
{
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name)
        snprintf(buf, len, "%s (uid %u)", pw->pw_name, (unsigned)uid);
    else
        snprintf(buf, len, "uid %u", (unsigned)uid);
    return buf;
}

/* A finding; the first one is what t->why says, except that a path
 * others can write outranks one that another user owns (it is what a
 * refusal must name: the owner may be the user whom the command runs as). */
static void finding(struct stg_trust *t, bool writable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finding(struct stg_trust *t, bool writable, const char *fmt, ...)
{
    if (t->ok || (writable && !t->why_writable)) {
        t->why_writable = writable;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->why, sizeof t->why, fmt, ap);
        va_end(ap);
    }
    t->ok = false;
}

/* The walk could not be done: that is what the caller hears first. */
static void failed(struct stg_trust *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failed(struct stg_trust *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
    t->ok = false;
    t->others = true;
    t->why_writable = true;     /* nothing replaces it */
}

/* POSIX ACL xattr layout (linux/posix_acl_xattr.h): a 4-byte version,
 * then entries of tag (2 bytes), perm (2), id (4), little-endian. */
#define ACL_VERSION 2
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP 0x08
#define ACL_MASK 0x10
#define ACL_W 0x02

static uint32_t le(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

bool stg_trust_acl_writer(const void *buf, size_t len, uid_t caller, char *who, size_t wlen)
{
    const unsigned char *b = buf;
    if (len < 4 || le(b, 4) != ACL_VERSION)
        return false;
    bool mask_w = true;     /* no mask entry: named entries cannot exist either */
    for (size_t off = 4; off + 8 <= len; off += 8)
        if (le(b + off, 2) == ACL_MASK)
            mask_w = le(b + off + 2, 2) & ACL_W;
    if (!mask_w)
        return false;
    for (size_t off = 4; off + 8 <= len; off += 8) {
        uint32_t tag = le(b + off, 2), perm = le(b + off + 2, 2), id = le(b + off + 4, 4);
        if (!(perm & ACL_W))
            continue;
        if (tag == ACL_USER && id != 0 && id != (uint32_t)caller) {
            snprintf(who, wlen, "user %u", (unsigned)id);
            return true;
        }
        if (tag == ACL_GROUP || tag == ACL_GROUP_OBJ) {
            if (tag == ACL_GROUP)
                snprintf(who, wlen, "group %u", (unsigned)id);
            else
                snprintf(who, wlen, "its group");
            return true;
        }
    }
    return false;
}

/* Check one object of the walk.  file: its own write bits count. */
static void check_one(struct stg_trust *t, const char *path, const struct stat *st, uid_t caller,
                      bool file)
{
    char who[96];
    unsigned mode = (unsigned)(st->st_mode & 07777);
    if (st->st_uid != 0 && st->st_uid != caller) {
        finding(t, false, "'%s' (mode %04o) is owned by %s", path, mode,
                owner_name(st->st_uid, who, sizeof who));
        if (t->other == (uid_t)-1)
            t->other = st->st_uid;
        else if (t->other != st->st_uid)
            t->others = true;
    }
    if (S_ISLNK(st->st_mode))
        return;     /* a link's own mode means nothing */
    bool sticky = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX);
    if (sticky || (!file && !S_ISDIR(st->st_mode)))
        return;
    /* With an ACL, the group bits of the mode are its mask: the entries say
     * who may write. */
    unsigned char acl[1024];
    ssize_t n = lgetxattr(path, "system.posix_acl_access", acl, sizeof acl);
    char writer[64];
    if (st->st_mode & S_IWOTH) {
        finding(t, true, "'%s' (owner %s, mode %04o) is writable by others", path,
                owner_name(st->st_uid, who, sizeof who), mode);
        t->others = true;
    } else if (n > 0 && stg_trust_acl_writer(acl, (size_t)n, caller, writer, sizeof writer)) {
        finding(t, true, "'%s' (owner %s, mode %04o) is writable by %s%s", path,
                owner_name(st->st_uid, who, sizeof who), mode, writer,
                strcmp(writer, "its group") ? " through an ACL entry" : "");
        t->others = true;
    } else if (n <= 0 && (st->st_mode & S_IWGRP)) {
        finding(t, true, "'%s' (owner %s, mode %04o) is writable by its group", path,
                owner_name(st->st_uid, who, sizeof who), mode);
        t->others = true;
    }
}

int stg_trust_check(const char *path, uid_t caller, unsigned flags, struct stg_trust *t)
{
    /* todo: what is left to walk; done: the real path walked so far ("" is "/") */
    char *todo;
    if (path[0] == '/') {
        todo = stg_xstrdup(path);
    } else {
        char *cwd = getcwd(NULL, 0);
        if (!cwd) {
            failed(t, "cannot find the current directory: %s", strerror(errno));
            return -1;
        }
        todo = stg_xasprintf("%s/%s", cwd, path);
        free(cwd);
    }
    char done[PATH_MAX] = "";
    struct stat st;
    int rc = 0, links = 0;
    if (lstat("/", &st) == 0)
        check_one(t, "/", &st, caller, false);
    char *rest = todo;
    while (rc == 0) {
        while (*rest == '/')
            rest++;
        if (!*rest)
            break;
        size_t n = strcspn(rest, "/");
        bool last = rest[n] == '\0' || rest[n + strspn(rest + n, "/")] == '\0';
        if ((n == 1 && rest[0] == '.') || (n == 2 && rest[0] == '.' && rest[1] == '.')) {
            if (n == 2) {
                char *slash = strrchr(done, '/');
                if (slash)
                    *slash = '\0';
            }
            rest += n;
            continue;
        }
        size_t dl = strlen(done);
        if (dl + 1 + n >= sizeof done) {
            failed(t, "'%s': %s", path, strerror(ENAMETOOLONG));
            rc = -1;
            break;
        }
        char *next = done + dl;
        next[0] = '/';
        memcpy(next + 1, rest, n);
        next[n + 1] = '\0';
        rest += n;
        if (lstat(done, &st) < 0) {
            failed(t, "cannot look up '%s': %s", done, strerror(errno));
            rc = -1;
            break;
        }
        check_one(t, done, &st, caller, last && (flags & STG_TRUST_FILE));
        t->dev = st.st_dev;
        t->ino = st.st_ino;
        if (!S_ISLNK(st.st_mode))
            continue;
        char target[PATH_MAX];
        ssize_t tl = readlink(done, target, sizeof target - 1);
        if (tl < 0 || ++links > LINKS_MAX) {
            failed(t, "cannot follow '%s': %s", done, strerror(tl < 0 ? errno : ELOOP));
            rc = -1;
            break;
        }
        target[tl] = '\0';
        /* the link's target, then what was left after it */
        char *more = stg_xasprintf("%s/%s", target, rest);
        free(todo);
        todo = rest = more;
        *next = '\0';           /* back to the link's directory */
        if (target[0] == '/')
            done[0] = '\0';
    }
    free(todo);
    return rc;
}

int stg_trust_openat(int dirfd, const char *path, int flags)
{
    int fd = dirfd;
    const char *p = path;
    if (*p == '/') {
        fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -1;
    }
    for (;;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        const char *after = p + n;
        while (*after == '/')
            after++;
        char comp[NAME_MAX + 1];
        int out;
        if (n == 0) {
            /* the path was "/" (or empty): the directory itself */
            out = openat(fd, ".", (flags & ~O_NOFOLLOW) | O_CLOEXEC);
        } else if (n > NAME_MAX || (n == 2 && p[0] == '.' && p[1] == '.')) {
            errno = n > NAME_MAX ? ENAMETOOLONG : EINVAL;
            out = -1;
        } else {
            memcpy(comp, p, n);
            comp[n] = '\0';
            out = openat(fd, comp, *after ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                                          : flags | O_NOFOLLOW | O_CLOEXEC);
        }
        int e = errno;
        if (fd != dirfd)
            close(fd);
        errno = e;
        if (out < 0 || n == 0 || !*after)
            return out;
        fd = out;
        p = after;
    }
}

int stg_trust_open(const char *path, int flags)
{
    return stg_trust_openat(AT_FDCWD, path, flags);
}

bool stg_trust_reachable(const char *R, char *dir, size_t dlen)
{
    char *p = stg_xstrdup(R);
    bool ok = true;
    for (char *s = p; ok && (s = strchr(s + 1, '/')) != NULL;) {
        *s = '\0';
        struct stat st;
        if (stat(*p ? p : "/", &st) == 0 && !(st.st_mode & S_IXOTH)) {
            ok = false;
            snprintf(dir, dlen, "'%s' (mode %04o)", p, (unsigned)(st.st_mode & 07777));
        }
        *s = '/';
    }
    free(p);
    return ok;
}

bool stg_trust_opened(const char *path, const struct stat *st, struct stg_trust *t)
{
    stg_trust_init(t);
    stg_trust_check(path, geteuid(), STG_TRUST_FILE, t);
    /* what was opened must be what was walked: a swap in between is a change */
    return t->ok && (t->dev != st->st_dev || t->ino != st->st_ino);
}

int stg_trust_open_input(const char *path, const char *what, bool warn)
{
    /* O_NONBLOCK: a FIFO must be refused, not waited on */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        stg_err_set(STG_EUSAGE, "cannot open %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        stg_err_set(STG_EUSAGE, "cannot stat %s '%s': %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        stg_err_set(STG_EUSAGE, "%s '%s' is not a regular file (%s)", what, path,
                    S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                    : "a device or socket");
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct stg_trust t;
    if (stg_trust_opened(path, &st, &t)) {
        stg_err_set(STG_EUSAGE, "%s '%s' changed while it was being read", what, path);
        close(fd);
        return -1;
    }
    if (!t.ok && !warn) {
        stg_err_set(STG_EUSAGE, "refusing %s '%s': %s; someone other than root and you could "
                    "change what it says (see SECURITY in stage-py(1))", what, path, t.why);
        close(fd);
        return -1;
    }
    if (!t.ok)
        stg_log_warn("using %s '%s': %s; someone other than root and you could change what "
                     "it says (see SECURITY in stage-py(1)) (the site file allows it)", what,
                     path, t.why);
    return fd;
}
