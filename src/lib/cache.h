/* SPDX-License-Identifier: MIT */
/*
 * cache: the node-local directory that holds staged copies.
 *
 *   <dest>/stage-py-<uid>/               checked: ours, a real directory, 0700-ish
 *   <dest>/stage-py-<uid>/<name>-<key>/  a complete copy (appears by rename only),
 *       .stage-py.json                    its record, written last: a copy
 *                                         without it is never trusted
 *   <dest>/stage-py-<uid>/.tmp-<name>-<key>-<pid>-<bytes>
 *                                        a copy being written, private to one run
 *                                        (locked while it lives); <bytes> is the
 *                                        room it takes, counted in the budget
 *   <dest>/stage-py-<uid>/.budget-lock   held (flock) while a run counts the cache
 *                                        against its budget and reserves room
 *   <dest>/stage-py-<uid>/.lock-<name>-<key>
 *                                        the copy's lock (flock): held by the run
 *                                        that writes the copy, and briefly by
 *                                        runs that pin or remove it
 *   <dest>/stage-py-<uid>/.pins/<job>/<name>-<key>
 *                                        a pin: job <job> uses the copy; clean
 *                                        and eviction leave pinned copies alone
 */
#ifndef STG_CACHE_H
#define STG_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stg_cache {
    char *dest;             /* the node-local root, e.g. /dev/shm */
    char *dir;              /* <dest>/stage-py-<uid> */
    int fd;                 /* open on dir: every later step works relative to it */
    int tmpfd;              /* open on our temporary directory, locked; -1: none */
    int lockfd;             /* the copy's lock, held; -1: none */
    int budgetfd;           /* the budget lock, held; -1: none */
    uid_t uid;              /* whose directory it is */
};

/*
 * Create (if needed) and check the per-user directory below dest: it must
 * be a real directory (not a symbolic link), owned by this user, and not
 * writable by group or others.  Returns STG_OK or an error (stg_err_set()).
 */
int stg_cache_open(struct stg_cache *c, const char *dest);
/* The same, but only if the per-user directory exists: OUT absent, it
 * does not (then nothing is opened, nor created: list and clean). */
int stg_cache_open_existing(struct stg_cache *c, const char *dest, bool *absent);
/* The same for the user uid (root's clean --all-users), called with the
 * file-system identity already uid's (setfsuid(2)), so that nothing in
 * that user's directory is followed or changed with root's rights. */
int stg_cache_open_as(struct stg_cache *c, const char *dest, uid_t uid);
void stg_cache_close(struct stg_cache *c);

/* The per-user directory below dest, "<dest>/stage-py-<uid>" (malloc'd):
 * the one place its name is made. */
char *stg_cache_dir(const char *dest, uid_t uid);
/* Whether name (an entry of a destination) is the name of a per-user
 * directory; OUT uid: whose. */
bool stg_cache_dir_uid(const char *name, uid_t *uid);

/* OUT copy: "<name>-<key>". */
char *stg_cache_copy_name(const char *name, const char *key);
/* What a complete copy records about itself (.stage-py.json). */
struct stg_record {
    const char *name, *key;
    const char *job;        /* the job that made it */
    const char *digest;     /* hex XXH3-128 of the stream it came from */
    unsigned long long bytes, files;
};

#define STG_RECORD ".stage-py.json"

/*
 * Use the copy of that name ("<name>-<key>") if a complete one is present:
 * a real directory of ours with a record that names the key.  Then it is
 * marked used now (the record's modification time is the copy's last use)
 * and true is returned.  A directory of that name without a valid record
 * is not a copy: it is removed, with a warning, and false is returned.
 */
bool stg_cache_use(const struct stg_cache *c, const char *copy);

/*
 * The job this run belongs to, for pins: $SLURM_JOB_ID, else $PBS_JOBID,
 * $LSB_JOBID or $FLUX_JOB_ID, else "session-<sid>" (a pin that lasts as
 * long as this session).  Characters other than [A-Za-z0-9._-] become '_'.
 * OUT buf.
 */
const char *stg_cache_job(char *buf, size_t len);

enum stg_claim {
    STG_CLAIM_WARM,         /* a usable copy is here, and now pinned for job */
    STG_CLAIM_OWNER,        /* no usable copy: this run holds its lock and makes it */
    STG_CLAIM_BUSY          /* another run holds the lock: it is making the copy */
};

/*
 * One attempt, without waiting, at the copy's lock.  With the lock: a
 * usable copy (present, and made by job unless reuse) is pinned for job and
 * the lock released (WARM); otherwise, or with force, the lock stays held
 * (OWNER).  OUT claim.  Returns STG_OK or an error.
 */
int stg_cache_claim(struct stg_cache *c, const char *copy, const char *job, bool reuse,
                    bool force, enum stg_claim *claim);
/* Release the copy's lock, if held. */
void stg_cache_release(struct stg_cache *c);
/* Record a pin of copy for job.  Returns STG_OK or an error. */
int stg_cache_pin(const struct stg_cache *c, const char *copy, const char *job);
/* Drop job's pins on this node: of the copies named name ("<name>-<key>"),
 * or, with name NULL, every one (dry_run: only count them).  OUT count:
 * pins dropped. */
int stg_cache_unpin(const struct stg_cache *c, const char *job, const char *name, bool dry_run,
                    unsigned *count);

/* A copy as list and clean see it. */
struct stg_copy_info {
    char copy[128];         /* "<name>-<key>" */
    char name[80], key[24];
    char created[32];       /* as recorded, UTC */
    unsigned long long bytes, files;
    long long used;         /* last use, seconds since the epoch */
    char pins[256];         /* jobs that pin it, comma-separated; "" none */
};

/* This user's complete copies here, by name.  tidy: drop stale session
 * pins on the way (not for list or a dry run).  OUT v, n. */
int stg_cache_list(const struct stg_cache *c, bool tidy, struct stg_copy_info **v, size_t *n);

/*
 * Remove copy unless it is pinned or another run holds its lock: the copy
 * leaves its name by one rename, then goes.  dry_run: only say whether it
 * would, not counting a pin of job alone (which a real clean drops first).
 * OUT kept: it stays, and why says why.  Returns STG_OK (removed, or kept),
 * or an error (stg_err_set()) when it could not be removed.
 */
int stg_cache_remove(struct stg_cache *c, const char *copy, bool dry_run, const char *job,
                     bool *kept, char *why, size_t whylen);

/*
 * The budget lock, without waiting (OUT got): held from the count of
 * stg_cache_evict() until stg_cache_tmp_new() has reserved the room, so
 * that runs at once never each count the room that the other one takes.
 */
int stg_cache_budget_trylock(struct stg_cache *c, bool *got);
void stg_cache_budget_unlock(struct stg_cache *c);

/*
 * Make room for a copy of need bytes within budget: the recorded bytes of
 * this user's complete copies, and the room reserved by copies that other
 * live runs are making, must stay within it.  Removes this user's least
 * recently used copies that are neither pinned nor locked, never keep.
 * from: where the budget was set, for the message.  Call it holding the
 * budget lock.  Returns STG_OK, or an error if pinned copies and copies in
 * the making leave no room.
 */
int stg_cache_evict(struct stg_cache *c, const char *keep, uint64_t need, uint64_t budget,
                    const char *from);
/* Write the record into the temporary directory, the last file of the copy. */
int stg_cache_record(const struct stg_cache *c, const char *tmp, const struct stg_record *r);
/* Make a private temporary directory for copy, locked (flock) for as long as
 * this run writes it, reserving bytes in the budget.  OUT tmp: its name. */
int stg_cache_tmp_new(struct stg_cache *c, const char *copy, uint64_t bytes, char **tmp);
/* Remove what runs that are gone left behind: unlocked temporary
 * directories, and probes and half-made directories over an hour old.
 * Never a directory that a live run holds, never a complete copy. */
void stg_cache_sweep(const struct stg_cache *c);
/*
 * Publish tmp as copy with one rename.  If a complete copy of the same name
 * (the same content) appeared meanwhile, keep that one and remove tmp; with
 * replace (--force, reuse off), swap the two atomically and remove the old.
 */
int stg_cache_commit(struct stg_cache *c, const char *tmp, const char *copy, bool replace);
/* Remove tmp and everything below it. */
void stg_cache_discard(struct stg_cache *c, const char *tmp);

#endif
