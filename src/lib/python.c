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
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <grp.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "trust.h"
#include "util.h"

extern char **environ;

/* What Python reads and runs at start-up below a prefix, as globs. */
static const char *const env_dirs[] = {
    "lib*/python*/site-packages", "lib*/python*/dist-packages", "lib*/python3*",
    "local/lib*/python*/dist-packages", NULL,
};
static const char *const env_files[] = {"*.pth", "sitecustomize.py", "usercustomize.py", NULL};

/* Check what lies below the prefix of the interpreter at path p (its
 * directory's parent), into t. */
static int check_prefix(const char *p, struct stg_trust *t)
{
    char *prefix = stg_path_absolute(p);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(prefix, '/');
        if (slash && slash != prefix)
            *slash = '\0';
        else
            prefix[1] = '\0';
    }
    int rc = stg_trust_check(prefix, 0, 0, t);
    char *cfg = stg_xasprintf("%s/pyvenv.cfg", prefix);
    struct stat st;
    if (rc == 0 && lstat(cfg, &st) == 0)
        rc = stg_trust_check(cfg, 0, STG_TRUST_FILE, t);
    free(cfg);
    for (int i = 0; rc == 0 && env_dirs[i]; i++) {
        char *pat = stg_xasprintf("%s/%s", strcmp(prefix, "/") ? prefix : "", env_dirs[i]);
        glob_t g;
        if (glob(pat, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) == 0) {
            for (size_t k = 0; rc == 0 && k < g.gl_pathc; k++) {
                rc = stg_trust_check(g.gl_pathv[k], 0, 0, t);
                for (int j = 0; rc == 0 && env_files[j]; j++) {
                    char *fp = stg_xasprintf("%s/%s", g.gl_pathv[k], env_files[j]);
                    glob_t f;
                    if (glob(fp, GLOB_NOSORT, NULL, &f) == 0) {
                        for (size_t q = 0; rc == 0 && q < f.gl_pathc; q++)
                            rc = stg_trust_check(f.gl_pathv[q], 0, STG_TRUST_FILE, t);
                        globfree(&f);
                    }
                    free(fp);
                }
            }
            globfree(&g);
        }
        free(pat);
    }
    free(prefix);
    return rc;
}

int stg_python_identity(const char *python, struct stg_python_id *id)
{
    memset(id, 0, sizeof *id);
    id->uid = geteuid();
    id->gid = getegid();
    if (id->uid != 0)
        return STG_OK;
    struct stg_trust t;
    stg_trust_init(&t);
    int rc = stg_trust_check(python, 0, STG_TRUST_FILE, &t);
    char *real = rc == 0 ? realpath(python, NULL) : NULL;
    if (rc == 0)
        rc = check_prefix(python, &t);
    if (rc == 0 && real && strcmp(real, python) != 0)
        rc = check_prefix(real, &t);
    free(real);
    if (rc < 0)
        return stg_err_set(STG_EFAIL, "interpreter '%s': %s", python, t.why);
    if (t.ok)
        return STG_OK;
    if (t.others || t.other == (uid_t)-1)
        return stg_err_set(STG_EUSAGE, "refusing to run '%s' as root: %s, and Python runs "
                           "code of its environment at start-up (.pth files), even with -I; "
                           "make the environment root's own and writable by root alone, or "
                           "run this as the user who owns it", python, t.why);
    struct passwd *pw = getpwuid(t.other);
    id->drop = true;
    id->uid = t.other;
    id->gid = pw ? pw->pw_gid : (gid_t)65534;   /* nogroup */
    stg_log_info("running '%s' as uid %u, not as root: %s", python, (unsigned)id->uid, t.why);
    return STG_OK;
}

/* fork, drop to id, exec: posix_spawn cannot change the identity. */
static int spawn_as(pid_t *pid, const char *python, int outfd, int errfd,
                    const char *const *argv, char **envp, const struct stg_python_id *id)
{
    struct passwd *pw = getpwuid(id->uid);
    gid_t groups[256];
    int ng = 256;
    if (!pw || getgrouplist(pw->pw_name, id->gid, groups, &ng) < 0)
        ng = 0;
    *pid = fork();
    if (*pid < 0)
        return errno;
    if (*pid > 0) {
        setpgid(*pid, *pid);    /* (also here: no kill before the child's own) */
        return 0;
    }
    /* the child: only async-signal-safe calls until exec; a process group
     * of its own, so that what it leaves running can be ended; none of
     * root's descriptors but stdin, stdout and stderr */
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(outfd, STDOUT_FILENO) < 0 ||
        dup2(errfd, STDERR_FILENO) < 0 || setpgid(0, 0) < 0 || close_range(3, ~0U, 0) < 0 ||
        setgroups((size_t)ng, groups) < 0 || setgid(id->gid) < 0 || setuid(id->uid) < 0 ||
        setuid(0) == 0 || chdir("/") < 0)
        _exit(126);
    execve(python, (char *const *)argv, envp);
    _exit(127);
}

/* isolated is for pack's compiler; scan and check want the environment
 * that the job would have. */
int stg_python_run(const char *python, const struct stg_python_id *id, bool isolated,
                   const char *script, const char *const *args, char **out)
{
    *out = NULL;
    size_t nargs = 0;
    while (args[nargs])
        nargs++;
    if (nargs > STG_PYTHON_ARGS_MAX)    /* a caller's bug: never drop one silently */
        return stg_err_set(STG_EINTERNAL, "'%s': %zu arguments, at most %d", python, nargs,
                           STG_PYTHON_ARGS_MAX);
    struct stg_python_id self;
    if (!id) {
        int rc = stg_python_identity(python, &self);
        if (rc)
            return rc;
        id = &self;
    }
    /* stdout into fds; for a user's interpreter stderr too into errs, passed
     * on from here: what that user's code leaves running then holds pipes
     * of ours, which we stop reading, not the launcher's */
    int fds[2], errs[2] = {-1, -1};
    if (pipe2(fds, O_CLOEXEC) < 0)
        return stg_err_set(STG_EFAIL, "pipe: %s", strerror(errno));
    if (id->drop && pipe2(errs, O_CLOEXEC) < 0) {
        close(fds[0]);
        close(fds[1]);
        return stg_err_set(STG_EFAIL, "pipe: %s", strerror(errno));
    }
    const char *argv[4 + STG_PYTHON_ARGS_MAX + 1] = {python, "-I", "-c", script};
    int k = 4;
    if (!isolated) {
        argv[1] = "-c";
        argv[2] = script;
        k = 3;
    }
    for (int i = 0; args[i]; i++)
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
    char **envp = stg_xcalloc(ne + 2, sizeof *envp), **q = envp;
    char *home = NULL;
    struct passwd *pw = id->drop ? getpwuid(id->uid) : NULL;
    if (id->drop)   /* not root's: the user's, or none */
        *q++ = home = stg_xasprintf("HOME=%s", pw ? pw->pw_dir : "/");
    for (char **ev = environ; *ev; ev++) {
        bool drop = id->drop && strncmp(*ev, "HOME=", 5) == 0;
        for (int i = 0; launcher[i] && !drop; i++)
            drop = strncmp(*ev, launcher[i], strlen(launcher[i])) == 0;
        if (!drop)
            *q++ = *ev;
    }
    pid_t pid;
    int e = id->drop ? spawn_as(&pid, python, fds[1], errs[1], argv, envp, id)
                     : posix_spawn(&pid, python, &fa, NULL, (char *const *)argv, envp);
    free(envp);
    free(home);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (errs[1] >= 0)
        close(errs[1]);
    if (e) {
        close(fds[0]);
        if (errs[0] >= 0)
            close(errs[0]);
        return stg_err_set(STG_EFAIL, "cannot run '%s': %s", python, strerror(e));
    }
    /* Read until the end of the output, but not for ever: an interpreter
     * that runs as a user runs that user's code, which may leave a process
     * behind that holds the pipe, or write without end. */
    size_t len = 0, cap = 4096;
    char *buf = stg_xmalloc(cap);
    int status = 0;
    bool exited = false, flood = false;
    struct pollfd pf[2] = {{fds[0], POLLIN, 0}, {errs[0], POLLIN, 0}};
    while (pf[0].fd >= 0) {
        if (len + 1 == cap) {
            if (cap >= STG_PYTHON_OUT_MAX) {
                flood = true;
                break;
            }
            buf = stg_xrealloc(buf, cap *= 2);
        }
        int n = poll(pf, 2, exited ? 1000 : 200);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0 && pf[1].revents) {
            char eb[4096];
            ssize_t r = read(errs[0], eb, sizeof eb);
            if (r > 0 && write(STDERR_FILENO, eb, (size_t)r) < 0)
                r = 0;
            if (r == 0 || (r < 0 && errno != EINTR))
                pf[1].fd = -1;
        }
        if (n > 0 && pf[0].revents) {
            ssize_t r = read(fds[0], buf + len, cap - len - 1);
            if (r > 0)
                len += (size_t)r;
            else if (r == 0 || errno != EINTR)
                pf[0].fd = -1;      /* the end of its output */
        }
        if (n > 0)
            continue;
        if (exited)
            break;      /* it is gone, and what it left behind says nothing */
        exited = waitpid(pid, &status, WNOHANG) == pid;
    }
    buf[len] = '\0';
    close(fds[0]);
    if (errs[0] >= 0)
        close(errs[0]);
    if (id->drop)
        kill(-pid, SIGKILL);    /* its process group: whatever it left running */
    else if (flood && !exited)
        kill(pid, SIGKILL);
    while (!exited && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (flood) {
        free(buf);
        return stg_err_set(STG_EFAIL, "'%s' wrote more than %d MiB: stopped", python,
                           (int)(STG_PYTHON_OUT_MAX >> 20));
    }
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
    int rc = stg_python_run(python, NULL, true,
                            "import sys; print('%d.%d' % sys.version_info[:2])", args, &out);
    if (rc == 0)
        snprintf(version, len, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    return rc;
}
