/* SPDX-License-Identifier: MIT */
/*
 * relocate: on each node, after unpacking a copy that holds a whole Python
 * environment, the absolute paths that Python (or the kernel) reads as
 * paths are pointed at the copy: .pth and .egg-link files, pyvenv.cfg, and
 * the #! lines of scripts in bin/ directories.  Symbolic links need no
 * rewriting: walk.c already made the staged ones relative.
 */
#ifndef STG_RELOCATE_H
#define STG_RELOCATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum stg_reloc_kind {
    STG_RELOC_NONE,
    STG_RELOC_PTH,      /* path lines, and quoted paths in import lines */
    STG_RELOC_CFG,      /* key = value lines: absolute words of the values */
    STG_RELOC_SCRIPT    /* the interpreter of a #! line */
};

/* Files larger than this are not rewritten (none of these kinds is). */
#define STG_RELOC_MAX ((int64_t)1 << 20)
/* The longest #! line the kernel reads whole (BINPRM_BUF_SIZE - 1). */
#define STG_RELOC_SHEBANG_MAX 255

/* Which rewriting the copy's regular file at archive path apath gets. */
enum stg_reloc_kind stg_relocate_kind(const char *apath, int64_t size, mode_t mode);

/* Does the copy hold the absolute path abs? */
typedef bool (*stg_reloc_exists)(const char *abs, void *ctx);

/*
 * Rewrite text (len bytes) of the given kind: every absolute, clean path
 * that the copy holds (exists) gets root in front.  Returns the new text
 * (malloc'd, OUT outlen), or NULL when nothing changes.  OUT why (may be
 * NULL): set when a path the copy holds had to stay (a #! line that would
 * grow past STG_RELOC_SHEBANG_MAX).
 */
char *stg_relocate_text(enum stg_reloc_kind kind, const char *text, size_t len,
                        const char *root, stg_reloc_exists exists, void *ctx, size_t *outlen,
                        const char **why);

/*
 * Rewrite the file apath of the copy being made in dir (relative to the
 * current directory), for the copy's final place root, as its kind
 * (stg_relocate_kind() of its path, size and mode) asks: a new file beside
 * it, with the same mode and times, renamed over it.  OUT changed (may be
 * NULL).  Returns STG_OK or an error (stg_err_set()) naming the path.
 */
int stg_relocate_file(const char *dir, const char *apath, const char *root, bool *changed);

#endif
