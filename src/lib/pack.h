/* SPDX-License-Identifier: MIT */
/*
 * pack: on the root, a thread that writes the scanned entries as a pax
 * archive (libarchive) straight into chunks: no temporary file, and never
 * more of the archive in memory than the chunks in the pool.
 */
#ifndef STG_PACK_H
#define STG_PACK_H

#include <stdint.h>

struct archive;

#include "chunk.h"
#include "hash.h"
#include "walk.h"

struct stg_pack;

/* Add compress's filter (one of util.h's stg_compressions) to the archive a, before it is opened.  Returns
 * libarchive's status. */
int stg_pack_add_filter(struct archive *a, const char *compress);

/*
 * Start packing s, compressed with compress (NULL: none).  Chunks come from freeq and go, filled, to outq, in
 * order; the last one carries STG_CHUNK_LAST, and also STG_CHUNK_ABORT if
 * packing failed (the error is recorded with stg_err_set()) or was cancelled.  The data is written
 * by libarchive in the order of s; chunk headers other than len and flags
 * are the caller's.
 */
int stg_pack_start(struct stg_pack **p, const struct stg_walk *s, const char *compress,
                   struct stg_chunkq *freeq, struct stg_chunkq *outq);
/*
 * The same for a bundle: bytes [0, len) of fd (path for messages), checked
 * against digest as they go; a mismatch is an error, and the stream ends
 * with STG_CHUNK_ABORT.
 */
int stg_pack_start_file(struct stg_pack **p, int fd, const char *path, uint64_t len,
                        const unsigned char digest[STG_DIGEST_LEN], struct stg_chunkq *freeq,
                        struct stg_chunkq *outq);

/* Write the entries of s into the open archive a (pax).  Returns STG_OK or
 * an error (stg_err_set()). */
int stg_pack_entries(struct archive *a, const struct stg_walk *s);

/* How far it is, from any thread: OUT entries packed, and data: the
 * bytes of file data packed (of a bundle: its archive bytes read). */
void stg_pack_progress(struct stg_pack *p, uint64_t *entries, uint64_t *data);

/* Ask the thread to stop early (another node failed): the stream then ends
 * with STG_CHUNK_ABORT, and no error is recorded here. */
void stg_pack_cancel(struct stg_pack *p);
/* Wait for the thread.  OUT bytes: bytes written (compressed, if so);
 * archive_bytes: the archive before compression; t0, t1: when it ran.  Any
 * OUT may be NULL.  Returns its status. */
int stg_pack_join(struct stg_pack **p, uint64_t *bytes, uint64_t *archive_bytes, double *t0,
                  double *t1);

#endif
