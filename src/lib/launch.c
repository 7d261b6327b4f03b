/* SPDX-License-Identifier: MIT */
/*
 * launch: the launcher check, a pure function of the environment.
 */
#include "config.h"

#include "launch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The variables by which an MPI launcher (or a PMI/PMIx server that srun's
 * plugin runs) tells a process that it is one rank of a job. */
static const char *const launcher_vars[] = {
    "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "MPI_LOCALNRANKS",
    "PALS_RANKID", "ALPS_APP_PE", NULL,
};

static long number(stg_launch_getenv get, const char *name)
{
    const char *v = get(name);
    char *end;
    if (!v || !*v)
        return 0;
    long n = strtol(v, &end, 10);
    return *end ? 0 : n;
}

int stg_launch_check(stg_launch_getenv get, int world, const char *library, char *msg,
                     size_t len)
{
    const char *launcher = NULL;
    for (int i = 0; launcher_vars[i] && !launcher; i++)
        if (get(launcher_vars[i]))
            launcher = launcher_vars[i];
    long tasks = number(get, "SLURM_STEP_NUM_TASKS");
    /* the size the launcher announced, where it says one */
    long size = number(get, "OMPI_COMM_WORLD_SIZE");
    if (!size)
        size = number(get, "PMI_SIZE");
    if (!size)
        size = tasks;   /* srun itself is the launcher (with or without PMIx) */
    /* Before MPI_Init, only for Open MPI, which would fail in it: MPICH and
     * its kin can also join srun's tasks through Slurm's own PMI library
     * (I_MPI_PMI_LIBRARY), which sets no variable; after MPI_Init, the
     * world's size tells for all. */
    bool ompi = library && strstr(library, "Open MPI");
    bool one = world == 0 ? launcher || tasks <= 1 || !ompi : size <= 0 || size == world;
    if (one)
        return 0;
    const char *plugin = library && strstr(library, "Open MPI") ? "srun --mpi=pmix"
                         : library && strstr(library, "MPICH") ? "srun --mpi=pmi2"
                         : "srun --mpi=pmix (Open MPI) or srun --mpi=pmi2 (MPICH)";
    if (!launcher)
        snprintf(msg, len, "srun started %ld tasks (SLURM_STEP_NUM_TASKS) with no MPI plugin "
                 "that joins them into one MPI job: each would stage alone, walking the "
                 "trees on the shared file system; launch with %s (srun --mpi=list shows "
                 "this Slurm's plugins, and the site's MpiDefault may already be right); "
                 "nothing was staged", tasks, plugin);
    else
        snprintf(msg, len, "the launcher started %ld tasks, but MPI made a job of %d: the "
                 "launcher's MPI plugin does not fit this MPI library; launch with %s "
                 "(srun --mpi=list shows this Slurm's plugins); nothing was staged", size,
                 world, plugin);
    return 1;
}

int stg_launch_speaks(stg_launch_getenv get)
{
    return number(get, "SLURM_PROCID") == 0;
}
