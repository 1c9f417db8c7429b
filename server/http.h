/* http: spawnd's HTTP front end on libmicrohttpd.
 *
 * libmicrohttpd runs without threads of its own: its epoll descriptor is
 * watched by spawnd's one loop, which calls MHD_run() when it is ready.  So
 * request handlers, the executor's callbacks and the content readers of
 * streaming responses all run on one thread and share state without locks.
 *
 * A request is an http_req from its first header to MHD's "completed"
 * notification. A handler either answers at once (http_respond_*) or
 * suspends the connection and answers later, when the executor calls back:
 * it prepares the response, resumes the connection, and the response is
 * queued when MHD calls the handler again. */
#ifndef SPAWND_HTTP_H
#define SPAWND_HTTP_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/errors.h"
#include "api/request.h"
#include "common/buf.h"
#include "executor/loop.h"
#include "server/config.h"
#include "server/metrics.h"

struct executor;
struct http_req;
struct run_state;
struct job_req;
struct jobs;
struct auth;

struct server {
    struct server_config cfg;
    struct api_config api;
    struct loop *loop;
    struct executor *ex;
    struct MHD_Daemon *mhd;
    struct loop_watch mhd_w;
    struct loop_timer mhd_t;    /* MHD's own timeouts */
    struct loop_defer mhd_kick; /* another MHD run once this batch of events is handled */
    bool in_mhd_run, mhd_kicked;
    bool shutting_down;
    int exit_status;
    struct loop_timer stop_t;
    struct jobs *jobs;     /* background jobs (jobs.c) */
    struct auth *auth;     /* NULL when no token is configured */
    struct metrics metrics;
    struct http_req *reqs; /* every request in progress */
    unsigned nreqs;
    uint64_t nrequests;
};

typedef enum MHD_Result (*http_handler)(struct http_req *r);
/* Takes (part of) a streamed request body; sets *size to what it left.
 * Called first with data NULL once the headers are in, when it may still
 * answer (an error) and sets r->stream to take the body as a stream (left
 * false, the body is collected as usual); later calls must not answer: MHD
 * refuses a response while the body is arriving. */
typedef enum MHD_Result (*http_upload)(struct http_req *r, const char *data, size_t *size);

struct route {
    const char *method;
    const char *path; /* "{id}" matches one path segment, captured in http_req.param */
    http_handler fn;  /* called once the whole body is in (or streamed) */
    bool json_body;   /* requires Content-Type: application/json, body ≤ --max-body-bytes */
    http_upload upload; /* may take the body as a stream instead (see above) */
};

struct http_req {
    struct server *srv;
    struct MHD_Connection *con;
    struct http_req *prev, *next;
    int refs;
    const struct route *route;
    char param[128]; /* the {id} of the path */
    char id[40];
    char method[16];
    char path[256];
    uint64_t start_ns;
    struct buf body;
    bool body_too_big;
    bool stream; /* the body goes to route->upload as it arrives, not into body */
    bool queued; /* a response has been queued */
    unsigned status;
    struct MHD_Response *pending; /* queued when MHD calls the handler next */
    bool suspended;
    bool waiting; /* suspended until http_prepare_* gives the answer */
    struct loop_watch hup; /* the client socket, watched while a job runs */
    bool client_gone;
    void (*on_client_gone)(struct http_req *r);
    struct run_state *run; /* run.c's state for this request */
    struct job_req *jr;    /* jobs.c's state for this request */
};

/* Start serving on the loop. Returns 0 or -1 (after logging why). */
int server_start(struct server *s);
/* Begin a graceful shutdown (SIGTERM/SIGINT). */
void server_shutdown(struct server *s);
/* Free everything; after the loop has stopped. */
void server_stop(struct server *s);
/* Have MHD run again soon: it has no wake-up descriptor of its own in
 * external-epoll mode (after a resume, or a connection closing). */
void server_kick(struct server *s);
/* Called when a job ends or a request completes, to finish a shutdown. */
void server_check_stop(struct server *s);

/* Answer now with a JSON body (takes body's memory) or an error. */
enum MHD_Result http_respond_json(struct http_req *r, unsigned status, struct buf *body);
enum MHD_Result http_respond_error(struct http_req *r, const struct api_error *err);
enum MHD_Result http_respond_code(struct http_req *r, enum api_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answer with a response created by the caller (we take our reference). */
enum MHD_Result http_respond(struct http_req *r, unsigned status, struct MHD_Response *resp);

/* A response with body's memory (taken) and the common headers; NULL when
 * out of memory. The JSON form ends the body with a newline, as every JSON
 * answer of spawnd does. */
struct MHD_Response *http_buffer_response(struct http_req *r, struct buf *body, const char *ctype);
struct MHD_Response *http_json_response(struct http_req *r, struct buf *body);

/* A chunked streaming response whose reader gets r as its argument; holds a
 * reference on r until MHD lets go of the response. */
struct MHD_Response *http_stream_response(struct http_req *r, MHD_ContentReaderCallback reader,
                                          const char *ctype);

/* Prepare a JSON/error response to be sent after the connection is resumed
 * (the caller then calls http_resume). */
void http_prepare_json(struct http_req *r, unsigned status, struct buf *body);
/* The same with a response of any kind (a stream); takes resp. */
void http_prepare_response(struct http_req *r, unsigned status, struct MHD_Response *resp);
void http_prepare_error(struct http_req *r, const struct api_error *err);

void http_suspend(struct http_req *r);
/* Suspend until the answer is prepared (http_prepare_*) and resumed. */
void http_wait(struct http_req *r);
void http_resume(struct http_req *r);
/* Watch the client's socket; on hang-up, on_client_gone(r) is called once. */
void http_watch_client(struct http_req *r, void (*on_gone)(struct http_req *r));

/* A query parameter or NULL. */
const char *http_query(struct http_req *r, const char *key);
/* Whether the request's Content-Type is type (parameters aside). */
bool http_content_type_is(struct http_req *r, const char *type);
/* 0 when every query parameter is in allowed (NULL-terminated), else -1
 * with err filled. */
int http_check_query(struct http_req *r, const char *const *allowed, struct api_error *err);
/* Add the headers every response carries (X-Request-Id, Content-Type). */
void http_add_common_headers(struct http_req *r, struct MHD_Response *resp, const char *ctype);

void http_req_ref(struct http_req *r);
void http_req_unref(struct http_req *r);

/* metrics.c: GET /metrics. */
enum MHD_Result metrics_handle(struct http_req *r);

/* run.c: the handlers that run processes. */
enum MHD_Result run_exec(struct http_req *r);
enum MHD_Result run_execfile(struct http_req *r);
enum MHD_Result run_spawn(struct http_req *r);
enum MHD_Result run_pipeline(struct http_req *r);
/* A request is over: let go of its job (killing it if it still runs). */
void run_release(struct http_req *r);
/* Answer a failed exec_job_start: 429, 503 or the 422 spawn error. */
enum MHD_Result run_start_failed(struct http_req *r, const struct api_request *req, int err,
                                 size_t step);
/* The same answer for a spawn that failed on a spawner thread (see exec.h),
 * prepared for a waiting request (the caller resumes it). */
void run_spawn_failed(struct http_req *r, enum api_kind kind, const char *file, int err);

/* jobs.c: background jobs and fork. */
struct jobs *jobs_new(struct server *s);
void jobs_free(struct jobs *j);
void jobs_release(struct http_req *r);
enum MHD_Result jobs_create(struct http_req *r);
enum MHD_Result jobs_fork(struct http_req *r);
enum MHD_Result jobs_list(struct http_req *r);
enum MHD_Result jobs_get(struct http_req *r);
enum MHD_Result jobs_delete(struct http_req *r);
enum MHD_Result jobs_output(struct http_req *r);
enum MHD_Result jobs_stdin(struct http_req *r);
enum MHD_Result jobs_stdin_upload(struct http_req *r, const char *data, size_t *size);
enum MHD_Result jobs_signal(struct http_req *r);
enum MHD_Result jobs_wait(struct http_req *r);
enum MHD_Result jobs_messages_post(struct http_req *r);
enum MHD_Result jobs_messages_upload(struct http_req *r, const char *data, size_t *size);
enum MHD_Result jobs_messages_get(struct http_req *r);
enum MHD_Result jobs_messages_delete(struct http_req *r);

#endif
