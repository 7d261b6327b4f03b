/* SPDX-License-Identifier: MIT */
/*
 * housekeep: `stage-py list` and `stage-py clean`.
 *
 * Phases, each ending in stg_agree() on the world:
 *   1. target: the root reads the site file (and, for clean --manifest, the
 *      manifest) and sends every rank the destination and the selection;
 *   2. work:   each leader lists (or cleans) its node's copies of this user
 *              and sends its rows, tab-separated, to the root, which prints
 *              them in node order on stdout.
 */
#include "config.h"

#include "housekeep.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "manifest.h"
#include "site.h"
#include "util.h"

/* What every leader needs: where, and which copies. */
struct target {
    char dest[PATH_MAX];
    char name[80];          /* clean --manifest: copies of this name; "" any */
    int select;             /* clean: remove copies at all (--manifest, --all, --older-than) */
    double older_than;      /* < 0: any age */
    int dry_run;
    int all_users;          /* clean --all-users (root) */
    char job[128];          /* clean --job; "": this job (each node's own id) */
};

/* Phase 1, on the root. */
static int target_root(const struct stg_opts *o, struct target *tg)
{
    char err[STG_MSG_MAX];
    struct stg_site site;
    struct stg_manifest *m = NULL;
    int rc = stg_site_load(&site, err, sizeof err);
    if (rc == STG_OK && o->manifest)
        rc = stg_manifest_load(o->manifest,
                               site.writable_manifests_warn ? STG_MANIFEST_WRITABLE_OK : 0, &m,
                               err, sizeof err);
    if (rc == STG_OK) {
        const char *dest = o->dest ? o->dest : m && m->dest ? m->dest
                           : site.dest ? site.dest : STG_DEFAULT_DEST;
        snprintf(tg->dest, sizeof tg->dest, "%s", dest);
        snprintf(tg->name, sizeof tg->name, "%s", m ? m->name : "");
        tg->select = m || o->all || o->older_than >= 0;
        tg->older_than = o->older_than;
        tg->dry_run = o->dry_run;
        tg->all_users = o->all_users;
        snprintf(tg->job, sizeof tg->job, "%s", o->job ? o->job : "");
    }
    stg_manifest_free(&m);
    stg_site_free(&site);
    if (rc)
        return stg_err_set(rc, "%s", err);
    return STG_OK;
}

/* Phase 1 on every rank.  OUT tg. */
static int target_all(const struct stg_opts *o, struct stg_node *n, struct target *tg,
                      char msg[STG_MSG_MAX])
{
    memset(tg, 0, sizeof *tg);
    stg_node_phase(n, "plan");
    int rc = n->is_root ? target_root(o, tg) : STG_OK;
    rc = stg_agree(n, n->world, rc, msg);
    if (rc)
        return rc;
    MPI_Request req;
    MPI_Ibcast(tg, (int)sizeof *tg, MPI_BYTE, 0, n->world, &req);     /* the target, to all */
    stg_node_wait(&req);
    return STG_OK;
}

/* Open this node's per-user directory; OUT absent: there is none (then
 * there is nothing to list or clean, and nothing is created). */
static int open_cache(struct stg_cache *c, const char *dest, bool *absent)
{
    char *dir = stg_xasprintf("%s/stage-py-%u", dest, (unsigned)geteuid());
    struct stat st;
    *absent = lstat(dir, &st) < 0 && errno == ENOENT;
    free(dir);
    if (*absent)
        return STG_OK;
    return stg_cache_open(c, dest);
}

/* Append to a growing text. */
static void add(char **text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(char **text, const char *fmt, ...)
{
    size_t have = *text ? strlen(*text) : 0;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        *text = stg_xrealloc(*text, have + (size_t)n + 1);
        vsnprintf(*text + have, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
}

static void iso_time(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

/* The fields of one row (tab-separated, newline-terminated), in place. */
static int split_row(char *row, char **f, int max)
{
    int k = 0;
    for (char *s = row; k < max;) {
        f[k++] = s;
        s += strcspn(s, "\t");
        if (!*s)
            break;
        *s++ = '\0';
    }
    return k;
}

/* ---- list ------------------------------------------------------------- */

static void print_list(const struct stg_opts *o, char *rows, const char *dest)
{
    char *f[9];
    if (o->json) {
        fputs("[", stdout);
        int k = 0;
        for (char *row = strtok(rows, "\n"); row; row = strtok(NULL, "\n"), k++) {
            if (split_row(row, f, 9) != 9)
                continue;
            char *node = stg_json_quote(f[0]), *name = stg_json_quote(f[1]);
            char *copy = stg_xasprintf("%s-%s", f[1], f[2]);
            char *path = stg_xasprintf("%s/stage-py-%u/%s", dest, (unsigned)geteuid(), copy);
            char *qpath = stg_json_quote(path);
            printf("%s\n  {\"node\": %s, \"name\": %s, \"key\": \"%s\", \"path\": %s, "
                   "\"bytes\": %s, \"files\": %s, \"created\": \"%s\", \"last_used\": \"%s\", "
                   "\"pins\": [", k ? "," : "", node, name, f[2], qpath, f[3], f[4], f[5],
                   f[6]);
            int p = 0;
            char *save = NULL;
            for (char *pin = strtok_r(f[7], ",", &save); pin; pin = strtok_r(NULL, ",", &save)) {
                char *q = stg_json_quote(pin);
                printf("%s%s", p++ ? ", " : "", q);
                free(q);
            }
            fputs("]}", stdout);
            free(node);
            free(name);
            free(copy);
            free(path);
            free(qpath);
        }
        fputs(k ? "\n]\n" : "]\n", stdout);
        return;
    }
    printf("%-12s %-20s %-16s %10s %8s  %-20s  %-20s  %s\n", "NODE", "NAME", "KEY", "SIZE",
           "FILES", "CREATED", "LAST USED", "PINS");
    for (char *row = strtok(rows, "\n"); row; row = strtok(NULL, "\n")) {
        if (split_row(row, f, 9) != 9)
            continue;
        char sz[32];
        printf("%-12s %-20s %-16s %10s %8s  %-20s  %-20s  %s\n", f[0], f[1], f[2],
               stg_format_size(strtoull(f[3], NULL, 10), sz, sizeof sz), f[4], f[5], f[6],
               f[7][0] ? f[7] : "-");
    }
}

/* One node's listing.  OUT rows: one per copy. */
static int list_node(const struct stg_node *n, const struct target *tg, struct stg_cache *c,
                     char **rows)
{
    bool absent;
    int rc = open_cache(c, tg->dest, &absent);
    struct stg_copy_info *v = NULL;
    size_t nv = 0;
    if (rc == STG_OK && !absent)
        rc = stg_cache_list(c, false, &v, &nv);
    for (size_t i = 0; i < nv; i++) {
        char used[32];
        iso_time(v[i].used, used, sizeof used);
        add(rows, "%s\t%s\t%s\t%llu\t%llu\t%s\t%s\t%s\t\n", n->name, v[i].name, v[i].key,
            v[i].bytes, v[i].files, v[i].created, used, v[i].pins);
    }
    free(v);
    return rc;
}

/* ---- clean ------------------------------------------------------------ */

/* One per-user directory's clean (open in c).  who: "" for one's own,
 * "stage-py-UID/" with --all-users.  OUT rows: what happened, one row each:
 *   node, "unpinned", job, count        pins of this job dropped
 *   node, "removed" | "would remove" | "kept", copy, bytes, why */
static int clean_dir(const struct stg_node *n, const struct target *tg, struct stg_cache *c,
                     const char *who, char **rows)
{
    char job[128];
    unsigned count = 0;
    int rc = STG_OK;
    if (tg->job[0])
        snprintf(job, sizeof job, "%s", tg->job);
    else
        stg_cache_job(job, sizeof job);
    /* clean --manifest X: only X's pins (the job may still use others);
     * --all-users drops the pins of the --job given, of every user */
    if (!tg->all_users || tg->job[0])
        rc = stg_cache_unpin(c, job, tg->name[0] ? tg->name : NULL, tg->dry_run, &count);
    if (count)
        add(rows, "%s\t%s\t%s%s\t%u\t\n", n->name, tg->dry_run ? "would unpin" : "unpinned",
            who, job, count);
    if (!tg->dry_run)
        stg_cache_sweep(c);
    if (rc || !tg->select)
        return rc;
    struct stg_copy_info *v;
    size_t nv;
    rc = stg_cache_list(c, !tg->dry_run, &v, &nv);
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < nv && rc == STG_OK; i++) {
        if (tg->name[0] && strcmp(v[i].name, tg->name) != 0)
            continue;
        if (tg->older_than >= 0 && (double)(now - v[i].used) < tg->older_than)
            continue;
        char why[300] = "";
        bool kept;
        /* a dry run sets aside the pins it would drop first */
        rc = stg_cache_remove(c, v[i].copy, tg->dry_run,
                              tg->all_users && !tg->job[0] ? NULL : job, &kept, why,
                              sizeof why);
        if (rc == STG_OK)
            add(rows, "%s\t%s\t%s%s\t%llu\t%s\n", n->name,
                kept ? "kept" : tg->dry_run ? "would remove" : "removed", who, v[i].copy,
                v[i].bytes, kept ? why : "");
    }
    free(v);
    return rc;
}

/* clean --all-users, as root: each stage-py-UID directory below dest,
 * entered with that user's file-system identity (setfsuid(2)): the
 * kernel then checks every step as that user's, and root's rights follow
 * nothing a user planted there. */
static int clean_all_users(const struct stg_node *n, const struct target *tg, char **rows)
{
    DIR *d = opendir(tg->dest);
    if (!d)
        return stg_err_set(STG_EFAIL, "cannot read '%s': %s", tg->dest, strerror(errno));
    /* One user's directory that cannot be cleaned (a user can make theirs
     * refused) must not spare the users after it: each is tried, and the
     * first error is the run's. */
    int rc = STG_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        if (strncmp(de->d_name, "stage-py-", 9) != 0 || !isdigit((unsigned char)de->d_name[9]))
            continue;
        unsigned long uid = strtoul(de->d_name + 9, &end, 10);
        struct stat st;
        if (*end || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != (uid_t)uid)
            continue;   /* not a per-user directory: left alone */
        struct passwd *pw = getpwuid((uid_t)uid);
        gid_t gid = pw ? pw->pw_gid : st.st_gid;
        setfsgid(gid);
        setfsuid((uid_t)uid);
        if ((uid_t)setfsuid((uid_t)-1) != (uid_t)uid) {
            setfsuid(0);
            setfsgid(0);
            rc = stg_err_set(STG_EFAIL, "cannot take the identity of uid %lu", uid);
            break;
        }
        struct stg_cache c;
        char who[64];
        snprintf(who, sizeof who, "%s/", de->d_name);
        int r = stg_cache_open_as(&c, tg->dest, (uid_t)uid);
        if (r == STG_OK)
            r = clean_dir(n, tg, &c, who, rows);
        if (r != STG_OK && rc != STG_OK) {
            char why[STG_MSG_MAX];      /* the first error is kept; say this one */
            stg_err_get(why, sizeof why);
            stg_log_warn("%s: %s", de->d_name, why);
        }
        rc = rc ? rc : r;
        stg_cache_close(&c);
        setfsuid(0);
        setfsgid(0);
    }
    closedir(d);
    return rc;
}

/* One node's clean: this user's directory, or every user's. */
static int clean_node(const struct stg_node *n, const struct target *tg, struct stg_cache *c,
                      char **rows)
{
    if (tg->all_users)
        return clean_all_users(n, tg, rows);
    bool absent;
    int rc = open_cache(c, tg->dest, &absent);
    if (rc || absent)
        return rc;
    return clean_dir(n, tg, c, "", rows);
}

static void print_clean(char *rows, const struct target *tg, int nnodes)
{
    unsigned long long freed = 0, copies = 0;
    char *f[5], sz[32];
    for (char *row = strtok(rows, "\n"); row; row = strtok(NULL, "\n")) {
        if (split_row(row, f, 5) != 5)
            continue;
        if (strcmp(f[1], "unpinned") == 0 || strcmp(f[1], "would unpin") == 0) {
            printf("%s: %s %s pin%s of job %s\n", f[0], f[1][0] == 'w' ? "would drop" : "dropped",
                   f[3], strcmp(f[3], "1") ? "s" : "", f[2]);
            continue;
        }
        unsigned long long b = strtoull(f[3], NULL, 10);
        if (strcmp(f[1], "kept") == 0) {
            printf("%s: kept %s: %s\n", f[0], f[2], f[4]);
            continue;
        }
        printf("%s: %s %s (%s)\n", f[0], f[1], f[2], stg_format_size(b, sz, sizeof sz));
        freed += b;
        copies++;
    }
    printf("%s %s in %llu cop%s on %d node%s\n", tg->dry_run ? "would free" : "freed",
           stg_format_size(freed, sz, sizeof sz), copies, copies == 1 ? "y" : "ies", nnodes,
           nnodes == 1 ? "" : "s");
}

/* Both commands: the target, then each leader's work, its rows gathered
 * at the root, the agreement, and the root's report. */
static int housekeep(const struct stg_opts *o, struct stg_node *n, bool clean)
{
    char msg[STG_MSG_MAX] = "";
    struct target tg;
    struct stg_cache cache = {.fd = -1, .tmpfd = -1, .lockfd = -1, .budgetfd = -1};
    char *rows = NULL;
    int rc = target_all(o, n, &tg, msg);
    if (rc)
        goto out;
    stg_node_phase(n, clean ? "clean" : "list");
    if (n->is_leader) {
        rc = clean ? clean_node(n, &tg, &cache, &rows) : list_node(n, &tg, &cache, &rows);
        /* The rows of every node, also of one that failed half-way. */
        char *all = stg_node_gather_text(n, rows ? rows : "");
        free(rows);
        rows = all;
    }
    rc = stg_agree(n, n->world, rc, msg);
    if (n->is_root && clean)
        print_clean(rows ? rows : (char[]){""}, &tg, n->nnodes);
    else if (n->is_root && rc == STG_OK)
        print_list(o, rows ? rows : (char[]){""}, tg.dest);
out:
    if (rc && n->is_root)
        fprintf(stderr, "stage-py: %s\n", msg);
    if (n->is_leader && cache.dir)
        stg_cache_close(&cache);
    free(rows);
    return rc;
}

int stg_cmd_list(const struct stg_opts *o, struct stg_node *n)
{
    return housekeep(o, n, false);
}

int stg_cmd_clean(const struct stg_opts *o, struct stg_node *n)
{
    return housekeep(o, n, true);
}
