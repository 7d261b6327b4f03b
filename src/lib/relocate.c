/* SPDX-License-Identifier: MIT */
/*
 * relocate: point a staged environment's absolute paths at the copy.
 *
 * A path is rewritten only when it is absolute, clean (no ".", ".." or
 * empty parts) and the copy holds it, so what the copy lacks still leads
 * where it led before.  Rewriting happens in the copy's private temporary
 * directory, before its record is written and it is renamed into place:
 * a copy is published relocated or not at all.
 */
#include "config.h"

#include "relocate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

enum stg_reloc_kind stg_relocate_kind(const char *apath, int64_t size, mode_t mode)
{
    if (size <= 0 || size > STG_RELOC_MAX)
        return STG_RELOC_NONE;
    const char *slash = strrchr(apath, '/');
    const char *base = slash ? slash + 1 : apath;
    size_t n = strlen(base);
    if ((n > 4 && strcmp(base + n - 4, ".pth") == 0) ||
        (n > 9 && strcmp(base + n - 9, ".egg-link") == 0))
        return STG_RELOC_PTH;
    if (strcmp(base, "pyvenv.cfg") == 0)
        return STG_RELOC_CFG;
    /* a script in a bin/ directory: bin/NAME or .../bin/NAME */
    if ((mode & 0111) && slash && slash - apath >= 3 && memcmp(slash - 3, "bin", 3) == 0 &&
        (slash - apath == 3 || slash[-4] == '/'))
        return STG_RELOC_SCRIPT;
    return STG_RELOC_NONE;
}

/* The new text, and whether it differs. */
struct out {
    struct stg_buf b;
    bool changed;
};

static void put(struct out *o, const char *s, size_t n)
{
    stg_buf_put(&o->b, s, n);
}

/* The path s[0..n) with root in front if the copy holds it, else as it is. */
static void put_path(struct out *o, const char *s, size_t n, const char *root,
                     stg_reloc_exists exists, void *ctx)
{
    char *p = stg_xstrndup(s, n);
    if (p && p[0] == '/' && strcmp(p, "/") != 0 && stg_path_is_clean_absolute(p) &&
        exists(p, ctx)) {
        put(o, root, strlen(root));
        o->changed = true;
    }
    put(o, s, n);
    free(p);
}

/* An import line of a .pth file is code: only its quoted strings are
 * paths (Debian's petsc4py.pth: petsc_dir = '/usr/lib/petsc'). */
static void pth_import(struct out *o, const char *s, size_t n, const char *root,
                       stg_reloc_exists exists, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] != '\'' && s[i] != '"') {
            put(o, s + i, 1);
            i++;
            continue;
        }
        char q = s[i];
        size_t j = i + 1;
        while (j < n && s[j] != q && s[j] != '\\')
            j++;
        if (j >= n || s[j] != q) {
            put(o, s + i, n - i);   /* escapes or no end: left alone */
            return;
        }
        put(o, s + i, 1);
        put_path(o, s + i + 1, j - i - 1, root, exists, ctx);
        put(o, s + j, 1);
        i = j + 1;
    }
}

/* key = value: each white-space separated word of the value. */
static void cfg_line(struct out *o, const char *s, size_t n, const char *root,
                     stg_reloc_exists exists, void *ctx)
{
    const char *eq = memchr(s, '=', n);
    if (!eq) {
        put(o, s, n);
        return;
    }
    size_t i = (size_t)(eq - s) + 1;
    put(o, s, i);
    while (i < n) {
        size_t j = i;
        while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
            j++;
        put(o, s + i, j - i);
        i = j;
        while (j < n && s[j] != ' ' && s[j] != '\t' && s[j] != '\r')
            j++;
        put_path(o, s + i, j - i, root, exists, ctx);
        i = j;
    }
}

char *stg_relocate_text(enum stg_reloc_kind kind, const char *text, size_t len,
                        const char *root, stg_reloc_exists exists, void *ctx, size_t *outlen,
                        const char **why)
{
    struct out o = {0};
    put(&o, "", 0);
    if (why)
        *why = NULL;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - text) - i : len - i;  /* the line, without '\n' */
        const char *s = text + i;
        if (kind == STG_RELOC_SCRIPT) {
            /* "#!" [blanks] interpreter [args]: only the first line */
            if (n < 3 || s[0] != '#' || s[1] != '!')
                break;
            size_t a = 2;
            while (a < n && (s[a] == ' ' || s[a] == '\t'))
                a++;
            size_t b = a;
            while (b < n && s[b] != ' ' && s[b] != '\t' && s[b] != '\r')
                b++;
            put(&o, s, a);
            put_path(&o, s + a, b - a, root, exists, ctx);
            put(&o, s + b, len - i - b);
            if (o.changed && o.b.n - (len - i - n) > STG_RELOC_SHEBANG_MAX) {
                o.changed = false;
                if (why)
                    *why = "the #! line would be longer than the kernel reads (255 bytes)";
            }
            break;
        }
        size_t r = n;   /* .pth: site.py strips trailing white space */
        while (r > 0 && (s[r - 1] == ' ' || s[r - 1] == '\t' || s[r - 1] == '\r'))
            r--;
        if (kind == STG_RELOC_CFG) {
            cfg_line(&o, s, n, root, exists, ctx);
        } else if (n >= 7 && strncmp(s, "import", 6) == 0 && (s[6] == ' ' || s[6] == '\t')) {
            pth_import(&o, s, n, root, exists, ctx);
        } else if (r > 0 && s[0] == '/') {
            put_path(&o, s, r, root, exists, ctx);
            put(&o, s + r, n - r);
        } else {
            put(&o, s, n);
        }
        if (nl)
            put(&o, "\n", 1);
        i += n + (nl != NULL);
    }
    if (!o.changed) {
        free(o.b.s);
        return NULL;
    }
    *outlen = o.b.n;
    return o.b.s;
}

/* The copy being made: dir + abs, not following a final link. */
static bool in_copy(const char *abs, void *ctx)
{
    char *p = stg_xasprintf("%s%s", (const char *)ctx, abs);
    struct stat st;
    bool ok = fstatat(AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
    free(p);
    return ok;
}

int stg_relocate_file(const char *dir, const char *apath, const char *root, bool *changed)
{
    if (changed)
        *changed = false;
    char *path = stg_xasprintf("%s/%s", dir, apath);
    char *tmp = NULL, *text = NULL, *out = NULL;
    int rc = STG_OK, fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), tfd = -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = stg_err_set(STG_EFAIL, "relocate '/%s': %s", apath, strerror(errno));
        goto out;
    }
    enum stg_reloc_kind kind = stg_relocate_kind(apath, st.st_size, st.st_mode);
    if (!S_ISREG(st.st_mode) || kind == STG_RELOC_NONE)
        goto out;
    size_t len = (size_t)st.st_size, got = 0;
    text = stg_xmalloc(len + 1);
    while (got < len) {
        ssize_t r = read(fd, text + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = stg_err_set(STG_EFAIL, "relocate '/%s': %s", apath,
                             r < 0 ? strerror(errno) : "shorter than it was written");
            goto out;
        }
        got += (size_t)r;
    }
    size_t olen = 0;
    const char *why = NULL;
    out = stg_relocate_text(kind, text, len, root, in_copy, (void *)dir, &olen, &why);
    if (why)
        stg_log_warn("'%s/%s': %s: it still names the original", root, apath, why);
    if (!out)
        goto out;
    const char *slash = strrchr(path, '/');
    tmp = stg_xasprintf("%.*s/.stage-py-relocate.XXXXXX", (int)(slash - path), path);
    tfd = mkstemp(tmp);
    if (tfd < 0) {
        rc = stg_err_set(STG_EFAIL, "relocate '/%s': %s", apath, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    size_t done = 0;
    while (done < olen) {
        ssize_t w = write(tfd, out + done, olen - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = stg_err_set(STG_EFAIL, "relocate '/%s': %s", apath, strerror(errno));
            goto out;
        }
        done += (size_t)w;
    }
    if (fchmod(tfd, st.st_mode & 07777) < 0 || futimens(tfd, times) < 0 ||
        rename(tmp, path) < 0) {
        rc = stg_err_set(STG_EFAIL, "relocate '/%s': %s", apath, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    if (changed)
        *changed = true;
out:
    if (tmp)
        unlink(tmp);
    if (tfd >= 0)
        close(tfd);
    if (fd >= 0)
        close(fd);
    free(tmp);
    free(text);
    free(out);
    free(path);
    return rc;
}
