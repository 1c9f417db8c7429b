/* exec and execFile through the real server: results, options, errors, and
 * that nothing leaks. */
#include <curl/curl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "jobkit.h"

static struct srv S;

/* POST json to path, expect status, return the parsed body. */
static json_object *post(const char *path, const char *json, long status)
{
    struct resp r;
    http_post_json(&S, path, json, &r);
    if (r.status != status)
        fprintf(stderr, "POST %s %s -> %ld (want %ld): %s\n", path, json, r.status, status,
                r.body.data ? r.body.data : "");
    CHECK_INT(r.status, status);
    json_object *o = resp_json(&r);
    resp_free(&r);
    return o;
}

static void test_uptime(void)
{
    json_object *o = post("/v1/exec", "{\"command\":\"uptime\"}", 200);
    CHECK_INT(jint(o, "exit_code"), 0);
    CHECK(jint(o, "pid") > 0);
    CHECK_HAS(jstr(o, "stdout"), "load average");
    CHECK(jnull(o, "signal"));
    CHECK(jnull(o, "error"));
    CHECK(!jbool(o, "timed_out") && !jbool(o, "killed") && !jbool(o, "truncated"));
    CHECK(jget(o, "duration_ms") != NULL);
    json_object_put(o);
}

static void test_execfile_args_and_exit_code(void)
{
    json_object *o = post("/v1/execFile",
                          "{\"file\":\"sh\",\"args\":[\"-c\",\"echo out; echo err >&2; exit 3\"]}", 200);
    CHECK_INT(jint(o, "exit_code"), 3);
    CHECK_STR(jstr(o, "stdout"), "out\n");
    CHECK_STR(jstr(o, "stderr"), "err\n");
    json_object_put(o);
}

static void test_child_view(void)
{
    char body[512];
    snprintf(body, sizeof body, "{\"file\":\"%s\"}", helper("childview"));
    json_object *o = post("/v1/execFile", body, 200);
    json_object *v = json_tokener_parse(jstr(o, "stdout"));
    CHECK(v != NULL);
    if (v) {
        CHECK_INT(json_object_array_length(jget(v, "fds")), 3);
        CHECK_STR(jstr(v, "sigblk"), "0000000000000000");
        CHECK_STR(jstr(v, "sigign"), "0000000000000000");
        CHECK_INT(jint(v, "sid"), jint(v, "pid"));
        CHECK_INT(jint(v, "pgid"), jint(v, "pid"));
        json_object_put(v);
    }
    json_object_put(o);
}

static void test_not_found(void)
{
    json_object *o = post("/v1/execFile", "{\"file\":\"no-such-program-xyz\"}", 422);
    CHECK_STR(jstr(o, "error.code"), "ENOENT");
    CHECK_INT(jint(o, "error.errno"), -2);
    CHECK_STR(jstr(o, "error.syscall"), "spawn no-such-program-xyz");
    CHECK_STR(jstr(o, "error.path"), "no-such-program-xyz");
    json_object_put(o);
    o = post("/v1/execFile", "{\"file\":\"true\",\"cwd\":\"/no/such/dir\"}", 422);
    CHECK_STR(jstr(o, "error.code"), "ENOENT");
    json_object_put(o);
    o = post("/v1/execFile", "{\"file\":\"/etc/passwd\"}", 422);
    CHECK_STR(jstr(o, "error.code"), "EACCES");
    json_object_put(o);
}

static void test_timeout_kills_group(void)
{
    json_object *o = post("/v1/exec",
                          "{\"command\":\"sleep 100 & sleep 100; wait\",\"timeout_ms\":300}", 200);
    CHECK(jbool(o, "timed_out"));
    CHECK(jbool(o, "killed"));
    CHECK_STR(jstr(o, "signal"), "SIGTERM");
    CHECK(jnull(o, "exit_code"));
    json_object_put(o);
    usleep(200000);
    CHECK_INT(srv_descendants(&S), 0);
}

static void test_sigterm_ignored_escalates(void)
{
    /* kill-grace is 500 ms for this server */
    json_object *o = post("/v1/exec",
                          "{\"command\":\"trap '' TERM; sleep 30 & wait; sleep 30\",\"timeout_ms\":200}",
                          200);
    CHECK(jbool(o, "timed_out"));
    CHECK_STR(jstr(o, "signal"), "SIGKILL");
    json_object_put(o);
    usleep(300000);
    CHECK_INT(srv_descendants(&S), 0);
}

static void test_max_buffer(void)
{
    json_object *o =
        post("/v1/exec", "{\"command\":\"yes | head -c 100000\",\"max_buffer\":1000}", 200);
    CHECK(jbool(o, "truncated"));
    CHECK(jbool(o, "killed"));
    CHECK_INT(strlen(jstr(o, "stdout") ? jstr(o, "stdout") : ""), 1000);
    CHECK_STR(jstr(o, "error.code"), "ERR_CHILD_PROCESS_STDIO_MAXBUFFER");
    CHECK_STR(jstr(o, "error.message"), "stdout maxBuffer length exceeded");
    json_object_put(o);
}

static void test_stdin_env_cwd_argv0(void)
{
    json_object *o = post("/v1/exec", "{\"command\":\"cat; echo $FOO; pwd\",\"stdin\":\"hello \","
                                      "\"env\":{\"FOO\":\"bar\",\"PATH\":\"/usr/bin:/bin\"},\"cwd\":\"/tmp\"}",
                          200);
    CHECK_STR(jstr(o, "stdout"), "hello bar\n/tmp\n");
    json_object_put(o);
    o = post("/v1/execFile", "{\"file\":\"sh\",\"args\":[\"-c\",\"cat | od -An -c\"],"
                             "\"stdin\":\"AAEC\",\"stdin_encoding\":\"base64\"}",
             200);
    CHECK_HAS(jstr(o, "stdout"), "\\0 001 002");
    json_object_put(o);
    o = post("/v1/execFile", "{\"file\":\"sh\",\"args\":[\"-c\",\"echo $0\"],\"argv0\":\"renamed\"}", 200);
    CHECK_STR(jstr(o, "stdout"), "renamed\n");
    json_object_put(o);
}

static void test_encodings(void)
{
    json_object *o = post("/v1/exec", "{\"command\":\"printf 'a\\\\377b'\"}", 200);
    CHECK_STR(jstr(o, "stdout"), "a\xEF\xBF\xBD" "b");
    json_object_put(o);
    o = post("/v1/exec", "{\"command\":\"printf 'a\\\\377b'\",\"encoding\":\"base64\"}", 200);
    CHECK_STR(jstr(o, "stdout"), "Yf9i");
    json_object_put(o);
}

static void test_bad_input(void)
{
    struct { const char *body; const char *code; const char *field; } cases[] = {
        {"{", "ERR_INVALID_JSON", NULL},
        {"{} x", "ERR_INVALID_JSON", NULL},
        {"[]", "ERR_INVALID_ARG_TYPE", NULL},
        {"{\"file\":\"true\",\"timout_ms\":5}", "ERR_INVALID_ARG_VALUE", "timout_ms"},
        {"{\"file\":1}", "ERR_INVALID_ARG_TYPE", "file"},
        {"{\"file\":\"true\",\"args\":[\"a\",\"b\",3]}", "ERR_INVALID_ARG_TYPE", "args[2]"},
        {"{\"file\":\"true\",\"args\":[\"a\\u0000b\"]}", "ERR_INVALID_ARG_VALUE", "args[0]"},
        {"{\"file\":\"true\",\"timeout_ms\":-1}", "ERR_INVALID_ARG_VALUE", "timeout_ms"},
        {"{\"file\":\"true\",\"env\":{\"A=B\":\"x\"}}", "ERR_INVALID_ARG_VALUE", "env"},
        {"{\"file\":\"true\",\"kill_signal\":\"SIGNOPE\"}", "ERR_INVALID_ARG_VALUE", "kill_signal"},
        {"{\"file\":\"true\",\"file\":\"false\"}", "ERR_INVALID_JSON", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *o = post("/v1/execFile", cases[i].body, 400);
        CHECK_STR(jstr(o, "error.code"), cases[i].code);
        if (cases[i].field) {
            const char *f = jstr(o, "error.field");
            if (!f || strncmp(f, cases[i].field, strlen(cases[i].field)) != 0)
                CHECK_STR(f, cases[i].field);
        }
        json_object_put(o);
    }
}

static void test_no_leaks(void)
{
    int fds = srv_fd_count(&S);
    for (int i = 0; i < 1000; i++) {
        struct resp r;
        http_post_json(&S, "/v1/execFile", "{\"file\":\"true\"}", &r);
        if (r.status != 200) CHECK_INT(r.status, 200);
        resp_free(&r);
    }
    /* The last connection's close may still be on its way to the server. */
    int now = srv_fd_count(&S);
    for (int i = 0; i < 50 && now != fds; i++) {
        usleep(20000);
        now = srv_fd_count(&S);
    }
    CHECK_INT(now, fds);
    CHECK_INT(srv_zombies(&S), 0);
}

/* --- spawns made while other jobs run ---------------------------------------- */

/* With a job running, spawnd spawns on its spawner thread and the outcome
 * (the pid, or the exec error) comes back later: same answers as when idle. */

struct call {
    CURL *c;
    struct buf body;
    long status;
};

static size_t call_body(char *p, size_t sz, size_t n, void *arg)
{
    struct call *k = arg;
    return buf_append(&k->body, p, sz * n) == 0 ? sz * n : 0;
}

/* POST every bodies[i] to path, `width` at a time; the answers in calls. */
static void post_many(const char *path, char **bodies, size_t n, size_t width, struct call *calls)
{
    CURLM *m = curl_multi_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char url[256];
    snprintf(url, sizeof url, "%s%s", S.url, path);
    size_t next = 0, done = 0;
    int running = 0;
    while (done < n) {
        while (next < n && next - done < width) {
            struct call *k = &calls[next];
            buf_init(&k->body, 1 << 20);
            k->c = curl_easy_init();
            curl_easy_setopt(k->c, CURLOPT_URL, url);
            curl_easy_setopt(k->c, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, bodies[next]);
            curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, call_body);
            curl_easy_setopt(k->c, CURLOPT_WRITEDATA, k);
            curl_easy_setopt(k->c, CURLOPT_PRIVATE, k);
            curl_easy_setopt(k->c, CURLOPT_TIMEOUT_MS, 20000L);
            curl_multi_add_handle(m, k->c);
            next++;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct call *k;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&k);
            curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &k->status);
            curl_multi_remove_handle(m, k->c);
            curl_easy_cleanup(k->c);
            k->c = NULL;
            done++;
        }
        if (done < n) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
}

static void test_spawns_while_busy(void)
{
    /* a job that keeps running throughout */
    struct resp r;
    http_post_json(&S, "/v1/jobs", "{\"kind\":\"execFile\",\"file\":\"sleep\",\"args\":[\"30\"]}",
                   &r);
    CHECK_INT(r.status, 201);
    json_object *job = resp_json(&r);
    resp_free(&r);
    char del[160];
    snprintf(del, sizeof del, "/v1/jobs/%s", jstr(job, "id") ? jstr(job, "id") : "none");
    json_object_put(job);

    /* exec's own errors: a file that is executable but not a program */
    char bad[] = "/tmp/spawnd-it-exec-XXXXXX";
    int fd = mkstemp(bad);
    CHECK(fd >= 0);
    CHECK(write(fd, "not a program\n", 14) == 14);
    close(fd);
    chmod(bad, 0755);
    char body[256], sbody[256];
    snprintf(body, sizeof body, "{\"file\":\"%s\"}", bad);
    snprintf(sbody, sizeof sbody, "{\"command\":\"%s\"}", bad);
    for (int i = 0; i < 3; i++) {
        json_object *o = post("/v1/execFile", body, 422);
        CHECK_STR(jstr(o, "error.code"), "ENOEXEC");
        CHECK_STR(jstr(o, "error.path"), bad);
        json_object_put(o);
        o = post("/v1/execFile", "{\"file\":\"/etc/passwd\"}", 422);
        CHECK_STR(jstr(o, "error.code"), "EACCES");
        json_object_put(o);
        o = post("/v1/spawn", sbody, 422); /* a stream answers only once it runs */
        CHECK_STR(jstr(o, "error.code"), "ENOEXEC");
        json_object_put(o);
        char jbody[300];
        snprintf(jbody, sizeof jbody, "{\"kind\":\"execFile\",\"file\":\"%s\"}", bad);
        o = post("/v1/jobs", jbody, 422); /* so does job creation */
        CHECK_STR(jstr(o, "error.code"), "ENOEXEC");
        json_object_put(o);
    }
    unlink(bad);

    /* background jobs: 201 with the pid, listed, their spawn event first */
    for (int i = 0; i < 3; i++) {
        json_object *o = post("/v1/jobs",
                              "{\"kind\":\"execFile\",\"file\":\"sh\",\"args\":[\"-c\",\"exit 5\"]}", 201);
        CHECK(jint(o, "pid") > 0);
        char path[200];
        snprintf(path, sizeof path, "/v1/jobs/%s/wait", jstr(o, "id") ? jstr(o, "id") : "none");
        struct resp w;
        http_get(&S, path, &w);
        CHECK_INT(w.status, 200);
        json_object *wj = resp_json(&w);
        CHECK_INT(jint(wj, "exit_code"), 5);
        CHECK_INT(jint(wj, "pid"), jint(o, "pid"));
        json_object_put(wj);
        resp_free(&w);
        snprintf(path, sizeof path, "/v1/jobs/%s/output", jstr(o, "id") ? jstr(o, "id") : "none");
        http_get(&S, path, &w);
        static const char first[] = "{\"seq\":1,\"event\":\"spawn\",\"pid\":";
        CHECK(w.body.data && !strncmp(w.body.data, first, strlen(first)));
        resp_free(&w);
        json_object_put(o);
    }

    /* streams, NDJSON and raw: the spawn event carries the pid */
    for (int i = 0; i < 3; i++) {
        struct resp s;
        http_post_json(&S, "/v1/spawn", "{\"command\":\"sh\",\"args\":[\"-c\",\"echo hi; exit 4\"]}",
                       &s);
        CHECK_INT(s.status, 200);
        const char *b = s.body.data ? s.body.data : "";
        CHECK(!strncmp(b, "{\"event\":\"spawn\",\"pid\":", 22)); /* first */
        CHECK(strstr(b, "\"data\":\"hi\\n\"") != NULL);
        CHECK(strstr(b, "\"exit_code\":4") != NULL);
        resp_free(&s);
        http_post_json(&S, "/v1/spawn?format=raw", "{\"command\":\"printf\",\"args\":[\"raw\"]}", &s);
        CHECK_INT(s.status, 200);
        CHECK_STR(s.body.data ? s.body.data : "", "raw");
        CHECK(strstr(s.headers.data ? s.headers.data : "", "Spawnd-Exit-Code: 0") != NULL);
        resp_free(&s);
    }

    /* many at once, most exiting at once: each answer is its own */
    enum { N = 300 };
    char *bodies[N];
    struct call calls[N];
    for (int i = 0; i < N; i++) {
        bodies[i] = malloc(160);
        snprintf(bodies[i], 160,
                 "{\"file\":\"sh\",\"args\":[\"-c\",\"echo $0; exit $(($0 %% 7))\",\"%d\"]}", i);
    }
    post_many("/v1/execFile", bodies, N, 16, calls);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        json_object *o = json_tokener_parse(calls[i].body.data ? calls[i].body.data : "");
        char want[16];
        snprintf(want, sizeof want, "%d\n", i);
        bool ok = calls[i].status == 200 && o && jint(o, "exit_code") == i % 7 &&
                  jstr(o, "stdout") && !strcmp(jstr(o, "stdout"), want) && jint(o, "pid") > 0;
        if (!ok && wrong++ < 3)
            fprintf(stderr, "busy #%d: %ld %s\n", i, calls[i].status,
                    calls[i].body.data ? calls[i].body.data : "");
        json_object_put(o);
        buf_free(&calls[i].body);
        free(bodies[i]);
    }
    CHECK_INT(wrong, 0);

    /* killed before or just after the pid is known: the timeout still ends
     * each one, and the whole group goes */
    enum { K = 24 };
    char *kb[K];
    struct call kc[K];
    for (int i = 0; i < K; i++)
        kb[i] = "{\"command\":\"sleep 20 & sleep 20\",\"timeout_ms\":1}";
    double t0 = now_s();
    post_many("/v1/exec", kb, K, K, kc);
    CHECK(now_s() - t0 < 10);
    wrong = 0;
    for (int i = 0; i < K; i++) {
        json_object *o = json_tokener_parse(kc[i].body.data ? kc[i].body.data : "");
        if (!(kc[i].status == 200 && o && jbool(o, "timed_out") && jstr(o, "signal")) &&
            wrong++ < 3)
            fprintf(stderr, "busy timeout #%d: %ld %s\n", i, kc[i].status,
                    kc[i].body.data ? kc[i].body.data : "");
        json_object_put(o);
        buf_free(&kc[i].body);
    }
    CHECK_INT(wrong, 0);

    /* clients that give up while their spawns may still be on the way:
     * every process of theirs goes (checked below, with the rest) */
    for (int i = 0; i < 8; i++) {
        struct resp g;
        static const char give_up[] = "{\"command\":\"sleep 100.3 & sleep 100.3; wait\"}";
        http_req(&S, "POST", "/v1/exec", "application/json", give_up, strlen(give_up), NULL,
                 50 + 20 * i, &g);
        CHECK(g.curl_code != 0); /* timed out */
        resp_free(&g);
    }

    CHECK_INT(req_status(&S, "DELETE", del, NULL), 204);
    int left = -1;
    for (int i = 0; i < 100 && left != 0; i++) {
        usleep(20000);
        left = srv_descendants(&S);
    }
    CHECK_INT(left, 0);
}

/* --- shells ------------------------------------------------------------------ */

static void test_shell_option(void)
{
    json_object *o = post("/v1/exec", "{\"command\":\"echo ok; echo $0\",\"shell\":\"/bin/sh\"}", 200);
    CHECK_INT(jint(o, "exit_code"), 0);
    CHECK_HAS(jstr(o, "stdout"), "ok\n");
    json_object_put(o);
    o = post("/v1/exec", "{\"command\":\"echo ok\",\"shell\":true}", 200);
    CHECK_STR(jstr(o, "stdout"), "ok\n");
    json_object_put(o);
    if (access("/bin/bash", X_OK) == 0) {
        /* The named shell is the one that runs. */
        o = post("/v1/exec", "{\"command\":\"echo \\\"[$BASH_VERSION]\\\"\",\"shell\":\"/bin/bash\"}", 200);
        const char *out = jstr(o, "stdout");
        CHECK(out && strlen(out) > 3 && strcmp(out, "[]\n") != 0);
        json_object_put(o);
        o = post("/v1/execFile", "{\"file\":\"echo\",\"args\":[\"[$BASH_VERSION]\"],\"shell\":\"/bin/bash\"}", 200);
        out = jstr(o, "stdout");
        CHECK(out && strlen(out) > 3 && strcmp(out, "[]\n") != 0);
        json_object_put(o);
    } else {
        fprintf(stderr, "SKIP part of test_shell_option: no /bin/bash\n");
    }
    o = post("/v1/exec", "{\"command\":\"true\",\"shell\":\"/nonexistent/sh\"}", 422);
    CHECK_STR(jstr(o, "error.code"), "ENOENT");
    CHECK_STR(jstr(o, "error.path"), "/nonexistent/sh");
    json_object_put(o);
    o = post("/v1/exec", "{\"command\":\"true\",\"shell\":false}", 400);
    CHECK_STR(jstr(o, "error.code"), "ERR_INVALID_ARG_VALUE");
    CHECK_STR(jstr(o, "error.field"), "shell");
    json_object_put(o);
    o = post("/v1/exec", "{\"command\":\"true\",\"shell\":\"\"}", 400);
    CHECK_STR(jstr(o, "error.field"), "shell");
    json_object_put(o);
}

static void test_execfile_shell_joins_args(void)
{
    /* Joined with single spaces, unquoted, as Node does: the shell expands
     * $X and splits "b  c". */
    json_object *o = post("/v1/execFile",
                          "{\"file\":\"echo\",\"args\":[\"a\",\"$X\",\"b  c\"],\"shell\":true,"
                          "\"env\":{\"X\":\"y\",\"PATH\":\"/usr/bin:/bin\"}}",
                          200);
    CHECK_STR(jstr(o, "stdout"), "a y b c\n");
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    o = post("/v1/execFile", "{\"file\":\"echo hi | tr a-z A-Z\",\"shell\":true}", 200);
    CHECK_STR(jstr(o, "stdout"), "HI\n");
    json_object_put(o);
    /* Without shell, the same arguments are passed literally. */
    o = post("/v1/execFile", "{\"file\":\"echo\",\"args\":[\"a\",\"$X\",\"b  c\"],\"env\":{\"X\":\"y\"}}", 200);
    CHECK_STR(jstr(o, "stdout"), "a $X b  c\n");
    json_object_put(o);
    /* spawn too */
    struct resp r;
    http_post_json(&S, "/v1/spawn", "{\"command\":\"echo\",\"args\":[\"$((1+2))\"],\"shell\":true}", &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body.data, "{\"event\":\"stdout\",\"data\":\"3\\n\"}");
    resp_free(&r);
}

/* --- kill_signal --------------------------------------------------------------- */

static void test_kill_signal(void)
{
    static const struct { const char *sig, *want; } cases[] = {
        {"9", "SIGKILL"}, {"\"SIGKILL\"", "SIGKILL"}, {"\"SIGINT\"", "SIGINT"},
        {"2", "SIGINT"},  {"\"SIGUSR1\"", "SIGUSR1"}, {"15", "SIGTERM"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"file\":\"sleep\",\"args\":[\"10\"],\"timeout_ms\":150,\"kill_signal\":%s}",
                 cases[i].sig);
        struct resp r;
        http_post_json(&S, "/v1/execFile", body, &r);
        CHECK_INT(r.status, 200);
        json_object *o = resp_json(&r);
        CHECK_STR(jstr(o, "signal"), cases[i].want);
        CHECK(jnull(o, "exit_code"));
        CHECK(jbool(o, "timed_out"));
        CHECK(jbool(o, "killed"));
        CHECK(r.total_s < 2);
        json_object_put(o);
        resp_free(&r);
    }
    static const char *const bad[] = {"0", "65", "-9", "\"sigkill\"", "\"KILL\"", "\"SIGKILL \"",
                                      "9.5", "true", "\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"file\":\"true\",\"kill_signal\":%s}", bad[i]);
        json_object *o = post("/v1/execFile", body, 400);
        const char *code = jstr(o, "error.code");
        CHECK(code && (!strcmp(code, "ERR_INVALID_ARG_VALUE") || !strcmp(code, "ERR_INVALID_ARG_TYPE")));
        CHECK_STR(jstr(o, "error.field"), "kill_signal");
        json_object_put(o);
    }
}

/* --- max_buffer ------------------------------------------------------------------ */

static void test_max_buffer_stderr_and_edges(void)
{
    json_object *o = post("/v1/exec", "{\"command\":\"yes >&2\",\"max_buffer\":100}", 200);
    CHECK(jbool(o, "truncated"));
    CHECK(jbool(o, "killed"));
    CHECK(!jbool(o, "timed_out"));
    CHECK_STR(jstr(o, "signal"), "SIGTERM");
    CHECK_STR(jstr(o, "stdout"), "");
    const char *err = jstr(o, "stderr");
    CHECK_INT(err ? strlen(err) : 0, 100);
    CHECK(err && strncmp(err, "y\ny\ny\n", 6) == 0);
    CHECK_STR(jstr(o, "error.code"), "ERR_CHILD_PROCESS_STDIO_MAXBUFFER");
    CHECK_STR(jstr(o, "error.message"), "stderr maxBuffer length exceeded");
    json_object_put(o);

    /* Exactly max_buffer bytes is within the limit; one more is not. */
    o = post("/v1/execFile", "{\"file\":\"printf\",\"args\":[\"abcd\"],\"max_buffer\":4}", 200);
    CHECK_STR(jstr(o, "stdout"), "abcd");
    CHECK(!jbool(o, "truncated"));
    CHECK(!jbool(o, "killed"));
    CHECK(jnull(o, "error"));
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    o = post("/v1/execFile", "{\"file\":\"printf\",\"args\":[\"abcde\"],\"max_buffer\":4}", 200);
    CHECK_STR(jstr(o, "stdout"), "abcd");
    CHECK(jbool(o, "truncated"));
    CHECK_STR(jstr(o, "error.message"), "stdout maxBuffer length exceeded");
    json_object_put(o);

    /* The limit counts bytes, not encoded characters. */
    o = post("/v1/execFile",
             "{\"file\":\"printf\",\"args\":[\"abcdef\"],\"max_buffer\":3,\"encoding\":\"base64\"}", 200);
    CHECK_STR(jstr(o, "stdout"), "YWJj");
    CHECK(jbool(o, "truncated"));
    json_object_put(o);

    /* The kill for max_buffer uses kill_signal. */
    o = post("/v1/exec", "{\"command\":\"trap '' TERM; yes\",\"max_buffer\":10,\"kill_signal\":\"SIGKILL\"}", 200);
    CHECK(jbool(o, "truncated"));
    CHECK_STR(jstr(o, "signal"), "SIGKILL");
    json_object_put(o);

    static const char *const bad[] = {"0", "-1", "1073741825", "1.5", "\"10\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"file\":\"true\",\"max_buffer\":%s}", bad[i]);
        o = post("/v1/execFile", body, 400);
        CHECK_STR(jstr(o, "error.field"), "max_buffer");
        json_object_put(o);
    }
}

/* --- the default environment --------------------------------------------------- */

static void test_env_default_excludes_spawnd(void)
{
    struct srv E;
    const char *env[] = {"SPAWND_SECRET=x", "SPAWND_TOKEN=hunter2", "SPAWND_MAX_JOBS=50",
                         "IT_EXEC_VISIBLE=yes", "XSPAWND_OK=1", NULL};
    srv_start_env(&E, NULL, env);
    /* SPAWND_TOKEN turns authentication on: every request carries it. */
    const char *const auth[] = {"Authorization: Bearer hunter2", NULL};
#define POST(path, json) http_req(&E, "POST", path, "application/json", json, strlen(json), auth, 0, &r)
    struct resp r;
    POST("/v1/execFile", "{\"file\":\"env\"}");
    CHECK_INT(r.status, 200);
    json_object *o = resp_json(&r);
    const char *out = jstr(o, "stdout");
    CHECK_HAS(out, "IT_EXEC_VISIBLE=yes\n");
    CHECK_HAS(out, "XSPAWND_OK=1\n");
    CHECK(out && !strstr(out, "SPAWND_SECRET") && !strstr(out, "hunter2"));
    CHECK(out && strncmp(out, "SPAWND_", 7) != 0 && !strstr(out, "\nSPAWND_"));
    json_object_put(o);
    resp_free(&r);
    /* The same default for exec (through the shell) and for every pipeline step. */
    POST("/v1/exec", "{\"command\":\"echo \\\"[$SPAWND_SECRET][$IT_EXEC_VISIBLE]\\\"\"}");
    o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "[][yes]\n");
    json_object_put(o);
    resp_free(&r);
    POST("/v1/pipeline",
                   "{\"steps\":[{\"command\":\"env\"},{\"command\":\"grep\",\"args\":[\"-c\",\"^SPAWND_\"]}]}");
    CHECK_HAS(r.body.data, "{\"event\":\"stdout\",\"data\":\"0\\n\"}");
    resp_free(&r);
    /* An explicit env replaces it entirely. */
    POST("/v1/execFile", "{\"file\":\"/usr/bin/env\",\"env\":{\"ONLY\":\"1\"}}");
    o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "ONLY=1\n");
    json_object_put(o);
    resp_free(&r);
    CHECK_INT(srv_stop(&E, 5000), 0);
#undef POST
}

/* --- stdin ---------------------------------------------------------------------- */

static void test_stdin_large(void)
{
    const size_t n = 1000000; /* far more than a pipe holds (64 KiB) */
    const char *head = "{\"file\":\"wc\",\"args\":[\"-c\"],\"stdin\":\"";
    size_t hl = strlen(head);
    char *body = malloc(hl + n + 64);
    memcpy(body, head, hl);
    memset(body + hl, 'a', n);
    strcpy(body + hl + n, "\"}");
    json_object *o = post("/v1/execFile", body, 200);
    CHECK_STR(jstr(o, "stdout"), "1000000\n");
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);

    /* Both directions at once: cat echoes 1 MB while it is still being fed. */
    head = "{\"file\":\"cat\",\"max_buffer\":2000000,\"stdin\":\"";
    hl = strlen(head);
    memcpy(body, head, hl);
    memset(body + hl, 'b', n);
    strcpy(body + hl + n, "\"}");
    struct resp r;
    http_post_json(&S, "/v1/execFile", body, &r);
    CHECK_INT(r.status, 200);
    o = resp_json(&r);
    const char *out = jstr(o, "stdout");
    CHECK_INT(out ? strlen(out) : 0, n);
    CHECK(out && strspn(out, "b") == n);
    json_object_put(o);
    resp_free(&r);

    /* A child that never reads its stdin: the job still ends normally. */
    head = "{\"command\":\"sleep 0.2; echo done\",\"stdin\":\"";
    hl = strlen(head);
    memcpy(body, head, hl);
    memset(body + hl, 'c', n);
    strcpy(body + hl + n, "\"}");
    http_post_json(&S, "/v1/exec", body, &r);
    CHECK_INT(r.status, 200);
    o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "done\n");
    CHECK_INT(jint(o, "exit_code"), 0);
    CHECK(!jbool(o, "killed"));
    CHECK(r.total_s < 3);
    json_object_put(o);
    resp_free(&r);
    free(body);
}

/* --- pipes closed early, pipes held late ------------------------------------------- */

static void test_stdout_closed_early(void)
{
    struct resp r;
    http_post_json(&S, "/v1/exec", "{\"command\":\"echo early; exec 1>&-; sleep 0.3; echo late >&2\"}", &r);
    CHECK_INT(r.status, 200);
    json_object *o = resp_json(&r);
    CHECK_INT(jint(o, "exit_code"), 0);
    CHECK_STR(jstr(o, "stdout"), "early\n");
    CHECK_STR(jstr(o, "stderr"), "late\n");
    CHECK(!jbool(o, "killed"));
    /* The job ends when the process does, not at the first EOF. */
    json_object *d = jget(o, "duration_ms");
    CHECK(d && json_object_get_double(d) >= 290);
    json_object_put(o);
    resp_free(&r);

    /* Both closed: nothing to read, still waited for. */
    http_post_json(&S, "/v1/exec", "{\"command\":\"exec 1>&- 2>&-; sleep 0.3; exit 7\"}", &r);
    o = resp_json(&r);
    CHECK_INT(jint(o, "exit_code"), 7);
    d = jget(o, "duration_ms");
    CHECK(d && json_object_get_double(d) >= 290);
    json_object_put(o);
    resp_free(&r);
}

/* Shell code (inside a JSON string) that waits until the background process
 * $! is in a session other than the shell's. */
#define WAIT_LEFT "while [ $(cut -d' ' -f6 /proc/$!/stat) = $$ ]; do :; done"

static void test_grandchild_holds_pipe(void)
{
    /* setsid: the grandchild leaves the job's group and keeps stdout open. */
    struct resp r;
    /* (The shell waits until the grandchild has left its session: had the
     * shell exited first, the group clean-up would have killed it.) */
    http_post_json(&S, "/v1/exec", "{\"command\":\"setsid sleep 5 & " WAIT_LEFT "; echo done\"}", &r);
    CHECK_INT(r.status, 200);
    json_object *o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "done\n");
    CHECK_INT(jint(o, "exit_code"), 0);
    CHECK(!jbool(o, "killed"));
    CHECK(r.total_s < 2.0); /* the drain period (1 s), not the sleep (5 s) */
    if (r.total_s >= 2.0) fprintf(stderr, "  ^ took %.2f s\n", r.total_s);
    json_object_put(o);
    resp_free(&r);
    CHECK(srv_log_has(&S, "msg=job.drain_timeout"));

    /* The orphan was re-parented to spawnd (a subreaper), which kills it
     * once the job is over -- a job leaves nothing behind -- and reaps it. */
    int left = -1;
    for (int i = 0; i < 25 && left != 0; i++) {
        usleep(20000);
        left = srv_descendants(&S);
    }
    CHECK_INT(left, 0);
    CHECK(srv_log_has(&S, "msg=orphan_killed"));
    CHECK_INT(srv_zombies(&S), 0);

    /* Output the grandchild writes within the drain period is kept, and the
     * job ends as soon as the pipe is closed. */
    http_post_json(&S, "/v1/exec",
                   "{\"command\":\"setsid sh -c 'sleep 0.3; echo late' & " WAIT_LEFT "; echo done\"}", &r);
    o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "done\nlate\n");
    CHECK(r.total_s < 0.9);
    json_object_put(o);
    resp_free(&r);
}

/* --- NUL bytes -------------------------------------------------------------------- */

static void test_nul_bytes(void)
{
    struct resp r;
    http_post_json(&S, "/v1/execFile",
                   "{\"file\":\"sh\",\"args\":[\"-c\",\"printf 'a\\\\0b\\\\0\\\\0c'; printf 'x\\\\0' >&2\"],"
                   "\"encoding\":\"base64\"}",
                   &r);
    CHECK_INT(r.status, 200);
    json_object *o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "YQBiAABj"); /* a \0 b \0 \0 c */
    CHECK_STR(jstr(o, "stderr"), "eAA=");     /* x \0 */
    json_object_put(o);
    resp_free(&r);
    /* in utf8, NUL is escaped, not a string end */
    http_post_json(&S, "/v1/execFile", "{\"file\":\"printf\",\"args\":[\"a\\\\0b\\\\0\\\\0c\"]}", &r);
    CHECK_HAS(r.body.data, "\"stdout\":\"a\\u0000b\\u0000\\u0000c\"");
    resp_free(&r);
    /* and back in: NUL bytes in stdin (base64) reach the child */
    http_post_json(&S, "/v1/execFile",
                   "{\"file\":\"cat\",\"stdin\":\"YQBiAABj\",\"stdin_encoding\":\"base64\",\"encoding\":\"base64\"}", &r);
    o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "YQBiAABj");
    json_object_put(o);
    resp_free(&r);
}

/* --- the client going away ---------------------------------------------------------- */

static void test_exec_client_gone(void)
{
    struct resp r;
    http_req(&S, "POST", "/v1/exec", "application/json",
             "{\"command\":\"sleep 100 & sleep 100; wait\"}", 41, NULL, 300, &r);
    CHECK(r.curl_code != 0); /* timed out */
    resp_free(&r);
    int left = -1;
    for (int i = 0; i < 50 && left != 0; i++) {
        usleep(20000);
        left = srv_descendants(&S);
    }
    CHECK_INT(left, 0);
    CHECK(srv_log_has(&S, "msg=client_gone"));
    CHECK(srv_log_has(&S, "status=499"));
}

int main(void)
{
    const char *args[] = {"--kill-grace-ms", "500", NULL};
    srv_start(&S, args);
    test_uptime();
    test_execfile_args_and_exit_code();
    test_child_view();
    test_not_found();
    test_timeout_kills_group();
    test_sigterm_ignored_escalates();
    test_max_buffer();
    test_stdin_env_cwd_argv0();
    test_encodings();
    test_bad_input();
    test_shell_option();
    test_execfile_shell_joins_args();
    test_kill_signal();
    test_max_buffer_stderr_and_edges();
    test_env_default_excludes_spawnd();
    test_stdin_large();
    test_stdout_closed_early();
    test_grandchild_holds_pipe();
    test_nul_bytes();
    test_exec_client_gone();
    test_spawns_while_busy();
    test_no_leaks();
    CHECK_INT(srv_stop(&S, 5000), 0);
    return check_status();
}
