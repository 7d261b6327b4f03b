/* SPDX-License-Identifier: MIT */
/*
 * slowfs: a shared file system's metadata server, overloaded, at the scale
 * of one machine.  A FUSE passthrough (libfuse3) of a directory that serves
 * one request at a time and adds a fixed delay to every metadata operation
 * (lookup and attributes, directory listings, opens, links, access checks),
 * while reads of file data pass at the speed of the disk below.  N
 * processes importing through it then take about N times as long as one,
 * which is the import storm that stage-py exists to avoid.
 *
 *     slowfs SOURCE MOUNTPOINT [--delay-us N] [--count FILE]
 *
 * --count FILE: at unmount, write the number of metadata operations served
 * (since the last SIGUSR1, which starts the count again).
 * Runs in the foreground, single-threaded (that is the point); unmount with
 * fusermount3 -u MOUNTPOINT (or umount as root).
 */
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char source[PATH_MAX];
static long delay_us = 1000;
static const char *count_file;
static unsigned long long metadata_ops;
static volatile sig_atomic_t count_again;   /* SIGUSR1 came */

static void on_usr1(int sig)
{
    (void)sig;
    count_again = 1;
}

/* One metadata operation: the delay, then the real call. */
static void slow(void)
{
    if (count_again) {
        count_again = 0;
        metadata_ops = 0;
    }
    metadata_ops++;
    struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* The path below SOURCE.  OUT buf. */
static const char *real(const char *path, char *buf)
{
    snprintf(buf, PATH_MAX, "%s%s", source, path);
    return buf;
}

static int sf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    char b[PATH_MAX];
    slow();
    if (fi)
        return fstat((int)fi->fh, st) < 0 ? -errno : 0;
    return lstat(real(path, b), st) < 0 ? -errno : 0;
}

static int sf_access(const char *path, int mask)
{
    char b[PATH_MAX];
    slow();
    return access(real(path, b), mask) < 0 ? -errno : 0;
}

static int sf_readlink(const char *path, char *out, size_t size)
{
    char b[PATH_MAX];
    slow();
    ssize_t n = readlink(real(path, b), out, size - 1);
    if (n < 0)
        return -errno;
    out[n] = '\0';
    return 0;
}

static int sf_opendir(const char *path, struct fuse_file_info *fi)
{
    char b[PATH_MAX];
    slow();
    DIR *d = opendir(real(path, b));
    if (!d)
        return -errno;
    fi->fh = (uint64_t)(uintptr_t)d;
    return 0;
}

static int sf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    slow();
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type)};
        if (fill(buf, de->d_name, &st, 0, 0))
            break;
    }
    return 0;
}

static int sf_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int sf_open(const char *path, struct fuse_file_info *fi)
{
    char b[PATH_MAX];
    slow();
    if ((fi->flags & O_ACCMODE) != O_RDONLY)
        return -EROFS;      /* a file system of software stacks: read-only */
    int fd = open(real(path, b), fi->flags);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    fi->keep_cache = 1;
    return 0;
}

static int sf_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    (void)path;
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int sf_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

static int sf_statfs(const char *path, struct statvfs *st)
{
    char b[PATH_MAX];
    slow();
    return statvfs(real(path, b), st) < 0 ? -errno : 0;
}

static void *sf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* No caching of names or attributes in the kernel: every process asks
     * the server, as clients of a busy shared file system keep doing. */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->use_ino = 1;
    return NULL;
}

static void sf_destroy(void *data)
{
    (void)data;
    if (!count_file)
        return;
    FILE *f = fopen(count_file, "w");
    if (f) {
        fprintf(f, "%llu\n", metadata_ops);
        fclose(f);
    }
}

static const struct fuse_operations ops = {
    .getattr = sf_getattr,
    .access = sf_access,
    .readlink = sf_readlink,
    .opendir = sf_opendir,
    .readdir = sf_readdir,
    .releasedir = sf_releasedir,
    .open = sf_open,
    .read = sf_read,
    .release = sf_release,
    .statfs = sf_statfs,
    .init = sf_init,
    .destroy = sf_destroy,
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: slowfs SOURCE MOUNTPOINT [--delay-us N] [--count FILE]\n");
        return 2;
    }
    if (!realpath(argv[1], source)) {
        fprintf(stderr, "slowfs: '%s': %s\n", argv[1], strerror(errno));
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--delay-us") == 0 && i + 1 < argc) {
            delay_us = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            count_file = argv[++i];
        } else {
            fprintf(stderr, "slowfs: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    /* -f foreground, -s one request at a time, allow_other: every user's
     * processes see it (as they would a shared file system). */
    char *fargv[] = {argv[0], argv[2], "-f", "-s", "-o", "ro,allow_other,default_permissions",
                     NULL};
    return fuse_main(6, fargv, &ops, NULL);
}
