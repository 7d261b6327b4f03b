/* SPDX-License-Identifier: MIT */
/* Unit tests: sizes, paths, links, untrusted entry checks, digests. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "walk.h"
#include "tap.h"
#include "unpack.h"
#include "log.h"
#include "util.h"

static void rel(const char *from, const char *to, const char *want)
{
    char *got = stg_walk_relative_link(from, to);
    is_str(got, want, "link from '%s' to '%s'", from, to);
    free(got);
}

int main(void)
{
    char line[256] = "a\nstage-py: done\tx\x1b[2J";
    stg_log_escape(line, sizeof line);
    is_str(line, "a\\nstage-py: done\\tx\\x1b[2J", "a name with control characters is one line");
    uint64_t v = 0;
    ok(stg_parse_size("4M", &v) == 0 && v == 4u << 20, "4M");
    ok(stg_parse_size("512k", &v) == 0 && v == 512u << 10, "512k");
    ok(stg_parse_size("1GiB", &v) == 0 && v == 1u << 30, "1GiB");
    ok(stg_parse_size("2G", &v) == 0 && v == 2ull << 30, "2G: no 32-bit limit");
    ok(stg_parse_size("100", &v) == 0 && v == 100, "plain bytes");
    ok(stg_parse_size("4X", &v) < 0, "unknown suffix refused");
    ok(stg_parse_size("-1", &v) < 0, "negative refused");
    ok(stg_parse_size("", &v) < 0, "empty refused");
    ok(stg_parse_size("99999999999T", &v) < 0, "overflow refused");

    double dur = 0;
    ok(stg_parse_duration("90", &dur) == 0 && dur == 90, "90: seconds");
    ok(stg_parse_duration("90s", &dur) == 0 && dur == 90, "90s");
    ok(stg_parse_duration("5m", &dur) == 0 && dur == 300, "5m");
    ok(stg_parse_duration("1.5h", &dur) == 0 && dur == 5400, "1.5h");
    ok(stg_parse_duration("0", &dur) == 0 && dur == 0, "0: no limit");
    ok(stg_parse_duration("5x", &dur) < 0, "unknown unit refused");
    ok(stg_parse_duration("5mm", &dur) < 0, "trailing junk refused");
    ok(stg_parse_duration("-5", &dur) < 0, "negative refused");

    char *p = stg_path_absolute("/a//b/./c/../d/");
    is_str(p, "/a/b/d", "lexical normalisation");
    free(p);
    ok(stg_path_is_clean_absolute("/dev/shm"), "clean absolute path");
    ok(!stg_path_is_clean_absolute("/dev/../shm"), "'..' is not clean");
    ok(!stg_path_is_clean_absolute("dev/shm"), "relative is not clean");

    rel("usr/lib/python3/dist-packages/a", "usr/lib/python3/dist-packages/b/c.py", "../b/c.py");
    rel("usr/lib/x", "usr/lib/x/y", "y");
    rel("usr/lib/x", "usr/lib/x", ".");
    rel("usr/lib/x", "usr/lib", "..");
    rel("a/b/c", "d/e", "../../../d/e");
    rel("usr/lib/ab", "usr/lib/abc/x", "../abc/x");

    ok(stg_unpack_safe_path("usr/lib/x.py"), "a relative entry is safe");
    ok(!stg_unpack_safe_path("/etc/passwd"), "an absolute entry is not");
    ok(!stg_unpack_safe_path("usr/../../etc"), "'..' is not");
    ok(!stg_unpack_safe_path(""), "an empty name is not");
    ok(stg_unpack_safe_path("usr/lib/"), "a directory's trailing '/' is safe");
    ok(!stg_unpack_safe_path("usr//lib") && !stg_unpack_safe_path("./usr") &&
           !stg_unpack_safe_path("usr/./lib"),
       "an empty or '.' component is not (one spelling per path)");
    ok(stg_unpack_safe_symlink("usr/lib/a/l", "../b/x"), "a link inside the copy is safe");
    ok(stg_unpack_safe_symlink("usr/lib/l", "../../x"), "... up to its root");
    ok(!stg_unpack_safe_symlink("usr/lib/l", "../../../x"), "a link above the copy is not");
    ok(!stg_unpack_safe_symlink("usr/l", "/etc/passwd"), "an absolute link is not");
    ok(!stg_unpack_safe_symlink("usr/l", "a/../../.."), "a link that climbs out later is not");
    ok(!stg_unpack_safe_symlink("usr/lib/l", "a/../b"),
       "'..' after a name is not (the name may be a link)");
    ok(stg_unpack_safe_symlink("usr/lib/l", "./../b/./c"), "'.' anywhere is");

    /* XXH3-128 of nothing, canonical (big-endian) form, as xxhsum prints it. */
    struct stg_hash *h = stg_hash_new();
    unsigned char d[STG_DIGEST_LEN];
    char hex[2 * STG_DIGEST_LEN + 1];
    stg_hash_digest(h, d);
    stg_hex(d, sizeof d, hex);
    is_str(hex, "99aa06d3014798d86001c324468d497f", "XXH3-128 of the empty input");
    stg_hash_update(h, "abc", 3);
    stg_hash_digest(h, d);
    stg_hex(d, sizeof d, hex);
    ok(strcmp(hex, "99aa06d3014798d86001c324468d497f") != 0, "the digest follows the data");
    stg_hash_free(&h);
    ok(h == NULL, "free sets the pointer to NULL");
    return done_testing();
}
