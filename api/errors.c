#include "api/errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/encode.h"
#include "common/buf.h"

static const struct {
    int status;
    const char *name;
} table[API_ERR__COUNT] = {
    [API_ERR_INVALID_JSON] = {400, "ERR_INVALID_JSON"},
    [API_ERR_BAD_REQUEST] = {400, "ERR_BAD_REQUEST"},
    [API_ERR_INVALID_ARG_TYPE] = {400, "ERR_INVALID_ARG_TYPE"},
    [API_ERR_INVALID_ARG_VALUE] = {400, "ERR_INVALID_ARG_VALUE"},
    [API_ERR_UNAUTHORIZED] = {401, "ERR_UNAUTHORIZED"},
    [API_ERR_FORBIDDEN] = {403, "ERR_FORBIDDEN"},
    [API_ERR_NOT_FOUND] = {404, "ERR_NOT_FOUND"},
    [API_ERR_METHOD_NOT_ALLOWED] = {405, "ERR_METHOD_NOT_ALLOWED"},
    [API_ERR_REQUEST_TIMEOUT] = {408, "ERR_REQUEST_TIMEOUT"},
    [API_ERR_CONFLICT] = {409, "ERR_CONFLICT"},
    [API_ERR_PAYLOAD_TOO_LARGE] = {413, "ERR_PAYLOAD_TOO_LARGE"},
    [API_ERR_HEADERS_TOO_LARGE] = {431, "ERR_HEADERS_TOO_LARGE"},
    [API_ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "ERR_UNSUPPORTED_MEDIA_TYPE"},
    [API_ERR_TOO_MANY_JOBS] = {429, "ERR_TOO_MANY_JOBS"},
    [API_ERR_INTERNAL] = {500, "ERR_INTERNAL"},
    [API_ERR_UNAVAILABLE] = {503, "ERR_SERVICE_UNAVAILABLE"},
    [API_ERR_SHUTTING_DOWN] = {503, "ERR_SHUTTING_DOWN"},
};

int api_error_status(enum api_code code)
{
    if ((unsigned)code >= API_ERR__COUNT) return 500;
    return table[code].status;
}

const char *api_error_name(enum api_code code)
{
    if ((unsigned)code >= API_ERR__COUNT) return "ERR_INTERNAL";
    return table[code].name;
}

int api_error_set(struct api_error *err, enum api_code code, const char *field, const char *fmt,
                  ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    return -1;
}

/* Appends `"key":` followed by s as a JSON string. */
static int member_string(struct buf *out, const char *key, const char *s)
{
    int r = buf_appends(out, key);
    if (!r) r = api_json_string(out, s, strlen(s), NULL, true);
    return r;
}

int api_error_encode(struct buf *out, const struct api_error *err)
{
    size_t start = out->len;
    int r = member_string(out, "{\"error\":{\"code\":", api_error_name(err->code));
    if (!r) r = member_string(out, ",\"message\":", err->message);
    if (!r && err->field[0]) r = member_string(out, ",\"field\":", err->field);
    if (!r) r = buf_appends(out, "}}");
    if (r && out->data) {
        out->len = start;
        out->data[start] = 0;
    }
    return r;
}

#define E(name)                                                                                    \
    {                                                                                              \
        name, #name                                                                                \
    }
static const struct {
    int err;
    const char *name;
} errnos[] = {
    E(EPERM),        E(ENOENT),      E(ESRCH),   E(EINTR),        E(EIO),       E(ENXIO),
    E(E2BIG),        E(ENOEXEC),     E(EBADF),   E(ECHILD),       E(EAGAIN),    E(ENOMEM),
    E(EACCES),       E(EFAULT),      E(EBUSY),   E(EEXIST),       E(EXDEV),     E(ENODEV),
    E(ENOTDIR),      E(EISDIR),      E(EINVAL),  E(ENFILE),       E(EMFILE),    E(ENOTTY),
    E(ETXTBSY),      E(EFBIG),       E(ENOSPC),  E(ESPIPE),       E(EROFS),     E(EMLINK),
    E(EPIPE),        E(EDOM),        E(ERANGE),  E(ENAMETOOLONG), E(ENOSYS),    E(ENOTEMPTY),
    E(ELOOP),        E(ENOBUFS),     E(ENOTSUP), E(ETIMEDOUT),    E(ECANCELED), E(ECONNREFUSED),
    E(ECONNRESET),   E(EADDRINUSE),  E(ELIBBAD), E(EOVERFLOW),    E(EPROTO),    E(ENOTCONN),
    E(EHOSTUNREACH), E(ENETUNREACH),
};
#undef E

const char *api_errno_name(int err)
{
    for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
        if (errnos[i].err == err) return errnos[i].name;
    return "UNKNOWN";
}

/* Appends "prefix" s "suffix" as one JSON string; prefix and suffix are plain
 * ASCII that needs no escaping, s is escaped by api_json_string. */
static int concat_string(struct buf *out, const char *prefix, const char *s, const char *suffix)
{
    int r = buf_appendc(out, '"');
    if (!r) r = buf_appends(out, prefix);
    if (r) return r;
    size_t at = out->len;
    r = api_json_string(out, s, strlen(s), NULL, true);
    if (r) return r;
    /* Drop the quotes api_json_string put around s. */
    memmove(out->data + at, out->data + at + 1, out->len - at - 2);
    out->len -= 2;
    out->data[out->len] = 0;
    r = buf_appends(out, suffix);
    if (!r) r = buf_appendc(out, '"');
    return r;
}

int api_spawn_error_encode(struct buf *out, int err, const char *file, long step)
{
    size_t start = out->len;
    const char *code = api_errno_name(-err);
    char suffix[32];
    snprintf(suffix, sizeof suffix, " %s", code);
    int r = member_string(out, "{\"error\":{\"code\":", code);
    if (!r) r = buf_printf(out, ",\"errno\":%d,\"syscall\":", err);
    if (!r) r = concat_string(out, "spawn ", file, "");
    if (!r) r = member_string(out, ",\"path\":", file);
    if (!r) r = buf_appends(out, ",\"message\":");
    if (!r) r = concat_string(out, "spawn ", file, suffix);
    if (!r && step >= 0) r = buf_printf(out, ",\"step\":%ld", step);
    if (!r) r = buf_appends(out, "}}");
    if (r && out->data) {
        out->len = start;
        out->data[start] = 0;
    }
    return r;
}
