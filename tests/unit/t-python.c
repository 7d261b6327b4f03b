/* SPDX-License-Identifier: MIT */
/*
 * t-python: running /usr/bin/python3: a script with its arguments, its
 * standard output captured whole, its standard error passed on, the
 * launcher's variables left out, -I or not; a script that fails, is killed
 * or writes without end is an error naming the interpreter; the version;
 * and, as root, whom an interpreter runs as: root for root's own, the one
 * user who owns its tree, and a refusal when others could change it (and,
 * as that user, oneself).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "python.h"
#include "tap.h"
#include "util.h"

#define PY "/usr/bin/python3"

static char top[4096];

/* Run script with args as id; stdout into OUT out (never NULL), stderr into
 * OUT errtext, the recorded error into OUT err. */
static int run(const char *python, const struct stg_python_id *id, bool isolated,
               const char *script, const char *const *args, char **out, char *errtext,
               size_t elen, char *err, size_t len)
{
    struct fx_capture c;
    fx_capture(&c, STDERR_FILENO, top);
    stg_err_take(NULL, 0);
    static const char *const none[] = {NULL};
    *out = NULL;
    alarm(120);
    int rc = stg_python_run(python, id, isolated, script, args ? args : none, out);
    alarm(0);
    stg_err_take(err, len);
    fx_captured(&c, errtext, elen);
    if (!*out)
        *out = stg_xstrdup("");
    return rc;
}

static int cmp_gid(const void *a, const void *b)
{
    gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
    return x < y ? -1 : x > y;
}

/* What an ordinary user is told: stg_python_identity() of python, and
 * the uid a run of it reports, in a child as pw. */
struct as_user {
    int rc;
    bool drop;
    unsigned uid, ran_uid;
};

/* In the child: the identity of python, and a run of it. */
static void identity_child(void *arg, void *result)
{
    const char *python = arg;
    struct as_user *o = result;
    struct stg_python_id id;
    o->rc = stg_python_identity(python, &id);
    o->drop = id.drop;
    o->uid = (unsigned)id.uid;
    char *out = NULL;
    static const char *const none[] = {NULL};
    if (o->rc == STG_OK &&
        stg_python_run(python, &id, true, "import os; print(os.getuid())", none, &out) == 0)
        o->ran_uid = (unsigned)strtoul(out, NULL, 10);
    else
        o->ran_uid = (unsigned)-1;
    free(out);
}

static bool identity_as(const struct passwd *pw, const char *python, struct as_user *r)
{
    return fx_as_user(pw, identity_child, (void *)python, r, sizeof *r);
}

int main(void)
{
    fx_bail_on_alarm("Bail out! t-python: an interpreter run hung\n");
    if (!fx_tmpdir(top, sizeof top, "t-python"))
        return 1;
    chmod(top, 0755);
    bool root = geteuid() == 0;
    if (access(PY, X_OK) < 0) {
        skip("no " PY);
        stg_rm_tree_at(AT_FDCWD, top);
        return done_testing();
    }
    char *out = NULL, errtext[8192], err[STG_MSG_MAX];
    struct stg_python_id self = {false, geteuid(), getegid()};

    /* --- a script, its arguments, its output --- */
    const char *args[] = {"one", "two words", "", "x'y\"z", NULL};
    int rc = run(PY, NULL, true, "import sys\nfor a in sys.argv[1:]: print(repr(a))", args, &out,
                 errtext, sizeof errtext, err, sizeof err);
    is_str(out, "'one'\n'two words'\n''\n'x\\'y\"z'\n", "the arguments reach the script as "
           "they are, its output is captured (%s)", err);
    ok(rc == STG_OK, "... status OK");
    free(out);
    {
        /* more than a pipe holds, and an exact count of bytes */
        const char *n[] = {"3000000", NULL};
        rc = run(PY, &self, true, "import sys\nsys.stdout.write('0123456789' * "
                 "(int(sys.argv[1]) // 10))", n, &out, errtext, sizeof errtext, err,
                 sizeof err);
        size_t len = strlen(out);
        bool pattern = len == 3000000;
        for (size_t i = 0; pattern && i < len; i += 4099)
            pattern = out[i] == (char)('0' + i % 10);
        ok(rc == STG_OK && pattern, "3 MB of output: captured whole (%zu bytes)", len);
        free(out);
    }
    rc = run(PY, &self, true, "pass", NULL, &out, errtext, sizeof errtext, err, sizeof err);
    ok(rc == STG_OK && out[0] == '\0', "no output: an empty string");
    free(out);

    /* at most STG_PYTHON_ARGS_MAX arguments, isolated or not; more is an error */
    {
        const char *many[STG_PYTHON_ARGS_MAX + 2];
        char num[STG_PYTHON_ARGS_MAX + 1][8];
        for (int i = 0; i <= STG_PYTHON_ARGS_MAX; i++) {
            snprintf(num[i], sizeof num[i], "%d", i + 1);
            many[i] = num[i];
        }
        many[STG_PYTHON_ARGS_MAX] = NULL;
        char want[16];
        snprintf(want, sizeof want, "%d\n", STG_PYTHON_ARGS_MAX);
        for (int iso = 0; iso < 2; iso++) {
            rc = run(PY, &self, iso, "import sys; print(len(sys.argv) - 1)", many, &out,
                     errtext, sizeof errtext, err, sizeof err);
            ok(rc == STG_OK && strcmp(out, want) == 0, "%d arguments reach the script (%s)",
               STG_PYTHON_ARGS_MAX, iso ? "isolated" : "not isolated");
            free(out);
        }
        many[STG_PYTHON_ARGS_MAX] = num[STG_PYTHON_ARGS_MAX];
        many[STG_PYTHON_ARGS_MAX + 1] = NULL;
        rc = run(PY, &self, true, "import sys; print(len(sys.argv) - 1)", many, &out,
                 errtext, sizeof errtext, err, sizeof err);
        ok(rc == STG_EINTERNAL && strstr(err, "at most"), "one more is an error, not a "
           "dropped argument (%s)", err);
        free(out);
    }

    /* --- the environment --- */
    char *pp = stg_xasprintf("%s/pp", top);
    mkdir(pp, 0755);
    setenv("PYTHONPATH", pp, 1);
    setenv("OMPI_COMM_WORLD_RANK", "3", 1);
    setenv("PMIX_RANK", "3", 1);
    setenv("PMI_RANK", "3", 1);
    setenv("SLURM_JOB_ID", "77", 1);
    setenv("HYDRA_CONTROL_FD", "9", 1);
    setenv("STG_T_KEEP", "kept", 1);
    const char *envscript = "import os, sys\n"
                            "print(sorted(k for k in os.environ if k.startswith(('OMPI_', "
                            "'PMIX_', 'PMI_', 'SLURM_', 'HYDRA_', 'MPIR_', 'PRTE_'))))\n"
                            "print(os.environ.get('STG_T_KEEP'))\n"
                            "print(sys.flags.isolated, sys.argv[1] in sys.path)\n";
    const char *ppargs[] = {pp, NULL};
    rc = run(PY, &self, true, envscript, ppargs, &out, errtext, sizeof errtext, err, sizeof err);
    ok(rc == STG_OK && strncmp(out, "[]\n", 3) == 0, "the launcher's variables are left "
       "out");
    like(out, "\nkept\n", "... the others are kept");
    like(out, "\n1 False\n", "isolated: -I, so PYTHONPATH is not on sys.path");
    free(out);
    rc = run(PY, &self, false, envscript, ppargs, &out, errtext, sizeof errtext, err,
             sizeof err);
    ok(rc == STG_OK && strncmp(out, "[]\n", 3) == 0, "not isolated: the launcher's variables "
       "are still left out");
    like(out, "\n0 True\n", "... and PYTHONPATH is on sys.path");
    free(out);
    ok(getenv("OMPI_COMM_WORLD_RANK") && getenv("SLURM_JOB_ID"), "... and this process keeps "
       "them");
    unsetenv("PYTHONPATH");
    unsetenv("OMPI_COMM_WORLD_RANK");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    unsetenv("SLURM_JOB_ID");
    unsetenv("HYDRA_CONTROL_FD");
    free(pp);

    /* --- failures --- */
    rc = run(PY, &self, true, "import sys\nprint('partial')\n"
             "sys.stderr.write('Traceback: boom-7f3a\\n')\nsys.exit(3)", NULL, &out, errtext,
             sizeof errtext, err, sizeof err);
    ok(rc == STG_EFAIL, "a script that exits with 3: an error");
    like(err, "'" PY "' failed (exit status 3)", "... naming the interpreter and the status");
    like(errtext, "Traceback: boom-7f3a", "... its standard error passed on");
    ok(out[0] == '\0', "... and no output handed back");
    free(out);
    rc = run(PY, &self, true, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", NULL,
             &out, errtext, sizeof errtext, err, sizeof err);
    ok(rc == STG_EFAIL, "a script killed by a signal: an error");
    like(err, "'" PY "' failed (signal 9)", "... naming the interpreter and the signal");
    free(out);
    rc = run(PY, &self, true, "raise SystemExit('bad-input-91')", NULL, &out, errtext,
             sizeof errtext, err, sizeof err);
    ok(rc == STG_EFAIL && strstr(errtext, "bad-input-91") && strstr(err, "exit status 1"),
       "an exception: exit status 1, its message on standard error");
    free(out);
    char *missing = stg_xasprintf("%s/nosuch/python3", top);
    rc = run(missing, &self, true, "pass", NULL, &out, errtext, sizeof errtext, err,
             sizeof err);
    ok(rc == STG_EFAIL && strstr(err, missing) && strstr(err, "No such file"),
       "an interpreter that is not there: an error naming it (%s)", err);
    free(out);
    rc = run(missing, NULL, true, "pass", NULL, &out, errtext, sizeof errtext, err, sizeof err);
    ok(rc != STG_OK && strstr(err, missing), "... also when asked whom to run it as (%s)", err);
    free(out);
    free(missing);

    /* --- output without end --- */
    rc = run(PY, &self, true, "import sys\nb = 'x' * (1 << 20)\nwhile True: sys.stdout.write(b)",
             NULL, &out, errtext, sizeof errtext, err, sizeof err);
    ok(rc == STG_EFAIL && out[0] == '\0', "a script that writes without end: stopped, no "
       "output handed back");
    like(err, "'" PY "' wrote more than 256 MiB: stopped", "... naming the interpreter");
    free(out);

    /* --- the version --- */
    char version[16] = "", want[16] = "";
    stg_err_take(NULL, 0);
    rc = stg_python_version(PY, version, sizeof version);
    run(PY, &self, true, "import sys; print('%d.%d' % sys.version_info[:2], end='')", NULL, &out,
        errtext, sizeof errtext, err, sizeof err);
    snprintf(want, sizeof want, "%s", out);
    free(out);
    ok(rc == STG_OK && want[0] && strcmp(version, want) == 0, "the version, from the name it "
       "leads to: %s (the interpreter says %s)", version, want);
    {
        /* a name that does not tell: it is run */
        char *wrap = fx_path(top, "mypython");
        fx_write_text(wrap, "#!/bin/sh\nexec " PY " \"$@\"\n", 0755);
        version[0] = '\0';
        stg_err_take(NULL, 0);
        rc = stg_python_version(wrap, version, sizeof version);
        stg_err_take(err, sizeof err);
        ok(rc == STG_OK && strcmp(version, want) == 0, "... and from a run when the name does "
           "not tell: %s (%s)", version, err);
        free(wrap);
        char *none = stg_xasprintf("%s/nosuch", top);
        rc = stg_python_version(none, version, sizeof version);
        stg_err_take(err, sizeof err);
        ok(rc != STG_OK && strstr(err, none), "the version of an interpreter that is not "
           "there: an error naming it (%s)", err);
        free(none);
    }

    /* --- whom it runs as --- */
    struct stg_python_id id;
    stg_err_take(NULL, 0);
    rc = stg_python_identity(PY, &id);
    ok(rc == STG_OK && !id.drop && id.uid == geteuid(), "root's own interpreter: %s",
       root ? "run as root" : "not root: run as oneself");
    struct passwd *pw = fx_user();
    if (!pw) {
        for (int i = 0; i < 11; i++)
            skip(root ? "no user " FX_USER : "not root: an interpreter always runs as "
                 "oneself");
    } else {
        /* a tree of the user's: env/bin/python3, a link of the user's to
         * root's interpreter (which Python follows to find its prefix) */
        char *env = stg_xasprintf("%s/env", top), *bin = stg_xasprintf("%s/env/bin", top);
        char *py = stg_xasprintf("%s/env/bin/python3", top);
        char *real = realpath(PY, NULL);
        mkdir(env, 0755);
        mkdir(bin, 0755);
        int crc = symlink(real ? real : PY, py) | lchown(env, pw->pw_uid, pw->pw_gid) |
                  lchown(bin, pw->pw_uid, pw->pw_gid) | lchown(py, pw->pw_uid, pw->pw_gid);
        free(real);
        stg_err_take(NULL, 0);
        rc = stg_python_identity(py, &id);
        stg_err_take(err, sizeof err);
        ok(crc == 0 && rc == STG_OK && id.drop && id.uid == pw->pw_uid &&
           id.gid == pw->pw_gid, "an interpreter in a tree of " FX_USER "'s: run as that "
           "user (uid %u, gid %u) (%s)", (unsigned)id.uid, (unsigned)id.gid, err);
        rc = run(py, NULL, true, "import os, sys\n"
                 "print(os.getuid(), os.geteuid(), os.getgid(), os.getegid())\n"
                 "print(os.environ.get('HOME'))\n"
                 "print(*sorted(os.getgroups()))\n"
                 "sys.stderr.write('from-the-user-5c1d\\n')", NULL, &out, errtext,
                 sizeof errtext, err, sizeof err);
        gid_t groups[256];
        int ng = 256;
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
            ng = 0;
        qsort(groups, (size_t)ng, sizeof *groups, cmp_gid);
        struct stg_buf ids = {0};
        stg_buf_printf(&ids, "%u %u %u %u\n%s\n", (unsigned)pw->pw_uid, (unsigned)pw->pw_uid,
                       (unsigned)pw->pw_gid, (unsigned)pw->pw_gid, pw->pw_dir);
        for (int i = 0; i < ng; i++)
            if (i == 0 || groups[i] != groups[i - 1])
                stg_buf_printf(&ids, "%s%u", i ? " " : "", (unsigned)groups[i]);
        stg_buf_put(&ids, "\n", 1);
        ok(rc == STG_OK, "... which runs (%s)", err);
        is_str(out, ids.s, "... as that user, with its groups and its HOME");
        free(ids.s);
        like(errtext, "from-the-user-5c1d", "... its standard error passed on");
        free(out);
        rc = run(py, NULL, true, "import sys\nsys.stderr.write('user-fails-2b\\n')\n"
                 "sys.exit(4)", NULL, &out, errtext, sizeof errtext, err, sizeof err);
        ok(rc == STG_EFAIL && strstr(err, py) && strstr(err, "exit status 4") &&
           strstr(errtext, "user-fails-2b"), "... and when it fails, an error naming it, "
           "its standard error passed on");
        free(out);

        struct as_user r;
        bool ran = identity_as(pw, py, &r);
        ok(ran && r.rc == STG_OK && !r.drop && r.uid == pw->pw_uid && r.ran_uid == pw->pw_uid,
           "as " FX_USER ": its own interpreter runs as itself");
        ran = identity_as(pw, PY, &r);
        ok(ran && r.rc == STG_OK && !r.drop && r.uid == pw->pw_uid && r.ran_uid == pw->pw_uid,
           "as " FX_USER ": root's interpreter runs as itself too");

        /* writable by the user's group: others could change it */
        chmod(bin, 0775);
        stg_err_take(NULL, 0);
        rc = stg_python_identity(py, &id);
        stg_err_take(err, sizeof err);
        chmod(bin, 0755);
        char *refuse = stg_xasprintf("refusing to run '%s' as root", py);
        ok(rc == STG_EUSAGE, "its bin/ writable by the group: refused, status 2");
        like(err, refuse, "... naming the interpreter");
        like(err, "0775", "... and what was found");
        /* a .pth file of a third user's below its prefix */
        char *sp = stg_xasprintf("%s/env/lib/python3.11/site-packages", top);
        char *lib = stg_xasprintf("%s/env/lib", top), *lp = stg_xasprintf("%s/env/lib/python3.11",
                                                                           top);
        char *pth = stg_xasprintf("%s/evil.pth", sp);
        mkdir(lib, 0755);
        mkdir(lp, 0755);
        mkdir(sp, 0755);
        fx_write_text(pth, "import os\n", 0644);
        crc = lchown(lib, pw->pw_uid, pw->pw_gid) | lchown(lp, pw->pw_uid, pw->pw_gid) |
              lchown(sp, pw->pw_uid, pw->pw_gid) | lchown(pth, 65534, 65534);
        stg_err_take(NULL, 0);
        rc = stg_python_identity(py, &id);
        stg_err_take(err, sizeof err);
        ok(crc == 0 && rc == STG_EUSAGE && strstr(err, refuse), "a .pth file of another "
           "user's below its prefix: two owners, refused (%s)", err);
        free(refuse);
        free(pth);
        free(sp);
        free(lp);
        free(lib);
        free(env);
        free(bin);
        free(py);
    }
    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
