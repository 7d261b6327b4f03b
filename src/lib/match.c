/* SPDX-License-Identifier: MIT */
/*
 * match: include and exclude patterns, on top of fnmatch(3).
 */
#include "config.h"

#include "match.h"

#include <fnmatch.h>
#include <string.h>

bool stg_match_is_glob(const char *pattern)
{
    return strpbrk(pattern, "*?[") != NULL;
}

bool stg_match_include(const struct stg_strv *include, const char *name)
{
    if (include->n == 0)
        return true;
    for (size_t i = 0; i < include->n; i++)
        if (fnmatch(include->v[i], name, FNM_PERIOD) == 0)
            return true;
    return false;
}

static bool match_one(const char *pat, const char *relpath, const char *name, bool is_dir)
{
    char buf[4096];
    size_t n = strlen(pat);
    bool dir_only = n > 1 && pat[n - 1] == '/';
    if (n >= sizeof buf)
        return false;
    memcpy(buf, pat, n + 1);
    if (dir_only)
        buf[--n] = '\0';
    if (dir_only && !is_dir)
        return false;
    if (strchr(buf, '/')) {
        const char *p = buf[0] == '/' ? buf + 1 : buf;
        return fnmatch(p, relpath, FNM_PATHNAME) == 0;
    }
    return fnmatch(buf, name, 0) == 0;
}

bool stg_match_exclude(const struct stg_strv *exclude, const char *relpath, bool is_dir)
{
    const char *slash = strrchr(relpath, '/');
    const char *name = slash ? slash + 1 : relpath;
    for (size_t i = 0; i < exclude->n; i++)
        if (match_one(exclude->v[i], relpath, name, is_dir))
            return true;
    return false;
}
