/* SPDX-License-Identifier: MIT */
/*
 * agree: the end of a phase, and the collectives the commands share.
 */
#include "config.h"

#include "agree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int stg_agree(struct stg_watchdog *w, MPI_Comm comm, int status, char msg[STG_MSG_MAX])
{
    const struct stg_node *n = w->node;
    int rank;
    if (comm == n->world) {
        /* A node has finished the phase once all its ranks have: its
         * leader notes it to the root only then, so that a late rank that
         * is no leader is named by its node, too. */
        if (n->local_size > 1) {
            MPI_Request lreq;
            MPI_Ibarrier(n->local, &lreq);
            stg_wait(w, &lreq);
        }
        stg_watchdog_arrived(w);
    }
    MPI_Comm_rank(comm, &rank);
    /* The lowest failing rank that recorded an error of its own; failing
     * only as a consequence (a stopped stream) ranks below any such error.
     * Encoded so that MAX finds it: bit 30 for an own error, then
     * 0x3fffffff - rank. */
    bool own = stg_err_status() != STG_OK;
    int mine = status != STG_OK ? (own ? 1 << 30 : 0) | (0x3fffffff - rank) : -1, first;
    MPI_Request req;
    MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MAX, comm, &req);
    stg_wait(w, &req);
    if (comm == n->world)
        stg_watchdog_close(w);
    msg[0] = '\0';
    if (first < 0)
        return STG_OK;
    /* The failing rank's status and text reach everyone, so every rank exits
     * the same way and the root can print the text once. */
    struct {
        int status;
        char text[STG_MSG_MAX];
    } word;
    int from = 0x3fffffff - (first & 0x3fffffff);
    if (rank == from) {
        char e[STG_MSG_MAX];
        stg_err_get(e, sizeof e);
        word.status = status;
        /* A usage error is the same everywhere: no node name. */
        if (status == STG_EUSAGE)
            snprintf(word.text, sizeof word.text, "%s", e[0] ? e : "usage error");
        else
            snprintf(word.text, sizeof word.text, "%s: %s", n->name,
                     e[0] ? e : "failed (no message)");
    }
    MPI_Ibcast(&word, (int)sizeof word, MPI_BYTE, from, comm, &req);
    stg_wait(w, &req);
    snprintf(msg, STG_MSG_MAX, "%s", word.text);
    return word.status;
}

int stg_agree_shared_dir(struct stg_watchdog *w, const char *dir, bool leader_ok)
{
    const struct stg_node *n = w->node;
    /* The leader leaves a file with a random name; every local rank must see
     * it.  The status word goes first, so nobody looks for a file that the
     * leader could not write. */
    struct {
        int ok;
        char name[64];
    } probe = {0, ""};
    int rc = STG_OK;
    if (n->is_leader && leader_ok) {
        unsigned long long nonce = ((unsigned long long)getpid() << 32) ^
                                   (unsigned long long)time(NULL) ^
                                   (unsigned long long)(uintptr_t)&probe;
        snprintf(probe.name, sizeof probe.name, ".probe-%016llx", nonce);
        char *path = stg_xasprintf("%s/%s", dir, probe.name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = stg_err_set(STG_EFAIL, "cannot write in '%s': %s", dir, strerror(errno));
        else
            close(fd);
        probe.ok = fd >= 0;
        free(path);
    }
    if (n->local_size > 1) {
        MPI_Request req;
        MPI_Ibcast(&probe, (int)sizeof probe, MPI_BYTE, 0, n->local, &req);
        stg_wait(w, &req);
        if (!n->is_leader && probe.ok) {
            char *path = stg_xasprintf("%s/%s", dir, probe.name);
            struct stat st;
            if (lstat(path, &st) < 0)
                rc = stg_err_set(STG_EFAIL, "rank %d does not see '%s' that its node leader "
                                 "wrote: the ranks of this node do not share '%s'",
                                 n->rank, path, dir);
            free(path);
        }
        /* The leader removes the probe only once every local rank looked. */
        MPI_Ibarrier(n->local, &req);
        stg_wait(w, &req);
    }
    if (n->is_leader && probe.ok) {
        char *path = stg_xasprintf("%s/%s", dir, probe.name);
        unlink(path);
        free(path);
    }
    return rc;
}

char *stg_gather_text(struct stg_watchdog *w, const char *mine)
{
    const struct stg_node *n = w->node;
    if (!n->is_leader)
        return NULL;
    int len = (int)strlen(mine), *lens = NULL, *displs = NULL, total = 0;
    char *all = NULL;
    if (n->is_root) {
        lens = stg_xcalloc((size_t)n->nnodes, sizeof *lens);
        displs = stg_xcalloc((size_t)n->nnodes, sizeof *displs);
    }
    MPI_Request req;
    /* The sizes first, so that the root can place every node's text. */
    MPI_Igather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, n->leaders, &req);
    stg_wait(w, &req);
    if (n->is_root) {
        for (int i = 0; i < n->nnodes; i++) {
            displs[i] = total;
            total += lens[i];
        }
        all = stg_xmalloc((size_t)total + 1);
        all[total] = '\0';
    }
    MPI_Igatherv(mine, len, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, n->leaders, &req);
    stg_wait(w, &req);
    free(lens);
    free(displs);
    return all;
}
