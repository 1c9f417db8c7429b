/* background jobs through the real server: every kind's lifecycle, ids,
 * listing, output resumption and followers, streamed stdin, signals, wait,
 * DELETE, expiry, retention, the job limit, and no leftovers. */
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "jobkit.h"

static struct srv S;

static json_object *get_job(const struct srv *s, const char *id, long *status)
{
    struct resp r;
    http_get(s, P("/v1/jobs/%s", id), &r);
    if (status) *status = r.status;
    json_object *o = r.status == 200 ? resp_json(&r) : NULL;
    resp_free(&r);
    return o;
}

/* "2026-11-29T20:43:50.123Z" */
static bool is_rfc3339(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!s || strlen(s) != sizeof pat - 1) return false;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i]) return false;
    return true;
}

static bool id_chars_ok(const char *s)
{
    return *s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                     strlen(s);
}

/* Records with a seq are numbered from first without a gap; returns the
 * number of such records (-1 when not contiguous). */
static long seq_run(const struct ndj *d, long long first)
{
    long n = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (!jget(d->ev[i], "seq")) continue;
        if (jint(d->ev[i], "seq") != first + n) {
            fprintf(stderr, "seq %lld where %lld was expected\n", jint(d->ev[i], "seq"), first + n);
            return -1;
        }
        n++;
    }
    return n;
}

static void append_stdout(const struct ndj *d, struct buf *out)
{
    for (size_t i = 0; i < d->n; i++)
        if (ndj_event(d, i) && !strcmp(ndj_event(d, i), "stdout"))
            buf_appends(out, jstr(d->ev[i], "data"));
}

/* --- every kind through its lifecycle ---------------------------------------- */

static void test_lifecycle_all_kinds(void)
{
    static const struct {
        const char *kind, *json, *out;
    } k[] = {
        {"exec", "{\"kind\":\"exec\",\"command\":\"echo exec-out; sleep 0.5\"}", "exec-out\n"},
        {"execFile",
         "{\"kind\":\"execFile\",\"file\":\"sh\",\"args\":[\"-c\",\"echo execfile-out; sleep "
         "0.5\"]}",
         "execfile-out\n"},
        {"spawn",
         "{\"kind\":\"spawn\",\"command\":\"sh\",\"args\":[\"-c\",\"echo spawn-out; sleep 0.5\"]}",
         "spawn-out\n"},
        {"pipeline",
         "{\"kind\":\"pipeline\",\"steps\":[{\"command\":\"sh\",\"args\":[\"-c\",\"echo pipe-out; "
         "sleep 0.5\"]},{\"command\":\"tr\",\"args\":[\"a-z\",\"A-Z\"]}]}",
         "PIPE-OUT\n"},
        {"fork",
         "{\"kind\":\"fork\",\"module\":\"" SCRIPT("forkkit.js") "\",\"args\":[\"lifecycle\"]}",
         "fork-out\n"},
    };
    enum { N = sizeof k / sizeof k[0] };
    char ids[N][128];
    long long pids[N];
    double t0 = now_s();
    for (size_t i = 0; i < N; i++) {
        struct resp r;
        long st;
        json_object *o = start_job(&S, "/v1/jobs", k[i].json, ids[i], &st, &r);
        CHECK_INT(st, 201);
        CHECK_STR(resp_header(&r, "Location"), P("/v1/jobs/%s", ids[i]));
        CHECK_HAS(resp_header(&r, "Content-Type"), "application/json");
        resp_free(&r);
        CHECK_STR(jstr(o, "kind"), k[i].kind);
        CHECK_STR(jstr(o, "state"), "running");
        pids[i] = jint(o, "pid");
        CHECK(pids[i] > 0);
        CHECK(jnull(o, "exit_code") && jnull(o, "signal") && jnull(o, "ended_at") &&
              jnull(o, "duration_ms"));
        CHECK(is_rfc3339(jstr(o, "started_at")));
        CHECK(!jbool(o, "timed_out") && !jbool(o, "killed"));
        json_object_put(o);
    }
    /* all five are running now (each lives at least 0.3 s) */
    for (size_t i = 0; i < N && now_s() - t0 < 0.25; i++) {
        json_object *o = get_job(&S, ids[i], NULL);
        CHECK_STR(jstr(o, "state"), "running");
        CHECK_STR(jstr(o, "id"), ids[i]);
        CHECK_INT(jint(o, "pid"), pids[i]);
        CHECK(jnull(o, "ended_at"));
        json_object_put(o);
    }
    for (size_t i = 0; i < N; i++) {
        json_object *w = wait_job(&S, ids[i], 10000);
        CHECK_STR(jstr(w, "state"), "exited");
        CHECK_INT(jint(w, "exit_code"), 0);
        CHECK(jnull(w, "signal"));
        CHECK(is_rfc3339(jstr(w, "ended_at")));
        json_object *dur = jget(w, "duration_ms");
        CHECK(dur && json_object_get_double(dur) >= 250);
        CHECK_STR(jstr(w, "kind"), k[i].kind);
        json_object *g = get_job(&S, ids[i], NULL);
        CHECK_STR(json_object_to_json_string(g), json_object_to_json_string(w)); /* the same */
        json_object_put(g);
        json_object_put(w);

        struct ndj d;
        CHECK_INT(get_ndj(&S, P("/v1/jobs/%s/output", ids[i]), &d), 200);
        CHECK_INT(d.bad, 0);
        CHECK_STR(ndj_event(&d, 0), "spawn");
        if (!strcmp(k[i].kind, "pipeline")) {
            json_object *p = d.n ? jget(d.ev[0], "pids") : NULL;
            CHECK(p && json_object_array_length(p) == 2);
            CHECK(p && json_object_get_int64(json_object_array_get_idx(p, 1)) == pids[i]);
        } else {
            CHECK_INT(d.n ? jint(d.ev[0], "pid") : 0, pids[i]);
        }
        CHECK_STR(d.n ? ndj_event(&d, d.n - 1) : NULL, "exit");
        CHECK_INT(d.n ? jint(d.ev[d.n - 1], "exit_code") : -1, 0);
        CHECK_INT(seq_run(&d, 1), d.n);
        struct buf out;
        buf_init(&out, 1 << 20);
        append_stdout(&d, &out);
        CHECK_STR(out.data, k[i].out);
        buf_free(&out);
        ndj_free(&d);
    }
}

/* --- ids -------------------------------------------------------------------- */

static void check_ids(const struct srv *s, const char *prefix)
{
    char a[128], b[128];
    long st;
    json_object_put(
        start_job(s, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"true\"}", a, &st, NULL));
    CHECK_INT(st, 201);
    json_object_put(
        start_job(s, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"true\"}", b, &st, NULL));
    CHECK_INT(st, 201);
    size_t pl = strlen(prefix);
    CHECK(strncmp(a, prefix, pl) == 0 && strncmp(b, prefix, pl) == 0);
    CHECK(strlen(a + pl) >= 16 && strlen(b + pl) >= 16); /* >= 96 bits in base64url */
    CHECK(id_chars_ok(a + pl) && id_chars_ok(b + pl));
    CHECK(strcmp(a, b) != 0);
    json_object *o = get_job(s, a, &st);
    CHECK_INT(st, 200);
    json_object_put(o);
    json_object_put(wait_job(s, a, 5000));
    json_object_put(wait_job(s, b, 5000));
}

static void test_ids(void)
{
    check_ids(&S, "");
    struct srv s2;
    srv_start(&s2, (const char *const[]){"--instance-id", "a1", NULL});
    check_ids(&s2, "a1.");
    /* shutdown with a job running and a follower attached: the job is
     * killed, the follower gets its exit, spawnd exits 0 */
    char id[128];
    long st;
    json_object_put(start_job(&s2, "/v1/jobs",
                              "{\"kind\":\"spawn\",\"command\":\"sleep\",\"args\":[\"100\"]}", id,
                              &st, NULL));
    CHECK_INT(st, 201);
    CURLM *m = curl_multi_init();
    struct follower f;
    follower_start(&f, m, &s2, P("/v1/jobs/%s/output?follow=true", id), 10000);
    multi_run(m, now_s() + 0.2, NULL, NULL);
    kill(s2.pid, SIGTERM);
    multi_run(m, now_s() + 5, NULL, NULL);
    CHECK(f.done);
    CHECK_HAS(f.body.data, "\"event\":\"exit\"");
    CHECK_HAS(f.body.data, "\"signal\":\"SIGTERM\"");
    follower_free(&f, m);
    curl_multi_cleanup(m);
    CHECK_INT(srv_stop(&s2, 5000), 0);
}

/* --- the list ------------------------------------------------------------------ */

static void test_list_newest_first(void)
{
    char ids[3][128];
    long st;
    for (int i = 0; i < 3; i++) {
        json_object_put(start_job(&S, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"true\"}",
                                  ids[i], &st, NULL));
        CHECK_INT(st, 201);
    }
    struct resp r;
    http_get(&S, "/v1/jobs", &r);
    CHECK_INT(r.status, 200);
    json_object *o = resp_json(&r);
    json_object *jobs = jget(o, "jobs");
    CHECK(jobs && json_object_is_type(jobs, json_type_array));
    size_t n = jobs ? json_object_array_length(jobs) : 0;
    /* the three newest, newest first */
    CHECK(n >= 3);
    for (int i = 0; i < 3 && n >= 3; i++) {
        json_object *j = json_object_array_get_idx(jobs, (size_t)i);
        CHECK_STR(jstr(j, "id"), ids[2 - i]);
        CHECK_STR(jstr(j, "kind"), "spawn");
        CHECK(jstr(j, "state") && jstr(j, "started_at"));
    }
    json_object_put(o);
    resp_free(&r);
    for (int i = 0; i < 3; i++)
        json_object_put(wait_job(&S, ids[i], 5000));
}

/* --- output: resuming with since, followers ------------------------------------ */

#define COUNT_TO_50                                                                                \
    "{\"kind\":\"spawn\",\"command\":\"sh\",\"args\":[\"-c\",\"i=1; while [ $i -le 50 ]; do echo " \
    "$i; i=$((i+1)); sleep 0.02; done\"]}"

static const char *one_to(int n)
{
    static char s[512];
    size_t k = 0;
    for (int i = 1; i <= n; i++)
        k += (size_t)snprintf(s + k, sizeof s - k, "%d\n", i);
    return s;
}

static void test_since_resumption(void)
{
    char id[128];
    long st;
    json_object_put(start_job(&S, "/v1/jobs", COUNT_TO_50, id, &st, NULL));
    CHECK_INT(st, 201);
    struct buf all, out;
    buf_init(&all, 1 << 20); /* the raw lines of every read, concatenated */
    buf_init(&out, 1 << 20);
    long long last = 0;
    int reads = 0, nonempty = 0;
    bool ended = false;
    double end = now_s() + 15;
    /* polls while it runs, each resuming after the last seq seen */
    while (!ended && now_s() < end) {
        struct resp r;
        http_get(&S, P("/v1/jobs/%s/output?since=%lld", id, last), &r);
        CHECK_INT(r.status, 200);
        struct ndj d;
        ndj_parse(&d, r.body.data ? r.body.data : "", r.body.len);
        CHECK_INT(d.bad, 0);
        CHECK_INT(seq_run(&d, last + 1), d.n); /* no gap, no duplicate */
        if (d.n) {
            nonempty++;
            last = jint(d.ev[d.n - 1], "seq");
            ended = !strcmp(ndj_event(&d, d.n - 1), "exit");
        }
        append_stdout(&d, &out);
        buf_append(&all, r.body.data ? r.body.data : "", r.body.len);
        ndj_free(&d);
        resp_free(&r);
        reads++;
        /* half way: the rest in one following read from there */
        if (!ended && out.len > 0 && strstr(out.data, "\n20\n")) {
            http_get(&S, P("/v1/jobs/%s/output?follow=true&since=%lld", id, last), &r);
            ndj_parse(&d, r.body.data ? r.body.data : "", r.body.len);
            CHECK_INT(d.bad, 0);
            CHECK_INT(seq_run(&d, last + 1), d.n);
            CHECK_STR(d.n ? ndj_event(&d, d.n - 1) : NULL, "exit");
            if (d.n) last = jint(d.ev[d.n - 1], "seq");
            ended = true;
            append_stdout(&d, &out);
            buf_append(&all, r.body.data ? r.body.data : "", r.body.len);
            ndj_free(&d);
            resp_free(&r);
        }
        if (!ended) sleep_ms(150);
    }
    CHECK(ended);
    CHECK(nonempty >= 3);
    CHECK_STR(out.data, one_to(50));
    /* the pieces are exactly the whole */
    struct resp r;
    http_get(&S, P("/v1/jobs/%s/output", id), &r);
    CHECK_INT(r.body.len, all.len);
    CHECK(r.body.len == all.len && memcmp(r.body.data, all.data, all.len) == 0);
    resp_free(&r);
    /* since the last one: nothing; since past the end: nothing */
    http_get(&S, P("/v1/jobs/%s/output?since=%lld", id, last), &r);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body.len, 0);
    resp_free(&r);
    http_get(&S, P("/v1/jobs/%s/output?follow=true&since=%lld", id, last + 100), &r);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body.len, 0);
    resp_free(&r);
    /* bad query values */
    CHECK_INT(req_status(&S, "GET", P("/v1/jobs/%s/output?since=-1", id), NULL), 400);
    CHECK_INT(req_status(&S, "GET", P("/v1/jobs/%s/output?follow=maybe", id), NULL), 400);
    CHECK_INT(req_status(&S, "GET", P("/v1/jobs/%s/output?sinse=1", id), NULL), 400);
    buf_free(&all);
    buf_free(&out);
    fprintf(stderr, "since: %d reads, %d with records\n", reads, nonempty);
}

static void test_concurrent_followers(void)
{
    char id[128];
    long st;
    json_object_put(start_job(&S, "/v1/jobs", COUNT_TO_50, id, &st, NULL));
    CHECK_INT(st, 201);
    CURLM *m = curl_multi_init();
    struct follower f[3];
    for (int i = 0; i < 3; i++)
        follower_start(&f[i], m, &S, P("/v1/jobs/%s/output?follow=true", id), 20000);
    multi_run(m, now_s() + 20, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        CHECK(f[i].done);
        CHECK_INT(f[i].status, 200);
        struct ndj d;
        ndj_parse(&d, f[i].body.data ? f[i].body.data : "", f[i].body.len);
        CHECK_INT(d.bad, 0);
        CHECK_STR(ndj_event(&d, 0), "spawn");
        CHECK_STR(d.n ? ndj_event(&d, d.n - 1) : NULL, "exit");
        CHECK_INT(seq_run(&d, 1), d.n);
        struct buf out;
        buf_init(&out, 1 << 20);
        append_stdout(&d, &out);
        CHECK_STR(out.data, one_to(50));
        buf_free(&out);
        ndj_free(&d);
        if (i)
            CHECK(f[i].body.len == f[0].body.len &&
                  memcmp(f[i].body.data, f[0].body.data, f[0].body.len) == 0);
    }
    for (int i = 0; i < 3; i++)
        follower_free(&f[i], m);
    curl_multi_cleanup(m);
}

/* --- streamed stdin: 1 GB into wc -c --------------------------------------------- */

#define GB 1000000000LL

struct zeros {
    long long left;
    long long rss0, rss_max; /* kB */
    double last_sample;
    int samples;
};

static void sample_rss(struct zeros *z)
{
    long long v = srv_proc_field(&S, "status", "VmRSS");
    if (v > z->rss_max) z->rss_max = v;
    z->samples++;
    z->last_sample = now_s();
}

static size_t read_zeros(char *p, size_t sz, size_t nm, void *arg)
{
    struct zeros *z = arg;
    size_t n = sz * nm;
    if ((long long)n > z->left) n = (size_t)z->left;
    memset(p, 0, n);
    z->left -= (long long)n;
    if (now_s() - z->last_sample > 0.02) sample_rss(z);
    return n;
}

static size_t discard(char *p, size_t sz, size_t nm, void *arg)
{
    (void)p;
    (void)arg;
    return sz * nm;
}

static void test_stdin_1gb(void)
{
    char id[128];
    long st;
    json_object_put(start_job(&S, "/v1/jobs",
                              "{\"kind\":\"spawn\",\"command\":\"wc\",\"args\":[\"-c\"]}", id, &st,
                              NULL));
    CHECK_INT(st, 201);
    struct zeros z = {.left = GB};
    z.rss0 = srv_proc_field(&S, "status", "VmRSS");
    z.rss_max = z.rss0;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, P("%s/v1/jobs/%s/stdin?close=true", S.url, id));
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_zeros);
    curl_easy_setopt(c, CURLOPT_READDATA, &z);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)GB);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 90L);
    double t0 = now_s();
    CURLcode cc = curl_easy_perform(c);
    double secs = now_s() - t0;
    sample_rss(&z);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    CHECK_INT(cc, CURLE_OK);
    CHECK_INT(st, 204);
    CHECK_INT(z.left, 0);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    json_object *o = wait_job(&S, id, 10000);
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    struct ndj d;
    get_ndj(&S, P("/v1/jobs/%s/output", id), &d);
    struct buf out;
    buf_init(&out, 1 << 20);
    append_stdout(&d, &out);
    CHECK_STR(out.data, "1000000000\n");
    buf_free(&out);
    ndj_free(&d);
    fprintf(stderr, "stdin: 1 GB in %.2f s, spawnd VmRSS %lld kB -> max %lld kB (%d samples)\n",
            secs, z.rss0, z.rss_max, z.samples);
    CHECK(z.samples >= 10);
    CHECK(z.rss_max - z.rss0 < 32 * 1024);
    /* stdin is closed now: another upload is refused */
    CHECK_INT(req_status(&S, "POST", P("/v1/jobs/%s/stdin", id), NULL), 409);
}

static void test_stdin_small(void)
{
    /* two uploads, the second closes: cat sees both, in order */
    char id[128];
    long st;
    json_object_put(
        start_job(&S, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"cat\"}", id, &st, NULL));
    CHECK_INT(st, 201);
    struct resp r;
    http_req(&S, "POST", P("/v1/jobs/%s/stdin", id), "text/plain", "hello ", 6, NULL, 0, &r);
    CHECK_INT(r.status, 204);
    resp_free(&r);
    http_req(&S, "POST", P("/v1/jobs/%s/stdin?close=true", id), NULL, "world", 5, NULL, 0, &r);
    CHECK_INT(r.status, 204);
    resp_free(&r);
    json_object *o = wait_job(&S, id, 5000);
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    struct ndj d;
    get_ndj(&S, P("/v1/jobs/%s/output", id), &d);
    struct buf out;
    buf_init(&out, 1 << 20);
    append_stdout(&d, &out);
    CHECK_STR(out.data, "hello world");
    buf_free(&out);
    ndj_free(&d);
}

/* Refusals of a stdin upload: each is an HTTP answer with the error body,
 * with or without a body. */
static void test_stdin_errors(void)
{
    char id[128];
    long st;
    json_object_put(
        start_job(&S, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"true\"}", id, &st, NULL));
    CHECK_INT(st, 201);
    json_object_put(wait_job(&S, id, 5000));
    static const char *const bodies[] = {NULL, "abc"};
    for (int i = 0; i < 2; i++) {
        const char *b = bodies[i];
        size_t n = b ? strlen(b) : 0;
        struct resp r;
        http_req(&S, "POST", P("/v1/jobs/%s/stdin", id), "text/plain", b, n, NULL, 3000, &r);
        CHECK_INT(r.status, 409); /* stdin closed: the job ended */
        CHECK_HAS(r.body.data, "ERR_CONFLICT");
        resp_free(&r);
        http_req(&S, "POST", P("/v1/jobs/%s/stdin?close=maybe", id), "text/plain", b, n, NULL, 3000,
                 &r);
        CHECK_INT(r.status, 400);
        CHECK_HAS(r.body.data, "ERR_INVALID_ARG_VALUE");
        resp_free(&r);
        http_req(&S, "POST", P("/v1/jobs/%s/stdin?closed=1", id), "text/plain", b, n, NULL, 3000,
                 &r);
        CHECK_INT(r.status, 400);
        resp_free(&r);
        http_req(&S, "POST", "/v1/jobs/nosuchjob/stdin", "text/plain", b, n, NULL, 3000, &r);
        CHECK_INT(r.status, 404);
        CHECK_HAS(r.body.data, "ERR_NOT_FOUND");
        resp_free(&r);
    }

    /* the child stops reading part way: the rest is refused, answered 409 */
    json_object_put(start_job(&S, "/v1/jobs",
                              "{\"kind\":\"spawn\",\"command\":\"head\",\"args\":[\"-c\",\"10\"]}",
                              id, &st, NULL));
    size_t big = 8 << 20;
    char *zeros = calloc(1, big);
    struct resp r;
    http_req(&S, "POST", P("/v1/jobs/%s/stdin", id), "application/octet-stream", zeros, big, NULL,
             5000, &r);
    CHECK_INT(r.status, 409);
    resp_free(&r);
    json_object_put(wait_job(&S, id, 5000));

    /* one upload at a time: a second one while the first is stalled (the
     * child does not read) is refused */
    json_object_put(start_job(&S, "/v1/jobs",
                              "{\"kind\":\"spawn\",\"command\":\"sleep\",\"args\":[\"100\"]}", id,
                              &st, NULL));
    CURLM *m = curl_multi_init();
    struct follower up;
    follower_start(&up, m, &S, P("/v1/jobs/%s/stdin", id), 10000);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(up.c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(up.c, CURLOPT_POSTFIELDS, zeros);
    curl_easy_setopt(up.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)big);
    multi_run(m, now_s() + 0.5, NULL, NULL);
    CHECK(!up.done); /* stalled on the full pipe */
    http_req(&S, "POST", P("/v1/jobs/%s/stdin", id), "text/plain", "x", 1, NULL, 3000, &r);
    CHECK_INT(r.status, 409);
    CHECK_HAS(r.body.data, "another stdin upload");
    resp_free(&r);
    CHECK_INT(req_status(&S, "POST", P("/v1/jobs/%s/signal", id), "{\"signal\":\"SIGKILL\"}"), 202);
    multi_run(m, now_s() + 5, NULL, NULL);
    CHECK(up.done);
    CHECK_INT(up.status, 409); /* the stalled one learns its child is gone */
    follower_free(&up, m);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    free(zeros);
    json_object_put(wait_job(&S, id, 5000));
}

/* --- signals, wait, DELETE ---------------------------------------------------------- */

static void test_signal(void)
{
    static const char *const how[] = {"{\"signal\":\"SIGTERM\"}", "{\"signal\":15}"};
    for (int i = 0; i < 2; i++) {
        char id[128];
        long st;
        json_object_put(start_job(&S, "/v1/jobs",
                                  "{\"kind\":\"spawn\",\"command\":\"sleep\",\"args\":[\"100\"]}",
                                  id, &st, NULL));
        CHECK_INT(st, 201);
        struct resp r;
        http_post_json(&S, P("/v1/jobs/%s/signal", id), how[i], &r);
        CHECK_INT(r.status, 202);
        resp_free(&r);
        json_object *o = wait_job(&S, id, 5000);
        CHECK_STR(jstr(o, "state"), "exited");
        CHECK_STR(jstr(o, "signal"), "SIGTERM");
        CHECK(jnull(o, "exit_code"));
        CHECK(!jbool(o, "killed")); /* the caller sent it, not spawnd */
        json_object_put(o);
        http_post_json(&S, P("/v1/jobs/%s/signal", id), how[i], &r);
        CHECK_INT(r.status, 409);
        json_object *e = resp_json(&r);
        CHECK_STR(jstr(e, "error.code"), "ERR_CONFLICT");
        json_object_put(e);
        resp_free(&r);
        struct ndj d;
        get_ndj(&S, P("/v1/jobs/%s/output", id), &d);
        CHECK_STR(d.n ? jstr(d.ev[d.n - 1], "signal") : NULL, "SIGTERM");
        ndj_free(&d);
    }
    /* bad signals */
    char id[128];
    long st;
    json_object_put(start_job(&S, "/v1/jobs",
                              "{\"kind\":\"spawn\",\"command\":\"sleep\",\"args\":[\"100\"]}", id,
                              &st, NULL));
    CHECK_INT(req_status(&S, "POST", P("/v1/jobs/%s/signal", id), "{\"signal\":\"SIGNOPE\"}"), 400);
    CHECK_INT(req_status(&S, "POST", P("/v1/jobs/%s/signal", id), "{\"sig\":15}"), 400);
    CHECK_INT(req_status(&S, "DELETE", P("/v1/jobs/%s", id), NULL), 204);
}

static void test_wait_timeout(void)
{
    char id[128];
    long st;
    json_object_put(start_job(&S, "/v1/jobs",
                              "{\"kind\":\"spawn\",\"command\":\"sleep\",\"args\":[\"100\"]}", id,
                              &st, NULL));
    CHECK_INT(st, 201);
    struct resp r;
    double t = now_s();
    http_get(&S, P("/v1/jobs/%s/wait?timeout_ms=200", id), &r);
    double secs = now_s() - t;
    CHECK_INT(r.status, 408);
    json_object *e = resp_json(&r);
    CHECK_STR(jstr(e, "error.code"), "ERR_REQUEST_TIMEOUT");
    json_object_put(e);
    resp_free(&r);
    CHECK(secs >= 0.18 && secs < 1.0);
    /* still running */
    json_object *o = get_job(&S, id, NULL);
    CHECK_STR(jstr(o, "state"), "running");
    json_object_put(o);
    CHECK_INT(req_status(&S, "GET", P("/v1/jobs/%s/wait?timeout_ms=soon", id), NULL), 400);
    CHECK_INT(req_status(&S, "DELETE", P("/v1/jobs/%s", id), NULL), 204);
}

static void test_delete_running(void)
{
    char id[128];
    long st;
    json_object_put(start_job(&S, "/v1/jobs",
                              "{\"kind\":\"exec\",\"command\":\"sleep 1000 & sleep 1000 & wait\"}",
                              id, &st, NULL));
    CHECK_INT(st, 201);
    CHECK_INT(descendants_settle(&S, 3, 3000), 3); /* sh and two sleeps */
    /* someone waiting and someone following while it goes */
    CURLM *m = curl_multi_init();
    struct follower w, f;
    follower_start(&w, m, &S, P("/v1/jobs/%s/wait", id), 10000);
    follower_start(&f, m, &S, P("/v1/jobs/%s/output?follow=true", id), 10000);
    multi_run(m, now_s() + 0.3, NULL, NULL);
    CHECK(!w.done && !f.done);
    /* the DELETE on a connection the client keeps open, as a pooling
     * client does */
    CURL *keep = curl_easy_init();
    curl_easy_setopt(keep, CURLOPT_URL, P("%s/v1/jobs/%s", S.url, id));
    curl_easy_setopt(keep, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(keep, CURLOPT_TIMEOUT_MS, 5000L);
    double t = now_s();
    CHECK_INT(curl_easy_perform(keep), CURLE_OK);
    curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &st);
    CHECK_INT(st, 204);
    CHECK_INT(descendants_settle(&S, 0, 1000), 0);
    fprintf(stderr, "delete: process group gone in %.0f ms\n", (now_s() - t) * 1000);
    multi_run(m, now_s() + 1.0, NULL, NULL); /* no other request meanwhile */
    /* BUG: the wait and the follower are woken from inside the DELETE's MHD
     * callback (jobs_delete -> wake_all -> http_resume, which arms the 0 ms
     * MHD timer), but mhd_run() then re-arms that timer from
     * MHD_get_timeout() (or stops it), so the wake-up is lost: they stay
     * unanswered until some later socket event (here: the DELETE client
     * closing its connection). The job's exit does not help: http_resume()
     * returns early as the request is no longer marked suspended. */
    CHECK(w.done && f.done);
    curl_easy_cleanup(keep);
    long gst;
    json_object_put(get_job(&S, id, &gst));
    CHECK_INT(gst, 404);
    CHECK_INT(req_status(&S, "DELETE", P("/v1/jobs/%s", id), NULL), 404);
    multi_run(m, now_s() + 5, NULL, NULL);
    CHECK(w.done && f.done);
    /* BUG: the wait is answered 404 "the job was deleted" (wake_all from
     * jobs_delete), but the deleted job is not detached while requests hold
     * it, so when its exit is handled before MHD sends that answer,
     * on_job_exit prepares a 200 over it (and the log line of the 404 that
     * was sent can say 200): either answer can come (with the bug above, 200
     * always). Both accepted. */
    CHECK(w.status == 404);
    CHECK(w.status == 404 || (w.status == 200 && strstr(w.body.data, "\"killed\":true")));
    if (w.status == 404) CHECK_HAS(w.body.data, "ERR_NOT_FOUND");
    CHECK_INT(f.status, 200);
    CHECK_HAS(f.body.data, "\"event\":\"spawn\"");
    follower_free(&w, m);
    follower_free(&f, m);
    curl_multi_cleanup(m);
}

/* --- unknown ids ------------------------------------------------------------------ */

static void test_unknown_id(void)
{
    static const struct {
        const char *method, *path, *json;
    } e[] = {
        {"GET", "/v1/jobs/nosuchjob", NULL},
        {"DELETE", "/v1/jobs/nosuchjob", NULL},
        {"GET", "/v1/jobs/nosuchjob/output", NULL},
        {"GET", "/v1/jobs/nosuchjob/output?follow=true", NULL},
        {"POST", "/v1/jobs/nosuchjob/stdin?close=true", NULL},
        {"POST", "/v1/jobs/nosuchjob/signal", "{\"signal\":\"SIGTERM\"}"},
        {"GET", "/v1/jobs/nosuchjob/wait", NULL},
        {"GET", "/v1/jobs/nosuchjob/wait?timeout_ms=10", NULL},
        {"POST", "/v1/jobs/nosuchjob/messages", "{\"a\":1}"},
        {"GET", "/v1/jobs/nosuchjob/messages", NULL},
        {"GET", "/v1/jobs/nosuchjob/messages?follow=true", NULL},
        {"DELETE", "/v1/jobs/nosuchjob/messages", NULL},
        {"POST", "/v1/jobs/nosuchjob/stdin", "{}"},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        struct resp r;
        http_req(&S, e[i].method, e[i].path, e[i].json ? "application/json" : NULL, e[i].json,
                 e[i].json ? strlen(e[i].json) : 0, NULL, 5000, &r);
        if (r.status != 404) fprintf(stderr, "%s %s\n", e[i].method, e[i].path);
        CHECK_INT(r.status, 404);
        if (r.status == 404) {
            json_object *o = resp_json(&r);
            CHECK_STR(jstr(o, "error.code"), "ERR_NOT_FOUND");
            json_object_put(o);
        }
        resp_free(&r);
    }
}

/* --- expiry ------------------------------------------------------------------------- */

static void test_ttl(void)
{
    struct srv s2;
    srv_start(&s2, (const char *const[]){"--job-ttl-s", "1", NULL});
    char id[128];
    long st;
    json_object_put(
        start_job(&s2, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"true\"}", id, &st, NULL));
    CHECK_INT(st, 201);
    json_object *o = wait_job(&s2, id, 5000);
    double ended = now_s();
    CHECK_STR(jstr(o, "state"), "exited");
    json_object_put(o);
    CHECK_INT(req_status(&s2, "GET", P("/v1/jobs/%s", id), NULL), 200);
    double gone = 0;
    while (now_s() - ended < 4) {
        if (req_status(&s2, "GET", P("/v1/jobs/%s", id), NULL) == 404) {
            gone = now_s() - ended;
            break;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "ttl: forgotten %.2f s after it ended\n", gone);
    CHECK(gone >= 0.8 && gone <= 2.2);
    CHECK_INT(req_status(&s2, "GET", P("/v1/jobs/%s/output", id), NULL), 404);
    struct resp r;
    http_get(&s2, "/v1/jobs", &r);
    CHECK(r.body.data && !strstr(r.body.data, id));
    resp_free(&r);
    CHECK_INT(srv_stop(&s2, 5000), 0);
}

/* --- retention ------------------------------------------------------------------------ */

static void test_retention(void)
{
    struct srv s2;
    srv_start(&s2, (const char *const[]){"--job-output-bytes", "1024", NULL});
    char id[128];
    long st;
    /* 100 KB in 1000-byte lines, in ten bursts: many records */
    json_object_put(start_job(&s2, "/v1/jobs",
                              "{\"kind\":\"exec\",\"command\":\"i=0; while [ $i -lt 100 ]; do "
                              "printf '%0999d\\\\n' $i; i=$((i+1)); "
                              "[ $((i % 10)) = 0 ] && sleep 0.01; done; true\"}",
                              id, &st, NULL));
    CHECK_INT(st, 201);
    json_object *o = wait_job(&s2, id, 10000);
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    struct resp r;
    http_get(&s2, P("/v1/jobs/%s/output", id), &r);
    struct ndj d;
    ndj_parse(&d, r.body.data ? r.body.data : "", r.body.len);
    CHECK_INT(d.bad, 0);
    CHECK(d.n >= 2);
    CHECK_STR(ndj_event(&d, 0), "dropped");
    CHECK(d.n && !jget(d.ev[0], "seq"));
    long long dropped = d.n ? jint(d.ev[0], "count") : 0;
    CHECK(dropped > 5);
    CHECK_STR(d.n ? ndj_event(&d, d.n - 1) : NULL, "exit");
    long long last = d.n ? jint(d.ev[d.n - 1], "seq") : 0;
    /* what is kept follows the dropped ones without a gap, and is about the cap */
    CHECK_INT(seq_run(&d, dropped + 1), (long)d.n - 1);
    CHECK_INT(dropped + (long long)d.n - 1, last);
    CHECK(r.body.len < 4096);
    fprintf(stderr, "retention: %lld dropped, %zu kept, %zu bytes served\n", dropped, d.n - 1,
            r.body.len);
    ndj_free(&d);
    resp_free(&r);
    /* since inside the kept part: no dropped line */
    http_get(&s2, P("/v1/jobs/%s/output?since=%lld", id, last - 1), &r);
    ndj_parse(&d, r.body.data ? r.body.data : "", r.body.len);
    CHECK_INT(d.n, 1);
    CHECK_STR(ndj_event(&d, 0), "exit");
    ndj_free(&d);
    resp_free(&r);
    /* since before it: the dropped count is from there */
    http_get(&s2, P("/v1/jobs/%s/output?since=5", id), &r);
    ndj_parse(&d, r.body.data ? r.body.data : "", r.body.len);
    CHECK_STR(ndj_event(&d, 0), "dropped");
    CHECK_INT(d.n ? jint(d.ev[0], "count") : 0, dropped - 5);
    ndj_free(&d);
    resp_free(&r);
    CHECK_INT(srv_stop(&s2, 5000), 0);
}

/* A follower that falls behind while the cap drops records under it (it
 * stops reading until the job has ended): each line it gets is whole, a
 * "dropped" line says what it missed, and it ends with the exit. */
static int small_rcvbuf(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg;
    (void)purpose;
    int n = 16 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
    return CURL_SOCKOPT_OK;
}

static void test_retention_follow(void)
{
    struct srv s2;
    srv_start(&s2, (const char *const[]){"--job-output-bytes", "1024", NULL});
    char id[128];
    long st;
    json_object_put(start_job(
        &s2, "/v1/jobs",
        "{\"kind\":\"exec\",\"command\":\"sleep 0.2; head -c 32000000 /dev/zero | tr '\\\\0' x\"}",
        id, &st, NULL));
    CHECK_INT(st, 201);
    CURLM *m = curl_multi_init();
    struct follower f;
    follower_start(&f, m, &s2, P("/v1/jobs/%s/output?follow=true", id), 20000);
    curl_easy_setopt(f.c, CURLOPT_SOCKOPTFUNCTION, small_rcvbuf);
    f.hold = true; /* reads nothing for now */
    multi_run(m, now_s() + 0.1, NULL, NULL);
    json_object_put(wait_job(&s2, id, 10000));
    f.hold = false;
    curl_easy_pause(f.c, CURLPAUSE_CONT);
    multi_run(m, now_s() + 15, NULL, NULL);
    CHECK(f.done);
    CHECK_INT(f.status, 200);
    struct ndj d;
    ndj_parse(&d, f.body.data ? f.body.data : "", f.body.len);
    CHECK_INT(d.bad, 0);
    CHECK_STR(ndj_event(&d, 0), "spawn");
    CHECK_STR(d.n ? ndj_event(&d, d.n - 1) : NULL, "exit");
    /* seqs before and after the dropped line add up */
    long long expect = 1, dropped = 0;
    bool ok = true;
    for (size_t i = 0; i < d.n; i++) {
        if (!strcmp(ndj_event(&d, i), "dropped")) {
            dropped += jint(d.ev[i], "count");
            expect += jint(d.ev[i], "count");
        } else {
            ok = ok && jint(d.ev[i], "seq") == expect;
            expect++;
        }
    }
    CHECK(ok);
    CHECK(dropped > 0); /* it did fall behind */
    fprintf(stderr, "retention follow: %zu lines, %zu bytes, %lld records dropped\n", d.n,
            f.body.len, dropped);
    ndj_free(&d);
    follower_free(&f, m);
    curl_multi_cleanup(m);
    CHECK_INT(srv_stop(&s2, 5000), 0);
}

/* --- the job limit --------------------------------------------------------------------- */

static void test_max_jobs(void)
{
    struct srv s2;
    srv_start(&s2, (const char *const[]){"--max-jobs", "2", NULL});
    static const char sleeper[] = "{\"kind\":\"spawn\",\"command\":\"sleep\",\"args\":[\"100\"]}";
    char a[128], b[128], c[128];
    long st;
    json_object_put(start_job(&s2, "/v1/jobs", sleeper, a, &st, NULL));
    CHECK_INT(st, 201);
    json_object_put(
        start_job(&s2, "/v1/fork", "{\"module\":\"" SCRIPT("echo.js") "\"}", b, &st, NULL));
    CHECK_INT(st, 201);
    struct resp r;
    http_post_json(&s2, "/v1/jobs", sleeper, &r);
    CHECK_INT(r.status, 429);
    CHECK_STR(resp_header(&r, "Retry-After"), "1");
    json_object *e = resp_json(&r);
    CHECK_STR(jstr(e, "error.code"), "ERR_TOO_MANY_JOBS");
    json_object_put(e);
    resp_free(&r);
    CHECK_INT(req_status(&s2, "POST", "/v1/fork", "{\"module\":\"" SCRIPT("echo.js") "\"}"), 429);
    CHECK_INT(req_status(&s2, "POST", "/v1/exec", "{\"command\":\"true\"}"), 429);
    /* nothing was left of the refused ones */
    CHECK_INT(srv_descendants(&s2), 2);
    /* one ends: a slot is free again (ended jobs kept for reading do not count) */
    CHECK_INT(req_status(&s2, "POST", P("/v1/jobs/%s/signal", a), "{\"signal\":\"SIGKILL\"}"), 202);
    json_object_put(wait_job(&s2, a, 5000));
    json_object_put(start_job(&s2, "/v1/jobs", sleeper, c, &st, NULL));
    CHECK_INT(st, 201);
    CHECK_INT(req_status(&s2, "DELETE", P("/v1/jobs/%s", b), NULL), 204);
    CHECK_INT(req_status(&s2, "DELETE", P("/v1/jobs/%s", c), NULL), 204);
    CHECK_INT(descendants_settle(&s2, 0, 2000), 0);
    CHECK_INT(srv_zombies(&s2), 0);
    CHECK_INT(srv_stop(&s2, 5000), 0);
}

/* --- bad requests ------------------------------------------------------------------------ */

static void test_bad_create(void)
{
    static const char *const bad[] = {
        "{\"command\":\"true\"}",                   /* no kind */
        "{\"kind\":\"nope\",\"command\":\"true\"}", /* unknown kind */
        "{\"kind\":\"spawn\",\"comand\":\"true\"}", /* typo */
        "{\"kind\":\"exec\",\"file\":\"true\"}",    /* another kind's field */
        "{\"kind\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(req_status(&S, "POST", "/v1/jobs", bad[i]), 400);
    struct resp r;
    http_post_json(&S, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"no-such-cmd-xyz\"}", &r);
    CHECK_INT(r.status, 422);
    CHECK_HAS(r.body.data, "\"ENOENT\"");
    resp_free(&r);
    CHECK_INT(req_status(&S, "POST", "/v1/jobs?x=1", "{\"kind\":\"spawn\",\"command\":\"true\"}"),
              400);
}

int main(void)
{
    double t0 = now_s();
    srv_start(&S, NULL);
    int fds = srv_fd_settle(&S, -1, 2000);

    test_lifecycle_all_kinds();
    test_ids();
    test_list_newest_first();
    test_since_resumption();
    test_concurrent_followers();
    test_stdin_small();
    test_stdin_1gb();
    test_stdin_errors();
    test_signal();
    test_wait_timeout();
    test_delete_running();
    test_unknown_id();
    test_bad_create();
    test_ttl();
    test_retention();
    test_retention_follow();
    test_max_jobs();

    CHECK_INT(descendants_settle(&S, 0, 3000), 0);
    CHECK_INT(srv_fd_settle(&S, fds, 3000), fds);
    CHECK_INT(srv_zombies(&S), 0);
    CHECK_INT(srv_stop(&S, 10000), 0);
    fprintf(stderr, "it_jobs: %.1f s\n", now_s() - t0);
    return check_status();
}
