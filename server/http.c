#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "api/encode.h"
#include "server/auth.h"
#include "common/log.h"
#include "common/seq.h"
#include "executor/exec.h"

static enum MHD_Result handle_healthz(struct http_req *r);
static void deadline_stop(struct http_req *r);
static void deadline_restart(struct http_req *r);
static enum MHD_Result handle_version(struct http_req *r);

static const struct route routes[] = {
    {"GET", "/healthz", handle_healthz, false, NULL},
    {"GET", "/v1/version", handle_version, false, NULL},
    {"GET", "/metrics", metrics_handle, false, NULL},
    {"POST", "/v1/exec", run_exec, true, NULL},
    {"POST", "/v1/execFile", run_execfile, true, NULL},
    {"POST", "/v1/spawn", run_spawn, true, NULL},
    {"POST", "/v1/pipeline", run_pipeline, true, NULL},
    {"POST", "/v1/fork", jobs_fork, true, NULL},
    {"GET", "/v1/jobs", jobs_list, false, NULL},
    {"POST", "/v1/jobs", jobs_create, true, NULL},
    {"GET", "/v1/jobs/{id}", jobs_get, false, NULL},
    {"DELETE", "/v1/jobs/{id}", jobs_delete, false, NULL},
    {"GET", "/v1/jobs/{id}/output", jobs_output, false, NULL},
    {"POST", "/v1/jobs/{id}/stdin", jobs_stdin, false, jobs_stdin_upload},
    {"POST", "/v1/jobs/{id}/signal", jobs_signal, true, NULL},
    {"GET", "/v1/jobs/{id}/wait", jobs_wait, false, NULL},
    {"POST", "/v1/jobs/{id}/messages", jobs_messages_post, true, jobs_messages_upload},
    {"GET", "/v1/jobs/{id}/messages", jobs_messages_get, false, NULL},
    {"DELETE", "/v1/jobs/{id}/messages", jobs_messages_delete, false, NULL},
};

/* Whether path matches pattern; a "{id}" segment matches one non-empty
 * segment of URL-safe characters, copied into param. */
static bool path_match(const char *pattern, const char *path, char *param, size_t psize)
{
    const char *hole = strstr(pattern, "{id}");
    if (!hole) return strcmp(pattern, path) == 0;
    size_t pre = (size_t)(hole - pattern);
    if (strncmp(pattern, path, pre) != 0) return false;
    const char *seg = path + pre;
    size_t n = strspn(seg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~");
    if (n == 0 || n >= psize || strcmp(seg + n, hole + 4) != 0) return false;
    memcpy(param, seg, n);
    param[n] = 0;
    return true;
}
#define NROUTES (sizeof routes / sizeof routes[0])

/* --- requests ------------------------------------------------------------ */

void http_req_ref(struct http_req *r)
{
    r->refs++;
}

void http_req_unref(struct http_req *r)
{
    if (--r->refs) return;
    if (r->pending) MHD_destroy_response(r->pending);
    buf_free(&r->body);
    free(r);
}

static struct http_req *req_new(struct server *s, struct MHD_Connection *con, const char *method,
                                const char *url)
{
    struct http_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->con = con;
    r->refs = 1; /* MHD's, dropped when the request completes */
    r->start_ns = loop_now_ns();
    buf_init(&r->body, s->cfg.max_body_bytes);
    loop_watch_init(&r->hup, NULL);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    const char *rid = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Request-Id");
    bool ok = rid && *rid && strlen(rid) < sizeof r->id;
    for (const char *p = rid; ok && *p; p++) /* it goes into logs and headers: keep it tame */
        ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
             strchr("-_.:", *p);
    if (ok) {
        strcpy(r->id, rid);
    } else {
        /* Request ids only need to be distinct (job ids, which must be
         * unguessable, use getrandom): no system call per request. */
        static struct seq ids;
        snprintf(r->id, sizeof r->id, "%016llx", (unsigned long long)seq_next(&ids));
    }
    s->nrequests++;
    r->next = s->reqs;
    if (s->reqs) s->reqs->prev = r;
    s->reqs = r;
    s->nreqs++;
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct http_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    loop_watch_del(s->loop, &r->hup);
    run_release(r);
    jobs_release(r);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) deadline_restart(r);
    metrics_http(&s->metrics, r->status);
    log_info("msg=request id=%s method=%s path=%s status=%u duration_ms=%.1f%s", r->id, r->method,
             r->path, r->status, (double)(loop_now_ns() - r->start_ns) / 1e6,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    if (r->prev) r->prev->next = r->next;
    else s->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    s->nreqs--;
    r->con = NULL;
    http_req_unref(r);
    server_check_stop(s);
}

/* --- responses ----------------------------------------------------------- */

void http_add_common_headers(struct http_req *r, struct MHD_Response *resp, const char *ctype)
{
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
}

struct MHD_Response *http_buffer_response(struct http_req *r, struct buf *body, const char *ctype)
{
    /* The body's memory is handed to MHD, which free()s it. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        buf_free(body);
        return NULL;
    }
    body->data = NULL;
    buf_free(body);
    http_add_common_headers(r, resp, ctype);
    return resp;
}

struct MHD_Response *http_json_response(struct http_req *r, struct buf *body)
{
    (void)buf_appendc(body, '\n'); /* past the cap the newline is simply left out */
    return http_buffer_response(r, body, "application/json");
}

static void add_error_headers(struct http_req *r, struct MHD_Response *resp, enum api_code code)
{
    if (code == API_ERR_METHOD_NOT_ALLOWED) {
        char allow[64] = "", param[128];
        for (size_t i = 0; i < NROUTES; i++) {
            if (!path_match(routes[i].path, r->path, param, sizeof param)) continue;
            if (*allow) strcat(allow, ", ");
            strcat(allow, routes[i].method);
        }
        MHD_add_response_header(resp, "Allow", allow);
    } else if (code == API_ERR_TOO_MANY_JOBS || code == API_ERR_UNAVAILABLE) {
        MHD_add_response_header(resp, "Retry-After", "1");
    } else if (code == API_ERR_UNAUTHORIZED) {
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    }
}

static struct MHD_Response *error_response(struct http_req *r, const struct api_error *err)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    api_error_encode(&b, err);
    struct MHD_Response *resp = http_json_response(r, &b);
    if (resp) add_error_headers(r, resp, err->code);
    return resp;
}

enum MHD_Result http_respond(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp) return MHD_NO;
    r->status = status;
    r->queued = true;
    enum MHD_Result ret = MHD_queue_response(r->con, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void stream_free(void *cls)
{
    http_req_unref(cls);
}

struct MHD_Response *http_stream_response(struct http_req *r, MHD_ContentReaderCallback reader,
                                          const char *ctype)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256 * 1024, reader, r, stream_free);
    if (!resp) return NULL;
    http_req_ref(r);
    http_add_common_headers(r, resp, ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: do not buffer it */
    return resp;
}

enum MHD_Result http_respond_json(struct http_req *r, unsigned status, struct buf *body)
{
    return http_respond(r, status, http_json_response(r, body));
}

enum MHD_Result http_respond_error(struct http_req *r, const struct api_error *err)
{
    return http_respond(r, (unsigned)api_error_status(err->code), error_response(r, err));
}

enum MHD_Result http_respond_code(struct http_req *r, enum api_code code, const char *fmt, ...)
{
    struct api_error err = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return http_respond_error(r, &err);
}

static void prepare(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->pending) MHD_destroy_response(r->pending);
    r->pending = resp;
    r->status = status;
    r->waiting = false;
}

void http_prepare_response(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
    prepare(r, status, resp);
}

void http_prepare_json(struct http_req *r, unsigned status, struct buf *body)
{
    prepare(r, status, http_json_response(r, body));
}

void http_prepare_error(struct http_req *r, const struct api_error *err)
{
    prepare(r, (unsigned)api_error_status(err->code), error_response(r, err));
}

/* --- suspension and the client socket -------------------------------------- */

void http_suspend(struct http_req *r)
{
    if (r->suspended || !r->con) return;
    MHD_suspend_connection(r->con);
    r->suspended = true;
}

void http_wait(struct http_req *r)
{
    r->waiting = true;
    http_suspend(r);
}

void http_resume(struct http_req *r)
{
    if (!r->suspended || !r->con) return;
    r->suspended = false;
    MHD_resume_connection(r->con);
    /* In external-epoll mode MHD has no wake-up descriptor of its own: run it
     * again soon (not from here, which may be inside one of its callbacks). */
    server_kick(r->srv);
}

static void on_hup(struct loop_watch *w, uint32_t revents)
{
    struct http_req *r = (struct http_req *)((char *)w - offsetof(struct http_req, hup));
    loop_watch_del(r->srv->loop, w);
    if (r->client_gone) return;
    r->client_gone = true;
    if (r->on_client_gone) r->on_client_gone(r);
}

void http_watch_client(struct http_req *r, void (*on_gone)(struct http_req *r))
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->con, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->on_client_gone = on_gone;
    if (!ci || loop_watch_active(&r->hup)) return;
    /* A suspended connection is invisible to MHD, so its client leaving would
     * go unnoticed: spawnd watches the socket for hang-up itself. */
    r->hup.cb = on_hup;
    loop_watch_add(r->srv->loop, &r->hup, ci->connect_fd, EPOLLRDHUP);
}

/* --- query strings ------------------------------------------------------- */

const char *http_query(struct http_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->con, MHD_GET_ARGUMENT_KIND, key);
}

struct query_check {
    const char *const *allowed;
    const char *bad;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct query_check *q = cls;
    for (const char *const *a = q->allowed; *a; a++)
        if (strcmp(*a, key) == 0) return MHD_YES;
    q->bad = key;
    return MHD_NO;
}

int http_check_query(struct http_req *r, const char *const *allowed, struct api_error *err)
{
    struct query_check q = {allowed, NULL};
    MHD_get_connection_values(r->con, MHD_GET_ARGUMENT_KIND, query_iter, &q);
    if (!q.bad) return 0;
    return api_error_set(err, API_ERR_INVALID_ARG_VALUE, q.bad, "unknown query parameter \"%.64s\"",
                         q.bad);
}

/* --- simple handlers ------------------------------------------------------ */

static enum MHD_Result handle_healthz(struct http_req *r)
{
    struct buf b;
    buf_init(&b, 64);
    buf_appends(&b, "{\"status\":\"ok\"}");
    return http_respond_json(r, 200, &b);
}

static enum MHD_Result handle_version(struct http_req *r)
{
    struct buf b;
    buf_init(&b, 128);
    buf_appends(&b, "{\"version\":\"" SPAWND_VERSION "\",\"api\":1}");
    return http_respond_json(r, 200, &b);
}

/* --- checks before a request is handled ------------------------------------- */

/* Only loopback names may reach a server without tokens: a web page that
 * rebinds its own name to 127.0.0.1 still sends its own name as Host. */
static bool host_allowed(struct http_req *r)
{
    const char *h = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, "Host");
    if (!h) return true; /* HTTP/1.0 without Host: not a browser */
    size_t n = strlen(h);
    const char *colon = NULL;
    if (h[0] == '[') {
        const char *rb = strchr(h, ']');
        if (!rb) return false;
        if (rb[1] == ':') colon = rb + 1;
        else if (rb[1]) return false;
    } else {
        colon = strchr(h, ':');
    }
    size_t hl = colon ? (size_t)(colon - h) : n;
    if (colon)
        for (const char *p = colon + 1; *p; p++)
            if (*p < '0' || *p > '9') return false;
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < 3; i++)
        if (strlen(names[i]) == hl && strncasecmp(h, names[i], hl) == 0) return true;
    return false;
}

bool http_content_type_is(struct http_req *r, const char *type)
{
    const char *ct = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, "Content-Type");
    if (!ct) return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen(type);
    if (strncasecmp(ct, type, n) != 0) return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == 0 || *ct == ';';
}

#define HEADERS_MAX (32 * 1024) /* request line and header fields, in all */

struct framing {
    int content_length, transfer_encoding, host;
    bool bad_te, bad_name;
    size_t bytes;
};

static enum MHD_Result framing_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct framing *f = cls;
    f->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    if (strpbrk(key, " \t")) f->bad_name = true; /* "Content-Length : 5" */
    if (strcasecmp(key, "Host") == 0) f->host++;
    if (strcasecmp(key, "Content-Length") == 0) f->content_length++;
    if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->transfer_encoding++;
        if (strcasecmp(value, "chunked") != 0) f->bad_te = true;
    }
    return MHD_YES;
}

/* Request shapes that proxies and servers may read differently (request
 * smuggling) are refused outright (400), and so are headers past
 * HEADERS_MAX (431): libmicrohttpd's limit is its connection memory, which
 * is sized for streaming, not for headers. */
static enum api_code framing_check(struct http_req *r, const char *url)
{
    struct framing f = {0, 0, 0, false, false, strlen(url)};
    MHD_get_connection_values(r->con, MHD_HEADER_KIND, framing_iter, &f);
    if (f.bytes > HEADERS_MAX) return API_ERR_HEADERS_TOO_LARGE;
    if (f.content_length > 1 || f.transfer_encoding > 1 || f.host > 1 || f.bad_te ||
        f.bad_name || (f.content_length && f.transfer_encoding))
        return API_ERR_BAD_REQUEST;
    return API_ERR__COUNT;
}

static enum MHD_Result begin(struct http_req *r, const char *url)
{
    struct server *s = r->srv;
    enum api_code bad = framing_check(r, url);
    if (bad == API_ERR_HEADERS_TOO_LARGE)
        return http_respond_code(r, bad, "request line and headers over %d bytes", HEADERS_MAX);
    if (bad != API_ERR__COUNT)
        return http_respond_code(r, bad,
                                 "ambiguous request framing (Content-Length, Transfer-Encoding, "
                                 "Host or a header name with blanks)");
    if (s->shutting_down)
        return http_respond_code(r, API_ERR_SHUTTING_DOWN, "spawnd is shutting down");
    if (s->auth) {
        /* Everything but the health check needs a token; a token is only
         * ever taken from the Authorization header, never the query. */
        const char *h = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, "Authorization");
        if (strcmp(r->path, "/healthz") != 0 && !auth_check(s->auth, h))
            return http_respond_code(r, API_ERR_UNAUTHORIZED,
                                     h ? "the bearer token is not accepted"
                                       : "an Authorization: Bearer token is required");
    } else if (!host_allowed(r)) {
        return http_respond_code(r, API_ERR_FORBIDDEN,
                                 "Host is not a loopback name and no token is configured");
    }
    bool path_known = false;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_match(routes[i].path, r->path, r->param, sizeof r->param)) continue;
        path_known = true;
        if (strcmp(routes[i].method, r->method) == 0 ||
            (strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
            r->route = &routes[i];
    }
    if (!path_known) return http_respond_code(r, API_ERR_NOT_FOUND, "no such endpoint: %.200s", r->path);
    if (!r->route)
        return http_respond_code(r, API_ERR_METHOD_NOT_ALLOWED, "%s is not allowed on %.200s",
                                 r->method, r->path);
    /* A route that can take its body as a stream decides now (MHD only
     * takes an answer before the body starts or after it has all arrived);
     * if it does not (r->stream stays false), the body is buffered. */
    if (r->route->upload) {
        size_t none = 0;
        enum MHD_Result ret = r->route->upload(r, NULL, &none);
        if (r->queued || r->stream) return ret;
    }
    if (r->route->json_body) {
        if (!http_content_type_is(r, "application/json"))
            return http_respond_code(r, API_ERR_UNSUPPORTED_MEDIA_TYPE,
                                     "the body must be Content-Type: application/json");
        const char *cl = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body_bytes)
            return http_respond_code(r, API_ERR_PAYLOAD_TOO_LARGE,
                                     "request body over %llu bytes",
                                     (unsigned long long)s->cfg.max_body_bytes);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct http_req *r = *con_cls;
    if (!r) {
        r = req_new(s, con, method, url);
        if (!r) return MHD_NO;
        *con_cls = r;
        enum MHD_Result ret = begin(r, url);
        if (!r->queued && r->stream) deadline_stop(r); /* a stream: no deadline */
        return ret;
    }
    if (r->queued) { /* answered early (413, 415...): ignore the rest of the body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size && r->stream) {
        enum MHD_Result ret = r->route->upload(r, upload, upload_size);
        if (r->queued) *upload_size = 0; /* answered (an error): the rest is ignored */
        return ret;
    }
    if (*upload_size) {
        if (!r->body_too_big && buf_append(&r->body, upload, *upload_size) < 0) {
            r->body_too_big = true;
            buf_free(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->pending) { /* resumed with the answer ready */
        struct MHD_Response *resp = r->pending;
        r->pending = NULL;
        r->queued = true;
        enum MHD_Result ret = MHD_queue_response(con, r->status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (r->client_gone) return MHD_NO; /* close the connection; nobody is listening */
    if (r->waiting) { /* resumed early: the answer is not ready yet */
        http_suspend(r);
        return MHD_YES;
    }
    deadline_stop(r);
    if (r->body_too_big)
        return http_respond_code(r, API_ERR_PAYLOAD_TOO_LARGE, "request body over %llu bytes",
                                 (unsigned long long)s->cfg.max_body_bytes);
    return r->route->fn(r);
}

/* URL unescaping as libmicrohttpd does it, except that "%00" stays as it
 * is: a NUL in the middle would cut the path short ("/v1/exec%00x" would
 * route as "/v1/exec"). */
static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (p[0] == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi << 4 | lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

/* --- connections: the deadline for receiving a request ---------------------- */

/* libmicrohttpd's own timeout is reset by every byte, so a client trickling
 * its headers one line every few seconds would hold a connection forever.
 * Each connection gets a deadline for a whole request (headers, and a JSON
 * body) instead; past it the socket is shut down and MHD closes it. */
struct http_conn {
    struct server *srv;
    int fd;
    struct loop_timer deadline;
};

static void on_deadline(struct loop_timer *t)
{
    struct http_conn *c = (struct http_conn *)((char *)t - offsetof(struct http_conn, deadline));
    log_info("msg=request_deadline fd=%d", c->fd);
    shutdown(c->fd, SHUT_RDWR);
    server_kick(c->srv);
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *s = cls;
    struct http_conn *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = calloc(1, sizeof *c);
        if (!c || !ci) {
            free(c);
            return;
        }
        c->srv = s;
        c->fd = ci->connect_fd;
        loop_timer_init(&c->deadline, on_deadline);
        loop_timer_start(s->loop, &c->deadline, s->cfg.request_timeout_ms);
        *socket_context = c;
    } else if (c) {
        loop_timer_stop(s->loop, &c->deadline);
        free(c);
        *socket_context = NULL;
        /* Below --max-connections again, libmicrohttpd only re-arms its
         * listening socket on its next run: make sure there is one. */
        server_kick(s);
    }
}

static struct http_conn *conn_of(struct http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The request is in (or its body is a stream, which has no deadline). */
static void deadline_stop(struct http_req *r)
{
    struct http_conn *c = conn_of(r);
    if (c) loop_timer_stop(r->srv->loop, &c->deadline);
}

/* The next request on a kept-alive connection must come in time too. */
static void deadline_restart(struct http_req *r)
{
    struct http_conn *c = conn_of(r);
    if (c) loop_timer_start(r->srv->loop, &c->deadline, r->srv->cfg.request_timeout_ms);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "spawnd: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct buf b;
    buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) < 0) break;
    fclose(f);
    if (!b.data) buf_append(&b, "", 0);
    return b.data;
}

/* --- the daemon on the loop ------------------------------------------------ */

static void mhd_run(struct server *s)
{
    MHD_UNSIGNED_LONG_LONG ms = UINT64_MAX;
    /* A resumed connection takes two runs: one makes its reply ready, the
     * next sends it (MHD then reports a timeout of 0). Both at once. */
    for (int run = 0; run < 2; run++) {
        s->mhd_kicked = false;
        s->in_mhd_run = true;
        MHD_run(s->mhd);
        s->in_mhd_run = false;
        if (MHD_get_timeout(s->mhd, &ms) != MHD_YES) ms = UINT64_MAX;
        if (ms != 0 && !s->mhd_kicked) break;
    }
    loop_timer_stop(s->loop, &s->mhd_t);
    if (s->mhd_kicked || ms == 0) loop_defer(s->loop, &s->mhd_kick); /* more right away */
    else if (ms != UINT64_MAX) loop_timer_start(s->loop, &s->mhd_t, ms);
}

void server_kick(struct server *s)
{
    if (s->in_mhd_run) s->mhd_kicked = true;
    else loop_defer(s->loop, &s->mhd_kick);
}

static void on_mhd_fd(struct loop_watch *w, uint32_t revents)
{
    mhd_run((struct server *)((char *)w - offsetof(struct server, mhd_w)));
}

static void on_mhd_timer(struct loop_timer *t)
{
    mhd_run((struct server *)((char *)t - offsetof(struct server, mhd_t)));
}

static void on_mhd_kick(struct loop_defer *d)
{
    mhd_run((struct server *)((char *)d - offsetof(struct server, mhd_kick)));
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    log_warn("msg=http_library detail=\"%s\"", msg);
}

static void on_stop_deadline(struct loop_timer *t);

int server_start(struct server *s)
{
    s->jobs = jobs_new(s);
    if (!s->jobs) return -1;
    loop_timer_init(&s->stop_t, on_stop_deadline);
    loop_timer_init(&s->mhd_t, on_mhd_timer);
    loop_defer_init(&s->mhd_kick, on_mhd_kick);
    s->metrics.start_wall_s = (uint64_t)time(NULL);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const char *host = s->cfg.listen_host;
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)s->cfg.listen_port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)s->cfg.listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        log_error("msg=\"bad listen address\" host=%s", s->cfg.listen_host);
        return -1;
    }
    struct MHD_OptionItem ops[16] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s},
        /* Idle keep-alive connections and stalled responses; the deadline
         * for receiving a request is spawnd's own (on_deadline). */
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)s->cfg.max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)s->cfg.max_connections_per_ip, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
        {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
        /* Each connection's memory: headers (spawnd refuses more than
         * 32 KiB of them), then a stream's chunks. The default 32 KiB cut
         * raw streams by 15 %; 64 KiB streams as fast as 160 KiB did.
         * Not larger: libmicrohttpd zeroes the whole of it between two
         * requests on a connection, so every kept-alive connection holds
         * all of it resident (160 KiB cost 40 MB for 250 idle clients),
         * and until spawnd sees the headers libmicrohttpd may fill this
         * much of every connection with them. */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL},
    };
    size_t nops = 11;
    char *cert = NULL, *key = NULL;
    if (*s->cfg.tls_cert) {
        cert = read_file(s->cfg.tls_cert);
        key = read_file(s->cfg.tls_key);
        if (!cert || !key) {
            free(cert);
            free(key);
            return -1;
        }
        flags |= MHD_USE_TLS;
        ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
        ops[nops++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
    }
    ops[nops] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->mhd = MHD_start_daemon(flags, (uint16_t)s->cfg.listen_port, NULL, NULL, on_request, s,
                              MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (key) explicit_bzero(key, strlen(key));
    free(cert);
    free(key);
    if (!s->mhd) {
        log_error("msg=\"cannot listen\" address=%s:%u", s->cfg.listen_host, s->cfg.listen_port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    loop_watch_init(&s->mhd_w, on_mhd_fd);
    if (!di || loop_watch_add(s->loop, &s->mhd_w, di->epoll_fd, EPOLLIN) < 0) {
        log_error("msg=\"cannot watch the HTTP library's epoll descriptor\"");
        return -1;
    }
    unsigned port = pi ? pi->port : s->cfg.listen_port;
    bool v6 = strchr(host, ':') != NULL;
    fprintf(stderr, "listening on http%s://%s%s%s:%u\n", *s->cfg.tls_cert ? "s" : "", v6 ? "[" : "",
            host, v6 ? "]" : "", port);
    fflush(stderr);
    mhd_run(s);
    return 0;
}

/* --- shutdown ------------------------------------------------------------ */

static void on_stop_deadline(struct loop_timer *t)
{
    struct server *s = (struct server *)((char *)t - offsetof(struct server, stop_t));
    log_warn("msg=\"shutdown deadline passed\" requests=%u jobs=%u", s->nreqs, exec_running(s->ex));
    loop_stop(s->loop);
}

void server_check_stop(struct server *s)
{
    if (s->shutting_down && s->nreqs == 0 && exec_running(s->ex) == 0) loop_stop(s->loop);
}

void server_shutdown(struct server *s)
{
    if (s->shutting_down) return;
    s->shutting_down = true;
    log_info("msg=shutdown jobs=%u requests=%u", exec_running(s->ex), s->nreqs);
    exec_kill_all(s->ex);
    /* Past the kill grace the executor has sent SIGKILL; allow a little more
     * for the last results to be written, then stop regardless. */
    loop_timer_start(s->loop, &s->stop_t, s->cfg.kill_grace_ms + 2000);
    server_check_stop(s);
}

void server_stop(struct server *s)
{
    if (!s->mhd) { /* never started (or failed to) */
        jobs_free(s->jobs);
        s->jobs = NULL;
        return;
    }
    loop_timer_stop(s->loop, &s->stop_t);
    loop_timer_stop(s->loop, &s->mhd_t);
    /* MHD cannot stop with connections suspended: resume them all first. */
    for (struct http_req *r = s->reqs; r; r = r->next) {
        r->client_gone = true;
        run_release(r);
        jobs_release(r);
        http_resume(r);
    }
    MHD_run(s->mhd);
    loop_defer_cancel(s->loop, &s->mhd_kick); /* the resumes above asked for that run */
    loop_watch_del(s->loop, &s->mhd_w);
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    jobs_free(s->jobs);
    s->jobs = NULL;
}
