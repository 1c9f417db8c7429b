/* log: one line per event on stderr, in logfmt (key=value pairs).
 *
 *   ts=2026-11-29T20:41:07.123Z level=info msg=request method=POST ...
 *
 * Lines are collected and written together by log_flush(), which the event
 * loop calls before it waits: the lines of one loop iteration cost one
 * write(2), made after that iteration's answers were sent, and a line is
 * never split. Warnings and errors are written at once. Call log_flush()
 * before exiting (spawnd registers it with atexit). */
#ifndef SPAWND_LOG_H
#define SPAWND_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below this level are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);
/* fmt continues the line after "ts=... level=...": e.g. "msg=request id=%s". */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write out the lines collected so far. */
void log_flush(void);

#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
