/* SPDX-License-Identifier: MIT */
/*
 * bcast-tar: the baseline of the network benchmark, what python-mpi-bcast
 * does: the root reads a tar file whole into memory, one MPI_Bcast (in
 * pieces of at most 1 GiB, an MPI count being an int) carries it to one
 * rank per node, and each of them untars it into a directory with tar(1).
 *
 *     bcast-tar TARFILE DEST
 *
 * Prints nothing on success; exits non-zero on the first error.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIECE ((size_t)1 << 30)

static void die(const char *what)
{
    perror(what);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc != 3) {
        fprintf(stderr, "usage: bcast-tar TARFILE DEST\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm local, leaders;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    int lrank;
    MPI_Comm_rank(local, &lrank);
    MPI_Comm_split(MPI_COMM_WORLD, lrank == 0 ? 0 : MPI_UNDEFINED, rank, &leaders);
    if (leaders != MPI_COMM_NULL) {
        uint64_t size = 0;
        char *buf = NULL;
        if (rank == 0) {
            FILE *f = fopen(argv[1], "rb");
            if (!f || fseek(f, 0, SEEK_END) != 0)
                die(argv[1]);
            size = (uint64_t)ftell(f);
            rewind(f);
            buf = malloc(size ? size : 1);
            if (!buf || fread(buf, 1, size, f) != size)
                die(argv[1]);
            fclose(f);
        }
        MPI_Bcast(&size, 1, MPI_UINT64_T, 0, leaders);
        if (rank != 0 && !(buf = malloc(size ? size : 1)))
            die("malloc");
        for (uint64_t off = 0; off < size; off += PIECE) {
            size_t n = size - off < PIECE ? (size_t)(size - off) : PIECE;
            MPI_Bcast(buf + off, (int)n, MPI_BYTE, 0, leaders);
        }
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && tar -xf - -C '%s'", argv[2], argv[2]);
        FILE *p = popen(cmd, "w");
        if (!p || fwrite(buf, 1, size, p) != size || pclose(p) != 0)
            die("tar -x");
        free(buf);
        MPI_Comm_free(&leaders);
    }
    MPI_Comm_free(&local);
    MPI_Finalize();
    return 0;
}
