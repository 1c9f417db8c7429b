/* fork jobs and their message channel through the real server: the seed's
 * parent/child exchange, ordering and loss under load, text fidelity, a
 * Python child on the descriptor protocol, the channel closing from either
 * side, invalid and internal messages, and a child that never reads. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
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

/* The messages so far (no follow). */
static long get_messages(const char *id, unsigned long long since, struct ndj *d)
{
    return get_ndj(&S, P("/v1/jobs/%s/messages?since=%llu", id, since), d);
}

/* Polls GET messages until at least n records (at most timeout_ms). */
static void await_messages(const char *id, size_t n, int timeout_ms, struct ndj *d)
{
    double end = now_s() + timeout_ms / 1000.0;
    for (;;) {
        get_messages(id, 0, d);
        if (d->n >= n || now_s() > end) break;
        ndj_free(d);
        sleep_ms(20);
    }
    if (d->n < n) fprintf(stderr, "await_messages %s: %zu of %zu\n", id, d->n, n);
}

/* The concatenated stdout "data" of a job's output so far. */
static void job_stdout(const char *id, struct buf *out)
{
    struct ndj d;
    get_ndj(&S, P("/v1/jobs/%s/output", id), &d);
    for (size_t i = 0; i < d.n; i++)
        if (!strcmp(ndj_event(&d, i), "stdout")) buf_appends(out, jstr(d.ev[i], "data"));
    ndj_free(&d);
}

static bool await_stdout(const char *id, const char *needle, int timeout_ms)
{
    double end = now_s() + timeout_ms / 1000.0;
    for (;;) {
        struct buf b;
        buf_init(&b, 1 << 24);
        job_stdout(id, &b);
        bool found = b.data && strstr(b.data, needle);
        if (!found && now_s() > end)
            fprintf(stderr, "stdout of %s: %s\n", id, b.data ? b.data : "");
        buf_free(&b);
        if (found) return true;
        if (now_s() > end) return false;
        sleep_ms(20);
    }
}

static long post_message(const char *id, const char *json, struct resp *keep)
{
    struct resp r;
    http_post_json(&S, P("/v1/jobs/%s/messages", id), json, &r);
    long st = r.status;
    if (keep)
        *keep = r;
    else
        resp_free(&r);
    return st;
}

static json_object *fork_job(const char *json, char *id)
{
    long st;
    json_object *o = start_job(&S, "/v1/fork", json, id, &st, NULL);
    CHECK_INT(st, 201);
    return o;
}

static void kill_job(const char *id)
{
    CHECK_INT(req_status(&S, "DELETE", P("/v1/jobs/%s", id), NULL), 204);
}

/* --- the seed ------------------------------------------------------------- */

static void test_seed_exchange(void)
{
    char id[128];
    json_object *o = fork_job("{\"module\":\"" SCRIPT("child.js") "\"}", id);
    CHECK_STR(jstr(o, "kind"), "fork");
    CHECK_STR(jstr(o, "state"), "running");
    CHECK(jint(o, "pid") > 0);
    json_object_put(o);

    /* child.js sends {foo:'bar'} as soon as it starts */
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    CHECK_INT(d.n, 1);
    CHECK_INT(d.n ? jint(d.ev[0], "seq") : 0, 1);
    CHECK_STR(d.n ? jstr(d.ev[0], "message.foo") : NULL, "bar");
    ndj_free(&d);

    struct resp r;
    CHECK_INT(post_message(id, "{\"hello\":\"world\"}", &r), 202);
    json_object *q = resp_json(&r);
    CHECK(jbool(q, "queued"));
    json_object_put(q);
    resp_free(&r);
    CHECK(await_stdout(id, "child got message { hello: 'world' }\n", 10000));

    /* the channel closes: the child sees 'disconnect', nothing keeps it alive;
     * a follower of the messages gets to the end */
    CURLM *m = curl_multi_init();
    struct follower f;
    follower_start(&f, m, &S, P("/v1/jobs/%s/messages?follow=true", id), 10000);
    multi_run(m, now_s() + 0.2, NULL, NULL);
    CHECK(!f.done);
    CHECK_INT(req_status(&S, "DELETE", P("/v1/jobs/%s/messages", id), NULL), 204);
    multi_run(m, now_s() + 5, NULL, NULL);
    CHECK(f.done);
    CHECK_INT(f.status, 200);
    CHECK_STR(f.body.data, "{\"seq\":1,\"message\":{\"foo\":\"bar\"}}\n");
    follower_free(&f, m);
    curl_multi_cleanup(m);
    o = wait_job(&S, id, 10000);
    CHECK_STR(jstr(o, "state"), "exited");
    CHECK_INT(jint(o, "exit_code"), 0);
    CHECK(jnull(o, "signal"));
    CHECK(!jbool(o, "killed"));
    json_object_put(o);
    CHECK_INT(post_message(id, "{\"late\":1}", NULL), 409);

    /* what it sent is still there after the end */
    get_messages(id, 0, &d);
    CHECK_INT(d.n, 1);
    CHECK_STR(d.n ? jstr(d.ev[0], "message.foo") : NULL, "bar");
    ndj_free(&d);
    /* and output is spawn, the line, exit */
    get_ndj(&S, P("/v1/jobs/%s/output", id), &d);
    CHECK_STR(ndj_event(&d, 0), "spawn");
    CHECK_STR(d.n ? ndj_event(&d, d.n - 1) : NULL, "exit");
    CHECK_INT(d.bad, 0);
    ndj_free(&d);
}

/* --- 10 000 messages, in order, none lost ---------------------------------- */

#define NECHO 10000

static bool got_all(void *arg)
{
    return ((struct follower *)arg)->lines >= NECHO;
}

static void test_echo_10000(void)
{
    char id[128];
    json_object_put(fork_job("{\"module\":\"" SCRIPT("echo.js") "\"}", id));
    double t0 = now_s();

    /* a live follower, driven between the posts */
    CURLM *m = curl_multi_init();
    struct follower f;
    follower_start(&f, m, &S, P("/v1/jobs/%s/messages?follow=true", id), 60000);
    f.stop_after = NECHO;

    CURL *c = curl_easy_init(); /* one handle: one keep-alive connection */
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, P("%s/v1/jobs/%s/messages", S.url, id));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, follower_write); /* only to swallow bodies */
    struct follower swallow = {0};
    buf_init(&swallow.body, 1 << 30);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &swallow);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    int not202 = 0;
    long connects = 0;
    for (int i = 0; i < NECHO; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        CURLcode cc = curl_easy_perform(c);
        long st = 0, nc = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc);
        connects += nc;
        if (cc != CURLE_OK || st != 202) {
            if (not202++ < 5) fprintf(stderr, "message %d: curl %d status %ld\n", i, cc, st);
        }
        buf_reset(&swallow.body);
        if (i % 64 == 0) {
            int running;
            curl_multi_perform(m, &running);
        }
    }
    double posted = now_s() - t0;
    CHECK_INT(not202, 0);
    CHECK_INT(connects, 1); /* keep-alive held */
    multi_run(m, now_s() + 30, got_all, &f);
    double all = now_s() - t0;

    struct ndj d;
    ndj_parse(&d, f.body.data ? f.body.data : "", f.body.len);
    CHECK_INT(d.bad, 0);
    CHECK_INT(d.n, NECHO);
    int wrong = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (jint(d.ev[i], "seq") != (long long)i + 1 ||
            jint(d.ev[i], "message.i") != (long long)i) {
            if (wrong++ < 5)
                fprintf(stderr, "record %zu: %s\n", i, json_object_to_json_string(d.ev[i]));
        }
    }
    CHECK_INT(wrong, 0);
    ndj_free(&d);
    fprintf(stderr, "echo: %d messages posted in %.2f s, all echoed back in %.2f s\n", NECHO,
            posted, all);

    follower_free(&f, m);
    curl_multi_cleanup(m);
    buf_free(&swallow.body);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    /* since= resumes exactly where asked */
    get_messages(id, NECHO - 3, &d);
    CHECK_INT(d.n, 3);
    CHECK_INT(d.n ? jint(d.ev[0], "seq") : 0, NECHO - 2);
    CHECK_INT(d.n ? jint(d.ev[0], "message.i") : 0, NECHO - 3);
    ndj_free(&d);
    kill_job(id);
}

/* --- text fidelity ---------------------------------------------------------- */

/* "line1\nline2 "q" \ é 😀 U+2028 end" */
static const char SPECIAL[] = "line1\nline2 \"q\" \\ \xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8 end";
static const int SPECIAL_CPS[] = {'l',  'i', 'n',     'e', '1',    '\n', 'l', 'i',  'n',
                                  'e',  '2', ' ',     '"', 'q',    '"',  ' ', '\\', ' ',
                                  0xe9, ' ', 0x1f600, ' ', 0x2028, ' ',  'e', 'n',  'd'};

static void check_cps(json_object *msg, const char *what)
{
    json_object *cps = jget(msg, "cps");
    size_t n = sizeof SPECIAL_CPS / sizeof SPECIAL_CPS[0];
    bool same = cps && json_object_array_length(cps) == n;
    for (size_t i = 0; same && i < n; i++)
        same = json_object_get_int(json_object_array_get_idx(cps, i)) == SPECIAL_CPS[i];
    if (!same) fprintf(stderr, "%s: child saw %s\n", what, json_object_to_json_string(msg));
    CHECK(same);
    CHECK_STR(jstr(msg, "s"), SPECIAL);
    CHECK(jbool(msg, "same"));
}

static void test_text_fidelity(void)
{
    char id[128];
    json_object_put(
        fork_job("{\"module\":\"" SCRIPT("forkkit.js") "\",\"args\":[\"unicode\"]}", id));

    /* child → caller: the child's own string arrives intact */
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    CHECK_STR(d.n ? jstr(d.ev[0], "message.s") : NULL, SPECIAL);
    ndj_free(&d);

    /* caller → child, three spellings of the same string */
    static const char *const bodies[] = {
        /* raw UTF-8, U+2028 raw */
        "{\"s\":\"line1\\nline2 \\\"q\\\" \\\\ \xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8 end\"}",
        /* all escaped, surrogate pair for the emoji */
        "{\"s\":\"line1\\nline2 \\\"q\\\" \\\\ \\u00e9 \\ud83d\\ude00 \\u2028 end\"}",
        /* pretty-printed over several lines: still one message */
        "{\n  \"s\" :\n    \"line1\\nline2 \\\"q\\\" \\\\ \xc3\xa9 \\ud83d\\ude00 \xe2\x80\xa8 "
        "end\"\r\n}\n",
    };
    for (size_t i = 0; i < 3; i++) {
        CHECK_INT(post_message(id, bodies[i], NULL), 202);
        await_messages(id, i + 2, 10000, &d);
        CHECK_INT(d.n, i + 2);
        if (d.n == i + 2) {
            json_object *msg = jget(d.ev[i + 1], "message");
            check_cps(msg, bodies[i]);
        }
        ndj_free(&d);
    }
    /* the raw line as served keeps U+2028 and the escapes, and is one line */
    struct resp r;
    http_get(&S, P("/v1/jobs/%s/messages?since=1", id), &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(resp_header(&r, "Content-Type"), "application/x-ndjson");
    size_t lines = 0;
    for (size_t i = 0; i < r.body.len; i++)
        lines += r.body.data[i] == '\n';
    CHECK_INT(lines, 3);
    resp_free(&r);
    kill_job(id);
}

/* --- a Python child ----------------------------------------------------------- */

static void test_python_worker(void)
{
    char id[128];
    json_object_put(
        fork_job("{\"module\":\"" SCRIPT("worker.py") "\",\"exec_path\":\"python3\"}", id));
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    CHECK_STR(d.n ? jstr(d.ev[0], "message.ready") : NULL, "python");
    CHECK_STR(d.n ? jstr(d.ev[0], "message.serialization") : NULL, "json");
    ndj_free(&d);
    CHECK_INT(post_message(id, "{\"n\":21,\"t\":\"\xc3\xa9\\n\"}", NULL), 202);
    CHECK_INT(post_message(id, "[1,2,{\"n\":null}]", NULL), 202);
    CHECK_INT(post_message(id, "\"just a string\"", NULL), 202);
    await_messages(id, 4, 10000, &d);
    CHECK_INT(d.n, 4);
    if (d.n == 4) {
        CHECK_INT(jint(d.ev[1], "message.doubled"), 42);
        CHECK_STR(jstr(d.ev[1], "message.got.t"), "\xc3\xa9\n");
        CHECK_INT(json_object_array_length(jget(d.ev[2], "message.got")), 3);
        CHECK_STR(jstr(d.ev[3], "message.got"), "just a string");
    }
    ndj_free(&d);
    /* closing the channel ends its read loop: it exits 0 */
    CHECK_INT(req_status(&S, "DELETE", P("/v1/jobs/%s/messages", id), NULL), 204);
    json_object *o = wait_job(&S, id, 10000);
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    CHECK(await_stdout(id, "worker: channel closed", 1000));
}

/* --- the channel closing ------------------------------------------------------- */

/* POSTs until 409 (the close is seen asynchronously); returns the status that
 * ended the loop, and counts the 202s before it. */
static long post_until_409(const char *id, int timeout_ms)
{
    double end = now_s() + timeout_ms / 1000.0;
    long st;
    while ((st = post_message(id, "{\"more\":1}", NULL)) == 202 && now_s() < end)
        sleep_ms(20);
    return st;
}

static void test_child_disconnects(void)
{
    char id[128];
    json_object_put(
        fork_job("{\"module\":\"" SCRIPT("forkkit.js") "\",\"args\":[\"disconnect\"]}", id));
    CHECK_INT(post_message(id, "{\"x\":1}", NULL), 202);
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    CHECK_INT(d.n ? jint(d.ev[0], "message.bye.x") : 0, 1);
    ndj_free(&d);
    CHECK_INT(post_until_409(id, 5000), 409);
    /* the child lives on; only its channel is gone */
    struct resp r;
    http_get(&S, P("/v1/jobs/%s", id), &r);
    json_object *o = resp_json(&r);
    CHECK_STR(jstr(o, "state"), "running");
    json_object_put(o);
    resp_free(&r);
    /* following the messages ends at once: the channel is closed */
    double t = now_s();
    CHECK_INT(get_ndj(&S, P("/v1/jobs/%s/messages?follow=true", id), &d), 200);
    CHECK(now_s() - t < 2);
    CHECK_INT(d.n, 1);
    ndj_free(&d);
    kill_job(id);
}

static void test_child_exits_mid_conversation(void)
{
    char id[128];
    json_object_put(fork_job("{\"module\":\"" SCRIPT("forkkit.js") "\",\"args\":[\"exit\"]}", id));
    CHECK_INT(post_message(id, "{\"a\":1}", NULL), 202);
    json_object *o = wait_job(&S, id, 10000);
    CHECK_STR(jstr(o, "state"), "exited");
    CHECK_INT(jint(o, "exit_code"), 3);
    json_object_put(o);
    struct resp r;
    CHECK_INT(post_message(id, "{\"a\":2}", &r), 409);
    json_object *e = resp_json(&r);
    CHECK_STR(jstr(e, "error.code"), "ERR_CONFLICT");
    json_object_put(e);
    resp_free(&r);
    /* its last words were kept */
    struct ndj d;
    get_messages(id, 0, &d);
    CHECK_INT(d.n, 1);
    CHECK_INT(d.n ? jint(d.ev[0], "message.last.a") : 0, 1);
    ndj_free(&d);
}

/* DELETE /messages ends a follower of the messages, the child living on. */
static void test_close_channel_ends_follower(void)
{
    char id[128];
    json_object_put(
        fork_job("{\"module\":\"" SCRIPT("forkkit.js") "\",\"args\":[\"linger\"]}", id));
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    ndj_free(&d);
    CURLM *m = curl_multi_init();
    struct follower f;
    follower_start(&f, m, &S, P("/v1/jobs/%s/messages?follow=true", id), 10000);
    multi_run(m, now_s() + 0.2, NULL, NULL);
    CHECK(!f.done);
    /* on a connection the client keeps open, and no other request meanwhile */
    CURL *keep = curl_easy_init();
    curl_easy_setopt(keep, CURLOPT_URL, P("%s/v1/jobs/%s/messages", S.url, id));
    curl_easy_setopt(keep, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(keep, CURLOPT_TIMEOUT_MS, 5000L);
    long st = 0;
    CHECK_INT(curl_easy_perform(keep), CURLE_OK);
    curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &st);
    CHECK_INT(st, 204);
    multi_run(m, now_s() + 1.0, NULL, NULL);
    /* BUG: as for DELETE /v1/jobs/{id} (see it_jobs): the follower is woken
     * from inside the DELETE's MHD callback and the wake-up is lost until
     * another socket event. */
    CHECK(f.done);
    curl_easy_cleanup(keep);
    multi_run(m, now_s() + 5, NULL, NULL);
    CHECK(f.done);
    CHECK_INT(f.status, 200);
    CHECK_STR(f.body.data, "{\"seq\":1,\"message\":{\"hello\":1}}\n");
    follower_free(&f, m);
    curl_multi_cleanup(m);
    CHECK(await_stdout(id, "disconnected\n", 5000));
    CHECK_INT(post_message(id, "{}", NULL), 409);
    kill_job(id);
}

/* --- bad and internal messages ------------------------------------------------- */

static void test_invalid_message(void)
{
    char id[128];
    json_object_put(fork_job("{\"module\":\"" SCRIPT("echo.js") "\"}", id));
    static const char *const bad[] = {"{bad", "{\"a\":1} x", "", "{\"a\":1}{\"b\":2}", "[1,]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct resp r;
        CHECK_INT(post_message(id, bad[i], &r), 400);
        json_object *e = resp_json(&r);
        CHECK_STR(jstr(e, "error.code"), "ERR_INVALID_JSON");
        json_object_put(e);
        resp_free(&r);
    }
    /* not JSON by type */
    struct resp r;
    http_req(&S, "POST", P("/v1/jobs/%s/messages", id), "text/plain", "{}", 2, NULL, 0, &r);
    CHECK_INT(r.status, 415);
    resp_free(&r);
    /* the child got none of it and still answers */
    CHECK_INT(post_message(id, "{\"after\":1}", NULL), 202);
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    sleep_ms(100);
    ndj_free(&d);
    get_messages(id, 0, &d);
    CHECK_INT(d.n, 1);
    CHECK_INT(d.n ? jint(d.ev[0], "message.after") : 0, 1);
    ndj_free(&d);
    http_get(&S, P("/v1/jobs/%s", id), &r);
    CHECK_HAS(r.body.data, "\"state\":\"running\"");
    resp_free(&r);
    kill_job(id);
}

static void test_internal_messages_hidden(void)
{
    char id[128];
    json_object_put(
        fork_job("{\"module\":\"" SCRIPT("forkkit.js") "\",\"args\":[\"internal\"]}", id));
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    ndj_free(&d);
    sleep_ms(100);
    get_messages(id, 0, &d);
    CHECK_INT(d.n, 1);
    CHECK_INT(d.n ? jint(d.ev[0], "seq") : 0, 1);
    CHECK_INT(d.n ? jint(d.ev[0], "message.ok") : 0, 1);
    CHECK(d.n && !jget(d.ev[0], "message.cmd"));
    ndj_free(&d);
    struct resp r;
    http_get(&S, P("/v1/jobs/%s/messages", id), &r);
    CHECK(r.body.data && !strstr(r.body.data, "NODE_"));
    resp_free(&r);
    kill_job(id);
}

/* --- a child that never reads ------------------------------------------------- */

/* head, then `fill` repeated size times, then tail (malloc'd; *len its length). */
static char *padded(const char *head, char fill, size_t size, const char *tail, size_t *len)
{
    size_t h = strlen(head), t = strlen(tail);
    char *b = malloc(h + size + t + 1);
    memcpy(b, head, h);
    memset(b + h, fill, size);
    memcpy(b + h + size, tail, t + 1);
    *len = h + size + t;
    return b;
}

static void test_never_reads(void)
{
    char id[128];
    json_object_put(fork_job(
        "{\"module\":\"" SCRIPT("worker.py") "\",\"exec_path\":\"python3\",\"args\":[\"noread\"]}",
        id));
    size_t n;
    char *body = padded("{\"pad\":\"", 'A', 256 * 1024, "\"}", &n);

    long long rss0 = srv_proc_field(&S, "status", "VmRSS");
    int accepted = 0, full = 0, other = 0;
    for (int i = 0; i < 24 && !full; i++) {
        struct resp r;
        http_req(&S, "POST", P("/v1/jobs/%s/messages", id), "application/json", body, n, NULL,
                 10000, &r);
        if (r.status == 202)
            accepted++;
        else if (r.status == 503) {
            full++;
            json_object *e = resp_json(&r);
            CHECK_STR(jstr(e, "error.code"), "ERR_SERVICE_UNAVAILABLE");
            json_object_put(e);
        } else {
            other++;
            fprintf(stderr, "never_reads: %ld %.300s\n", r.status, r.body.data ? r.body.data : "");
        }
        resp_free(&r);
    }
    CHECK_INT(full, 1);
    CHECK_INT(other, 0);
    /* 1 MiB queued plus what the socket holds: a handful of 256 KiB messages */
    CHECK(accepted >= 3 && accepted <= 12);
    /* keep pushing: every one refused, memory flat */
    for (int i = 0; i < 150; i++) {
        struct resp r;
        http_req(&S, "POST", P("/v1/jobs/%s/messages", id), "application/json", body, n, NULL,
                 10000, &r);
        if (r.status != 503) other++;
        resp_free(&r);
    }
    CHECK_INT(other, 0);
    long long rss1 = srv_proc_field(&S, "status", "VmRSS");
    fprintf(stderr, "never_reads: %d accepted, VmRSS %lld kB -> %lld kB\n", accepted, rss0, rss1);
    /* 150 refused 256 KiB bodies: nothing kept. (Not measurable under
     * ASan, whose quarantine holds every freed block for a while.) */
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(rss1 - rss0 < 16 * 1024);
#endif
    /* spawnd is fine: health, and another fork child answers */
    CHECK_INT(req_status(&S, "GET", "/healthz", NULL), 200);
    char id2[128];
    json_object_put(fork_job("{\"module\":\"" SCRIPT("echo.js") "\"}", id2));
    CHECK_INT(post_message(id2, "{\"alive\":true}", NULL), 202);
    struct ndj d;
    await_messages(id2, 1, 10000, &d);
    CHECK(d.n == 1 && jbool(d.ev[0], "message.alive"));
    ndj_free(&d);
    kill_job(id2);
    kill_job(id);
    free(body);
}

/* --- many messages in one streamed request ------------------------------- */

static long post_ndjson(const char *id, const char *body, size_t n, struct resp *keep)
{
    struct resp r;
    http_req(&S, "POST", P("/v1/jobs/%s/messages", id), "application/x-ndjson", body, n, NULL,
             30000, &r);
    long st = r.status;
    if (keep)
        *keep = r;
    else
        resp_free(&r);
    return st;
}

static void test_ndjson_upload(void)
{
    char id[128];
    json_object_put(fork_job("{\"module\":\"" SCRIPT("echo.js") "\"}", id));
    /* a blank line is skipped, CRLF is fine, the last line needs no newline */
    static const char ok[] = "{\"n\": 1}\n\n  \n{\"n\":[2, 3]}\r\n\"three\"";
    struct resp r;
    CHECK_INT(post_ndjson(id, ok, strlen(ok), &r), 202);
    json_object *a = resp_json(&r);
    CHECK(jbool(a, "queued"));
    CHECK_INT(jint(a, "count"), 3);
    json_object_put(a);
    resp_free(&r);
    struct ndj d;
    await_messages(id, 3, 10000, &d);
    CHECK_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_INT(jint(d.ev[0], "message.n"), 1);
        CHECK_STR(json_object_to_json_string_ext(jget(d.ev[1], "message"), JSON_C_TO_STRING_PLAIN),
                  "{\"n\":[2,3]}");
        CHECK_STR(jstr(d.ev[2], "message"), "three");
    }
    ndj_free(&d);

    /* a bad line: what came before it is sent, nothing after it */
    static const char bad[] = "{\"n\":4}\nnope\n{\"n\":5}\n";
    CHECK_INT(post_ndjson(id, bad, strlen(bad), &r), 400);
    json_object *e = resp_json(&r);
    CHECK_STR(jstr(e, "error.code"), "ERR_INVALID_JSON");
    const char *msg = jstr(e, "error.message");
    CHECK(msg && strstr(msg, "line 2:") && strstr(msg, "the 1 messages before it were queued"));
    json_object_put(e);
    resp_free(&r);
    CHECK_INT(post_message(id, "{\"n\":6}", NULL), 202);
    await_messages(id, 5, 10000, &d);
    CHECK_INT(d.n, 5);
    if (d.n == 5) {
        CHECK_INT(jint(d.ev[3], "message.n"), 4);
        CHECK_INT(jint(d.ev[4], "message.n"), 6);
    }
    ndj_free(&d);

    /* a line over --max-body-bytes (1 MiB): 413, the line before it sent */
    size_t n;
    char *body = padded("{\"n\":7}\n\"", 'x', 1200 * 1024, "\"\n{\"n\":8}\n", &n);
    CHECK_INT(post_ndjson(id, body, n, &r), 413);
    e = resp_json(&r);
    CHECK_STR(jstr(e, "error.code"), "ERR_PAYLOAD_TOO_LARGE");
    msg = jstr(e, "error.message");
    CHECK(msg && strstr(msg, "line 2:"));
    json_object_put(e);
    resp_free(&r);
    free(body);
    await_messages(id, 6, 10000, &d);
    CHECK_INT(d.n, 6);
    ndj_free(&d);

    /* unknown job 404; a closed channel 409; not a fork job 409 */
    CHECK_INT(post_ndjson("nosuchjob", "1\n", 2, NULL), 404);
    CHECK_INT(req_status(&S, "DELETE", P("/v1/jobs/%s/messages", id), NULL), 204);
    CHECK_INT(post_ndjson(id, "1\n", 2, NULL), 409);
    kill_job(id);
    char id2[128];
    long st;
    json_object_put(start_job(&S, "/v1/jobs",
                              "{\"kind\":\"execFile\",\"file\":\"sleep\",\"args\":[\"5\"]}", id2,
                              &st, NULL));
    CHECK_INT(st, 201);
    CHECK_INT(post_ndjson(id2, "1\n", 2, NULL), 409);
    kill_job(id2);
}

/* A child that does not read for a while: the upload waits for it (it is
 * suspended while the channel's 1 MiB queue is full) instead of failing,
 * and every message arrives, in order. */
static void test_ndjson_upload_waits(void)
{
    char id[128];
    json_object_put(fork_job(
        "{\"module\":\"" SCRIPT("worker.py") "\",\"exec_path\":\"python3\",\"args\":[\"late\"]}",
        id));
    enum { N = 3000 };
    char pad[1001];
    memset(pad, 'p', 1000);
    pad[1000] = 0;
    struct buf body;
    buf_init(&body, 8 << 20);
    for (int i = 1; i <= N; i++) {
        char line[1100];
        snprintf(line, sizeof line, "{\"n\":%d,\"pad\":\"%s\"}\n", i, pad);
        buf_appends(&body, line);
    }
    double t0 = now_s();
    struct resp r;
    CHECK_INT(post_ndjson(id, body.data, body.len, &r), 202);
    json_object *a = resp_json(&r);
    CHECK_INT(jint(a, "count"), N);
    json_object_put(a);
    resp_free(&r);
    /* 3 MB could not all be queued before the child started reading */
    CHECK(now_s() - t0 > 0.5);
    struct ndj d;
    await_messages(id, N / 500, 20000, &d);
    CHECK_INT(d.n, N / 500);
    if (d.n == N / 500) {
        CHECK_INT(jint(d.ev[d.n - 1], "message.count"), N);
        CHECK_INT(jint(d.ev[d.n - 1], "message.sum"), (long long)N * (N + 1) / 2);
    }
    ndj_free(&d);
    buf_free(&body);
    kill_job(id);
}

/* A client that goes away in the middle of a streamed upload, while the
 * upload waits for a child that does not read: spawnd closes the
 * connection (the fd checks at the end see nothing left) and goes on. */
static void test_ndjson_upload_client_gone(void)
{
    char id[128];
    json_object_put(fork_job(
        "{\"module\":\"" SCRIPT("worker.py") "\",\"exec_path\":\"python3\",\"args\":[\"noread\"]}",
        id));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/jobs/%s/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
                      id);
    CHECK(send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn);
    /* chunks of 64 KiB lines until spawnd stops taking them (the 1 MiB
     * queue and the socket buffers are full) */
    enum { LINE = 64 * 1024 };
    char *chunk = malloc(LINE + 64);
    int cn = sprintf(chunk, "%x\r\n\"", LINE);
    memset(chunk + cn, 'm', LINE - 3);
    cn += LINE - 3;
    cn += sprintf(chunk + cn, "\"\n\r\n");
    size_t sent = 0;
    double end = now_s() + 5;
    while (now_s() < end) {
        ssize_t w = send(fd, chunk, (size_t)cn, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EAGAIN) {
            sleep_ms(200);
            w = send(fd, chunk, (size_t)cn, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno == EAGAIN) break; /* still full: spawnd is waiting */
        }
        if (w <= 0) break;
        sent += (size_t)w;
    }
    CHECK(sent > 1024 * 1024 && sent < 64u * 1024 * 1024);
    close(fd);
    free(chunk);
    CHECK_INT(req_status(&S, "GET", "/healthz", NULL), 200);
    /* the queue is (nearly) full: a small message may still fit */
    long st = post_message(id, "{\"after\":1}", NULL);
    CHECK(st == 202 || st == 503);
    kill_job(id);
}

/* --- odds and ends --------------------------------------------------------------- */

static void test_fork_errors(void)
{
    struct resp r;
    http_post_json(&S, "/v1/fork", "{\"module\":\"x.js\",\"exec_path\":\"no-such-node-xyz\"}", &r);
    CHECK_INT(r.status, 422);
    CHECK_HAS(r.body.data, "\"ENOENT\"");
    resp_free(&r);
    http_post_json(&S, "/v1/fork", "{\"args\":[]}", &r);
    CHECK_INT(r.status, 400);
    resp_free(&r);
    http_post_json(&S, "/v1/fork", "{\"module\":\"x.js\",\"shell\":true}", &r);
    CHECK_INT(r.status, 400); /* fork has no shell option */
    resp_free(&r);
    /* a missing module: node itself fails, as a started process */
    char id[128];
    json_object_put(fork_job("{\"module\":\"/nonexistent/mod.js\"}", id));
    json_object *o = wait_job(&S, id, 10000);
    CHECK_INT(jint(o, "exit_code"), 1);
    json_object_put(o);
    /* a job without a channel has no messages */
    long st;
    json_object_put(
        start_job(&S, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"true\"}", id, &st, NULL));
    CHECK_INT(st, 201);
    CHECK_INT(req_status(&S, "GET", P("/v1/jobs/%s/messages", id), NULL), 409);
    CHECK_INT(post_message(id, "{}", NULL), 409);
    json_object_put(wait_job(&S, id, 10000));
}

/* More messages than the retention keeps, while nobody reads: the contract
 * says nothing sent is lost while the job is retained. */
static void test_messages_retained(void)
{
    char id[128];
    json_object_put(
        fork_job("{\"module\":\"" SCRIPT("forkkit.js") "\",\"args\":[\"flood\",\"12000\"]}", id));
    struct ndj d;
    double end = now_s() + 20;
    unsigned long long last = 0;
    /* wait until the last one is there */
    for (;;) {
        struct resp r;
        http_get(&S, P("/v1/jobs/%s/messages?since=11999", id), &r);
        bool there = r.body.data && strstr(r.body.data, "\"seq\":12000");
        resp_free(&r);
        if (there || now_s() > end) break;
        sleep_ms(50);
    }
    get_messages(id, 0, &d);
    CHECK_INT(d.bad, 0);
    size_t kept = 0;
    for (size_t i = 0; i < d.n; i++)
        if (jget(d.ev[i], "seq")) {
            kept++;
            last = (unsigned long long)jint(d.ev[i], "seq");
        }
    CHECK_INT(last, 12000);
    /* BUG: messages are capped by --job-output-bytes as output is: the oldest
     * are dropped (a {"event":"dropped"} line first) although the contract
     * says nothing sent is lost while the job is retained. */
    if (kept != 12000)
        fprintf(stderr, "messages: %zu of 12000 retained, first line %s\n", kept,
                d.n ? json_object_to_json_string(d.ev[0]) : "-");
    JOB_KNOWN_BUG(kept == 12000, "messages nobody read yet are dropped past --job-output-bytes");
    ndj_free(&d);
    kill_job(id);
}

/* A line from the child over the message size limit is dropped whole. */
static void test_oversize_from_child(void)
{
    char id[128];
    json_object_put(
        fork_job("{\"module\":\"" SCRIPT(
                     "worker.py") "\",\"exec_path\":\"python3\",\"args\":[\"oversize\"]}",
                 id));
    struct ndj d;
    double end = now_s() + 10;
    bool after = false;
    while (!after && now_s() < end) {
        get_messages(id, 0, &d);
        for (size_t i = 0; i < d.n; i++)
            after = after || jint(d.ev[i], "message.after") == 1;
        if (!after) ndj_free(&d);
        if (!after) sleep_ms(20);
    }
    CHECK(after);
    CHECK(srv_log_has(&S, "message over the size limit dropped"));
    /* BUG: only the part before the limit is dropped; the rest of the line is
     * taken as a new line (channel_bytes() returns with j->line emptied and
     * keeps appending), so here the tail of the 1.5 MB number arrives as a
     * message of its own before {"after":1}. */
    if (d.n != 1)
        fprintf(stderr, "oversize: %zu messages, the first %.60s...\n", d.n,
                d.n ? json_object_to_json_string(d.ev[0]) : "-");
    CHECK(d.n == 1);
    ndj_free(&d);
    kill_job(id);
}

/* The largest messages: up to the body limit, through the channel and back. */
static char *message_of(size_t size)
{
    char *b = malloc(size + 1);
    memcpy(b, "{\"p\":\"", 6);
    memset(b + 6, 'A', size - 8);
    memcpy(b + size - 2, "\"}", 3);
    return b;
}

/* Whether the echo child sent back {"small":v} within 10 s. */
static bool await_small(const char *id, long long v)
{
    double end = now_s() + 10;
    while (now_s() < end) {
        struct ndj d;
        get_messages(id, 0, &d);
        bool seen = false;
        for (size_t i = 0; i < d.n; i++)
            seen = seen || jint(d.ev[i], "message.small") == v;
        ndj_free(&d);
        if (seen) return true;
        sleep_ms(20);
    }
    return false;
}

static void test_big_messages(void)
{
    char id[128];
    json_object_put(fork_job("{\"module\":\"" SCRIPT("echo.js") "\"}", id));
    size_t max = 1048576; /* --max-body-bytes default */
    char *b = message_of(max - 1);
    struct resp r;
    http_req(&S, "POST", P("/v1/jobs/%s/messages", id), "application/json", b, max - 1, NULL, 10000,
             &r);
    CHECK_INT(r.status, 202);
    resp_free(&r);
    struct ndj d;
    await_messages(id, 1, 10000, &d);
    const char *p = d.n ? jstr(d.ev[0], "message.p") : NULL;
    CHECK(p && strlen(p) == max - 1 - 8 && strspn(p, "A") == max - 9);
    ndj_free(&d);
    free(b);
    b = message_of(max + 1);
    http_req(&S, "POST", P("/v1/jobs/%s/messages", id), "application/json", b, max + 1, NULL, 10000,
             &r);
    CHECK_INT(r.status, 413);
    resp_free(&r);
    free(b);
    /* BUG: a body of exactly --max-body-bytes is accepted by the HTTP layer
     * but can never be queued: with its "\n" it is one byte over the 1 MiB
     * channel queue (EXEC_CHANNEL_QUEUE), so it gets 503 "the child is not
     * reading its channel: 1048576 bytes are queued" with an empty queue and
     * a reading child, on every retry. With --max-body-bytes above 1 MiB every
     * message over 1 MiB is refused that way. */
    b = message_of(max);
    http_req(&S, "POST", P("/v1/jobs/%s/messages", id), "application/json", b, max, NULL, 10000,
             &r);
    if (r.status != 202)
        fprintf(stderr, "max-size message: %ld %.120s\n", r.status, r.body.data ? r.body.data : "");
    CHECK(r.status == 202);
    resp_free(&r);
    free(b);
    /* and the channel still works */
    CHECK_INT(post_message(id, "{\"small\":1}", NULL), 202);
    CHECK(await_small(id, 1));

    /* A 1 MiB message and a small one handled in the same batch of events
     * (pipelined on one connection): the channel's queue is written when the
     * batch is done, but the second must not find it full and get 503. */
    b = message_of(max - 1);
    struct buf reqs;
    buf_init(&reqs, 4 * max);
    buf_printf(&reqs,
               "POST /v1/jobs/%s/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
               id, S.port, max - 1);
    buf_append(&reqs, b, max - 1);
    buf_printf(&reqs,
               "POST /v1/jobs/%s/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
               "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"small\":2}",
               id, S.port);
    char *got = srv_raw_exchange(&S, reqs.data, reqs.len, NULL, 10000);
    const char *second = strstr(got, "HTTP/1.1 ");
    second = second ? strstr(second + 1, "HTTP/1.1 ") : NULL;
    CHECK(strncmp(got, "HTTP/1.1 202", 12) == 0);
    CHECK(second && strncmp(second, "HTTP/1.1 202", 12) == 0);
    free(got);
    buf_free(&reqs);
    free(b);
    CHECK(await_small(id, 2));
    kill_job(id);
}

int main(void)
{
    double t0 = now_s();
    srv_start(&S, NULL);
    int fds = srv_fd_settle(&S, -1, 2000);

    test_seed_exchange();
    test_echo_10000();
    test_text_fidelity();
    test_python_worker();
    test_child_disconnects();
    test_child_exits_mid_conversation();
    test_close_channel_ends_follower();
    test_invalid_message();
    test_internal_messages_hidden();
    test_never_reads();
    test_ndjson_upload();
    test_ndjson_upload_waits();
    test_ndjson_upload_client_gone();
    test_fork_errors();
    test_messages_retained();
    test_oversize_from_child();
    test_big_messages();

    CHECK_INT(descendants_settle(&S, 0, 3000), 0);
    CHECK_INT(srv_fd_settle(&S, fds, 3000), fds);
    CHECK_INT(srv_zombies(&S), 0);
    CHECK_INT(srv_stop(&S, 10000), 0);
    fprintf(stderr, "it_fork: %.1f s\n", now_s() - t0);
    return check_status();
}
