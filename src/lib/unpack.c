/* SPDX-License-Identifier: MIT */
/*
 * unpack: chunks -> libarchive reader -> libarchive disk writer.
 *
 * The archive is untrusted input (it crossed the network, and a leader
 * cannot tell what produced it):
 * besides libarchive's secure flags against ".." and absolute paths, every
 * entry must be a directory, regular file, hard link or symbolic link, a
 * symbolic link may not point outside the copy, no entry may be written
 * through a symbolic link or below a file, none may stand where an earlier
 * one stands (a directory twice aside), and a hard link must name a file
 * that came before it.  Those checks are done here, against the entries
 * this archive made: the copy starts as an empty directory of the user's
 * own, so they are all there is in it.  (libarchive's
 * ARCHIVE_EXTRACT_SECURE_SYMLINKS checks every component of every path on
 * disk instead: an open and a stat per component, which on a deep tree of
 * small files cost more than the writing.)  Ownership is never restored:
 * the copy belongs to the user who stages it, and set-user-ID and
 * set-group-ID bits are dropped.
 *
 * Writers.  With threads > 1, the thread that reads the stream makes the
 * directories and links and writes large files itself, and hands each
 * smaller file (its entry and a copy of its data) to one of threads - 1
 * writer threads, each with a disk writer of its own; hard links wait until
 * every file is written.  Directories come before their contents in the stream,
 * and the checks above keep a later entry from replacing an earlier one,
 * so the writers never depend on each other's order.
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
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "log.h"
#include "relocate.h"
#include "util.h"

/* A file handed to a writer thread. */
struct job {
    struct archive_entry *ae;   /* placed below the prefix */
    char *orig;                 /* its archive path, for messages */
    unsigned char *data;
    size_t len;
    struct job *next;
};

/* The archive paths of the entries made so far (the sets borrow from
 * names): what each is, so that none stands in another's way. */
struct paths {
    struct stg_strv names;
    struct stg_strset dirs;     /* directories, also those made as parents */
    struct stg_strset files;    /* regular files (hard links too) */
    struct stg_strset links;    /* symbolic links */
};

struct stg_unpack {
    pthread_t thread;
    struct stg_chunkq *inq, *freeq;
    struct stg_chunk *held;     /* the chunk libarchive is reading from */
    char *prefix;
    char *root;                 /* relocate for this final place; NULL: do not */
    struct stg_strv reloc;      /* the files to relocate (archive paths) */
    struct paths paths;
    uint64_t need;
    atomic_bool cancel;
    bool eos;                   /* the last chunk has been taken */
    bool aborted;               /* the stream was stopped */
    int status;
    struct stg_unpack_result r;
    /* the writer threads (threads - 1 of them) and their queue */
    int nwriters;
    pthread_t *writer;
    pthread_mutex_t lock;
    pthread_cond_t more, room;  /* a job is queued; the queue has room */
    struct job *head, *tail;
    size_t queued;              /* data bytes queued */
    bool closing;               /* no more jobs */
    atomic_bool failed;         /* a writer failed (its error is recorded) */
    struct archive_entry **hard;    /* hard links, made at the end */
    size_t nhard;
};

/* A file up to JOB_MAX bytes goes to a writer thread; larger ones the
 * reading thread writes itself (they are few, and a copy of one would be
 * large).  Writers may have QUEUE_MAX bytes of data waiting. */
#define JOB_MAX ((size_t)1 << 20)
#define QUEUE_MAX ((size_t)16 << 20)

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

/* The length of path without its trailing slashes. */
static size_t path_len(const char *path)
{
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    return len;
}

/* The length of path's parent (0 at the top), path being len bytes long. */
static size_t parent_len(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] != '/')
        len--;
    return len > 0 ? len - 1 : 0;
}

/* Whether an entry may be made at path (as a directory if dir): not
 * through or over a link, not below or over a file, not over a directory
 * unless it is one.  path is one that stg_unpack_safe_path() accepts, so
 * each has one spelling.  Returns STG_OK or an error naming it. */
static int path_free(const struct paths *ps, const char *path, bool dir)
{
    size_t len = path_len(path);
    /* A parent made before was checked then, with its own parents, and
     * stays a directory: only path itself is left to check. */
    size_t parent = parent_len(path, len);
    size_t from = parent > 0 && stg_strset_has(&ps->dirs, path, parent) ? len : 1;
    for (size_t i = from; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        if (stg_strset_has(&ps->links, path, i))
            return stg_err_set(STG_EFAIL, "unpack: refusing entry '%s': it would be written "
                               "through the symbolic link '%.*s'", path, (int)i, path);
        if (stg_strset_has(&ps->files, path, i) || (i == len && !dir &&
                                                     stg_strset_has(&ps->dirs, path, i)))
            return stg_err_set(STG_EFAIL, "unpack: refusing entry '%s': '%.*s' is already "
                               "in the archive%s", path, (int)i, path,
                               i < len ? ", not as a directory" : "");
    }
    return STG_OK;
}

/* Add the n bytes at s to set, if not there yet. */
static void paths_add(struct paths *ps, struct stg_strset *set, const char *s, size_t n)
{
    if (stg_strset_has(set, s, n))
        return;
    stg_strv_push(&ps->names, s);
    char *copy = ps->names.v[ps->names.n - 1];
    copy[n] = '\0';    /* s is a path, and its first n bytes a prefix of it */
    stg_strset_add(set, copy);
}

/* Record the entry made at path, and its parents as directories. */
static void paths_note(struct paths *ps, const char *path, mode_t type)
{
    size_t len = path_len(path);
    size_t parent = parent_len(path, len);
    if (parent > 0 && !stg_strset_has(&ps->dirs, path, parent))
        for (size_t i = 1; i <= parent; i++)
            if (i == parent || path[i] == '/')
                paths_add(ps, &ps->dirs, path, i);
    paths_add(ps, type == AE_IFDIR ? &ps->dirs : type == AE_IFLNK ? &ps->links : &ps->files,
              path, len);
}

static void paths_free(struct paths *ps)
{
    stg_strset_free(&ps->dirs);
    stg_strset_free(&ps->files);
    stg_strset_free(&ps->links);
    stg_strv_free(&ps->names);
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
    const char *hard = archive_entry_hardlink(ae);
    mode_t type = archive_entry_filetype(ae);
    if (!hard && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return stg_err_set(STG_EFAIL, "unpack: refusing '%s': not a file, directory or link",
                           path);
    int rc = path_free(&u->paths, path, type == AE_IFDIR && !hard);
    if (rc)
        return rc;
    if (hard) {
        /* A file of this archive, made before; never a link (a hard link
         * to a link would be that link elsewhere, its target elsewhere too). */
        if (!stg_unpack_safe_path(hard) ||
            !stg_strset_has(&u->paths.files, hard, path_len(hard)) ||
            archive_entry_size(ae) > 0)
            return stg_err_set(STG_EFAIL, "unpack: refusing hard link '%s' to '%s'", path, hard);
        char *h = stg_xasprintf("%s/%s", u->prefix, hard);
        archive_entry_set_hardlink(ae, h);
        free(h);
    } else if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(ae);
        if (!stg_unpack_safe_symlink(path, target))
            return stg_err_set(STG_EFAIL, "unpack: refusing symbolic link '%s' -> '%s': it "
                               "leads outside the copy", path, target ? target : "");
    }
    paths_note(&u->paths, path, hard ? AE_IFREG : type);
    /* A copy never carries set-user-ID or set-group-ID bits: made by root,
     * in a file system that need not be mounted nosuid, they would hand
     * root's (or a group's) rights to whoever runs the file. */
    archive_entry_set_perm(ae, archive_entry_perm(ae) & ~(mode_t)(S_ISUID | S_ISGID));
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

/* A disk writer with stage-py's options.  Not SECURE_SYMLINKS or SPARSE:
 * place_entry() and write_data() do their work for less. */
static struct archive *disk_writer(void)
{
    struct archive *w = archive_write_disk_new();
    if (!w)
        stg_oom();
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    return w;
}

/* Write one whole entry that is in memory: header, data, times and mode. */
static int write_entry(struct stg_unpack *u, struct archive *w, struct archive_entry *ae,
                       const char *orig, const unsigned char *data, size_t len)
{
    if (archive_write_header(w, ae) != ARCHIVE_OK ||
        (len > 0 && write_data(w, data, len, 0) != ARCHIVE_OK) ||
        archive_write_finish_entry(w) != ARCHIVE_OK)
        return entry_error(u, w, orig);
    return STG_OK;
}

static void job_free(struct job *j)
{
    archive_entry_free(j->ae);
    free(j->orig);
    free(j->data);
    free(j);
}

/* A writer thread: the files it is handed, until the queue closes. */
static void *writer_main(void *arg)
{
    struct stg_unpack *u = arg;
    struct archive *w = disk_writer();
    uint64_t entries = 0, bytes = 0;
    for (;;) {
        pthread_mutex_lock(&u->lock);
        while (!u->head && !u->closing)
            pthread_cond_wait(&u->more, &u->lock);
        struct job *j = u->head;
        if (j) {
            u->head = j->next;
            if (!u->head)
                u->tail = NULL;
            u->queued -= j->len;
            pthread_cond_signal(&u->room);
        }
        pthread_mutex_unlock(&u->lock);
        if (!j)
            break;
        /* After a failure (here or elsewhere) the rest is only freed. */
        if (!atomic_load(&u->failed) && !atomic_load(&u->cancel)) {
            if (write_entry(u, w, j->ae, j->orig, j->data, j->len) == STG_OK) {
                entries++;
                bytes += j->len;
            } else {
                atomic_store(&u->failed, true);
            }
        }
        job_free(j);
    }
    archive_write_free(w);      /* files only: nothing is left to fix up */
    pthread_mutex_lock(&u->lock);
    u->r.entries += entries;
    u->r.bytes += bytes;
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* Hand a file to the writers, waiting while their queue is full. */
static void submit(struct stg_unpack *u, struct job *j)
{
    pthread_mutex_lock(&u->lock);
    while (u->queued > 0 && u->queued + j->len > QUEUE_MAX)
        pthread_cond_wait(&u->room, &u->lock);
    if (u->tail)
        u->tail->next = j;
    else
        u->head = j;
    u->tail = j;
    u->queued += j->len;
    pthread_cond_signal(&u->more);
    pthread_mutex_unlock(&u->lock);
}

static struct archive_entry *clone_entry(struct archive_entry *ae)
{
    struct archive_entry *c = archive_entry_clone(ae);
    if (!c)
        stg_oom();
    return c;
}

/* Start the writer threads; on failure, fewer or none: the reading thread
 * writes what no writer takes. */
static void writers_start(struct stg_unpack *u)
{
    u->writer = stg_xcalloc((size_t)u->nwriters, sizeof *u->writer);
    int n = 0;
    for (; n < u->nwriters; n++) {
        int e = pthread_create(&u->writer[n], NULL, writer_main, u);
        if (e) {
            stg_log_warn("cannot start an unpack writer thread: %s; %d will write", strerror(e),
                         n);
            break;
        }
    }
    u->nwriters = n;
}

/* Close the queue and wait for every writer.  Returns STG_OK, or STG_EFAIL
 * if one failed (its error is recorded). */
static int writers_join(struct stg_unpack *u)
{
    pthread_mutex_lock(&u->lock);
    u->closing = true;
    pthread_cond_broadcast(&u->more);
    pthread_mutex_unlock(&u->lock);
    for (int i = 0; i < u->nwriters; i++)
        pthread_join(u->writer[i], NULL);
    free(u->writer);
    u->writer = NULL;
    u->nwriters = 0;
    return atomic_load(&u->failed) ? STG_EFAIL : STG_OK;
}

/* The rest of the current entry's data: into data (len bytes; what the
 * archive leaves out reads as zeros), or, without data, as it comes into
 * the disk writer w. */
static int entry_data(struct stg_unpack *u, struct archive *a, const char *orig,
                      struct archive *w, unsigned char *data, size_t len)
{
    size_t got = 0;
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN || (data && (off < 0 || (uint64_t)off + size > len)))
            return u->aborted ? STG_EFAIL
                              : stg_err_set(STG_EFAIL, "unpack '/%s': damaged archive: %s", orig,
                                            r < ARCHIVE_WARN ? archive_error_string(a)
                                                             : "data past the entry's size");
        if (!data) {
            if (write_data(w, buf, size, off) != ARCHIVE_OK)
                return entry_error(u, w, orig);
            u->r.bytes += size;
            continue;
        }
        if ((size_t)off > got)
            memset(data + got, 0, (size_t)off - got);
        memcpy(data + off, buf, size);
        if ((size_t)off + size > got)
            got = (size_t)off + size;
    }
    if (data && got < len)
        memset(data + got, 0, len - got);
    return STG_OK;
}

static int unpack_entries(struct stg_unpack *u, struct archive *a, struct archive *w)
{
    struct archive_entry *ae;
    for (bool first = true;; first = false) {
        int r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF)
            return STG_OK;
        if (r < ARCHIVE_WARN) {
            if (u->aborted)
                return STG_EFAIL;   /* the root's own error says why */
            return stg_err_set(STG_EFAIL, "unpack: damaged archive: %s",
                               archive_error_string(a));
        }
        if (atomic_load(&u->cancel) || atomic_load(&u->failed))
            return STG_EFAIL;   /* another node, or a writer, failed: stop writing */
        if (first && archive_entry_pathname(ae) &&
            strcmp(archive_entry_pathname(ae), STG_BUNDLE_META) == 0) {
            /* a bundle's description of itself: not part of the copy */
            archive_read_data_skip(a);
            continue;
        }
        char *orig = stg_xstrdup(archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "");
        int rc = place_entry(u, ae);
        bool hard = archive_entry_hardlink(ae) != NULL;
        bool file = archive_entry_filetype(ae) == AE_IFREG && !hard;
        int64_t size = archive_entry_size(ae);
        if (rc == STG_OK && u->root && file &&
            stg_relocate_kind(orig, size, archive_entry_perm(ae)) != STG_RELOC_NONE)
            stg_strv_push(&u->reloc, orig);
        if (rc != STG_OK) {
            /* refused */
        } else if (hard && u->nwriters > 0) {
            /* once every file is written: its target may be with a writer */
            u->hard = stg_xrealloc(u->hard, (u->nhard + 1) * sizeof *u->hard);
            u->hard[u->nhard++] = clone_entry(ae);
        } else if (file && u->nwriters > 0 && size >= 0 && (uint64_t)size <= JOB_MAX) {
            struct job *j = stg_xcalloc(1, sizeof *j);
            j->len = (size_t)size;
            j->data = stg_xmalloc(j->len);
            rc = entry_data(u, a, orig, NULL, j->data, j->len);
            if (rc == STG_OK) {
                j->ae = clone_entry(ae);
                j->orig = orig;
                orig = NULL;
                submit(u, j);
            } else {
                free(j->data);
                free(j);
            }
        } else {
            if (archive_write_header(w, ae) != ARCHIVE_OK)
                rc = entry_error(u, w, orig);
            if (rc == STG_OK && size > 0)
                rc = entry_data(u, a, orig, w, NULL, 0);
            if (rc == STG_OK && archive_write_finish_entry(w) != ARCHIVE_OK)
                rc = entry_error(u, w, orig);
            if (rc == STG_OK)
                u->r.entries++;
        }
        free(orig);
        if (rc != STG_OK)
            return rc;
    }
}

/* The hard links held back for the writers, now that every file is there. */
static int make_hard_links(struct stg_unpack *u, struct archive *w, int rc)
{
    for (size_t i = 0; i < u->nhard; i++) {
        if (rc == STG_OK) {
            rc = write_entry(u, w, u->hard[i], archive_entry_pathname(u->hard[i]) +
                             strlen(u->prefix) + 1, NULL, 0);
            u->r.entries += rc == STG_OK;
        }
        archive_entry_free(u->hard[i]);
    }
    free(u->hard);
    u->hard = NULL;
    u->nhard = 0;
    return rc;
}

static void *unpack_main(void *arg)
{
    struct stg_unpack *u = arg;
    u->r.t0 = stg_now();
    struct archive *a = archive_read_new();
    struct archive *w = disk_writer();
    int rc = STG_OK;
    archive_read_support_format_tar(a);
    /* A bundle may be compressed (stage-py pack --compress); a stream of
     * the trees never is. */
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_lz4(a);
    if (u->nwriters > 0)
        writers_start(u);
    if (archive_read_open2(a, u, NULL, read_cb, NULL, NULL) != ARCHIVE_OK) {
        rc = u->aborted ? STG_EFAIL
                        : stg_err_set(STG_EFAIL, "unpack: damaged archive: %s",
                                      archive_error_string(a));
    } else {
        rc = unpack_entries(u, a, w);
    }
    if (u->nwriters > 0) {
        if (rc != STG_OK)
            atomic_store(&u->failed, true);     /* the writers only free what is left */
        int wrc = writers_join(u);
        rc = rc ? rc : wrc;
    }
    rc = make_hard_links(u, w, rc);
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

int stg_unpack_threads_auto(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 1;
    int n = CPU_COUNT(&set) - 1;    /* one for the MPI thread and the rest */
    return n < 1 ? 1 : n > 4 ? 4 : n;
}

int stg_unpack_start(struct stg_unpack **out, const char *prefix, const char *root,
                     uint64_t need, int threads, struct stg_chunkq *inq,
                     struct stg_chunkq *freeq)
{
    struct stg_unpack *u = stg_xcalloc(1, sizeof *u);
    u->nwriters = threads - 1;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->more, NULL);
    pthread_cond_init(&u->room, NULL);
    atomic_init(&u->failed, false);
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
    paths_free(&u->paths);
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->more);
    pthread_cond_destroy(&u->room);
    free(u);
    *uu = NULL;
    return rc;
}
