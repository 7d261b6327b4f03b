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
    mode_t mode;
};

/*
 * Start writing path (absolute): where it is going is checked and opened
 * now, so a command opens its outputs before it does any work.  mode: a
 * new file's mode whatever the umask (0: 0666 less the umask).  OUT o.
 * Returns 0, or -1 with the reason in err (nothing is left behind).
 */
int stg_output_open(struct stg_output *o, const char *path, mode_t mode, char *err,
                    size_t errlen);
/* Make it whole (fsync), give it its mode and its name.  Returns 0, or -1
 * with the reason in err, having removed the temporary file.  Either way
 * o is closed. */
int stg_output_commit(struct stg_output *o, char *err, size_t errlen);
/* Remove the temporary file and close o. */
void stg_output_abort(struct stg_output *o);

/* Write len bytes of data to o and commit it (on failure: abort it). */
int stg_output_put(struct stg_output *o, const char *data, size_t len, char *err,
                   size_t errlen);
/* All of the above for len bytes of data. */
int stg_output_write(const char *path, const char *data, size_t len, mode_t mode, char *err,
                     size_t errlen);

#endif
