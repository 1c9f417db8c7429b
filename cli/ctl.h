/* ctl: what the spawnctl commands share.
 *
 * spawnctl is a thin libcurl client of spawnd.  Every command is a function
 * `int ctl_cmd_NAME(struct ctl *c, int argc, char **argv)` that gets the
 * arguments after its name and returns spawnctl's exit status: the remote
 * program's (run, exec, wait), 0 for success, or CTL_EXIT_FAILED after
 * printing exactly one "spawnctl: ..." line on stderr.  Nothing here keeps
 * state between commands; one process runs one command. */
#ifndef SPAWND_CLI_CTL_H
#define SPAWND_CLI_CTL_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Exit statuses of spawnctl itself, as env(1) and the shells use them. */
#define CTL_EXIT_FAILED 125   /* spawnctl failed: usage, server unreachable, HTTP error */
#define CTL_EXIT_NOEXEC 126   /* the program was found but could not be started */
#define CTL_EXIT_NOTFOUND 127 /* the program (or its cwd) does not exist */

/* The largest JSON answer spawnctl reads (a job list of a busy server). */
#define CTL_BODY_MAX (64 * 1024 * 1024)

struct ctl {
    const char *url;   /* the server, without trailing '/' */
    const char *token; /* bearer token, or NULL */
    char *url_mem;     /* owns url when it had to be copied */
};

/* One complete request's answer. */
struct ctl_resp {
    long status;                       /* HTTP status; 0 when the server was not reached */
    struct buf body;                   /* the body, NUL-terminated */
    char error[CURL_ERROR_SIZE + 128]; /* set when status is 0 */
};

/* --- messages and usage ---------------------------------------------------- */

/* Print "spawnctl: <message>\n" on stderr with a single write(2), so it is
 * one line even when the program's own stderr is interleaved.
 * Returns CTL_EXIT_FAILED, so callers can `return ctl_fail(...)`. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same line without changing the exit status (a warning). */
void ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A bad command line: "spawnctl: <message> (see 'spawnctl CMD --help')". */
int ctl_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write all n bytes to fd, retrying short writes and EINTR.  Returns 0 or a
 * negative errno (-EPIPE when the reader went away). */
int ctl_write_all(int fd, const void *p, size_t n);

/* --- command-line parsing ---------------------------------------------------- */

/* If argv[*i] is option name ("--cwd"), as "--cwd VALUE" or "--cwd=VALUE",
 * set *val, advance *i past it and return 1.  Returns 0 when it is another
 * argument, -1 (after a usage message) when the value is missing. */
int ctl_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name,
                  const char **val);
/* --url and --token, accepted before the command and among its options.
 * Returns 1 when argv[*i] was one (consumed), 0 when not, -1 on error. */
int ctl_opt_global(struct ctl *c, const char *cmd, int argc, char **argv, int *i);
/* Whether argv[i] asks for help (-h, --help). */
bool ctl_is_help(const char *arg);
/* A job id as the server makes them; anything else would change the URL. */
int ctl_check_id(const char *cmd, const char *id);
/* Whether arg could be a job id even though it starts with '-': spawnd's
 * ids are 24 characters of the base64url alphabet, '-' included, so one in
 * 64 begins with it; no option of spawnctl is that long without a '='. */
bool ctl_looks_like_id(const char *arg);
/* Parse a non-negative decimal integer; 0 or -EINVAL. */
int ctl_parse_uint(const char *s, unsigned long long *out);

/* --- HTTP ---------------------------------------------------------------------- */

/* Set the server from --url/SPAWND_URL (or the default) and the token. */
int ctl_init(struct ctl *c, const char *url, const char *token);
void ctl_free(struct ctl *c);

/* An easy handle for path (which starts with '/'), with the token, the
 * Content-Type (ctype, may be NULL) and no "Expect: 100-continue".  The
 * header list is stored in *headers for the caller to free after the
 * transfer.  Returns NULL when out of memory. */
CURL *ctl_easy(const struct ctl *c, const char *path, const char *ctype,
               struct curl_slist **headers);
/* Run one request: method, path, an optional JSON body.  The answer of any
 * status is a success (0); -EIO means the server was not reached or the
 * transfer broke, with r->error telling why.  timeout_s 0 waits forever.
 * The caller frees r with ctl_resp_free(). */
int ctl_request(const struct ctl *c, const char *method, const char *path, const char *json,
                long timeout_s, struct ctl_resp *r);
/* The same with the body read from fd until its end and sent as it comes
 * (chunked), as Content-Type ctype; no timeout. */
int ctl_request_fd(const struct ctl *c, const char *method, const char *path, const char *ctype,
                   int fd, struct ctl_resp *r);
void ctl_resp_free(struct ctl_resp *r);
/* Report a failed request (transport error, or an HTTP error status with the
 * server's {"error":{...}} body) as one line; returns CTL_EXIT_FAILED. */
int ctl_fail_resp(const struct ctl_resp *r, const char *what);
/* The "message" of an error body, or NULL. */
const char *ctl_error_message(json_object *body);

/* --- what the server says ---------------------------------------------------------- */

/* Decode base64 (RFC 4648, padded, no whitespace) in s[0..n) into out, which
 * has room for n / 4 * 3 bytes.  Returns the number of bytes or -EINVAL. */

/* The exit status that mirrors an "exit" event or an ended job object:
 * exit_code, or 128 + N when signal N ended it. */
int ctl_exit_status(json_object *o);
/* A signal given as "TERM", "SIGTERM", "sigterm" or "15" to its number, or -1. */
int ctl_signal_parse(const char *s);

/* A 422 answer to starting a process: print the server's message and return
 * 127 (ENOENT: no such program or cwd) or 126 (anything else). */
int ctl_spawn_failed(const struct ctl_resp *r);

/* --- output streams ------------------------------------------------------------------ */

/* The reader of a job's NDJSON output (GET /v1/jobs/{id}/output): it writes
 * each stdout and stderr event to fd 1 and 2 as it arrives and remembers the
 * exit event.  Feed it what curl receives; event boundaries need not match
 * the chunks. */
struct ctl_events {
    struct buf line;    /* an incomplete line */
    unsigned char *dec; /* decoding room */
    size_t dec_size;
    bool text;   /* "data" is text (encoding utf8), not base64 */
    bool exited; /* the exit event came */
    int status;  /* ... and the exit status it mirrors */
    bool timed_out, killed;
    unsigned long long dropped; /* events the server no longer had */
    bool gone[3];               /* fd 1 or 2 failed (EPIPE): its data is discarded */
    const char *error;          /* why the stream is unusable, or NULL */
    /* ctl_events_curl_write: the transfer, and its answer when that is not
     * a 200 stream (an error body, kept for ctl_fail_resp). */
    CURL *easy;
    struct ctl_resp answer;
    /* Called when write(2) is interrupted by a signal (so a caller with
     * signal handlers can act on them while a slow reader blocks us) and
     * when fd 1 or 2 fails; either may be NULL. */
    void (*on_intr)(void *ctx);
    void (*on_gone)(void *ctx, int fd, int err);
    void *ctx;
};

void ctl_events_init(struct ctl_events *ev, bool text);
void ctl_events_free(struct ctl_events *ev);
/* Take n more bytes of the stream.  Returns 0, or -EPROTO with ev->error set
 * when the stream is not what spawnd sends. */
int ctl_events_feed(struct ctl_events *ev, const char *p, size_t n);
/* A curl write callback around ctl_events_feed (userdata: the ctl_events). */
size_t ctl_events_curl_write(char *p, size_t size, size_t nmemb, void *arg);

/* --- commands ------------------------------------------------------------------------ */

int ctl_cmd_run(struct ctl *c, int argc, char **argv);
int ctl_cmd_exec(struct ctl *c, int argc, char **argv);
int ctl_cmd_start(struct ctl *c, int argc, char **argv);
int ctl_cmd_jobs(struct ctl *c, int argc, char **argv);
int ctl_cmd_status(struct ctl *c, int argc, char **argv);
int ctl_cmd_logs(struct ctl *c, int argc, char **argv);
int ctl_cmd_wait(struct ctl *c, int argc, char **argv);
int ctl_cmd_kill(struct ctl *c, int argc, char **argv);
int ctl_cmd_fork(struct ctl *c, int argc, char **argv);
int ctl_cmd_send(struct ctl *c, int argc, char **argv);
int ctl_cmd_messages(struct ctl *c, int argc, char **argv);

/* Help: the overview, or one command's page; on stdout. Returns 0, or
 * CTL_EXIT_FAILED for an unknown command. */
int ctl_help(const char *cmd);

#endif
