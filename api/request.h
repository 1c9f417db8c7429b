/* request: JSON request bodies in, validated plain C requests out.
 *
 * Parsing is strict: the body must be exactly one JSON object (RFC 8259: no
 * trailing garbage, no duplicate keys, no raw control characters in strings,
 * valid UTF-8, nesting at most API_MAX_DEPTH), every field must be known and
 * of the documented type, integers must be in range (never clamped), and any
 * string that becomes a C string must not contain a NUL byte.  A bad request
 * is described by an api_error naming the field ("args[2]", "env.PATH",
 * "steps[1].command"), and nothing is run. */
#ifndef SPAWND_API_REQUEST_H
#define SPAWND_API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"
#include "executor/exec.h"

#define API_MAX_DEPTH 32
#define API_MAX_ARGS 4096   /* argv entries per process */
#define API_MAX_ENV 4096    /* environment entries per process */
#define API_MAX_STEPS 64    /* pipeline steps */

/* Integer fields: values past these are refused, never clamped. */
#define API_MAX_TIMEOUT_MS 1000000000000ull /* ~31 years; in ns it still fits 64 bits */
#define API_DEFAULT_MAX_BUFFER 1048576      /* max_buffer when absent (Node's) */
#define API_MAX_MAX_BUFFER (1ull << 30)     /* largest max_buffer accepted */

/* API_JOB is POST /v1/jobs: the body's "kind" names one of the others, and
 * the parsed request carries that kind. */
enum api_kind { API_EXEC, API_EXECFILE, API_SPAWN, API_PIPELINE, API_FORK, API_JOB };

/* "exec", "execFile", ... as the API names the kinds. */
const char *api_kind_name(enum api_kind kind);

enum api_encoding { API_UTF8, API_BASE64 };

/* Server-wide settings the parser applies. */
struct api_config {
    char *const *default_env; /* the children's environment when "env" is absent */
    uint64_t max_timeout_ms;  /* 0: no cap; else timeout_ms above it is refused and
                                 a missing/0 timeout_ms becomes this */
    const char *default_shell; /* "/bin/sh" */
};

/* A validated request.  spec points into memory owned by the request
 * (api_request_free releases it). */
struct api_request {
    enum api_kind kind;
    enum api_encoding encoding; /* output encoding */
    size_t max_buffer;          /* exec/execFile: bytes kept per stream */
    bool max_buffer_set;        /* given in the request (not the default) */
    bool backpressure;          /* background jobs: never drop output, pause instead */
    struct exec_spec spec;      /* ready for exec_job_start() */
    void *priv;                 /* owned memory */
};

/* Parse and validate body (len bytes, need not be NUL-terminated) as a
 * request of the given kind.  Returns 0 and fills *req, or returns -1 and
 * fills *err (req is then left empty and need not be freed). */
int api_request_parse(enum api_kind kind, const char *body, size_t len,
                      const struct api_config *cfg, struct api_request *req,
                      struct api_error *err);
void api_request_free(struct api_request *req);

/* The body of POST /v1/jobs/{id}/signal: {"signal": "SIGTERM" | 15}.
 * Returns 0 and sets *sig, or -1 with err filled. */
int api_signal_parse(const char *body, size_t len, int *sig, struct api_error *err);

/* Strict RFC 8259 check of a complete JSON text (what json-c lets through
 * but JSON does not: trailing garbage, duplicate keys, raw control
 * characters, invalid UTF-8, leading zeros, depth over max_depth).
 * Returns 0, or -1 and fills *err with ERR_INVALID_JSON. Exposed for tests. */
int api_json_check(const char *text, size_t len, int max_depth, struct api_error *err);

/* api_json_check_ex flags. */
/* Refuse an object key containing a NUL byte (\u0000) with
 * ERR_INVALID_ARG_VALUE naming the key's path: json-c cuts keys at the NUL,
 * so {"cwd\u0000x":..} would otherwise be read as "cwd". */
#define API_JSON_NO_NUL_KEYS 0x1u
/* api_json_check with flags; errors name the offending path in err->field
 * where there is one (a duplicate key: "env.PATH"). max_depth is at most 128. */
int api_json_check_ex(const char *text, size_t len, int max_depth, unsigned flags,
                      struct api_error *err);

#endif
