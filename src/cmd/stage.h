/* SPDX-License-Identifier: MIT */
/*
 * stage: the `stage` command, the stages in order, each collective phase
 * ending in an agreement of all ranks.
 */
#ifndef STG_STAGE_H
#define STG_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "env.h"
#include "node.h"
#include "util.h"

enum stg_command { STG_CMD_STAGE, STG_CMD_LIST, STG_CMD_CLEAN, STG_CMD_PACK, STG_CMD_SCAN,
                   STG_CMD_CHECK };

struct stg_opts {
    enum stg_command cmd;
    const char *manifest;   /* path as given */
    const char *dest;       /* overrides the manifest's; NULL: not given */
    enum stg_shell shell;
    char *output;           /* absolute, or NULL for stdout */
    char *stats;            /* absolute, or NULL */
    uint64_t chunk_size;
    int depth;
    int unpack_threads;     /* threads that write a node's copy; 0: auto */
    uint64_t headroom;      /* memory kept free beside the copy */
    bool headroom_set;
    uint64_t max_cache;     /* --max-cache: the cache budget; 0: none */
    bool max_cache_set;
    double lock_wait;       /* --lock-wait, seconds; < 0: not given */
    bool force;             /* --force: stage even where a copy is present */
    bool json;              /* list --json */
    bool all;               /* clean --all */
    bool all_users;         /* clean --all-users: every user's directory (root) */
    bool dry_run;           /* clean --dry-run */
    double older_than;      /* clean --older-than, seconds; < 0: not given */
    const char *job;        /* clean --job: whose pins to drop; NULL: this job's */
    const char *compress;   /* pack --compress; NULL: STG_DEFAULT_COMPRESS */
    bool fallback_to_trees; /* --fallback-to-trees: a bad bundle is not fatal */
    const char *python;     /* scan, check --python */
    struct stg_strv imports;    /* scan, check --import */
    const char *name;       /* scan --name */
    bool skip_failed;       /* --on-node-failure skip */
    double timeout;         /* seconds; < 0: not given, 0: none */
};

/* Collective over the world.  Returns the status every rank exits with. */
int stg_cmd_stage(const struct stg_opts *o, struct stg_node *n);

#define STG_DEFAULT_DEST "/dev/shm"
#define STG_DEFAULT_CHUNK ((uint64_t)1 << 20)   /* see stage-py-performance(7) */
#define STG_DEFAULT_DEPTH 4
#define STG_DEFAULT_UNPACK_THREADS 0    /* auto: stg_unpack_threads_auto() */
#define STG_DEFAULT_HEADROOM ((uint64_t)256 << 20)
#define STG_DEFAULT_LOCK_WAIT 300.0
#define STG_DEFAULT_COMPRESS "none"

#endif
