/* SPDX-License-Identifier: MIT */
/*
 * bundle: write a bundle (stage-py pack) and read its trailer at job time.
 * The job's root never walks the trees of a bundle: it reads the trailer
 * (two reads at the end of the file), then streams the archive bytes as
 * they are, checking their digest on the way (pack.c).
 */
#include "config.h"

#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pack.h"
#include "pyenv.h"
#include "python.h"
#include "output.h"
#include "trust.h"
#include "util.h"

#define FRAME_MAGIC 0x184D2A5Fu     /* a skippable frame (zstd, lz4) */
#define FOOTER "STGPYBN1"
#define FOOTER_LEN 16
#define TRAILER_MAX (256 << 10)
#define MANIFEST_TEXT_MAX (64 << 10)  /* a manifest that a bundle carries */

static void put_le(unsigned char *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static bool unhex(const char *hex, unsigned char *out, size_t len)
{
    if (strlen(hex) != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (unsigned char)v;
    }
    return true;
}

static int bad(struct stg_bundle *b, const char *why)
{
    return stg_err_set(STG_EFAIL, "bundle '%s': %s", b->path, why);
}

static bool pread_all(int fd, void *buf, size_t len, off_t off)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
        off += r;
    }
    return true;
}

/* Parse the trailer's JSON into b. */
static int parse_trailer(struct stg_bundle *b, const char *json)
{
    char v[512];
    stg_json_field(json, "format", v, sizeof v);
    if (strcmp(v, "1") != 0)
        return bad(b, "made by another version of stage-py (trailer format not 1): pack it "
                      "again");
    stg_json_field(json, "name", b->name, sizeof b->name);
    stg_json_field(json, "key", b->key, sizeof b->key);
    stg_json_field(json, "manifest", b->manifest, sizeof b->manifest);
    stg_json_field(json, "compress", b->compress, sizeof b->compress);
    stg_json_field(json, "python", b->python, sizeof b->python);
    stg_json_field(json, "python_version", b->python_version, sizeof b->python_version);
    stg_json_field(json, "env", b->env, sizeof b->env);
    stg_json_field(json, "trees_key", b->trees_key, sizeof b->trees_key);
    /* the manifest, as text: unescaped, never longer than its JSON */
    char *text = stg_xmalloc(strlen(json) + 1);
    stg_json_field(json, "manifest_text", text, strlen(json) + 1);
    free(b->manifest_text);
    b->manifest_text = text[0] ? stg_xstrdup(text) : NULL;
    free(text);
    b->archive_bytes = stg_json_u64(json, "archive_bytes");
    b->files = stg_json_u64(json, "files");
    b->bytes = stg_json_u64(json, "bytes");
    stg_json_field(json, "digest", v, sizeof v);
    if (!unhex(v, b->digest, STG_DIGEST_LEN) || strlen(b->key) != 16 || !b->name[0])
        return bad(b, "its trailer is damaged");
    return STG_OK;
}

int stg_bundle_open(struct stg_bundle *b, const char *path, const struct stg_manifest *m)
{
    memset(b, 0, sizeof *b);
    b->path = stg_xstrdup(path);
    b->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);     /* a FIFO: refused below */
    if (b->fd < 0)
        return stg_err_set(STG_EFAIL, "cannot open bundle '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(b->fd, &st) < 0)
        return stg_err_set(STG_EFAIL, "cannot stat bundle '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bad(b, "not a regular file");
    /* Whoever can write it decides what every rank imports. */
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        char why[128];
        snprintf(why, sizeof why, "refusing it: writable by group or others (mode %04o)",
                 (unsigned)(st.st_mode & 07777));
        return bad(b, why);
    }
    /* ... nor whoever owns it or a directory above it */
    struct stg_trust tr;
    if (stg_trust_opened(path, &st, &tr))
        return bad(b, "it changed while it was being read");
    if (!tr.ok) {
        char why[STG_MSG_MAX + 64];
        snprintf(why, sizeof why, "refusing it: %s; someone other than root and you could "
                 "change what it holds (see SECURITY in stage-py(1))", tr.why);
        return bad(b, why);
    }
    unsigned char foot[FOOTER_LEN];
    if (st.st_size < FOOTER_LEN + 8 || !pread_all(b->fd, foot, FOOTER_LEN, st.st_size - FOOTER_LEN) ||
        memcmp(foot, FOOTER, 8) != 0)
        return bad(b, "no stage-py trailer at its end: not a bundle, or truncated (pack it "
                      "again)");
    uint64_t tlen = get_le(foot + 8, 8);
    if (tlen < 8 + FOOTER_LEN || tlen > TRAILER_MAX || tlen > (uint64_t)st.st_size)
        return bad(b, "its trailer is damaged");
    unsigned char *t = stg_xmalloc(tlen + 1);
    int rc = STG_OK;
    if (!pread_all(b->fd, t, tlen, st.st_size - (off_t)tlen) || get_le(t, 4) != FRAME_MAGIC ||
        get_le(t + 4, 4) != tlen - 8) {
        rc = bad(b, "its trailer is damaged");
    } else {
        t[tlen - FOOTER_LEN] = '\0';
        rc = parse_trailer(b, (char *)t + 8);
    }
    free(t);
    if (rc)
        return rc;
    if (b->archive_bytes != (uint64_t)st.st_size - tlen) {
        char why[160];
        snprintf(why, sizeof why, "it holds %llu archive bytes, its trailer says %llu: "
                 "truncated or damaged", (unsigned long long)(st.st_size - (off_t)tlen),
                 (unsigned long long)b->archive_bytes);
        return bad(b, why);
    }
    if (m) {
        char mhex[17];
        stg_manifest_digest(m, mhex);
        bool same = strcmp(b->name, m->name) == 0 && strcmp(b->manifest, mhex) == 0;
        /* the manifest it carries, read back, is not the one it records */
        if (!same && m->text && b->manifest_text && strcmp(m->text, b->manifest_text) == 0)
            return bad(b, "its trailer is damaged (the manifest it carries is not the one it "
                          "records): pack it again");
        if (!same)
            return stg_err_set(STG_EFAIL, "bundle '%s' was made from another manifest than "
                               "'%s' (or from an earlier version of it): pack it again", path,
                               m->path);
    }
    return STG_OK;
}

int stg_bundle_check_python(const struct stg_bundle *b, const struct stg_manifest *m)
{
    if (!b->python[0] || !b->python_version[0])
        return STG_OK;
    char now[32];
    int rc = stg_python_version(b->python, now, sizeof now);
    if (rc)
        return rc;
    if (strcmp(now, b->python_version) == 0)
        return STG_OK;
    /* A standard library is a tree whose source has a "pythonX.Y" part. */
    for (size_t i = 0; i < m->ntrees; i++) {
        const char *src = m->trees[i].source;
        for (const char *p = strstr(src, "/python"); p; p = strstr(p + 1, "/python")) {
            unsigned x, y;
            int end = 0;
            char v[32];
            if (sscanf(p, "/python%u.%u%n", &x, &y, &end) == 2 && (p[end] == '/' || !p[end]) &&
                snprintf(v, sizeof v, "%u.%u", x, y) > 0 && strcmp(v, now) != 0)
                return stg_err_set(STG_EFAIL, "bundle '%s' stages the standard library of "
                                   "Python %u.%u (tree '%s': %s), but '%s' is Python %s now: "
                                   "pack it again", b->path, x, y, m->trees[i].name, src,
                                   b->python, now);
        }
    }
    stg_log_warn("bundle '%s': its bytecode is for Python %s, '%s' is Python %s now: the "
                 "ranks will compile in memory (pack it again)", b->path, b->python_version,
                 b->python, now);
    return STG_OK;
}

void stg_bundle_close(struct stg_bundle *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    free(b->path);
    b->path = NULL;
    free(b->manifest_text);
    b->manifest_text = NULL;
}

/* Does the archive of b hash to its recorded digest?  (Reads it all.) */
static bool archive_whole(struct stg_bundle *b)
{
    struct stg_hash *h = stg_hash_new();
    unsigned char *buf = stg_xmalloc(1 << 20);
    uint64_t off = 0;
    bool ok = true;
    while (ok && off < b->archive_bytes) {
        size_t n = b->archive_bytes - off < (1 << 20) ? (size_t)(b->archive_bytes - off) : 1 << 20;
        ok = pread_all(b->fd, buf, n, (off_t)off);
        stg_hash_update(h, buf, n);
        off += n;
    }
    unsigned char d[STG_DIGEST_LEN];
    stg_hash_digest(h, d);
    stg_hash_free(&h);
    free(buf);
    return ok && memcmp(d, b->digest, STG_DIGEST_LEN) == 0;
}

struct out {
    int fd;
    struct stg_hash *h;
    uint64_t bytes;
};

static la_ssize_t write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct out *o = ctx;
    const unsigned char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(o->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            archive_set_error(a, errno, "%s", strerror(errno));
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    stg_hash_update(o->h, buf, len);
    o->bytes += len;
    return (la_ssize_t)len;
}

/* The JSON that both the first entry and the trailer start with. */
static char *describe(const struct stg_manifest *m, const struct stg_walk *s,
                      const char *compress, const char *python_version)
{
    char mhex[17];
    stg_manifest_digest(m, mhex);
    const char *python = m->pyenv ? m->pyenv->interpreter : m->python;
    char *py = stg_json_quote(python ? python : "");
    char *pv = stg_json_quote(python_version ? python_version : "");
    /* what a job needs to stage the bundle without the manifest file */
    char *mt = stg_json_quote(m->text ? m->text : "");
    /* env: the [python] section's kind, for the settings of a job that
     * streams the bundle without looking at the prefix */
    char *text = stg_xasprintf("{\n  \"format\": 1,\n  \"name\": \"%s\",\n  \"key\": \"%s\",\n"
                               "  \"manifest\": \"%s\",\n  \"compress\": \"%s\",\n"
                               "  \"python\": %s,\n  \"python_version\": %s,\n"
                               "  \"env\": \"%s\",\n  \"trees_key\": \"%s\",\n"
                               "  \"manifest_text\": %s,\n"
                               "  \"files\": %llu,\n  \"bytes\": %llu", m->name, s->key, mhex,
                               compress, py, pv,
                               m->pyenv ? stg_pyenv_kind_name(m->pyenv->kind) : "",
                               s->trees_key[0] ? s->trees_key : s->key, mt,
                               (unsigned long long)s->files, (unsigned long long)s->bytes);
    free(py);
    free(pv);
    free(mt);
    return text;
}

/* The archive: the description, then every entry of s. */
static int write_archive(struct out *o, const struct stg_manifest *m, const struct stg_walk *s,
                         const char *compress, const char *desc, const char *path)
{
    struct archive *a = archive_write_new();
    int rc = STG_OK;
    /* bytes_in_last_block 1: no zeros after a compressed stream (they
     * would not decompress); an uncompressed archive ends with its two
     * zero blocks all the same. */
    if (archive_write_set_format_pax(a) != ARCHIVE_OK || stg_pack_add_filter(a, compress) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, o, NULL, write_cb, NULL, NULL) != ARCHIVE_OK) {
        rc = stg_err_set(STG_EFAIL, "pack '%s': %s", path, archive_error_string(a));
    } else {
        /* first entry: what the bundle holds, for people and tools (bsdtar -xOf) */
        char *trees = stg_xstrdup("");
        for (size_t i = 0; i < m->ntrees; i++) {
            /* a [python] section's trees are named after their directory */
            char *name = stg_json_quote(m->trees[i].name);
            char *src = stg_json_quote(m->trees[i].source);
            char *t = stg_xasprintf("%s%s\n    {\"name\": %s, \"source\": %s}", trees,
                                    i ? "," : "", name, src);
            free(name);
            free(src);
            free(trees);
            trees = t;
        }
        char *meta = stg_xasprintf("%s,\n  \"trees\": [%s\n  ]\n}\n", desc, trees);
        free(trees);
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, STG_BUNDLE_META);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_size(ae, (la_int64_t)strlen(meta));
        archive_entry_set_mtime(ae, time(NULL), 0);
        if (archive_write_header(a, ae) != ARCHIVE_OK ||
            archive_write_data(a, meta, strlen(meta)) != (la_ssize_t)strlen(meta))
            rc = stg_err_set(STG_EFAIL, "pack '%s': %s", path, archive_error_string(a));
        archive_entry_free(ae);
        free(meta);
        if (rc == STG_OK)
            rc = stg_pack_entries(a, s);
        if (archive_write_close(a) != ARCHIVE_OK && rc == STG_OK)
            rc = stg_err_set(STG_EFAIL, "pack '%s': %s", path, archive_error_string(a));
    }
    archive_write_free(a);
    return rc;
}

int stg_bundle_write(const struct stg_manifest *m, const struct stg_walk *s, const char *path,
                     const char *what, const char *compress, const char *python_version,
                     bool *written)
{
    *written = false;
    struct stg_bundle old;
    if (access(path, F_OK) == 0) {
        bool had = stg_err_status() != STG_OK;
        bool same = stg_bundle_open(&old, path, m) == STG_OK && strcmp(old.key, s->key) == 0 &&
                    strcmp(old.compress, compress) == 0 && archive_whole(&old);
        stg_bundle_close(&old);
        if (!had)
            stg_err_take(NULL, 0);  /* whatever is wrong with it, a new one replaces it */
        if (same)
            return STG_OK;
    }
    if (m->text && strlen(m->text) > MANIFEST_TEXT_MAX)
        return stg_err_set(STG_EUSAGE, "pack: manifest '%s' is %zu bytes long: a bundle carries "
                           "at most %d", m->path, strlen(m->text), MANIFEST_TEXT_MAX);
    char *abs = stg_path_absolute(path);
    struct stg_output out;
    struct out o = {.fd = -1};
    /* 0644 whatever the umask: a bundle that others can write is refused */
    if (!abs)
        return stg_err_set(STG_EFAIL, "pack: the bundle's name is empty");
    int rc = stg_output_open(&out, abs, 0644, what);
    free(abs);
    if (rc)
        return rc;
    o.fd = out.fd;
    o.h = stg_hash_new();
    char *desc = describe(m, s, compress, python_version);
    rc = write_archive(&o, m, s, compress, desc, path);
    if (rc == STG_OK) {
        unsigned char d[STG_DIGEST_LEN];
        char hex[2 * STG_DIGEST_LEN + 1];
        stg_hash_digest(o.h, d);
        stg_hex(d, STG_DIGEST_LEN, hex);
        char *json = stg_xasprintf("%s,\n  \"archive_bytes\": %llu,\n  \"digest\": \"%s\"\n}\n",
                                   desc, (unsigned long long)o.bytes, hex);
        size_t jlen = strlen(json);
        size_t tlen = 8 + jlen + FOOTER_LEN;
        unsigned char *t = stg_xmalloc(tlen);
        put_le(t, FRAME_MAGIC, 4);
        put_le(t + 4, tlen - 8, 4);
        memcpy(t + 8, json, jlen);
        memcpy(t + 8 + jlen, FOOTER, 8);
        put_le(t + 8 + jlen + 8, tlen, 8);
        if (tlen > TRAILER_MAX || write(o.fd, t, tlen) != (ssize_t)tlen)
            rc = stg_err_set(STG_EFAIL, "cannot write '%s': %s", path,
                             tlen > TRAILER_MAX ? "trailer too long" : strerror(errno));
        free(t);
        free(json);
    }
    free(desc);
    stg_hash_free(&o.h);
    /* A job that opens the bundle meanwhile reads the old or the new one. */
    if (rc != STG_OK) {
        stg_output_abort(&out);
        return rc;
    }
    rc = stg_output_commit(&out);
    *written = rc == STG_OK;
    return rc;
}
