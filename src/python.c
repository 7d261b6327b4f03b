/* SPDX-License-Identifier: MIT */
/*
 * python: running the interpreter that a manifest names, for pack (its
 * bytecode), scan and check (what it imports), and the job's check that a
 * bundle's standard library fits it.
 */
#include "config.h"

#include "python.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

extern char **environ;

/* isolated is for pack's compiler; scan and check want the environment
 * that the job would have. */
int stg_python_run(const char *python, bool isolated, const char *script,
                      const char *const *args, char **out)
{
    *out = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return stg_err_set(STG_EFAIL, "pipe: %s", strerror(errno));
    const char *argv[16] = {python, "-I", "-c", script};
    int k = 4;
    if (!isolated) {
        argv[1] = "-c";
        argv[2] = script;
        k = 3;
    }
    for (int i = 0; args[i] && k < 15; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    /* The launcher's variables stay with stage-py's own ranks: a module
     * that starts MPI (mpi4py, dolfin) must start a job of its own rather
     * than try to join this one as one of its ranks. */
    static const char *const launcher[] = {"OMPI_", "PMIX_", "PMI_", "HYDRA_", "MPIR_",
                                           "SLURM_", "PRTE_", NULL};
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = stg_xcalloc(ne + 1, sizeof *envp), **q = envp;
    for (char **ev = environ; *ev; ev++) {
        bool drop = false;
        for (int i = 0; launcher[i] && !drop; i++)
            drop = strncmp(*ev, launcher[i], strlen(launcher[i])) == 0;
        if (!drop)
            *q++ = *ev;
    }
    pid_t pid;
    int e = posix_spawn(&pid, python, &fa, NULL, (char *const *)argv, envp);
    free(envp);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (e) {
        close(fds[0]);
        return stg_err_set(STG_EFAIL, "cannot run '%s': %s", python, strerror(e));
    }
    size_t len = 0, cap = 4096;
    char *buf = stg_xmalloc(cap);
    for (;;) {
        if (len + 1 == cap)
            buf = stg_xrealloc(buf, cap *= 2);
        ssize_t r = read(fds[0], buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(buf);
        return stg_err_set(STG_EFAIL, "'%s' failed (%s %d)", python,
                           WIFEXITED(status) ? "exit status" : "signal",
                           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    *out = buf;
    return STG_OK;
}


int stg_python_version(const char *python, char *version, size_t len)
{
    /* python3 -> python3.11: the name usually tells, at no cost */
    char *real = realpath(python, NULL);
    if (!real)
        return stg_err_set(STG_EFAIL, "interpreter '%s': %s", python, strerror(errno));
    const char *base = strrchr(real, '/') + 1;
    unsigned x, y;
    char rest;
    int n = sscanf(base, "python%u.%u%c", &x, &y, &rest);
    free(real);
    if (n == 2) {
        snprintf(version, len, "%u.%u", x, y);
        return STG_OK;
    }
    char *out = NULL;
    const char *args[] = {NULL};
    int rc = stg_python_run(python, true, "import sys; print('%d.%d' % sys.version_info[:2])",
                            args, &out);
    if (rc == STG_OK)
        snprintf(version, len, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    return rc;
}
