/* SPDX-License-Identifier: MIT */
/*
 * cmd: the commands of stage-py, one file each (stage.c, list.c, clean.c,
 * pack.c, scan.c, check.c), the options they share (parsed in main.c),
 * and the two shapes that several of them take (common.c).  Every command
 * is collective over the world and returns the status every rank exits
 * with; each collective phase ends in stg_agree().
 */
#ifndef STG_CMD_H
#define STG_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "bcast.h"
#include "env.h"
#include "node.h"
#include "python.h"
#include "util.h"
#include "watchdog.h"

struct stg_cache;

enum stg_command { STG_CMD_STAGE, STG_CMD_LIST, STG_CMD_CLEAN, STG_CMD_PACK, STG_CMD_SCAN,
                   STG_CMD_CHECK, STG_CMD_CONFIG };

/* stg_opts.given: the options that only the command line sets, when given
 * (for config, which says where each setting came from) */
#define STG_GIVEN_CHUNK 1u
#define STG_GIVEN_DEPTH 2u
#define STG_GIVEN_ALGO 4u
#define STG_GIVEN_THREADS 8u
#define STG_GIVEN_FAILURE 16u

struct stg_opts {
    enum stg_command cmd;
    const char *manifest;   /* path as given */
    const char *dest;       /* overrides the manifest's; NULL: not given */
    enum stg_shell shell;
    char *output;           /* absolute, or NULL for stdout */
    char *stats;            /* absolute, or NULL */
    uint64_t chunk_size;
    int depth;              /* --pipeline-depth; 0: auto */
    enum stg_bcast_algo algo;   /* --broadcast */
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
    const char *compress;   /* --compress; NULL: the site's, else none (stg_conf_compress) */
    bool fallback_to_trees; /* --fallback-to-trees: a bad bundle is not fatal */
    const char *python;     /* scan, check --python */
    struct stg_strv imports;    /* scan, check --import */
    struct stg_strv scripts;    /* scan --script: absolute paths */
    struct stg_strv excludes;   /* scan --exclude */
    bool keep_tests;        /* scan --keep-tests: no default exclude of test suites */
    bool whole_env;         /* scan --whole-env: a [python] manifest */
    char *bundle;           /* scan --bundle: absolute, or NULL */
    const char *name;       /* scan --name */
    bool skip_failed;       /* --on-node-failure skip */
    double timeout;         /* seconds; < 0: not given, 0: none */
    unsigned given;         /* STG_GIVEN_* */
};

/* Staging (stage.c): plan, prepare, stream, settings; see stage-py(1). */
int stg_cmd_stage(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w);
/* config (stage.c): the root prints the settings that staging with these
 * options would use, each with where it came from. */
int stg_cmd_config(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w);
/* list (list.c): the root prints every node's copies (text or JSON) on stdout. */
int stg_cmd_list(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w);
/* clean (clean.c): drops this job's pins on every node, then removes the
 * unpinned copies that o selects; the root reports on stdout. */
int stg_cmd_clean(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w);
/* pack (pack.c): the root writes the bundle and prints one line on stdout. */
int stg_cmd_pack(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w);
/* scan (scan.c): the root writes the manifest to --output (atomically) or stdout. */
int stg_cmd_scan(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w);
/* check (check.c): the root lists every file the imports took from outside
 * the copy; STG_EFAIL when a module came from a staged tree's original
 * location. */
int stg_cmd_check(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w);

/* ---- common.c: the shapes several commands share --------------------- */

/* The root does the work, every rank agrees; the root's text goes to
 * stdout, also with a failure that it reports (check), or with to_file to
 * --output instead, atomically, and only whole (scan). */
typedef int (*stg_root_work)(const struct stg_opts *o, struct stg_watchdog *w, char **text);
int stg_cmd_on_root(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w,
                    const char *phase, stg_root_work work, bool to_file);

/* What every leader needs for list and clean: where, and which copies. */
struct stg_target {
    char dest[4096];
    char name[80];          /* clean --manifest: copies of this name; "" any */
    int select;             /* clean: remove copies at all (--manifest, --all, --older-than) */
    double older_than;      /* < 0: any age */
    int dry_run;
    int all_users;          /* clean --all-users (root) */
    char job[128];          /* clean --job; "": this job (each node's own id) */
};

/* A per-node command (list, clean): the target, then node(): each
 * leader's work, its rows (one per line) gathered at the root, the
 * agreement, then report() on the root with every node's rows, in node
 * order (also after a failure, when always_report). */
typedef int (*stg_node_work)(const struct stg_node *n, const struct stg_target *tg,
                             struct stg_cache *c, struct stg_buf *rows);
typedef void (*stg_node_report)(const struct stg_opts *o, const struct stg_target *tg,
                                const struct stg_node *n, char *rows);
int stg_cmd_per_node(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w,
                     const char *phase, stg_node_work node, stg_node_report report,
                     bool always_report);

/* A row's fields (tab-separated, newline-terminated), in place.  Returns
 * how many, at most max. */
int stg_row_split(char *row, char **f, int max);

#define STG_IMPORTS_MAX 12     /* scan, check: --import (and scan's --script) given at most this often in all */
/* check hands its script the copy, the sources and every import */
_Static_assert(STG_IMPORTS_MAX + 2 <= STG_PYTHON_ARGS_MAX, "check's arguments must fit");
#define STG_DEFAULT_CHUNK ((uint64_t)256 << 10)  /* see stage-py-performance(7) */
#define STG_DEFAULT_DEPTH 0      /* auto: stg_bcast_depth_auto() */
#define STG_DEFAULT_UNPACK_THREADS 0    /* auto: stg_unpack_threads_auto() */
#define STG_DEFAULT_HEADROOM ((uint64_t)256 << 20)
#define STG_DEFAULT_LOCK_WAIT 300.0


#endif
