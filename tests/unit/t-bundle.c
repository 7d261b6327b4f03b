/* SPDX-License-Identifier: MIT */
/*
 * t-bundle: a bundle written from a small tree (stage-py pack) and opened
 * back as a job does: its trailer (read here byte by byte as well) gives
 * the walk's key, entries and bytes and the digest of the archive before
 * it, which libarchive reads back entry by entry, in every compression;
 * written again unchanged it is "up to date"; and a bundle that is
 * missing, truncated, damaged, writable by others, another user's, from
 * another manifest, a FIFO or a directory is refused, naming it.
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "conf.h"
#include "fixture.h"
#include "hash.h"
#include "log.h"
#include "tap.h"
#include "util.h"
#include "walk.h"

#define FOOTER_LEN 16

static char top[4096];

static char *at(const char *rel)
{
    return fx_path(top, rel);
}

static void put(const char *rel, const void *data, size_t len, mode_t mode)
{
    char *p = at(rel);
    fx_write(p, data, len, mode);
    free(p);
}

static void puts_at(const char *rel, const char *text)
{
    put(rel, text, strlen(text), 0644);
}

/* The whole file at rel.  OUT len. */
static unsigned char *slurp(const char *rel, size_t *len)
{
    char *p = at(rel);
    unsigned char *buf = (unsigned char *)fx_read(p, len);
    free(p);
    return buf;
}

static uint64_t le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

/* Load the manifest and walk it.  OUT c, s. */
static int load(const char *name, struct stg_conf *c, struct stg_walk **s)
{
    char *path = at(name);
    int rc = fx_load_walk(c, path, s);
    free(path);
    return rc;
}

/* Write the bundle at rel.  OUT written, err. */
static int write_bundle(const struct stg_conf *c, const struct stg_walk *s, const char *rel,
                        const char *compress, bool *written, char *err, size_t len)
{
    char *p = at(rel);
    stg_err_take(NULL, 0);
    int rc = stg_bundle_write(c->m, s, p, NULL, compress, NULL, written);
    stg_err_take(err, len);
    free(p);
    return rc;
}

/* Open the bundle at rel with the manifest m (may be NULL), close it.
 * OUT err. */
static int open_bundle(const char *rel, const struct stg_manifest *m, char *err, size_t len)
{
    struct stg_bundle b;
    char *p = at(rel);
    stg_err_take(NULL, 0);
    int rc = stg_bundle_open(&b, p, m);
    stg_err_take(err, len);
    stg_bundle_close(&b);
    free(p);
    return rc;
}

/* A copy of bundle.ref at rel, edited by edit (may be NULL). */
static void variant(const char *rel, void (*edit)(unsigned char *, size_t *))
{
    size_t len;
    unsigned char *data = slurp("bundle.ref", &len);
    if (edit)
        edit(data, &len);
    put(rel, data, len, 0644);
    free(data);
}

static size_t trailer_len(const unsigned char *d, size_t len)
{
    return (size_t)le(d + len - 8, 8);
}

static void cut_end(unsigned char *d, size_t *len)
{
    (void)d;
    *len -= 100;
}

/* The archive one byte short, the trailer whole. */
static void cut_archive(unsigned char *d, size_t *len)
{
    size_t t = trailer_len(d, *len);
    memmove(d + *len - t - 1, d + *len - t, t);
    *len -= 1;
}

static void bad_magic(unsigned char *d, size_t *len)
{
    d[*len - trailer_len(d, *len)] ^= 0xff;
}

static void bad_length(unsigned char *d, size_t *len)
{
    d[*len - 8] += 1;
}

static void bad_digest(unsigned char *d, size_t *len)
{
    size_t t = trailer_len(d, *len);
    char *json = (char *)d + *len - t + 8;
    char *dg = memmem(json, t - 8, "\"digest\": \"", 11);
    if (dg)
        dg[11] = 'g';   /* not a hex digit */
}

static void flip_archive_byte(unsigned char *d, size_t *len)
{
    size_t t = trailer_len(d, *len);
    d[(*len - t) / 2] ^= 0x01;
}

/* The paths of the archive's entries, in order, as one string of lines. */
static char *archive_paths(const unsigned char *data, size_t len, int *nentries)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_all(a);
    archive_read_support_filter_all(a);
    struct stg_buf out = {0};
    stg_buf_put(&out, "", 0);
    *nentries = -1;
    if (archive_read_open_memory(a, data, len) == ARCHIVE_OK) {
        struct archive_entry *ae;
        int r;
        *nentries = 0;
        while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
            stg_buf_printf(&out, "%s\n", archive_entry_pathname(ae));
            (*nentries)++;
        }
        if (r != ARCHIVE_EOF)
            *nentries = -1;
    }
    archive_read_free(a);
    return out.s;
}

int main(void)
{
    fx_bail_on_alarm("Bail out! t-bundle: opening a bundle hung\n");
    if (!fx_tmpdir(top, sizeof top, "t-bundle"))
        return 1;
    chmod(top, 0755);
    setenv("STAGE_PY_CONF", "/dev/null", 1);     /* no site file: its defaults */
    bool root = geteuid() == 0;

    char *dirs[] = {at("src"), at("src/pkg"), at("src/pkg/sub")};
    for (int i = 0; i < 3; i++) {
        fx_mkdir(dirs[i], 0755);
        free(dirs[i]);
    }
    puts_at("src/pkg/__init__.py", "");
    puts_at("src/pkg/a.py", "x = 1\n");
    puts_at("src/pkg/sub/c.txt", "see\n");
    {
        size_t big = 200000;
        unsigned char *blob = stg_xmalloc(big);
        for (size_t i = 0; i < big; i++)
            blob[i] = (unsigned char)(i * 7 + i / 251);
        put("src/pkg/blob.bin", blob, big, 0644);
        free(blob);
    }
    char *trees = stg_xasprintf("[tree a]\nsource = %s/src\n", top);
    char *mpath = at("m.ini"), *m2path = at("m2.ini");
    fx_manifest(mpath, "tb", trees);
    fx_manifest(m2path, "other", trees);
    free(mpath);
    free(m2path);
    free(trees);

    struct stg_conf c, c2;
    struct stg_walk *s = NULL, *s2 = NULL;
    char err[STG_MSG_MAX];
    stg_err_take(NULL, 0);
    int rc = load("m.ini", &c, &s);
    stg_err_get(err, sizeof err);
    if (!ok(rc == STG_OK, "the tree walked (%s)", err)) {
        done_testing();
        return 1;
    }
    load("m2.ini", &c2, &s2);

    /* --- written, then opened back --- */
    bool written = false;
    rc = write_bundle(&c, s, "bundle.ref", "none", &written, err, sizeof err);
    ok(rc == STG_OK && written, "a bundle written (%s)", err);
    char *ref = at("bundle.ref");
    struct stat st;
    ok(stat(ref, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644,
       "... a regular file, mode 0644");
    {
        /* written beside it under another name, then renamed: nothing else left */
        DIR *dp = opendir(top);
        int others = 0;
        struct dirent *de;
        while (dp && (de = readdir(dp)) != NULL)
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                strcmp(de->d_name, "src") && strcmp(de->d_name, "m.ini") &&
                strcmp(de->d_name, "m2.ini") && strcmp(de->d_name, "bundle.ref"))
                diag("left: %s", de->d_name), others++;
        if (dp)
            closedir(dp);
        ok(dp && others == 0, "... and no temporary file left beside it");
    }
    struct stg_bundle b;
    stg_err_take(NULL, 0);
    rc = stg_bundle_open(&b, ref, c.m);
    stg_err_take(err, sizeof err);
    ok(rc == STG_OK && b.fd >= 0, "opened back, with its manifest (%s)", err);
    is_str(b.key, s->key, "the trailer's key is the walk's");
    ok(b.files == s->files && b.bytes == s->bytes, "... its entries and bytes too (%llu, %llu)",
       (unsigned long long)b.files, (unsigned long long)b.bytes);
    is_str(b.name, "tb", "... its name the manifest's");
    char mhex[17];
    stg_manifest_digest(c.m, mhex);
    is_str(b.manifest, mhex, "... and the manifest's digest");
    is_str(b.compress, "none", "... the compression");

    size_t len;
    unsigned char *data = slurp("bundle.ref", &len);
    size_t tlen = len >= FOOTER_LEN ? trailer_len(data, len) : 0;
    ok(len > FOOTER_LEN + 8 && memcmp(data + len - FOOTER_LEN, "STGPYBN1", 8) == 0 &&
       tlen > 8 + FOOTER_LEN && tlen < len, "the file ends with the footer \"STGPYBN1\" and the "
       "trailer's length (%zu)", tlen);
    ok(tlen < len && le(data + len - tlen, 4) == 0x184D2A5Fu &&
       le(data + len - tlen + 4, 4) == tlen - 8, "the trailer is a skippable frame: its magic "
       "and the length of what follows");
    ok(b.archive_bytes == len - tlen, "archive_bytes: every byte before the trailer (%llu)",
       (unsigned long long)b.archive_bytes);
    {
        struct stg_hash *h = stg_hash_new();
        unsigned char d[STG_DIGEST_LEN];
        stg_hash_update(h, data, len - tlen);
        stg_hash_digest(h, d);
        stg_hash_free(&h);
        ok(memcmp(d, b.digest, STG_DIGEST_LEN) == 0, "the digest: XXH3-128 of the archive "
           "bytes");
        char *json = stg_xstrndup((char *)data + len - tlen + 8, tlen - 8 - FOOTER_LEN);
        char hex[2 * STG_DIGEST_LEN + 1], got[64];
        stg_hex(d, STG_DIGEST_LEN, hex);
        stg_json_field(json, "digest", got, sizeof got);
        is_str(got, hex, "... written in the trailer as hex");
        ok(stg_json_u64(json, "format") == 1, "... format 1");
        free(json);
    }
    stg_bundle_close(&b);
    ok(b.fd == -1 && b.path == NULL, "close: fd -1, path freed");
    {
        /* what libarchive reads: the description first, then the walk */
        int n;
        char *paths = archive_paths(data, len - tlen, &n);
        ok(n == (int)s->n + 1, "libarchive reads %d entries: the description and the walk's "
           "%zu", n, s->n);
        ok(strncmp(paths, STG_BUNDLE_META "\n", strlen(STG_BUNDLE_META) + 1) == 0,
           "... the first is " STG_BUNDLE_META);
        size_t found = 0;
        for (size_t i = 0; i < s->n; i++) {
            char *line = stg_xasprintf("\n%s\n", s->v[i].path);
            char *line_dir = stg_xasprintf("\n%s/\n", s->v[i].path);
            found += strstr(paths, line) || strstr(paths, line_dir);
            free(line);
            free(line_dir);
        }
        ok(found == s->n, "... and every entry of the walk is there (%zu of %zu)", found, s->n);
        free(paths);
    }
    free(data);

    /* --- up to date --- */
    struct stat before, after;
    stat(ref, &before);
    rc = write_bundle(&c, s, "bundle.ref", "none", &written, err, sizeof err);
    stat(ref, &after);
    ok(rc == STG_OK && !written, "written again from the same walk: up to date, not written");
    ok(before.st_ino == after.st_ino && before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
       before.st_mtim.tv_nsec == after.st_mtim.tv_nsec, "... the file untouched");

    /* --- every compression --- */
    for (int i = 0; stg_compressions[i]; i++) {
        const char *z = stg_compressions[i];
        char name[64];
        snprintf(name, sizeof name, "bundle.%s", z);
        bool w = false;
        rc = write_bundle(&c, s, name, z, &w, err, sizeof err);
        char *p = at(name);
        stg_err_take(NULL, 0);
        rc = rc ? rc : stg_bundle_open(&b, p, c.m);
        stg_err_take(err, sizeof err);
        bool fields = rc == STG_OK && strcmp(b.compress, z) == 0 && strcmp(b.key, s->key) == 0;
        uint64_t ab = b.archive_bytes;
        stg_bundle_close(&b);
        size_t zlen;
        unsigned char *zd = slurp(name, &zlen);
        int n = -1;
        char *paths = zd && ab <= zlen ? archive_paths(zd, (size_t)ab, &n) : NULL;
        ok(w && fields && n == (int)s->n + 1, "compression %s: written, opened, read back by "
           "libarchive (%d entries) (%s)", z, n, err);
        free(paths);
        free(zd);
        free(p);
    }
    rc = write_bundle(&c, s, "bundle.none", "gzip", &written, err, sizeof err);
    ok(rc == STG_OK && written, "another compression at the same path: written");

    /* --- written again when it is not the same --- */
    variant("bundle.flip", flip_archive_byte);
    rc = write_bundle(&c, s, "bundle.flip", "none", &written, err, sizeof err);
    ok(rc == STG_OK && written, "one byte of the archive changed: not whole, written again");
    variant("bundle.m2", NULL);
    rc = write_bundle(&c2, s2, "bundle.m2", "none", &written, err, sizeof err);
    ok(rc == STG_OK && written, "a bundle of another manifest there: written");
    variant("bundle.gw", NULL);
    char *gw = at("bundle.gw");
    chmod(gw, 0664);
    rc = write_bundle(&c, s, "bundle.gw", "none", &written, err, sizeof err);
    ok(rc == STG_OK && written && stat(gw, &st) == 0 && (st.st_mode & 07777) == 0644,
       "a bundle that its group could write: replaced by one it cannot");
    free(gw);
    {
        char *a = at("src/pkg/a.py");
        struct stat ast;
        stat(a, &ast);
        struct timespec t[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
        utimensat(AT_FDCWD, a, t, 0);
        struct stg_walk *s3 = NULL;
        stg_walk_run(c.m, &s3);
        rc = s3 ? write_bundle(&c, s3, "bundle.ref", "none", &written, err, sizeof err) : -1;
        ok(rc == STG_OK && written && strcmp(s3->key, s->key) != 0, "a file of the tree "
           "changed: a new key, written");
        stg_err_take(NULL, 0);
        rc = stg_bundle_open(&b, ref, c.m);
        ok(rc == STG_OK && s3 && strcmp(b.key, s3->key) == 0, "... and the bundle holds the "
           "new key");
        stg_bundle_close(&b);
        /* the first walk is stale now: its file changed since */
        rc = write_bundle(&c, s, "bundle.ref", "none", &written, err, sizeof err);
        ok(rc != STG_OK && !written, "a walk older than a change of its file: not written");
        like(err, a, "... naming the file");
        stg_err_take(NULL, 0);
        rc = stg_bundle_open(&b, ref, c.m);
        ok(rc == STG_OK && s3 && strcmp(b.key, s3->key) == 0, "... and the bundle there is "
           "whole, as it was");
        stg_bundle_close(&b);
        stg_walk_free(&s3);
        /* the file as the first walk saw it: the reference for the refusals below */
        t[1] = ast.st_mtim;
        utimensat(AT_FDCWD, a, t, 0);
        rc = write_bundle(&c, s, "bundle.ref", "none", &written, err, sizeof err);
        ok(rc == STG_OK && written, "the file as the first walk saw it: written again (%s)",
           err);
        free(a);
    }

    /* --- refusals --- */
    char *want;
#define REFUSED(rel, what, desc)                                                             \
    do {                                                                                     \
        char *p_ = at(rel);                                                                  \
        want = stg_xasprintf("bundle '%s'", p_);                                             \
        alarm(30);                                                                           \
        rc = open_bundle(rel, c.m, err, sizeof err);                                         \
        alarm(0);                                                                            \
        ok(rc != STG_OK && strstr(err, want) && strstr(err, what), "%s: refused, naming it " \
           "(%s)", desc, err);                                                               \
        free(want);                                                                          \
        free(p_);                                                                            \
    } while (0)

    REFUSED("nosuch", "No such file or directory", "a bundle that is not there");
    variant("bundle.cut", cut_end);
    REFUSED("bundle.cut", "no stage-py trailer at its end", "truncated in its trailer");
    variant("bundle.short", cut_archive);
    REFUSED("bundle.short", "truncated or damaged", "its archive one byte short");
    variant("bundle.magic", bad_magic);
    REFUSED("bundle.magic", "its trailer is damaged", "the trailer's magic damaged");
    variant("bundle.tlen", bad_length);
    REFUSED("bundle.tlen", "its trailer is damaged", "the footer's length damaged");
    variant("bundle.digest", bad_digest);
    REFUSED("bundle.digest", "its trailer is damaged", "the digest in the trailer damaged");
    put("bundle.tiny", "STGPYBN1", 8, 0644);
    REFUSED("bundle.tiny", "no stage-py trailer", "a file of 8 bytes");
    variant("bundle.gw", NULL);
    gw = at("bundle.gw");
    chmod(gw, 0664);
    REFUSED("bundle.gw", "writable by group or others (mode 0664)", "writable by its group");
    chmod(gw, 0646);
    REFUSED("bundle.gw", "writable by group or others (mode 0646)", "writable by others");
    free(gw);
    char *fifo = at("bundle.fifo");
    mkfifo(fifo, 0644);
    REFUSED("bundle.fifo", "not a regular file", "a FIFO (without waiting on it)");
    free(fifo);
    char *d = at("bundle.dir");
    mkdir(d, 0755);
    REFUSED("bundle.dir", "not a regular file", "a directory");
    free(d);
    variant("bundle.copy", NULL);
    char *copy = at("bundle.copy");
    stg_err_take(NULL, 0);
    rc = open_bundle("bundle.copy", c2.m, err, sizeof err);
    want = stg_xasprintf("bundle '%s' was made from another manifest", copy);
    ok(rc != STG_OK && strstr(err, want), "opened with another manifest: refused, naming it "
       "(%s)", err);
    free(want);
    ok(open_bundle("bundle.copy", NULL, err, sizeof err) == STG_OK, "... and with none: "
       "opened (%s)", err);
    struct passwd *pw = fx_user();
    if (pw) {
        rc = chown(copy, pw->pw_uid, pw->pw_gid);
        REFUSED("bundle.copy", "someone other than root and you could change", "as root, "
                "another user's bundle");
        (void)rc;
    } else {
        skip(root ? "no user " FX_USER : "not root: cannot give a bundle to another "
             "user");
    }
    free(copy);

    stg_walk_free(&s);
    stg_walk_free(&s2);
    stg_conf_free(&c);
    stg_conf_free(&c2);
    free(ref);
    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
