/* SPDX-License-Identifier: MIT */
/*
 * testhook: the test suite's hooks, all here and nowhere else.
 *
 * Each is an environment variable STAGE_PY_TEST_*, read where the hook
 * stands; unset (always, outside the test suite) a hook is one getenv()
 * and nothing more.  They make races and faults deterministic: a test
 * stops stage-py at a named point, changes the world, and lets it go on.
 * None of them runs a command or reads a file but its own markers.
 */
#ifndef STG_TESTHOOK_H
#define STG_TESTHOOK_H

#include "node.h"
#include "watchdog.h"

/* STAGE_PY_TEST_STALL=NODE:PHASE: NODE's leader hangs at the start of
 * PHASE (signals and --timeout still act), to show what --timeout does. */
void stg_test_stall(struct stg_watchdog *w, const char *phase);

/* STAGE_PY_TEST_CORRUPT=NODE[:SEQ]: the sequence number of the chunk to
 * damage as it arrives on NODE's leader (default 0), to show that the
 * digest catches it; -1 elsewhere. */
long stg_test_corrupt_seq(const struct stg_node *n);

/*
 * STAGE_PY_TEST_PAUSE=POINT:DIR: whoever reaches POINT creates DIR/POINT
 * and waits (signals and --timeout still act) until DIR/POINT.go exists.
 * Points: "after-scan" (the root, between the walk and the pack, in
 * staging and in pack) and "reserved" (a leader that holds its temporary
 * directory, before the transfer).
 */
void stg_test_pause(struct stg_watchdog *w, const char *point);

#endif
