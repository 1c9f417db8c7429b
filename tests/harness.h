/* harness: integration tests start the real spawnd and talk to it with libcurl.
 *
 * srv_start() runs the spawnd binary (SPAWND_BIN, set by CMake) on
 * 127.0.0.1:0 with the given extra arguments, logging to a temporary file,
 * and waits for its "listening on" line. Every helper aborts the test with a
 * clear message on a harness failure (not on a failed check). */
#ifndef SPAWND_HARNESS_H
#define SPAWND_HARNESS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"

struct srv {
    pid_t pid;
    int port;
    char url[64];   /* http://127.0.0.1:PORT */
    char log[128];  /* path of its stderr log */
};

struct resp {
    long status;
    struct buf body;
    struct buf headers; /* all header lines (and trailers), as received */
    double total_s;
    int curl_code;
};

/* In a forked child about to exec spawnd: drop every SPAWND_* variable the
 * test inherited, then add env (NULL-terminated "NAME=value", may be NULL). */
void srv_child_env(const char *const *env);

/* Start spawnd; argv is NULL-terminated extra arguments (may be NULL). */
void srv_start(struct srv *s, const char *const *argv);
/* The same, with extra "NAME=value" strings (NULL-terminated list, may be
 * NULL) added to spawnd's environment. */
void srv_start_env(struct srv *s, const char *const *argv, const char *const *env);
/* SIGTERM, wait (at most timeout_ms), return its exit status (-1 on timeout,
 * then it is killed), and remove the log. */
int srv_stop(struct srv *s, int timeout_ms);
/* Number of open descriptors of the server. */
int srv_fd_count(const struct srv *s);
/* The count once it settles: with want >= 0, waits (at most timeout_ms) for
 * it to be want; with want < 0, for it to stay the same for 100 ms. Closing
 * a connection the client dropped takes the server a moment. */
int srv_fd_settle(const struct srv *s, int want, int timeout_ms);
/* Number of zombie children of the server, and of all its descendants. */
int srv_zombies(const struct srv *s);
int srv_descendants(const struct srv *s);
/* A numeric field of /proc/PID/<file> of the server, e.g. ("status",
 * "VmRSS") in kB or ("io", "rchar") in bytes; -1 when it cannot be read. */
long long srv_proc_field(const struct srv *s, const char *file, const char *field);
/* 1 when the log contains needle. */
/* Whether the log has a line containing needle (waits up to a second). */
bool srv_log_has(const struct srv *s, const char *needle);

/* One request. method "GET"/"POST"/...; ctype may be NULL (no Content-Type);
 * body may be NULL; extra_headers is NULL or a NULL-terminated list of
 * "Name: value". timeout_ms 0 means 30 s. */
void http_req(const struct srv *s, const char *method, const char *path, const char *ctype,
              const char *body, size_t len, const char *const *extra_headers, int timeout_ms,
              struct resp *r);
/* POST a JSON body. */
void http_post_json(const struct srv *s, const char *path, const char *json, struct resp *r);
void http_get(const struct srv *s, const char *path, struct resp *r);
void resp_free(struct resp *r);
/* Parse the body as JSON (abort if it is not). Caller json_object_put()s. */
json_object *resp_json(const struct resp *r);
/* A header's value (case-insensitive name) or NULL; static storage. */
const char *resp_header(const struct resp *r, const char *name);

/* Sends req as it is on a new connection; reads until `until` appears in what
 * came back (NULL: until the server closes), the server closes, or timeout_ms
 * passes. Returns what was read (caller frees). */
char *srv_raw_exchange(const struct srv *s, const char *req, size_t len, const char *until,
                       int timeout_ms);

/* Convenience getters on a parsed object: path like "error.code". */
json_object *jget(json_object *o, const char *path);
const char *jstr(json_object *o, const char *path); /* NULL if missing or not a string */
long long jint(json_object *o, const char *path);  /* -9999 if missing */
bool jnull(json_object *o, const char *path);       /* present and null */
bool jbool(json_object *o, const char *path);

/* Path of a helper program built in tests/helpers (HELPERS_DIR). */
const char *helper(const char *name);

#endif
