/* SPDX-License-Identifier: MIT */
/*
 * t-util: the small helpers: yes or no, sizes and durations read and
 * written, string lists, sets and buffers, JSON quoting and reading back,
 * paths, and the removal of a tree (read-only directories, links never
 * followed; as root and, with the file-system identity of an ordinary
 * user, as that user).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"
#include "util.h"

static char top[4096];
static uid_t owner_uid;
static gid_t owner_gid;

/* nftw: make the entry owner_uid's (links themselves, not their targets). */
static int give(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return lchown(path, owner_uid, owner_gid);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void put(const char *path, const char *text)
{
    fx_write_text(path, text, 0);
}

static void size_is(uint64_t n, const char *want)
{
    char buf[32];
    const char *got = stg_format_size(n, buf, sizeof buf);
    ok(got == buf, "format_size returns its buffer");
    is_str(buf, want, "format_size of %llu bytes", (unsigned long long)n);
}

static void absolute_is(const char *in, const char *want)
{
    char *p = stg_path_absolute(in);
    is_str(p, want, "absolute '%s'", in);
    free(p);
}

static void strip_is(const char *in, const char *want)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", in);
    char *r = stg_path_strip_slash(buf);
    ok(r == buf, "strip_slash returns its argument");
    is_str(buf, want, "strip_slash '%s'", in);
}

/* A tree below base to remove: files, a read-only directory, a directory
 * with no permissions, a link to outside (a directory whose file must
 * survive) and a link to a file outside. */
static void make_tree(const char *base, const char *outside)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/t", base);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/t/f", base);
    put(p, "f\n");
    snprintf(p, sizeof p, "%s/t/ro", base);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/t/ro/sub", base);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/t/ro/sub/g", base);
    put(p, "g\n");
    snprintf(p, sizeof p, "%s/t/ro/h", base);
    put(p, "h\n");
    chmod(p, 0444);
    snprintf(p, sizeof p, "%s/t/none", base);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/t/none/i", base);
    put(p, "i\n");
    snprintf(p, sizeof p, "%s/t/out", base);
    if (symlink(outside, p) < 0)
        diag("symlink %s: %s", p, strerror(errno));
    char q[8192];
    snprintf(q, sizeof q, "%s/keep", outside);
    snprintf(p, sizeof p, "%s/t/outfile", base);
    if (symlink(q, p) < 0)
        diag("symlink %s: %s", p, strerror(errno));
    /* read-only from the bottom up */
    snprintf(p, sizeof p, "%s/t/ro/sub", base);
    chmod(p, 0555);
    snprintf(p, sizeof p, "%s/t/ro", base);
    chmod(p, 0555);
    snprintf(p, sizeof p, "%s/t/none", base);
    chmod(p, 0000);
}

int main(void)
{
    /* --- sizes --- */
    uint64_t v = 0;
    ok(stg_parse_size("4M", &v) == 0 && v == 4u << 20, "4M");
    ok(stg_parse_size("512k", &v) == 0 && v == 512u << 10, "512k");
    ok(stg_parse_size("1GiB", &v) == 0 && v == 1u << 30, "1GiB");
    ok(stg_parse_size("3MB", &v) == 0 && v == 3u << 20, "3MB");
    ok(stg_parse_size("2G", &v) == 0 && v == 2ull << 30, "2G: no 32-bit limit");
    ok(stg_parse_size("5T", &v) == 0 && v == 5ull << 40, "5T");
    ok(stg_parse_size("100", &v) == 0 && v == 100, "plain bytes");
    ok(stg_parse_size("0", &v) == 0 && v == 0, "0");
    v = 77;
    ok(stg_parse_size("4X", &v) < 0 && v == 77, "unknown suffix refused, the value untouched");
    ok(stg_parse_size("-1", &v) < 0, "negative refused");
    ok(stg_parse_size("", &v) < 0, "empty refused");
    ok(stg_parse_size(NULL, &v) < 0, "NULL refused");
    ok(stg_parse_size(" 4M", &v) < 0 && stg_parse_size("4M ", &v) < 0, "blanks refused");
    ok(stg_parse_size("4MiBx", &v) < 0 && stg_parse_size("4Bi", &v) < 0,
       "trailing junk refused");
    ok(stg_parse_size("99999999999T", &v) < 0, "overflow refused");
    ok(stg_parse_size("16777216T", &v) < 0 && stg_parse_size("16777215T", &v) == 0 &&
       v == 16777215ull << 40, "the largest size that fits, and one more");
    ok(stg_parse_size("99999999999999999999", &v) < 0, "more than 64 bits refused");

    /* --- yes or no --- */
    {
        static const char *const yes[] = {"yes", "YES", "Yes", "true", "TRUE", "1", NULL};
        static const char *const no[] = {"no", "NO", "No", "false", "False", "0", NULL};
        static const char *const neither[] = {"", "maybe", " yes", "yes ", "y", "n", "01",
                                              "2", "on", "off", "truee", NULL};
        int good = 0, bad = 0, n = 0;
        for (int i = 0; yes[i]; i++) {
            bool b = false;
            good += stg_parse_bool(yes[i], &b) == 0 && b;
            n++;
        }
        ok(good == n, "yes, true, 1 in any case: true (%d of %d)", good, n);
        good = n = 0;
        for (int i = 0; no[i]; i++) {
            bool b = true;
            good += stg_parse_bool(no[i], &b) == 0 && !b;
            n++;
        }
        ok(good == n, "no, false, 0 in any case: false (%d of %d)", good, n);
        n = 0;
        for (int i = 0; neither[i]; i++) {
            bool b = true, c = false;
            bad += stg_parse_bool(neither[i], &b) < 0 && b && stg_parse_bool(neither[i], &c) < 0 &&
                   !c;
            n++;
        }
        ok(bad == n, "anything else refused, the value untouched (%d of %d)", bad, n);
    }

    /* --- durations --- */
    double dur = 0;
    ok(stg_parse_duration("90", &dur) == 0 && dur == 90, "90: seconds");
    ok(stg_parse_duration("90s", &dur) == 0 && dur == 90, "90s");
    ok(stg_parse_duration("5m", &dur) == 0 && dur == 300, "5m");
    ok(stg_parse_duration("1.5h", &dur) == 0 && dur == 5400, "1.5h");
    ok(stg_parse_duration("7d", &dur) == 0 && dur == 7 * 86400, "7d");
    ok(stg_parse_duration("0", &dur) == 0 && dur == 0, "0: no limit");
    ok(stg_parse_duration("5x", &dur) < 0, "unknown unit refused");
    ok(stg_parse_duration("5mm", &dur) < 0, "trailing junk refused");
    ok(stg_parse_duration("-5", &dur) < 0, "negative refused");
    ok(stg_parse_duration("", &dur) < 0 && stg_parse_duration(NULL, &dur) < 0,
       "empty and NULL refused");
    ok(stg_parse_duration("m", &dur) < 0, "a unit alone refused");

    /* --- sizes for people --- */
    size_is(0, "0 B");
    size_is(1023, "1023 B");
    size_is(1024, "1.0 KiB");
    size_is(1536, "1.5 KiB");
    size_is(10 * 1024, "10 KiB");
    size_is((3ull << 20) + (1ull << 19), "3.5 MiB");
    size_is(5ull << 30, "5.0 GiB");
    size_is(2048ull << 40, "2048 TiB");
    {
        char small[4];
        memset(small, '#', sizeof small);
        stg_format_size(123456, small, 3);
        ok(small[2] == '\0' && small[3] == '#', "format_size into a small buffer: cut, within "
           "it");
    }

    /* --- string lists --- */
    struct stg_strv sv = {0};
    char word[8] = "one";
    stg_strv_push(&sv, word);
    strcpy(word, "changed");
    ok(sv.n == 1 && strcmp(sv.v[0], "one") == 0 && sv.v[1] == NULL,
       "push copies the string; the list ends with NULL");
    for (int i = 0; i < 40; i++) {
        char w[16];
        snprintf(w, sizeof w, "w%d", i);
        stg_strv_push(&sv, w);
    }
    ok(sv.n == 41 && strcmp(sv.v[40], "w39") == 0 && sv.v[41] == NULL && sv.cap > 41,
       "... and grows, in order, still NULL-terminated");
    ok(stg_strv_has(&sv, "w17") && stg_strv_has(&sv, "one"), "has: what was pushed");
    ok(!stg_strv_has(&sv, "w4x") && !stg_strv_has(&sv, "w") && !stg_strv_has(&sv, "changed"),
       "... and nothing else");
    stg_strv_free(&sv);
    ok(sv.v == NULL && sv.n == 0 && sv.cap == 0, "free empties it");
    stg_strv_split(&sv, "  sympy ufl\t\tffc\nnumpy  ");
    ok(sv.n == 4 && strcmp(sv.v[0], "sympy") == 0 && strcmp(sv.v[1], "ufl") == 0 &&
       strcmp(sv.v[2], "ffc") == 0 && strcmp(sv.v[3], "numpy") == 0 && sv.v[4] == NULL,
       "split on blanks, tabs and newlines; leading and trailing blanks dropped");
    stg_strv_split(&sv, "more");
    ok(sv.n == 5 && strcmp(sv.v[4], "more") == 0, "split appends");
    stg_strv_split(&sv, " \t ");
    ok(sv.n == 5, "only blanks: nothing added");
    stg_strv_free(&sv);

    /* --- string sets --- */
    struct stg_strset set = {0};
    ok(!stg_strset_has(&set, "a", 1), "an empty set has nothing");
    ok(stg_strset_add(&set, "usr/lib"), "add: new");
    ok(!stg_strset_add(&set, "usr/lib"), "add again: not new");
    char other[] = "usr/lib";
    ok(!stg_strset_add(&set, other), "... also from another copy of the same string");
    ok(stg_strset_has(&set, "usr/lib", 7), "has it");
    ok(stg_strset_has(&set, "usr/lib/python3", 7), "has the first len bytes of a longer "
       "string, as a string");
    ok(!stg_strset_has(&set, "usr/lib/python3", 15) && !stg_strset_has(&set, "usr/li", 6),
       "... but not a longer or shorter one");
    {
        enum { M = 5000 };
        char **names = stg_xcalloc(M, sizeof *names);
        size_t added = 0, found = 0;
        for (int i = 0; i < M; i++) {
            names[i] = stg_xasprintf("dir%d/file%d.py", i % 97, i);
            added += stg_strset_add(&set, names[i]);
        }
        for (int i = 0; i < M; i++)
            found += stg_strset_has(&set, names[i], strlen(names[i]));
        char probe[64];
        size_t false_hits = 0;
        for (int i = M; i < 2 * M; i++) {
            snprintf(probe, sizeof probe, "dir%d/file%d.py", i % 97, i);
            false_hits += stg_strset_has(&set, probe, strlen(probe));
        }
        ok(added == M && found == M && set.n == M + 1, "%d more strings, through its growth: "
           "each added once and found (%zu, %zu)", M, added, found);
        ok(false_hits == 0, "... and %d others not found", M);
        stg_strset_free(&set);
        ok(set.v == NULL && set.n == 0 && set.cap == 0, "free empties the set");
        ok(strcmp(names[0], "dir0/file0.py") == 0, "... and leaves the strings alone");
        for (int i = 0; i < M; i++)
            free(names[i]);
        free(names);
    }

    /* --- buffers --- */
    struct stg_buf b = {0};
    stg_buf_put(&b, "abc", 2);
    ok(b.n == 2 && strcmp(b.s, "ab") == 0, "put: the n bytes, NUL-terminated");
    stg_buf_put(&b, "", 0);
    ok(b.n == 2 && strcmp(b.s, "ab") == 0, "put nothing: unchanged");
    int added = stg_buf_printf(&b, "-%d-%s", 42, "x");
    ok(b.n == 7 && strcmp(b.s, "ab-42-x") == 0, "printf appends");
    ok(added == 5, "... and returns the bytes appended (%d)", added);
    added = stg_buf_printf(&b, "%s", "");
    ok(added == 0 && b.n == 7 && strcmp(b.s, "ab-42-x") == 0, "printf of nothing: unchanged, "
       "0 appended");
    stg_buf_put(&b, "a\0b", 3);
    ok(b.n == 10 && memcmp(b.s + 7, "a\0b", 4) == 0, "put of a NUL byte keeps it, counted");
    {
        struct stg_buf big = {0};
        size_t want = 0;
        bool same = true;
        for (int i = 0; i < 10000; i++) {
            stg_buf_printf(&big, "%d,", i);
            want += (size_t)snprintf(NULL, 0, "%d,", i);
        }
        char tail[32];
        snprintf(tail, sizeof tail, "%d,", 9999);
        same = big.n == want && strlen(big.s) == want &&
               strcmp(big.s + want - strlen(tail), tail) == 0 && strncmp(big.s, "0,1,2,", 6) == 0;
        ok(same, "10000 appends: every byte in place (%zu bytes)", big.n);
        char *long_text = stg_xmalloc(100001);
        memset(long_text, 'q', 100000);
        long_text[100000] = '\0';
        stg_buf_printf(&big, "%s", long_text);
        ok(big.n == want + 100000 && big.s[big.n] == '\0' && big.s[big.n - 1] == 'q',
           "one long printf grows the buffer at once");
        free(long_text);
        free(big.s);
    }
    free(b.s);

    /* --- JSON --- */
    char *q = stg_json_quote("plain");
    is_str(q, "\"plain\"", "json_quote: with its quotes");
    free(q);
    q = stg_json_quote("a\"b\\c");
    is_str(q, "\"a\\\"b\\\\c\"", "quotes and backslashes escaped");
    free(q);
    q = stg_json_quote("\n\t\r\x01\x1f");
    is_str(q, "\"\\u000a\\u0009\\u000d\\u0001\\u001f\"", "control characters as \\u00XX");
    free(q);
    q = stg_json_quote("caf\xc3\xa9 \x7f/");
    is_str(q, "\"caf\xc3\xa9 \x7f/\"", "UTF-8, DEL and '/' kept as they are");
    free(q);
    q = stg_json_quote("");
    is_str(q, "\"\"", "the empty string");
    free(q);
    q = stg_json_quote(NULL);
    is_str(q, "\"\"", "NULL: the empty string");
    free(q);

    {
        struct stg_buf jb = {0};
        stg_buf_put(&jb, "{\"k\": ", 6);
        stg_buf_json_str(&jb, "a\"b\\c\n");
        stg_buf_put(&jb, "}", 1);
        is_str(jb.s, "{\"k\": \"a\\\"b\\\\c\\u000a\"}", "buf_json_str: appended as a JSON "
               "string, with its quotes, after what is there");
        ok(jb.n == strlen(jb.s), "... counted");
        free(jb.s);
    }

    const char *json = "{\n  \"format\": 1,\n  \"name\": \"fenics\",\n  \"profiles\": 9,\n"
                       "  \"files\": 1234,\n  \"bytes\": 18446744073709551615,\n"
                       "  \"empty\": \"\",\n  \"last\": 77}";
    char out[64];
    stg_json_field(json, "name", out, sizeof out);
    is_str(out, "fenics", "json_field: a string");
    stg_json_field(json, "files", out, sizeof out);
    is_str(out, "1234", "... a number, as text");
    stg_json_field(json, "last", out, sizeof out);
    is_str(out, "77", "... the last, before '}'");
    strcpy(out, "stale");
    stg_json_field(json, "absent", out, sizeof out);
    is_str(out, "", "... absent: \"\"");
    stg_json_field(json, "empty", out, sizeof out);
    is_str(out, "", "... an empty string");
    {
        char tiny[4];
        memset(tiny, '#', sizeof tiny);
        stg_json_field(json, "name", tiny, 3);
        ok(strcmp(tiny, "fe") == 0 && tiny[3] == '#', "... cut to its buffer");
    }
    ok(stg_json_u64(json, "files") == 1234, "json_u64: a number");
    ok(stg_json_u64(json, "profiles") == 9 && stg_json_u64("{\"profiles\": 9, \"files\": 4}",
       "files") == 4, "... a key that ends another key's name is not confused with it");
    ok(stg_json_u64(json, "bytes") == 18446744073709551615ull, "... all 64 bits");
    ok(stg_json_u64(json, "absent") == 0, "... absent: 0");
    ok(stg_json_u64(json, "format") == 1, "... the first field");

    /* --- paths --- */
    if (!fx_tmpdir(top, sizeof top, "t-util"))
        return 1;
    chmod(top, 0755);
    char *cwd = getcwd(NULL, 0);
    if (chdir(top) < 0)
        return 1;
    absolute_is("/a//b/./c/../d/", "/a/b/d");
    absolute_is("/", "/");
    absolute_is("/..", "/");
    absolute_is("/../../x", "/x");
    absolute_is("//x//", "/x");
    absolute_is("/a/b/../..", "/");
    absolute_is("/a/.b/..c", "/a/.b/..c");
    {
        char *want = stg_xasprintf("%s/x/y", top);
        absolute_is("x/./y/", want);
        free(want);
        absolute_is(".", top);
        char *parent = stg_xstrdup(top);
        *strrchr(parent, '/') = '\0';
        absolute_is("..", parent);
        free(parent);
        absolute_is("x/../../../../../..", "/");
    }
    ok(stg_path_absolute("") == NULL && stg_path_absolute(NULL) == NULL, "absolute of an empty "
       "path or NULL: NULL");
    ok(stg_path_listable("/usr/lib/python3"), "listable: a plain path");
    ok(!stg_path_listable("/a:b"), "... not with a ':'");
    ok(!stg_path_listable("/a\nb"), "... not with a newline");
    ok(stg_path_listable("/a b;c'd"), "... blanks and quotes are fine for a list");
    strip_is("/a/b///", "/a/b");
    strip_is("/", "/");
    strip_is("///", "/");
    strip_is("a/", "a");
    strip_is("a", "a");
    strip_is("", "");
    ok(stg_path_is_clean_absolute("/dev/shm"), "clean absolute path");
    ok(stg_path_is_clean_absolute("/"), "/ is clean");
    ok(stg_path_is_clean_absolute("/a/.b/..c/b.."), "names that start with dots are clean");
    ok(!stg_path_is_clean_absolute("/dev/../shm"), "'..' is not clean");
    ok(!stg_path_is_clean_absolute("/dev/./shm") && !stg_path_is_clean_absolute("/."),
       "'.' is not clean");
    ok(!stg_path_is_clean_absolute("/dev//shm") && !stg_path_is_clean_absolute("//"),
       "an empty component is not clean");
    ok(!stg_path_is_clean_absolute("/dev/shm/"), "a trailing '/' is not clean");
    ok(!stg_path_is_clean_absolute("dev/shm") && !stg_path_is_clean_absolute("") &&
       !stg_path_is_clean_absolute(NULL), "relative, empty or NULL is not clean");

    /* --- removing a tree --- */
    char *outside = stg_xasprintf("%s/outside", top), *keep = stg_xasprintf("%s/keep", outside);
    mkdir(outside, 0755);
    put(keep, "keep\n");
    make_tree(top, outside);
    ok(stg_rm_tree_at(AT_FDCWD, "t") == 0, "a tree with read-only directories and links is "
       "removed");
    ok(!exists("t"), "... all of it");
    ok(exists(outside) && exists(keep), "... and the links' targets outside are not");
    {
        int fd = open(top, O_RDONLY | O_DIRECTORY);
        make_tree(top, outside);
        ok(stg_rm_tree_at(fd, "t/ro") == 0 && !exists("t/ro") && exists("t/f"),
           "a name below a directory descriptor: that part only");
        ok(stg_rm_tree_at(fd, "t/out") == 0 && !exists("t/out") && exists(keep),
           "a link to a directory given as the name: the link goes, not the directory");
        stg_rm_tree_at(fd, "t");
        close(fd);
    }
    ok(stg_rm_tree_at(AT_FDCWD, "nosuch") == 0, "a name that does not exist: nothing to do");
    put("plainfile", "x");
    ok(stg_rm_tree_at(AT_FDCWD, "plainfile") == 0 && !exists("plainfile"), "a file");
    put("f2", "x");
    errno = 0;
    ok(stg_rm_tree_at(AT_FDCWD, "f2/below") < 0 && errno == ENOTDIR && exists("f2"),
       "a name below a file: -1 with errno ENOTDIR");
    unlink("f2");

    /* As an ordinary user: the read-only directories are the user's own to
     * make writable, and what the user cannot remove is an error. */
    struct passwd *pw = fx_user();
    if (!pw) {
        skip(geteuid() != 0 ? "not root: cannot take an ordinary user's file-system identity"
                            : "no user " FX_USER);
        skip("(as an ordinary user: the links' targets)");
        skip("(as an ordinary user: a directory that is not the user's)");
    } else {
        char *home = stg_xasprintf("%s/user", top);
        mkdir(home, 0755);
        make_tree(home, outside);
        /* the whole tree the user's, as a staged copy is */
        owner_uid = pw->pw_uid;
        owner_gid = pw->pw_gid;
        int crc = nftw(home, give, 16, FTW_PHYS);
        if (chdir(home) < 0)
            crc = -1;
        setfsgid(pw->pw_gid);
        setfsuid(pw->pw_uid);
        /* setfsuid() returns the previous identity: now it must be the user's */
        bool dropped = (uid_t)setfsuid(pw->pw_uid) == pw->pw_uid;
        int rc = stg_rm_tree_at(AT_FDCWD, "t");
        int e = errno;
        setfsuid(0);
        setfsgid(0);
        ok(crc == 0 && dropped && rc == 0 && !exists("t"), "as " FX_USER ": its tree with "
           "read-only and closed directories is removed (%s)", rc ? strerror(e) : "ok");
        ok(exists(keep), "... and the target of its link to outside is not");
        /* root's directory, which the user cannot change */
        if (chdir(top) < 0)
            diag("cannot go back to %s", top);
        mkdir("rootdir", 0755);
        mkdir("rootdir/d", 0755);
        put("rootdir/d/file", "x");
        setfsgid(pw->pw_gid);
        setfsuid(pw->pw_uid);
        errno = 0;
        rc = stg_rm_tree_at(AT_FDCWD, "rootdir");
        e = errno;
        setfsuid(0);
        setfsgid(0);
        ok(rc < 0 && (e == EACCES || e == EPERM) && exists("rootdir/d/file"),
           "... root's tree, which it cannot change: -1 with errno set (%s), and it stays",
           strerror(e));
        stg_rm_tree_at(AT_FDCWD, "rootdir");
        free(home);
    }
    free(keep);
    free(outside);
    if (cwd && chdir(cwd) < 0)
        diag("cannot go back to %s", cwd);
    free(cwd);
    ok(stg_rm_tree_at(AT_FDCWD, top) == 0 && !exists(top), "the test's own directory is "
       "removed");
    return done_testing();
}
