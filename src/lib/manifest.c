/* SPDX-License-Identifier: MIT */
/*
 * manifest: parse stage-py.ini(5) with inih.
 *
 * inih is driven through ini_parse_stream() with a reader of our own, which
 * sees every line before inih does.  The reader counts lines, refuses what
 * the library would silently mangle (lines longer than its buffer, section
 * and key names longer than its fixed arrays), notices sections that never
 * reach the handler (a [tree] with no keys, an unknown empty section), and
 * tells the handler whether the current line is a continuation, so that a
 * continued value appends while a repeated key is an error.
 */
#include "config.h"

#include "manifest.h"
#include "hash.h"
#include "log.h"
#include "match.h"
#include "trust.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum section_kind { SEC_NONE, SEC_STAGE, SEC_TREE, SEC_PYTHON };

struct seen_key {
    char name[STG_INI_MAX_NAME + 1];
    int line;
};

struct parse {
    FILE *f;
    bool reload;                /* STG_MANIFEST_RELOAD: no warning again */
    const char *path;
    struct stg_manifest *m;
    char *buf;
    size_t bufcap;
    int line;
    /* State of the line inih is processing now. */
    bool cont;                  /* a continuation of the previous key */
    bool prev_key;              /* inih's prev_name is set */
    enum section_kind kind;
    struct stg_tree *tree;      /* current [tree], or NULL */
    struct seen_key seen[32];
    size_t nseen;
    char key[STG_INI_MAX_NAME + 1];
    /* An error was recorded (stg_err_set()): the first one stands. */
    bool failed;
    struct stg_buf text;        /* every line read, as read: the manifest's text */
};

static bool fail(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(struct parse *p, int line, const char *fmt, ...)
{
    if (p->failed)
        return false;
    p->failed = true;
    char msg[STG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        stg_err_set(STG_EUSAGE, "%s:%d: %s", p->path, line, msg);
    else
        stg_err_set(STG_EUSAGE, "%s: %s", p->path, msg);
    return false;
}

bool stg_manifest_valid_name(const char *s)
{
    if (!s || !*s || *s == '.' || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

void stg_manifest_make_name(char *s)
{
    for (char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' && *c != '-')
            *c = '_';
    if (*s == '.')
        *s = '_';
}

/* Levenshtein distance of a and b, case folded, if at most 2; else 3. */
static int near(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 2)
        return 3;
    int d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (toupper((unsigned char)a[i - 1]) !=
                                         toupper((unsigned char)b[j - 1]));
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            /* a swap of two neighbours is one slip (PYTHONPAHT) */
            if (i > 1 && j > 1 && toupper((unsigned char)a[i - 1]) == toupper((unsigned char)b[j - 2]) &&
                toupper((unsigned char)a[i - 2]) == toupper((unsigned char)b[j - 1]) &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    return d[la][lb] > 2 ? 3 : d[la][lb];
}

const char *stg_manifest_env_slip(const char *var)
{
    /* the path lists a staged tree goes on */
    static const char *const lists[] = {
        "PYTHONPATH", "PATH", "LD_LIBRARY_PATH", "LIBRARY_PATH", "MANPATH", "CPATH",
        "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "PKG_CONFIG_PATH", "CMAKE_PREFIX_PATH",
        "PERL5LIB", "JULIA_LOAD_PATH", "R_LIBS", "CLASSPATH", "LD_PRELOAD", "XDG_DATA_DIRS",
        /* not near a slip of the others */
        "DYLD_LIBRARY_PATH", "LD_RUN_PATH", "GI_TYPELIB_PATH", "ACLOCAL_PATH", "INFOPATH",
        "PYTHONHOME", "PYTHONUSERBASE", "PYTHONSTARTUP", "PERLLIB", "CDPATH", "RUBYLIB",
        "NODE_PATH", "GOPATH", "LUA_PATH", "LUA_CPATH", "MODULEPATH", "FPATH", "TEXINPUTS",
        "GEM_PATH", "OCAMLPATH", "GUILE_LOAD_PATH",
    };
    const size_t n = sizeof lists / sizeof lists[0];
    for (size_t i = 0; i < n; i++)
        if (strcmp(var, lists[i]) == 0)
            return NULL;
    /* a short name is near too many: only its case */
    int limit = strlen(var) < 6 ? 0 : strlen(var) < 9 ? 1 : 2;
    const char *best = NULL;
    int bestd = 3;
    for (size_t i = 0; i < n; i++) {
        int d = near(var, lists[i]);
        if (d <= limit && d < bestd) {
            bestd = d;
            best = lists[i];
        }
    }
    /* a case slip is distance 0: near() folds case */
    return best;
}

bool stg_manifest_valid_var(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static struct stg_tree *find_tree(struct stg_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->ntrees; i++)
        if (strcmp(m->trees[i].name, name) == 0)
            return &m->trees[i];
    return NULL;
}

/* A section header: classify it and reset the per-section state. */
static bool section_line(struct parse *p, char *start)
{
    char *end = strchr(start + 1, ']');
    if (!end)
        return fail(p, p->line, "section header without ']'");
    size_t len = (size_t)(end - start - 1);
    if (len > STG_INI_MAX_SECTION)
        return fail(p, p->line, "section name longer than %d characters", STG_INI_MAX_SECTION);
    char sec[STG_INI_MAX_SECTION + 1];
    memcpy(sec, start + 1, len);
    sec[len] = '\0';
    char *s = trim(sec);
    p->prev_key = false;
    p->nseen = 0;
    p->tree = NULL;
    if (strcmp(s, "stage") == 0) {
        if (p->m->stage_line)
            return fail(p, p->line, "second [stage] section (the first is at line %d)",
                        p->m->stage_line);
        p->m->stage_line = p->line;
        p->kind = SEC_STAGE;
        return true;
    }
    if (strncmp(s, "tree", 4) == 0 && (s[4] == '\0' || isspace((unsigned char)s[4]))) {
        char *name = trim(s + 4);
        if (!*name)
            return fail(p, p->line, "[tree] needs a name: [tree NAME]");
        if (!stg_manifest_valid_name(name))
            return fail(p, p->line,
                        "invalid tree name '%s': use letters, digits, '.', '_' and '-', "
                        "not starting with '.'", name);
        struct stg_tree *t = find_tree(p->m, name);
        if (t)
            return fail(p, p->line, "duplicate [tree %s] (the first is at line %d)", name, t->line);
        p->m->trees = stg_xrealloc(p->m->trees, (p->m->ntrees + 1) * sizeof *p->m->trees);
        t = &p->m->trees[p->m->ntrees++];
        memset(t, 0, sizeof *t);
        t->name = stg_xstrdup(name);
        t->line = p->line;
        p->tree = t;
        p->kind = SEC_TREE;
        return true;
    }
    if (strncmp(s, "python", 6) == 0 && (s[6] == '\0' || isspace((unsigned char)s[6]))) {
        char *name = trim(s + 6);
        if (!*name)
            return fail(p, p->line, "[python] needs a name: [python NAME]");
        if (!stg_manifest_valid_name(name))
            return fail(p, p->line,
                        "invalid environment name '%s': use letters, digits, '.', '_' and "
                        "'-', not starting with '.'", name);
        if (p->m->pyenv)
            return fail(p, p->line, "second [python] section (the first is at line %d): a "
                        "copy holds one environment, whose interpreter comes first on PATH",
                        p->m->pyenv->line);
        struct stg_pyenv *e = stg_xcalloc(1, sizeof *e);
        e->name = stg_xstrdup(name);
        e->line = p->line;
        p->m->pyenv = e;
        p->kind = SEC_PYTHON;
        return true;
    }
    return fail(p, p->line, "unknown section [%s] (known: [stage], [tree NAME], "
                "[python NAME])", s);
}

/* A "key = value" line: check the key's length as inih will see it. */
static bool key_line(struct parse *p, char *start)
{
    size_t n = strcspn(start, "=:");
    if (start[n] == '\0')
        return fail(p, p->line, "expected 'key = value'");
    while (n > 0 && isspace((unsigned char)start[n - 1]))
        n--;
    if (n == 0)
        return fail(p, p->line, "missing key before '='");
    if (n > STG_INI_MAX_NAME)
        return fail(p, p->line, "key longer than %d characters", STG_INI_MAX_NAME);
    if (p->kind == SEC_NONE)
        return fail(p, p->line, "'%.*s' outside a section", (int)n, start);
    memcpy(p->key, start, n);
    p->key[n] = '\0';
    p->prev_key = true;
    return true;
}

/* inih's ini_reader: hands inih one line at a time, after checking it. */
static char *reader(char *str, int num, void *stream)
{
    struct parse *p = stream;
    if (p->failed)
        return NULL;
    ssize_t len = getline(&p->buf, &p->bufcap, p->f);
    if (len < 0) {
        if (ferror(p->f))
            fail(p, p->line, "read error: %s", strerror(errno));
        return NULL;
    }
    p->line++;
    if (strlen(p->buf) != (size_t)len) {
        fail(p, p->line, "NUL byte in line");
        return NULL;
    }
    stg_buf_put(&p->text, p->buf, (size_t)len);
    while (len > 0 && (p->buf[len - 1] == '\n' || p->buf[len - 1] == '\r'))
        p->buf[--len] = '\0';
    /* inih needs room for "\r\n\0" beyond the text (ini.h: INI_MAX_LINE). */
    if (len > num - 3) {
        fail(p, p->line, "line longer than %d characters", num - 3);
        return NULL;
    }
    char *start = p->buf;
    if (p->line == 1 && (unsigned char)start[0] == 0xEF &&
        (unsigned char)start[1] == 0xBB && (unsigned char)start[2] == 0xBF)
        start += 3;
    char *text = start;
    while (isspace((unsigned char)*text))
        text++;
    p->cont = false;
    if (*text == '\0' || strchr(";#", *text)) {
        /* blank or comment: inih skips it too */
    } else if (p->prev_key && text > start) {
        p->cont = true;     /* inih: indented line after a key continues it */
        /* The distribution's inih keeps " ; comment" in continuation lines;
         * cut it here so that inline comments work the same on every line. */
        for (char *c = text; *c; c++)
            if (*c == ';' && isspace((unsigned char)c[-1])) {
                *c = '\0';
                len = (ssize_t)(c - p->buf);
                break;
            }
    } else if (*text == '[') {
        if (!section_line(p, text))
            return NULL;
    } else if (!key_line(p, text)) {
        return NULL;
    }
    memcpy(str, p->buf, (size_t)len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

static bool set_scalar(struct parse *p, char **dst, int *line, const char *key,
                       const char *value)
{
    if (p->cont)
        return fail(p, p->line, "'%s' takes one value", key);
    if (!*value)
        return fail(p, p->line, "'%s' is empty", key);
    *dst = stg_xstrdup(value);
    if (line)
        *line = p->line;
    return true;
}

static void add_list(struct parse *p, struct stg_strv *sv, int *line, const char *value)
{
    stg_strv_split(sv, value);
    if (line && !p->cont)
        *line = p->line;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    (void)section; /* the reader's own record of the section is exact */
    if (p->failed)
        return 0;
    if (!p->cont) {
        for (size_t i = 0; i < p->nseen; i++)
            if (strcmp(p->seen[i].name, name) == 0)
                return fail(p, p->line, "duplicate key '%s' (first at line %d); "
                            "continue a value on indented lines instead",
                            name, p->seen[i].line);
        if (p->nseen < sizeof p->seen / sizeof *p->seen) {
            snprintf(p->seen[p->nseen].name, sizeof p->seen[0].name, "%s", name);
            p->seen[p->nseen++].line = p->line;
        }
    }
    struct stg_manifest *m = p->m;
    if (p->kind == SEC_STAGE) {
        if (strcmp(name, "name") == 0)
            return set_scalar(p, &m->name, &m->name_line, name, value);
        if (strcmp(name, "dest") == 0) {
            if (!set_scalar(p, &m->dest, &m->dest_line, name, value))
                return 0;
            stg_path_strip_slash(m->dest);
            return 1;
        }
        if (strcmp(name, "timeout") == 0) {
            if (p->cont || stg_parse_duration(value, &m->timeout) < 0)
                return fail(p, p->line, "timeout '%s': give a duration such as 90s, 5m or 1h",
                            value);
            m->timeout_line = p->line;
            return 1;
        }
        if (strcmp(name, "bundle") == 0) {
            if (!set_scalar(p, &m->bundle, &m->bundle_line, name, value))
                return 0;
            if (m->bundle[0] != '/') {
                /* relative to the manifest, wherever the job starts */
                char *dir = stg_path_absolute(p->path);
                *strrchr(dir, '/') = '\0';
                char *abs = stg_xasprintf("%s/%s", dir, m->bundle);
                free(dir);
                free(m->bundle);
                m->bundle = stg_path_absolute(abs);
                free(abs);
            }
            return 1;
        }
        if (strcmp(name, "python") == 0) {
            if (!set_scalar(p, &m->python, &m->python_line, name, value))
                return 0;
            if (m->python[0] != '/')
                return fail(p, p->line, "python '%s': give an absolute path", value);
            return 1;
        }
        if (strcmp(name, "fallback_to_trees") == 0) {
            if (p->cont || stg_parse_bool(value, &m->fallback_to_trees) < 0)
                return fail(p, p->line, "fallback_to_trees '%s': use yes or no", value);
            m->fallback_to_trees_line = p->line;
            return 1;
        }
        if (strcmp(name, "max_cache") == 0) {
            if (p->cont || stg_parse_size(value, &m->max_cache) < 0)
                return fail(p, p->line, "max_cache '%s': give a size such as 8G, or 0 for no "
                            "limit", value);
            m->max_cache_line = p->line;
            return 1;
        }
        return fail(p, p->line, "unknown key '%s' in [stage] (known: name, dest, timeout, "
                    "max_cache, bundle, fallback_to_trees, python)", name);
    }
    if (p->kind == SEC_PYTHON) {
        struct stg_pyenv *e = m->pyenv;
        e->nkeys++;
        if (strcmp(name, "prefix") == 0) {
            if (!set_scalar(p, &e->prefix, &e->prefix_line, name, value))
                return 0;
            stg_path_strip_slash(e->prefix);
            return 1;
        }
        if (strcmp(name, "include") == 0) {
            if (!*value && !p->cont)
                return fail(p, p->line, "'include' is empty (leave it out for the default)");
            add_list(p, &e->include, &e->include_line, value);
            return 1;
        }
        if (strcmp(name, "exclude") == 0) {
            add_list(p, &e->exclude, &e->exclude_line, value);
            return 1;
        }
        if (strcmp(name, "user_site") == 0) {
            e->user_site_line = p->line;
            if (p->cont || stg_parse_bool(value, &e->user_site) < 0)
                return fail(p, p->line, "user_site '%s': use yes or no", value);
            return 1;
        }
        return fail(p, p->line, "unknown key '%s' in [python %s] (known: prefix, include, "
                    "exclude, user_site)", name, e->name);
    }
    struct stg_tree *t = p->tree;
    t->nkeys++;
    if (strcmp(name, "source") == 0)
        return set_scalar(p, &t->source, &t->source_line, name, value);
    if (strcmp(name, "include") == 0) {
        if (!*value && !p->cont)
            return fail(p, p->line, "'include' is empty (leave it out to stage the whole "
                        "tree)");
        add_list(p, &t->include, &t->include_line, value);
        return 1;
    }
    if (strcmp(name, "exclude") == 0) {
        add_list(p, &t->exclude, NULL, value);
        return 1;
    }
    if (strcmp(name, "env") == 0) {
        t->env_given = true;
        add_list(p, &t->env, &t->env_line, value);
        return 1;
    }
    if (strcmp(name, "set") == 0) {
        add_list(p, &t->set, &t->set_line, value);
        return 1;
    }
    return fail(p, p->line, "unknown key '%s' in [tree %s] (known: source, include, "
                "exclude, env, set)", name, t->name);
}

/* A directory of the manifest (key: source, prefix), which the settings
 * put in a path list (list): absolute, without ':' or newline; normalised
 * in place. */
static bool check_dir(struct parse *p, char **path, int line, const char *key, const char *list)
{
    if ((*path)[0] != '/')
        return fail(p, line, "%s '%s' is not an absolute path", key, *path);
    if (!stg_path_listable(*path))
        return fail(p, line, "%s '%s' has a ':' or a newline, which %s cannot hold", key, *path,
                    list);
    char *norm = stg_path_absolute(*path);
    free(*path);
    *path = norm;
    return true;
}

/* Checks that need the whole file. */
static bool check_tree(struct parse *p, struct stg_tree *t, bool check_sources)
{
    if (t->nkeys == 0)
        return fail(p, t->line, "[tree %s] is empty", t->name);
    if (!t->source)
        return fail(p, t->line, "[tree %s] has no 'source'", t->name);
    if (!check_dir(p, &t->source, t->source_line, "source", "a path list"))
        return false;
    if (strcmp(t->source, "/") == 0)
        return fail(p, t->source_line, "source '/' would stage the whole file system");
    if (strncmp(t->source, "/.stage-py.json", 15) == 0 &&
        (t->source[15] == '\0' || t->source[15] == '/'))
        return fail(p, t->source_line, "source '%s' would overlay the copy's record", t->source);
    if (check_sources) {
        struct stat st;
        if (stat(t->source, &st) < 0)
            return fail(p, t->source_line, "source '%s': %s", t->source, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return fail(p, t->source_line, "source '%s' is not a directory", t->source);
        if (access(t->source, R_OK | X_OK) < 0)
            return fail(p, t->source_line, "source '%s' is not readable: %s", t->source,
                        strerror(errno));
        char *real = realpath(t->source, NULL);
        if (!real)
            return fail(p, t->source_line, "source '%s': %s", t->source, strerror(errno));
        t->real = real;
    } else {
        t->real = stg_xstrdup(t->source);
    }
    /* env: default PYTHONPATH; "none" alone turns it off. */
    if (!t->env_given) {
        stg_strv_push(&t->env, "PYTHONPATH");
    } else if (stg_strv_has(&t->env, "none")) {
        if (t->env.n != 1)
            return fail(p, t->env_line, "'none' cannot be combined with variables in 'env'");
        stg_strv_free(&t->env);
        t->env_none = true;
    } else if (t->env.n == 0) {
        return fail(p, t->env_line, "'env' is empty (use 'env = none')");
    }
    for (size_t i = 0; i < t->env.n; i++) {
        if (!stg_manifest_valid_var(t->env.v[i]))
            return fail(p, t->env_line, "invalid variable name '%s' in 'env'", t->env.v[i]);
        const char *meant = stg_manifest_env_slip(t->env.v[i]);
        if (meant && !p->reload)
            stg_log_warn("%s:%d: env '%s' in [tree %s]: did you mean '%s'? (no program reads "
                         "'%s': the tree is put on it and on nothing else)", p->path,
                         t->env_line, t->env.v[i], t->name, meant, t->env.v[i]);
    }
    for (size_t i = 0; i < t->set.n; i++)
        if (!stg_manifest_valid_var(t->set.v[i]))
            return fail(p, t->set_line, "invalid variable name '%s' in 'set'", t->set.v[i]);
    for (size_t i = 0; i < t->include.n; i++)
        if (strchr(t->include.v[i], '/') || strcmp(t->include.v[i], "..") == 0 ||
            strcmp(t->include.v[i], ".") == 0)
            return fail(p, t->include_line, "include '%s' is not a top-level name",
                        t->include.v[i]);
    return true;
}

/* The [python] section as written: the prefix, and include entries that
 * name paths below it. */
static bool check_pyenv(struct parse *p, struct stg_pyenv *e)
{
    if (e->nkeys == 0)
        return fail(p, e->line, "[python %s] is empty", e->name);
    if (!e->prefix)
        return fail(p, e->line, "[python %s] has no 'prefix'", e->name);
    if (!check_dir(p, &e->prefix, e->prefix_line, "prefix", "PATH"))
        return false;
    if (strcmp(e->prefix, "/") == 0)
        return fail(p, e->prefix_line, "prefix '/': give the environment's own prefix, such "
                    "as /usr or /opt/envs/NAME");
    if (p->m->python)
        return fail(p, p->m->python_line, "'python' in [stage] and a [python %s] section "
                    "(line %d): the section's interpreter is the one", e->name, e->line);
    for (size_t i = 0; i < e->include.n; i++) {
        const char *inc = e->include.v[i];
        bool bad = inc[0] == '/' || inc[strlen(inc) - 1] == '/';
        for (const char *c = inc; !bad && *c;) {
            size_t n = strcspn(c, "/");
            char comp[256];
            snprintf(comp, sizeof comp, "%.*s", (int)n, c);
            bad = n == 0 || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0 ||
                  (c[n] == '/' && stg_match_is_glob(comp));
            c += n + (c[n] == '/');
        }
        if (bad)
            return fail(p, e->include_line, "include '%s' is not a path below the prefix "
                        "(relative, without '.' or '..', globs in its last part only)", inc);
    }
    return true;
}

/* A variable is set by one tree only, and never both set and prepended;
 * those of a [python] section are its own. */
static bool check_vars(struct parse *p)
{
    struct stg_manifest *m = p->m;
    static const char *const pyvars[] = STG_PYENV_VARS;
    for (size_t i = 0; i < m->ntrees; i++) {
        struct stg_tree *t = &m->trees[i];
        for (size_t k = 0; k < t->set.n; k++) {
            const char *v = t->set.v[k];
            for (size_t j = 0; m->pyenv && pyvars[j]; j++)
                if (strcmp(v, pyvars[j]) == 0)
                    return fail(p, t->set_line, "'%s' is set by the [python %s] section "
                                "(line %d)", v, m->pyenv->name, m->pyenv->line);
            for (size_t j = 0; j < m->ntrees; j++) {
                struct stg_tree *u = &m->trees[j];
                if (stg_strv_has(&u->env, v))
                    return fail(p, t->set_line, "'%s' is set here and prepended to by "
                                "[tree %s]", v, u->name);
                if (j < i && stg_strv_has(&u->set, v))
                    return fail(p, t->set_line, "'%s' is already set by [tree %s] "
                                "(line %d)", v, u->name, u->set_line);
            }
            if (strcmp(v, "STAGE_PY_DIR") == 0)
                return fail(p, t->set_line, "STAGE_PY_DIR is set by stage-py itself");
        }
        if (stg_strv_has(&t->env, "STAGE_PY_DIR"))
            return fail(p, t->env_line, "STAGE_PY_DIR is set by stage-py itself");
    }
    return true;
}

static int parse(struct parse *pp, unsigned flags, struct stg_manifest **out);

int stg_manifest_load(const char *path, unsigned flags, struct stg_manifest **out)
{
    struct parse p = {.path = path};
    *out = NULL;
    bool warn = flags & STG_MANIFEST_WRITABLE_OK;
    /* Whoever can write the manifest decides what every rank imports. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        if (!warn)
            return stg_err_set(STG_EUSAGE, "refusing manifest '%s': writable by group or "
                               "others (mode %04o); other users could choose what the job "
                               "imports (chmod go-w)", path, (unsigned)(st.st_mode & 07777));
        if (!(flags & STG_MANIFEST_RELOAD))
            stg_log_warn("using manifest '%s': writable by group or others (mode %04o); "
                         "other users could choose what the job imports (chmod go-w) (the "
                         "site file allows it)", path, (unsigned)(st.st_mode & 07777));
    }
    /* ... and so does whoever owns it or a directory above it */
    int fd = stg_trust_open_input(path, "manifest", warn);
    p.f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!p.f) {
        if (fd < 0)
            return STG_EUSAGE;      /* recorded */
        close(fd);
        return stg_err_set(STG_EUSAGE, "cannot read manifest '%s': %s", path, strerror(errno));
    }
    return parse(&p, flags, out);
}

int stg_manifest_load_text(const char *text, const char *label, unsigned flags,
                           struct stg_manifest **out)
{
    struct parse p = {.path = label};
    *out = NULL;
    /* a bundle's manifest: a relative 'bundle =' would be relative to the
     * label, which is no directory; the caller names the bundle */
    p.f = fmemopen((void *)text, strlen(text), "r");
    if (!p.f)
        return stg_err_set(STG_EFAIL, "cannot read %s: %s", label, strerror(errno));
    return parse(&p, flags, out);
}

/* Parse p->f (closed here) into OUT out, checked as flags say. */
static int parse(struct parse *pp, unsigned flags, struct stg_manifest **out)
{
    struct parse p = *pp;
    bool check_sources = flags & STG_MANIFEST_SOURCES;
    p.reload = flags & STG_MANIFEST_RELOAD;
    p.m = stg_xcalloc(1, sizeof *p.m);
    p.m->path = stg_xstrdup(p.path);
    p.m->timeout = -1;
    int rc = ini_parse_stream(reader, &p, handler, &p);
    fclose(p.f);
    free(p.buf);
    p.m->text = p.text.s ? p.text.s : stg_xstrdup("");
    if (!p.failed && rc == -2)
        fail(&p, 0, "out of memory while parsing");
    else if (!p.failed && rc != 0)
        fail(&p, rc, "syntax error");
    if (!p.failed && !p.m->stage_line)
        fail(&p, 0, "no [stage] section");
    if (!p.failed && !p.m->name)
        fail(&p, p.m->stage_line, "[stage] has no 'name'");
    if (!p.failed && !stg_manifest_valid_name(p.m->name))
        fail(&p, p.m->name_line, "invalid name '%s': use letters, digits, '.', '_' and '-', "
             "not starting with '.'", p.m->name);
    if (!p.failed && p.m->dest && !stg_path_is_clean_absolute(p.m->dest))
        fail(&p, p.m->dest_line, "dest '%s' is not a clean absolute path", p.m->dest);
    else if (!p.failed && p.m->dest && !stg_path_listable(p.m->dest))
        fail(&p, p.m->dest_line, "dest '%s' has a ':' or a newline, which a path list "
             "cannot hold", p.m->dest);
    if (!p.failed && p.m->ntrees == 0 && !p.m->pyenv)
        fail(&p, 0, "no [tree NAME] or [python NAME] section: nothing to stage");
    if (!p.failed && p.m->pyenv)
        check_pyenv(&p, p.m->pyenv);
    if (p.m->bundle && (flags & STG_MANIFEST_BUNDLE_FIRST))
        check_sources = false;
    for (size_t i = 0; !p.failed && i < p.m->ntrees; i++)
        check_tree(&p, &p.m->trees[i], check_sources);
    if (!p.failed)
        check_vars(&p);
    if (p.failed) {
        stg_manifest_free(&p.m);
        return STG_EUSAGE;
    }
    *out = p.m;
    return 0;
}

void stg_manifest_free(struct stg_manifest **m)
{
    if (!m || !*m)
        return;
    struct stg_manifest *x = *m;
    for (size_t i = 0; i < x->ntrees; i++) {
        struct stg_tree *t = &x->trees[i];
        free(t->name);
        free(t->source);
        free(t->real);
        stg_strv_free(&t->include);
        stg_strv_free(&t->exclude);
        stg_strv_free(&t->env);
        stg_strv_free(&t->set);
    }
    free(x->trees);
    if (x->pyenv) {
        free(x->pyenv->name);
        free(x->pyenv->prefix);
        free(x->pyenv->interpreter);
        stg_strv_free(&x->pyenv->include);
        stg_strv_free(&x->pyenv->exclude);
        free(x->pyenv);
    }
    free(x->path);
    free(x->text);
    free(x->name);
    free(x->dest);
    free(x->bundle);
    free(x->python);
    free(x);
    *m = NULL;
}

/* A list into the digest: its length, then its words. */
static void hash_list(struct stg_hash *h, const struct stg_strv *sv)
{
    stg_hash_u64(h, sv->n);
    for (size_t k = 0; k < sv->n; k++)
        stg_hash_str(h, sv->v[k]);
}

void stg_manifest_digest(const struct stg_manifest *m, char hex[17])
{
    struct stg_hash *h = stg_hash_new();
    stg_hash_str(h, "stage-py manifest 1");
    stg_hash_str(h, m->name);
    stg_hash_str(h, m->python ? m->python : "");
    /* the [python] section as written: what it resolves to depends on it */
    const struct stg_pyenv *e = m->pyenv;
    if (e) {
        stg_hash_str(h, "[python]");
        stg_hash_str(h, e->name);
        stg_hash_str(h, e->prefix);
        hash_list(h, &e->include);
        hash_list(h, &e->exclude);
    }
    for (size_t i = 0; i < m->ntrees; i++) {
        const struct stg_tree *t = &m->trees[i];
        if (t->derived)
            continue;
        stg_hash_str(h, t->name);
        stg_hash_str(h, t->source);
        hash_list(h, &t->include);
        hash_list(h, &t->exclude);
    }
    unsigned char d[STG_DIGEST_LEN];
    stg_hash_digest(h, d);
    stg_hash_free(&h);
    stg_hex(d, 8, hex);
}
