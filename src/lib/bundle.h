/* SPDX-License-Identifier: MIT */
/*
 * bundle: the trees of a manifest packed once (stage-py pack, from cron)
 * into one file that a job streams as it is, without walking the trees.
 *
 * Layout (stage-py(1), BUNDLES):
 *   [archive]  a pax archive, compressed or not (none, gzip, zstd, lz4),
 *              whose first entry is STG_BUNDLE_META (a JSON description);
 *   [trailer]  a zstd/lz4 "skippable frame", which bsdtar, zstd and lz4
 *              pass over (gzip(1) warns of trailing garbage): magic 0x184D2A5F (little-endian
 *              32 bits), the length L of what follows (32 bits), a JSON
 *              object, and a footer of 16 bytes:
 *              "STGPYBN1" and the trailer's whole length (8 + L) as a
 *              little-endian 64-bit number.
 * The trailer's "digest" is the XXH3-128 of the archive bytes: every byte
 * of the file before the trailer.
 */
#ifndef STG_BUNDLE_H
#define STG_BUNDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "hash.h"
#include "manifest.h"
#include "walk.h"

#define STG_BUNDLE_META ".stage-py-bundle.json"

struct stg_bundle {
    char *path;
    int fd;                 /* open on the bundle; -1: closed */
    char name[80];
    char key[24];           /* the copy's key */
    char manifest[24];      /* stg_manifest_digest() of the manifest it came from */
    char compress[16];
    char python[512], python_version[16];
    char env[16];           /* a [python] section's kind (stg_pyenv_kind_name()); "" if none */
    char trees_key[24];     /* the key of the trees as packed, before bytecode was added */
    char *manifest_text;    /* the manifest it was packed from; NULL: none (an older bundle) */
    uint64_t archive_bytes; /* the bytes before the trailer: what is streamed */
    uint64_t files, bytes;  /* the copy's entries and file bytes */
    unsigned char digest[STG_DIGEST_LEN];
};

/*
 * Open the bundle that m names (or path) and read its trailer: a constant,
 * small number of calls on the shared file system.  Checks that it is a
 * regular file that group and others cannot write, whole (its size agrees
 * with the trailer), and made from this manifest.  The archive's digest is
 * checked as it streams (stg_pack_start_file()).  OUT b.  Returns STG_OK or
 * an error (stg_err_set()) naming the bundle.
 */
int stg_bundle_open(struct stg_bundle *b, const char *path, const struct stg_manifest *m);
void stg_bundle_close(struct stg_bundle *b);

/*
 * The interpreter that the bundle records, checked against the version
 * its bytecode was compiled by: a standard library of another version
 * (a tree whose source has a pythonX.Y part) is refused; otherwise a
 * warning.  Returns STG_OK or an error.
 */
int stg_bundle_check_python(const struct stg_bundle *b, const struct stg_manifest *m);


/*
 * stage-py pack: write the bundle of m and its scan s at path, compressed
 * with compress, unless a whole bundle of the same key, manifest and
 * compression is there already.  A new bundle is written beside the old one
 * (mode 0644: a bundle that others can write is refused) and renamed into
 * place.  what: the option or key that named path, for messages (see
 * stg_output_open()).  OUT written: whether it wrote one.  Returns STG_OK
 * or an error (stg_err_set()).
 */
int stg_bundle_write(const struct stg_manifest *m, const struct stg_walk *s, const char *path,
                     const char *what, const char *compress, const char *python_version,
                     bool *written);

#endif
