/* SPDX-License-Identifier: MIT */
/*
 * list: stage-py list.  Each leader lists its node's copies of this user,
 * one tab-separated row each; the root prints every node's rows, in node
 * order, as a table or as JSON (--json).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cmd.h"
#include "log.h"

static void iso_time(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

static void print_list(const struct stg_opts *o, const struct stg_target *tg,
                       const struct stg_node *n, char *rows)
{
    (void)n;
    char *dir = stg_cache_dir(tg->dest, geteuid());
    char *f[9];
    if (o->json) {
        fputs("[", stdout);
        int k = 0;
        for (char *row = strtok(rows, "\n"); row; row = strtok(NULL, "\n"), k++) {
            if (stg_row_split(row, f, 9) != 9)
                continue;
            char *node = stg_json_quote(f[0]), *name = stg_json_quote(f[1]);
            char *copy = stg_xasprintf("%s-%s", f[1], f[2]);
            char *path = stg_xasprintf("%s/%s", dir, copy);
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
        free(dir);
        return;
    }
    free(dir);
    printf("%-12s %-20s %-16s %10s %8s  %-20s  %-20s  %s\n", "NODE", "NAME", "KEY", "SIZE",
           "FILES", "CREATED", "LAST USED", "PINS");
    for (char *row = strtok(rows, "\n"); row; row = strtok(NULL, "\n")) {
        if (stg_row_split(row, f, 9) != 9)
            continue;
        char sz[32];
        printf("%-12s %-20s %-16s %10s %8s  %-20s  %-20s  %s\n", f[0], f[1], f[2],
               stg_format_size(strtoull(f[3], NULL, 10), sz, sizeof sz), f[4], f[5], f[6],
               f[7][0] ? f[7] : "-");
    }
}

/* One node's listing.  OUT rows: one per copy. */
static int list_node(const struct stg_node *n, const struct stg_target *tg, struct stg_cache *c,
                     struct stg_buf *rows)
{
    bool absent;
    int rc = stg_cache_open_existing(c, tg->dest, &absent);
    struct stg_copy_info *v = NULL;
    size_t nv = 0;
    if (rc == STG_OK && !absent)
        rc = stg_cache_list(c, false, &v, &nv);
    for (size_t i = 0; i < nv; i++) {
        char used[32];
        iso_time(v[i].used, used, sizeof used);
        stg_buf_printf(rows, "%s\t%s\t%s\t%llu\t%llu\t%s\t%s\t%s\t\n", n->name, v[i].name, v[i].key,
            v[i].bytes, v[i].files, v[i].created, used, v[i].pins);
    }
    free(v);
    return rc;
}

int stg_cmd_list(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_per_node(o, n, w, "list", list_node, print_list, false);
}
