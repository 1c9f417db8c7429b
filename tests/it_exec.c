/* exec and execFile through the real server: results, options, errors, and
 * that nothing leaks. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

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
    test_no_leaks();
    CHECK_INT(srv_stop(&S, 5000), 0);
    return check_status();
}
