/* SPDX-License-Identifier: MIT */
/*
 * housekeep: the `list` and `clean` commands, on every node the job runs
 * on: what copies this user has there, and their removal once no job pins
 * them.
 */
#ifndef STG_HOUSEKEEP_H
#define STG_HOUSEKEEP_H

#include "node.h"
#include "stage.h"

/* Collective over the world.  The root prints the listing (text or JSON)
 * on stdout.  Returns the status every rank exits with. */
int stg_cmd_list(const struct stg_opts *o, struct stg_node *n);

/* Collective over the world.  Drops this job's pins on every node, then
 * removes the unpinned copies that o selects (--manifest or --all,
 * --older-than); the root reports what went and what stayed on stdout. */
int stg_cmd_clean(const struct stg_opts *o, struct stg_node *n);

#endif
