/* SPDX-License-Identifier: MIT */
/*
 * pack: stage-py pack, a bundle of a manifest's trees, with bytecode:
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

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "cmd.h"
#include "conf.h"
#include "log.h"
#include "python.h"
#include "testhook.h"
#include "walk.h"

/* src/py/compile.py: the bytecode of the copy, by the manifest's interpreter. */
static const char compile_script[] =
#include "compile.py.h"
    ;

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Whether rel is where the bytecode of the module at archive path py goes:
 * DIR/__pycache__/NAME.TAG.pyc for DIR/NAME.py.  The interpreter may run
 * as the tree's owner: what it says is checked, not trusted. */
static bool pyc_of(const char *py, const char *rel)
{
    const char *slash = strrchr(py, '/');
    size_t dl = slash ? (size_t)(slash - py + 1) : 0;
    const char *name = py + dl;
    if (strlen(name) < 4)
        return false;
    size_t nl = strlen(name) - 3;       /* without ".py" */
    const char *r = rel;
    if (strncmp(r, py, dl) != 0 || strncmp(r + dl, "__pycache__/", 12) != 0)
        return false;
    r += dl + 12;
    if (strncmp(r, name, nl) != 0 || r[nl] != '.')
        return false;
    r += nl + 1;
    return !strchr(r, '/') && ends_with(r, ".pyc") && strlen(r) > 4;
}

/* Step 2.  OUT tmpdir: the directory of the new .pyc files (to remove);
 * OUT version: "3.11". */
static int compile_bytecode(const char *python, struct stg_walk *s, char **tmpdir,
                            char *version, size_t vlen)
{
    struct stg_python_id id;
    int rc = stg_python_identity(python, &id);
    if (rc)
        return rc;
    const char *t = getenv("TMPDIR");
    char *made = stg_xasprintf("%s/stage-py-pack.XXXXXX", t && *t ? t : "/tmp");
    /* its real path: the results are opened below it with no link followed */
    if (!mkdtemp(made)) {
        int e = errno;
        free(made);
        return stg_err_set(STG_EFAIL, "cannot create a temporary directory: %s", strerror(e));
    }
    char *dir = realpath(made, NULL);
    *tmpdir = made;
    if (!dir)
        return stg_err_set(STG_EFAIL, "cannot resolve '%s': %s", made, strerror(errno));
    free(made);
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
    if (!f || fclose(f) != 0)
        rc = stg_err_set(STG_EFAIL, "cannot write '%s': %s", list, strerror(errno));
    /* An interpreter that runs as its owner writes there as its owner (once
     * root has written the list); what it writes is then only as trusted as
     * that user's own tree: its lines are checked and its files opened with
     * no link followed. */
    if (rc == STG_OK && id.drop && chown(dir, id.uid, id.gid) < 0)
        rc = stg_err_set(STG_EFAIL, "cannot hand '%s' to uid %u: %s", dir, (unsigned)id.uid,
                         strerror(errno));
    char *res = NULL;
    if (rc == STG_OK) {
        const char *args[] = {list, out, NULL};
        rc = stg_python_run(python, &id, true, compile_script, args, &res);
    }
    size_t added = 0, failed = 0;
    if (rc == STG_OK) {
        char *save = NULL, *line = strtok_r(res, "\n", &save);
        snprintf(version, vlen, "%s", line ? line : "");
        while (rc == STG_OK && (line = strtok_r(NULL, "\n", &save)) != NULL) {
            if (line[0] == 'E' && line[1] == '\t') {
                char *tab = strchr(line + 2, '\t');
                if (tab)
                    *tab = '\0';
                stg_log_warn("bytecode: cannot compile '%s': %s (ranks will compile it in "
                             "memory each time)", line + 2, tab ? tab + 1 : "");
                failed++;
                continue;
            }
            char *end;
            size_t i = strtoul(line, &end, 10);
            if (*end != '\t' || end == line || i >= s->n || s->v[i].kind != STG_ENT_FILE ||
                !ends_with(s->v[i].path, ".py") || !pyc_of(s->v[i].path, end + 1)) {
                rc = stg_err_set(STG_EFAIL, "bytecode: unexpected line '%s' from '%s'", line,
                                 python);
                break;
            }
            /* the source's time: the same sources give the same key */
            struct timespec mtime = s->v[i].mtime;
            char *src = stg_xasprintf("%s/%s", out, end + 1);
            /* written by the interpreter: as its owner, when it ran as one */
            rc = stg_walk_add_file(s, end + 1, src, &mtime, id.drop ? id.uid : (uid_t)-1);
            free(src);
            added++;
        }
        stg_walk_rekey(s);
        stg_log_info("bytecode: %zu of %zu modules compiled by '%s' (Python %s), %zu could "
                     "not be, the others had an up-to-date .pyc", added, todo, python, version,
                     failed);
    }
    free(res);
    free(list);
    free(out);
    return rc;
}

/* Where the bundle goes (path, absolute), before any work: a regular
 * file or nothing, in a directory that exists, and not the manifest.
 * what: the option or key that named it ("--output", "bundle"), NULL for
 * the default beside the manifest.  Returns STG_OK or STG_EUSAGE. */
static int check_place(const char *path, const char *manifest, const char *what)
{
    char pre[32] = "";
    if (what)
        snprintf(pre, sizeof pre, "%s ", what);
    struct stat st;
    if (stg_path_same_file(path, manifest))
        return stg_err_set(STG_EUSAGE, "%s'%s' is the manifest: it would be replaced; give "
                           "another file", pre, path);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return stg_err_set(STG_EUSAGE, "%s'%s': not a regular file (a job seeks in a bundle)",
                           pre, path);
    char *dir = stg_xstrdup(path);
    char *slash = strrchr(dir, '/');
    slash[slash == dir] = '\0';        /* "/x": "/" */
    int rc = STG_OK;
    if (stat(dir, &st) < 0)
        rc = stg_err_set(STG_EUSAGE, "%s'%s': directory '%s': %s", pre, path, dir,
                         strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = stg_err_set(STG_EUSAGE, "%s'%s': '%s' is not a directory", pre, path, dir);
    free(dir);
    return rc;
}

/* The root's part.  OUT line: the report for stdout. */
static int pack_root(const struct stg_opts *o, struct stg_watchdog *w, char **line)
{
    struct stg_conf conf;
    struct stg_walk *s = NULL;
    char *tmpdir = NULL, *beside = NULL, *path = NULL;
    char version[32] = "";
    int rc = stg_conf_load(&conf, o->manifest, STG_MANIFEST_SOURCES);
    const struct stg_manifest *m = conf.m;
    if (rc)
        goto out;
    /* default: NAME.bundle beside the manifest */
    if (!o->output && !m->bundle) {
        char *dir = stg_path_absolute(o->manifest);
        *strrchr(dir, '/') = '\0';
        beside = stg_xasprintf("%s/%s.bundle", dir, m->name);
        free(dir);
    }
    path = stg_path_absolute(o->output ? o->output : m->bundle ? m->bundle : beside);
    /* the bundle's place, checked before the walk: a wrong one fails at
     * once (its directory is written only after it, and only if the
     * bundle there is not up to date) */
    const char *what = o->output ? "--output" : m->bundle ? "bundle" : NULL;
    rc = check_place(path, o->manifest, what);
    if (rc)
        goto out;
    rc = stg_walk_run(m, &s);
    if (rc == STG_OK)
        stg_test_pause(w, "after-scan");
    /* a whole environment's bytecode is its own interpreter's */
    const char *python = m->pyenv ? m->pyenv->interpreter : m->python;
    if (rc == STG_OK && python)
        rc = compile_bytecode(python, s, &tmpdir, version, sizeof version);
    bool written = false;
    if (rc == STG_OK)
        rc = stg_bundle_write(m, s, path, what, stg_conf_compress(&conf, o->compress), version,
                              &written);
    if (rc == STG_OK) {
        char sz[32];
        *line = stg_xasprintf("%s: %s (key %s, %llu entries, %s)\n", path,
                              written ? "written" : "up to date, left as it was", s->key,
                              (unsigned long long)s->files,
                              stg_format_size(s->bytes, sz, sizeof sz));
    }
out:
    free(beside);
    free(path);
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
    stg_walk_free(&s);
    stg_conf_free(&conf);
    return rc;
}

int stg_cmd_pack(const struct stg_opts *o, struct stg_node *n, struct stg_watchdog *w)
{
    return stg_cmd_on_root(o, n, w, "pack", pack_root, false);
}
