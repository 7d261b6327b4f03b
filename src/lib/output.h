/* SPDX-License-Identifier: MIT */
/*
 * output: the files stage-py writes (the settings, --stats, a manifest from
 * scan, a bundle from pack), each written whole under a private temporary
 * name and renamed into place, relative to a directory opened once with no
 * link followed.  As root, that directory must answer to root alone
 * (stg_trust_check()): a directory that another user controls could turn
 * root's write into a write of theirs.
 *
 * What is at the path decides how, as a shell redirection would, except
 * that nothing but a regular file is ever replaced:
 *   nothing, or a regular file   written beside it, renamed over it;
 *   a character device            written in place (/dev/null, a terminal);
 *   a FIFO                        written in place, opened without waiting:
 *                                 one that nobody reads is an error;
 *   a directory, anything else,   an error, before anything is written.
 *   or a missing directory
 */
#ifndef STG_OUTPUT_H
#define STG_OUTPUT_H

#include <stddef.h>
#include <sys/types.h>

struct stg_output {
    int dirfd;              /* the directory, checked and open */
    int fd;                 /* the temporary file, open for writing; -1: none */
    char *path;             /* as given, for messages */
    char *name;             /* the file's name in dirfd */
    char *tmp;              /* the temporary name in dirfd; NULL: in place */
    const char *what;       /* the option that named it ("--output"); NULL: none */
    mode_t mode;
};

/*
 * Start writing path (absolute): where it is going is checked and opened
 * now, so a command opens its outputs before it does any work.  mode: a
 * new file's mode whatever the umask (0: 0666 less the umask).  what: the
 * option that named path (kept, not copied), which every message starts
 * with; a path that cannot be opened is then a usage error (STG_EUSAGE);
 * NULL (a file stage-py chose, a bundle): STG_EFAIL.  OUT o.  Returns
 * STG_OK or the error recorded (stg_err_set()); nothing is left behind.
 */
int stg_output_open(struct stg_output *o, const char *path, mode_t mode, const char *what);
/* Make it whole (fsync), give it its mode and its name.  Returns STG_OK
 * or STG_EFAIL (recorded), having removed the temporary file.  Either way
 * o is closed. */
int stg_output_commit(struct stg_output *o);
/* Remove the temporary file and close o. */
void stg_output_abort(struct stg_output *o);

/* Write len bytes of data to o and commit it (on failure: abort it).
 * Returns as stg_output_commit(). */
int stg_output_put(struct stg_output *o, const char *data, size_t len);

#endif
