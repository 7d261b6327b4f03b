/* SPDX-License-Identifier: MIT */
/*
 * clean: stage-py clean.  Each leader drops this job's pins on its node,
 * then removes the unpinned copies selected (--manifest, --all,
 * --older-than; root's --all-users: every user's directory, each with that
 * user's identity); the root reports what went and what stayed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cmd.h"
#include "log.h"

/* One per-user directory's clean (open in c).  who: "" for one's own,
 * "stage-py-UID/" with --all-users.  OUT rows: what happened, one row each:
 *   node, "unpinned", job, count        pins of this job dropped
 *   node, "removed" | "would remove" | "kept", copy, bytes, why */
static int clean_dir(const struct stg_node *n, const struct stg_target *tg, struct stg_cache *c,
                     const char *who, struct stg_buf *rows)
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
        stg_buf_printf(rows, "%s\t%s\t%s%s\t%u\t\n", n->name, tg->dry_run ? "would unpin" : "unpinned",
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
            stg_buf_printf(rows, "%s\t%s\t%s%s\t%llu\t%s\n", n->name,
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
static int clean_all_users(const struct stg_node *n, const struct stg_target *tg, struct stg_buf *rows)
{
    DIR *d = opendir(tg->dest);
    if (!d)
        return stg_err_set(STG_EFAIL, "cannot read '%s': %s", tg->dest, strerror(errno));
    /* One user's directory that cannot be cleaned (a user can make theirs
     * refused) must not spare the users after it: each is tried, and the
     * first error is the run's. */
    int rc = STG_OK;
    char first[STG_MSG_MAX] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uid_t uid;
        struct stat st;
        if (!stg_cache_dir_uid(de->d_name, &uid) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != uid)
            continue;   /* not a per-user directory: left alone */
        struct passwd *pw = getpwuid(uid);
        gid_t gid = pw ? pw->pw_gid : st.st_gid;
        setfsgid(gid);
        setfsuid(uid);
        if ((uid_t)setfsuid((uid_t)-1) != uid) {
            setfsuid(0);
            setfsgid(0);
            rc = stg_err_set(STG_EFAIL, "cannot take the identity of uid %lu", (unsigned long)uid);
            break;
        }
        struct stg_cache c;
        char who[64];
        snprintf(who, sizeof who, "%s/", de->d_name);
        int r = stg_cache_open_as(&c, tg->dest, uid);
        if (r == STG_OK)
            r = clean_dir(n, tg, &c, who, rows);
        if (r != STG_OK) {
            /* the first user's error is the run's (recorded again below);
             * each later one is said here */
            char why[STG_MSG_MAX];
            stg_err_take(why, sizeof why);
            if (rc != STG_OK)
                stg_log_warn("%s: %s", de->d_name, why);
            else
                snprintf(first, sizeof first, "%s", why);
        }
        rc = rc ? rc : r;
        stg_cache_close(&c);
        setfsuid(0);
        setfsgid(0);
    }
    closedir(d);
    if (first[0]) {
        stg_err_take(NULL, 0);
        stg_err_set(rc, "%s", first);
    }
    return rc;
}

/* One node's clean: this user's directory, or every user's. */
static int clean_node(const struct stg_node *n, const struct stg_target *tg, struct stg_cache *c,
                      struct stg_buf *rows)
{
    if (tg->all_users)
        return clean_all_users(n, tg, rows);
    bool absent;
    int rc = stg_cache_open_existing(c, tg->dest, &absent);
    if (rc || absent)
        return rc;
    return clean_dir(n, tg, c, "", rows);
}

static void print_clean(const struct stg_opts *o, const struct stg_target *tg,
                        const struct stg_node *n, char *rows)
{
    (void)o;
    int nnodes = n->nnodes;
    unsigned long long freed = 0, copies = 0;
    char *f[5], sz[32];
    for (char *row = strtok(rows, "\n"); row; row = strtok(NULL, "\n")) {
        if (stg_row_split(row, f, 5) != 5)
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

int stg_cmd_clean(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_per_node(o, n, w, "clean", clean_node, print_clean, true);
}
