/* SPDX-License-Identifier: MIT */
/*
 * admin: stage-py pack.
 *
 *   1. the root reads the site file and the manifest and walks the trees;
 *   2. where the manifest names an interpreter (python =), that interpreter
 *      compiles every staged .py that lacks an up-to-date .pyc, into a
 *      private temporary directory, in unchecked-hash mode (a staged copy
 *      is read-only: nothing ever needs to check it against its source);
 *   3. the bundle is written beside the old one and renamed into place,
 *      unless the old one already holds the same content;
 * and every rank agrees on the outcome.
 */
#include "config.h"

#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle.h"
#include "log.h"
#include "manifest.h"
#include "scan.h"
#include "site.h"
#include "util.h"

extern char **environ;

/*
 * Run python -c script args..., its standard output into OUT out
 * (malloc'd), its standard error passed on.  Returns STG_OK, or an error
 * naming the interpreter.
 */
static int run_python(const char *python, const char *script, const char *const *args,
                      char **out)
{
    *out = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return stg_err_set(STG_EFAIL, "pipe: %s", strerror(errno));
    const char *argv[16] = {python, "-I", "-c", script};
    int k = 4;
    for (int i = 0; args[i] && k < 15; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int e = posix_spawn(&pid, python, &fa, NULL, (char *const *)argv, environ);
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

/* argv[1]: a list of "F\tindex\tsource\tarchive path" (a .py, index: its
 * entry) and "P\tarchive path" (a .pyc the copy has); argv[2]: where new
 * .pyc files go.  Prints the interpreter's version, then "index\tarchive
 * path" for each new .pyc. */
static const char compile_script[] =
    "import sys, os, importlib.util, py_compile\n"
    "lst, out = sys.argv[1], sys.argv[2]\n"
    "tag = sys.implementation.cache_tag\n"
    "print('%d.%d' % sys.version_info[:2])\n"
    "have, todo = set(), []\n"
    "for line in open(lst, encoding='utf-8', errors='surrogateescape'):\n"
    "    f = line.rstrip('\\n').split('\\t')\n"
    "    (have.add(f[1]) if f[0] == 'P' else todo.append((f[1], f[2], f[3])))\n"
    "def fresh(src, rel):\n"
    "    # the copy has the .pyc that the source's own __pycache__ holds: is it current?\n"
    "    if rel not in have: return False\n"
    "    try:\n"
    "        with open(importlib.util.cache_from_source(src), 'rb') as f: h = f.read(16)\n"
    "        st = os.stat(src)\n"
    "    except OSError: return False\n"
    "    if len(h) < 16 or h[:4] != importlib.util.MAGIC_NUMBER: return False\n"
    "    if int.from_bytes(h[4:8], 'little') & 1: return True\n"
    "    return (int.from_bytes(h[8:12], 'little') == int(st.st_mtime) & 0xffffffff and\n"
    "            int.from_bytes(h[12:16], 'little') == st.st_size & 0xffffffff)\n"
    "mode = py_compile.PycInvalidationMode.UNCHECKED_HASH\n"
    "for i, src, apath in todo:\n"
    "    d, base = os.path.split(apath)\n"
    "    rel = os.path.join(d, '__pycache__', base[:-3] + '.' + tag + '.pyc')\n"
    "    if fresh(src, rel): continue\n"
    "    try:\n"
    "        py_compile.compile(src, cfile=os.path.join(out, rel), dfile=src, doraise=True,\n"
    "                           invalidation_mode=mode)\n"
    "    except Exception as e:\n"
    "        print('stage-py: warning: cannot compile %s: %s' % (src, e), file=sys.stderr)\n"
    "        continue\n"
    "    print(i + '\\t' + rel)\n";

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Step 2.  OUT tmpdir: the directory of the new .pyc files (to remove);
 * OUT version: "3.11". */
static int compile_bytecode(const char *python, struct stg_scan *s, char **tmpdir,
                            char *version, size_t vlen)
{
    const char *t = getenv("TMPDIR");
    char *dir = stg_xasprintf("%s/stage-py-pack.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        int e = errno;
        free(dir);
        return stg_err_set(STG_EFAIL, "cannot create a temporary directory: %s", strerror(e));
    }
    *tmpdir = dir;
    char *list = stg_xasprintf("%s/list", dir);
    char *out = stg_xasprintf("%s/pyc", dir);
    FILE *f = fopen(list, "w");
    size_t todo = 0;
    for (size_t i = 0; f && i < s->n; i++) {
        const struct stg_entry *e = &s->v[i];
        if (e->kind == STG_ENT_FILE && ends_with(e->path, ".py")) {
            fprintf(f, "F\t%zu\t%s\t%s\n", i, e->src, e->path);
            todo++;
        } else if (ends_with(e->path, ".pyc")) {
            fprintf(f, "P\t%s\n", e->path);
        }
    }
    int rc = STG_OK;
    if (!f || fclose(f) != 0)
        rc = stg_err_set(STG_EFAIL, "cannot write '%s': %s", list, strerror(errno));
    char *res = NULL;
    if (rc == STG_OK) {
        const char *args[] = {list, out, NULL};
        rc = run_python(python, compile_script, args, &res);
    }
    size_t added = 0;
    if (rc == STG_OK) {
        char *save = NULL, *line = strtok_r(res, "\n", &save);
        snprintf(version, vlen, "%s", line ? line : "");
        while (rc == STG_OK && (line = strtok_r(NULL, "\n", &save)) != NULL) {
            char *end;
            size_t i = strtoul(line, &end, 10);
            if (*end != '\t' || i >= s->n) {
                rc = stg_err_set(STG_EINTERNAL, "bytecode: unexpected line '%s'", line);
                break;
            }
            /* the source's time: the same sources give the same key */
            struct timespec mtime = s->v[i].mtime;
            char *src = stg_xasprintf("%s/%s", out, end + 1);
            rc = stg_scan_add_file(s, end + 1, src, &mtime);
            free(src);
            added++;
        }
        stg_scan_rekey(s);
        stg_log_info("bytecode: %zu of %zu modules compiled by '%s' (Python %s), the others "
                     "had an up-to-date .pyc", added, todo, python, version);
    }
    free(res);
    free(list);
    free(out);
    return rc;
}

/* The root's part.  OUT line: the report for stdout. */
static int pack_root(const struct stg_opts *o, char **line)
{
    char err[STG_MSG_MAX];
    struct stg_site site;
    struct stg_manifest *m = NULL;
    struct stg_scan *s = NULL;
    char *tmpdir = NULL;
    char version[32] = "";
    int rc = stg_site_load(&site, err, sizeof err);
    if (rc == STG_OK)
        rc = stg_manifest_load(o->manifest, STG_MANIFEST_SOURCES |
                               (site.writable_manifests_warn ? STG_MANIFEST_WRITABLE_OK : 0),
                               &m, err, sizeof err);
    stg_site_free(&site);
    if (rc) {
        stg_err_set(rc, "%s", err);
        goto out;
    }
    const char *path = o->output ? o->output : m->bundle;
    if (!path) {
        rc = stg_err_set(STG_EUSAGE, "%s: no bundle to write: give --output FILE, or set "
                         "'bundle =' in [stage]", o->manifest);
        goto out;
    }
    rc = stg_scan_run(m, &s);
    if (rc == STG_OK && m->python)
        rc = compile_bytecode(m->python, s, &tmpdir, version, sizeof version);
    bool written = false;
    if (rc == STG_OK)
        rc = stg_bundle_write(m, s, path, o->compress ? o->compress : STG_DEFAULT_COMPRESS,
                              version, &written);
    if (rc == STG_OK) {
        char sz[32];
        *line = stg_xasprintf("%s: %s (key %s, %llu entries, %s)\n", path,
                              written ? "written" : "up to date, left as it was", s->key,
                              (unsigned long long)s->files,
                              stg_format_size(s->bytes, sz, sizeof sz));
    }
out:
    if (tmpdir) {
        char *parent = stg_xstrdup(tmpdir);
        char *slash = strrchr(parent, '/');
        *slash = '\0';
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0) {
            stg_rm_tree_at(pfd, slash + 1);
            close(pfd);
        }
        free(parent);
        free(tmpdir);
    }
    stg_scan_free(&s);
    stg_manifest_free(&m);
    return rc;
}

int stg_pack_run(const struct stg_opts *o, struct stg_node *n)
{
    char msg[STG_MSG_MAX] = "";
    char *line = NULL;
    stg_node_phase(n, "pack");
    int rc = n->is_root ? pack_root(o, &line) : STG_OK;
    rc = stg_agree(n, n->world, rc, msg);
    if (n->is_root) {
        if (rc)
            fprintf(stderr, "stage-py: %s\n", msg);
        else if (line)
            fputs(line, stdout);
    }
    free(line);
    return rc;
}
