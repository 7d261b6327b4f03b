/* SPDX-License-Identifier: MIT */
/*
 * testhook: STAGE_PY_TEST_STALL, STAGE_PY_TEST_CORRUPT, STAGE_PY_TEST_PAUSE.
 */
#include "config.h"

#include "testhook.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A hook's value "NODE[:ARG]": NULL unless it names this node's leader;
 * else ARG ("" when absent). */
static const char *for_node(const char *var, const struct stg_node *n)
{
    const char *v = getenv(var);
    if (!v || !*v || !n->is_leader)
        return NULL;
    size_t len = strcspn(v, ":");
    if (len != strlen(n->name) || strncmp(v, n->name, len) != 0)
        return NULL;
    return v[len] == ':' ? v + len + 1 : v + len;
}

static void nap(struct stg_watchdog *w)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    stg_watchdog_check(w);
}

void stg_test_stall(struct stg_watchdog *w, const char *phase)
{
    if (!getenv("STAGE_PY_TEST_STALL") || !w)
        return;
    const char *arg = for_node("STAGE_PY_TEST_STALL", w->node);
    if (!arg || strcmp(arg, phase) != 0)
        return;
    for (;;)
        nap(w);
}

long stg_test_corrupt_seq(const struct stg_node *n)
{
    const char *arg = for_node("STAGE_PY_TEST_CORRUPT", n);
    if (!arg)
        return -1;
    return *arg ? strtol(arg, NULL, 10) : 0;
}

void stg_test_pause(struct stg_watchdog *w, const char *point)
{
    const char *v = getenv("STAGE_PY_TEST_PAUSE");
    size_t len = v ? strcspn(v, ":") : 0;
    if (!v || v[len] != ':' || len != strlen(point) || strncmp(v, point, len) != 0)
        return;
    char marker[4096], go[4096];
    snprintf(marker, sizeof marker, "%s/%s", v + len + 1, point);
    snprintf(go, sizeof go, "%s.go", marker);
    int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0)
        close(fd);
    struct stat st;
    while (stat(go, &st) < 0)
        nap(w);
}
