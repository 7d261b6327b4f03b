/* SPDX-License-Identifier: MIT */
/*
 * t-hash: the streaming XXH3-128 digest: the same for a stream however it
 * is split, the same as xxHash's one-shot XXH3-128 in canonical
 * (big-endian) form, different for one changed byte; strings fed with
 * their terminator, numbers as 8 big-endian bytes; the hex form.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hash.h"
#include "tap.h"
#include "util.h"

#define LEN 100000

/* The digest of the len bytes at data, fed in pieces of the sizes that
 * next() gives in turn. */
static void digest_split(const unsigned char *data, size_t len, size_t (*next)(size_t),
                         unsigned char out[STG_DIGEST_LEN])
{
    struct stg_hash *h = stg_hash_new();
    size_t off = 0;
    for (size_t i = 0; off < len; i++) {
        size_t n = next(i);
        if (n > len - off)
            n = len - off;
        stg_hash_update(h, data + off, n);
        off += n;
    }
    stg_hash_digest(h, out);
    stg_hash_free(&h);
}

static size_t whole(size_t i) { (void)i; return LEN; }
static size_t bytes(size_t i) { (void)i; return 1; }
static size_t odd(size_t i) { return (i * 7919) % 1013; }     /* 0 too: empty updates */
static size_t blocks(size_t i) { return i % 2 ? 64 : 4096 - 1; }

/* The reference: xxHash's one-shot XXH3-128, canonical. */
static void reference(const void *data, size_t len, unsigned char out[STG_DIGEST_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
    memcpy(out, c.digest, STG_DIGEST_LEN);
}

static void hex_of(const unsigned char d[STG_DIGEST_LEN], char hex[2 * STG_DIGEST_LEN + 1])
{
    stg_hex(d, STG_DIGEST_LEN, hex);
}

int main(void)
{
    unsigned char *data = stg_xmalloc(LEN);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < LEN; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    unsigned char ref[STG_DIGEST_LEN], d[STG_DIGEST_LEN];
    char rhex[2 * STG_DIGEST_LEN + 1], hex[2 * STG_DIGEST_LEN + 1];
    reference(data, LEN, ref);
    hex_of(ref, rhex);

    /* --- splits --- */
    digest_split(data, LEN, whole, d);
    hex_of(d, hex);
    is_str(hex, rhex, "one update: xxHash's XXH3-128 of the data, canonical");
    digest_split(data, LEN, bytes, d);
    hex_of(d, hex);
    is_str(hex, rhex, "one byte at a time: the same digest");
    digest_split(data, LEN, odd, d);
    hex_of(d, hex);
    is_str(hex, rhex, "pieces of odd sizes, some empty: the same digest");
    digest_split(data, LEN, blocks, d);
    hex_of(d, hex);
    is_str(hex, rhex, "pieces across xxHash's internal blocks: the same digest");

    /* the digest so far, then more data: digest does not end the stream */
    {
        struct stg_hash *h = stg_hash_new();
        unsigned char half[STG_DIGEST_LEN], want_half[STG_DIGEST_LEN];
        stg_hash_update(h, data, LEN / 2);
        stg_hash_digest(h, half);
        stg_hash_update(h, data + LEN / 2, LEN - LEN / 2);
        stg_hash_digest(h, d);
        stg_hash_free(&h);
        reference(data, LEN / 2, want_half);
        ok(memcmp(half, want_half, STG_DIGEST_LEN) == 0, "a digest midway is that of the data "
           "so far");
        ok(memcmp(d, ref, STG_DIGEST_LEN) == 0, "... and the stream goes on after it");
    }

    /* --- one changed byte --- */
    {
        size_t where[] = {0, LEN / 2, LEN - 1};
        int differ = 0;
        for (size_t k = 0; k < 3; k++) {
            data[where[k]] ^= 1;
            digest_split(data, LEN, odd, d);
            data[where[k]] ^= 1;
            differ += memcmp(d, ref, STG_DIGEST_LEN) != 0;
        }
        ok(differ == 3, "one bit changed at the start, the middle or the end: another digest "
           "(%d of 3)", differ);
        digest_split(data, LEN - 1, whole, d);
        ok(memcmp(d, ref, STG_DIGEST_LEN) != 0, "one byte less: another digest");
    }

    /* --- the empty input, as xxhsum -H2 prints it --- */
    {
        struct stg_hash *h = stg_hash_new();
        stg_hash_digest(h, d);
        hex_of(d, hex);
        is_str(hex, "99aa06d3014798d86001c324468d497f", "XXH3-128 of the empty input");
        stg_hash_update(h, "abc", 3);
        stg_hash_digest(h, d);
        unsigned char want[STG_DIGEST_LEN];
        reference("abc", 3, want);
        ok(memcmp(d, want, STG_DIGEST_LEN) == 0, "the digest follows the data ('abc')");
        stg_hash_free(&h);
        ok(h == NULL, "free sets the pointer to NULL");
        stg_hash_free(&h);
        stg_hash_free(NULL);
        ok(h == NULL, "... and freeing NULL is harmless");
    }

    /* --- strings with their terminator, numbers big-endian --- */
    {
        struct stg_hash *a = stg_hash_new(), *b = stg_hash_new();
        unsigned char da[STG_DIGEST_LEN], db[STG_DIGEST_LEN], want[STG_DIGEST_LEN];
        stg_hash_str(a, "ab");
        stg_hash_str(a, "c");
        stg_hash_str(b, "a");
        stg_hash_str(b, "bc");
        stg_hash_digest(a, da);
        stg_hash_digest(b, db);
        ok(memcmp(da, db, STG_DIGEST_LEN) != 0, "(\"ab\",\"c\") and (\"a\",\"bc\") differ");
        reference("ab\0c", 5, want);
        ok(memcmp(da, want, STG_DIGEST_LEN) == 0, "... each string fed with its NUL");
        stg_hash_free(&a);
        stg_hash_free(&b);

        a = stg_hash_new();
        stg_hash_str(a, NULL);
        stg_hash_digest(a, da);
        reference("", 1, want);
        ok(memcmp(da, want, STG_DIGEST_LEN) == 0, "a NULL string is fed as the empty one");
        stg_hash_free(&a);

        a = stg_hash_new();
        stg_hash_u64(a, 0x0102030405060708ull);
        stg_hash_digest(a, da);
        static const unsigned char be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        reference(be, 8, want);
        ok(memcmp(da, want, STG_DIGEST_LEN) == 0, "a number is fed as 8 big-endian bytes, "
           "on any architecture");
        stg_hash_free(&a);
    }

    /* --- hex --- */
    {
        static const unsigned char b[] = {0x00, 0x0f, 0xa0, 0xff, 0x5c};
        char out[16];
        memset(out, '#', sizeof out);
        stg_hex(b, sizeof b, out);
        is_str(out, "000fa0ff5c", "hex: two lowercase digits a byte, with leading zeros");
        ok(out[10] == '\0' && out[11] == '#', "... then a NUL, and nothing written after it");
        memset(out, '#', sizeof out);
        stg_hex(b, 0, out);
        ok(out[0] == '\0' && out[1] == '#', "no bytes: the empty string");
        /* every byte value */
        bool all = true;
        for (unsigned v = 0; v < 256; v++) {
            unsigned char one = (unsigned char)v;
            char want[3];
            snprintf(want, sizeof want, "%02x", v);
            stg_hex(&one, 1, out);
            all = all && strcmp(out, want) == 0;
        }
        ok(all, "each of the 256 byte values as printf's %%02x");
        hex_of(ref, hex);
        ok(strlen(hex) == 2 * STG_DIGEST_LEN && strspn(hex, "0123456789abcdef") == strlen(hex),
           "a digest: %d lowercase hex digits", 2 * STG_DIGEST_LEN);
    }
    free(data);
    return done_testing();
}
