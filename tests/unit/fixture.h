/* SPDX-License-Identifier: MIT */
/*
 * fixture: what several unit tests do alike, written once: a private
 * temporary directory and the files and directories made in it, a file
 * read back or compared with another, stdout or stderr captured, a child
 * process that runs as the tests' ordinary user and hands a result back,
 * an alarm that bails out instead of hanging, and a manifest written,
 * loaded (or refused) and walked as a staging does.
 */
#ifndef STG_FIXTURE_H
#define STG_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "manifest.h"
#include "tap.h"
#include "util.h"
#include "walk.h"

/* The ordinary user of the tests that run as root (.ci/run makes it). */
#define FX_USER "stagepy-test"

/* A new private directory ${TMPDIR:-/tmp}/NAME-XXXXXX, in OUT dir (len
 * bytes).  Returns dir, or NULL. */
static inline char *fx_tmpdir(char *dir, size_t len, const char *name)
{
    const char *t = getenv("TMPDIR");
    int n = snprintf(dir, len, "%s/%s-XXXXXX", t && *t ? t : "/tmp", name);
    if (n < 0 || (size_t)n >= len) {
        dir[0] = '\0';
        return NULL;
    }
    return mkdtemp(dir);
}

/* dir/rel, malloc'd. */
static inline char *fx_path(const char *dir, const char *rel)
{
    return stg_xasprintf("%s/%s", dir, rel);
}

/* mkdir, then chmod: mode whatever the umask. */
static inline void fx_mkdir(const char *path, mode_t mode)
{
    mkdir(path, mode);
    chmod(path, mode);
}

/* Write len bytes of data to path (created or truncated), then give it
 * mode (0: the mode it was created with).  Returns true if all of it was
 * written. */
static inline bool fx_write(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "w");
    bool whole = false;
    if (f) {
        whole = fwrite(data, 1, len, f) == len;
        whole = fclose(f) == 0 && whole;
    }
    if (mode)
        chmod(path, mode);
    return whole;
}

static inline bool fx_write_text(const char *path, const char *text, mode_t mode)
{
    return fx_write(path, text, strlen(text), mode);
}

/* The whole file at path, with a NUL after it (malloc'd), or NULL.  OUT
 * len (may be NULL): its length. */
static inline char *fx_read(const char *path, size_t *len)
{
    size_t n = 0, cap = 1 << 16, k;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = stg_xmalloc(cap + 1);
    while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap)
            buf = stg_xrealloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Can both be read, and do they hold the same bytes? */
static inline bool fx_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    bool eq = fa && fb;
    while (eq) {
        int x = fgetc(fa), y = fgetc(fb);
        eq = x == y;
        if (x == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return eq;
}

/* The names in the directory dir ("." and ".." aside) that have having
 * in them (NULL: every name); -1 if dir cannot be read. */
static inline int fx_entries(const char *dir, const char *having)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        k += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
             (!having || strstr(e->d_name, having));
    closedir(d);
    return k;
}

/* --- what a test prints, captured ---------------------------------------- */

struct fx_capture {
    int target;     /* STDOUT_FILENO or STDERR_FILENO */
    int file;       /* where it goes meanwhile: a file already unlinked */
    int saved;      /* where it went before */
};

/* From now on, what goes to target (STDOUT_FILENO, STDERR_FILENO) goes to
 * a file in dir instead, until fx_captured(). */
static inline void fx_capture(struct fx_capture *c, int target, const char *dir)
{
    fflush(stdout);
    fflush(stderr);
    char *p = stg_xasprintf("%s/capture-XXXXXX", dir);
    c->target = target;
    c->file = mkstemp(p);
    if (c->file >= 0)
        unlink(p);
    free(p);
    c->saved = dup(target);
    if (c->file >= 0)
        dup2(c->file, target);
}

/* target back where it was; OUT text (len bytes): what it got meanwhile. */
static inline void fx_captured(struct fx_capture *c, char *text, size_t len)
{
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved, c->target);
    close(c->saved);
    ssize_t n = c->file >= 0 ? pread(c->file, text, len - 1, 0) : -1;
    text[n > 0 ? n : 0] = '\0';
    if (c->file >= 0)
        close(c->file);
}

/* --- another user ----------------------------------------------------------- */

/* FX_USER, when this is root and the user exists; else NULL. */
static inline struct passwd *fx_user(void)
{
    return geteuid() == 0 ? getpwnam(FX_USER) : NULL;
}

/* In a child process as pw (no supplementary groups, its gid, its uid),
 * fn(arg, out) fills out (size bytes, zeroed first), which comes back to
 * OUT r.  Returns true if the child became pw and handed out back whole. */
static inline bool fx_as_user(const struct passwd *pw, void (*fn)(void *arg, void *out),
                              void *arg, void *r, size_t size)
{
    int fds[2];
    if (pipe(fds) < 0)
        return false;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        void *out = calloc(1, size);
        if (!out || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(3);
        fn(arg, out);
        if (write(fds[1], out, size) != (ssize_t)size)
            _exit(4);
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = pid > 0 ? read(fds[0], r, size) : -1;
    close(fds[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return n == (ssize_t)size && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* --- a hang ------------------------------------------------------------------ */

static const char *fx_alarm_text __attribute__((unused));

static inline void fx_on_alarm(int sig)
{
    (void)sig;
    if (write(STDOUT_FILENO, fx_alarm_text, strlen(fx_alarm_text)) < 0)
        _exit(2);
    _exit(1);
}

/* On SIGALRM (alarm()), print text ("Bail out! t-x: what hung\n") and
 * exit with status 1: a hang fails the test rather than stalls make. */
static inline void fx_bail_on_alarm(const char *text)
{
    fx_alarm_text = text;
    signal(SIGALRM, fx_on_alarm);
}

/* --- a manifest, loaded and walked --------------------------------------- */

/* The manifest at path (mode 0644): [stage] name = name, then sections
 * (its trees). */
static inline void fx_manifest(const char *path, const char *name, const char *sections)
{
    char *text = stg_xasprintf("[stage]\nname = %s\n%s", name, sections);
    fx_write_text(path, text, 0644);
    free(text);
}

/* How a test loads a manifest: stg_manifest_load(), stg_pyenv_load(). */
typedef int (*fx_loader)(const char *path, unsigned flags, struct stg_manifest **m);

/* Write text as the manifest at path and load it with load and
 * STG_MANIFEST_SOURCES.  OUT m; err (len bytes): the error recorded, set
 * aside.  Returns the status. */
static inline int fx_manifest_load(const char *path, const char *text, fx_loader load,
                                   struct stg_manifest **m, char *err, size_t len)
{
    fx_write_text(path, text, 0);
    int rc = load(path, STG_MANIFEST_SOURCES, m);
    stg_err_take(err, len);
    return rc;
}

/* Two test points: the manifest text at path is refused by load with
 * status 2 and no manifest, and the message has "PATH:want".  OUT err. */
static inline void fx_manifest_refused(const char *path, const char *text, fx_loader load,
                                       const char *want, const char *desc, char *err,
                                       size_t len)
{
    struct stg_manifest *m = NULL;
    int rc = fx_manifest_load(path, text, load, &m, err, len);
    char *full = stg_xasprintf("%s:%s", path, want);
    ok(rc == STG_EUSAGE && m == NULL, "%s: refused with status 2", desc);
    like(err, full, "%s: message", desc);
    free(full);
    stg_manifest_free(&m);
}

/* Load the manifest at path as a staging does (the site file, then the
 * manifest: stg_conf_load()) and walk its trees.  OUT c (free it with
 * stg_conf_free(), also after a failure), s (NULL on failure).  Returns
 * the status, its error recorded. */
static inline int fx_load_walk(struct stg_conf *c, const char *path, struct stg_walk **s)
{
    *s = NULL;
    int rc = stg_conf_load(c, path, STG_MANIFEST_SOURCES);
    if (rc == STG_OK)
        rc = stg_walk_run(c->m, s);
    return rc;
}

#endif
