/* The HTTP layer through the real server: fixed endpoints, routing errors,
 * the checks made before a request is handled (Host, Content-Type, body
 * size), request ids, and that none of it leaks or unsettles the server. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static struct srv S;     /* defaults */
static struct srv SMALL; /* --max-body-bytes 1000 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every error: the status, a JSON body {"error":{"code","message",...}},
 * Content-Type application/json and a request id. */
static void expect_error_at(const char *file, int line, const char *what, struct resp *r,
                            long status, const char *code)
{
    int before = check_failures;
    CHECK_INT(r->status, status);
    const char *ct = resp_header(r, "Content-Type");
    CHECK(ct && strncmp(ct, "application/json", 16) == 0);
    CHECK(resp_header(r, "X-Request-Id") != NULL);
    json_object *o = r->body.data ? json_tokener_parse(r->body.data) : NULL;
    CHECK(o != NULL);
    if (o) {
        CHECK(json_object_is_type(jget(o, "error"), json_type_object));
        CHECK_STR(jstr(o, "error.code"), code);
        const char *msg = jstr(o, "error.message");
        CHECK(msg && *msg);
        json_object_put(o);
    }
    if (check_failures != before)
        fprintf(stderr, "  ^ at %s:%d (%s): status %ld body %.300s\n", file, line, what,
                r->status, r->body.data ? r->body.data : "(none)");
}
#define EXPECT_ERROR(what, r, status, code) expect_error_at(__FILE__, __LINE__, what, r, status, code)

static void test_healthz_and_version(void)
{
    struct resp r;
    http_get(&S, "/healthz", &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body.data, "{\"status\":\"ok\"}\n");
    CHECK_STR(resp_header(&r, "Content-Type"), "application/json");
    resp_free(&r);

    http_req(&S, "HEAD", "/healthz", NULL, NULL, 0, NULL, 0, &r);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body.len, 0);
    resp_free(&r);

    http_get(&S, "/healthz?verbose=1", &r); /* the query string is not part of the path */
    CHECK_INT(r.status, 200);
    resp_free(&r);

    http_get(&S, "/v1/version", &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(resp_header(&r, "Content-Type"), "application/json");
    json_object *o = resp_json(&r);
    const char *v = jstr(o, "version");
    CHECK(v && *v);
    int maj, min, pat;
    CHECK(v && sscanf(v, "%d.%d.%d", &maj, &min, &pat) == 3);
    CHECK(json_object_is_type(jget(o, "api"), json_type_int));
    CHECK_INT(jint(o, "api"), 1);
    json_object_put(o);
    resp_free(&r);
}

static void test_not_found(void)
{
    static const char *const paths[] = {"/", "/nope", "/v1", "/v1/", "/v1/exec/", "/v1/EXEC",
                                        "/healthz/x", "/v2/exec", "/v1/exec%2F", NULL};
    for (size_t i = 0; paths[i]; i++) {
        struct resp r;
        http_get(&S, paths[i], &r);
        EXPECT_ERROR(paths[i], &r, 404, "ERR_NOT_FOUND");
        resp_free(&r);
        http_post_json(&S, paths[i], "{\"file\":\"true\"}", &r);
        EXPECT_ERROR(paths[i], &r, 404, "ERR_NOT_FOUND");
        resp_free(&r);
    }
}

/* A percent-encoded NUL must not cut the path: POST /v1/exec%00/garbage and
 * GET /healthz%00.html are 404, not /v1/exec and /healthz. */
static void test_encoded_nul_path(void)
{
    static const char *const paths[] = {"/v1/exec%00", "/v1/exec%00/garbage", "/healthz%00.html", NULL};
    for (size_t i = 0; paths[i]; i++) {
        struct resp r;
        http_post_json(&S, paths[i], "{\"command\":\"true\"}", &r);
        CHECK(r.status == 404 || r.status == 400);
        if (r.status != 404 && r.status != 400) fprintf(stderr, "  ^ POST %s -> %ld\n", paths[i], r.status);
        resp_free(&r);
        http_get(&S, paths[i], &r);
        CHECK(r.status == 404 || r.status == 400);
        if (r.status != 404 && r.status != 400) fprintf(stderr, "  ^ GET %s -> %ld\n", paths[i], r.status);
        resp_free(&r);
    }
}

static void test_method_not_allowed(void)
{
    static const struct { const char *method, *path, *allow; } cases[] = {
        {"GET", "/v1/exec", "POST"},       {"GET", "/v1/execFile", "POST"},
        {"PUT", "/v1/spawn", "POST"},      {"DELETE", "/v1/pipeline", "POST"},
        {"POST", "/healthz", "GET"},       {"DELETE", "/v1/version", "GET"},
        {"PATCH", "/v1/exec", "POST"},     {"OPTIONS", "/v1/exec", "POST"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r;
        const char *body = strcmp(cases[i].method, "GET") ? "{}" : NULL;
        http_req(&S, cases[i].method, cases[i].path, body ? "application/json" : NULL, body,
                 body ? 2 : 0, NULL, 0, &r);
        EXPECT_ERROR(cases[i].path, &r, 405, "ERR_METHOD_NOT_ALLOWED");
        const char *allow = resp_header(&r, "Allow");
        CHECK_HAS(allow, cases[i].allow);
        if (!strcmp(cases[i].allow, "GET")) CHECK(allow && !strstr(allow, "POST"));
        else CHECK(allow && !strstr(allow, "GET"));
        resp_free(&r);
    }
    /* The method is checked before the content type. */
    struct resp r;
    http_req(&S, "PUT", "/v1/exec", "text/plain", "x", 1, NULL, 0, &r);
    EXPECT_ERROR("PUT text/plain", &r, 405, "ERR_METHOD_NOT_ALLOWED");
    resp_free(&r);
}

static void test_media_type(void)
{
    static const char *const refused[] = {
        NULL, /* no Content-Type at all */
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/jsonp",
        "application/json-seq",
        "application/x-ndjson",
        "text/json",
        "",
    };
    const char *body = "{\"file\":\"true\"}";
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        for (int ep = 0; ep < 2; ep++) {
            struct resp r;
            const char *path = ep ? "/v1/spawn" : "/v1/execFile";
            const char *b = ep ? "{\"command\":\"true\"}" : body;
            if (refused[i] && !*refused[i]) {
                const char *hdr[] = {"Content-Type;", NULL}; /* present but empty */
                http_req(&S, "POST", path, NULL, b, strlen(b), hdr, 0, &r);
            } else {
                http_req(&S, "POST", path, refused[i], b, strlen(b), NULL, 0, &r);
            }
            EXPECT_ERROR(refused[i] ? refused[i] : "(none)", &r, 415, "ERR_UNSUPPORTED_MEDIA_TYPE");
            resp_free(&r);
        }
    }
    /* Checked before the body is parsed: not JSON at all is still a 415. */
    struct resp r;
    http_req(&S, "POST", "/v1/exec", "text/plain", "hello", 5, NULL, 0, &r);
    EXPECT_ERROR("text/plain non-JSON", &r, 415, "ERR_UNSUPPORTED_MEDIA_TYPE");
    resp_free(&r);

    static const char *const accepted[] = {
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        http_req(&S, "POST", "/v1/execFile", accepted[i], body, strlen(body), NULL, 0, &r);
        CHECK_INT(r.status, 200);
        if (r.status != 200) fprintf(stderr, "  ^ Content-Type %s: %s\n", accepted[i], r.body.data);
        resp_free(&r);
    }
}

/* --- request bodies and --max-body-bytes ------------------------------------ */

/* {"file":"true","stdin":"xxx..."} of exactly len bytes. */
static char *body_of_len(size_t len)
{
    static const char head[] = "{\"file\":\"true\",\"stdin\":\"", tail[] = "\"}";
    size_t fixed = strlen(head) + strlen(tail);
    char *b = malloc(len + 1);
    memcpy(b, head, strlen(head));
    memset(b + strlen(head), 'x', len - fixed);
    memcpy(b + len - strlen(tail), tail, strlen(tail));
    b[len] = 0;
    return b;
}

struct upload {
    const char *data;
    size_t len, off, chunk;
};

static size_t on_read(char *out, size_t sz, size_t nm, void *arg)
{
    struct upload *u = arg;
    size_t n = u->len - u->off;
    if (n > sz * nm) n = sz * nm;
    if (n > u->chunk) n = u->chunk;
    memcpy(out, u->data + u->off, n);
    u->off += n;
    return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *arg)
{
    return buf_append(arg, p, sz * nm) == 0 ? sz * nm : 0;
}

/* POST with Transfer-Encoding: chunked, chunks of at most chunk bytes. */
static long post_chunked(const struct srv *s, const char *path, const char *data, size_t len,
                         size_t chunk, struct buf *body, double *secs)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Transfer-Encoding: chunked");
    h = curl_slist_append(h, "Expect:");
    struct upload u = {data, len, 0, chunk};
    buf_init(body, 1 << 20);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    double t0 = now_s();
    CURLcode rc = curl_easy_perform(c);
    *secs = now_s() - t0;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) fprintf(stderr, "chunked POST: curl: %s\n", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static void check_413_body(const struct buf *b)
{
    json_object *o = b->data ? json_tokener_parse(b->data) : NULL;
    CHECK(o != NULL);
    CHECK_STR(jstr(o, "error.code"), "ERR_PAYLOAD_TOO_LARGE");
    CHECK(jstr(o, "error.message") && *jstr(o, "error.message"));
    json_object_put(o);
}

static void test_body_limit(void)
{
    int fds = srv_fd_count(&SMALL);
    struct resp r;

    /* Exactly the limit is accepted, one byte more is not. */
    char *b = body_of_len(1000);
    http_post_json(&SMALL, "/v1/execFile", b, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    free(b);
    b = body_of_len(1001);
    http_post_json(&SMALL, "/v1/execFile", b, &r);
    EXPECT_ERROR("1001 bytes", &r, 413, "ERR_PAYLOAD_TOO_LARGE");
    resp_free(&r);
    free(b);

    /* A large body with Content-Length: refused without reading it all. */
    b = body_of_len(8 << 20);
    http_post_json(&SMALL, "/v1/exec", b, &r);
    EXPECT_ERROR("8 MiB", &r, 413, "ERR_PAYLOAD_TOO_LARGE");
    CHECK(r.total_s < 5);
    resp_free(&r);

    /* Chunked: no Content-Length, the limit is found while reading. */
    struct buf out;
    double secs;
    char *small = body_of_len(900);
    long st = post_chunked(&SMALL, "/v1/execFile", small, 900, 100, &out, &secs);
    CHECK_INT(st, 200);
    if (st != 200) fprintf(stderr, "  ^ chunked 900: %s\n", out.data);
    buf_free(&out);
    free(small);

    small = body_of_len(1000);
    st = post_chunked(&SMALL, "/v1/execFile", small, 1000, 333, &out, &secs);
    CHECK_INT(st, 200);
    buf_free(&out);
    free(small);

    small = body_of_len(1001);
    st = post_chunked(&SMALL, "/v1/execFile", small, 1001, 333, &out, &secs);
    CHECK_INT(st, 413);
    check_413_body(&out);
    buf_free(&out);
    free(small);

    st = post_chunked(&SMALL, "/v1/exec", b, 5000, 700, &out, &secs);
    CHECK_INT(st, 413);
    check_413_body(&out);
    buf_free(&out);

    st = post_chunked(&SMALL, "/v1/spawn", b, 8 << 20, 65536, &out, &secs);
    CHECK_INT(st, 413);
    check_413_body(&out);
    CHECK(secs < 5);
    buf_free(&out);
    free(b);

    /* The default limit is 1 MiB. */
    b = body_of_len(1048576);
    http_post_json(&S, "/v1/execFile", b, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    free(b);
    b = body_of_len(1048577);
    http_post_json(&S, "/v1/execFile", b, &r);
    EXPECT_ERROR("1 MiB + 1", &r, 413, "ERR_PAYLOAD_TOO_LARGE");
    resp_free(&r);
    free(b);

    http_get(&SMALL, "/healthz", &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    CHECK_INT(srv_descendants(&SMALL), 0);
    usleep(100000);
    CHECK_INT(srv_fd_count(&SMALL), fds);
}

/* --- one connection, raw bytes ----------------------------------------------- */

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* An early answer (413, 415) must not leave the unread body to be taken for
 * the next request on a kept-alive connection. */
static void test_keepalive_after_early_answer(void)
{
    char *big = body_of_len(3000);
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "POST /v1/execFile HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: 3000\r\n\r\n%s"
                     "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                     big);
    char *got = srv_raw_exchange(&SMALL, req, (size_t)n, "{\"status\":\"ok\"}", 3000);
    CHECK_HAS(got, "HTTP/1.1 413");
    /* Either the connection was closed after the 413, or the next request
     * was answered as itself; never a response to body bytes. */
    CHECK_INT(count_of(got, "HTTP/1.1 "), strstr(got, "{\"status\":\"ok\"}") ? 2 : 1);
    CHECK(!strstr(got, "HTTP/1.1 400"));
    free(got);

    n = snprintf(req, sizeof req,
                 "POST /v1/execFile HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: text/plain\r\nContent-Length: 500\r\n\r\n%.500s"
                 "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                 big);
    got = srv_raw_exchange(&SMALL, req, (size_t)n, "{\"status\":\"ok\"}", 3000);
    CHECK_HAS(got, "HTTP/1.1 415");
    CHECK_INT(count_of(got, "HTTP/1.1 "), strstr(got, "{\"status\":\"ok\"}") ? 2 : 1);
    CHECK(!strstr(got, "HTTP/1.1 400"));
    free(got);
    free(big);

    /* Two requests on one connection, both answered in order. */
    const char *two = "GET /v1/version HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    got = srv_raw_exchange(&S, two, strlen(two), "{\"status\":\"ok\"}", 3000);
    CHECK_INT(count_of(got, "HTTP/1.1 200"), 2);
    CHECK(strstr(got, "\"api\":1") && strstr(got, "\"api\":1") < strstr(got, "\"status\""));
    free(got);

    /* HTTP/1.0 without Host is not a browser: allowed. */
    const char *old = "GET /healthz HTTP/1.0\r\n\r\n";
    got = srv_raw_exchange(&S, old, strlen(old), "{\"status\":\"ok\"}", 3000);
    CHECK_HAS(got, " 200 ");
    CHECK_HAS(got, "{\"status\":\"ok\"}");
    free(got);
}

/* --- Host ---------------------------------------------------------------- */

static void test_host(void)
{
    static const char *const allowed[] = {
        "localhost",  "localhost:1234", "LocalHost:80", "127.0.0.1",
        "127.0.0.1:8080", "[::1]", "[::1]:8080",
    };
    static const char *const refused[] = {
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "localhost:80@evil.example",
        "localhost:8o",
        "[::1]x",
        "[::1]:80x",
        "evil.example:127.0.0.1",
        "[::2]:8080",
        "10.0.0.1:8080",
    };
    char h[128];
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        snprintf(h, sizeof h, "Host: %s", allowed[i]);
        const char *hdr[] = {h, NULL};
        struct resp r;
        http_req(&S, "GET", "/healthz", NULL, NULL, 0, hdr, 0, &r);
        CHECK_INT(r.status, 200);
        if (r.status != 200) fprintf(stderr, "  ^ %s\n", h);
        resp_free(&r);
        http_req(&S, "POST", "/v1/execFile", "application/json", "{\"file\":\"true\"}", 15, hdr, 0, &r);
        CHECK_INT(r.status, 200);
        if (r.status != 200) fprintf(stderr, "  ^ %s\n", h);
        resp_free(&r);
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(h, sizeof h, "Host: %s", refused[i]);
        const char *hdr[] = {h, NULL};
        struct resp r;
        http_req(&S, "POST", "/v1/exec", "application/json", "{\"command\":\"touch /tmp/spawnd-it-http-evil\"}",
                 45, hdr, 0, &r);
        EXPECT_ERROR(h, &r, 403, "ERR_FORBIDDEN");
        resp_free(&r);
        /* The Host check comes before routing. */
        http_req(&S, "GET", "/no-such-path", NULL, NULL, 0, hdr, 0, &r);
        EXPECT_ERROR(h, &r, 403, "ERR_FORBIDDEN");
        resp_free(&r);
    }
    CHECK(access("/tmp/spawnd-it-http-evil", F_OK) != 0);
}

/* --- request ids ------------------------------------------------------------ */

static bool is_hex16(const char *s)
{
    if (!s || strlen(s) != 16) return false;
    for (; *s; s++)
        if (!strchr("0123456789abcdef", *s)) return false;
    return true;
}

static void test_request_id(void)
{
    struct resp r;
    const char *mine[] = {"X-Request-Id: abc-123_x.y:z", NULL};
    http_req(&S, "GET", "/healthz", NULL, NULL, 0, mine, 0, &r);
    CHECK_STR(resp_header(&r, "X-Request-Id"), "abc-123_x.y:z");
    resp_free(&r);
    /* on errors and on streams too */
    http_req(&S, "GET", "/nope", NULL, NULL, 0, mine, 0, &r);
    CHECK_STR(resp_header(&r, "X-Request-Id"), "abc-123_x.y:z");
    resp_free(&r);
    http_req(&S, "POST", "/v1/spawn", "application/json", "{\"command\":\"true\"}", 18, mine, 0, &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(resp_header(&r, "X-Request-Id"), "abc-123_x.y:z");
    resp_free(&r);
    /* the id names the request in the log */
    CHECK(srv_log_has(&S, "id=abc-123_x.y:z"));

    char id39[64] = "X-Request-Id: ";
    memset(id39 + strlen(id39), 'a', 39);
    const char *h39[] = {id39, NULL};
    http_req(&S, "GET", "/healthz", NULL, NULL, 0, h39, 0, &r);
    CHECK_STR(resp_header(&r, "X-Request-Id"), id39 + 14);
    resp_free(&r);

    /* Generated when absent or unacceptable: 16 hex digits, new each time. */
    char first[64] = "";
    static const char *const bad[] = {NULL, "X-Request-Id: has space", "X-Request-Id: a\"b",
                                      "X-Request-Id: <script>",
                                      "X-Request-Id: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 40 */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *hdr[] = {bad[i], NULL};
        http_req(&S, "GET", "/healthz", NULL, NULL, 0, bad[i] ? hdr : NULL, 0, &r);
        const char *id = resp_header(&r, "X-Request-Id");
        CHECK(is_hex16(id));
        if (!is_hex16(id)) fprintf(stderr, "  ^ sent %s, got id %s\n", bad[i] ? bad[i] : "none", id ? id : "(none)");
        if (id && *first) CHECK(strcmp(id, first) != 0);
        if (id && !*first) snprintf(first, sizeof first, "%s", id);
        resp_free(&r);
    }
    http_post_json(&S, "/v1/execFile", "{\"file\":\"true\"}", &r);
    CHECK(is_hex16(resp_header(&r, "X-Request-Id")));
    resp_free(&r);
}

/* --- the error body, everywhere ---------------------------------------------- */

static void test_error_bodies(void)
{
    static const struct { const char *path, *body; long status; const char *code; } cases[] = {
        {"/v1/exec", "{", 400, "ERR_INVALID_JSON"},
        {"/v1/exec", "", 400, "ERR_INVALID_JSON"},
        {"/v1/exec", "[1]", 400, "ERR_INVALID_ARG_TYPE"},
        {"/v1/exec", "{\"command\":\"true\",\"shell\":false}", 400, "ERR_INVALID_ARG_VALUE"},
        {"/v1/spawn", "{\"command\":\"true\",\"max_buffer\":5}", 400, "ERR_INVALID_ARG_VALUE"},
        {"/v1/pipeline", "{\"steps\":[{\"command\":\"true\"}]}", 400, "ERR_INVALID_ARG_VALUE"},
        {"/v1/spawn?bogus=1", "{\"command\":\"true\"}", 400, "ERR_INVALID_ARG_VALUE"},
        {"/v1/execFile", "{\"file\":\"/nonexistent/prog\"}", 422, "ENOENT"},
        {"/v1/spawn", "{\"command\":\"/etc/passwd\"}", 422, "EACCES"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r;
        http_req(&S, "POST", cases[i].path, "application/json", cases[i].body,
                 strlen(cases[i].body), NULL, 0, &r);
        EXPECT_ERROR(cases[i].body, &r, cases[i].status, cases[i].code);
        resp_free(&r);
    }
}

int main(void)
{
    const char *small_args[] = {"--max-body-bytes", "1000", NULL};
    srv_start(&S, NULL);
    srv_start(&SMALL, small_args);
    int fds = srv_fd_count(&S);
    unlink("/tmp/spawnd-it-http-evil");

    test_healthz_and_version();
    test_not_found();
    test_encoded_nul_path();
    test_method_not_allowed();
    test_media_type();
    test_body_limit();
    test_keepalive_after_early_answer();
    test_host();
    test_request_id();
    test_error_bodies();

    /* After all of it: healthy, nothing left open or running. */
    struct resp r;
    http_get(&S, "/healthz", &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    usleep(100000);
    CHECK_INT(srv_fd_count(&S), fds);
    CHECK_INT(srv_descendants(&S), 0);
    CHECK_INT(srv_zombies(&S), 0);
    CHECK_INT(srv_stop(&S, 5000), 0);
    CHECK_INT(srv_stop(&SMALL, 5000), 0);
    return check_status();
}
