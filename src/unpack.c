/* SPDX-License-Identifier: MIT */
/*
 * unpack: chunks -> libarchive reader -> libarchive disk writer.
 *
 * The archive is untrusted input (it crossed the network, and a leader
 * cannot tell what produced it):
 * besides libarchive's secure flags against ".." and absolute paths, every
 * entry must be a directory, regular file, hard link or symbolic link, a
 * symbolic link may not point outside the copy, and no entry may be
 * written through a symbolic link.  That last check is done here, against
 * the links this archive made: the copy starts as an empty directory of
 * the user's own, so they are the only links in it.  (libarchive's
 * ARCHIVE_EXTRACT_SECURE_SYMLINKS checks every component of every path on
 * disk instead: an open and a stat per component, which on a deep tree of
 * small files cost more than the writing.)  Ownership is never restored:
 * the copy belongs to the user who stages it.
 *
 * The disk writer reports a failed write(2) (ENOSPC) and a mode or time it
 * could not set as ARCHIVE_WARN: both leave a copy that is not what was
 * sent, so anything but ARCHIVE_OK from the writer fails the entry.
 */
#include "config.h"

#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "log.h"
#include "relocate.h"
#include "util.h"

struct stg_unpack {
    pthread_t thread;
    struct stg_chunkq *inq, *freeq;
    struct stg_chunk *held;     /* the chunk libarchive is reading from */
    char *prefix;
    char *root;                 /* relocate for this final place; NULL: do not */
    struct stg_strv reloc;      /* the files to relocate (archive paths) */
    struct stg_strv links;      /* the symbolic links made so far (archive paths) */
    struct stg_strset linkset;  /* the same, to look up (borrows from links) */
    uint64_t need;
    atomic_bool cancel;
    bool eos;                   /* the last chunk has been taken */
    bool aborted;               /* the stream was stopped */
    int status;
    struct stg_unpack_result r;
};

bool stg_unpack_safe_path(const char *path)
{
    if (!path || !*path || path[0] == '/')
        return false;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

bool stg_unpack_safe_symlink(const char *path, const char *target)
{
    if (!target || !*target || target[0] == '/')
        return false;
    /* Depth of the link's directory below the copy's root. */
    long depth = 0;
    for (const char *p = path; (p = strchr(p, '/')) != NULL && p[1]; p++)
        depth++;
    /* ".." only before every name: after a name, which may be a link
     * itself, ".." need not lead where the name's parent is. */
    bool named = false;
    for (const char *p = target; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (named || --depth < 0)
                return false;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            named = true;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

/* If path is a link that this archive made, or lies below one: the
 * length of that link's path (a prefix of path); else 0.  path is one that
 * stg_unpack_safe_path() accepts, so each link has one spelling. */
static size_t through_link(const struct stg_unpack *u, const char *path)
{
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    for (size_t i = 1; i <= len && u->linkset.n > 0; i++)
        if ((i == len || path[i] == '/') && stg_strset_has(&u->linkset, path, i))
            return i;
    return 0;
}

static void release_held(struct stg_unpack *u)
{
    if (u->held) {
        stg_chunkq_push(u->freeq, u->held);
        u->held = NULL;
    }
}

/* libarchive's read callback: the next chunk's data, straight from the buffer. */
static la_ssize_t read_cb(struct archive *a, void *ctx, const void **buf)
{
    struct stg_unpack *u = ctx;
    release_held(u);   /* libarchive is done with the previous block */
    if (u->eos)
        return 0;
    struct stg_chunk *c = stg_chunkq_pop(u->inq);
    struct stg_chunk_hdr *h = stg_chunk_hdr(c);
    if (h->flags & STG_CHUNK_LAST)
        u->eos = true;
    if ((h->flags & STG_CHUNK_ABORT) || atomic_load(&u->cancel)) {
        u->aborted = true;
        stg_chunkq_push(u->freeq, c);
        archive_set_error(a, ECANCELED, "the stream was stopped");
        return -1;
    }
    u->held = c;
    *buf = stg_chunk_data(c);
    return (la_ssize_t)h->len;
}

static int entry_error(struct stg_unpack *u, struct archive *w, const char *path)
{
    int e = archive_errno(w);
    const char *why = e > 0 ? strerror(e) : archive_error_string(w);
    if (e == ENOSPC || e == EDQUOT) {
        /* Say how far off it was: the whole copy against what is left. */
        struct statvfs vfs;
        char need[32], avail[32];
        if (statvfs(u->prefix, &vfs) == 0)
            return stg_err_set(STG_EFAIL, "unpack '/%s': %s (needs %s, %s free)", path, why,
                               stg_format_size(u->need, need, sizeof need),
                               stg_format_size((uint64_t)vfs.f_bavail * vfs.f_frsize, avail,
                                               sizeof avail));
    }
    return stg_err_set(STG_EFAIL, "unpack '/%s': %s", path, why ? why : "unknown error");
}

/* Check an entry and move it below the prefix.  Returns STG_OK or an error. */
static int place_entry(struct stg_unpack *u, struct archive_entry *ae)
{
    const char *path = archive_entry_pathname(ae);
    if (!stg_unpack_safe_path(path))
        return stg_err_set(STG_EFAIL, "unpack: refusing entry '%s': not a relative path "
                           "inside the copy", path ? path : "");
    size_t link = through_link(u, path);
    if (link)
        return stg_err_set(STG_EFAIL, "unpack: refusing entry '%s': it would be written "
                           "through the symbolic link '%.*s'", path, (int)link, path);
    const char *hard = archive_entry_hardlink(ae);
    mode_t type = archive_entry_filetype(ae);
    if (hard) {
        if (!stg_unpack_safe_path(hard) || through_link(u, hard))
            return stg_err_set(STG_EFAIL, "unpack: refusing hard link '%s' to '%s'", path, hard);
        char *h = stg_xasprintf("%s/%s", u->prefix, hard);
        archive_entry_set_hardlink(ae, h);
        free(h);
    } else if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(ae);
        if (!stg_unpack_safe_symlink(path, target))
            return stg_err_set(STG_EFAIL, "unpack: refusing symbolic link '%s' -> '%s': it "
                               "leads outside the copy", path, target ? target : "");
    } else if (type != AE_IFREG && type != AE_IFDIR) {
        return stg_err_set(STG_EFAIL, "unpack: refusing '%s': not a file, directory or link",
                           path);
    }
    char *p = stg_xasprintf("%s/%s", u->prefix, path);
    archive_entry_set_pathname(ae, p);
    free(p);
    return STG_OK;
}

/*
 * Write a block of a file's data, leaving out the zeros of every aligned
 * HOLE-sized window that holds nothing else (clipped to the block, whose
 * edges fall anywhere): the file is new, so what is not written reads as
 * zeros, and stays a hole, which costs no memory in tmpfs.  (libarchive's
 * ARCHIVE_EXTRACT_SPARSE does this per 4 KiB block, with a write(2) for
 * each: ten times the calls.)  Returns libarchive's status.
 */
#define HOLE (64 * 1024)

static bool all_zero(const unsigned char *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

static int write_data(struct archive *w, const void *buf, size_t size, int64_t off)
{
    const unsigned char *b = buf;
    size_t from = 0;    /* what is left to write starts here */
    for (size_t i = 0; i < size;) {
        size_t end = i + (HOLE - (size_t)((off + (int64_t)i) % HOLE));
        if (end > size)
            end = size;
        if (all_zero(b + i, end - i)) {
            if (i > from &&
                archive_write_data_block(w, b + from, i - from, off + (int64_t)from) != ARCHIVE_OK)
                return ARCHIVE_FAILED;
            from = end;
        }
        i = end;
    }
    if (size > from)
        return archive_write_data_block(w, b + from, size - from, off + (int64_t)from);
    return ARCHIVE_OK;
}

static int unpack_entries(struct stg_unpack *u, struct archive *a, struct archive *w)
{
    struct archive_entry *ae;
    for (;;) {
        int r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF)
            return STG_OK;
        if (r < ARCHIVE_WARN) {
            if (u->aborted)
                return STG_EFAIL;   /* the root's own error says why */
            return stg_err_set(STG_EFAIL, "unpack: damaged archive: %s",
                               archive_error_string(a));
        }
        if (atomic_load(&u->cancel))
            return STG_EFAIL;   /* another node failed: stop writing */
        if (u->r.entries == 0 && archive_entry_pathname(ae) &&
            strcmp(archive_entry_pathname(ae), STG_BUNDLE_META) == 0) {
            /* a bundle's description of itself: not part of the copy */
            archive_read_data_skip(a);
            continue;
        }
        char *orig = stg_xstrdup(archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "");
        int rc = place_entry(u, ae);
        if (rc == STG_OK && archive_write_header(w, ae) != ARCHIVE_OK)
            rc = entry_error(u, w, orig);
        while (rc == STG_OK && archive_entry_size(ae) > 0) {
            const void *buf;
            size_t size;
            la_int64_t off;
            r = archive_read_data_block(a, &buf, &size, &off);
            if (r == ARCHIVE_EOF)
                break;
            if (r < ARCHIVE_WARN) {
                rc = u->aborted ? STG_EFAIL
                                : stg_err_set(STG_EFAIL, "unpack '/%s': damaged archive: %s",
                                              orig, archive_error_string(a));
                break;
            }
            if (write_data(w, buf, size, off) != ARCHIVE_OK) {
                rc = entry_error(u, w, orig);
                break;
            }
            u->r.bytes += size;
        }
        if (rc == STG_OK && archive_write_finish_entry(w) != ARCHIVE_OK)
            rc = entry_error(u, w, orig);
        if (rc == STG_OK && archive_entry_filetype(ae) == AE_IFLNK && !archive_entry_hardlink(ae)) {
            stg_strv_push(&u->links, orig);
            stg_strset_add(&u->linkset, u->links.v[u->links.n - 1]);
        }
        if (rc == STG_OK && u->root && archive_entry_filetype(ae) == AE_IFREG &&
            !archive_entry_hardlink(ae) &&
            stg_relocate_kind(orig, archive_entry_size(ae), archive_entry_perm(ae)) !=
                STG_RELOC_NONE)
            stg_strv_push(&u->reloc, orig);
        free(orig);
        if (rc != STG_OK)
            return rc;
        u->r.entries++;
    }
}

static void *unpack_main(void *arg)
{
    struct stg_unpack *u = arg;
    u->r.t0 = stg_now();
    struct archive *a = archive_read_new();
    struct archive *w = archive_write_disk_new();
    int rc = STG_OK;
    archive_read_support_format_tar(a);
    /* A bundle may be compressed (stage-py pack --compress); a stream of
     * the trees never is. */
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_lz4(a);
    /* Not SECURE_SYMLINKS or SPARSE: place_entry() and write_data() do
     * their work for less. */
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    if (archive_read_open2(a, u, NULL, read_cb, NULL, NULL) != ARCHIVE_OK) {
        rc = u->aborted ? STG_EFAIL
                        : stg_err_set(STG_EFAIL, "unpack: %s", archive_error_string(a));
    } else {
        rc = unpack_entries(u, a, w);
    }
    /* The copy is whole: point its paths at its final place, before the
     * directories get their modes and times (they may be read-only). */
    for (size_t i = 0; rc == STG_OK && i < u->reloc.n; i++) {
        bool changed = false;
        rc = stg_relocate_file(u->prefix, u->reloc.v[i], u->root, &changed);
        u->r.relocated += changed;
    }
    /* Directory modes and times are applied here, after their contents. */
    if (archive_write_close(w) != ARCHIVE_OK && rc == STG_OK)
        rc = entry_error(u, w, u->prefix);
    archive_write_free(w);
    archive_read_free(a);
    /* Read the stream to its end, so that every chunk goes back to the pool
     * and the broadcast can finish on every node. */
    release_held(u);
    while (!u->eos) {
        struct stg_chunk *c = stg_chunkq_pop(u->inq);
        uint32_t f = stg_chunk_hdr(c)->flags;
        if (f & STG_CHUNK_LAST)
            u->eos = true;
        if (f & STG_CHUNK_ABORT)
            u->aborted = true;
        if (rc == STG_OK && stg_chunk_hdr(c)->len > 0 && !(f & STG_CHUNK_ABORT)) {
            /* Data after the archive's end marker: not what the root sent. */
            const unsigned char *d = stg_chunk_data(c);
            for (uint32_t i = 0; i < stg_chunk_hdr(c)->len; i++)
                if (d[i]) {
                    rc = stg_err_set(STG_EFAIL, "unpack: data after the end of the archive");
                    break;
                }
        }
        stg_chunkq_push(u->freeq, c);
    }
    if (rc == STG_OK && u->aborted)
        rc = STG_EFAIL;
    u->status = rc;
    u->r.t1 = stg_now();
    return NULL;
}

int stg_unpack_start(struct stg_unpack **out, const char *prefix, const char *root,
                     uint64_t need, struct stg_chunkq *inq, struct stg_chunkq *freeq)
{
    struct stg_unpack *u = stg_xcalloc(1, sizeof *u);
    u->root = root ? stg_xstrdup(root) : NULL;
    u->need = need;
    atomic_init(&u->cancel, false);
    u->inq = inq;
    u->freeq = freeq;
    u->prefix = stg_xstrdup(prefix);
    int e = pthread_create(&u->thread, NULL, unpack_main, u);
    if (e) {
        free(u->prefix);
        free(u->root);
        free(u);
        *out = NULL;
        return stg_err_set(STG_EFAIL, "cannot start the unpack thread: %s", strerror(e));
    }
    *out = u;
    return STG_OK;
}

void stg_unpack_cancel(struct stg_unpack *u)
{
    if (u)
        atomic_store(&u->cancel, true);
}

int stg_unpack_join(struct stg_unpack **uu, struct stg_unpack_result *r)
{
    struct stg_unpack *u = *uu;
    if (!u)
        return STG_OK;
    pthread_join(u->thread, NULL);
    int rc = u->status;
    if (r)
        *r = u->r;
    free(u->prefix);
    free(u->root);
    stg_strv_free(&u->reloc);
    stg_strset_free(&u->linkset);
    stg_strv_free(&u->links);
    free(u);
    *uu = NULL;
    return rc;
}
