/* SPDX-License-Identifier: MIT */
/* Unit tests: which files a staged environment relocates, how their text
 * changes, and a file rewritten in place. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "relocate.h"
#include "tap.h"
#include "util.h"

/* The copy holds these paths (and nothing else). */
static const char *const held[] = {"/usr/bin", "/usr/bin/python3.11", "/opt/venv",
                                   "/opt/venv/bin/python3", "/opt/venv/extra",
                                   "/usr/lib/petsc", NULL};

static bool holds(const char *abs, void *ctx)
{
    (void)ctx;
    for (int i = 0; held[i]; i++)
        if (strcmp(abs, held[i]) == 0)
            return true;
    return false;
}

#define ROOT "/dev/shm/stage-py-0/env-0123456789abcdef"

/* The text after relocation ("(unchanged)" when nothing changes). */
static char *rewrite(enum stg_reloc_kind k, const char *in, const char **why)
{
    size_t n = 0;
    char *out = stg_relocate_text(k, in, strlen(in), ROOT, holds, NULL, &n, why);
    if (!out)
        return stg_xstrdup("(unchanged)");
    if (strlen(out) != n)
        return stg_xstrdup("(length differs)");
    return out;
}

static void text(enum stg_reloc_kind k, const char *in, const char *want, const char *what)
{
    char *got = rewrite(k, in, NULL);
    is_str(got, want, "%s", what);
    free(got);
}

int main(void)
{
    ok(stg_relocate_kind("opt/venv/lib/python3.11/site-packages/x.pth", 10, 0644) ==
       STG_RELOC_PTH, ".pth");
    ok(stg_relocate_kind("opt/venv/lib/python3.11/site-packages/x.egg-link", 10, 0644) ==
       STG_RELOC_PTH, ".egg-link");
    ok(stg_relocate_kind("opt/venv/pyvenv.cfg", 10, 0644) == STG_RELOC_CFG, "pyvenv.cfg");
    ok(stg_relocate_kind("opt/venv/bin/tool", 10, 0755) == STG_RELOC_SCRIPT, "a script in bin/");
    ok(stg_relocate_kind("bin/tool", 10, 0755) == STG_RELOC_SCRIPT, "a script in a top bin/");
    ok(stg_relocate_kind("opt/venv/bin/tool", 10, 0644) == STG_RELOC_NONE,
       "not executable: not a script");
    ok(stg_relocate_kind("opt/venv/sbin/tool", 10, 0755) == STG_RELOC_NONE, "sbin is not bin");
    ok(stg_relocate_kind("opt/venv/lib/x.py", 10, 0755) == STG_RELOC_NONE, "other files");
    ok(stg_relocate_kind("opt/venv/x.pth", STG_RELOC_MAX + 1, 0644) == STG_RELOC_NONE,
       "too large");
    ok(stg_relocate_kind("opt/venv/x.pth", 0, 0644) == STG_RELOC_NONE, "empty");

    text(STG_RELOC_PTH, "/opt/venv/extra\n", ROOT "/opt/venv/extra\n", ".pth: a path line");
    text(STG_RELOC_PTH, "/opt/venv/extra  \r\n", ROOT "/opt/venv/extra  \r\n",
         ".pth: trailing blanks stay");
    text(STG_RELOC_PTH, "/opt/venv/missing\n", "(unchanged)", ".pth: a path the copy lacks");
    text(STG_RELOC_PTH, "relative/dir\n# /opt/venv/extra\n", "(unchanged)",
         ".pth: relative lines and comments");
    text(STG_RELOC_PTH, "/opt/venv/../venv/extra\n", "(unchanged)", ".pth: an unclean path");
    text(STG_RELOC_PTH, "import sys, os; d = '/usr/lib/petsc'; x = \"/opt/venv/extra\"\n",
         "import sys, os; d = '" ROOT "/usr/lib/petsc'; x = \"" ROOT "/opt/venv/extra\"\n",
         ".pth: quoted paths in an import line");
    text(STG_RELOC_PTH, "import os; p = os.path.join(sitedir, 'nspkg') /opt/venv/extra\n",
         "(unchanged)", ".pth: unquoted words of an import line are code");
    text(STG_RELOC_PTH, "import x; p = '/usr/lib/petsc\\n'\n", "(unchanged)",
         ".pth: a string with escapes is left alone");
    text(STG_RELOC_PTH, "a\n/usr/bin", "a\n" ROOT "/usr/bin", ".pth: no final newline");

    text(STG_RELOC_CFG,
         "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
         "executable = /usr/bin/python3.11\ncommand = /usr/bin/python3 -m venv /opt/venv\n",
         "home = " ROOT "/usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
         "executable = " ROOT "/usr/bin/python3.11\ncommand = /usr/bin/python3 -m venv " ROOT
         "/opt/venv\n",
         "pyvenv.cfg: home, executable and the words of command that the copy holds");
    text(STG_RELOC_CFG, "home=/usr/bin\r\n", "home=" ROOT "/usr/bin\r\n",
         "pyvenv.cfg: no blanks, CRLF");

    text(STG_RELOC_SCRIPT, "#!/opt/venv/bin/python3\nimport tool\n",
         "#!" ROOT "/opt/venv/bin/python3\nimport tool\n", "#! line");
    text(STG_RELOC_SCRIPT, "#! /opt/venv/bin/python3 -E\n/opt/venv/extra\n",
         "#! " ROOT "/opt/venv/bin/python3 -E\n/opt/venv/extra\n",
         "#! line with a blank and an argument; only the first line");
    text(STG_RELOC_SCRIPT, "#!/bin/sh\necho /opt/venv/extra\n", "(unchanged)",
         "#! of an interpreter the copy lacks");
    text(STG_RELOC_SCRIPT, "\x7f" "ELF/opt/venv/bin/python3", "(unchanged)",
         "not a script at all");
    const char *why = NULL;
    char *got = rewrite(STG_RELOC_SCRIPT, "#!/opt/venv/bin/python3", &why);
    is_str(got, "#!" ROOT "/opt/venv/bin/python3", "#! line without a newline");
    ok(why == NULL, "... and no reason to keep it");
    free(got);
    char longline[400];
    snprintf(longline, sizeof longline, "#!/opt/venv/bin/python3 %0230d\n", 0);
    got = rewrite(STG_RELOC_SCRIPT, longline, &why);
    is_str(got, "(unchanged)", "a #! line that would grow past 255 bytes stays");
    ok(why && strstr(why, "255"), "... and says why");
    free(got);

    /* a file of a copy, rewritten in place with its mode and time */
    char dir[4096];
    ok(fx_tmpdir(dir, sizeof dir, "t-relocate") != NULL, "temporary directory");
    char *bin = stg_xasprintf("%s/opt/venv/bin", dir);
    char *cmd = stg_xasprintf("mkdir -p '%s'", bin);
    ok(system(cmd) == 0, "copy directories");
    free(cmd);
    char *script = stg_xasprintf("%s/tool", bin);
    fx_write_text(script, "#!/opt/venv/bin/tool\nprint('hi')\n", 0750);
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 5}};
    utimensat(AT_FDCWD, script, ts, 0);
    bool changed = false;
    ok(stg_relocate_file(dir, "opt/venv/bin/tool", "/final", &changed) ==
       STG_OK && changed, "a script of the copy relocated");
    char *buf = fx_read(script, NULL);
    is_str(buf, "#!/final/opt/venv/bin/tool\nprint('hi')\n", "... its new text");
    free(buf);
    struct stat st;
    ok(stat(script, &st) == 0 && (st.st_mode & 07777) == 0750, "... its mode kept");
    ok(st.st_mtim.tv_sec == 1000000000 && st.st_mtim.tv_nsec == 5, "... its time kept");
    ok(stg_relocate_file(dir, "opt/venv/bin/tool", "/final", &changed) ==
       STG_OK && !changed, "a file with nothing to rewrite is left alone");
    char *link = stg_xasprintf("%s/link", bin);
    ok(symlink("tool", link) == 0, "a symbolic link in the copy");
    ok(stg_relocate_file(dir, "opt/venv/bin/link", "/final", &changed) ==
       STG_EFAIL, "... is never written through");
    cmd = stg_xasprintf("rm -rf '%s'", dir);
    ok(system(cmd) == 0, "cleaned up");
    free(cmd);
    free(link);
    free(script);
    free(bin);
    return done_testing();
}
