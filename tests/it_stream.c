/* spawn and pipeline streams through the real server: event order, live
 * delivery, encodings, the raw form, backpressure, client disconnect. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/encode.h"
#include "check.h"
#include "emit.h"
#include "harness.h"

static struct srv S;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A stream read line by line as it arrives, each line timed. */
struct lines {
    struct buf partial;
    json_object *ev[4096];
    double at[4096];
    size_t n;
    double start;
};

static size_t on_chunk(char *p, size_t sz, size_t nm, void *arg)
{
    struct lines *l = arg;
    buf_append(&l->partial, p, sz * nm);
    char *nl;
    while ((nl = memchr(l->partial.data, '\n', l->partial.len))) {
        *nl = 0;
        if (l->n < 4096) {
            l->ev[l->n] = json_tokener_parse(l->partial.data);
            if (!l->ev[l->n]) fprintf(stderr, "bad event line: %.200s\n", l->partial.data);
            l->at[l->n++] = now_s() - l->start;
        }
        buf_consume(&l->partial, (size_t)(nl - l->partial.data) + 1);
    }
    return sz * nm;
}

static long stream(const char *path, const char *json, struct lines *l)
{
    memset(l, 0, sizeof *l);
    buf_init(&l->partial, 1 << 26);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", S.url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_chunk);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, l);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    l->start = now_s();
    curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_object_put(l->ev[i]);
    buf_free(&l->partial);
}

static const char *ev(struct lines *l, size_t i)
{
    return i < l->n ? jstr(l->ev[i], "event") : NULL;
}

static void test_order_and_live(void)
{
    struct lines l;
    long st = stream("/v1/spawn",
                     "{\"command\":\"sh\",\"args\":[\"-c\",\"echo a; sleep 1; echo b >&2; exit 4\"]}", &l);
    CHECK_INT(st, 200);
    CHECK_INT(l.n, 4);
    CHECK_STR(ev(&l, 0), "spawn");
    CHECK(jint(l.ev[0], "pid") > 0);
    CHECK_STR(ev(&l, 1), "stdout");
    CHECK_STR(jstr(l.ev[1], "data"), "a\n");
    CHECK_STR(ev(&l, 2), "stderr");
    CHECK_STR(jstr(l.ev[2], "data"), "b\n");
    CHECK_STR(ev(&l, 3), "exit");
    CHECK_INT(jint(l.ev[3], "exit_code"), 4);
    CHECK(l.n == 4 && l.at[1] < 0.5 && l.at[3] > 0.9); /* "a" arrived long before the exit */
    lines_free(&l);
}

static void test_pipeline(void)
{
    struct lines l;
    long st = stream("/v1/pipeline",
                     "{\"steps\":[{\"command\":\"ps\",\"args\":[\"ax\"]},"
                     "{\"command\":\"grep\",\"args\":[\"spawnd\"]}]}", &l);
    CHECK_INT(st, 200);
    CHECK_STR(ev(&l, 0), "spawn");
    CHECK_INT(json_object_array_length(jget(l.ev[0], "pids")), 2);
    CHECK_STR(ev(&l, l.n - 1), "exit");
    CHECK_INT(jint(l.ev[l.n - 1], "exit_code"), 0);
    CHECK_INT(json_object_array_length(jget(l.ev[l.n - 1], "steps")), 2);
    bool saw = false;
    for (size_t i = 1; i + 1 < l.n; i++)
        if (!strcmp(ev(&l, i), "stdout") && strstr(jstr(l.ev[i], "data"), "spawnd")) saw = true;
    CHECK(saw);
    lines_free(&l);
}

static void test_not_found_is_422(void)
{
    struct resp r;
    http_post_json(&S, "/v1/spawn", "{\"command\":\"no-such-cmd-xyz\"}", &r);
    CHECK_INT(r.status, 422);
    CHECK_HAS(r.body.data, "\"ENOENT\"");
    resp_free(&r);
    http_post_json(&S, "/v1/pipeline", "{\"steps\":[{\"command\":\"true\"},{\"command\":\"no-such-cmd-xyz\"}]}", &r);
    CHECK_INT(r.status, 422);
    CHECK_HAS(r.body.data, "\"step\":1");
    resp_free(&r);
    usleep(100000);
    CHECK_INT(srv_descendants(&S), 0);
}

static void test_raw_binary(void)
{
    struct resp r;
    char body[512];
    size_t n = 10 * 1000 * 1000;
    snprintf(body, sizeof body, "{\"command\":\"%s\",\"args\":[\"%zu\",\"7\"]}", helper("emit"), n);
    http_post_json(&S, "/v1/spawn?format=raw", body, &r);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body.len, n);
    unsigned char *want = malloc(n);
    uint64_t seed = 7;
    emit_fill(&seed, want, n);
    CHECK(r.body.len == n && memcmp(r.body.data, want, n) == 0);
    free(want);
    CHECK_STR(resp_header(&r, "Spawnd-Exit-Code"), "0");
    CHECK_STR(resp_header(&r, "Spawnd-Signal"), "null");
    resp_free(&r);
}

static size_t discard(char *p, size_t sz, size_t nm, void *arg)
{
    return sz * nm;
}

static void test_disconnect_kills(void)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s/v1/spawn", S.url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"command\":\"sleep\",\"args\":[\"1000\"]}");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_perform(c); /* times out: the client goes away */
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    int left = -1;
    for (int i = 0; i < 20 && left != 0; i++) {
        usleep(100000);
        left = srv_descendants(&S);
    }
    CHECK_INT(left, 0);
}

/* --- streams read event by event, nothing kept ----------------------------------- */

/* A stream driven by curl multi, each complete line parsed and handed to
 * on_event (which must not keep it). on_event returns 0 to go on, 1 to
 * pause the transfer (the same bytes come again on resume), -1 to hang up. */
struct sclient {
    CURL *c;
    CURLM *m;
    struct curl_slist *h;
    struct buf partial;
    int (*on_event)(struct sclient *sc, json_object *ev);
    void *ctx;
    bool paused, hangup, bad_line;
    long status;
    double start;
    size_t nevents;
    json_object *last; /* the last event, kept (the exit, normally) */
};

static size_t sc_write(char *p, size_t sz, size_t nm, void *arg)
{
    struct sclient *sc = arg;
    size_t n = sz * nm;
    if (sc->hangup) return 0;
    /* Lines are parsed from a copy, so that a pause can hand back all of p. */
    size_t keep = sc->partial.len;
    if (buf_append(&sc->partial, p, n) < 0) return 0;
    char *start = sc->partial.data + 0, *nl;
    size_t done = 0;
    while ((nl = memchr(start + done, '\n', sc->partial.len - done))) {
        *nl = 0;
        json_object *ev = json_tokener_parse(start + done);
        if (!ev) {
            if (!sc->bad_line) fprintf(stderr, "bad event line: %.200s\n", start + done);
            sc->bad_line = true;
        }
        int rc = ev && sc->on_event ? sc->on_event(sc, ev) : 0;
        if (rc == 1) { /* not consumed: undo this call entirely */
            json_object_put(ev);
            *nl = '\n';
            buf_consume(&sc->partial, done);
            /* what is left is this call's bytes plus the unfinished line
             * before them; keep the unfinished part only */
            sc->partial.len = keep > done ? keep - done : 0;
            if (sc->partial.data) sc->partial.data[sc->partial.len] = 0;
            sc->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
        sc->nevents++;
        if (sc->last) json_object_put(sc->last);
        sc->last = ev;
        done = (size_t)(nl - start) + 1;
        if (rc < 0) {
            sc->hangup = true;
            return 0;
        }
    }
    buf_consume(&sc->partial, done);
    return n;
}

static void sc_start(struct sclient *sc, const char *path, const char *json,
                     int (*on_event)(struct sclient *, json_object *), void *ctx)
{
    memset(sc, 0, sizeof *sc);
    buf_init(&sc->partial, 1 << 24);
    sc->on_event = on_event;
    sc->ctx = ctx;
    sc->c = curl_easy_init();
    sc->m = curl_multi_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", S.url, path);
    sc->h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(sc->c, CURLOPT_URL, url);
    curl_easy_setopt(sc->c, CURLOPT_COPYPOSTFIELDS, json);
    curl_easy_setopt(sc->c, CURLOPT_HTTPHEADER, sc->h);
    curl_easy_setopt(sc->c, CURLOPT_WRITEFUNCTION, sc_write);
    curl_easy_setopt(sc->c, CURLOPT_WRITEDATA, sc);
    curl_easy_setopt(sc->c, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_multi_add_handle(sc->m, sc->c);
    sc->start = now_s();
}

/* Runs the transfer for at most secs, or until on_event pauses it; returns
 * 1 when it is over. */
static int sc_run(struct sclient *sc, double secs)
{
    double end = now_s() + secs;
    int running = 1;
    bool was_paused = sc->paused;
    while (running && !sc->hangup && now_s() < end) {
        curl_multi_perform(sc->m, &running);
        if (!running || sc->hangup || (sc->paused && !was_paused)) break;
        curl_multi_poll(sc->m, NULL, 0, 20, NULL);
    }
    curl_easy_getinfo(sc->c, CURLINFO_RESPONSE_CODE, &sc->status);
    return !running;
}

static void sc_resume(struct sclient *sc)
{
    sc->paused = false;
    curl_easy_pause(sc->c, CURLPAUSE_CONT);
}

/* Ends the transfer (hanging up if it is still going). */
static void sc_close(struct sclient *sc)
{
    curl_multi_remove_handle(sc->m, sc->c);
    curl_easy_cleanup(sc->c);
    curl_multi_cleanup(sc->m);
    curl_slist_free_all(sc->h);
    buf_free(&sc->partial);
    if (sc->last) json_object_put(sc->last);
    sc->last = NULL;
}

/* Waits (at most ms) for the server to have no descendants left. */
static int wait_no_descendants(int ms)
{
    int left = srv_descendants(&S);
    for (int waited = 0; left != 0 && waited < ms; waited += 20) {
        usleep(20000);
        left = srv_descendants(&S);
    }
    return left;
}

/* --- UTF-8 split across reads ----------------------------------------------------- */

/* Concatenated data of the events of one stream ("stdout"/"stderr"). */
static char *concat(struct lines *l, const char *which)
{
    struct buf b;
    buf_init(&b, 1 << 26);
    buf_appends(&b, "");
    for (size_t i = 0; i < l->n; i++)
        if (ev(l, i) && !strcmp(ev(l, i), which)) {
            const char *d = jstr(l->ev[i], "data");
            CHECK(d != NULL);
            if (d) buf_appends(&b, d);
        }
    char *s = strdup(b.data ? b.data : "");
    buf_free(&b);
    return s;
}

static void test_utf8_split(void)
{
    static const struct { const char *script, *want_out, *want_err; } cases[] = {
        /* € = E2 82 AC, split after its first byte */
        {"printf '\\\\342'; sleep 0.3; printf '\\\\202\\\\254'", "\xE2\x82\xAC", ""},
        /* split after two bytes, on stderr */
        {"printf 'x\\\\342\\\\202' >&2; sleep 0.3; printf '\\\\254y' >&2", "", "x\xE2\x82\xAC" "y"},
        /* U+1F600 = F0 9F 98 80, in three reads */
        {"printf '\\\\360\\\\237'; sleep 0.2; printf '\\\\230'; sleep 0.2; printf '\\\\200!'",
         "\xF0\x9F\x98\x80!", ""},
        /* an incomplete character at the very end: one U+FFFD */
        {"printf 'a\\\\342\\\\202'", "a\xEF\xBF\xBD", ""},
        /* a held-back byte that turns out invalid: U+FFFD, then the byte after */
        {"printf 'a\\\\342'; sleep 0.2; printf '(b'", "a\xEF\xBF\xBD(b", ""},
        /* both streams split at once, each completed separately */
        {"printf '\\\\342'; printf '\\\\303' >&2; sleep 0.3; printf '\\\\202\\\\254'; printf '\\\\251' >&2",
         "\xE2\x82\xAC", "\xC3\xA9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "{\"command\":\"sh\",\"args\":[\"-c\",\"%s\"]}", cases[i].script);
        struct lines l;
        long st = stream("/v1/spawn", body, &l);
        CHECK_INT(st, 200);
        char *out = concat(&l, "stdout"), *err = concat(&l, "stderr");
        CHECK_STR(out, cases[i].want_out);
        CHECK_STR(err, cases[i].want_err);
        if (strcmp(out, cases[i].want_out) || strcmp(err, cases[i].want_err))
            fprintf(stderr, "  ^ case %zu: %s\n", i, cases[i].script);
        CHECK_STR(ev(&l, l.n - 1), "exit");
        CHECK_INT(jint(l.ev[l.n - 1], "exit_code"), 0);
        free(out);
        free(err);
        lines_free(&l);
    }
}

/* --- 100 MB of binary through NDJSON/base64, checked as it arrives --------------------- */

struct b64check {
    const char *which;   /* the event carrying the bytes */
    uint64_t state;      /* emit's generator */
    unsigned long long n; /* bytes checked so far */
    bool mismatch, bad_b64, exit_seen, spawn_first;
    unsigned char *dec, *want;
};

static void b64check_init(struct b64check *k, const char *which, uint64_t seed)
{
    memset(k, 0, sizeof *k);
    k->which = which;
    k->state = seed;
    k->dec = malloc(1 << 20);
    k->want = malloc(1 << 20);
}

static void b64check_free(struct b64check *k)
{
    free(k->dec);
    free(k->want);
}

static void b64check_event(struct b64check *k, json_object *e)
{
    const char *d = jstr(e, "data");
    size_t len = d ? strlen(d) : 0;
    if (!d || len / 4 * 3 > (1 << 20)) {
        k->bad_b64 = true;
        return;
    }
    long got = api_base64_decode(d, len, k->dec);
    if (got < 0) {
        k->bad_b64 = true;
        return;
    }
    emit_fill(&k->state, k->want, (size_t)got);
    if (memcmp(k->dec, k->want, (size_t)got) != 0 && !k->mismatch) {
        fprintf(stderr, "byte mismatch in %s within bytes %llu..%llu\n", k->which, k->n,
                k->n + (unsigned long long)got);
        k->mismatch = true;
    }
    k->n += (unsigned long long)got;
}

static int on_b64_event(struct sclient *sc, json_object *e)
{
    struct b64check *k = sc->ctx; /* [0] stdout, [1] stderr */
    const char *name = jstr(e, "event");
    if (!name) return 0;
    if (sc->nevents == 0) k[0].spawn_first = !strcmp(name, "spawn");
    if (!strcmp(name, "stdout")) b64check_event(&k[0], e);
    else if (!strcmp(name, "stderr")) b64check_event(&k[1], e);
    else if (!strcmp(name, "exit")) k[0].exit_seen = true;
    return 0;
}

static void test_base64_100mb(void)
{
    const unsigned long long n = 100ULL * 1000 * 1000;
    char body[512];
    snprintf(body, sizeof body, "{\"command\":\"%s\",\"args\":[\"%llu\",\"11\"],\"encoding\":\"base64\"}",
             helper("emit"), n);
    struct b64check k[2];
    b64check_init(&k[0], "stdout", 11);
    b64check_init(&k[1], "stderr", 1);
    struct sclient sc;
    sc_start(&sc, "/v1/spawn", body, on_b64_event, k);
    int over = sc_run(&sc, 60);
    double secs = now_s() - sc.start;
    CHECK(over);
    CHECK_INT(sc.status, 200);
    CHECK(!sc.bad_line);
    CHECK(k[0].spawn_first);
    CHECK(k[0].exit_seen);
    CHECK_STR(jstr(sc.last, "event"), "exit");
    CHECK_INT(jint(sc.last, "exit_code"), 0);
    CHECK(!k[0].bad_b64);
    CHECK(!k[0].mismatch);
    CHECK_INT(k[0].n, n);
    CHECK_INT(k[1].n, 0);
    fprintf(stderr, "100 MB as base64 NDJSON: %.2f s, %zu events\n", secs, sc.nevents);
    sc_close(&sc);
    b64check_free(&k[0]);
    b64check_free(&k[1]);
}

/* stdout and stderr stay apart, byte for byte, when both flow at once. */
static void test_stdout_stderr_separation(void)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"command\":\"sh\",\"args\":[\"-c\",\"%s 3000000 3 & %s 2000000 5 >&2; wait\"],"
             "\"encoding\":\"base64\"}",
             helper("emit"), helper("emit"));
    struct b64check k[2];
    b64check_init(&k[0], "stdout", 3);
    b64check_init(&k[1], "stderr", 5);
    struct sclient sc;
    sc_start(&sc, "/v1/spawn", body, on_b64_event, k);
    CHECK(sc_run(&sc, 30));
    CHECK_INT(k[0].n, 3000000);
    CHECK_INT(k[1].n, 2000000);
    CHECK(!k[0].mismatch && !k[1].mismatch && !k[0].bad_b64 && !k[1].bad_b64);
    CHECK_INT(jint(sc.last, "exit_code"), 0);
    sc_close(&sc);
    b64check_free(&k[0]);
    b64check_free(&k[1]);

    struct lines l;
    stream("/v1/spawn",
           "{\"command\":\"sh\",\"args\":[\"-c\",\"echo o1; echo e1 >&2; echo o2; sleep 0.1; echo e2 >&2; echo o3\"]}",
           &l);
    char *out = concat(&l, "stdout"), *err = concat(&l, "stderr");
    CHECK_STR(out, "o1\no2\no3\n");
    CHECK_STR(err, "e1\ne2\n");
    for (size_t i = 0; i < l.n; i++)
        CHECK(jget(l.ev[i], "step") == NULL); /* spawn events have no step */
    free(out);
    free(err);
    lines_free(&l);
}

/* --- a reader that stops reading ----------------------------------------------------- */

struct yes_check {
    unsigned long long bytes;
    bool bad, pause_now, paused_once;
    char next; /* 'y' or '\n' */
};

static int on_yes_event(struct sclient *sc, json_object *e)
{
    struct yes_check *y = sc->ctx;
    const char *name = jstr(e, "event");
    if (!name || strcmp(name, "stdout") != 0) return 0;
    if (y->pause_now) {
        y->pause_now = false;
        return 1;
    }
    const char *d = jstr(e, "data");
    for (const char *p = d; p && *p; p++) {
        if (*p != y->next && !y->bad) {
            fprintf(stderr, "yes stream broken at byte %llu\n", y->bytes + (unsigned long long)(p - d));
            y->bad = true;
        }
        y->next = *p == 'y' ? '\n' : 'y';
    }
    y->bytes += d ? strlen(d) : 0;
    return 0;
}

static void test_paused_reader_bounded(void)
{
    const unsigned long long total = 60ULL * 1000 * 1000;
    int fds = srv_fd_settle(&S, -1, 2000);
    struct yes_check y = {.next = 'y'};
    struct sclient sc;
    sc_start(&sc, "/v1/spawn", "{\"command\":\"sh\",\"args\":[\"-c\",\"yes | head -c 60000000\"]}",
             on_yes_event, &y);
    /* Warm up: the stream runs at full speed for a while. */
    while (y.bytes < (4u << 20) && !sc_run(&sc, 0.05) && now_s() - sc.start < 10)
        ;
    CHECK(y.bytes >= (4u << 20));
    long long rss0 = srv_proc_field(&S, "status", "VmRSS");
    y.pause_now = true;
    while (!sc.paused && !sc_run(&sc, 0.05) && now_s() - sc.start < 20)
        ;
    CHECK(sc.paused);
    unsigned long long at_pause = y.bytes;
    long long rss_max = rss0;
    double t0 = now_s();
    while (now_s() - t0 < 3.0) {
        sc_run(&sc, 0.1); /* curl keeps the connection, reads nothing */
        long long rss = srv_proc_field(&S, "status", "VmRSS");
        if (rss > rss_max) rss_max = rss;
    }
    CHECK(rss0 > 0);
    CHECK(rss_max - rss0 < 8 * 1024); /* kB */
    fprintf(stderr, "paused reader: spawnd RSS %lld kB -> max %lld kB\n", rss0, rss_max);
    CHECK(y.bytes == at_pause);
    CHECK(at_pause < total);
    CHECK(srv_descendants(&S) >= 2); /* sh, yes and head are blocked, not gone */
    /* Unpaused, the same stream goes on to its end, every byte intact. */
    sc_resume(&sc);
    CHECK(sc_run(&sc, 30));
    CHECK_INT(y.bytes, total);
    CHECK(!y.bad);
    CHECK(!sc.bad_line);
    CHECK_STR(jstr(sc.last, "event"), "exit");
    CHECK(!jbool(sc.last, "killed"));
    sc_close(&sc);
    CHECK_INT(wait_no_descendants(1000), 0);
    CHECK_INT(srv_fd_settle(&S, fds, 2000), fds);
}

/* The drain period does not cut off a slow reader: a grandchild that left
 * the group (setsid) keeps writing after the job's process exited, while
 * the client is not reading; when it reads again, everything arrives. */
static int on_yes_pause_first(struct sclient *sc, json_object *e)
{
    struct yes_check *y = sc->ctx;
    const char *name = jstr(e, "event");
    if (name && !strcmp(name, "stdout") && !y->paused_once) {
        y->paused_once = true;
        y->pause_now = true; /* on_yes_event pauses on this event */
    }
    return on_yes_event(sc, e);
}

static void test_drain_waits_for_slow_reader(void)
{
    struct yes_check y = {.next = 'y'};
    struct sclient sc;
    sc_start(&sc, "/v1/spawn",
             "{\"command\":\"sh\",\"args\":[\"-c\",\"setsid sh -c 'yes | head -c 20000000' & "
             "while [ $(cut -d' ' -f6 /proc/$!/stat) = $$ ]; do :; done\"]}",
             on_yes_pause_first, &y);
    while (!sc.paused && !sc_run(&sc, 0.05) && now_s() - sc.start < 10)
        ;
    CHECK(sc.paused);
    sc_run(&sc, 2.0); /* well past the drain period, reading nothing */
    sc_resume(&sc);
    CHECK(sc_run(&sc, 30));
    CHECK_INT(y.bytes, 20000000);
    CHECK(!y.bad);
    CHECK_STR(jstr(sc.last, "event"), "exit");
    CHECK_INT(jint(sc.last, "exit_code"), 0);
    sc_close(&sc);
    CHECK_INT(wait_no_descendants(1000), 0);
}

/* --- the client hangs up while the child floods --------------------------------------- */

struct flood {
    unsigned long long got;
    int procs; /* the job's processes when the client hung up */
};

static int hang_up_after_1mb(struct sclient *sc, json_object *e)
{
    struct flood *f = sc->ctx;
    const char *d = jstr(e, "data");
    f->got += d ? strlen(d) : 0;
    if (f->got < (1u << 20)) return 0;
    f->procs = srv_descendants(&S);
    return -1;
}

static int on_flood_pause(struct sclient *sc, json_object *e)
{
    struct flood *f = sc->ctx;
    const char *d = jstr(e, "data");
    if (f->got >= (1u << 20)) return 1; /* stop reading */
    f->got += d ? strlen(d) : 0;
    return 0;
}

/* Hang up after 1 MB; with pause_first, stop reading for 0.5 s before, so
 * that spawnd's stream buffer is full and the job paused when it happens. */
static void flood_and_hang_up(const char *path, const char *body, bool pause_first,
                              int want_procs, int gone_ms)
{
    struct flood f = {0, 0};
    struct sclient sc;
    sc_start(&sc, path, body, pause_first ? on_flood_pause : hang_up_after_1mb, &f);
    sc_run(&sc, 10);
    if (pause_first) {
        CHECK(sc.paused);
        sc_run(&sc, 0.5);
        f.procs = srv_descendants(&S);
    }
    CHECK(f.got >= (pause_first ? 1u : 1u << 20));
    CHECK(f.procs >= want_procs);
    double t0 = now_s();
    sc_close(&sc);
    int left = wait_no_descendants(gone_ms);
    CHECK_INT(left, 0);
    if (left) fprintf(stderr, "  ^ %s: %d left after %.2f s\n", body, left, now_s() - t0);
    CHECK_INT(srv_zombies(&S), 0);
}

/* On a server of its own (S is swapped for the duration): see the BUG note. */
static void test_disconnect_flood(void)
{
    struct srv main_srv = S;
    const char *args[] = {"--kill-grace-ms", "1000", NULL};
    srv_start(&S, args);
    int fds = srv_fd_settle(&S, -1, 2000);
    flood_and_hang_up("/v1/spawn", "{\"command\":\"sh\",\"args\":[\"-c\",\"yes & yes >&2 & yes\"]}",
                      false, 3, 1000);
    flood_and_hang_up("/v1/pipeline",
                      "{\"steps\":[{\"command\":\"yes\"},{\"command\":\"cat\"},{\"command\":\"cat\"}]}",
                      false, 3, 1000);
    /* SIGTERM ignored: SIGKILL after the grace (1 s here) */
    flood_and_hang_up("/v1/spawn", "{\"command\":\"sh\",\"args\":[\"-c\",\"trap '' TERM; yes\"]}",
                      false, 2, 2500);
    flood_and_hang_up("/v1/spawn", "{\"command\":\"yes\"}", true, 1, 1000);

    struct resp r;
    http_get(&S, "/healthz", &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);

    /* BUG: when the client hangs up while its stream is paused (spawnd's
     * stream buffer full, the job's pipes out of epoll) -- always after a
     * pause, and often while a flood is being read -- the processes are
     * killed but the job never ends: its pipes are never read again, no
     * job.end is logged, it keeps its --max-jobs slot and its descriptors,
     * and shutdown waits for the deadline. See test_paused_hangup_frees_slot.
     * The descriptor check below fails with it. */
    CHECK_INT(srv_fd_settle(&S, fds, 2000), fds);
    CHECK_INT(srv_stop(&S, 10000), 0);
    S = main_srv;
}

/* A paused stream whose client hangs up must still end its job and free
 * its --max-jobs slot (it once stayed paused forever). */
static void test_paused_hangup_frees_slot(void)
{
    struct srv main_srv = S;
    const char *args[] = {"--max-jobs", "1", "--kill-grace-ms", "500", NULL};
    srv_start(&S, args);
    flood_and_hang_up("/v1/spawn", "{\"command\":\"yes\"}", true, 1, 1000);
    usleep(300000);
    struct resp r;
    http_post_json(&S, "/v1/execFile", "{\"file\":\"true\"}", &r);
    CHECK_INT(r.status, 200); /* bug: 429, the dead job still holds the only slot */
    resp_free(&r);
    CHECK(srv_log_has(&S, "msg=job.end"));
    double t0 = now_s();
    CHECK_INT(srv_stop(&S, 5000), 0);
    CHECK(now_s() - t0 < 1.0); /* bug: waits for the shutdown deadline */
    S = main_srv;
}

/* --- timeouts in streams --------------------------------------------------------- */

static void test_stream_timeout(void)
{
    struct lines l;
    double t0 = now_s();
    stream("/v1/spawn", "{\"command\":\"sh\",\"args\":[\"-c\",\"echo started; sleep 10\"],\"timeout_ms\":300}", &l);
    double secs = now_s() - t0;
    json_object *x = l.n ? l.ev[l.n - 1] : NULL;
    CHECK_STR(ev(&l, l.n - 1), "exit");
    CHECK(jbool(x, "timed_out"));
    CHECK(jbool(x, "killed"));
    CHECK_STR(jstr(x, "signal"), "SIGTERM");
    CHECK(jnull(x, "exit_code"));
    CHECK(secs > 0.25 && secs < 2);
    char *out = concat(&l, "stdout");
    CHECK_STR(out, "started\n");
    free(out);
    lines_free(&l);

    stream("/v1/pipeline",
           "{\"steps\":[{\"command\":\"sleep\",\"args\":[\"10\"]},{\"command\":\"cat\"}],\"timeout_ms\":300}", &l);
    x = l.n ? l.ev[l.n - 1] : NULL;
    CHECK_STR(ev(&l, l.n - 1), "exit");
    CHECK(jbool(x, "timed_out"));
    CHECK_STR(jstr(x, "steps.0.signal"), "SIGTERM");
    CHECK(jnull(x, "steps.0.exit_code"));
    lines_free(&l);

    struct resp r;
    http_post_json(&S, "/v1/spawn?format=raw", "{\"command\":\"sleep\",\"args\":[\"10\"],\"timeout_ms\":200}", &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(resp_header(&r, "Spawnd-Signal"), "SIGTERM");
    CHECK_STR(resp_header(&r, "Spawnd-Exit-Code"), "null");
    resp_free(&r);
    CHECK_INT(wait_no_descendants(500), 0);
}

/* --- pipelines: volume through kernel pipes, failures, stderr steps ------------------------ */

static void test_pipeline_volume(void)
{
    char body[1024];
    const char *e = helper("emit");
    for (int steps = 2; steps <= 5; steps += 3) {
        if (steps == 2)
            snprintf(body, sizeof body,
                     "{\"steps\":[{\"command\":\"%s\",\"args\":[\"100000000\"]},"
                     "{\"command\":\"wc\",\"args\":[\"-c\"]}]}", e);
        else
            snprintf(body, sizeof body,
                     "{\"steps\":[{\"command\":\"%s\",\"args\":[\"100000000\"]},{\"command\":\"cat\"},"
                     "{\"command\":\"cat\"},{\"command\":\"cat\"},{\"command\":\"wc\",\"args\":[\"-c\"]}]}", e);
        /* The main thread's own reads: /proc/PID/io would also count the
         * reads of every child spawnd has reaped. */
        char io[64];
        snprintf(io, sizeof io, "task/%d/io", (int)S.pid);
        long long r0 = srv_proc_field(&S, io, "rchar");
        struct lines l;
        double t0 = now_s();
        CHECK_INT(stream("/v1/pipeline", body, &l), 200);
        double secs = now_s() - t0;
        long long r1 = srv_proc_field(&S, io, "rchar");
        char *out = concat(&l, "stdout");
        CHECK_STR(out, "100000000\n");
        free(out);
        json_object *x = l.n ? l.ev[l.n - 1] : NULL;
        CHECK_INT(jint(x, "exit_code"), 0);
        CHECK_INT(json_object_array_length(jget(x, "steps")), steps);
        for (int i = 0; i < steps; i++) {
            char p[32];
            snprintf(p, sizeof p, "steps.%d.exit_code", i);
            CHECK_INT(jint(x, p), 0);
        }
        CHECK_INT(json_object_array_length(jget(l.ev[0], "pids")), steps);
        CHECK(r0 >= 0 && r1 >= r0);
        CHECK(r1 - r0 < 5 * 1000 * 1000); /* nothing went through spawnd */
        fprintf(stderr, "pipeline of %d steps, 100 MB: %.2f s, spawnd read %lld bytes\n", steps, secs,
                r1 - r0);
        lines_free(&l);
    }

    /* The bytes arrive intact after three kernel pipes. */
    snprintf(body, sizeof body,
             "{\"steps\":[{\"command\":\"%s\",\"args\":[\"10000000\",\"9\"]},{\"command\":\"cat\"},"
             "{\"command\":\"cat\"}],\"encoding\":\"base64\"}", e);
    struct b64check k[2];
    b64check_init(&k[0], "stdout", 9);
    b64check_init(&k[1], "stderr", 1);
    struct sclient sc;
    sc_start(&sc, "/v1/pipeline", body, on_b64_event, k);
    CHECK(sc_run(&sc, 30));
    CHECK_INT(k[0].n, 10000000);
    CHECK(!k[0].mismatch && !k[0].bad_b64);
    CHECK_INT(k[1].n, 0);
    sc_close(&sc);
    b64check_free(&k[0]);
    b64check_free(&k[1]);
}

static void test_pipeline_failures(void)
{
    struct lines l;
    stream("/v1/pipeline",
           "{\"steps\":[{\"command\":\"true\"},{\"command\":\"false\"},{\"command\":\"cat\"}]}", &l);
    json_object *x = l.n ? l.ev[l.n - 1] : NULL;
    CHECK_STR(ev(&l, l.n - 1), "exit");
    CHECK_INT(jint(x, "exit_code"), 0); /* the last step's, as the shell reports */
    CHECK(jnull(x, "signal"));
    CHECK_INT(jint(x, "steps.0.exit_code"), 0);
    CHECK_INT(jint(x, "steps.1.exit_code"), 1);
    CHECK(jnull(x, "steps.1.signal"));
    CHECK_INT(jint(x, "steps.2.exit_code"), 0);
    CHECK(!jbool(x, "killed"));
    lines_free(&l);

    /* A writer whose reader is gone dies of SIGPIPE (default disposition). */
    stream("/v1/pipeline",
           "{\"steps\":[{\"command\":\"yes\"},{\"command\":\"false\"},{\"command\":\"cat\"}]}", &l);
    x = l.n ? l.ev[l.n - 1] : NULL;
    CHECK_STR(jstr(x, "steps.0.signal"), "SIGPIPE");
    CHECK(jnull(x, "steps.0.exit_code"));
    CHECK_INT(jint(x, "steps.1.exit_code"), 1);
    CHECK_INT(jint(x, "exit_code"), 0);
    lines_free(&l);

    stream("/v1/pipeline",
           "{\"steps\":[{\"command\":\"true\"},{\"command\":\"sh\",\"args\":[\"-c\",\"kill -TERM $$\"]}]}", &l);
    x = l.n ? l.ev[l.n - 1] : NULL;
    CHECK(jnull(x, "exit_code"));
    CHECK_STR(jstr(x, "signal"), "SIGTERM");
    CHECK_STR(jstr(x, "steps.1.signal"), "SIGTERM");
    CHECK(!jbool(x, "killed"));
    lines_free(&l);
}

static void test_pipeline_stderr_steps(void)
{
    struct lines l;
    stream("/v1/pipeline",
           "{\"steps\":[{\"command\":\"sh\",\"args\":[\"-c\",\"echo e0 >&2; echo x\"]},"
           "{\"command\":\"sh\",\"args\":[\"-c\",\"cat; echo e1 >&2\"]},"
           "{\"command\":\"sh\",\"args\":[\"-c\",\"cat; echo e2 >&2; echo e2b >&2\"]}]}",
           &l);
    char seen[3][64] = {"", "", ""};
    for (size_t i = 0; i < l.n; i++) {
        const char *name = ev(&l, i);
        if (!name) continue;
        if (!strcmp(name, "stderr")) {
            json_object *st = jget(l.ev[i], "step");
            CHECK(st && json_object_is_type(st, json_type_int));
            long long step = jint(l.ev[i], "step");
            CHECK(step >= 0 && step <= 2);
            if (step >= 0 && step <= 2)
                strncat(seen[step], jstr(l.ev[i], "data"), sizeof seen[step] - strlen(seen[step]) - 1);
        } else {
            CHECK(jget(l.ev[i], "step") == NULL); /* only stderr events carry it */
        }
    }
    CHECK_STR(seen[0], "e0\n");
    CHECK_STR(seen[1], "e1\n");
    CHECK_STR(seen[2], "e2\ne2b\n");
    char *out = concat(&l, "stdout");
    CHECK_STR(out, "x\n");
    free(out);
    lines_free(&l);
}

/* --- raw form ------------------------------------------------------------------------ */

static void test_raw_stderr_and_signal(void)
{
    const char *body = "{\"command\":\"sh\",\"args\":[\"-c\",\"echo out; sleep 0.1; echo err >&2; sleep 0.1; echo out2; exit 3\"]}";
    static const struct { const char *query, *want; } cases[] = {
        {"?format=raw", "out\nout2\n"},
        {"?format=raw&stderr=discard", "out\nout2\n"},
        {"?format=raw&stderr=merge", "out\nerr\nout2\n"},
        {"?stderr=merge&format=raw", "out\nerr\nout2\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/spawn%s", cases[i].query);
        struct resp r;
        http_post_json(&S, path, body, &r);
        CHECK_INT(r.status, 200);
        CHECK_STR(r.body.data, cases[i].want);
        CHECK_STR(resp_header(&r, "Content-Type"), "application/octet-stream");
        CHECK_HAS(resp_header(&r, "Trailer"), "Spawnd-Exit-Code");
        CHECK_STR(resp_header(&r, "Spawnd-Exit-Code"), "3");
        CHECK_STR(resp_header(&r, "Spawnd-Signal"), "null");
        resp_free(&r);
    }
    struct resp r;
    http_post_json(&S, "/v1/spawn?format=raw", "{\"command\":\"sh\",\"args\":[\"-c\",\"echo hi; kill -TERM $$\"]}", &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body.data, "hi\n");
    CHECK_STR(resp_header(&r, "Spawnd-Signal"), "SIGTERM");
    CHECK_STR(resp_header(&r, "Spawnd-Exit-Code"), "null");
    resp_free(&r);
    /* ndjson asked for by name */
    http_post_json(&S, "/v1/spawn?format=ndjson", "{\"command\":\"true\"}", &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(resp_header(&r, "Content-Type"), "application/x-ndjson");
    CHECK_HAS(r.body.data, "{\"event\":\"spawn\"");
    resp_free(&r);
}

static void test_bad_query(void)
{
    static const struct { const char *path, *field; } cases[] = {
        {"/v1/spawn?foo=1", "foo"},
        {"/v1/spawn?format=raw&foo=1", "foo"},
        {"/v1/spawn?format=xml", "format"},
        {"/v1/spawn?format=", "format"},
        {"/v1/spawn?stderr=merge", "stderr"},
        {"/v1/spawn?format=ndjson&stderr=merge", "stderr"},
        {"/v1/spawn?format=raw&stderr=all", "stderr"},
        {"/v1/pipeline?format=raw", "format"},
        {"/v1/pipeline?x=1", "x"},
    };
    unlink("/tmp/spawnd-it-stream-q");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *body = strstr(cases[i].path, "pipeline")
            ? "{\"steps\":[{\"command\":\"touch\",\"args\":[\"/tmp/spawnd-it-stream-q\"]},{\"command\":\"cat\"}]}"
            : "{\"command\":\"touch\",\"args\":[\"/tmp/spawnd-it-stream-q\"]}";
        struct resp r;
        http_post_json(&S, cases[i].path, body, &r);
        CHECK_INT(r.status, 400);
        json_object *o = r.body.data ? json_tokener_parse(r.body.data) : NULL;
        CHECK_STR(jstr(o, "error.code"), "ERR_INVALID_ARG_VALUE");
        CHECK_STR(jstr(o, "error.field"), cases[i].field);
        if (r.status != 400 || !jstr(o, "error.field") || strcmp(jstr(o, "error.field"), cases[i].field))
            fprintf(stderr, "  ^ %s -> %ld %s\n", cases[i].path, r.status, r.body.data);
        json_object_put(o);
        resp_free(&r);
    }
    usleep(100000);
    CHECK(access("/tmp/spawnd-it-stream-q", F_OK) != 0); /* nothing was started */
}

/* Runs one test, saying how long it took. */
#define RUN(t)                                                                \
    do {                                                                      \
        double t0_ = now_s();                                                 \
        t();                                                                  \
        fprintf(stderr, "%-32s %6.2f s\n", #t, now_s() - t0_);                \
    } while (0)

int main(void)
{
    const char *args[] = {"--kill-grace-ms", "1000", NULL};
    srv_start(&S, args);
    int fds = srv_fd_count(&S);
    RUN(test_order_and_live);
    RUN(test_pipeline);
    RUN(test_not_found_is_422);
    RUN(test_raw_binary);
    RUN(test_disconnect_kills);
    RUN(test_utf8_split);
    RUN(test_stdout_stderr_separation);
    RUN(test_base64_100mb);
    RUN(test_paused_reader_bounded);
    RUN(test_drain_waits_for_slow_reader);
    RUN(test_disconnect_flood);
    RUN(test_paused_hangup_frees_slot);
    RUN(test_stream_timeout);
    RUN(test_pipeline_volume);
    RUN(test_pipeline_failures);
    RUN(test_pipeline_stderr_steps);
    RUN(test_raw_stderr_and_signal);
    RUN(test_bad_query);
    CHECK_INT(srv_fd_settle(&S, fds, 2000), fds);
    CHECK_INT(srv_zombies(&S), 0);
    CHECK_INT(srv_stop(&S, 5000), 0);
    return check_status();
}
