/* SPDX-License-Identifier: MIT */
/*
 * admin: the commands that sites run from cron for the stacks they host:
 * `pack` (a bundle of a manifest's trees, with bytecode).
 */
#ifndef STG_ADMIN_H
#define STG_ADMIN_H

#include "node.h"
#include "stage.h"

/* stage-py pack.  Collective over the world (the root does the work; a
 * single process needs no launcher).  The root prints one line on stdout:
 * what it wrote, or that the bundle is up to date. */
int stg_pack_run(const struct stg_opts *o, struct stg_node *n);

#endif
