/* SPDX-License-Identifier: MIT */
/*
 * t-cache: the per-user directory on one node, without MPI: its checks, a
 * copy made, published, claimed, pinned, unpinned, listed and removed, the
 * budget with a copy in the making, and what a sweep leaves alone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "fixture.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static char dest[4096];

/* A complete copy named copy, of bytes (recorded), made as a run does. */
static int make_copy(struct stg_cache *c, const char *name, const char *key, uint64_t bytes)
{
    char *copy = stg_cache_copy_name(name, key), *tmp = NULL;
    int rc = stg_cache_tmp_new(c, copy, bytes, &tmp);
    struct stg_record rec = {name, key, "job1", "00", bytes, 1};
    if (rc == STG_OK)
        rc = stg_cache_record(c, tmp, &rec);
    if (rc == STG_OK)
        rc = stg_cache_commit(c, tmp, copy, false);
    free(tmp);
    free(copy);
    return rc;
}

static bool exists(const struct stg_cache *c, const char *name)
{
    struct stat st;
    return fstatat(c->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int main(void)
{
    if (!fx_tmpdir(dest, sizeof dest, "t-cache"))
        return 1;
    chmod(dest, 01777);     /* like /dev/shm */
    struct stg_cache c;
    char err[STG_MSG_MAX];

    stg_err_take(NULL, 0);
    char *missing = stg_xasprintf("%s/nosuch", dest);
    int rc = stg_cache_open(&c, missing);
    stg_err_get(err, sizeof err);
    ok(rc != STG_OK && strstr(err, "does not exist"), "a destination that does not exist: "
       "refused (%s)", err);
    ok(access(missing, F_OK) < 0, "... and not made");
    stg_cache_close(&c);
    free(missing);

    stg_err_take(NULL, 0);
    ok(stg_cache_open(&c, dest) == STG_OK, "the per-user directory is made below a 1777 "
       "destination");
    struct stat st;
    ok(fstat(c.fd, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid(),
       "... mode 0700, ours");

    ok(make_copy(&c, "a", "0123456789abcdef", 1000) == STG_OK, "a copy made and published");
    ok(stg_cache_use(&c, "a-0123456789abcdef"), "... and found as a usable copy");
    ok(!exists(&c, ".tmp-a-0123456789abcdef"), "... no temporary directory left");
    mkdirat(c.fd, "b-fedcba9876543210", 0700);
    ok(!stg_cache_use(&c, "b-fedcba9876543210") && !exists(&c, "b-fedcba9876543210"),
       "a directory with a copy's name but no record: not used, and removed");

    enum stg_claim claim;
    ok(stg_cache_claim(&c, "a-0123456789abcdef", "job2", true, false, &claim) == STG_OK &&
       claim == STG_CLAIM_WARM, "claim of a copy that is here: warm");
    char pin[128];
    snprintf(pin, sizeof pin, ".pins/job2/a-0123456789abcdef");
    ok(exists(&c, pin), "... and pinned for the job");
    ok(stg_cache_claim(&c, "c-1111111111111111", "job2", true, false, &claim) == STG_OK &&
       claim == STG_CLAIM_OWNER && c.lockfd >= 0, "claim of a copy that is not here: the "
       "owner, holding its lock");
    struct stg_cache other;
    stg_cache_open(&other, dest);
    enum stg_claim oclaim;
    ok(stg_cache_claim(&other, "c-1111111111111111", "job3", true, false, &oclaim) == STG_OK &&
       oclaim == STG_CLAIM_BUSY, "... another run finds it busy");
    stg_cache_release(&c);

    bool kept;
    char why[300];
    ok(stg_cache_remove(&c, "a-0123456789abcdef", false, NULL, &kept, why, sizeof why) ==
       STG_OK && kept && strstr(why, "pinned by job job2"), "a pinned copy is kept (%s)", why);
    unsigned count;
    ok(make_copy(&c, "d", "2222222222222222", 1000) == STG_OK &&
       stg_cache_pin(&c, "d-2222222222222222", "job2") == STG_OK, "a second copy, pinned by "
       "the same job");
    ok(stg_cache_unpin(&c, "job2", "a", false, &count) == STG_OK && count == 1 &&
       !exists(&c, pin) && exists(&c, ".pins/job2/d-2222222222222222"),
       "unpin by name: only that manifest's pin goes");
    ok(stg_cache_remove(&c, "a-0123456789abcdef", false, NULL, &kept, why, sizeof why) ==
       STG_OK && !kept && !exists(&c, "a-0123456789abcdef"), "... then the copy is removed");
    ok(stg_cache_unpin(&c, "job2", NULL, false, &count) == STG_OK && count == 1 &&
       !exists(&c, ".pins/job2"), "unpin the whole job: its directory goes");

    /* the budget counts a copy in the making */
    char *tmp = NULL;
    ok(stg_cache_tmp_new(&other, "e-3333333333333333", 600, &tmp) == STG_OK,
       "another run reserves 600 bytes for a copy in the making");
    /* budget 1100: d (1000, unpinned) goes; f (600) and e (600, reserved)
     * still do not fit, which only the reservation tells */
    stg_err_take(NULL, 0);
    rc = stg_cache_evict(&c, "f-4444444444444444", 600, 1100, "a test budget");
    stg_err_get(err, sizeof err);
    ok(rc != STG_OK && strstr(err, "e-3333333333333333") &&
       strstr(err, "being made by another run"), "the budget counts another run's copy in "
       "the making (%s)", err);
    ok(!exists(&c, "d-2222222222222222"), "... after evicting what it could");
    stg_cache_discard(&other, tmp);
    free(tmp);

    /* a sweep: an unlocked .tmp- of a run that is gone goes, a locked one stays */
    mkdirat(c.fd, ".tmp-g-5555555555555555-1-10", 0700);
    char *live = NULL;
    ok(stg_cache_tmp_new(&other, "h-6666666666666666", 10, &live) == STG_OK, "a live run's "
       "temporary directory, locked");
    stg_cache_sweep(&c);
    ok(!exists(&c, ".tmp-g-5555555555555555-1-10") && exists(&c, live),
       "a sweep removes the gone run's directory, not the live run's");
    stg_cache_discard(&other, live);
    free(live);

    stg_cache_close(&other);
    stg_cache_close(&c);
    stg_rm_tree_at(AT_FDCWD, dest);
    return done_testing();
}
