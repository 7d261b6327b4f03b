/* SPDX-License-Identifier: MIT */
/*
 * log: stderr messages and this rank's first error.  Nothing here writes to
 * stdout: stdout carries the environment settings and nothing else.
 */
#include "config.h"

#include "log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static char log_node[256] = "";
static int log_level = STG_NORMAL;
static struct timespec log_start;   /* the first stg_log_init(): -v lines count from it */

static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int err_status = STG_OK;
static char err_msg[STG_MSG_MAX];

void stg_log_init(const char *node, int verbosity)
{
    if (log_start.tv_sec == 0)
        clock_gettime(CLOCK_MONOTONIC, &log_start);
    snprintf(log_node, sizeof log_node, "%s", node ? node : "");
    log_level = verbosity;
}

const char *stg_log_node(void) { return log_node; }
int stg_log_verbosity(void) { return log_level; }

void stg_log_escape(char *s, size_t len)
{
    char out[STG_MSG_MAX * 4];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < sizeof out; p++) {
        if (*p == '\n')
            o += (size_t)snprintf(out + o, sizeof out - o, "\\n");
        else if (*p == '\t')
            o += (size_t)snprintf(out + o, sizeof out - o, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *p);
        else
            out[o++] = (char)*p;
    }
    out[o] = '\0';
    snprintf(s, len, "%s", out);
}

/* stamp: the line is there because of -v; it gets the seconds since the
 * start: "stage-py: [12.345] node1: ...". */
static void vlog(const char *kind, bool stamp, const char *fmt, va_list ap)
{
    char msg[STG_MSG_MAX], line[STG_MSG_MAX + 384], when[32] = "";
    vsnprintf(msg, sizeof msg, fmt, ap);
    stg_log_escape(msg, sizeof msg);
    if (stamp) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        snprintf(when, sizeof when, "[%.3f] ", (double)(t.tv_sec - log_start.tv_sec) +
                                                   (t.tv_nsec - log_start.tv_nsec) / 1e9);
    }
    /* One fputs per line, so lines of concurrent ranks do not interleave. */
    snprintf(line, sizeof line, "stage-py: %s%s%s%s%s\n", when, log_node, log_node[0] ? ": " : "",
             kind, msg);
    fputs(line, stderr);
}

void stg_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("", false, fmt, ap);
    va_end(ap);
}

void stg_log_warn(const char *fmt, ...)
{
    if (log_level < STG_NORMAL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", false, fmt, ap);
    va_end(ap);
}

void stg_log_info(const char *fmt, ...)
{
    if (log_level < STG_VERBOSE)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", true, fmt, ap);
    va_end(ap);
}

void stg_log_debug(const char *fmt, ...)
{
    if (log_level < STG_DEBUG)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug: ", true, fmt, ap);
    va_end(ap);
}

int stg_err_set(int status, const char *fmt, ...)
{
    pthread_mutex_lock(&err_lock);
    if (err_status == STG_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err_msg, sizeof err_msg, fmt, ap);
        va_end(ap);
        stg_log_escape(err_msg, sizeof err_msg);
        err_status = status;
    }
    pthread_mutex_unlock(&err_lock);
    return status;
}

int stg_err_status(void)
{
    pthread_mutex_lock(&err_lock);
    int s = err_status;
    pthread_mutex_unlock(&err_lock);
    return s;
}

void stg_err_get(char *buf, size_t len)
{
    pthread_mutex_lock(&err_lock);
    snprintf(buf, len, "%s", err_status == STG_OK ? "" : err_msg);
    pthread_mutex_unlock(&err_lock);
}

int stg_err_take(char *buf, size_t len)
{
    pthread_mutex_lock(&err_lock);
    int status = err_status;
    if (buf && len)
        snprintf(buf, len, "%s", err_status == STG_OK ? "" : err_msg);
    err_status = STG_OK;
    err_msg[0] = '\0';
    pthread_mutex_unlock(&err_lock);
    return status;
}
