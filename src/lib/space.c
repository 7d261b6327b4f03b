/* SPDX-License-Identifier: MIT */
/*
 * space: tmpfs free space and the memory cgroup's limit, before any byte
 * is sent.
 */
#include "config.h"

#include "space.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

uint64_t stg_space_need(uint64_t bytes, uint64_t files)
{
    long page = sysconf(_SC_PAGESIZE);
    return bytes + files * (uint64_t)(page > 0 ? page : 4096);
}

/* A number from a cgroup file; "max" (v2) is no limit. */
static bool read_u64(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[64] = "";
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    if (strncmp(buf, "max", 3) == 0) {
        *out = UINT64_MAX;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return false;
    *out = v;
    return true;
}

/*
 * Where this process's memory cgroup lives: /proc/self/cgroup gives its path
 * within the hierarchy, /proc/self/mountinfo where that hierarchy (cgroup2,
 * or cgroup v1 with the memory controller) is mounted and which part of it.
 * OUT base: the mount point; OUT path: the cgroup's directory.
 */
static bool find_cgroup(char *base, size_t blen, char *path, size_t plen, bool *v2)
{
    char line[4096], v1path[2048] = "", v2path[2048] = "";
    bool have_v1 = false, have_v2 = false;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *p = c2 + 1;
        if (strcmp(line, "0") == 0 && *ctrls == '\0') {
            snprintf(v2path, sizeof v2path, "%s", p);
            have_v2 = true;
        }
        for (char *tok = strtok((char *)ctrls, ","); tok; tok = strtok(NULL, ","))
            if (strcmp(tok, "memory") == 0) {
                snprintf(v1path, sizeof v1path, "%s", p);
                have_v1 = true;
            }
    }
    fclose(f);
    f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        /* id parent maj:min root mountpoint opts ... - fstype source superopts */
        char root[1024], mnt[1024], fstype[64], super[1024];
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) != 2 ||
            sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2)
            continue;
        const char *cg = NULL;
        if (have_v1 && strcmp(fstype, "cgroup") == 0 &&
            (strstr(super, ",memory") || strncmp(super, "memory", 6) == 0)) {
            cg = v1path;
            *v2 = false;
        } else if (have_v2 && !have_v1 && strcmp(fstype, "cgroup2") == 0) {
            cg = v2path;
            *v2 = true;
        }
        if (!cg)
            continue;
        /* The part of the hierarchy mounted here is root; the cgroup's path
         * is below it (with cgroup namespaces, root is often "/"). */
        size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
        if (rl && strncmp(cg, root, rl) != 0)
            continue;
        snprintf(base, blen, "%s", mnt);
        snprintf(path, plen, "%s%s", mnt, cg + rl);
        found = true;
    }
    fclose(f);
    return found;
}

bool stg_space_cgroup(char *dir, size_t len, uint64_t *limit, uint64_t *used)
{
    char base[1024], path[4096];
    bool v2 = false;
    if (!find_cgroup(base, sizeof base, path, sizeof path, &v2))
        return false;
    snprintf(dir, len, "%s", path);
    *limit = UINT64_MAX;
    *used = 0;
    bool any = false;
    /* The tightest limit from the cgroup up to the hierarchy's root. */
    size_t blen = strlen(base);
    for (;;) {
        char file[4200];
        uint64_t lim, use;
        snprintf(file, sizeof file, "%s/%s", path, v2 ? "memory.max" : "memory.limit_in_bytes");
        if (read_u64(file, &lim)) {
            snprintf(file, sizeof file, "%s/%s", path,
                     v2 ? "memory.current" : "memory.usage_in_bytes");
            if (!read_u64(file, &use))
                use = 0;
            if (!any || lim < *limit) {
                *limit = lim;
                *used = use;
                snprintf(dir, len, "%s", path);
            }
            any = true;
        }
        char *slash = strrchr(path, '/');
        if (!slash || (size_t)(slash - path) < blen)
            break;
        *slash = '\0';
    }
    return any;
}

int stg_space_check(const char *dir, uint64_t need, uint64_t headroom)
{
    char a[32], b[32], c[32], d[32];
    struct statvfs vfs;
    if (statvfs(dir, &vfs) < 0)
        return stg_err_set(STG_EFAIL, "cannot check the space in '%s': %s", dir, strerror(errno));
    uint64_t free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (need > free_bytes || headroom > free_bytes - need)
        return stg_err_set(STG_EFAIL, "not enough space in '%s': the copy needs %s and %s of "
                           "headroom, %s free", dir, stg_format_size(need, a, sizeof a),
                           stg_format_size(headroom, b, sizeof b),
                           stg_format_size(free_bytes, c, sizeof c));
    char cg[4096];
    uint64_t limit, used;
    if (!stg_space_cgroup(cg, sizeof cg, &limit, &used) || limit == UINT64_MAX)
        return STG_OK;
    /* v1 reports "no limit" as a huge page-aligned number. */
    if (limit >= (UINT64_MAX >> 2))
        return STG_OK;
    uint64_t avail = used < limit ? limit - used : 0;
    if (need > avail || headroom > avail - need)
        return stg_err_set(STG_EFAIL, "not enough memory under the limit of cgroup '%s': the "
                           "copy needs %s and %s of headroom, the limit is %s and %s is in use",
                           cg, stg_format_size(need, a, sizeof a),
                           stg_format_size(headroom, b, sizeof b),
                           stg_format_size(limit, c, sizeof c), stg_format_size(used, d, sizeof d));
    stg_log_debug("cgroup '%s': limit %s, in use %s", cg, stg_format_size(limit, c, sizeof c),
                  stg_format_size(used, d, sizeof d));
    return STG_OK;
}

int stg_space_cap_check(const char *dest, const char *copy, uint64_t need, uint64_t cap,
                        const char *from)
{
    struct statvfs v;
    if (statvfs(dest, &v) < 0)
        return stg_err_set(STG_EFAIL, "cannot stat the file system of '%s': %s", dest,
                           strerror(errno));
    uint64_t used = (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
    char a[32], b[32], c[32];
    if (need > cap || used > cap - need)
        return stg_err_set(STG_EFAIL, "the node-wide cap of %s (%s) cannot take '%s' (%s): "
                           "%s is in use in '%s' already", stg_format_size(cap, a, sizeof a),
                           from, copy, stg_format_size(need, b, sizeof b),
                           stg_format_size(used, c, sizeof c), dest);
    return STG_OK;
}

/* statfs(2) f_type values (linux/magic.h, and the vendors' own for the
 * parallel file systems that Linux does not ship). */
static const struct {
    unsigned long magic;
    const char *name;
    bool shared;
} fs_types[] = {
    {0x01021994, "tmpfs", false},      {0x858458F6, "ramfs", false},
    {0xEF53, "ext4", false},            {0x58465342, "xfs", false},
    {0x9123683E, "btrfs", false},       {0x2FC12FC1, "zfs", false},
    {0x794C7630, "overlay", false},     {0xF2F52010, "f2fs", false},
    {0x6969, "nfs", true},              {0x0BD00BD0, "lustre", true},
    {0x47504653, "gpfs", true},         {0x19830326, "beegfs", true},
    {0x00C36400, "ceph", true},         {0xFF534D42, "cifs", true},
    {0xFE534D42, "smb2", true},         {0x517B, "smb", true},
    {0xAAD7AAEA, "panfs", true},        {0x01021997, "9p", true},
    {0x65735546, "fuse", true},         {0x5346414F, "afs", true},
    {0x6B414653, "kafs", true},         {0x73757245, "coda", true},
    {0x7461636F, "ocfs2", true},        {0x01161970, "gfs2", true},
    {0x20030528, "orangefs", true},     {0x564C, "ncp", true},
    {0x786F4256, "vboxsf", true},
};

const char *stg_space_fs_name(unsigned long magic, bool *shared)
{
    for (size_t i = 0; i < sizeof fs_types / sizeof *fs_types; i++)
        if (fs_types[i].magic == (magic & 0xFFFFFFFFul)) {
            *shared = fs_types[i].shared;
            return fs_types[i].name;
        }
    *shared = false;    /* a local type this table does not know: allowed */
    return "unknown";
}

bool stg_space_fs_shared_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof fs_types / sizeof *fs_types; i++)
        if (fs_types[i].shared && strlen(fs_types[i].name) == len &&
            strncmp(fs_types[i].name, name, len) == 0)
            return true;
    return false;
}

int stg_space_local_check(const char *dest, const char *allow)
{
    struct statfs f;
    if (statfs(dest, &f) < 0)
        return errno == ENOENT ? STG_OK     /* said where the destination is opened */
                               : stg_err_set(STG_EFAIL, "cannot stat the file system of "
                                             "'%s': %s", dest, strerror(errno));
    bool shared;
    const char *name = stg_space_fs_name((unsigned long)f.f_type, &shared);
    if (!shared)
        return STG_OK;
    size_t n = strlen(name);
    for (const char *a = allow ? allow : ""; *a;) {
        a += strspn(a, " \t,");
        size_t k = strcspn(a, " \t,");
        if (k == n && strncmp(a, name, n) == 0)
            return STG_OK;
        a += k;
    }
    return stg_err_set(STG_EFAIL, "refusing destination '%s': it is on %s, a network, "
                       "parallel or FUSE file system that the nodes may share; staging there "
                       "would load the very file system the job must spare (use a node-local "
                       "one: /dev/shm, another tmpfs, or a local disk; the site's allow_fs can "
                       "allow %s)", dest, name, name);
}
