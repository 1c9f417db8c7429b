#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static char pending[32 * 1024]; /* lines not yet written: see log_flush() */
static size_t npending;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if (level < min_level) return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    if (npending + len > sizeof pending) log_flush();
    memcpy(pending + npending, line, len);
    npending += len;
    if (level >= LOG_WARN) log_flush();
}

void log_flush(void)
{
    size_t off = 0;
    while (off < npending) {
        ssize_t w = write(STDERR_FILENO, pending + off, npending - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* nowhere to log to: the lines are lost */
        off += (size_t)w;
    }
    npending = 0;
}
