/* SPDX-License-Identifier: MIT */
/*
 * admin: the commands that sites run from cron for the stacks they host:
 * `pack` (a bundle of a manifest's trees, with bytecode) and `scan` (the
 * manifest of what some imports really load).
 */
#ifndef STG_ADMIN_H
#define STG_ADMIN_H

#include "node.h"
#include "stage.h"

/* stage-py pack.  Collective over the world (the root does the work; a
 * single process needs no launcher).  The root prints one line on stdout:
 * what it wrote, or that the bundle is up to date. */
int stg_cmd_pack(const struct stg_opts *o, struct stg_node *n);

/* stage-py scan.  Collective over the world (the root does the work).
 * The root writes the manifest to --output (atomically) or stdout. */
int stg_cmd_scan(const struct stg_opts *o, struct stg_node *n);

/* stage-py check.  Collective over the world (the root does the work).
 * The root lists on stdout every file the imports took from outside the
 * copy; the status is STG_EFAIL when a module came from a staged tree's
 * original location. */
int stg_cmd_check(const struct stg_opts *o, struct stg_node *n);

#endif
