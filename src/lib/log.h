/* SPDX-License-Identifier: MIT */
/*
 * log: messages on stderr (never stdout), and the first error of this rank,
 * kept so that the agreement at the end of a phase can carry it to the root.
 */
#ifndef STG_LOG_H
#define STG_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Exit statuses: the same on every rank (see EXIT STATUS in stage-py(1)). */
enum stg_status {
    STG_OK = 0,         /* every node holds a complete copy */
    STG_EFAIL = 1,      /* staging failed on at least one node */
    STG_EUSAGE = 2,     /* bad command line or manifest */
    STG_ETIMEOUT = 3,   /* --timeout passed: the job was aborted */
    STG_EINTERNAL = 70  /* a broken invariant (EX_SOFTWARE) */
};

#define STG_MSG_MAX 1024

enum stg_verbosity { STG_QUIET = -1, STG_NORMAL = 0, STG_VERBOSE = 1, STG_DEBUG = 2 };

/* IN node: name used in messages; IN verbosity: enum stg_verbosity. */
void stg_log_init(const char *node, int verbosity);
const char *stg_log_node(void);
int stg_log_verbosity(void);

/* Make s one line in place: a newline, a tab or another control character
 * in a name (a file may be called "x\nstage-py: done") becomes \n, \t or
 * \xNN, so that no name can fake a line of its own.  Every message and
 * every recorded error goes through it. */
void stg_log_escape(char *s, size_t len);

/* Printed at once on stderr as "stage-py: ...". */
void stg_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void stg_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void stg_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void stg_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The one error convention of stage-py.  A function that can fail returns
 * an enum stg_status (STG_OK, or why it failed) and records its message
 * with stg_err_set(), which names what failed (the file:line, the path,
 * the node); callers pass the status on, and the agreement at the end of
 * the phase (agree.h) carries the message of the lowest failing rank to
 * every rank.  A function that returns something else (a descriptor, a
 * string) returns -1 or NULL on failure, having recorded its message just
 * the same.  Only pure predicates and parsers (bool, or -1 like the system
 * calls they wrap) have no message of their own.
 *
 * stg_err_set(): record an error of this rank without printing it: the
 * first one wins and later ones are dropped, since they are usually its
 * consequences.  Safe to call from any thread.  Returns status, so
 * `return stg_err_set(...)` works.
 */
int stg_err_set(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int stg_err_status(void);
/* OUT buf: the recorded message ("" if none). */
void stg_err_get(char *buf, size_t len);
/* Set the recorded error aside (a caller that handles it: a warning, a
 * fallback, a failed node that is skipped), and record nothing in its
 * place.  Returns its status; OUT buf (may be NULL): its message.  Only on
 * the MPI thread, and only while no pack or unpack thread runs: they
 * record into the same place. */
int stg_err_take(char *buf, size_t len);

#endif
