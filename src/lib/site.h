/* SPDX-License-Identifier: MIT */
/*
 * site: the site configuration file, $(sysconfdir)/stage-py.conf (or
 * $STAGE_PY_CONF), where administrators set the defaults and the limits of
 * every run on their system (stage-py.conf(5)).
 */
#ifndef STG_SITE_H
#define STG_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stg_site {
    char *path;             /* the file read; NULL: there is none */
    char *dest;             /* default destination; NULL: not set */
    int dest_line;
    bool reuse;             /* copies of other jobs may be used (default true) */
    int reuse_line;
    uint64_t max_cache;     /* default and upper limit of the cache budget; 0: none */
    int max_cache_line;
    uint64_t max_node_cache;    /* what a destination may hold in all, every user's
                                 * copies and anything else on it; 0: no cap */
    int max_node_cache_line;
    uint64_t headroom;      /* default and lower limit of --headroom */
    int headroom_line;      /* 0: not set */
    double timeout;         /* default and upper limit of the timeout; 0: none */
    int timeout_line;
    double lock_wait;       /* default bound on waiting for another run; < 0: not set */
    int lock_wait_line;
    bool writable_manifests_warn;   /* writable_manifests = warn */
    int writable_manifests_line;
    char *allow_fs;         /* shared file-system types allowed as destinations */
    int allow_fs_line;
    const char *compress;   /* default of --compress (util.h's stg_compressions); NULL: not set */
    int compress_line;
};
/* The *_line fields: the line of the file that set the key; 0: not set. */

/*
 * Read the site file: $STAGE_PY_CONF if set, else STG_SITE_CONF.  A missing
 * STG_SITE_CONF is no error, nor is STAGE_PY_CONF=/dev/null (OUT s then
 * holds no settings); a missing file that STAGE_PY_CONF names is.  Returns
 * STG_OK, or STG_EUSAGE with "file:line: what" recorded (stg_err_set()).
 */
int stg_site_load(struct stg_site *s);
void stg_site_free(struct stg_site *s);
/* "the site's KEY (FILE:LINE)", for messages about a limit. */
char *stg_site_where(const struct stg_site *s, const char *key, int line);

#endif
