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

void log_set_level(enum log_level level)
{
    min_level = level;
}

/* "ts=YYYY-MM-DDTHH:MM:SS.mmmZ level=NAME " at line; returns its length. The
 * part up to the second is made once a second: gmtime and snprintf cost
 * more than the rest of most lines. */
static size_t line_prefix(char *line, enum log_level level)
{
    static time_t sec = -1;
    static char date[32];
    static size_t ndate;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(date, sizeof date, "ts=%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        ndate = n > 0 && (size_t)n < sizeof date ? (size_t)n : 0;
        sec = ts.tv_sec;
    }
    memcpy(line, date, ndate);
    size_t k = ndate;
    long ms = ts.tv_nsec / 1000000;
    line[k++] = (char)('0' + ms / 100);
    line[k++] = (char)('0' + ms / 10 % 10);
    line[k++] = (char)('0' + ms % 10);
    static const char *const tails[] = {"Z level=debug ", "Z level=info ", "Z level=warn ",
                                        "Z level=error "};
    const char *tail = tails[level];
    size_t nt = strlen(tail);
    memcpy(line + k, tail, nt);
    return k + nt;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if (level < min_level) return;
    char line[2048];
    int n = (int)line_prefix(line, level);
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
