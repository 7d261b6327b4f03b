/* SPDX-License-Identifier: MIT */
/*
 * launch: did the launcher make one MPI job of the tasks?
 *
 * srun starts the tasks of a step; only an MPI plugin that matches the MPI
 * library (--mpi=pmix for Open MPI, pmi2 for MPICH) joins them into one
 * MPI_COMM_WORLD.  Without it (Slurm's MpiDefault=none), MPICH starts every
 * task as a job of its own, each a root that walks the trees (the very
 * import storm stage-py exists to prevent), and Open MPI fails inside
 * MPI_Init with text of its own.  Checked before MPI_Init from the
 * environment, and after it from the world's size.
 */
#ifndef STG_LAUNCH_H
#define STG_LAUNCH_H

#include <stddef.h>

/* How to read a variable: getenv, or a table in tests. */
typedef const char *(*stg_launch_getenv)(const char *name);

/*
 * world: the size of MPI_COMM_WORLD, or 0 before MPI_Init.  library: the
 * MPI library's version text (MPI_Get_library_version), to name the
 * plugin that fits.  Returns 0 if the tasks form one MPI job as far as can
 * be told, else 1 with the message in msg.
 *
 * Before MPI_Init the check is made for Open MPI only (it would fail in
 * MPI_Init): MPICH and its kin can join srun's tasks through Slurm's own
 * PMI library, which sets no variable.
 *
 * The MPI launcher's own variables come first (OMPI_COMM_WORLD_SIZE,
 * PMI_SIZE and PMI_RANK, PMIX_RANK, MPI_LOCALNRANKS, PALS_RANKID,
 * ALPS_APP_PE): under mpirun or mpiexec inside an allocation the ranks
 * inherit a Slurm step of one task per node from the launcher's daemons,
 * so Slurm's task count is not the job's size there.  Only where none of
 * them is set is a Slurm step of several tasks (SLURM_STEP_NUM_TASKS > 1)
 * taken as the launcher.
 */
int stg_launch_check(stg_launch_getenv get, int world, const char *library, char *msg,
                     size_t len);

/* Whether this task is the one that speaks for a step that failed the
 * check (SLURM_PROCID 0, or no Slurm). */
int stg_launch_speaks(stg_launch_getenv get);

#endif
