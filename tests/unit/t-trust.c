/* SPDX-License-Identifier: MIT */
/*
 * t-trust: the owner-and-mode walk, the ACL rule, opens that follow no
 * link, and reachability, on a temporary directory of the test's own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "tap.h"
#include "trust.h"
#include "util.h"

static char base[4096];

static char *at(const char *rel)
{
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", base, rel);
    return buf[k];
}

/* Check path for the caller; OUT why.  Returns t.ok. */
static bool trusted(const char *path, uid_t caller, unsigned flags, char *why, size_t len)
{
    struct stg_trust t;
    stg_trust_init(&t);
    stg_trust_check(path, caller, flags, &t);
    snprintf(why, len, "%s", t.why);
    return t.ok;
}

static void put16(unsigned char *p, unsigned v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put32(unsigned char *p, unsigned v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (v >> (8 * i)) & 0xff;
}

/* An ACL value: entries of (tag, perm, id). */
static size_t acl(unsigned char *buf, const unsigned (*e)[3], size_t n)
{
    put32(buf, 2);
    for (size_t i = 0; i < n; i++) {
        put16(buf + 4 + 8 * i, e[i][0]);
        put16(buf + 6 + 8 * i, e[i][1]);
        put32(buf + 8 + 8 * i, e[i][2]);
    }
    return 4 + 8 * n;
}

static void test_acl(void)
{
    unsigned char b[128];
    char who[64] = "";
    const unsigned plain[][3] = {{1, 7, 0}, {4, 5, 0}, {0x20, 5, 0}};
    ok(!stg_trust_acl_writer(b, acl(b, plain, 3), 1000, who, sizeof who),
       "acl: owner, group, other only: no other writer");
    const unsigned user[][3] = {{1, 7, 0}, {2, 6, 1234}, {4, 5, 0}, {0x10, 7, 0}, {0x20, 5, 0}};
    ok(stg_trust_acl_writer(b, acl(b, user, 5), 1000, who, sizeof who) &&
       strcmp(who, "user 1234") == 0, "acl: a named user with w: that user (%s)", who);
    ok(!stg_trust_acl_writer(b, acl(b, user, 5), 1234, who, sizeof who),
       "acl: ... unless it is the caller");
    const unsigned masked[][3] = {{1, 7, 0}, {2, 6, 1234}, {4, 5, 0}, {0x10, 5, 0}, {0x20, 5, 0}};
    ok(!stg_trust_acl_writer(b, acl(b, masked, 5), 1000, who, sizeof who),
       "acl: ... but not when the mask takes w away");
    const unsigned group[][3] = {{1, 7, 0}, {4, 5, 0}, {8, 7, 100}, {0x10, 7, 0}, {0x20, 5, 0}};
    ok(stg_trust_acl_writer(b, acl(b, group, 5), 1000, who, sizeof who) &&
       strcmp(who, "group 100") == 0, "acl: a named group with w (%s)", who);
    const unsigned gobj[][3] = {{1, 7, 0}, {2, 4, 1234}, {4, 7, 0}, {0x10, 7, 0}, {0x20, 5, 0}};
    ok(stg_trust_acl_writer(b, acl(b, gobj, 5), 1000, who, sizeof who) &&
       strcmp(who, "its group") == 0, "acl: the owning group with w, under the mask (%s)", who);
    const unsigned ro[][3] = {{1, 7, 0}, {2, 4, 1234}, {4, 5, 0}, {0x10, 7, 0}, {0x20, 5, 0}};
    ok(!stg_trust_acl_writer(b, acl(b, ro, 5), 1000, who, sizeof who),
       "acl: a named user who may only read: no writer");
    put32(b, 1);
    ok(!stg_trust_acl_writer(b, 12, 1000, who, sizeof who), "acl: another version: ignored");
    ok(!stg_trust_acl_writer(b, 2, 1000, who, sizeof who), "acl: too short: ignored");
}

static void test_walk(void)
{
    uid_t me = geteuid();
    char why[STG_MSG_MAX];
    mkdir(at("d"), 0755);
    int fd = open(at("d/f"), O_WRONLY | O_CREAT, 0644);
    close(fd);
    ok(trusted(at("d/f"), me, STG_TRUST_FILE, why, sizeof why), "walk: own tree: trusted");
    chmod(at("d/f"), 0664);
    ok(!trusted(at("d/f"), me, STG_TRUST_FILE, why, sizeof why) && strstr(why, "its group"),
       "walk: a group-writable file: not trusted (%s)", why);
    ok(trusted(at("d/f"), me, 0, why, sizeof why), "walk: ... its own bits count for files only");
    chmod(at("d/f"), 0644);
    chmod(at("d"), 0777);
    ok(!trusted(at("d/f"), me, STG_TRUST_FILE, why, sizeof why) && strstr(why, "by others") &&
       strstr(why, "mode 0777"), "walk: a directory others can write: not trusted (%s)", why);
    chmod(at("d"), 01777);
    ok(trusted(at("d/f"), me, STG_TRUST_FILE, why, sizeof why),
       "walk: ... with the sticky bit: trusted");
    chmod(at("d"), 0755);
    ok(symlink(at("d"), at("l")) == 0 &&
       trusted(at("l/f"), me, STG_TRUST_FILE, why, sizeof why), "walk: through a link: trusted");
    ok(symlink("../d/./f", at("d/rel")) == 0 &&
       trusted(at("d/rel"), me, STG_TRUST_FILE, why, sizeof why),
       "walk: a relative link with . and ..: trusted");
    ok(!trusted(at("nowhere/f"), me, 0, why, sizeof why) && strstr(why, "cannot look up"),
       "walk: a missing path: says so (%s)", why);
    if (me != 0) {
        for (int i = 0; i < 3; i++)
            skip("not root: cannot give files away");
        return;
    }
    mkdir(at("other"), 0755);
    fd = open(at("other/g"), O_WRONLY | O_CREAT, 0644);
    close(fd);
    chown(at("other"), 65534, 65534);
    ok(!trusted(at("other/g"), 0, STG_TRUST_FILE, why, sizeof why) &&
       strstr(why, "is owned by") && strstr(why, "uid 65534"),
       "walk: a directory another user owns: not trusted (%s)", why);
    ok(trusted(at("other/g"), 65534, STG_TRUST_FILE, why, sizeof why),
       "walk: ... by that user: trusted");
    ok(symlink(at("other"), at("d/via")) == 0 &&
       !trusted(at("d/via/g"), 0, STG_TRUST_FILE, why, sizeof why) && strstr(why, "uid 65534"),
       "walk: a link into it: the target's directory counts (%s)", why);
}

static void test_open(void)
{
    int fd = stg_trust_open(at("d/f"), O_RDONLY);
    ok(fd >= 0, "open: a real path opens");
    if (fd >= 0)
        close(fd);
    errno = 0;
    fd = stg_trust_open(at("l/f"), O_RDONLY);
    ok(fd < 0 && (errno == ELOOP || errno == ENOTDIR), "open: a link on the way fails (%s)",
       strerror(errno));
    fd = stg_trust_open(at("d/rel"), O_RDONLY);
    ok(fd < 0 && errno == ELOOP, "open: a link at the end fails");
    fd = stg_trust_open(at("d/../d/f"), O_RDONLY);
    ok(fd < 0 && errno == EINVAL, "open: '..' is refused");
    fd = stg_trust_open("/", O_RDONLY | O_DIRECTORY);
    ok(fd >= 0, "open: '/' itself");
    if (fd >= 0)
        close(fd);
    mkfifo(at("d/fifo"), 0644);
    fd = stg_trust_open(at("d/fifo"), O_RDONLY | O_NONBLOCK);
    struct stat st;
    ok(fd >= 0 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode),
       "open: a FIFO with O_NONBLOCK opens at once, and shows as one");
    if (fd >= 0)
        close(fd);
}

static void test_reachable(void)
{
    char dir[4200];
    ok(stg_trust_reachable(at("d/f"), dir, sizeof dir), "reachable: below 0755 directories");
    mkdir(at("p"), 0700);
    ok(!stg_trust_reachable(at("p/f"), dir, sizeof dir) && strstr(dir, "(mode 0700)"),
       "reachable: below a 0700 directory: no (%s)", dir);
    mkdir(at("p/q"), 0755);
    ok(!stg_trust_reachable(at("p/q/f"), dir, sizeof dir) && strstr(dir, "/p'"),
       "reachable: ... however deep: it names that directory");
}

/* stg_trust_open_input(), with the message it records in err. */
static int open_input(const char *p, const char *what, bool warn, char *err, size_t len)
{
    stg_err_take(NULL, 0);
    int fd = stg_trust_open_input(p, what, warn);
    stg_err_take(err, len);
    return fd;
}

static void test_input(void)
{
    char err[STG_MSG_MAX];
    int fd = open_input(at("d/f"), "manifest", false, err, sizeof err);
    ok(fd >= 0, "input: a file of one's own opens");
    if (fd >= 0)
        close(fd);
    fd = open_input(at("d/fifo"), "manifest", false, err, sizeof err);
    ok(fd < 0 && strstr(err, "is not a regular file (a FIFO)"), "input: a FIFO: refused, no "
       "wait (%s)", err);
    fd = open_input(at("d"), "the site file", false, err, sizeof err);
    ok(fd < 0 && strstr(err, "is not a regular file (a directory)"), "input: a directory: "
       "refused (%s)", err);
    chmod(at("d"), 0777);
    fd = open_input(at("d/f"), "manifest", false, err, sizeof err);
    ok(fd < 0 && strstr(err, "refusing manifest"), "input: in a directory others can write: "
       "refused (%s)", err);
    fd = open_input(at("d/f"), "manifest", true, err, sizeof err);
    ok(fd >= 0, "input: ... or used, with a warning, where the site allows it");
    if (fd >= 0)
        close(fd);
    chmod(at("d"), 0755);
}

int main(void)
{
    if (!fx_tmpdir(base, sizeof base, "t-trust")) {
        printf("1..0 # SKIP cannot make a temporary directory\n");
        return 0;
    }
    chmod(base, 0755);
    test_acl();
    test_walk();
    test_open();
    test_reachable();
    test_input();
    char *cmd = stg_xasprintf("rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", base);
    free(cmd);
    return done_testing();
}
