/* SPDX-License-Identifier: MIT */
/*
 * common: the shapes that several commands share: the root does the work
 * and every rank agrees (pack, scan, check); or every node does its part
 * and the root reports every node's rows (list, clean).
 *
 * Per-node phases, each ending in stg_agree() on the world:
 *   1. target: the root reads the site file (and, for clean --manifest, the
 *      manifest) and sends every rank the destination and the selection;
 *   2. work:   each leader lists (or cleans) its node's copies of this user
 *              and sends its rows, tab-separated, to the root, which hands
 *              them in node order to the command's report.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agree.h"
#include "cache.h"
#include "cmd.h"
#include "conf.h"
#include "log.h"
#include "output.h"

int stg_cmd_on_root(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w,
                    const char *phase, stg_root_work work, bool to_file_ok)
{
    char msg[STG_MSG_MAX] = "";
    char *text = NULL;
    stg_watchdog_phase(w, phase);
    /* --output is opened first: a wrong path fails before the work.  A
     * manifest gets no group or other write bits whatever the umask: a job
     * would refuse it. */
    struct stg_output out;
    bool to_file = to_file_ok && o->output, opened = false;
    mode_t um = umask(0);
    umask(um);
    int rc = STG_OK;
    if (n->is_root && to_file) {
        rc = stg_output_open(&out, o->output, 0666 & ~um & ~(mode_t)022, "--output");
        opened = rc == STG_OK;
    }
    if (n->is_root && rc == STG_OK)
        rc = work(o, w, &text);
    if (opened && rc == STG_OK && text) {
        rc = stg_output_put(&out, text, strlen(text));
    } else if (opened) {
        stg_output_abort(&out);
    } else if (text && (fputs(text, stdout) == EOF || fflush(stdout) == EOF) && rc == STG_OK) {
        rc = stg_err_set(STG_EFAIL, "cannot write to stdout: %s", strerror(errno));
    }
    rc = stg_agree(w, n->world, rc, msg);
    if (rc && n->is_root)
        fprintf(stderr, "stage-py: %s\n", msg);
    free(text);
    return rc;
}

/* Phase 1, on the root. */
static int target_root(const struct stg_opts *o, struct stg_target *tg)
{
    struct stg_conf conf;
    int rc = stg_conf_load(&conf, o->manifest, 0);
    const struct stg_manifest *m = conf.m;
    if (rc == STG_OK) {
        snprintf(tg->dest, sizeof tg->dest, "%s", stg_conf_dest(&conf, o->dest));
        snprintf(tg->name, sizeof tg->name, "%s", m ? m->name : "");
        tg->select = m || o->all || o->older_than >= 0;
        tg->older_than = o->older_than;
        tg->dry_run = o->dry_run;
        tg->all_users = o->all_users;
        snprintf(tg->job, sizeof tg->job, "%s", o->job ? o->job : "");
    }
    stg_conf_free(&conf);
    return rc;
}

/* Phase 1 on every rank.  OUT tg. */
static int target_all(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w,
                      struct stg_target *tg, char msg[STG_MSG_MAX])
{
    memset(tg, 0, sizeof *tg);
    stg_watchdog_phase(w, "plan");
    int rc = n->is_root ? target_root(o, tg) : STG_OK;
    rc = stg_agree(w, n->world, rc, msg);
    if (rc)
        return rc;
    MPI_Request req;
    MPI_Ibcast(tg, (int)sizeof *tg, MPI_BYTE, 0, n->world, &req);     /* the target, to all */
    stg_wait(w, &req);
    return STG_OK;
}

/* The fields of one row (tab-separated, newline-terminated), in place. */
int stg_row_split(char *row, char **f, int max)
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

/* Both commands: the target, then each leader's work, its rows gathered
 * at the root, the agreement, and the root's report. */
int stg_cmd_per_node(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w,
                     const char *phase, stg_node_work node, stg_node_report report,
                     bool always_report)
{
    char msg[STG_MSG_MAX] = "";
    struct stg_target tg;
    struct stg_cache cache = {.fd = -1, .tmpfd = -1, .lockfd = -1, .budgetfd = -1};
    struct stg_buf mine = {0};
    char *rows = NULL;
    int rc = target_all(o, n, w, &tg, msg);
    if (rc)
        goto out;
    stg_watchdog_phase(w, phase);
    if (n->is_leader) {
        rc = node(n, &tg, &cache, &mine);
        /* The rows of every node, also of one that failed half-way. */
        rows = stg_gather_text(w, mine.s ? mine.s : "");
        free(mine.s);
    }
    rc = stg_agree(w, n->world, rc, msg);
    if (n->is_root && (rc == STG_OK || always_report))
        report(o, &tg, n, rows ? rows : (char[]){""});
out:
    if (rc && n->is_root)
        fprintf(stderr, "stage-py: %s\n", msg);
    if (n->is_leader && cache.dir)
        stg_cache_close(&cache);
    free(rows);
    return rc;
}
