/* SPDX-License-Identifier: MIT */
/*
 * pack: scanned entries -> pax archive -> chunks, on a thread of its own so
 * that the MPI thread keeps the broadcast moving meanwhile.
 *
 * pax, not ustar: ustar cannot hold long link targets or sub-second times.
 * Entries are built from the scan (not from archive_read_disk), so nothing
 * but what is set below reaches the archive: no atime, ctime, user or group
 * names, and no per-entry user or group look-ups.  Same trees, same bytes.
 */
#include "config.h"

#include "pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "trust.h"
#include "util.h"

#define READ_BLOCK (1u << 20)

struct stg_pack {
    pthread_t thread;
    const struct stg_walk *scan;
    /* or a bundle: bytes [0, file_len) of file_fd, whose digest must be file_digest */
    const char *compress;       /* the trees' archive: its filter (stg_compressions) */
    int file_fd;
    const char *file_path;
    uint64_t file_len;
    unsigned char file_digest[STG_DIGEST_LEN];
    struct stg_chunkq *freeq, *outq;
    struct stg_chunk *cur;      /* being filled */
    size_t fill;
    atomic_bool cancel;
    int status;
    /* what is done so far, for progress: read by another thread */
    atomic_uint_fast64_t entries_done, data_done;
    uint64_t bytes;             /* written: compressed, if the archive is */
    uint64_t archive_bytes;     /* the archive before compression */
    double t0, t1;
};

int stg_pack_add_filter(struct archive *a, const char *compress)
{
    if (strcmp(compress, "gzip") == 0)
        return archive_write_add_filter_gzip(a);
    if (strcmp(compress, "zstd") == 0)
        return archive_write_add_filter_zstd(a);
    if (strcmp(compress, "lz4") == 0)
        return archive_write_add_filter_lz4(a);
    return archive_write_add_filter_none(a);
}

static void emit(struct stg_pack *p, uint32_t flags)
{
    struct stg_chunk_hdr *h = stg_chunk_hdr(p->cur);
    h->len = (uint32_t)p->fill;
    h->flags = flags;
    stg_chunkq_push(p->outq, p->cur);
    p->cur = NULL;
    p->fill = 0;
}

/* libarchive's write callback: copy into the current chunk, pass it on when
 * full.  File data that add_data() read into the chunk's free space comes
 * back here in place (without a filter and blocking, libarchive passes the
 * buffer through): it only needs counting.  A compressor hands over its
 * own buffer, which is copied. */
static la_ssize_t write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct stg_pack *p = ctx;
    const unsigned char *b = buf;
    size_t left = len;
    if (atomic_load(&p->cancel)) {
        archive_set_error(a, ECANCELED, "staging stopped");
        return -1;
    }
    if (p->cur && b == stg_chunk_data(p->cur) + p->fill && len <= p->cur->cap - p->fill) {
        p->fill += len;
        if (p->fill == p->cur->cap)
            emit(p, 0);
        p->bytes += len;
        return (la_ssize_t)len;
    }
    while (left > 0) {
        if (!p->cur)
            p->cur = stg_chunkq_pop(p->freeq);
        size_t n = p->cur->cap - p->fill;
        if (n > left)
            n = left;
        memcpy(stg_chunk_data(p->cur) + p->fill, b, n);
        p->fill += n;
        b += n;
        left -= n;
        if (p->fill == p->cur->cap)
            emit(p, 0);
    }
    p->bytes += len;
    return (la_ssize_t)len;
}

/* An error of libarchive's: recorded unless it only echoes a cancellation
 * (write_cb refused data because another node failed). */
static int pack_error(struct archive *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pack_error(struct archive *a, const char *fmt, ...)
{
    if (archive_errno(a) == ECANCELED)
        return STG_EFAIL;
    char msg[STG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return stg_err_set(STG_EFAIL, "%s", msg);
}

/*
 * The directories of the file read last, from / down: the next file's open
 * then costs the shared file system one lookup for its name (and one per
 * directory entered), where a path costs one per component every time.
 * The scan lists files directory by directory, so most opens find their
 * directory open already.  Every src is a real path (see stg_walk_run()),
 * so no component is followed if it is a link: a directory swapped for a
 * link since the walk fails the open instead of leading elsewhere.
 */
#define DIRS_MAX 64
/* O_NONBLOCK: a FIFO swapped in must not block the open (it is then
 * refused as not the file the walk saw); a regular file ignores it. */
#define FILE_FLAGS (O_RDONLY | O_NONBLOCK)
struct dirs {
    char cur[PATH_MAX];     /* the deepest directory open: cur[0..len[n-1]) */
    size_t n;
    size_t len[DIRS_MAX];
    int fd[DIRS_MAX];
};

static void dirs_close(struct dirs *d)
{
    while (d->n > 0)
        close(d->fd[--d->n]);
}

static int open_file(struct dirs *d, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    if (!slash || path[0] != '/' || dlen >= sizeof d->cur)
        return stg_trust_open(path, FILE_FLAGS);
    /* keep the open directories that lead to this one */
    while (d->n > 0) {
        size_t l = d->len[d->n - 1];
        if (l <= dlen && memcmp(d->cur, path, l) == 0 && (l == dlen || path[l] == '/'))
            break;
        close(d->fd[--d->n]);
    }
    size_t pos = d->n ? d->len[d->n - 1] : 0;
    int base = d->n ? d->fd[d->n - 1] : AT_FDCWD;
    while (pos < dlen) {
        size_t end = pos + 1;
        while (end < dlen && path[end] != '/')
            end++;
        char comp[PATH_MAX];
        /* the first component is "/name", the others "name" below base */
        size_t from = d->n ? pos + 1 : pos;
        memcpy(comp, path + from, end - from);
        comp[end - from] = '\0';
        int fd = d->n < DIRS_MAX
                     ? openat(base, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (fd < 0) {
            dirs_close(d);     /* the path itself says why */
            return stg_trust_open(path, FILE_FLAGS);
        }
        memcpy(d->cur + pos, path + pos, end - pos);
        d->len[d->n] = end;
        d->fd[d->n++] = fd;
        base = fd;
        pos = end;
    }
    if (dlen == 0)
        return stg_trust_open(path, FILE_FLAGS);
    return openat(base, slash + 1, FILE_FLAGS | O_NOFOLLOW | O_CLOEXEC);
}

/* Where to read the next at most *len bytes of file data: the free space of
 * p's current chunk (saving write_cb a copy), or buf if there is no p (a
 * bundle written to a file) or the archive is compressed (the compressor's
 * output would land on its own input).  IN/OUT len. */
static unsigned char *read_space(struct stg_pack *p, unsigned char *buf, size_t *len)
{
    if (!p || strcmp(p->compress, "none") != 0)
        return buf;
    if (!p->cur)
        p->cur = stg_chunkq_pop(p->freeq);
    if (*len > p->cur->cap - p->fill)
        *len = p->cur->cap - p->fill;
    return stg_chunk_data(p->cur) + p->fill;
}

static int add_data(struct archive *a, const struct stg_entry *e, unsigned char *buf,
                    struct dirs *dirs, struct stg_pack *p)
{
    int fd = open_file(dirs, e->src);
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR || errno == ENOENT))
        return stg_err_set(STG_EFAIL, "'%s' changed while it was being staged: %s", e->src,
                           strerror(errno));
    if (fd < 0)
        return stg_err_set(STG_EFAIL, "cannot open '%s': %s", e->src, strerror(errno));
    /* Exactly what the walk saw and the key describes, or nothing. */
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != e->dev ||
        st.st_ino != e->ino || st.st_size != e->size ||
        st.st_mtim.tv_sec != e->src_mtime.tv_sec || st.st_mtim.tv_nsec != e->src_mtime.tv_nsec) {
        close(fd);
        return stg_err_set(STG_EFAIL, "'%s' changed while it was being staged", e->src);
    }
    if (e->size > READ_BLOCK)   /* read-ahead for what takes several reads */
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int64_t done = 0;
    int rc = STG_OK;
    while (done < e->size) {
        size_t want = READ_BLOCK;   /* more than is left: a file that grew shows */
        unsigned char *dst = read_space(p, buf, &want);
        ssize_t r = read(fd, dst, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = stg_err_set(STG_EFAIL, "cannot read '%s': %s", e->src, strerror(errno));
            break;
        }
        if (r == 0 || done + r > e->size) {
            rc = stg_err_set(STG_EFAIL, "'%s' changed while it was being staged", e->src);
            break;
        }
        if (archive_write_data(a, dst, (size_t)r) != r) {
            rc = pack_error(a, "pack '%s': %s", e->src, archive_error_string(a));
            break;
        }
        done += r;
        if (p)
            atomic_fetch_add(&p->data_done, (uint64_t)r);
    }
    close(fd);
    return rc;
}

static int pack_entries(struct archive *a, const struct stg_walk *s, struct stg_pack *p)
{
    struct archive_entry *ae = archive_entry_new();
    unsigned char *buf = stg_xmalloc(READ_BLOCK);
    struct dirs *dirs = stg_xcalloc(1, sizeof *dirs);
    int rc = STG_OK;
    for (size_t i = 0; i < s->n && rc == STG_OK; i++) {
        const struct stg_entry *e = &s->v[i];
        archive_entry_clear(ae);
        archive_entry_set_pathname(ae, e->path);
        archive_entry_set_perm(ae, e->mode);
        archive_entry_set_mtime(ae, e->mtime.tv_sec, e->mtime.tv_nsec);
        switch (e->kind) {
        case STG_ENT_DIR:
            archive_entry_set_filetype(ae, AE_IFDIR);
            break;
        case STG_ENT_FILE:
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_size(ae, e->size);
            break;
        case STG_ENT_SYMLINK:
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_symlink(ae, e->link);
            break;
        case STG_ENT_HARDLINK:
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_hardlink(ae, e->link);
            archive_entry_set_size(ae, 0);
            break;
        }
        int r = archive_write_header(a, ae);
        if (r < ARCHIVE_WARN) {
            rc = pack_error(a, "pack '%s': %s", e->path, archive_error_string(a));
            break;
        }
        if (e->kind == STG_ENT_FILE && e->size > 0)
            rc = add_data(a, e, buf, dirs, p);
        if (p)
            atomic_fetch_add(&p->entries_done, 1);
    }
    dirs_close(dirs);
    free(dirs);
    free(buf);
    archive_entry_free(ae);
    return rc;
}

int stg_pack_entries(struct archive *a, const struct stg_walk *s)
{
    return pack_entries(a, s, NULL);
}

/* A bundle: its archive bytes as they are, checked against the digest
 * that its trailer records; a mismatch ends the stream with ABORT. */
static int pack_file(struct stg_pack *p)
{
    struct stg_hash *h = stg_hash_new();
    uint64_t off = 0;
    int rc = STG_OK;
    while (off < p->file_len && rc == STG_OK) {
        if (atomic_load(&p->cancel)) {
            rc = STG_EFAIL;
            break;
        }
        if (!p->cur)
            p->cur = stg_chunkq_pop(p->freeq);
        size_t want = p->cur->cap - p->fill;
        if (want > p->file_len - off)
            want = (size_t)(p->file_len - off);
        ssize_t r = pread(p->file_fd, stg_chunk_data(p->cur) + p->fill, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = stg_err_set(STG_EFAIL, "cannot read bundle '%s': %s", p->file_path,
                             r < 0 ? strerror(errno) : "it is shorter than its trailer says");
            break;
        }
        stg_hash_update(h, stg_chunk_data(p->cur) + p->fill, (size_t)r);
        atomic_fetch_add(&p->data_done, (uint64_t)r);
        p->fill += (size_t)r;
        off += (uint64_t)r;
        p->bytes += (uint64_t)r;
        if (p->fill == p->cur->cap && off < p->file_len)
            emit(p, 0);
    }
    unsigned char d[STG_DIGEST_LEN];
    stg_hash_digest(h, d);
    stg_hash_free(&h);
    if (rc == STG_OK && memcmp(d, p->file_digest, STG_DIGEST_LEN) != 0) {
        char got[2 * STG_DIGEST_LEN + 1], want[2 * STG_DIGEST_LEN + 1];
        stg_hex(d, STG_DIGEST_LEN, got);
        stg_hex(p->file_digest, STG_DIGEST_LEN, want);
        rc = stg_err_set(STG_EFAIL, "bundle '%s' is damaged: its digest is %s, its trailer "
                         "records %s (pack it again)", p->file_path, got, want);
    }
    return rc;
}

static void *pack_main(void *arg)
{
    struct stg_pack *p = arg;
    p->t0 = stg_now();
    if (!p->scan) {
        int rc = pack_file(p);
        p->archive_bytes = p->bytes;    /* as it was packed, compressed or not */
        if (!p->cur)
            p->cur = stg_chunkq_pop(p->freeq);
        if (rc != STG_OK)
            p->fill = 0;
        emit(p, STG_CHUNK_LAST | (rc == STG_OK ? 0 : STG_CHUNK_ABORT));
        p->status = rc;
        p->t1 = stg_now();
        return NULL;
    }
    struct archive *a = archive_write_new();
    int rc = STG_OK;
    if (archive_write_set_format_pax(a) != ARCHIVE_OK ||
        stg_pack_add_filter(a, p->compress) != ARCHIVE_OK ||
        /* no blocking: the chunks are the blocks (and nothing follows a
         * compressed stream's end) */
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open2(a, p, NULL, write_cb, NULL, NULL) != ARCHIVE_OK) {
        rc = pack_error(a, "pack: %s", archive_error_string(a));
    } else {
        rc = pack_entries(a, p->scan, p);
        if (archive_write_close(a) != ARCHIVE_OK && rc == STG_OK)
            rc = pack_error(a, "pack: %s", archive_error_string(a));
        p->archive_bytes = (uint64_t)archive_filter_bytes(a, 0);
    }
    archive_write_free(a);
    if (rc == STG_OK && atomic_load(&p->cancel))
        rc = STG_EFAIL;
    if (!p->cur)
        p->cur = stg_chunkq_pop(p->freeq);
    if (rc != STG_OK)
        p->fill = 0;   /* an incomplete archive: its data is useless */
    emit(p, STG_CHUNK_LAST | (rc == STG_OK ? 0 : STG_CHUNK_ABORT));
    p->status = rc;
    p->t1 = stg_now();
    return NULL;
}

static int start(struct stg_pack *p, struct stg_pack **out);

int stg_pack_start_file(struct stg_pack **out, int fd, const char *path, uint64_t len,
                        const unsigned char digest[STG_DIGEST_LEN], struct stg_chunkq *freeq,
                        struct stg_chunkq *outq)
{
    struct stg_pack *p = stg_xcalloc(1, sizeof *p);
    p->file_fd = fd;
    p->file_path = path;
    p->file_len = len;
    memcpy(p->file_digest, digest, STG_DIGEST_LEN);
    p->freeq = freeq;
    p->outq = outq;
    return start(p, out);
}

int stg_pack_start(struct stg_pack **out, const struct stg_walk *s, const char *compress,
                   struct stg_chunkq *freeq, struct stg_chunkq *outq)
{
    struct stg_pack *p = stg_xcalloc(1, sizeof *p);
    p->scan = s;
    p->compress = compress ? compress : "none";
    p->freeq = freeq;
    p->outq = outq;
    return start(p, out);
}

static int start(struct stg_pack *p, struct stg_pack **out)
{
    atomic_init(&p->cancel, false);
    atomic_init(&p->entries_done, 0);
    atomic_init(&p->data_done, 0);
    int e = pthread_create(&p->thread, NULL, pack_main, p);
    if (e) {
        free(p);
        *out = NULL;
        return stg_err_set(STG_EFAIL, "cannot start the pack thread: %s", strerror(e));
    }
    *out = p;
    return STG_OK;
}

void stg_pack_progress(struct stg_pack *p, uint64_t *entries, uint64_t *data)
{
    *entries = p ? atomic_load(&p->entries_done) : 0;
    *data = p ? atomic_load(&p->data_done) : 0;
}

void stg_pack_cancel(struct stg_pack *p)
{
    if (p)
        atomic_store(&p->cancel, true);
}

int stg_pack_join(struct stg_pack **pp, uint64_t *bytes, uint64_t *archive_bytes, double *t0,
                  double *t1)
{
    struct stg_pack *p = *pp;
    if (!p)
        return STG_OK;
    pthread_join(p->thread, NULL);
    int rc = p->status;
    if (bytes)
        *bytes = p->bytes;
    if (archive_bytes)
        *archive_bytes = p->archive_bytes;
    if (t0)
        *t0 = p->t0;
    if (t1)
        *t1 = p->t1;
    free(p);
    *pp = NULL;
    return rc;
}
