/* SPDX-License-Identifier: MIT */
/*
 * hash: thin wrapper over xxHash's streaming XXH3-128 state.
 */
#include "config.h"

#include "hash.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct stg_hash {
    XXH3_state_t *st;
};

struct stg_hash *stg_hash_new(void)
{
    struct stg_hash *h = stg_xmalloc(sizeof *h);
    h->st = XXH3_createState();
    if (!h->st)
        stg_xmalloc((size_t)-1); /* reports out of memory */
    XXH3_128bits_reset(h->st);
    return h;
}

void stg_hash_free(struct stg_hash **h)
{
    if (!h || !*h)
        return;
    XXH3_freeState((*h)->st);
    free(*h);
    *h = NULL;
}

void stg_hash_update(struct stg_hash *h, const void *data, size_t len)
{
    XXH3_128bits_update(h->st, data, len);
}

void stg_hash_str(struct stg_hash *h, const char *s)
{
    XXH3_128bits_update(h->st, s ? s : "", (s ? strlen(s) : 0) + 1);
}

void stg_hash_u64(struct stg_hash *h, unsigned long long v)
{
    unsigned char b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
    XXH3_128bits_update(h->st, b, sizeof b);
}

void stg_hash_digest(const struct stg_hash *h, unsigned char out[STG_DIGEST_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->st));
    memcpy(out, c.digest, STG_DIGEST_LEN);
}

void stg_hex(const unsigned char *d, size_t len, char *hex)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = x[d[i] >> 4];
        hex[2 * i + 1] = x[d[i] & 15];
    }
    hex[2 * len] = '\0';
}
