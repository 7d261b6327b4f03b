/* SPDX-License-Identifier: MIT */
/*
 * tap: a minimal TAP producer for the unit tests.
 */
#ifndef STG_TAP_H
#define STG_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

#define TAP_UNUSED __attribute__((unused))

__attribute__((format(printf, 2, 3))) static int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    printf("%sok %d - ", cond ? "" : "not ", ++tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond)
        tap_failed++;
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)

/* String equality, showing both on failure. */
#define is_str(got, want, ...)                                                   \
    do {                                                                         \
        const char *g_ = (got), *w_ = (want);                                    \
        if (!ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))                   \
            printf("#   got:  '%s'\n#   want: '%s'\n", g_ ? g_ : "(null)",       \
                   w_ ? w_ : "(null)");                                          \
    } while (0)

/* Substring, showing both on failure. */
#define like(got, want, ...)                                                     \
    do {                                                                         \
        const char *g_ = (got), *w_ = (want);                                    \
        if (!ok(g_ && w_ && strstr(g_, w_) != NULL, __VA_ARGS__))                \
            printf("#   got:  '%s'\n#   want: '...%s...'\n", g_ ? g_ : "(null)", \
                   w_ ? w_ : "(null)");                                          \
    } while (0)

TAP_UNUSED static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

TAP_UNUSED static void skip(const char *why)
{
    printf("ok %d # SKIP %s\n", ++tap_count, why);
}

static int done_testing(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
