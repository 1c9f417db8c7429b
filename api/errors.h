/* errors: the one table of error codes, HTTP statuses and messages.
 *
 * Every error spawnd answers has the body
 *   {"error":{"code":"...","message":"...", ...extra}}
 * Request errors carry "field"; spawn failures are shaped as Node reports
 * them: {"code":"ENOENT","errno":-2,"syscall":"spawn nosuch","path":"nosuch",
 * "message":"spawn nosuch ENOENT"} (plus "step" for pipelines). */
#ifndef SPAWND_API_ERRORS_H
#define SPAWND_API_ERRORS_H

#include <stddef.h>

struct buf;

enum api_code {
    API_ERR_INVALID_JSON,          /* 400 */
    API_ERR_BAD_REQUEST,           /* 400: HTTP-level (framing) */
    API_ERR_INVALID_ARG_TYPE,      /* 400 */
    API_ERR_INVALID_ARG_VALUE,     /* 400 */
    API_ERR_UNAUTHORIZED,          /* 401 */
    API_ERR_FORBIDDEN,             /* 403 */
    API_ERR_NOT_FOUND,             /* 404 */
    API_ERR_METHOD_NOT_ALLOWED,    /* 405 */
    API_ERR_REQUEST_TIMEOUT,       /* 408 */
    API_ERR_CONFLICT,              /* 409 */
    API_ERR_PAYLOAD_TOO_LARGE,     /* 413 */
    API_ERR_UNSUPPORTED_MEDIA_TYPE,/* 415 */
    API_ERR_HEADERS_TOO_LARGE,     /* 431 */
    API_ERR_TOO_MANY_JOBS,         /* 429 */
    API_ERR_INTERNAL,              /* 500 */
    API_ERR_UNAVAILABLE,           /* 503 ERR_SERVICE_UNAVAILABLE: out of descriptors/memory */
    API_ERR_SHUTTING_DOWN,         /* 503 */
    API_ERR__COUNT
};

/* A request-level error (everything but a failed spawn). */
struct api_error {
    enum api_code code;
    char message[256];
    char field[128]; /* "" when no field is concerned */
};

/* HTTP status and wire name ("ERR_INVALID_JSON") of a code. */
int api_error_status(enum api_code code);
const char *api_error_name(enum api_code code);

/* Fill *err; message is printf-style. Returns -1 so parsers can
 * `return api_error_set(...)`. field may be NULL. */
int api_error_set(struct api_error *err, enum api_code code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Append the JSON error body of err to out. Returns 0 or a negative errno. */
int api_error_encode(struct buf *out, const struct api_error *err);

/* The Node name of an errno value ("ENOENT"), or "UNKNOWN". err is positive. */
const char *api_errno_name(int err);

/* Append the 422 body for a process that could not be started: err is a
 * negative errno, file the program as the request named it; step is the
 * pipeline step, or -1 when not a pipeline. */
int api_spawn_error_encode(struct buf *out, int err, const char *file, long step);

#endif
