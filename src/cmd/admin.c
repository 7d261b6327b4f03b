/* SPDX-License-Identifier: MIT */
/*
 * admin: stage-py pack, stage-py scan, stage-py check.
 *
 * pack:
 *   1. the root reads the site file and the manifest and walks the trees;
 *   2. where the manifest names an interpreter (python =), that interpreter
 *      compiles every staged .py that lacks an up-to-date .pyc, into a
 *      private temporary directory, in unchecked-hash mode (a staged copy
 *      is read-only: nothing ever needs to check it against its source);
 *   3. the bundle is written beside the old one and renamed into place,
 *      unless the old one already holds the same content;
 * and every rank agrees on the outcome.
 *
 * scan: the interpreter imports the modules once and reports what it
 * loaded (sys.modules, and /proc/self/maps for shared objects); the root
 * writes the manifest that stages exactly that, atomically.
 *
 * check: under the settings of a staging run, the interpreter imports the
 * modules with an audit hook that sees every file it opens, then reports
 * each one that came from outside the copy, and why where it can tell.
 */
#include "config.h"

#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle.h"
#include "log.h"
#include "output.h"
#include "manifest.h"
#include "match.h"
#include "pyenv.h"
#include "python.h"
#include "walk.h"
#include "site.h"
#include "testhook.h"
#include "util.h"

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

/* The root's part.  OUT line: the report for stdout. */
static int pack_root(const struct stg_opts *o, char **line)
{
    char err[STG_MSG_MAX];
    struct stg_site site;
    struct stg_manifest *m = NULL;
    struct stg_walk *s = NULL;
    char *tmpdir = NULL;
    char version[32] = "";
    int rc = stg_site_load(&site, err, sizeof err);
    if (rc == STG_OK)
        rc = stg_pyenv_load(o->manifest, STG_MANIFEST_SOURCES |
                               (site.writable_manifests_warn ? STG_MANIFEST_WRITABLE_OK : 0),
                               &m, err, sizeof err);
    stg_site_free(&site);
    if (rc) {
        stg_err_set(rc, "%s", err);
        goto out;
    }
    const char *path = o->output ? o->output : m->bundle;
    if (!path) {
        rc = stg_err_set(STG_EUSAGE, "%s: no bundle to write: give --output BUNDLE, or set "
                         "'bundle =' in [stage]", o->manifest);
        goto out;
    }
    rc = stg_walk_run(m, &s);
    if (rc == STG_OK)
        stg_test_pause("after-scan");
    /* a whole environment's bytecode is its own interpreter's */
    const char *python = m->pyenv ? m->pyenv->interpreter : m->python;
    if (rc == STG_OK && python)
        rc = compile_bytecode(python, s, &tmpdir, version, sizeof version);
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
    stg_walk_free(&s);
    stg_manifest_free(&m);
    return rc;
}

/* ---- scan --------------------------------------------------------------- */


/* src/py/scan.py (after glibc.py): what the imports load. */
static const char scan_script[] =
#include "glibc.py.h"
#include "scan.py.h"
    ;

/* A tree's name from its source: the last component, made valid and
 * unique. */
static char *tree_name(const char *source, struct stg_strv *taken)
{
    const char *base = strrchr(source, '/');
    base = base && base[1] ? base + 1 : "root";
    /* "[tree NAME]" must fit inih's section buffer (STG_INI_MAX_SECTION) */
    char *n = stg_xasprintf("%.40s", base);
    stg_manifest_make_name(n);
    char *u = stg_xstrdup(n);
    for (int k = 2; stg_strv_has(taken, u); k++) {
        free(u);
        u = stg_xasprintf("%s-%d", n, k);
    }
    free(n);
    stg_strv_push(taken, u);
    return u;
}

/* "key = a b c", wrapped onto indented continuation lines. */
static void emit_list(FILE *f, const char *key, char **v, size_t n)
{
    size_t indent = strlen(key) + 3, col = (size_t)fprintf(f, "%s =", key);
    for (size_t i = 0; i < n; i++) {
        if (col > indent && col + 1 + strlen(v[i]) > 78) {
            fprintf(f, "\n%*s%s", (int)indent, "", v[i]);
            col = indent + strlen(v[i]);
        } else {
            col += (size_t)fprintf(f, " %s", v[i]);
        }
    }
    fputc('\n', f);
}

static int scan_root(const struct stg_opts *o, char **text)
{
    const char *args[16];
    size_t k = 0;
    for (size_t i = 0; i < o->imports.n && k < 15; i++)
        args[k++] = o->imports.v[i];
    args[k] = NULL;
    char *res = NULL;
    int rc = stg_python_run(o->python, NULL, false, scan_script, args, &res);
    if (rc)
        return rc;
    char *name = stg_xasprintf("%.40s", o->name ? o->name : o->imports.v[0]);
    stg_manifest_make_name(name);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    char version[64] = "?";
    struct stg_strv taken = {0};
    char *imports = stg_xstrdup("");
    for (size_t i = 0; i < o->imports.n; i++) {
        char *t = stg_xasprintf("%s%simport %s", imports, i ? "; " : "", o->imports.v[i]);
        free(imports);
        imports = t;
    }
    char *save = NULL;
    bool header = false;
    for (char *line = strtok_r(res, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == 'V') {
            snprintf(version, sizeof version, "%s", line + 2);
            continue;
        }
        if (line[0] == 'W') {
            stg_log_warn("scan: %s", line + 2);
            continue;
        }
        if (line[0] != 'P' && line[0] != 'L')
            continue;
        if (!header) {
            fprintf(f, "; What `%s -c \"%s\"` loads (Python %s), written by\n"
                       "; stage-py scan: one tree per sys.path entry, in sys.path order, then\n"
                       "; the directories of the shared objects it mapped.\n"
                       "[stage]\nname = %s\npython = %s\n",
                    o->python, imports, version, name, o->python);
            header = true;
        }
        /* the manifest reader takes lines of at most 197 characters */
        struct stg_strv w = {0};
        for (char *p = line + 2, *tab; p; p = tab ? tab + 1 : NULL) {
            tab = strchr(p, '\t');
            if (tab)
                *tab = '\0';
            if (strlen(p) <= 180)
                stg_strv_push(&w, p);
            else if (w.n)
                stg_log_warn("scan: '%s/%s': a name too long for a manifest, left out", w.v[0],
                             p);
            else
                rc = stg_err_set(STG_EFAIL, "scan: '%s': a path too long for a manifest "
                                 "(at most 180 characters)", p);
        }
        if (rc) {
            stg_strv_free(&w);
            break;
        }
        char *tn = tree_name(w.v[0], &taken);
        fprintf(f, "\n[tree %s]\nsource = %s\n", tn, w.v[0]);
        if (w.n > 1)
            emit_list(f, "include", w.v + 1, w.n - 1);
        fprintf(f, "env = %s\n", line[0] == 'P' ? "PYTHONPATH" : "LD_LIBRARY_PATH");
        free(tn);
        stg_strv_free(&w);
    }
    fclose(f);
    free(imports);
    free(name);
    free(res);
    stg_strv_free(&taken);
    if (rc) {
        free(out);
        return rc;
    }
    if (!header) {
        free(out);
        return stg_err_set(STG_EFAIL, "scan: '%s' loaded nothing from its sys.path", o->python);
    }
    *text = out;
    return STG_OK;
}

/* ---- check -------------------------------------------------------------- */

/* src/py/check.py (after glibc.py): what the imports load from outside the copy. */
static const char check_script[] =
#include "glibc.py.h"
#include "check.py.h"
    ;

static int check_root(const struct stg_opts *o, char **report)
{
    char err[STG_MSG_MAX];
    struct stg_manifest *m = NULL;
    struct stg_site site;
    int rc = stg_site_load(&site, err, sizeof err);
    if (rc == STG_OK)
        /* the sources as staged: a [python] section's trees too */
        rc = stg_pyenv_load(o->manifest, STG_MANIFEST_SOURCES |
                               (site.writable_manifests_warn ? STG_MANIFEST_WRITABLE_OK : 0), &m,
                               err, sizeof err);
    stg_site_free(&site);
    if (rc)
        return stg_err_set(rc, "%s", err);
    const char *copy = getenv("STAGE_PY_DIR");
    struct stat st;
    if (!copy || !*copy) {
        stg_manifest_free(&m);
        return stg_err_set(STG_EUSAGE, "check: STAGE_PY_DIR is not set: run it with the "
                           "settings of a staging run (. ./env.sh, or eval \"$(stage-py ...)\")");
    }
    if (stat(copy, &st) < 0 || !S_ISDIR(st.st_mode)) {
        stg_manifest_free(&m);
        return stg_err_set(STG_EFAIL, "check: STAGE_PY_DIR '%s': no staged copy on this node",
                           copy);
    }
    char *sources = stg_xstrdup("");
    for (size_t i = 0; i < m->ntrees; i++) {
        const struct stg_tree *tr = &m->trees[i];
        if (!tr->derived) {
            char *t = stg_xasprintf("%s~%s\n", sources, tr->source);
            free(sources);
            sources = t;
        }
        for (size_t k = 0; k < (tr->include.n ? tr->include.n : 1); k++) {
            char *t;
            if (!tr->include.n) {
                t = stg_xasprintf("%s=%s\n", sources, tr->source);
            } else if (stg_match_is_glob(tr->include.v[k]) &&
                       !strchr(tr->include.v[k], '\\')) {
                t = stg_xasprintf("%s*%s/%s\n", sources, tr->source, tr->include.v[k]);
            } else {
                /* a name (derived trees escape their names' glob characters) */
                char *name = stg_xstrdup(tr->include.v[k]), *w = name;
                for (const char *c = tr->include.v[k]; *c; c++) {
                    if (*c == '\\' && c[1])
                        c++;
                    *w++ = *c;
                }
                *w = '\0';
                t = stg_xasprintf("%s=%s/%s\n", sources, tr->source, name);
                free(name);
            }
            free(sources);
            sources = t;
        }
    }
    const char *args[16] = {copy, sources};
    size_t k = 2;
    for (size_t i = 0; i < o->imports.n && k < 15; i++)
        args[k++] = o->imports.v[i];
    args[k] = NULL;
    char *res = NULL;
    rc = stg_python_run(o->python, NULL, false, check_script, args, &res);
    free(sources);
    stg_manifest_free(&m);
    if (rc)
        return rc;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    unsigned long total = 0, original = 0;
    char *save = NULL;
    for (char *line = strtok_r(res, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *v[4];
        int nf = 0;
        for (char *p = line, *tab; p && nf < 4; p = tab ? tab + 1 : NULL) {
            tab = strchr(p, '\t');
            if (tab)
                *tab = '\0';
            v[nf++] = p;
        }
        if (nf == 4)
            fprintf(f, "%s %s: %s (%s)\n", strcmp(v[0], "ORIGINAL") == 0 ? "original"
                                                                        : "outside", v[1],
                    v[2], v[3]);
        else if (nf == 1)
            sscanf(v[0], "%lu %lu", &total, &original);
    }
    fprintf(f, "%lu file(s) from outside the copy '%s', %lu module(s) from a staged tree's "
               "original location\n", total, copy, original);
    fclose(f);
    free(res);
    *report = out;
    if (original > 0)
        return stg_err_set(STG_EFAIL, "check: some modules still come from the trees' original "
                           "locations (listed as 'original module')");
    return STG_OK;
}

/* ---- the commands ---------------------------------------------------- */

/* The root does the work (work), every rank agrees.  The root's text goes
 * to stdout, also with a failure that it reports (check); scan's manifest
 * goes to --output instead, atomically, and only whole. */
static int root_command(const struct stg_opts *o, struct stg_node *n, const char *phase,
                        int (*work)(const struct stg_opts *, char **), bool output)
{
    char msg[STG_MSG_MAX] = "", err[STG_MSG_MAX];
    char *text = NULL;
    stg_node_phase(n, phase);
    /* --output is opened first: a wrong path fails before the work.  A
     * manifest gets no group or other write bits whatever the umask: a job
     * would refuse it. */
    struct stg_output out;
    bool to_file = output && o->output, opened = false;
    mode_t um = umask(0);
    umask(um);
    int rc = STG_OK;
    if (n->is_root && to_file) {
        opened = stg_output_open(&out, o->output, 0666 & ~um & ~(mode_t)022, err,
                                 sizeof err) == 0;
        if (!opened)
            rc = stg_err_set(STG_EUSAGE, "--output: %s", err);
    }
    if (n->is_root && rc == STG_OK)
        rc = work(o, &text);
    if (opened && rc == STG_OK && text) {
        if (stg_output_put(&out, text, strlen(text), err, sizeof err) < 0)
            rc = stg_err_set(STG_EFAIL, "--output: %s", err);
    } else if (opened) {
        stg_output_abort(&out);
    } else if (text && (fputs(text, stdout) == EOF || fflush(stdout) == EOF) && rc == STG_OK) {
        rc = stg_err_set(STG_EFAIL, "cannot write to stdout: %s", strerror(errno));
    }
    rc = stg_agree(n, n->world, rc, msg);
    if (rc && n->is_root)
        fprintf(stderr, "stage-py: %s\n", msg);
    free(text);
    return rc;
}

int stg_cmd_pack(const struct stg_opts *o, struct stg_node *n)
{
    return root_command(o, n, "pack", pack_root, false);
}

int stg_cmd_scan(const struct stg_opts *o, struct stg_node *n)
{
    return root_command(o, n, "scan", scan_root, true);
}

int stg_cmd_check(const struct stg_opts *o, struct stg_node *n)
{
    return root_command(o, n, "check", check_root, false);
}
