/* Hostile and broken clients against the real server: slowloris headers and
 * bodies against the request deadline, oversized headers, request-smuggling
 * shapes, connection limits, --max-jobs under a burst, running out of
 * descriptors, and children or clients that fail in the middle. After each
 * case spawnd answers /healthz, holds no more descriptors than before, and
 * leaves no zombie. */
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "sec_kit.h"

static char TMP[128];

/* --- slowloris: many trickling connections, a probe that must not notice ------- */

#define NSLOW 200

struct slow {
    int port;
    int fds[NSLOW];
    volatile int stop;
    int sent_lines;
};

static void *slow_sender(void *arg)
{
    struct slow *s = arg;
    while (!s->stop) {
        for (int i = 0; i < 20 && !s->stop; i++)
            sleep_ms(100);
        if (s->stop) break;
        char line[64];
        int n = snprintf(line, sizeof line, "X-Slow-%d: x\r\n", s->sent_lines++);
        for (int i = 0; i < NSLOW; i++)
            if (s->fds[i] >= 0) raw_send(s->fds[i], line, (size_t)n);
    }
    return NULL;
}

static int open_slowloris(int port, int *fds, int n)
{
    static const char head[] = "POST /v1/exec HTTP/1.1\r\nHost: localhost\r\n";
    int open_ = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = raw_connect(port);
        if (fds[i] >= 0 && raw_send(fds[i], head, sizeof head - 1) == 0) open_++;
    }
    return open_;
}

static void test_slowloris(void)
{
    struct srv S;
    srv_start(&S, NULL); /* the default request deadline, 10 s */
    int fds = srv_fd_count(&S);
    struct slow sl = {.port = S.port};
    CHECK_INT(open_slowloris(S.port, sl.fds, NSLOW), NSLOW);
    pthread_t t;
    pthread_create(&t, NULL, slow_sender, &sl);

    double t0 = now_s(), worst = 0;
    int probes = 0, ok = 0;
    while (now_s() - t0 < 4.3) {
        struct resp r;
        double p0 = now_s();
        if (probes % 2)
            post_h(&S, "/v1/execFile", "{\"file\":\"true\"}", NULL, &r);
        else
            http_req(&S, "GET", "/healthz", NULL, NULL, 0, NULL, 5000, &r);
        double dt = now_s() - p0;
        if (dt > worst) worst = dt;
        ok += r.status == 200;
        probes++;
        resp_free(&r);
        sleep_ms(100);
    }
    sl.stop = 1;
    pthread_join(t, NULL);
    CHECK_INT(ok, probes);
    CHECK(probes >= 20);
    CHECK(sl.sent_lines >= 2);
    if (worst >= 1.0) fprintf(stderr, "  slowest probe under slowloris: %.3f s\n", worst);
    CHECK(worst < 1.0);
    /* They are all still open (10 s deadline), held but harmless. */
    int still = 0;
    for (int i = 0; i < NSLOW; i++) {
        struct pollfd p = {sl.fds[i], POLLIN, 0};
        still += poll(&p, 1, 0) == 0;
    }
    CHECK_INT(still, NSLOW);
    for (int i = 0; i < NSLOW; i++)
        close(sl.fds[i]);
    STILL_SOUND(&S, fds);
    CHECK_INT(srv_stop(&S, 5000), 0);
}

static char *repeat(const char *s, int n)
{
    size_t l = strlen(s);
    char *out = malloc(l * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(out + l * (size_t)i, s, l);
    out[l * (size_t)n] = 0;
    return out;
}

/* --- the request deadline ---------------------------------------------------------- */

/* One connection that sends head at once, then drip one byte at a time
 * every drip_ms, and records when the server closed it. */
struct trickle {
    const char *what;
    const char *head, *drip;
    int drip_ms;
    int fd;
    size_t dripped;
    double last, closed_at; /* closed_at < 0: still open */
    struct buf got;
};

static void trickle_start(struct trickle *t, int port, double t0)
{
    t->fd = raw_connect(port);
    t->closed_at = -1;
    t->last = t0;
    buf_init(&t->got, 1 << 20);
    buf_append(&t->got, "", 0);
    if (t->fd < 0 || raw_send(t->fd, t->head, strlen(t->head)) < 0) t->closed_at = 0;
}

/* Runs every trickle until all are closed or secs passed. */
static void trickle_run(struct trickle *ts, int n, double t0, double secs)
{
    for (;;) {
        double now = now_s();
        int open_ = 0;
        for (int i = 0; i < n; i++) {
            struct trickle *t = &ts[i];
            if (t->closed_at >= 0) continue;
            open_++;
            char tmp[4096];
            ssize_t k;
            while ((k = recv(t->fd, tmp, sizeof tmp, MSG_DONTWAIT)) > 0)
                buf_append(&t->got, tmp, (size_t)k);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                t->closed_at = now - t0;
                continue;
            }
            if (t->drip && t->drip[t->dripped] && (now - t->last) * 1000 >= t->drip_ms) {
                if (send(t->fd, t->drip + t->dripped, 1, MSG_NOSIGNAL) < 0) {
                    t->closed_at = now - t0;
                    continue;
                }
                t->dripped++;
                t->last = now;
            }
        }
        if (!open_ || now - t0 >= secs) break;
        sleep_ms(10);
    }
}

static void test_request_deadline(void)
{
    struct srv D;
    const char *args[] = {"--request-timeout-ms", "1500", NULL};
    srv_start(&D, args);
    int fds = srv_fd_count(&D);

    static char body1000[1001];
    memset(body1000, ' ', 1000);
    char *lines = repeat("X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 8);
    /* The last two once held a connection for as long as bytes kept coming:
     * a route without a JSON body (GET /healthz needs no token) stopped the
     * deadline when its headers were in. Every request body is now under it
     * but a job's streamed stdin. */
    struct trickle ts[] = {
        {.what = "headers, a line every 500 ms",
         .head = "POST /v1/exec HTTP/1.1\r\nHost: localhost\r\n", .drip = lines, .drip_ms = 8},
        {.what = "request line, a byte every 200 ms", .head = "GET /heal",
         .drip = "thz HTTP/1.1\r\nHost: localhost\r\n\r\n", .drip_ms = 200},
        {.what = "JSON body (Content-Length 1000), a byte every 200 ms",
         .head = "POST /v1/execFile HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                 "application/json\r\nContent-Length: 1000\r\n\r\n",
         .drip = body1000, .drip_ms = 200},
        {.what = "chunked JSON body, a byte every 200 ms",
         .head = "POST /v1/exec HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                 "application/json\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n",
         .drip = body1000, .drip_ms = 200},
        {.what = "nothing at all", .head = ""},
        {.what = "idle after a complete request (keep-alive)",
         .head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"},
        {.what = "GET /healthz with a trickled body",
         .head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n",
         .drip = body1000, .drip_ms = 200},
        {.what = "GET /v1/jobs with a trickled chunked body",
         .head = "GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "400\r\n",
         .drip = body1000, .drip_ms = 200},
    };
    int nts = (int)(sizeof ts / sizeof ts[0]);
    /* Also 200 slowloris connections at once. */
    int *sl = calloc(NSLOW, sizeof *sl);
    double t0 = now_s();
    CHECK_INT(open_slowloris(D.port, sl, NSLOW), NSLOW);
    for (int i = 0; i < nts; i++)
        trickle_start(&ts[i], D.port, t0);
    trickle_run(ts, nts, t0, 3.2);

    for (int i = 0; i < nts; i++) {
        struct trickle *t = &ts[i];
        bool in_time = t->closed_at >= 1.3 && t->closed_at <= 2.6;
        if (!in_time)
            fprintf(stderr, "  %s: %s %.2f s (deadline 1.5 s)\n", t->what,
                    t->closed_at < 0 ? "still open at" : "closed at",
                    t->closed_at < 0 ? now_s() - t0 : t->closed_at);
        /* Activity does not extend the deadline; nothing was answered
         * (the deadline shuts the socket) and nothing ran. */
        CHECK(in_time);
        if (strstr(t->what, "keep-alive"))
            CHECK_HAS(t->got.data, "HTTP/1.1 200");
        else
            CHECK(!strstr(t->got.data, "200 OK"));
        close(t->fd);
        buf_free(&t->got);
    }
    free(lines);
    int slow_closed = 0;
    for (int i = 0; i < NSLOW; i++) {
        int closed = 0;
        char *got = raw_read(sl[i], NULL, 10, &closed);
        slow_closed += closed;
        free(got);
        close(sl[i]);
    }
    free(sl);
    CHECK_INT(slow_closed, NSLOW);
    CHECK(srv_log_has(&D, "msg=request_deadline"));
    STILL_SOUND(&D, fds);
    CHECK_INT(srv_stop(&D, 5000), 0);
}

/* --- oversized requests and smuggling shapes ------------------------------------ */

/* Sends req; expects an error status in [lo, hi] and the connection closed
 * (within 3 s). Returns the bytes received (caller frees). */
static char *expect_refused_at(int line, int port, const char *req, int lo, int hi)
{
    int closed = 0;
    double t0 = now_s();
    char *got = raw_exchange(port, req, strlen(req), NULL, 3000, &closed);
    int st = raw_status(got);
    int before = check_failures;
    CHECK(st >= lo && st <= hi);
    CHECK(closed);
    CHECK(now_s() - t0 < 3.0);
    if (check_failures != before)
        fprintf(stderr, "  ^ line %d: status %d closed %d: %.300s\n", line, st, closed, got);
    return got;
}
#define EXPECT_REFUSED(port, req, lo, hi) free(expect_refused_at(__LINE__, port, req, lo, hi))

static void expect_bad_framing_at(int line, int port, const char *req)
{
    char *got = expect_refused_at(line, port, req, 400, 400);
    if (!strstr(got, "\"code\":\"ERR_BAD_REQUEST\"") && !strstr(got, "Content-Length"))
        fprintf(stderr, "  line %d: a 400 without the framing error: %.300s\n", line, got);
    CHECK(!strstr(got, "\"exit_code\""));
    free(got);
}
#define EXPECT_BAD_FRAMING(port, req) expect_bad_framing_at(__LINE__, port, req)

static void test_big_and_smuggled(void)
{
    struct srv H;
    srv_start(&H, NULL);
    int fds = srv_fd_count(&H);
    char marker[256], req[8192];
    snprintf(marker, sizeof marker, "%s/smuggled", TMP);

    /* Headers past libmicrohttpd's connection memory (32 KiB): 431, closed. */
    char *big = repeat("a", 70 * 1024);
    char *r1 = malloc(80 * 1024);
    snprintf(r1, 80 * 1024, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: %s\r\n\r\n", big);
    EXPECT_REFUSED(H.port, r1, 400, 499);
    char *many = repeat("X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 3000);
    snprintf(r1, 80 * 1024, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n%s\r\n", many);
    EXPECT_REFUSED(H.port, r1, 400, 499);
    snprintf(r1, 80 * 1024, "GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n", big);
    EXPECT_REFUSED(H.port, r1, 400, 499);
    /* A big Authorization header is no different. */
    snprintf(r1, 80 * 1024, "GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n", big);
    EXPECT_REFUSED(H.port, r1, 400, 499);
    /* Just under spawnd's 32 KiB, with a streamed answer: libmicrohttpd's
     * memory per connection holds the headers and the stream's chunks. */
    char *fit = repeat("a", 31 * 1024);
    const char *seq = "{\"command\":\"seq\",\"args\":[\"1\",\"50000\"]}";
    snprintf(r1, 80 * 1024,
             "POST /v1/spawn?format=raw HTTP/1.1\r\nHost: localhost\r\nX-Big: %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             fit, strlen(seq), seq);
    char *streamed = raw_exchange(H.port, r1, strlen(r1), "\n50000\n", 10000, NULL);
    CHECK_INT(raw_status(streamed), 200);
    CHECK(strstr(streamed, "\n49999\n50000\n") != NULL);
    free(streamed);
    free(fit);
    free(big);
    free(many);
    free(r1);

    const char *H0 = "POST /v1/execFile HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n";
    char body[512];
    snprintf(body, sizeof body, "{\"file\":\"touch\",\"args\":[\"%s\"]}", marker);
    size_t bl = strlen(body);
    /* Content-Length and Transfer-Encoding together, in both orders. */
    snprintf(req, sizeof req, "%sContent-Length: %zu\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
             H0, bl, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    snprintf(req, sizeof req, "%sTransfer-Encoding: chunked\r\nContent-Length: %zu\r\n\r\n%s", H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    /* Two Content-Lengths, equal or not; a list in one. */
    snprintf(req, sizeof req, "%sContent-Length: %zu\r\nContent-Length: %zu\r\n\r\n%s", H0, bl, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    snprintf(req, sizeof req, "%sContent-Length: %zu\r\nContent-Length: 0\r\n\r\n%s", H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    snprintf(req, sizeof req, "%sContent-Length: %zu, %zu\r\n\r\n%s", H0, bl, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    snprintf(req, sizeof req, "%sContent-Length: +%zu\r\n\r\n%s", H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    /* Codings other than chunked, alone, listed, or twice. */
    snprintf(req, sizeof req, "%sTransfer-Encoding: gzip\r\n\r\n%s", H0, body);
    EXPECT_REFUSED(H.port, req, 400, 501);
    snprintf(req, sizeof req, "%sTransfer-Encoding: gzip, chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n", H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    snprintf(req, sizeof req, "%sTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
             H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    snprintf(req, sizeof req, "%sTransfer-Encoding: identity\r\nContent-Length: %zu\r\n\r\n%s", H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    /* A smuggled second request inside the body is never run. */
    char inner[1024];
    snprintf(inner, sizeof inner, "%sContent-Length: %zu\r\n\r\n%s", H0, bl, body);
    snprintf(req, sizeof req, "%sContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s", H0, inner);
    char *got = expect_refused_at(__LINE__, H.port, req, 400, 400);
    CHECK_INT((int)(strstr(got, "HTTP/1.1") == got), 1);
    CHECK(!strstr(got + 1, "HTTP/1.1 "));
    free(got);
    /* A chunk size that overflows. */
    snprintf(req, sizeof req, "%sTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff%zx\r\n%s\r\n0\r\n\r\n", H0, bl, body);
    EXPECT_REFUSED(H.port, req, 400, 413);

    sleep_ms(200);
    CHECK(!file_exists(marker));

    /* Whitespace between a field name and its colon is a 400 (RFC 9112
     * §5.1): a proxy that tolerates it would read a different framing. */
    snprintf(req, sizeof req, "%sTransfer-Encoding : chunked\r\nContent-Length: %zu\r\n\r\n%s", H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    snprintf(req, sizeof req, "%sContent-Length : 3\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n", H0, bl, body);
    EXPECT_BAD_FRAMING(H.port, req);
    /* Host: exactly one in HTTP/1.1 (RFC 9112 §3.2); HTTP/1.0 may omit it. */
    const char *two_hosts = "GET /v1/version HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n";
    EXPECT_REFUSED(H.port, two_hosts, 400, 400);
    EXPECT_REFUSED(H.port, "GET /v1/version HTTP/1.1\r\n\r\n", 400, 400);
    const char *old_http = "GET /v1/version HTTP/1.0\r\n\r\n";
    got = raw_exchange(H.port, old_http, strlen(old_http), "\"api\"", 2000, NULL);
    CHECK_INT(raw_status(got), 200);
    free(got);
    sleep_ms(200);
    CHECK(!file_exists(marker));

    /* BUG (libmicrohttpd's lenient parsing): a folded (obs-fold) header line
     * must be refused with 400 or unfolded (RFC 9112 §5.2); a folded
     * Transfer-Encoding is instead ignored and the body read by
     * Content-Length, where a proxy that unfolds reads it as chunked: a
     * request-smuggling desync. Expected: 400. */
    snprintf(req, sizeof req, "%sContent-Length: %zu\r\nTransfer-Encoding:\r\n chunked\r\n\r\n%s", H0, bl, body);
    got = raw_exchange(H.port, req, strlen(req), "\r\n\r\n", 2000, NULL);
    KNOWN_BUG(raw_status(got) == 400, "obs-folded Transfer-Encoding accepted");
    free(got);
    unlink(marker); /* the known bug above ran it */

    STILL_SOUND(&H, fds);
    CHECK_INT(srv_stop(&H, 5000), 0);
}

/* --- connection limits ------------------------------------------------------------ */

#define HEALTHZ "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"

static void test_connection_limits(void)
{
    struct srv C;
    const char *args[] = {"--max-connections-per-ip", "5", NULL};
    srv_start(&C, args);
    int fds = srv_fd_count(&C);
    int held[5];
    for (int i = 0; i < 5; i++)
        held[i] = raw_connect(C.port);
    sleep_ms(100);
    /* The sixth from the same address is closed without an answer. */
    int closed = 0;
    char *got = raw_exchange(C.port, HEALTHZ, strlen(HEALTHZ), "ok", 2000, &closed);
    CHECK(closed);
    CHECK(!strstr(got, "200 OK"));
    free(got);
    for (int i = 0; i < 5; i++)
        if (held[i] >= 0) close(held[i]);
    CHECK_INT(srv_fd_settle(&C, fds, 2000), fds);
    STILL_SOUND(&C, fds);
    CHECK_INT(srv_stop(&C, 5000), 0);

    /* Past --max-connections a connection waits (in the listen backlog)
     * until one closes. */
    const char *args2[] = {"--max-connections", "2", NULL};
    srv_start(&C, args2);
    fds = srv_fd_count(&C);
    int h2[2];
    for (int i = 0; i < 2; i++)
        h2[i] = raw_connect(C.port);
    sleep_ms(100);
    int third = raw_connect(C.port);
    raw_send(third, HEALTHZ, strlen(HEALTHZ));
    got = raw_read(third, "ok", 500, &closed);
    CHECK(!strstr(got, "200 OK"));
    free(got);
    /* When the connections that held spawnd at the limit close in one go,
     * the waiting one is served at once. (libmicrohttpd puts its listening
     * socket back only on its next run: spawnd once never made one, and
     * stopped accepting for good.) */
    for (int i = 0; i < 2; i++)
        if (h2[i] >= 0) close(h2[i]);
    got = raw_read(third, "{\"status\":\"ok\"}", 2000, &closed);
    bool served = strstr(got, "HTTP/1.1 200 OK") != NULL;
    CHECK(served);
    free(got);
    close(third);
    if (served) STILL_SOUND(&C, fds);
    CHECK_INT(srv_stop(&C, 5000), 0);
}

/* --- capacity: --max-jobs, and running out of descriptors ---------------------------- */

struct burst {
    const struct srv *s;
    pthread_barrier_t *go;
    struct resp r;
};

static void *burst_one(void *arg)
{
    struct burst *b = arg;
    pthread_barrier_wait(b->go);
    http_req(b->s, "POST", "/v1/exec", "application/json", "{\"command\":\"sleep 2\"}",
             strlen("{\"command\":\"sleep 2\"}"), NULL,
             10000, &b->r);
    return NULL;
}

static void test_max_jobs(void)
{
    struct srv M;
    const char *args[] = {"--max-jobs", "4", NULL};
    srv_start(&M, args);
    int fds = srv_fd_count(&M);
    struct burst b[10];
    pthread_t t[10];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 10);
    double t0 = now_s();
    for (int i = 0; i < 10; i++) {
        b[i] = (struct burst){.s = &M, .go = &go};
        pthread_create(&t[i], NULL, burst_one, &b[i]);
    }
    int n200 = 0, n429 = 0;
    for (int i = 0; i < 10; i++) {
        pthread_join(t[i], NULL);
        if (b[i].r.status == 200) n200++;
        if (b[i].r.status == 429) {
            n429++;
            EXPECT_ERROR(&b[i].r, 429, "ERR_TOO_MANY_JOBS");
            CHECK_STR(resp_header(&b[i].r, "Retry-After"), "1");
            CHECK(b[i].r.total_s < 1.0); /* refused at once, not queued */
        }
        resp_free(&b[i].r);
    }
    pthread_barrier_destroy(&go);
    CHECK_INT(n200, 4);
    CHECK_INT(n429, 6);
    CHECK(now_s() - t0 < 5.0);
    STILL_SOUND(&M, fds);
    CHECK_INT(srv_stop(&M, 5000), 0);
}

static size_t multi_sink(char *p, size_t sz, size_t n, void *arg)
{
    buf_append(arg, p, sz * n);
    return sz * n;
}

static void test_out_of_descriptors(void)
{
    struct srv F;
    srv_start(&F, NULL);
    int fds = srv_fd_count(&F);
    struct rlimit old, low;
    if (prlimit(F.pid, RLIMIT_NOFILE, NULL, &old) < 0) {
        perror("prlimit");
        check_failures++;
        return;
    }
    low = old;
    low.rlim_cur = 64; /* the soft limit only: raising it back needs no privilege */
    CHECK_INT(prlimit(F.pid, RLIMIT_NOFILE, &low, NULL), 0);

    enum { N = 60 };
    CURLM *m = curl_multi_init();
    CURL *h[N];
    struct buf bodies[N];
    struct curl_slist *ct = curl_slist_append(NULL, "Content-Type: application/json");
    char url[2][128];
    snprintf(url[0], sizeof url[0], "%s/v1/exec", F.url);
    snprintf(url[1], sizeof url[1], "%s/healthz", F.url);
    for (int i = 0; i < N; i++) {
        buf_init(&bodies[i], 1 << 20);
        h[i] = curl_easy_init();
        bool health = i % 4 == 3;
        curl_easy_setopt(h[i], CURLOPT_URL, url[health]);
        if (!health) {
            curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, "{\"command\":\"sleep 0.3; echo hi\"}");
            curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, ct);
        }
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, multi_sink);
        curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &bodies[i]);
        curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 15000L);
        curl_easy_setopt(h[i], CURLOPT_FORBID_REUSE, 1L);
        curl_multi_add_handle(m, h[i]);
    }
    int running = 1;
    double t0 = now_s();
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    int ok = 0, busy = 0, conn_err = 0, other = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        long st = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
        int i = 0;
        while (h[i] != msg->easy_handle)
            i++;
        if (msg->data.result != CURLE_OK) {
            conn_err++;
        } else if (st == 200) {
            ok++;
        } else if (st == 503 && bodies[i].data &&
                   strstr(bodies[i].data, "\"code\":\"ERR_SERVICE_UNAVAILABLE\"")) {
            busy++;
        } else {
            other++;
            fprintf(stderr, "  unexpected: curl %d status %ld %.200s\n", (int)msg->data.result, st,
                    bodies[i].data ? bodies[i].data : "");
        }
    }
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
        buf_free(&bodies[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(ct);
    fprintf(stderr, "  64 descriptors, %d requests: %d ok, %d 503, %d connection errors (%.1f s)\n",
            N, ok, busy, conn_err, now_s() - t0);
    CHECK_INT(ok + busy + conn_err, N);
    CHECK_INT(other, 0);
    CHECK(ok > 0);
    /* Still alive, and whole again once it has descriptors. */
    CHECK_INT(waitpid(F.pid, NULL, WNOHANG), 0);
    CHECK_INT(prlimit(F.pid, RLIMIT_NOFILE, &old, NULL), 0);
    char *out = RUN_OUT(&F, "/v1/execFile", "{\"file\":\"echo\",\"args\":[\"again\"]}");
    CHECK_STR(out, "again\n");
    free(out);
    CHECK_INT(descendants_settle(&F, 3000), 0);
    STILL_SOUND(&F, fds);
    CHECK_INT(srv_stop(&F, 5000), 0);
}

/* --- children and clients that fail midway ------------------------------------------ */

struct bg {
    const struct srv *s;
    const char *path, *json;
    int timeout_ms;
    struct resp r;
};

static void *bg_run(void *arg)
{
    struct bg *b = arg;
    http_req(b->s, "POST", b->path, "application/json", b->json, strlen(b->json), NULL,
             b->timeout_ms, &b->r);
    return NULL;
}

static pid_t child_named(const struct srv *s, const char *a0, const char *a1)
{
    DIR *d = opendir("/proc");
    pid_t found = 0;
    struct dirent *e;
    while (d && !found && (e = readdir(d))) {
        pid_t pid = atoi(e->d_name);
        if (pid <= 0) continue;
        char path[64], b[256];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(b, 1, sizeof b - 1, f);
        fclose(f);
        b[len] = 0;
        size_t l0 = strlen(a0);
        if (len > l0 + 1 && strcmp(b, a0) == 0 && strcmp(b + l0 + 1, a1) == 0) {
            snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
            f = fopen(path, "r");
            if (!f) continue;
            len = fread(b, 1, sizeof b - 1, f);
            fclose(f);
            b[len] = 0;
            char *rp = strrchr(b, ')');
            int ppid = 0;
            if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == s->pid) found = pid;
        }
    }
    if (d) closedir(d);
    return found;
}

static void test_faults(void)
{
    struct srv X;
    const char *args[] = {"--kill-grace-ms", "300", NULL};
    srv_start(&X, args);
    int fds = srv_fd_count(&X);
    struct resp r;

    /* A child that closes its stdout and stderr early, then goes on. */
    post_h(&X, "/v1/exec", "{\"command\":\"exec >&- 2>&-; sleep 0.2; exit 3\"}", NULL, &r);
    CHECK_INT(r.status, 200);
    json_object *o = r.status == 200 ? resp_json(&r) : NULL;
    if (o) {
        CHECK_INT(jint(o, "exit_code"), 3);
        json_object_put(o);
    }
    resp_free(&r);
    /* A child flooding stderr until its timeout or max_buffer. */
    post_h(&X, "/v1/exec", "{\"command\":\"yes flood >&2\",\"timeout_ms\":500}", NULL, &r);
    CHECK_INT(r.status, 200);
    o = r.status == 200 ? resp_json(&r) : NULL;
    if (o) {
        CHECK(jbool(o, "killed"));
        CHECK(jbool(o, "timed_out") || jbool(o, "truncated"));
        json_object_put(o);
    }
    resp_free(&r);
    /* The same on a stream the client reads. */
    post_h(&X, "/v1/spawn", "{\"command\":\"sh\",\"args\":[\"-c\",\"yes flood >&2\"],\"timeout_ms\":500}", NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body.data, "\"event\":\"exit\"");
    resp_free(&r);

    /* kill -9 from outside: a waiting exec and a background job. */
    struct bg b = {.s = &X, .path = "/v1/exec", .json = "{\"command\":\"exec sleep 31\"}",
                   .timeout_ms = 10000};
    pthread_t t;
    pthread_create(&t, NULL, bg_run, &b);
    pid_t victim = 0;
    for (int waited = 0; !victim && waited < 3000; waited += 20) {
        victim = child_named(&X, "sleep", "31");
        if (!victim) sleep_ms(20);
    }
    CHECK(victim > 0);
    if (victim > 0) kill(victim, SIGKILL);
    pthread_join(t, NULL);
    CHECK_INT(b.r.status, 200);
    CHECK_HAS(b.r.body.data, "\"signal\":\"SIGKILL\"");
    CHECK_HAS(b.r.body.data, "\"killed\":false");
    resp_free(&b.r);
    post_h(&X, "/v1/jobs", "{\"kind\":\"execFile\",\"file\":\"sleep\",\"args\":[\"32\"]}", NULL, &r);
    CHECK_INT(r.status, 201);
    o = r.status == 201 ? resp_json(&r) : NULL;
    if (o) {
        kill((pid_t)jint(o, "pid"), SIGKILL);
        char p[256];
        snprintf(p, sizeof p, "/v1/jobs/%s/wait?timeout_ms=5000", jstr(o, "id"));
        struct resp w;
        http_get(&X, p, &w);
        CHECK_INT(w.status, 200);
        CHECK_HAS(w.body.data, "\"signal\":\"SIGKILL\"");
        resp_free(&w);
        snprintf(p, sizeof p, "/v1/jobs/%s", jstr(o, "id"));
        CHECK_INT(status_of(&X, "DELETE", p, NULL, NULL), 204);
        json_object_put(o);
    }
    resp_free(&r);

    /* Clients that give up after 100 ms: their jobs are killed, nothing is
     * left behind. */
    static const char *const gone[][2] = {
        {"/v1/exec", "{\"command\":\"sleep 5\"}"},
        {"/v1/execFile", "{\"file\":\"sleep\",\"args\":[\"5\"]}"},
        {"/v1/spawn", "{\"command\":\"sleep\",\"args\":[\"5\"]}"},
        {"/v1/pipeline", "{\"steps\":[{\"command\":\"sleep\",\"args\":[\"5\"]},{\"command\":\"cat\"}]}"},
        {"/v1/exec", "{\"command\":\"sleep 5 & sleep 5 & wait\"}"},
    };
    struct bg g[10];
    pthread_t gt[10];
    for (int i = 0; i < 10; i++) {
        g[i] = (struct bg){.s = &X, .path = gone[i % 5][0], .json = gone[i % 5][1], .timeout_ms = 100};
        pthread_create(&gt[i], NULL, bg_run, &g[i]);
    }
    for (int i = 0; i < 10; i++) {
        pthread_join(gt[i], NULL);
        CHECK(g[i].r.curl_code == CURLE_OPERATION_TIMEDOUT);
        resp_free(&g[i].r);
    }
    CHECK_INT(descendants_settle(&X, 2000), 0);

    /* BUG: "a job never leaves processes behind" holds only for its process
     * group: a child that calls setsid() (or setpgid()) outlives the job's
     * end, its timeout, DELETE and even spawnd's shutdown, running
     * unaccounted (not in --max-jobs). Orphans come back to spawnd (the
     * subreaper), so spawnd could kill them; a cgroup per job would be
     * exact. Expected: gone with the job. */
    post_h(&X, "/v1/exec", "{\"command\":\"setsid sleep 57 >/dev/null 2>&1 & sleep 0.3; echo started\"}",
           NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    pid_t escaped = 0;
    for (int waited = 0; waited < 1500; waited += 50) {
        sleep_ms(50);
        escaped = child_named(&X, "sleep", "57");
        if (!escaped && waited >= 500) break;
    }
    CHECK(!escaped);
    if (escaped) kill(escaped, SIGKILL);
    CHECK_INT(descendants_settle(&X, 2000), 0);
    STILL_SOUND(&X, fds);
    CHECK(srv_log_has(&X, "msg=client_gone"));
    CHECK_INT(srv_stop(&X, 5000), 0);
}

int main(void)
{
    double t0 = now_s();
    make_tmpdir(TMP, sizeof TMP, "hostile");
    signal(SIGPIPE, SIG_IGN);
    static const struct named_test tests[] = {
        {"slowloris", test_slowloris},
        {"request_deadline", test_request_deadline},
        {"big_and_smuggled", test_big_and_smuggled},
        {"connection_limits", test_connection_limits},
        {"max_jobs", test_max_jobs},
        {"out_of_descriptors", test_out_of_descriptors},
        {"faults", test_faults},
    };
    return run_named("it_hostile", tests, sizeof tests / sizeof tests[0], TMP, t0);
}
