/* SPDX-License-Identifier: MIT */
/*
 * t-output: the files stage-py writes.  A regular file is written whole
 * under a temporary name beside it and renamed over it (its old content
 * there until the commit), with the mode given or 0666 less the umask; a
 * link to a file writes that file, in its own directory; a character
 * device and a FIFO with a reader are written in place, never replaced; a
 * FIFO that nobody reads is an error at once; a directory, a socket, a
 * missing directory and a path that ends in '/' are errors that start
 * with the option's name (a usage error; without one, a failure); an
 * abort leaves nothing; and, as root, a directory that another user owns
 * is refused, naming it, and so is another user's link to root's file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "output.h"
#include "tap.h"
#include "util.h"

static char top[4096];

static char *at(const char *rel)
{
    return fx_path(top, rel);
}

/* Names in the directory top. */
static int entries(void)
{
    return fx_entries(top, NULL);
}

/* Temporary files (".NAME.tmp.XXXXXX") in the directory rel. */
static int temps(const char *rel)
{
    char *d = at(rel);
    int t = fx_entries(d, ".tmp.");
    free(d);
    return t;
}

/* The text of the file rel ("(none)" if it cannot be read). */
static char *text_of(const char *rel)
{
    char *p = at(rel);
    char *t = fx_read(p, NULL);
    free(p);
    return t ? t : stg_xstrdup("(none)");
}

static bool put_fd(int fd, const char *text)
{
    size_t n = strlen(text);
    return fd >= 0 && write(fd, text, n) == (ssize_t)n;
}

/* stg_output_open() of rel, refused: status want_status, a message that
 * starts with "WHAT: " (nothing when what is NULL) and has want, and
 * nothing left in top or o. */
static void refused(const char *rel, const char *what, int want_status, const char *want,
                    const char *desc)
{
    char *p = at(rel), err[STG_MSG_MAX], prefix[64] = "";
    int before = entries();
    struct stg_output o;
    stg_err_take(NULL, 0);
    int rc = stg_output_open(&o, p, 0, what);
    stg_err_take(err, sizeof err);
    if (what)
        snprintf(prefix, sizeof prefix, "%s: ", what);
    ok(rc == want_status, "%s: status %d (%d)", desc, want_status, rc);
    ok(strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, p) && strstr(err, want),
       "... the message starts with '%s', names the path and says '%s' (%s)", prefix, want,
       err);
    ok(o.fd == -1 && o.dirfd == -1 && o.tmp == NULL && entries() == before,
       "... and nothing is left behind");
    free(p);
}

static void test_file(void)
{
    char *p = at("out.txt"), err[STG_MSG_MAX];
    fx_write_text(p, "old\n", 0644);
    struct stat before, st;
    stat(p, &before);
    struct stg_output o;
    stg_err_take(NULL, 0);
    int rc = stg_output_open(&o, p, 0, "--output");
    stg_err_take(err, sizeof err);
    ok(rc == STG_OK && o.fd >= 0, "a regular file: opened (%s)", err);
    ok(o.tmp && strncmp(o.tmp, ".out.txt.tmp.", 13) == 0 && temps("") == 1,
       "... a temporary file beside it (%s)", o.tmp ? o.tmp : "none");
    bool w = put_fd(o.fd, "new\n");
    char *t = text_of("out.txt");
    is_str(t, "old\n", "... written to: the old content is still there before the commit");
    free(t);
    rc = stg_output_commit(&o);
    t = text_of("out.txt");
    ok(w && rc == STG_OK, "... committed");
    is_str(t, "new\n", "... the new content after it");
    free(t);
    ok(stat(p, &st) == 0 && st.st_ino != before.st_ino,
       "... another file renamed over it, not the old one rewritten");
    ok(temps("") == 0, "... no temporary file left");
    ok(o.fd == -1 && o.dirfd == -1 && o.tmp == NULL, "... and o is closed");

    /* stg_output_put: written and committed at once */
    char *q = at("put.txt");
    rc = stg_output_open(&o, q, 0, NULL);
    rc = rc ? rc : stg_output_put(&o, "put\ntext\n", 9);
    t = text_of("put.txt");
    ok(rc == STG_OK && strcmp(t, "put\ntext\n") == 0 && temps("") == 0,
       "stg_output_put: the text written and committed");
    free(t);
    free(q);
    free(p);
}

/* The mode of a new file rel written with mode under the umask um. */
static unsigned mode_of_new(const char *rel, mode_t mode, mode_t um)
{
    char *p = at(rel);
    struct stg_output o;
    mode_t old = umask(um);
    int rc = stg_output_open(&o, p, mode, NULL);
    if (rc == STG_OK)
        rc = stg_output_put(&o, "x", 1);
    umask(old);
    struct stat st;
    unsigned m = rc == STG_OK && stat(p, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 01000;
    unlink(p);
    free(p);
    stg_err_take(NULL, 0);
    return m;
}

static void test_mode(void)
{
    ok(mode_of_new("m1", 0, 022) == 0644, "mode 0 under umask 022: 0644");
    ok(mode_of_new("m2", 0, 077) == 0600, "mode 0 under umask 077: 0600");
    ok(mode_of_new("m3", 0, 0) == 0666, "mode 0 under umask 0: 0666");
    ok(mode_of_new("m4", 0755, 077) == 0755, "mode 0755 under umask 077: 0755, as given");
    ok(mode_of_new("m5", 0640, 0) == 0640, "mode 0640 under umask 0: 0640, as given");
}

static void test_link(void)
{
    char *real = at("real"), *target = at("real/target.txt"), *link = at("link.txt");
    char err[STG_MSG_MAX];
    fx_mkdir(real, 0755);
    fx_write_text(target, "old\n", 0644);
    if (symlink("real/target.txt", link) < 0)
        diag("symlink %s: %s", link, strerror(errno));
    struct stg_output o;
    stg_err_take(NULL, 0);
    int rc = stg_output_open(&o, link, 0, "--output");
    stg_err_take(err, sizeof err);
    ok(rc == STG_OK, "a symbolic link to a file: opened (%s)", err);
    ok(temps("real") == 1 && temps("") == 0, "... the temporary file beside the file it leads "
       "to, in that file's directory");
    bool w = put_fd(o.fd, "through the link\n");
    rc = w ? stg_output_commit(&o) : (stg_output_abort(&o), STG_EFAIL);
    char *t = text_of("real/target.txt");
    ok(rc == STG_OK, "... committed");
    is_str(t, "through the link\n", "... the file it leads to has the new content");
    free(t);
    struct stat st;
    ok(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "... and the link is still a link");
    ok(temps("real") == 0, "... no temporary file left");
    free(real);
    free(target);
    free(link);
}

static void test_refused(void)
{
    char *d = at("adir");
    fx_mkdir(d, 0755);
    free(d);
    refused("adir", "--output", STG_EUSAGE, "it is a directory", "a directory");
    refused("adir", NULL, STG_EFAIL, "it is a directory", "a directory, no option named");
    refused("nosuch/out.txt", "--output", STG_EUSAGE, "No such file or directory",
            "a directory that does not exist");
    refused("nosuch/out.txt", NULL, STG_EFAIL, "No such file or directory",
            "... no option named");
    refused("adir/", "--stats", STG_EUSAGE, "not a file name", "a path that ends in '/'");
    refused("nosuch/", NULL, STG_EFAIL, "not a file name", "... no option named, not there");

    /* a socket: neither a file, a device nor a FIFO */
    char *s = at("sock");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    bool made = strlen(s) < sizeof sa.sun_path;
    if (made) {
        memcpy(sa.sun_path, s, strlen(s) + 1);
        made = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    }
    if (made) {
        refused("sock", "--output", STG_EUSAGE, "not a regular file, a character device or a "
                "FIFO", "a socket");
    } else {
        for (int i = 0; i < 3; i++)
            skip("cannot make a socket here");
    }
    if (fd >= 0)
        close(fd);
    unlink(s);
    free(s);
}

static void test_device(void)
{
    char *p = at("null"), err[STG_MSG_MAX];
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) < 0) {
        diag("mknod %s: %s", p, strerror(errno));
        for (int i = 0; i < 4; i++)
            skip("cannot make a character device here (not root?)");
        free(p);
        return;
    }
    chmod(p, 0666);
    struct stat before, st;
    stat(p, &before);
    int n = entries();
    struct stg_output o;
    stg_err_take(NULL, 0);
    int rc = stg_output_open(&o, p, 0, "--output");
    stg_err_take(err, sizeof err);
    ok(rc == STG_OK && o.tmp == NULL && entries() == n,
       "a character device (1,3): opened in place, nothing beside it (%s)", err);
    bool w = put_fd(o.fd, "into the device\n");
    rc = stg_output_commit(&o);
    ok(w && rc == STG_OK, "... written and committed");
    ok(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_ino == before.st_ino &&
       st.st_rdev == before.st_rdev, "... still the same character device, not replaced");
    ok(entries() == n && o.fd == -1, "... nothing left beside it, o closed");
    unlink(p);
    free(p);
}

static void test_fifo(void)
{
    char *p = at("fifo"), err[STG_MSG_MAX];
    if (mkfifo(p, 0644) < 0)
        diag("mkfifo %s: %s", p, strerror(errno));
    int r = open(p, O_RDONLY | O_NONBLOCK);
    int n = entries();
    struct stg_output o;
    stg_err_take(NULL, 0);
    alarm(30);
    int rc = stg_output_open(&o, p, 0, "--output");
    stg_err_take(err, sizeof err);
    ok(r >= 0 && rc == STG_OK && o.tmp == NULL && entries() == n,
       "a FIFO with a reader: opened in place (%s)", err);
    bool w = put_fd(o.fd, "through the fifo\n");
    rc = stg_output_commit(&o);
    alarm(0);
    char buf[64] = "";
    ssize_t k = r >= 0 ? read(r, buf, sizeof buf - 1) : -1;
    buf[k > 0 ? k : 0] = '\0';
    ok(w && rc == STG_OK, "... written and committed");
    is_str(buf, "through the fifo\n", "... the reader gets it");
    struct stat st;
    ok(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode) && entries() == n,
       "... still a FIFO, nothing beside it");
    if (r >= 0)
        close(r);

    /* nobody reads it now: an error at once (the alarm bails out of a hang) */
    alarm(30);
    refused("fifo", "--output", STG_EUSAGE, "a FIFO that nobody reads",
            "a FIFO that nobody reads, without blocking");
    refused("fifo", NULL, STG_EFAIL, "a FIFO that nobody reads", "... no option named");
    alarm(0);
    ok(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode), "... and it stays a FIFO");
    unlink(p);
    free(p);
}

static void test_abort(void)
{
    char *p = at("keep.txt"), *q = at("new.txt");
    fx_write_text(p, "keep\n", 0644);
    int n = entries();
    struct stg_output o;
    int rc = stg_output_open(&o, p, 0, "--output");
    bool w = rc == STG_OK && put_fd(o.fd, "half of it");
    stg_output_abort(&o);
    char *t = text_of("keep.txt");
    ok(w, "a file opened and written to");
    is_str(t, "keep\n", "... aborted: its old content stays");
    free(t);
    ok(entries() == n && temps("") == 0 && o.fd == -1 && o.dirfd == -1,
       "... nothing left behind, o closed");
    rc = stg_output_open(&o, q, 0, "--output");
    w = rc == STG_OK && put_fd(o.fd, "never");
    stg_output_abort(&o);
    struct stat st;
    ok(w && lstat(q, &st) < 0 && errno == ENOENT && entries() == n,
       "a new file aborted: not there, nothing left behind");
    stg_err_take(NULL, 0);
    free(p);
    free(q);
}

static void test_root(void)
{
    struct passwd *pw = fx_user();
    if (!pw) {
        for (int i = 0; i < 7; i++)
            skip(geteuid() ? "not root" : "no user " FX_USER);
        return;
    }
    char *u = at("user"), *p = at("user/out.txt"), *f = at("user/file.txt");
    char err[STG_MSG_MAX];
    fx_mkdir(u, 0755);
    fx_write_text(f, "root's\n", 0644);
    int crc = chown(u, pw->pw_uid, pw->pw_gid);
    ok(crc == 0, "a directory owned by " FX_USER);
    char *quoted = stg_xasprintf("'%s'", u);
    refused("user/out.txt", "--output", STG_EUSAGE, "refusing to write", "as root: a new file "
            "in it");
    stg_err_take(NULL, 0);
    struct stg_output o;
    stg_output_open(&o, p, 0, "--output");
    stg_err_take(err, sizeof err);
    like(err, quoted, "... the message names the directory");
    stg_output_open(&o, f, 0, NULL);
    stg_err_take(err, sizeof err);
    char *t = text_of("user/file.txt");
    ok(strncmp(err, "refusing to write", 17) == 0 && strstr(err, quoted) &&
       strcmp(t, "root's\n") == 0 && temps("user") == 0,
       "as root: a file of root's in it: refused too, the file as it was (%s)", err);
    free(t);
    /* a link of the user's, in root's directory, to a file of root's */
    char *link = at("planted"), *target = at("roots.txt");
    fx_write_text(target, "root's own\n", 0644);
    crc = symlink(target, link) | lchown(link, pw->pw_uid, pw->pw_gid);
    stg_err_take(NULL, 0);
    int rc = stg_output_open(&o, link, 0, "--output");
    stg_err_take(err, sizeof err);
    if (rc == STG_OK)
        stg_output_abort(&o);
    t = text_of("roots.txt");
    ok(crc == 0 && rc == STG_EUSAGE && strstr(err, "refusing to write") &&
       strcmp(t, "root's own\n") == 0 && temps("") == 0,
       "as root: a link of " FX_USER "'s to a file of root's: refused, the file as it was (%s)",
       err);
    free(t);
    free(link);
    free(target);
    free(quoted);
    free(u);
    free(p);
    free(f);
}

int main(void)
{
    fx_bail_on_alarm("Bail out! t-output: an output hung\n");
    if (!fx_tmpdir(top, sizeof top, "t-output"))
        return 1;
    test_file();
    test_mode();
    test_link();
    test_refused();
    test_device();
    test_fifo();
    test_abort();
    test_root();
    stg_rm_tree_at(AT_FDCWD, top);
    return done_testing();
}
