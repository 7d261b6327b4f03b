/* SPDX-License-Identifier: MIT */
/*
 * t-walk: the root's walk of a manifest's trees, on a tree made here:
 * entries and bytes counted, include and exclude honoured, links that stay
 * links (inside what is staged) and links staged as what they lead to
 * (outside it), hard links, set-user-ID bits dropped, special files and
 * dangling links skipped; the key the same for the same trees and another
 * for a change; what root leaves out and what an ordinary user gets;
 * errors that name file:line or the path; files added after the walk; and
 * the relative links between archive paths.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fixture.h"
#include "log.h"
#include "tap.h"
#include "util.h"
#include "walk.h"

static char top[4096];

static char *at(const char *rel)
{
    return fx_path(top, rel);
}

static void put(const char *rel, const char *text)
{
    char *p = at(rel);
    fx_write_text(p, text, 0644);
    free(p);
}

static void dir(const char *rel, mode_t mode)
{
    char *p = at(rel);
    fx_mkdir(p, mode);
    free(p);
}

static void link_to(const char *target, const char *rel)
{
    char *p = at(rel);
    if (symlink(target, p) < 0)
        diag("symlink %s: %s", p, strerror(errno));
    free(p);
}

static off_t size_of(const char *rel)
{
    char *p = at(rel);
    struct stat st;
    off_t n = stat(p, &st) == 0 ? st.st_size : -1;
    free(p);
    return n;
}

/* The manifest name (mode 0644) with these trees' sections. */
static void manifest(const char *name, const char *trees)
{
    char *p = at(name);
    fx_manifest(p, "t", trees);
    free(p);
}

/* Load the manifest as a staging does, and walk it.  OUT s (NULL on
 * failure), err: the error recorded. */
static int walk(const char *name, struct stg_walk **s, char *err, size_t len)
{
    struct stg_conf c;
    char *path = at(name);
    stg_err_take(NULL, 0);
    int rc = fx_load_walk(&c, path, s);
    free(path);
    stg_err_take(err, len);
    stg_conf_free(&c);
    return rc;
}

/* The entry at archive path rel-below-top (top without its '/'), or NULL. */
static const struct stg_entry *entry(const struct stg_walk *s, const char *rel)
{
    char *ap = stg_xasprintf("%s/%s", top + 1, rel);
    const struct stg_entry *e = NULL;
    for (size_t i = 0; s && i < s->n && !e; i++)
        if (strcmp(s->v[i].path, ap) == 0)
            e = &s->v[i];
    free(ap);
    return e;
}

static bool has(const struct stg_walk *s, const char *rel)
{
    char *ap = stg_xasprintf("%s/%s", top + 1, rel);
    bool h = s && stg_walk_has(s, ap);
    free(ap);
    return h;
}

static size_t index_of(const struct stg_walk *s, const char *rel)
{
    const struct stg_entry *e = entry(s, rel);
    return e ? (size_t)(e - s->v) : (size_t)-1;
}

/* The key of a fresh walk of m.ini. */
static void key_now(char key[17])
{
    struct stg_walk *s;
    char err[STG_MSG_MAX];
    key[0] = '\0';
    if (walk("m.ini", &s, err, sizeof err) == STG_OK)
        snprintf(key, 17, "%s", s->key);
    else
        diag("walk failed: %s", err);
    stg_walk_free(&s);
}

static void set_mtime(const char *rel, time_t sec, long nsec)
{
    char *p = at(rel);
    struct timespec t[2] = {{0, UTIME_OMIT}, {sec, nsec}};
    utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW);
    free(p);
}

static void rel(const char *from, const char *to, const char *want)
{
    char *got = stg_walk_relative_link(from, to);
    is_str(got, want, "link from '%s' to '%s'", from, to);
    free(got);
}

/* --- as an ordinary user, in a child process --- */

struct as_user {
    int rc;
    bool has_mine, has_inner;
    char err[512];
};

struct walk_job {
    const char *name, *mine, *inner;
};

/* In the child: walk the manifest, look for the two entries. */
static void walk_child(void *arg, void *result)
{
    const struct walk_job *j = arg;
    struct as_user *out = result;
    struct stg_walk *s;
    out->rc = walk(j->name, &s, out->err, sizeof out->err);
    out->has_mine = has(s, j->mine);
    out->has_inner = has(s, j->inner);
    stg_walk_free(&s);
}

/* Walk manifest name as user pw in a child; OUT r. */
static bool walk_as(const struct passwd *pw, const char *name, const char *mine,
                    const char *inner, struct as_user *r)
{
    struct walk_job j = {name, mine, inner};
    return fx_as_user(pw, walk_child, &j, r, sizeof *r);
}

int main(void)
{
    if (!fx_tmpdir(top, sizeof top, "t-walk"))
        return 1;
    chmod(top, 0755);   /* as root, only what others can reach is staged */
    setenv("STAGE_PY_CONF", "/dev/null", 1);     /* no site file: its defaults */
    bool root = geteuid() == 0;

    dir("src", 0755);
    dir("src/pkg", 0755);
    dir("src/pkg/sub", 0755);
    dir("src/pkg/tests", 0755);
    dir("src/other", 0755);
    dir("outside", 0755);
    dir("outside/sub", 0755);
    put("src/pkg/a.py", "x = 1\n");
    put("src/pkg/b.txt", "some text, a little longer\n");
    put("src/pkg/B.py", "upper = True\n");
    put("src/pkg/sub/c.py", "c = 3\n");
    put("src/pkg/tests/t.py", "assert True  # a test\n");
    put("src/pkg/x.orig", "old\n");
    put("src/other/o.py", "other\n");
    put("src/zz", "top-level, not included\n");
    put("outside/o.txt", "outside, staged through a link\n");
    put("outside/sub/p.txt", "deeper outside\n");
    put("src/pkg/suid", "#!/bin/sh\n");
    char *p = at("src/pkg/suid");
    chmod(p, 04755);
    free(p);
    dir("src/pkg/sgid_dir", 02755);
    put("src/pkg/hard1", "one file, two names\n");
    char *h1 = at("src/pkg/hard1"), *h2 = at("src/pkg/hard2");
    if (link(h1, h2) < 0)
        diag("link: %s", strerror(errno));
    free(h1);
    free(h2);
    link_to("a.py", "src/pkg/l_rel");
    char *abs_a = at("src/pkg/a.py"), *out_o = at("outside/o.txt"), *out_d = at("outside");
    link_to(abs_a, "src/pkg/l_abs");
    link_to(out_o, "src/pkg/l_out");
    link_to(out_d, "src/pkg/l_outdir");
    link_to("tests/t.py", "src/pkg/l_excl");
    link_to("nosuch", "src/pkg/l_dangling");
    free(abs_a);
    char *fifo = at("src/pkg/fifo");
    mkfifo(fifo, 0644);
    free(fifo);
    /* what others cannot read */
    put("src/pkg/secret", "root's only\n");
    p = at("src/pkg/secret");
    chmod(p, 0600);
    free(p);
    dir("src/pkg/closed", 0755);
    put("src/pkg/closed/inside", "x\n");
    dir("src/pkg/closed", 0700);

    char *trees = stg_xasprintf("[tree a]\nsource = %s/src\ninclude = pkg\n"
                                "exclude = tests *.orig\n", top);
    manifest("m.ini", trees);
    free(trees);

    struct stg_walk *s = NULL;
    char err[STG_MSG_MAX];
    int rc = walk("m.ini", &s, err, sizeof err);
    if (!ok(rc == STG_OK && s, "a tree walked (%s)", err)) {
        done_testing();
        return 1;
    }

    /* --- what is staged --- */
    static const char *const want[] = {
        "src", "src/pkg", "src/pkg/a.py", "src/pkg/b.txt", "src/pkg/B.py", "src/pkg/sub",
        "src/pkg/sub/c.py", "src/pkg/l_rel", "src/pkg/l_abs", "src/pkg/l_out",
        "src/pkg/l_outdir", "src/pkg/l_outdir/o.txt", "src/pkg/l_outdir/sub",
        "src/pkg/l_outdir/sub/p.txt", "src/pkg/l_excl", "src/pkg/suid", "src/pkg/sgid_dir",
        "src/pkg/hard1", "src/pkg/hard2",
    };
    size_t nwant = sizeof want / sizeof *want, present = 0;
    for (size_t i = 0; i < nwant; i++) {
        if (has(s, want[i]) && entry(s, want[i]))
            present++;
        else
            diag("missing: %s", want[i]);
    }
    ok(present == nwant, "every entry expected is there (%zu of %zu)", present, nwant);
    ok(!has(s, "src/other") && !has(s, "src/other/o.py") && !has(s, "src/zz"),
       "include: only the names it gives, at the top");
    ok(!has(s, "src/pkg/tests") && !has(s, "src/pkg/tests/t.py"),
       "exclude: a name at any depth, with all below it");
    ok(!has(s, "src/pkg/x.orig"), "exclude: a glob");
    ok(!has(s, "src/pkg/l_dangling"), "a dangling link: skipped");
    ok(!has(s, "src/pkg/fifo"), "a FIFO: skipped");
    if (root) {
        ok(!has(s, "src/pkg/secret"), "as root: a file others cannot read is left out");
        ok(!has(s, "src/pkg/closed") && !has(s, "src/pkg/closed/inside"),
           "as root: a directory others cannot enter is left out, with what it holds");
        ok(s->n == nwant, "... and nothing else is there: %zu entries", s->n);
    } else {
        ok(has(s, "src/pkg/secret"), "not root: a file of one's own that others cannot read "
           "is staged");
        ok(has(s, "src/pkg/closed/inside"), "not root: so is a closed directory");
        ok(s->n == nwant + 3, "... and nothing else is there: %zu entries", s->n);
    }
    ok(s->files == s->n, "files counts entries of every kind (%llu)",
       (unsigned long long)s->files);
    off_t bytes = size_of("src/pkg/a.py") + size_of("src/pkg/b.txt") + size_of("src/pkg/B.py") +
                  size_of("src/pkg/sub/c.py") + size_of("outside/o.txt") * 2 +
                  size_of("outside/sub/p.txt") + size_of("src/pkg/tests/t.py") +
                  size_of("src/pkg/suid") + size_of("src/pkg/hard1") +
                  (root ? 0 : size_of("src/pkg/secret") + size_of("src/pkg/closed/inside"));
    ok(s->bytes == (uint64_t)bytes, "bytes: the regular files' sizes, a hard link's once "
       "(%llu, want %lld)", (unsigned long long)s->bytes, (long long)bytes);
    ok(strlen(s->key) == 16 && strspn(s->key, "0123456789abcdef") == 16, "a key of 16 hex "
       "digits (%s)", s->key);

    /* --- what each entry is --- */
    const struct stg_entry *e = entry(s, "src/pkg/a.py");
    char *real_a = at("src/pkg/a.py");
    ok(e && e->kind == STG_ENT_FILE && e->size == size_of("src/pkg/a.py") && e->src &&
       strcmp(e->src, real_a) == 0 && (e->mode & 07777) == 0644,
       "a file: its size, mode and source path");
    free(real_a);
    e = entry(s, "src/pkg/l_rel");
    ok(e && e->kind == STG_ENT_SYMLINK && e->link && strcmp(e->link, "a.py") == 0,
       "a relative link inside the tree stays a link");
    e = entry(s, "src/pkg/l_abs");
    ok(e && e->kind == STG_ENT_SYMLINK && e->link && strcmp(e->link, "a.py") == 0,
       "an absolute link inside the tree becomes relative (%s)", e && e->link ? e->link : "-");
    e = entry(s, "src/pkg/l_out");
    ok(e && e->kind == STG_ENT_FILE && e->src && strcmp(e->src, out_o) == 0 &&
       e->size == size_of("outside/o.txt"),
       "a link to a file outside: staged as that file, read from its real path");
    e = entry(s, "src/pkg/l_outdir");
    ok(e && e->kind == STG_ENT_DIR, "a link to a directory outside: staged as a directory");
    e = entry(s, "src/pkg/l_outdir/sub/p.txt");
    char *real_p = at("outside/sub/p.txt");
    ok(e && e->kind == STG_ENT_FILE && e->src && strcmp(e->src, real_p) == 0,
       "... walked in turn");
    free(real_p);
    e = entry(s, "src/pkg/l_excl");
    ok(e && e->kind == STG_ENT_FILE && e->size == size_of("src/pkg/tests/t.py"),
       "a link to something excluded: staged as what it leads to");
    e = entry(s, "src/pkg/suid");
    ok(e && e->kind == STG_ENT_FILE && (e->mode & 07777) == 0755,
       "a set-user-ID file: staged without the bit (mode %04o)", e ? (unsigned)e->mode : 0);
    e = entry(s, "src/pkg/sgid_dir");
    ok(e && e->kind == STG_ENT_DIR && (e->mode & 07777) == 0755,
       "a set-group-ID directory: staged without the bit (mode %04o)",
       e ? (unsigned)e->mode : 0);
    const struct stg_entry *e1 = entry(s, "src/pkg/hard1"), *e2 = entry(s, "src/pkg/hard2");
    ok(e1 && e2 && e1->kind == STG_ENT_FILE && e2->kind == STG_ENT_HARDLINK && e2->link &&
       strcmp(e2->link, e1->path) == 0, "two names of one file: a file, then a hard link to it");
    {
        /* order: each directory before what it holds, names in byte order */
        static const char *const order[] = {
            "src", "src/pkg", "src/pkg/B.py", "src/pkg/a.py", "src/pkg/b.txt",
            "src/pkg/hard1", "src/pkg/hard2", "src/pkg/l_abs", "src/pkg/sub",
            "src/pkg/sub/c.py", "src/pkg/suid",
        };
        bool sorted = true;
        for (size_t i = 1; i < sizeof order / sizeof *order; i++)
            sorted = sorted && index_of(s, order[i - 1]) < index_of(s, order[i]) &&
                     index_of(s, order[i]) != (size_t)-1;
        ok(sorted, "each directory before its entries, names in byte order");
    }
    char key[17];
    snprintf(key, sizeof key, "%s", s->key);
    stg_walk_free(&s);
    ok(s == NULL, "free sets the pointer to NULL");

    /* --- the key --- */
    char k2[17];
    key_now(k2);
    is_str(k2, key, "the same trees: the same key");
    put("src/zz", "changed, and its directory's time with it\n");
    put("src/new-top-level", "not included either\n");
    key_now(k2);
    is_str(k2, key, "a change beside what include picks (the source's time): the same key");
    char *ap = at("src/pkg/a.py");
    struct stat st0;
    stat(ap, &st0);
    set_mtime("src/pkg/a.py", st0.st_mtim.tv_sec - 100, 0);
    key_now(k2);
    ok(strcmp(k2, key) != 0 && k2[0], "a file's time changed: another key");
    set_mtime("src/pkg/a.py", st0.st_mtim.tv_sec, st0.st_mtim.tv_nsec);
    key_now(k2);
    is_str(k2, key, "... and the time put back: the key again");
    chmod(ap, 0640);
    key_now(k2);
    ok(strcmp(k2, key) != 0 && k2[0], "a file's mode changed: another key");
    chmod(ap, 0644);
    put("src/pkg/a.py", "x = 2\n");     /* the same size */
    set_mtime("src/pkg/a.py", st0.st_mtim.tv_sec, st0.st_mtim.tv_nsec);
    key_now(k2);
    is_str(k2, key, "the same size and time: the same key (the key reads no content)");
    put("src/pkg/a.py", "x = 100\n");
    set_mtime("src/pkg/a.py", st0.st_mtim.tv_sec, st0.st_mtim.tv_nsec);
    key_now(k2);
    ok(strcmp(k2, key) != 0 && k2[0], "another size: another key");
    put("src/pkg/a.py", "x = 1\n");
    set_mtime("src/pkg/a.py", st0.st_mtim.tv_sec, st0.st_mtim.tv_nsec);
    char *lnk = at("src/pkg/l_rel");
    unlink(lnk);
    link_to("b.txt", "src/pkg/l_rel");
    key_now(k2);
    ok(strcmp(k2, key) != 0 && k2[0], "a link's target changed: another key");
    unlink(lnk);
    link_to("a.py", "src/pkg/l_rel");
    set_mtime("src/pkg/l_rel", 1000, 0);
    put("src/pkg/new.py", "new\n");
    key_now(k2);
    ok(strcmp(k2, key) != 0 && k2[0], "a new file: another key");
    free(lnk);
    lnk = at("src/pkg/new.py");
    unlink(lnk);
    free(lnk);
    free(ap);

    /* --- errors --- */
    trees = stg_xasprintf("[tree a]\nsource = %s/src\ninclude = pkg nosuch\n", top);
    manifest("m2.ini", trees);
    free(trees);
    rc = walk("m2.ini", &s, err, sizeof err);
    char *where = stg_xasprintf("%s/m2.ini:5: include 'nosuch': no such entry in '%s/src'", top,
                                top);
    ok(rc == STG_EUSAGE && s == NULL, "an include that names nothing: status 2");
    like(err, where, "... naming file:line and the source");
    free(where);
    if (root) {
        char *src = at("src");
        chmod(src, 0700);
        rc = walk("m.ini", &s, err, sizeof err);
        chmod(src, 0755);
        where = stg_xasprintf("%s/m.ini:4: source '%s'", top, src);
        ok(rc == STG_EUSAGE && s == NULL, "as root, a source that others cannot read: "
           "status 2");
        like(err, where, "... naming file:line and the source");
        like(err, "(mode 0700) cannot be read by others", "... and why");
        free(where);
        free(src);
    } else {
        skip("not root: a source that others cannot read is no error");
        skip("(naming file:line)");
        skip("(and why)");
    }

    /* --- as an ordinary user --- */
    struct passwd *pw = fx_user();
    if (pw) {
        /* a tree of the user's own, with a file and a directory that only
         * the user can read, and one of root's that the user cannot read */
        dir("mine", 0755);
        dir("mine/d", 0755);
        put("mine/f", "the user's\n");
        put("mine/d/g", "the user's\n");
        char *m = at("mine"), *f = at("mine/f"), *d = at("mine/d"), *g = at("mine/d/g");
        int crc = lchown(m, pw->pw_uid, pw->pw_gid) | lchown(f, pw->pw_uid, pw->pw_gid) |
                  lchown(d, pw->pw_uid, pw->pw_gid) | lchown(g, pw->pw_uid, pw->pw_gid);
        chmod(f, 0600);
        chmod(d, 0700);
        trees = stg_xasprintf("[tree mine]\nsource = %s\n", m);
        manifest("m3.ini", trees);
        free(trees);
        rc = walk("m3.ini", &s, err, sizeof err);
        ok(crc == 0 && rc == STG_OK && !has(s, "mine/f") && !has(s, "mine/d/g") &&
           !has(s, "mine/d"), "as root, the user's files that others cannot read: left out");
        stg_walk_free(&s);
        struct as_user r;
        bool ran = walk_as(pw, "m3.ini", "mine/f", "mine/d/g", &r);
        ok(ran && r.rc == STG_OK && r.has_mine && r.has_inner, "as " FX_USER ": its own "
           "are staged (%s)", ran ? r.err : "the child failed");
        dir("mine/locked", 0700);   /* root's */
        ran = walk_as(pw, "m3.ini", "mine/f", "mine/d/g", &r);
        char *locked = at("mine/locked");
        char *want_msg = stg_xasprintf("cannot read directory '%s': Permission denied", locked);
        ok(ran && r.rc == STG_EFAIL, "as " FX_USER ": a directory it cannot read is an error");
        like(r.err, want_msg, "... naming it");
        free(want_msg);
        free(locked);
        free(m);
        free(f);
        free(d);
        free(g);
    } else {
        for (int i = 0; i < 4; i++)
            skip(root ? "no user " FX_USER : "not root: cannot walk as another user");
    }

    /* --- files added after the walk --- */
    rc = walk("m.ini", &s, err, sizeof err);
    char *extra = at("outside/o.txt");
    struct timespec fixed = {1234567890, 5};
    uint64_t before = s ? s->bytes : 0, nbefore = s ? s->n : 0;
    char k3[17];
    snprintf(k3, sizeof k3, "%s", s ? s->key : "");
    rc = s ? stg_walk_add_file(s, "x/new/y.pyc", extra, &fixed, (uid_t)-1) : -1;
    ok(rc == STG_OK && stg_walk_has(s, "x/new/y.pyc") && stg_walk_has(s, "x/new") &&
       s->n == nbefore + 2, "add a file: it and its directory");
    ok(s && s->bytes == before + (uint64_t)size_of("outside/o.txt"), "... its bytes counted");
    ok(s && strcmp(s->key, k3) == 0, "... the key is the walk's until rekeyed");
    if (s)
        stg_walk_rekey(s);
    ok(s && strcmp(s->key, k3) != 0, "... then another");
    char first[17];
    snprintf(first, sizeof first, "%s", s ? s->key : "");
    stg_walk_free(&s);
    walk("m.ini", &s, err, sizeof err);
    if (s) {
        stg_walk_add_file(s, "x/new/y.pyc", extra, &fixed, (uid_t)-1);
        stg_walk_rekey(s);
    }
    is_str(s ? s->key : NULL, first, "the same additions: the same key");
    char *small = at("src/pkg/a.py");
    uint64_t b2 = s ? s->bytes : 0;
    rc = s ? stg_walk_add_file(s, "x/new/y.pyc", small, &fixed, (uid_t)-1) : -1;
    ok(rc == STG_OK && s->bytes == b2 - (uint64_t)size_of("outside/o.txt") +
       (uint64_t)size_of("src/pkg/a.py"), "a file added where one is: it replaces it, bytes "
       "and all");
    char *apath_dir = stg_xasprintf("%s/src/pkg/sub", top + 1);
    stg_err_take(NULL, 0);
    rc = s ? stg_walk_add_file(s, apath_dir, small, NULL, (uid_t)-1) : -1;
    stg_err_take(err, sizeof err);
    ok(rc != STG_OK, "a file added where a directory is: refused");
    like(err, "is not a file there", "... saying so");
    like(err, small, "... naming the file");
    free(apath_dir);
    char *adir = at("outside/sub");
    rc = s ? stg_walk_add_file(s, "x/z", adir, NULL, (uid_t)-1) : -1;
    stg_err_take(err, sizeof err);
    ok(rc != STG_OK && strstr(err, adir) && strstr(err, "not a regular file"),
       "adding a directory as a file: refused, naming it (%s)", err);
    char *missing = at("nosuch");
    rc = s ? stg_walk_add_file(s, "x/z", missing, NULL, (uid_t)-1) : -1;
    stg_err_take(err, sizeof err);
    ok(rc != STG_OK && strstr(err, missing) && strstr(err, "No such file"),
       "adding a file that is not there: refused, naming it (%s)", err);
    free(missing);
    free(adir);
    free(small);
    free(extra);
    stg_walk_free(&s);

    /* --- relative links between archive paths --- */
    rel("usr/lib/python3/dist-packages/a", "usr/lib/python3/dist-packages/b/c.py", "../b/c.py");
    rel("usr/lib/x", "usr/lib/x/y", "y");
    rel("usr/lib/x", "usr/lib/x", ".");
    rel("usr/lib/x", "usr/lib", "..");
    rel("a/b/c", "d/e", "../../../d/e");
    rel("usr/lib/ab", "usr/lib/abc/x", "../abc/x");
    rel("", "a/b", "a/b");

    free(out_o);
    free(out_d);
    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
