/* SPDX-License-Identifier: MIT */
/*
 * t-log: names made one line (stg_log_escape), the messages on stderr and
 * never on stdout, at the verbosity asked for; and the one error convention:
 * the first recorded error wins, stg_err_take() hands it over and clears it,
 * and threads that record at once leave exactly one whole message.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static char dir[4096];

/* --- escaping --- */

static void escapes(const char *in, const char *want, const char *desc)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", in);
    stg_log_escape(buf, sizeof buf);
    is_str(buf, want, "%s", desc);
}

/* --- what the log functions print --- */

/* Run fn with stdout and stderr in files; OUT out, err: what each got. */
static void capture(void (*fn)(void), char *out, size_t olen, char *err, size_t elen)
{
    struct fx_capture o, e;
    fx_capture(&o, STDOUT_FILENO, dir);
    fx_capture(&e, STDERR_FILENO, dir);
    fn();
    fx_captured(&e, err, elen);
    fx_captured(&o, out, olen);
}

static void say_all(void)
{
    stg_log_error("an error about '%s'", "x\ny");
    stg_log_warn("a warning");
    stg_log_info("some information");
    stg_log_debug("a detail");
}

/* --- threads recording at once --- */

#define THREADS 8
#define ROUNDS 200

static pthread_barrier_t start;

static void *record(void *arg)
{
    long i = (long)arg;
    pthread_barrier_wait(&start);
    /* a long message: a torn one would show */
    char pad[600];
    memset(pad, 'a' + (int)i, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int k = 0; k < 20; k++)
        stg_err_set(i % 2 ? STG_EFAIL : STG_EUSAGE, "thread %ld status %d: %s", i,
                    i % 2 ? STG_EFAIL : STG_EUSAGE, pad);
    return NULL;
}

int main(void)
{
    if (!fx_tmpdir(dir, sizeof dir, "t-log"))
        return 1;

    /* --- stg_log_escape --- */
    escapes("a\nstage-py: done\tx\x1b[2J", "a\\nstage-py: done\\tx\\x1b[2J",
            "a name with a newline, a tab and an escape sequence is one line");
    escapes("plain name-1.0_x/y.py", "plain name-1.0_x/y.py", "printable text is kept");
    escapes("\x01\x1f\x7f", "\\x01\\x1f\\x7f", "other control characters and DEL: \\xNN");
    escapes("caf\xc3\xa9 \xe2\x9c\x93", "caf\xc3\xa9 \xe2\x9c\x93", "UTF-8 is kept as it is");
    escapes("\r\n", "\\x0d\\n", "a carriage return is not a newline of its own either");
    escapes("", "", "the empty string");
    {
        /* every byte value: nothing below 0x20 nor DEL is left */
        char all[256], buf[2048];
        for (int c = 1; c < 256; c++)
            all[c - 1] = (char)c;
        all[255] = '\0';
        memcpy(buf, all, sizeof all);
        stg_log_escape(buf, sizeof buf);
        bool clean = true;
        for (const unsigned char *p = (const unsigned char *)buf; *p; p++)
            clean = clean && *p >= 0x20 && *p != 0x7f;
        ok(clean && strlen(buf) > 255, "each of the 255 byte values: no control character "
           "is left (%zu bytes)", strlen(buf));
    }
    {
        /* truncation: the result is a prefix of the full escape, ends within
         * len, and nothing after len is written */
        char full[64] = "ab\ncd\x01" "ef";
        stg_log_escape(full, sizeof full);
        bool prefixes = true, bounded = true;
        for (size_t len = 1; len <= 16; len++) {
            char buf[32], before[32];
            memset(buf, '#', sizeof buf);
            memcpy(buf, "ab\ncd\x01" "ef", 9);
            memcpy(before, buf, sizeof buf);
            stg_log_escape(buf, len);
            bounded = bounded && memchr(buf, '\0', len) &&
                      memcmp(buf + len, before + len, sizeof buf - len) == 0;
            prefixes = prefixes && strncmp(full, buf, strlen(buf)) == 0 &&
                       strlen(buf) == (len - 1 < strlen(full) ? len - 1 : strlen(full));
        }
        ok(bounded, "cut to a small buffer: NUL-terminated within it, nothing written after");
        ok(prefixes, "... and what is kept is the start of the escaped text");
        /* a long string of control characters, escaped to four times its
         * length: cut, not overrun (ASan would tell) */
        size_t big = 3 * STG_MSG_MAX;
        char *s = stg_xmalloc(big + 1);
        memset(s, '\x01', big);
        s[big] = '\0';
        stg_log_escape(s, big + 1);
        ok(strlen(s) <= big && strlen(s) > 0 && strncmp(s, "\\x01\\x01", 8) == 0,
           "a long run of control characters is escaped and cut, in place (%zu bytes)",
           strlen(s));
        free(s);
    }

    /* --- messages: stderr only, at the verbosity asked for --- */
    char out[4096], err[4096];
    stg_log_init("node7", STG_NORMAL);
    is_str(stg_log_node(), "node7", "the node's name is kept");
    ok(stg_log_verbosity() == STG_NORMAL, "... and the verbosity");
    capture(say_all, out, sizeof out, err, sizeof err);
    is_str(out, "", "nothing on stdout");
    like(err, "stage-py: node7: an error about 'x\\ny'\n", "an error: on stderr, named, its "
         "argument escaped");
    like(err, "stage-py: node7: warning: a warning\n", "a warning, at normal verbosity");
    ok(!strstr(err, "information") && !strstr(err, "detail"), "... but no information or "
       "detail");
    stg_log_init("node7", STG_QUIET);
    capture(say_all, out, sizeof out, err, sizeof err);
    ok(strstr(err, "an error") && !strstr(err, "warning"), "quiet: errors only");
    stg_log_init(NULL, STG_DEBUG);
    capture(say_all, out, sizeof out, err, sizeof err);
    is_str(out, "", "debug: still nothing on stdout");
    like(err, "] some information\n", "debug: information");
    like(err, "] debug: a detail\n", "... and details");
    {
        /* "stage-py: [S.mmm] ", the seconds since the first stg_log_init() */
        const char *p = strstr(err, "stage-py: [");
        double secs = -1;
        int used = 0;
        bool read = p && sscanf(p, "stage-py: [%lf] some%n", &secs, &used) == 1 && used > 0;
        ok(read && secs >= 0 && secs < 60,
           "... stamped with the seconds since the start, no node name when none is set "
           "(%.3f)", secs);
        ok(strstr(err, "stage-py: an error") && strstr(err, "stage-py: warning: a warning"),
           "... but errors and warnings are not stamped");
    }
    {
        int lines = 0;
        for (const char *p = err; *p; p++)
            lines += *p == '\n';
        ok(lines == 4, "one line per message (%d)", lines);
    }
    stg_log_init("", STG_NORMAL);

    /* --- the recorded error --- */
    char msg[STG_MSG_MAX];
    stg_err_take(NULL, 0);
    ok(stg_err_status() == STG_OK, "no error at first");
    strcpy(msg, "stale");
    stg_err_get(msg, sizeof msg);
    is_str(msg, "", "... and no message");
    int rc = stg_err_set(STG_EUSAGE, "m.ini:%d: first '%s'", 3, "x");
    ok(rc == STG_EUSAGE, "stg_err_set returns its status");
    rc = stg_err_set(STG_EFAIL, "second");
    ok(rc == STG_EFAIL, "... also when its message is dropped");
    ok(stg_err_status() == STG_EUSAGE, "the first error's status is kept");
    stg_err_get(msg, sizeof msg);
    is_str(msg, "m.ini:3: first 'x'", "... and its message: the first wins");
    {
        char small[8];
        memset(small, '#', sizeof small);
        stg_err_get(small, 6);
        ok(strcmp(small, "m.ini") == 0 && small[6] == '#', "get into a small buffer: cut, "
           "within it");
    }
    stg_err_get(msg, sizeof msg);
    is_str(msg, "m.ini:3: first 'x'", "get does not clear it");
    char taken[STG_MSG_MAX];
    rc = stg_err_take(taken, sizeof taken);
    ok(rc == STG_EUSAGE, "take returns its status");
    is_str(taken, "m.ini:3: first 'x'", "... and its message");
    ok(stg_err_status() == STG_OK, "... and clears it");
    stg_err_get(msg, sizeof msg);
    is_str(msg, "", "... message too");
    rc = stg_err_take(taken, sizeof taken);
    ok(rc == STG_OK && taken[0] == '\0', "take with nothing recorded: STG_OK, \"\"");
    stg_err_set(STG_ETIMEOUT, "after a take");
    ok(stg_err_take(NULL, 0) == STG_ETIMEOUT, "a new error is recorded after a take; take "
       "with no buffer returns its status");
    ok(stg_err_status() == STG_OK, "... and clears it too");

    stg_err_set(STG_EFAIL, "cannot open '%s': %s", "/tmp/x\nstage-py: done", "No such file");
    stg_err_get(msg, sizeof msg);
    is_str(msg, "cannot open '/tmp/x\\nstage-py: done': No such file", "a recorded message "
           "is escaped: a name cannot fake a line");
    stg_err_take(NULL, 0);
    {
        char *longer = stg_xmalloc(3 * STG_MSG_MAX);
        memset(longer, 'z', 3 * STG_MSG_MAX - 1);
        longer[3 * STG_MSG_MAX - 1] = '\0';
        stg_err_set(STG_EFAIL, "%s", longer);
        char *got = stg_xmalloc(4 * STG_MSG_MAX);
        stg_err_get(got, 4 * STG_MSG_MAX);
        ok(strlen(got) == STG_MSG_MAX - 1 && strspn(got, "z") == STG_MSG_MAX - 1,
           "a message longer than STG_MSG_MAX is cut to %d bytes (%zu)", STG_MSG_MAX - 1,
           strlen(got));
        free(got);
        free(longer);
        stg_err_take(NULL, 0);
    }

    /* --- several threads at once --- */
    int whole = 0, matched = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t th[THREADS];
        pthread_barrier_init(&start, NULL, THREADS);
        for (long i = 0; i < THREADS; i++)
            pthread_create(&th[i], NULL, record, (void *)i);
        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
        int status = stg_err_take(msg, sizeof msg);
        long who = -1;
        int said = -1, used = 0;
        if (sscanf(msg, "thread %ld status %d: %n", &who, &said, &used) == 2 && used > 0 &&
            who >= 0 && who < THREADS) {
            /* the rest is one thread's padding, whole */
            size_t n = strlen(msg + used);
            whole += n == 599 && strspn(msg + used, (char[]){(char)('a' + who), 0}) == n;
            matched += said == status && status == (who % 2 ? STG_EFAIL : STG_EUSAGE);
        }
    }
    ok(whole == ROUNDS, "%d threads recording at once, %d times: one whole message each time "
       "(%d)", THREADS, ROUNDS, whole);
    ok(matched == ROUNDS, "... with the status of the thread whose message it is (%d)",
       matched);
    ok(stg_err_status() == STG_OK, "... and each take cleared it");
    rmdir(dir);
    return done_testing();
}
