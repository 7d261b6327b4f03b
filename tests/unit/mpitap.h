/* SPDX-License-Identifier: MIT */
/*
 * mpitap: TAP from the MPI unit tests (tests/unit-mpi.t runs them on the
 * fake cluster).  Every rank checks; world rank 0 alone prints: a test
 * point passes when it holds on every rank, and a failure shows each
 * failing rank, its host and what it saw.  Every mt_* call is collective
 * over MPI_COMM_WORLD.  And the frame of such a test: its start and end
 * (mt_start, mt_finish) and the agreement that ends a phase of it, as a
 * command ends one (mt_agree).
 */
#ifndef STG_MPITAP_H
#define STG_MPITAP_H

#include <mpi.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agree.h"
#include "log.h"
#include "node.h"
#include "tap.h"
#include "watchdog.h"

#define MT_DETAIL 512

static MPI_Comm mt_comm = MPI_COMM_NULL;
static int mt_rank, mt_size;
static char mt_host[64];

/* After MPI_Init. */
TAP_UNUSED static void mt_init(void)
{
    MPI_Comm_dup(MPI_COMM_WORLD, &mt_comm);
    MPI_Comm_rank(mt_comm, &mt_rank);
    MPI_Comm_size(mt_comm, &mt_size);
    if (gethostname(mt_host, sizeof mt_host - 1) < 0)
        snprintf(mt_host, sizeof mt_host, "?");
    mt_host[sizeof mt_host - 1] = '\0';
}

/* A detail for mt_ok() (one static buffer: use it at once). */
__attribute__((format(printf, 1, 2))) TAP_UNUSED static const char *mt_fmt(const char *fmt,
                                                                            ...)
{
    static char buf[MT_DETAIL];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

/* One test point: cond on every rank.  detail (may be NULL): what this
 * rank saw, shown if cond is false here.  Returns the verdict, the same
 * on every rank. */
__attribute__((format(printf, 3, 4))) TAP_UNUSED static bool mt_ok(bool cond, const char *detail,
                                                                   const char *fmt, ...)
{
    struct {
        int ok;
        char host[64];
        char detail[MT_DETAIL];
    } mine, *all = NULL;
    memset(&mine, 0, sizeof mine);
    mine.ok = cond;
    snprintf(mine.host, sizeof mine.host, "%s", mt_host);
    snprintf(mine.detail, sizeof mine.detail, "%s", detail ? detail : "");
    int every = 0, c = cond;
    MPI_Allreduce(&c, &every, 1, MPI_INT, MPI_LAND, mt_comm);
    if (mt_rank == 0)
        all = calloc((size_t)mt_size, sizeof *all);
    MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, mt_comm);
    if (mt_rank == 0) {
        char desc[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(desc, sizeof desc, fmt, ap);
        va_end(ap);
        ok(every, "%s", desc);
        for (int r = 0; !every && all && r < mt_size; r++)
            if (!all[r].ok)
                diag("rank %d (%s): %s", r, all[r].host,
                     all[r].detail[0] ? all[r].detail : "failed");
        free(all);
        fflush(stdout);
    }
    return every;
}

/* String equality on every rank. */
#define mt_is_str(got, want, ...)                                                        \
    do {                                                                                 \
        const char *g_ = (got), *w_ = (want);                                            \
        bool c_ = g_ && w_ && strcmp(g_, w_) == 0;                                       \
        mt_ok(c_, c_ ? NULL : mt_fmt("got '%s', want '%s'", g_ ? g_ : "(null)",          \
                                     w_ ? w_ : "(null)"), __VA_ARGS__);                  \
    } while (0)

/* An MPI unit test's start: MPI (threads funneled, as stage-py asks), the
 * test's TAP (mt_init), the topology, the watchdog (no time limit) and the
 * log's node name.  OUT n, w. */
TAP_UNUSED static void mt_start(int *argc, char ***argv, struct stg_node *n,
                                struct stg_watchdog *w)
{
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    mt_init();
    stg_node_init(n);
    stg_watchdog_init(w, n);
    stg_log_init(n->name, STG_NORMAL);
}

/* Its end, after mt_done(): the watchdog, the topology, MPI.  Returns
 * rc. */
TAP_UNUSED static int mt_finish(struct stg_node *n, struct stg_watchdog *w, int rc)
{
    stg_watchdog_fini(w);
    stg_node_fini(n);
    MPI_Finalize();
    return rc;
}

/* The agreement after a phase of the test (named phase), on the world, as
 * a command would: each rank brings rc, and the errors recorded meanwhile
 * are set aside.  Returns the agreed status; OUT msg. */
TAP_UNUSED static int mt_agree(struct stg_watchdog *w, const struct stg_node *n,
                               const char *phase, int rc, char msg[STG_MSG_MAX])
{
    stg_watchdog_phase(w, phase);
    rc = stg_agree(w, n->world, rc, msg);
    stg_err_take(NULL, 0);
    return rc;
}

/* A comment, from rank 0. */
__attribute__((format(printf, 1, 2))) TAP_UNUSED static void mt_diag(const char *fmt, ...)
{
    if (mt_rank != 0)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    diag("%s", buf);
}

/* The plan, from rank 0; every rank gets the same exit status. */
TAP_UNUSED static int mt_done(void)
{
    int failed = 0;
    if (mt_rank == 0)
        failed = done_testing();
    fflush(stdout);
    MPI_Bcast(&failed, 1, MPI_INT, 0, mt_comm);
    MPI_Comm_free(&mt_comm);
    return failed;
}

#endif
