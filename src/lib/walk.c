/* SPDX-License-Identifier: MIT */
/*
 * walk: walk the trees once, on the root, into the list of entries to stage.
 *
 * The staged copy mirrors absolute source paths, so an entry's archive path
 * is its logical source path without the leading "/".  Directories are
 * listed in byte order, so the same trees give the same list, key and
 * archive bytes.  Symbolic links:
 *   - a link whose target (resolved) is itself staged stays a link, with a
 *     relative target computed in the mirrored namespace, so the copy does
 *     not depend on where it lives;
 *   - a link that leads outside the staged set is staged as what it points
 *     to (a file, or a directory walked in turn), so the copy is complete;
 *   - a dangling link, a cycle or a special file is skipped with a warning.
 * Regular files with several names stay hard links.
 */
#include "config.h"

#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "match.h"
#include "trust.h"
#include "util.h"

struct inode_path {
    dev_t dev;
    ino_t ino;
    char *path;
};

struct walker {
    const struct stg_manifest *m;
    struct stg_walk *s;
    struct inode_path *hl;      /* first archive path of multiply linked files */
    size_t nhl, caphl;
    struct inode_path *stack;   /* directories being walked, for cycles */
    size_t depth, capstack;
};

static struct stg_entry *add_entry(struct stg_walk *s, const char *apath,
                                   enum stg_entry_kind kind, const struct stat *st)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->v = stg_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    struct stg_entry *e = &s->v[s->n];
    memset(e, 0, sizeof *e);
    e->path = stg_xstrdup(apath);
    if (!stg_strset_add(&s->set, e->path)) {   /* the set borrows the entry's path */
        free(e->path);
        return NULL;
    }
    s->n++;
    e->kind = kind;
    /* no set-user-ID or set-group-ID bit reaches a copy (see unpack.c) */
    e->mode = st->st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
    e->mtime = st->st_mtim;
    s->files++;
    return e;
}

/* --- paths --- */

char *stg_walk_relative_link(const char *from_dir, const char *to)
{
    /* Skip the common leading components. */
    const char *f = from_dir, *t = to;
    const char *fc = f, *tc = t;  /* starts of the first differing components */
    for (;;) {
        size_t nf = strcspn(f, "/"), nt = strcspn(t, "/");
        if (!*f || !*t || nf != nt || memcmp(f, t, nf) != 0)
            break;
        f += nf;
        t += nt;
        if (*f == '/')
            f++;
        if (*t == '/')
            t++;
        fc = f;
        tc = t;
    }
    size_t ups = 0;
    for (const char *p = fc; *p;) {
        ups++;
        p += strcspn(p, "/");
        if (*p == '/')
            p++;
    }
    size_t len = 3 * ups + strlen(tc) + 2;
    char *out = stg_xmalloc(len);
    out[0] = '\0';
    for (size_t i = 0; i < ups; i++)
        strcat(out, "../");
    strcat(out, tc);
    size_t n = strlen(out);
    if (n == 0)
        strcpy(out, ".");
    else if (out[n - 1] == '/')
        out[n - 1] = '\0';
    return out;
}

static char *dirname_of(const char *apath)
{
    const char *slash = strrchr(apath, '/');
    return slash ? stg_xstrndup(apath, (size_t)(slash - apath)) : stg_xstrdup("");
}

/* Is the resolved path R part of what the manifest stages?  OUT mirror: its
 * archive path. */
static bool in_set(const struct stg_manifest *m, const char *R, char **mirror)
{
    for (size_t i = 0; i < m->ntrees; i++) {
        const struct stg_tree *t = &m->trees[i];
        size_t n = strlen(t->real);
        if (strncmp(R, t->real, n) != 0 || (R[n] != '\0' && R[n] != '/'))
            continue;
        const char *rel = R[n] == '/' ? R + n + 1 : R + n;
        if (*rel) {
            size_t first = strcspn(rel, "/");
            char *top = stg_xstrndup(rel, first);
            bool inc = stg_match_include(&t->include, top);
            free(top);
            if (!inc)
                continue;
            bool excluded = false;
            char *buf = stg_xstrdup(rel);
            for (char *p = buf; !excluded;) {
                char *slash = strchr(p, '/');
                if (slash)
                    *slash = '\0';
                struct stat st;
                bool is_dir = slash ? true : (stat(R, &st) == 0 && S_ISDIR(st.st_mode));
                excluded = stg_match_exclude(&t->exclude, buf, is_dir);
                if (!slash)
                    break;
                *slash = '/';
                p = slash + 1;
            }
            free(buf);
            if (excluded)
                continue;
        }
        *mirror = *rel ? stg_xasprintf("%s/%s", t->source + 1, rel) : stg_xstrdup(t->source + 1);
        return true;
    }
    return false;
}

/* --- the walk --- */

static int visit(struct walker *w, const struct stg_tree *t, int dfd, const char *name,
                 const char *src, const char *rel, const char *apath);

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Open the directory name below dfd (AT_FDCWD: a real path), which must
 * still be the directory st describes.  Entries below it are then reached by name
 * from this descriptor (fstatat, openat): one lookup each, however deep,
 * where a path would cost the shared file system a lookup per component.
 * Returns the descriptor, or -1 with the error recorded.
 */
static int open_dir(int dfd, const char *name, const char *path, const struct stat *st)
{
    /* a real path from "/" (dfd AT_FDCWD) or a name below dfd: no link followed */
    int fd = dfd == AT_FDCWD ? stg_trust_open(name, O_RDONLY | O_DIRECTORY)
                             : openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    struct stat now;
    if (fd < 0) {
        stg_err_set(STG_EFAIL, "cannot read directory '%s': %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
        close(fd);
        stg_err_set(STG_EFAIL, "'%s' changed while it was being staged", path);
        return -1;
    }
    return fd;
}

/* OUT names: sorted entries of the directory open on fd (path: for
 * messages), without "." and "..". */
static int list_dir(int fd, const char *path, char ***names, size_t *n)
{
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        int e = errno;
        if (dup_fd >= 0)
            close(dup_fd);
        return stg_err_set(STG_EFAIL, "cannot read directory '%s': %s", path, strerror(e));
    }
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *names = stg_xrealloc(*names, cap * sizeof **names);
        }
        (*names)[(*n)++] = stg_xstrdup(de->d_name);
    }
    int err = errno;
    closedir(d);
    if (err)
        return stg_err_set(STG_EFAIL, "cannot read directory '%s': %s", path, strerror(err));
    qsort(*names, *n, sizeof **names, cmp_names);
    return STG_OK;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static bool on_stack(struct walker *w, const struct stat *st)
{
    for (size_t i = 0; i < w->depth; i++)
        if (w->stack[i].dev == st->st_dev && w->stack[i].ino == st->st_ino)
            return true;
    return false;
}

/* A directory (real, or reached through a link that leads outside): the
 * entry itself, then its children, read from src (name below dfd), staged
 * at apath. */
static int walk_dir(struct walker *w, const struct stg_tree *t, int dfd, const char *name,
                    const char *src, const char *rel, const char *apath, const struct stat *st)
{
    if (on_stack(w, st)) {
        stg_log_warn("symbolic link cycle at '%s': skipped", src);
        return STG_OK;
    }
    add_entry(w->s, apath, STG_ENT_DIR, st);
    int fd = open_dir(dfd, name, src, st);
    if (fd < 0)
        return STG_EFAIL;
    char **names;
    size_t n;
    int rc = list_dir(fd, src, &names, &n);
    if (rc) {
        close(fd);
        return rc;
    }
    if (w->depth == w->capstack) {
        w->capstack = w->capstack ? 2 * w->capstack : 64;
        w->stack = stg_xrealloc(w->stack, w->capstack * sizeof *w->stack);
    }
    w->stack[w->depth].dev = st->st_dev;
    w->stack[w->depth].ino = st->st_ino;
    w->depth++;
    for (size_t i = 0; i < n && rc == STG_OK; i++) {
        char *csrc = stg_xasprintf("%s/%s", src, names[i]);
        char *crel = *rel ? stg_xasprintf("%s/%s", rel, names[i]) : stg_xstrdup(names[i]);
        char *capath = stg_xasprintf("%s/%s", apath, names[i]);
        rc = visit(w, t, fd, names[i], csrc, crel, capath);
        free(csrc);
        free(crel);
        free(capath);
    }
    w->depth--;
    free_names(names, n);
    close(fd);
    return rc;
}

static int add_file(struct walker *w, const char *src, const char *apath, const struct stat *st)
{
    if (st->st_nlink > 1) {
        for (size_t i = 0; i < w->nhl; i++) {
            if (w->hl[i].dev == st->st_dev && w->hl[i].ino == st->st_ino) {
                struct stg_entry *e = add_entry(w->s, apath, STG_ENT_HARDLINK, st);
                if (e)
                    e->link = stg_xstrdup(w->hl[i].path);
                return STG_OK;
            }
        }
    }
    struct stg_entry *e = add_entry(w->s, apath, STG_ENT_FILE, st);
    if (!e)
        return STG_OK;
    e->src = stg_xstrdup(src);
    e->size = st->st_size;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->src_mtime = st->st_mtim;
    w->s->bytes += (uint64_t)st->st_size;
    if (st->st_nlink > 1) {
        if (w->nhl == w->caphl) {
            w->caphl = w->caphl ? 2 * w->caphl : 64;
            w->hl = stg_xrealloc(w->hl, w->caphl * sizeof *w->hl);
        }
        w->hl[w->nhl++] = (struct inode_path){st->st_dev, st->st_ino, e->path};
    }
    return STG_OK;
}

/* Run as root, stage-py reads everything: it must not turn what only root
 * (or one user) may read into a copy that others can read.  real: src is a
 * real path reached from outside the walk (a link's target), whose
 * directories must all be searchable by others too. */
static bool hidden_from_others(const char *src, const struct stat *st, bool real)
{
    if (geteuid() != 0)
        return false;
    mode_t need = S_ISDIR(st->st_mode) ? (S_IROTH | S_IXOTH) : S_IROTH;
    char dir[PATH_MAX + 32];
    if ((st->st_mode & need) != need) {
        stg_log_warn("'%s' is not readable by others (mode %04o): running as root, stage-py "
                     "skips it", src, (unsigned)(st->st_mode & 07777));
        return true;
    }
    if (real && !stg_trust_reachable(src, dir, sizeof dir)) {
        stg_log_warn("'%s' lies below %s, which others cannot search: running as root, "
                     "stage-py skips it", src, dir);
        return true;
    }
    return false;
}

static int visit_link(struct walker *w, const struct stg_tree *t, const char *src,
                      const char *rel, const char *apath, const struct stat *lst)
{
    char *R = realpath(src, NULL);
    if (!R) {
        if (errno == ELOOP)
            stg_log_warn("symbolic link cycle at '%s': skipped", src);
        else if (errno == ENOENT || errno == ENOTDIR)
            stg_log_warn("dangling symbolic link '%s': skipped", src);
        else
            return stg_err_set(STG_EFAIL, "cannot resolve symbolic link '%s': %s", src,
                               strerror(errno));
        return STG_OK;
    }
    int rc = STG_OK;
    char *mirror = NULL;
    struct stat st;
    /* R as resolved, with no link followed: a link swapped in since is a change */
    int fd = stg_trust_open(R, O_PATH);
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = stg_err_set(STG_EFAIL, "'%s' (target of '%s') changed while it was being "
                         "staged: %s", R, src, strerror(errno));
    } else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        stg_log_warn("'%s' leads to a special file: skipped", src);
    } else if (hidden_from_others(R, &st, true)) {
        /* skipped, with a warning */
    } else if (in_set(w->m, R, &mirror)) {
        char *dir = dirname_of(apath);
        struct stg_entry *e = add_entry(w->s, apath, STG_ENT_SYMLINK, lst);
        if (e) {
            e->mode = 0777;
            e->link = stg_walk_relative_link(dir, mirror);
        }
        free(dir);
    } else if (S_ISDIR(st.st_mode) && on_stack(w, &st)) {
        stg_log_warn("symbolic link cycle at '%s': skipped", src);
    } else if (S_ISDIR(st.st_mode)) {
        rc = walk_dir(w, t, AT_FDCWD, R, R, rel, apath, &st);
    } else {
        rc = add_file(w, R, apath, &st);
    }
    if (fd >= 0)
        close(fd);
    free(mirror);
    free(R);
    return rc;
}

static int visit(struct walker *w, const struct stg_tree *t, int dfd, const char *name,
                 const char *src, const char *rel, const char *apath)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return stg_err_set(STG_EFAIL, "cannot stat '%s': %s", src, strerror(errno));
    if (stg_match_exclude(&t->exclude, rel, S_ISDIR(st.st_mode)))
        return STG_OK;
    if (!S_ISLNK(st.st_mode) && hidden_from_others(src, &st, false))
        return STG_OK;
    if (S_ISLNK(st.st_mode))
        return visit_link(w, t, src, rel, apath, &st);
    if (S_ISDIR(st.st_mode))
        return walk_dir(w, t, dfd, name, src, rel, apath, &st);
    if (S_ISREG(st.st_mode))
        return add_file(w, src, apath, &st);
    stg_log_warn("'%s' is a special file: skipped", src);
    return STG_OK;
}

static int walk_tree(struct walker *w, const struct stg_tree *t)
{
    /* A source that is a link is staged as the directory it leads to: its
     * real path, resolved once here, is where every file is read from. */
    char *real = realpath(t->source, NULL);
    if (!real)
        return stg_err_set(STG_EFAIL, "cannot resolve '%s': %s", t->source, strerror(errno));
    struct stat st;
    int fd = stg_trust_open(real, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int rc = stg_err_set(STG_EFAIL, "'%s' changed while it was being staged: %s",
                             t->source, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(real);
        return rc;
    }
    char dir[PATH_MAX + 32];
    if (geteuid() == 0 && (!stg_trust_reachable(real, dir, sizeof dir) ||
                           (st.st_mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH))) {
        if ((st.st_mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH))
            snprintf(dir, sizeof dir, "'%s' (mode %04o)", real, (unsigned)(st.st_mode & 07777));
        int rc = stg_err_set(STG_EUSAGE, "%s:%d: source '%s': %s cannot be read by others; "
                             "running as root, stage-py stages only what every user can read",
                             w->m->path, t->source_line, t->source, dir);
        close(fd);
        free(real);
        return rc;
    }
    const char *aroot = t->source + 1;
    struct stg_entry *root = add_entry(w->s, aroot, STG_ENT_DIR, &st);
    /* The root's mtime changes with every sibling of what include picks:
     * it is copied but kept out of the key (see key_of). */
    if (root)
        root->tree_root = true;
    char **names;
    size_t n;
    int rc = list_dir(fd, real, &names, &n);
    if (rc) {
        close(fd);
        free(real);
        return rc;
    }
    /* Names that include spells out (no glob) must exist: a typo must not
     * become a silent hole in the copy. */
    for (size_t i = 0; i < t->include.n && rc == STG_OK; i++) {
        const char *inc = t->include.v[i];
        if (stg_match_is_glob(inc))
            continue;
        if (!bsearch(&inc, names, n, sizeof *names, cmp_names))
            rc = stg_err_set(STG_EUSAGE, "%s:%d: include '%s': no such entry in '%s'",
                             w->m->path, t->include_line, inc, t->source);
    }
    w->stack[0].dev = st.st_dev;
    w->stack[0].ino = st.st_ino;
    w->depth = 1;
    for (size_t i = 0; i < n && rc == STG_OK; i++) {
        if (!stg_match_include(&t->include, names[i]))
            continue;
        char *csrc = stg_xasprintf("%s/%s", strcmp(real, "/") ? real : "", names[i]);
        char *capath = stg_xasprintf("%s/%s", aroot, names[i]);
        rc = visit(w, t, fd, names[i], csrc, names[i], capath);
        free(csrc);
        free(capath);
    }
    w->depth = 0;
    free_names(names, n);
    close(fd);
    free(real);
    return rc;
}

/* The key: every entry's path, kind, mode, size, mtime and link target. */
static void key_of(struct stg_walk *s)
{
    struct stg_hash *h = stg_hash_new();
    stg_hash_str(h, "stage-py key 1");
    for (size_t i = 0; i < s->n; i++) {
        const struct stg_entry *e = &s->v[i];
        stg_hash_str(h, e->path);
        stg_hash_u64(h, (unsigned long long)e->kind);
        stg_hash_u64(h, (unsigned long long)e->mode);
        stg_hash_u64(h, (unsigned long long)e->size);
        if (!e->tree_root) {
            stg_hash_u64(h, (unsigned long long)e->mtime.tv_sec);
            stg_hash_u64(h, (unsigned long long)e->mtime.tv_nsec);
        }
        stg_hash_str(h, e->link);
    }
    unsigned char d[STG_DIGEST_LEN];
    stg_hash_digest(h, d);
    stg_hash_free(&h);
    stg_hex(d, 8, s->key);
}

int stg_walk_add_file(struct stg_walk *s, const char *apath, const char *src,
                      const struct timespec *mtime, uid_t owner)
{
    struct stat st;
    errno = 0;
    int fd = stg_trust_open(src, O_RDONLY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return stg_err_set(STG_EFAIL, "cannot add '%s' to the copy: %s", src,
                           e ? strerror(e) : "not a regular file");
    }
    close(fd);
    if (owner != (uid_t)-1 && (st.st_uid != owner || st.st_nlink != 1 || !(st.st_mode & S_IROTH)))
        return stg_err_set(STG_EFAIL, "refusing '%s': written for uid %u, but owned by uid %u, "
                           "with %lu names, mode %04o", src, (unsigned)owner,
                           (unsigned)st.st_uid, (unsigned long)st.st_nlink,
                           (unsigned)(st.st_mode & 07777));
    struct timespec src_mtime = st.st_mtim;
    if (mtime)
        st.st_mtim = *mtime;
    char *dir = dirname_of(apath);
    if (*dir && !stg_walk_has(s, dir)) {
        struct stat dst = st;
        dst.st_mode = S_IFDIR | 0755;
        add_entry(s, dir, STG_ENT_DIR, &dst);
    }
    free(dir);
    struct stg_entry *e = add_entry(s, apath, STG_ENT_FILE, &st);
    if (!e) {
        /* there already (a stale .pyc, say): this file takes its place */
        for (size_t i = 0; i < s->n && !e; i++)
            if (strcmp(s->v[i].path, apath) == 0)
                e = &s->v[i];
        if (!e || e->kind != STG_ENT_FILE)
            return stg_err_set(STG_EFAIL, "cannot add '%s' to the copy: '%s' is not a file "
                               "there", src, apath);
        s->bytes -= (uint64_t)e->size;
        free(e->src);
        e->mode = st.st_mode & 0777;
        e->mtime = st.st_mtim;
    }
    e->src = stg_xstrdup(src);
    e->size = st.st_size;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->src_mtime = src_mtime;
    s->bytes += (uint64_t)st.st_size;
    return STG_OK;
}

bool stg_walk_has(const struct stg_walk *s, const char *apath)
{
    return stg_strset_has(&s->set, apath, strlen(apath));
}

void stg_walk_rekey(struct stg_walk *s)
{
    key_of(s);
}

int stg_walk_run(const struct stg_manifest *m, struct stg_walk **out)
{
    struct stg_walk *s = stg_xcalloc(1, sizeof *s);
    struct walker w = {.m = m, .s = s};
    w.capstack = 64;
    w.stack = stg_xmalloc(w.capstack * sizeof *w.stack);
    int rc = STG_OK;
    for (size_t i = 0; i < m->ntrees && rc == STG_OK; i++)
        rc = walk_tree(&w, &m->trees[i]);
    free(w.hl);
    free(w.stack);
    if (rc == STG_OK) {
        key_of(s);
        memcpy(s->trees_key, s->key, sizeof s->key);   /* before any addition */
    }
    if (rc != STG_OK) {
        stg_walk_free(&s);
        return rc;
    }
    *out = s;
    return STG_OK;
}

void stg_walk_free(struct stg_walk **s)
{
    if (!s || !*s)
        return;
    for (size_t i = 0; i < (*s)->n; i++) {
        free((*s)->v[i].path);
        free((*s)->v[i].src);
        free((*s)->v[i].link);
    }
    free((*s)->v);
    stg_strset_free(&(*s)->set);
    free(*s);
    *s = NULL;
}
