/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: the settings, quoted for each shell and evaluated by the real
 * shells (sh, bash, dash, zsh, ksh, csh, tcsh, fish) and by a JSON parser,
 * with paths that try every quoting trap.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "env.h"
#include "fixture.h"
#include "log.h"
#include "tap.h"

/* stg_env_render(), with the message it records in err. */
static char *env_render(const struct stg_env *env, enum stg_shell sh, char *err, size_t len)
{
    stg_err_take(NULL, 0);
    char *text = stg_env_render(env, sh);
    stg_err_take(err, len);
    return text;
}

static char dir[4096], file[4200], inj[4200];

/* Run argv, return its stdout (malloc'd) or NULL if it did not exit 0. */
static char *run(char *const argv[])
{
    int fds[2];
    if (pipe(fds) < 0)
        return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, mem);
    fclose(mem);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        diag("%s exited with %d; output: %s", argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : -1,
             out);
        free(out);
        return NULL;
    }
    return out;
}

static bool have(const char *prog)
{
    char *argv[] = {"sh", "-c", "command -v \"$1\" >/dev/null", "sh", (char *)prog, NULL};
    char *out = run(argv);
    free(out);
    return out != NULL;
}

static void write_file(const char *text)
{
    fx_write_text(file, text, 0);
}

/* Evaluate the settings in shell sh; the output is PYTHONPATH, then MYSET,
 * then STAGE_PY_DIR, one per line. */
static char *evaluate(const char *shell, enum stg_shell kind)
{
    char cmd[8192];
    switch (kind) {
    case STG_SHELL_SH: {
        snprintf(cmd, sizeof cmd, ". '%s' && printf '%%s\\n' \"$PYTHONPATH\" \"$MYSET\" "
                 "\"$STAGE_PY_DIR\"", file);
        char *argv[] = {(char *)shell, "-c", cmd, NULL};
        return run(argv);
    }
    case STG_SHELL_CSH: {
        snprintf(cmd, sizeof cmd, "source '%s' && printenv PYTHONPATH && printenv MYSET && "
                 "printenv STAGE_PY_DIR", file);
        char *argv[] = {(char *)shell, "-f", "-c", cmd, NULL};
        return run(argv);
    }
    case STG_SHELL_FISH: {
        snprintf(cmd, sizeof cmd, "source '%s'; and printenv PYTHONPATH MYSET STAGE_PY_DIR", file);
        char *argv[] = {(char *)shell, "--no-config", "-c", cmd, NULL};
        return run(argv);
    }
    default: {
        snprintf(cmd, sizeof cmd, "import json,sys; d=json.load(open(sys.argv[1])); "
                 "print(d['PYTHONPATH']); print(d['MYSET']); print(d['STAGE_PY_DIR'])");
        char *argv[] = {"python3", "-c", cmd, file, NULL};
        return run(argv);
    }
    }
}

static const char *awkward[] = {
    "/tmp/a b",          "/tmp/it's",      "/tmp/$(touch INJ)", "/tmp/`touch INJ`",
    "/tmp/$HOME",        "/tmp/back\\slash", "/tmp/bang!x",     "/tmp/semi;amp&pipe|",
    "/tmp/\"dq\"",       "/tmp/*",         "/tmp/~x",           "/tmp/{a,b}",
    "/tmp/%s%n",         "/tmp/tab\there", "/tmp/\xc3\xbcn\xc3\xaf", "/tmp/'\"'\"$x",
};

static void check_shell(const char *shell, enum stg_shell kind, const char *old)
{
    char desc[256];
    snprintf(desc, sizeof desc, "%s with PYTHONPATH %s%s%s", shell, old ? "'" : "",
             old ? old : "unset", old ? "'" : "");
    if (old)
        setenv("PYTHONPATH", old, 1);
    else
        unsetenv("PYTHONPATH");
    size_t n = sizeof awkward / sizeof *awkward;
    for (size_t i = 0; i < n; i++) {
        /* Each awkward path once as a path list element and once as a set value. */
        char p[8192];
        snprintf(p, sizeof p, "%s", awkward[i]);
        char *at = strstr(p, "INJ");
        if (at) {
            char rest[256];
            snprintf(rest, sizeof rest, "%s", at + 3);
            snprintf(at, sizeof p - (size_t)(at - p), "%s%s", inj, rest);
        }
        struct stg_env env = {0};
        stg_env_add(&env, "PYTHONPATH", p, true);
        stg_env_add(&env, "PYTHONPATH", "/dev/shm/second", true);
        stg_env_add(&env, "MYSET", p, false);
        stg_env_add(&env, "STAGE_PY_DIR", "/dev/shm/stage-py-1/x-0123", false);
        char err[256];
        char *text = env_render(&env, kind, err, sizeof err);
        stg_env_free(&env);
        if (!text) {
            ok(0, "%s: render '%s': %s", desc, p, err);
            continue;
        }
        write_file(text);
        char *out = evaluate(shell, kind);
        char want[20000];
        snprintf(want, sizeof want, "%s:/dev/shm/second%s%s\n%s\n/dev/shm/stage-py-1/x-0123\n",
                 p, old && *old ? ":" : "", old && *old ? old : "", p);
        if (!ok(out && strcmp(out, want) == 0, "%s: path '%s' comes out as itself", desc, p)) {
            diag("settings:\n%s", text);
            diag("got:  %s", out ? out : "(failed)");
            diag("want: %s", want);
        }
        free(out);
        free(text);
    }
    struct stat st;
    ok(stat(inj, &st) < 0 && errno == ENOENT, "%s: no path ran as code", desc);
    unlink(inj);
}

int main(void)
{
    if (!fx_tmpdir(dir, sizeof dir, "t-env"))
        return 1;
    snprintf(file, sizeof file, "%s/settings", dir);
    snprintf(inj, sizeof inj, "%s/injected", dir);

    enum stg_shell k;
    ok(stg_env_shell_parse("sh", &k) == 0 && k == STG_SHELL_SH, "--shell sh");
    ok(stg_env_shell_parse("bash", &k) == 0 && k == STG_SHELL_SH, "--shell bash is sh");
    ok(stg_env_shell_parse("tcsh", &k) == 0 && k == STG_SHELL_CSH, "--shell tcsh is csh");
    ok(stg_env_shell_parse("fish", &k) == 0 && k == STG_SHELL_FISH, "--shell fish");
    ok(stg_env_shell_parse("json", &k) == 0 && k == STG_SHELL_JSON, "--shell json");
    ok(stg_env_shell_parse("cmd.exe", &k) < 0, "an unknown shell is refused");
    is_str(stg_env_failure(STG_SHELL_SH), "false\n", "a failure makes eval fail");
    is_str(stg_env_failure(STG_SHELL_JSON), "", "a failure prints no JSON");

    /* The sh form keeps the existing value at evaluation time. */
    struct stg_env env = {0};
    stg_env_add(&env, "PYTHONPATH", "/dev/shm/a", true);
    char err[256];
    char *text = env_render(&env, STG_SHELL_SH, err, sizeof err);
    is_str(text, "PYTHONPATH='/dev/shm/a'\"${PYTHONPATH:+:$PYTHONPATH}\"; export PYTHONPATH\n",
           "sh keeps the existing value with ${VAR:+:$VAR}");
    free(text);
    setenv("PYTHONPATH", "x\ny", 1);
    text = env_render(&env, STG_SHELL_CSH, err, sizeof err);
    ok(text == NULL, "csh: a value with a newline is refused");
    like(err, "newline", "... saying why");
    free(text);
    stg_env_free(&env);

    static const struct { const char *shell; enum stg_shell kind; } shells[] = {
        {"sh", STG_SHELL_SH},     {"bash", STG_SHELL_SH},   {"dash", STG_SHELL_SH},
        {"zsh", STG_SHELL_SH},    {"ksh", STG_SHELL_SH},    {"csh", STG_SHELL_CSH},
        {"tcsh", STG_SHELL_CSH},  {"fish", STG_SHELL_FISH}, {"python3", STG_SHELL_JSON},
    };
    const char *olds[] = {NULL, "", "/old dir:/usr/lib/py"};
    for (size_t s = 0; s < sizeof shells / sizeof *shells; s++) {
        if (!have(shells[s].shell)) {
            char why[128];
            snprintf(why, sizeof why, "%s is not installed", shells[s].shell);
            for (size_t o = 0; o < 3; o++)
                for (size_t i = 0; i <= sizeof awkward / sizeof *awkward; i++)
                    skip(why);
            continue;
        }
        for (size_t o = 0; o < 3; o++)
            check_shell(shells[s].shell, shells[s].kind, olds[o]);
    }
    unlink(file);
    rmdir(dir);
    return done_testing();
}
