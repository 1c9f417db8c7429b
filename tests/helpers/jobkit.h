/* jobkit: small helpers shared by it_jobs and it_fork (background jobs,
 * their NDJSON output and messages). Header-only: each test includes it once. */
#ifndef SPAWND_JOBKIT_H
#define SPAWND_JOBKIT_H

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "../harness.h"

/* A known server bug (each has a BUG note where it is used): reported, not
 * counted as a failure, unless built with -DSPAWND_TEST_KNOWN_BUGS=1. When
 * the condition holds the bug looks fixed: make it a CHECK. */
#ifndef SPAWND_TEST_KNOWN_BUGS
#define SPAWND_TEST_KNOWN_BUGS 0
#endif
#define JOB_KNOWN_BUG(cond, what)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: KNOWN BUG (%s): %s\n", __FILE__, __LINE__,                     \
                    SPAWND_TEST_KNOWN_BUGS ? "counted" : "not counted", what);                     \
            if (SPAWND_TEST_KNOWN_BUGS) check_failures++;                                          \
        } else {                                                                                   \
            fprintf(stderr, "%s:%d: known bug looks FIXED, make it a CHECK: %s\n", __FILE__,       \
                    __LINE__, what);                                                               \
        }                                                                                          \
    } while (0)

/* A fork child script in the source tree. */
#define SCRIPT(name) TESTS_SRC_DIR "/helpers/" name

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* A path built with printf. Rotating static buffers, so a few can be alive. */
__attribute__((format(printf, 1, 2))) static inline const char *P(const char *fmt, ...)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

/* NDJSON lines, parsed. bad counts lines that are not JSON objects, and an
 * unterminated last line. */
struct ndj {
    json_object **ev;
    size_t n, cap;
    int bad;
};

static inline void ndj_add_line(struct ndj *d, const char *line, size_t len)
{
    json_object *o = NULL;
    json_tokener *tok = json_tokener_new();
    o = json_tokener_parse_ex(tok, line, (int)len);
    bool whole = o && json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (!o || !whole || !json_object_is_type(o, json_type_object)) {
        fprintf(stderr, "bad NDJSON line (%zu bytes): %.200s\n", len, line);
        d->bad++;
        json_object_put(o);
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->ev = realloc(d->ev, d->cap * sizeof *d->ev);
    }
    d->ev[d->n++] = o;
}

static inline void ndj_parse(struct ndj *d, const char *data, size_t len)
{
    memset(d, 0, sizeof *d);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        if (!nl) {
            fprintf(stderr, "unterminated NDJSON line: %.200s\n", data + i);
            d->bad++;
            break;
        }
        ndj_add_line(d, data + i, (size_t)(nl - (data + i)));
        i = (size_t)(nl - data) + 1;
    }
}

static inline void ndj_free(struct ndj *d)
{
    for (size_t i = 0; i < d->n; i++)
        json_object_put(d->ev[i]);
    free(d->ev);
    memset(d, 0, sizeof *d);
}

static inline const char *ndj_event(const struct ndj *d, size_t i)
{
    return i < d->n ? jstr(d->ev[i], "event") : NULL;
}

/* GET path and parse the NDJSON body; returns the status. */
static inline long get_ndj(const struct srv *s, const char *path, struct ndj *d)
{
    struct resp r;
    http_req(s, "GET", path, NULL, NULL, 0, NULL, 20000, &r);
    ndj_parse(d, r.body.data ? r.body.data : "", r.body.len);
    long st = r.status;
    resp_free(&r);
    return st;
}

/* POST a job (path /v1/jobs or /v1/fork); on 201 copies its id to id (at
 * least 128 bytes) and returns the job object (caller puts it). */
static inline json_object *start_job(const struct srv *s, const char *path, const char *json,
                                     char *id, long *status, struct resp *keep)
{
    struct resp r;
    http_post_json(s, path, json, &r);
    if (status) *status = r.status;
    json_object *o = NULL;
    id[0] = 0;
    if (r.status == 201) {
        o = resp_json(&r);
        const char *v = jstr(o, "id");
        snprintf(id, 128, "%s", v ? v : "");
    } else {
        fprintf(stderr, "start_job %s %s: %ld %.500s\n", path, json, r.status,
                r.body.data ? r.body.data : "");
    }
    if (keep)
        *keep = r;
    else
        resp_free(&r);
    return o;
}

/* GET /v1/jobs/{id}/wait, at most timeout_ms; returns the object or NULL. */
static inline json_object *wait_job(const struct srv *s, const char *id, int timeout_ms)
{
    struct resp r;
    http_req(s, "GET", P("/v1/jobs/%s/wait?timeout_ms=%d", id, timeout_ms), NULL, NULL, 0, NULL,
             timeout_ms + 5000, &r);
    json_object *o = r.status == 200 ? resp_json(&r) : NULL;
    if (!o) fprintf(stderr, "wait %s: %ld %.300s\n", id, r.status, r.body.data ? r.body.data : "");
    resp_free(&r);
    return o;
}

static inline long req_status(const struct srv *s, const char *method, const char *path,
                              const char *json)
{
    struct resp r;
    http_req(s, method, path, json ? "application/json" : NULL, json, json ? strlen(json) : 0, NULL,
             20000, &r);
    long st = r.status;
    resp_free(&r);
    return st;
}

/* Waits for the server's descendants to be n (at most timeout_ms). */
static inline int descendants_settle(const struct srv *s, int n, int timeout_ms)
{
    int d = srv_descendants(s);
    for (double end = now_s() + timeout_ms / 1000.0; d != n && now_s() < end;
         d = srv_descendants(s))
        sleep_ms(20);
    return d;
}

/* A streaming GET collected with a curl multi handle. */
struct follower {
    CURL *c;
    struct buf body;
    long status;
    bool done;
    size_t lines;      /* complete lines so far */
    size_t stop_after; /* abort the transfer after this many lines (0: never) */
    bool hold;         /* pause the transfer (curl_easy_pause CONT to go on) */
};

static inline size_t follower_write(char *p, size_t sz, size_t nm, void *arg)
{
    struct follower *f = arg;
    if (f->hold) return CURL_WRITEFUNC_PAUSE; /* delivered again on CURLPAUSE_CONT */
    if (buf_append(&f->body, p, sz * nm) < 0) return 0;
    for (size_t i = 0; i < sz * nm; i++)
        if (p[i] == '\n') f->lines++;
    if (f->stop_after && f->lines >= f->stop_after) return 0; /* got what we wanted */
    return sz * nm;
}

static inline void follower_start(struct follower *f, CURLM *m, const struct srv *s,
                                  const char *path, long timeout_ms)
{
    memset(f, 0, sizeof *f);
    buf_init(&f->body, (size_t)1 << 30);
    f->c = curl_easy_init();
    curl_easy_setopt(f->c, CURLOPT_URL, P("%s%s", s->url, path));
    curl_easy_setopt(f->c, CURLOPT_WRITEFUNCTION, follower_write);
    curl_easy_setopt(f->c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(f->c, CURLOPT_PRIVATE, f);
    curl_easy_setopt(f->c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_multi_add_handle(m, f->c);
}

/* Run m until every transfer is done or deadline (now_s() clock). */
static inline void multi_run(CURLM *m, double deadline, bool (*enough)(void *), void *arg)
{
    int running = 1;
    while (running && now_s() < deadline && !(enough && enough(arg))) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)))
            if (msg->msg == CURLMSG_DONE) {
                struct follower *f;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &f->status);
                f->done = true;
            }
        if (running) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
}

static inline void follower_free(struct follower *f, CURLM *m)
{
    if (f->c) {
        if (!f->done) curl_easy_getinfo(f->c, CURLINFO_RESPONSE_CODE, &f->status);
        curl_multi_remove_handle(m, f->c);
        curl_easy_cleanup(f->c);
    }
    f->c = NULL;
    buf_free(&f->body);
}

#endif
