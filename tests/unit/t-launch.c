/* SPDX-License-Identifier: MIT */
/*
 * t-launch: the launcher check on the environments that Slurm's srun
 * (--mpi=none, pmix, pmi2), Open MPI's mpirun and MPICH's mpiexec inside an
 * allocation give a process (as seen under Debian 12's Slurm 22.05).
 */
#include "config.h"

#include <string.h>

#include "launch.h"
#include "tap.h"

static const char *const *table;    /* NAME, VALUE, ..., NULL */

static const char *get(const char *name)
{
    for (const char *const *t = table; t && *t; t += 2)
        if (strcmp(t[0], name) == 0)
            return t[1];
    return NULL;
}

#define OMPI "Open MPI v4.1.4, package: Debian OpenMPI"
#define MPICH "MPICH Version:  4.0.2"

static int check(const char *const *env, int world, const char *lib, char *msg)
{
    table = env;
    msg[0] = '\0';
    return stg_launch_check(get, world, lib, msg, 1024);
}

int main(void)
{
    char msg[1024];
    const char *const none[] = {NULL};
    ok(check(none, 0, OMPI, msg) == 0 && check(none, 1, OMPI, msg) == 0,
       "no launcher at all (a singleton run by hand): fine");
    const char *const srun_none[] = {"SLURM_STEP_NUM_TASKS", "2", "SLURM_NTASKS", "2",
                                     "SLURM_PROCID", "1", NULL};
    ok(check(srun_none, 0, OMPI, msg) == 1 && strstr(msg, "srun started 2 tasks") &&
       strstr(msg, "srun --mpi=pmix") && strstr(msg, "srun --mpi=list"),
       "srun --mpi=none, 2 tasks: refused before MPI_Init, naming --mpi=pmix for Open MPI");
    ok(check(srun_none, 0, MPICH, msg) == 0, "... not before MPI_Init for MPICH (Slurm's own "
       "PMI library may join the tasks, and sets no variable)");
    ok(check(srun_none, 2, MPICH, msg) == 0, "... which then makes one job of 2: fine");
    ok(check(srun_none, 1, MPICH, msg) == 1 && strstr(msg, "srun started 2 tasks") &&
       strstr(msg, "srun --mpi=pmi2"), "... or a job of 1 each: refused after MPI_Init, "
       "naming --mpi=pmi2 for MPICH");
    ok(check(srun_none, 1, "", msg) == 1 && strstr(msg, "pmix (Open MPI) or srun --mpi=pmi2"),
       "... and both plugins for another library");
    table = srun_none;
    ok(!stg_launch_speaks(get), "... task 1 is silent");
    const char *const srun_one[] = {"SLURM_STEP_NUM_TASKS", "1", "SLURM_PROCID", "0", NULL};
    ok(check(srun_one, 0, OMPI, msg) == 0 && check(srun_one, 1, OMPI, msg) == 0,
       "srun of one task: fine without a plugin");
    table = srun_one;
    ok(stg_launch_speaks(get), "... task 0 speaks");
    const char *const srun_pmix[] = {"SLURM_STEP_NUM_TASKS", "2", "PMIX_RANK", "0",
                                     "PMIX_NAMESPACE", "slurm.pmix.2.0", NULL};
    ok(check(srun_pmix, 0, OMPI, msg) == 0 && check(srun_pmix, 2, OMPI, msg) == 0,
       "srun --mpi=pmix with Open MPI: one job of 2");
    ok(check(srun_pmix, 1, MPICH, msg) == 1 && strstr(msg, "started 2 tasks, but MPI made a "
       "job of 1") && strstr(msg, "srun --mpi=pmi2"),
       "srun --mpi=pmix with MPICH (a singleton each): refused after MPI_Init");
    const char *const srun_pmi2[] = {"SLURM_STEP_NUM_TASKS", "2", "PMI_FD", "11",
                                     "PMI_RANK", "0", "PMI_SIZE", "2", NULL};
    ok(check(srun_pmi2, 0, MPICH, msg) == 0 && check(srun_pmi2, 2, MPICH, msg) == 0,
       "srun --mpi=pmi2 with MPICH: one job of 2");
    const char *const ompi_in_alloc[] = {"SLURM_NTASKS", "2", "SLURM_PROCID", "0",
                                         "OMPI_COMM_WORLD_SIZE", "2", "PMIX_RANK", "1", NULL};
    ok(check(ompi_in_alloc, 0, OMPI, msg) == 0 && check(ompi_in_alloc, 2, OMPI, msg) == 0,
       "Open MPI's mpirun inside sbatch: fine");
    const char *const ompi_on_nodes[] = {"SLURM_STEP_NUM_TASKS", "1", "OMPI_COMM_WORLD_SIZE",
                                         "8", NULL};
    ok(check(ompi_on_nodes, 0, OMPI, msg) == 0 && check(ompi_on_nodes, 8, OMPI, msg) == 0,
       "... its daemons' step of one task per node is not the job's size");
    const char *const hydra[] = {"SLURM_STEP_NUM_TASKS", "1", "MPI_LOCALNRANKS", "2",
                                 "PMI_RANK", "1", "PMI_SIZE", "2", "PMI_FD", "6", NULL};
    ok(check(hydra, 0, MPICH, msg) == 0 && check(hydra, 2, MPICH, msg) == 0,
       "MPICH's mpiexec inside sbatch: fine");
    const char *const pals[] = {"SLURM_STEP_NUM_TASKS", "4", "PALS_RANKID", "3", NULL};
    ok(check(pals, 0, MPICH, msg) == 0, "a Cray PALS launch: the launcher's own");
    return done_testing();
}
