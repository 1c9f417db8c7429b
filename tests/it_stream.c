/* spawn and pipeline streams through the real server: event order, live
 * delivery, encodings, the raw form, backpressure, client disconnect. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

int main(void)
{
    srv_start(&S, NULL);
    int fds = srv_fd_count(&S);
    test_order_and_live();
    test_pipeline();
    test_not_found_is_422();
    test_raw_binary();
    test_disconnect_kills();
    usleep(200000);
    CHECK_INT(srv_fd_count(&S), fds);
    CHECK_INT(srv_zombies(&S), 0);
    CHECK_INT(srv_stop(&S, 5000), 0);
    return check_status();
}
