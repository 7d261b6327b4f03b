/* SPDX-License-Identifier: MIT */
/*
 * hash: streaming XXH3-128 digests (xxHash) in canonical big-endian form,
 * the same bytes on every architecture, for the wire and for cache keys.
 */
#ifndef STG_HASH_H
#define STG_HASH_H

#include <stddef.h>

#define STG_DIGEST_LEN 16

struct stg_hash;

struct stg_hash *stg_hash_new(void);
void stg_hash_free(struct stg_hash **h);
void stg_hash_update(struct stg_hash *h, const void *data, size_t len);
/* Feed a NUL-terminated string together with its terminator, so that the
 * sequence ("ab","c") hashes differently from ("a","bc"). */
void stg_hash_str(struct stg_hash *h, const char *s);
void stg_hash_u64(struct stg_hash *h, unsigned long long v);
/* OUT out: the canonical (big-endian) XXH3-128 digest of all data so far. */
void stg_hash_digest(const struct stg_hash *h, unsigned char out[STG_DIGEST_LEN]);
/* OUT hex: 2*len lowercase hex digits and a NUL. */
void stg_hex(const unsigned char *d, size_t len, char *hex);

#endif
