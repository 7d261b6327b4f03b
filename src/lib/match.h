/* SPDX-License-Identifier: MIT */
/*
 * match: the include and exclude patterns of a tree.
 *
 * include names top-level entries of the tree (names or shell globs).
 * exclude follows .gitignore habits: a pattern without "/" matches an
 * entry's name at any depth; one with "/" matches the path relative to the
 * tree's source (a leading "/" only anchors); "*" stays within one
 * component; a trailing "/" matches directories only.
 */
#ifndef STG_MATCH_H
#define STG_MATCH_H

#include <stdbool.h>

#include "util.h"

/* true if the top-level name is selected by include (an empty list selects
 * everything). */
bool stg_match_include(const struct stg_strv *include, const char *name);

/* true if the entry at relpath (relative to the tree's source, no leading
 * "/"), whose last component is a directory when is_dir, is excluded. */
bool stg_match_exclude(const struct stg_strv *exclude, const char *relpath, bool is_dir);

/* true if pattern has shell glob characters. */
bool stg_match_is_glob(const char *pattern);

#endif
