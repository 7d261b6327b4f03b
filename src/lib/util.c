/* SPDX-License-Identifier: MIT */
/*
 * util: memory, string lists, sizes, paths, tree removal.
 */
#include "config.h"

#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void (*stg_oom_hook)(void) = NULL;

void stg_oom(void)
{
    fputs("stage-py: out of memory\n", stderr);
    if (stg_oom_hook)
        stg_oom_hook();
    abort();
}

void *stg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        stg_oom();
    return p;
}

void *stg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        stg_oom();
    return p;
}

void *stg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        stg_oom();
    return q;
}

char *stg_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        stg_oom();
    return p;
}

char *stg_xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p)
        stg_oom();
    return p;
}

char *stg_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        stg_oom();
    return p;
}

void stg_strv_push(struct stg_strv *sv, const char *s)
{
    if (sv->n + 1 >= sv->cap) {
        sv->cap = sv->cap ? 2 * sv->cap : 8;
        sv->v = stg_xrealloc(sv->v, sv->cap * sizeof *sv->v);
    }
    sv->v[sv->n++] = stg_xstrdup(s);
    sv->v[sv->n] = NULL;
}

bool stg_strv_has(const struct stg_strv *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], s) == 0)
            return true;
    return false;
}

void stg_strv_split(struct stg_strv *sv, const char *s)
{
    while (*s) {
        while (*s && isspace((unsigned char)*s))
            s++;
        const char *e = s;
        while (*e && !isspace((unsigned char)*e))
            e++;
        if (e > s) {
            char *w = stg_xstrndup(s, (size_t)(e - s));
            stg_strv_push(sv, w);
            free(w);
        }
        s = e;
    }
}

void stg_strv_free(struct stg_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}

static uint64_t fnv(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The slot of the len bytes at s: theirs, or the empty one to put them in. */
static size_t strset_slot(const struct stg_strset *set, const char *s, size_t len)
{
    size_t j = fnv(s, len) & (set->cap - 1);
    while (set->v[j] && !(strncmp(set->v[j], s, len) == 0 && set->v[j][len] == '\0'))
        j = (j + 1) & (set->cap - 1);
    return j;
}

bool stg_strset_add(struct stg_strset *set, const char *s)
{
    if (2 * (set->n + 1) > set->cap) {
        struct stg_strset big = {NULL, set->n, set->cap ? 2 * set->cap : 1024};
        big.v = stg_xcalloc(big.cap, sizeof *big.v);
        for (size_t i = 0; i < set->cap; i++)
            if (set->v[i])
                big.v[strset_slot(&big, set->v[i], strlen(set->v[i]))] = set->v[i];
        free(set->v);
        *set = big;
    }
    size_t j = strset_slot(set, s, strlen(s));
    if (set->v[j])
        return false;
    set->v[j] = s;
    set->n++;
    return true;
}

bool stg_strset_has(const struct stg_strset *set, const char *s, size_t len)
{
    return set->cap && set->v[strset_slot(set, s, len)] != NULL;
}

void stg_strset_free(struct stg_strset *set)
{
    free(set->v);
    set->v = NULL;
    set->n = set->cap = 0;
}

int stg_parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = true;
    else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

const char *const stg_compressions[] = {"none", "gzip", "zstd", "lz4", NULL};

int stg_parse_compress(const char *s, const char **out)
{
    for (int k = 0; stg_compressions[k]; k++)
        if (strcmp(s, stg_compressions[k]) == 0) {
            *out = stg_compressions[k];
            return 0;
        }
    return -1;
}

int stg_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: return -1;
    }
    /* Accept "4M", "4MB" and "4MiB" alike. */
    if (shift && (*end == 'i' || *end == 'I'))
        end++;
    if (shift && (*end == 'b' || *end == 'B'))
        end++;
    if (*end)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int stg_parse_duration(const char *s, double *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || v < 0)
        return -1;
    switch (*end) {
    case '\0': case 's': break;
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    default: return -1;
    }
    if (*end && end[1])
        return -1;
    *out = v;
    return 0;
}

const char *stg_format_size(uint64_t n, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, len, "%.*f %s", v < 10 ? 1 : 0, v, units[u]);
    return buf;
}

void stg_buf_put(struct stg_buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = stg_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

int stg_buf_printf(struct stg_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        if (b->n + (size_t)n + 1 > b->cap) {
            b->cap = (b->n + (size_t)n + 1) * 2;
            b->s = stg_xrealloc(b->s, b->cap);
        }
        vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap2);
        b->n += (size_t)n;
    }
    va_end(ap2);
    return n > 0 ? n : 0;
}

void stg_buf_json_str(struct stg_buf *b, const char *s)
{
    stg_buf_put(b, "\"", 1);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            stg_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            stg_buf_printf(b, "\\u%04x", c);
        else
            stg_buf_put(b, s, 1);
    }
    stg_buf_put(b, "\"", 1);
}

char *stg_json_quote(const char *s)
{
    struct stg_buf b = {0};
    stg_buf_json_str(&b, s);
    return b.s;
}

double stg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *stg_path_absolute(const char *path)
{
    if (!path || !*path)
        return NULL;
    char *joined;
    if (path[0] == '/') {
        joined = stg_xstrdup(path);
    } else {
        char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return NULL;
        joined = stg_xasprintf("%s/%s", cwd, path);
        free(cwd);
    }
    /* Lexical normalisation: drop "." and empty components, fold "..". */
    size_t len = strlen(joined);
    char *out = stg_xmalloc(len + 2);
    size_t o = 0;
    const char *p = joined;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* skip */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(joined);
    return out;
}

bool stg_path_listable(const char *path)
{
    return !strpbrk(path, ":\n");
}

bool stg_path_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    /* a device or a FIFO is written in place, never replaced */
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && S_ISREG(sa.st_mode) &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* OUT: malloc'd: the real path of path's directory, then its last name */
static char *place(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1])
        return NULL;
    char *dir = slash == path ? stg_xstrdup("/") : stg_xstrndup(path, (size_t)(slash - path));
    char *real = realpath(dir, NULL);
    free(dir);
    if (!real)
        return NULL;
    char *p = stg_xasprintf("%s/%s", strcmp(real, "/") == 0 ? "" : real, slash + 1);
    free(real);
    return p;
}

bool stg_path_same_place(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return true;
    char *pa = place(a), *pb = place(b);
    bool same = pa && pb && strcmp(pa, pb) == 0;
    free(pa);
    free(pb);
    return same;
}

char *stg_path_strip_slash(char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    return path;
}

bool stg_path_is_clean_absolute(const char *path)
{
    if (!path || path[0] != '/')
        return false;
    const char *p = path + 1;
    if (!*p)
        return true;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!e)
            return true;
        p = e + 1;
    }
}

int stg_rm_tree_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* A directory staged read-only: make it ours to empty. */
        if (fchmodat(parent, name, 0700, 0) == 0)
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
        fchmod(fd, st.st_mode | 0700);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (stg_rm_tree_at(dirfd(d), de->d_name) < 0)
            rc = -1;
    }
    int saved = errno;
    closedir(d);
    if (rc < 0) {
        errno = saved;
        return -1;
    }
    return unlinkat(parent, name, AT_REMOVEDIR);
}

void stg_json_field(const char *json, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    if (len == 0)
        return;
    out[0] = '\0';
    const char *s = strstr(json, pat);
    if (!s)
        return;
    s += strlen(pat);
    if (*s != '"') {
        size_t n = strcspn(s, ",\n}");
        snprintf(out, len, "%.*s", (int)n, s);
        return;
    }
    /* a string, as stg_buf_json_str() wrote it: \" \\ and \u00XX */
    size_t k = 0;
    for (s++; *s && *s != '"' && k + 1 < len; s++) {
        char c = *s;
        if (c == '\\' && s[1] == 'u' && isxdigit((unsigned char)s[2]) &&
            isxdigit((unsigned char)s[3]) && isxdigit((unsigned char)s[4]) &&
            isxdigit((unsigned char)s[5])) {
            char hex[5] = {s[2], s[3], s[4], s[5], '\0'};
            c = (char)strtol(hex, NULL, 16);
            s += 5;
        } else if (c == '\\' && s[1]) {
            c = *++s;
        }
        out[k++] = c;
    }
    out[k] = '\0';
}

unsigned long long stg_json_u64(const char *json, const char *key)
{
    char v[32];
    stg_json_field(json, key, v, sizeof v);
    return strtoull(v, NULL, 10);
}
