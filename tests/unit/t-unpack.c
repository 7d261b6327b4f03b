/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: the checks of an entry's name and a link's target; hostile
 * archives, built here with libarchive, fed to the unpack thread as the
 * broadcast would: every one is refused and nothing is written outside the
 * copy.
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk.h"
#include "fixture.h"
#include "log.h"
#include "tap.h"
#include "unpack.h"
#include "util.h"

enum { FILE_, DIR_, SYMLINK, HARDLINK, CHARDEV };

struct ent {
    int kind;
    const char *path;
    const char *target;     /* link target */
};

/* A pax archive of the entries, in memory.  OUT len. */
static unsigned char *build(const struct ent *e, size_t n, size_t *len)
{
    size_t cap = 1 << 20;
    unsigned char *buf = stg_xmalloc(cap);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax(a);
    archive_write_set_bytes_per_block(a, 0);
    archive_write_open_memory(a, buf, cap, len);
    struct archive_entry *ae = archive_entry_new();
    for (size_t i = 0; i < n; i++) {
        archive_entry_clear(ae);
        archive_entry_set_pathname(ae, e[i].path);
        archive_entry_set_perm(ae, 0644);
        switch (e[i].kind) {
        case FILE_:
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_size(ae, 5);
            break;
        case DIR_:
            archive_entry_set_filetype(ae, AE_IFDIR);
            archive_entry_set_perm(ae, 0755);
            break;
        case SYMLINK:
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_symlink(ae, e[i].target);
            break;
        case HARDLINK:
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_hardlink(ae, e[i].target);
            break;
        case CHARDEV:
            archive_entry_set_filetype(ae, AE_IFCHR);
            archive_entry_set_rdev(ae, 0x0103);
            break;
        }
        archive_write_header(a, ae);
        if (e[i].kind == FILE_)
            archive_write_data(a, "evil\n", 5);
    }
    archive_entry_free(ae);
    archive_write_close(a);
    archive_write_free(a);
    return buf;
}

/* Feed the archive to the unpack thread in 512-byte chunks.  Returns its
 * status; OUT err: the recorded error. */
static int unpack_threads = 1;

static int unpack_in(size_t chunk, const unsigned char *data, size_t len, char *err,
                     size_t errlen)
{
    struct stg_chunk_pool pool;
    struct stg_chunkq in;
    stg_chunk_pool_init(&pool, 4, chunk);
    stg_chunkq_init(&in, pool.n);
    stg_err_take(NULL, 0);
    struct stg_unpack *u;
    stg_unpack_start(&u, "copy", NULL, 1 << 20, unpack_threads, &in, &pool.free);
    size_t off = 0;
    do {
        struct stg_chunk *c = stg_chunkq_pop(&pool.free);
        size_t n = len - off < c->cap ? len - off : c->cap;
        memcpy(stg_chunk_data(c), data + off, n);
        off += n;
        stg_chunk_hdr(c)->len = (uint32_t)n;
        stg_chunk_hdr(c)->flags = off == len ? STG_CHUNK_LAST : 0;
        stg_chunkq_push(&in, c);
    } while (off < len);
    int rc = stg_unpack_join(&u, NULL);
    stg_err_get(err, errlen);
    stg_chunkq_destroy(&in);
    stg_chunk_pool_destroy(&pool);
    return rc;
}

/* In 512-byte chunks: entries and headers span many. */
static int unpack(const unsigned char *data, size_t len, char *err, size_t errlen)
{
    return unpack_in(512, data, len, err, errlen);
}

static char top[4096], outside[4200];

static void refused(const struct ent *e, size_t n, const char *want, const char *desc)
{
    size_t len;
    unsigned char *data = build(e, n, &len);
    char err[1024];
    stg_rm_tree_at(AT_FDCWD, "copy");
    mkdir("copy", 0700);
    int rc = unpack(data, len, err, sizeof err);
    free(data);
    ok(rc != STG_OK, "%s: refused", desc);
    like(err, want, "%s: says why", desc);
    ok(fx_entries(outside, NULL) == 0, "%s: nothing written outside the copy", desc);
    struct stat st;
    ok(lstat("evil", &st) < 0 && lstat("/tmp/stage-py-evil", &st) < 0,
       "%s: nothing written beside it", desc);
}

/* Every case, with the threads that write the files. */
static void cases(void)
{
    /* A well-formed archive goes through. */
    const struct ent good[] = {
        {DIR_, "usr", NULL}, {FILE_, "usr/a.py", NULL}, {SYMLINK, "usr/l", "a.py"},
        {HARDLINK, "usr/h", "usr/a.py"},
    };
    size_t len;
    unsigned char *data = build(good, 4, &len);
    char err[1024];
    mkdir("copy", 0700);
    int rc = unpack(data, len, err, sizeof err);
    free(data);
    if (!ok(rc == STG_OK, "a well-formed archive unpacks"))
        diag("%s", err);
    struct stat a, h;
    ok(stat("copy/usr/a.py", &a) == 0 && stat("copy/usr/h", &h) == 0 && a.st_ino == h.st_ino,
       "... with its hard link");

    char abs[4300], through[4300], escape[256];
    snprintf(abs, sizeof abs, "%s/evil", outside);
    const struct ent dotdot[] = {{FILE_, "../evil", NULL}};
    refused(dotdot, 1, "refusing entry '../evil'", "a path with '..'");
    const struct ent absolute[] = {{FILE_, abs, NULL}};
    refused(absolute, 1, "not a relative path inside the copy", "an absolute path");
    const struct ent deep[] = {{DIR_, "usr", NULL}, {FILE_, "usr/../../../evil", NULL}};
    refused(deep, 2, "refusing entry 'usr/../../../evil'", "'..' in the middle");
    snprintf(through, sizeof through, "%s", outside);
    const struct ent via_link[] = {{SYMLINK, "lnk", through}, {FILE_, "lnk/evil", NULL}};
    refused(via_link, 2, "refusing symbolic link 'lnk'", "writing through an absolute link");
    const struct ent climb[] = {
        {DIR_, "a", NULL}, {SYMLINK, "a/up", "../../outside"}, {FILE_, "a/up/evil", NULL},
    };
    refused(climb, 3, "it leads outside the copy", "a link that climbs out of the copy");
    snprintf(escape, sizeof escape, "../../outside/evil");
    const struct ent hard[] = {{HARDLINK, "h", escape}};
    refused(hard, 1, "refusing hard link 'h'", "a hard link to outside");
    const struct ent dev[] = {{CHARDEV, "tty", NULL}};
    refused(dev, 1, "not a file, directory or link", "a device node");
    /* A link inside the copy, then an entry written through it. */
    const struct ent inner[] = {
        {DIR_, "d", NULL}, {SYMLINK, "s", "d"}, {FILE_, "s/evil", NULL},
    };
    size_t ilen;
    unsigned char *idata = build(inner, 3, &ilen);
    stg_rm_tree_at(AT_FDCWD, "copy");
    mkdir("copy", 0700);
    rc = unpack(idata, ilen, err, sizeof err);
    free(idata);
    ok(rc != STG_OK, "writing through a link inside the copy is refused");
    like(err, "refusing entry 's/evil': it would be written through the symbolic link 's'",
         "... naming the entry and the link");
    ok(fx_entries("copy", NULL) == 2, "... which alone is not written");

    /* ".." after a link: "s" leads to the copy's root, so "s/.." would
     * leave it, whatever the order of the two links. */
    const struct ent dot_up[] = {{SYMLINK, "s", "."}, {SYMLINK, "l", "s/.."}};
    refused(dot_up, 2, "refusing symbolic link 'l' -> 's/..'", "'..' after a link's name");
    const struct ent up_dot[] = {{SYMLINK, "l", "s/../x"}, {SYMLINK, "s", "."}};
    refused(up_dot, 2, "refusing symbolic link 'l' -> 's/../x'", "... made before that link");
    /* A hard link to a link is a link of its own, elsewhere: its target
     * would then lead elsewhere too. */
    const struct ent hard_sym[] = {
        {DIR_, "a", NULL}, {DIR_, "a/b", NULL}, {SYMLINK, "a/b/l", "../../x"},
        {HARDLINK, "h", "a/b/l"},
    };
    refused(hard_sym, 4, "refusing hard link 'h' to 'a/b/l'", "a hard link to a link");
    const struct ent dir_over[] = {{DIR_, "d", NULL}, {SYMLINK, "s", "d"}, {DIR_, "s", NULL}};
    refused(dir_over, 3, "through the symbolic link 's'", "a directory entry over a link");
    const struct ent dotted[] = {{DIR_, "d", NULL}, {FILE_, "d/./evil", NULL}};
    refused(dotted, 2, "refusing entry 'd/./evil'", "a path with '.'");
    /* No entry stands where an earlier one stands, or below a file. */
    const struct ent twice[] = {{FILE_, "f", NULL}, {FILE_, "f", NULL}};
    refused(twice, 2, "refusing entry 'f': 'f' is already in the archive", "a file twice");
    const struct ent over_dir[] = {{DIR_, "d", NULL}, {FILE_, "d", NULL}};
    refused(over_dir, 2, "refusing entry 'd': 'd' is already in the archive", "a file over a directory");
    const struct ent below[] = {{FILE_, "f", NULL}, {FILE_, "f/evil", NULL}};
    refused(below, 2, "'f' is already in the archive, not as a directory", "an entry below a file");
    const struct ent early[] = {{HARDLINK, "h", "f"}, {FILE_, "f", NULL}};
    refused(early, 2, "refusing hard link 'h' to 'f'", "a hard link before its file");
    const struct ent dir_twice[] = {{DIR_, "d", NULL}, {DIR_, "d", NULL}, {FILE_, "d/f", NULL}};
    data = build(dir_twice, 3, &len);
    stg_rm_tree_at(AT_FDCWD, "copy");
    mkdir("copy", 0700);
    rc = unpack(data, len, err, sizeof err);
    free(data);
    if (!ok(rc == STG_OK, "a directory twice is no harm"))
        diag("%s", err);

    /* Runs of zeros stay holes: 1 MiB of them, data, then 1 MiB again. */
    {
        size_t cap = 4u << 20, slen;
        unsigned char *sbuf = stg_xmalloc(cap), *zeros = stg_xcalloc(1, 1u << 20);
        struct archive *aw = archive_write_new();
        archive_write_set_format_pax(aw);
        archive_write_set_bytes_per_block(aw, 0);
        archive_write_open_memory(aw, sbuf, cap, &slen);
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, "sparse");
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_size(ae, (2 << 20) + 5);
        archive_write_header(aw, ae);
        archive_write_data(aw, zeros, 1u << 20);
        archive_write_data(aw, "data\n", 5);
        archive_write_data(aw, zeros, 1u << 20);
        archive_entry_free(ae);
        archive_write_close(aw);
        archive_write_free(aw);
        stg_rm_tree_at(AT_FDCWD, "copy");
        mkdir("copy", 0700);
        rc = unpack_in(4u << 20, sbuf, slen, err, sizeof err);
        free(sbuf);
        ok(rc == STG_OK, "a file with runs of zeros unpacks");
        struct stat st;
        char got[6] = "";
        int fd = open("copy/sparse", O_RDONLY);
        ok(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == (2 << 20) + 5,
           "... to its whole size");
        ok(fd >= 0 && pread(fd, got, 5, 1 << 20) == 5 && memcmp(got, "data\n", 5) == 0,
           "... with its data in place");
        unsigned char *back = stg_xmalloc(2u << 20);
        ok(fd >= 0 && pread(fd, back, 1u << 20, 0) == 1 << 20 &&
               memcmp(back, zeros, 1u << 20) == 0,
           "... and zeros before it");
        ok(fd >= 0 && (long long)st.st_blocks * 512 <= 2 * 64 * 1024,
           "... which take no room: %lld bytes allocated for %lld", (long long)st.st_blocks * 512,
           (long long)st.st_size);
        if (fd >= 0)
            close(fd);
        free(back);
        free(zeros);
    }

    /* Damaged data: a truncated archive. */
    data = build(good, 4, &len);
    stg_rm_tree_at(AT_FDCWD, "copy");
    mkdir("copy", 0700);
    rc = unpack(data, 700, err, sizeof err);
    free(data);
    ok(rc != STG_OK, "a truncated archive fails");
    like(err, "damaged archive", "... as damaged");
}

/* The pure checks of an entry's name and a link's target. */
static void safe_paths(void)
{
    ok(stg_unpack_safe_path("usr/lib/x.py"), "a relative entry is safe");
    ok(!stg_unpack_safe_path("/etc/passwd"), "an absolute entry is not");
    ok(!stg_unpack_safe_path("usr/../../etc"), "'..' is not");
    ok(!stg_unpack_safe_path(""), "an empty name is not");
    ok(stg_unpack_safe_path("usr/lib/"), "a directory's trailing '/' is safe");
    ok(!stg_unpack_safe_path("usr//lib") && !stg_unpack_safe_path("./usr") &&
           !stg_unpack_safe_path("usr/./lib"),
       "an empty or '.' component is not (one spelling per path)");
    ok(stg_unpack_safe_symlink("usr/lib/a/l", "../b/x"), "a link inside the copy is safe");
    ok(stg_unpack_safe_symlink("usr/lib/l", "../../x"), "... up to its root");
    ok(!stg_unpack_safe_symlink("usr/lib/l", "../../../x"), "a link above the copy is not");
    ok(!stg_unpack_safe_symlink("usr/l", "/etc/passwd"), "an absolute link is not");
    ok(!stg_unpack_safe_symlink("usr/l", "a/../../.."), "a link that climbs out later is not");
    ok(!stg_unpack_safe_symlink("usr/lib/l", "a/../b"),
       "'..' after a name is not (the name may be a link)");
    ok(stg_unpack_safe_symlink("usr/lib/l", "./../b/./c"), "'.' anywhere is");
}

int main(void)
{
    safe_paths();
    if (!fx_tmpdir(top, sizeof top, "t-unpack"))
        return 1;
    snprintf(outside, sizeof outside, "%s/outside", top);
    mkdir(outside, 0700);
    char work[4200];
    snprintf(work, sizeof work, "%s/work", top);
    mkdir(work, 0700);
    if (chdir(work) < 0)
        return 1;
    /* The thread that reads the stream writes every file; then one or two
     * writer threads beside it take the smaller ones. */
    for (unpack_threads = 1; unpack_threads <= 3; unpack_threads++) {
        diag("unpack threads: %d", unpack_threads);
        cases();
    }
    if (chdir("/") == 0)
        stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
