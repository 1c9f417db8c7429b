/* request: bodies in, exec_specs or errors naming the field out. */
#include <signal.h>
#include <stdlib.h>

#include "api/request.h"
#include "check.h"

static char *default_env[] = {"PATH=/usr/bin:/bin", "HOME=/root", NULL};
static struct api_config cfg = {default_env, 0, "/bin/sh"};

/* Bodies are literals and may hold NUL bytes: lengths come from sizeof. They
 * are copied to a buffer of exactly that size, so reading past the end (the
 * body is not NUL-terminated) is caught under ASan. */
static int parse_at(enum api_kind kind, const char *body, size_t len, struct api_request *req,
                    struct api_error *err)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    memset(err, 0, sizeof *err);
    int r = api_request_parse(kind, copy, len, &cfg, req, err);
    free(copy);
    return r;
}

static void reject_at(int line, enum api_kind kind, const char *body, size_t len,
                      enum api_code code, const char *field, const char *msg)
{
    struct api_request req;
    struct api_error err;
    int r = parse_at(kind, body, len, &req, &err);
    if (r != -1 || err.code != code || strcmp(err.field, field) != 0 ||
        (msg && !strstr(err.message, msg)) || req.priv != NULL) {
        fprintf(stderr,
                "line %d: %.300s\n  r=%d code=%s (want %s) field=\"%s\" (want \"%s\")\n  "
                "message=\"%s\" (want \"%s\")\n",
                line, body, r, api_error_name(err.code), api_error_name(code), err.field, field,
                err.message, msg ? msg : "*");
        check_failures++;
    }
    if (r == 0) api_request_free(&req);
}

/* Parses and returns the request; the caller checks it and frees it. */
static struct api_request accept_at(int line, enum api_kind kind, const char *body, size_t len)
{
    struct api_request req;
    struct api_error err;
    if (parse_at(kind, body, len, &req, &err) != 0) {
        fprintf(stderr, "line %d: %.300s\n  rejected: %s field=\"%s\": %s\n", line, body,
                api_error_name(err.code), err.field, err.message);
        check_failures++;
    }
    return req;
}

#define REJECT(kind, body, code, field, msg)                                                       \
    reject_at(__LINE__, kind, body, sizeof(body) - 1, API_ERR_##code, field, msg)
#define ACCEPT(kind, body) accept_at(__LINE__, kind, body, sizeof(body) - 1)
#define OK(kind, body)                                                                             \
    do {                                                                                           \
        struct api_request ok_req_ = ACCEPT(kind, body);                                           \
        api_request_free(&ok_req_);                                                                \
    } while (0)

/* argv as one string, entries separated by '|'. */
static const char *joined(char *const *argv)
{
    static char s[4096];
    s[0] = 0;
    for (size_t i = 0; argv && argv[i]; i++) {
        if (i) strcat(s, "|");
        strcat(s, argv[i]);
    }
    return s;
}

static void test_exec_file(void)
{
    struct api_request req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"args\":[\"-l\",\"/\"]}");
    CHECK_INT(req.kind, API_EXECFILE);
    CHECK_INT(req.spec.nprocs, 1);
    if (req.spec.nprocs == 1) {
        const struct exec_proc *p = &req.spec.procs[0];
        CHECK_STR(p->file, "ls");
        CHECK_STR(joined(p->argv), "ls|-l|/");
        CHECK(p->envp == default_env);
        CHECK(p->cwd == NULL);
    }
    CHECK_INT(req.spec.stdin_mode, EXEC_STDIN_NULL);
    CHECK_INT(req.spec.timeout_ms, 0);
    CHECK_INT(req.spec.kill_signal, SIGTERM);
    CHECK_INT(req.spec.uid, -1);
    CHECK_INT(req.spec.gid, -1);
    CHECK_INT(req.encoding, API_UTF8);
    CHECK_INT(req.max_buffer, 1048576);
    api_request_free(&req);
    CHECK(req.priv == NULL);
    api_request_free(&req); /* freeing twice is harmless */

    req = ACCEPT(API_EXECFILE, "  {\"file\":\"/bin/echo\"}\n\t ");
    CHECK_STR(joined(req.spec.procs[0].argv), "/bin/echo");
    api_request_free(&req);

    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"args\":[\"a b\",\"\"],\"argv0\":\"LS\","
                               "\"cwd\":\"/tmp\",\"env\":{\"A\":\"1\",\"B\":\"\",\"C\":\"x=y\"}}");
    CHECK_STR(req.spec.procs[0].file, "ls");
    CHECK_STR(joined(req.spec.procs[0].argv), "LS|a b|");
    CHECK_INT(req.spec.procs[0].argv[2][0], 0);
    CHECK(req.spec.procs[0].argv[3] == NULL);
    CHECK_STR(req.spec.procs[0].cwd, "/tmp");
    CHECK_STR(joined(req.spec.procs[0].envp), "A=1|B=|C=x=y");
    api_request_free(&req);

    /* An empty env is an empty environment, not the default one. */
    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{}}");
    CHECK(req.spec.procs[0].envp != NULL && req.spec.procs[0].envp[0] == NULL);
    api_request_free(&req);

    /* null means absent, as for Node's options. */
    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"args\":null,\"cwd\":null,\"env\":null,"
                               "\"stdin\":null,\"timeout_ms\":null,\"kill_signal\":null,"
                               "\"shell\":null,\"uid\":null}");
    CHECK(req.spec.procs[0].envp == default_env);
    CHECK_INT(req.spec.stdin_mode, EXEC_STDIN_NULL);
    CHECK_INT(req.spec.uid, -1);
    api_request_free(&req);
}

static void test_shell(void)
{
    struct api_request req = ACCEPT(API_EXEC, "{\"command\":\"echo hi | wc -c\"}");
    CHECK_STR(req.spec.procs[0].file, "/bin/sh");
    CHECK_STR(joined(req.spec.procs[0].argv), "/bin/sh|-c|echo hi | wc -c");
    CHECK_INT(req.max_buffer, 1048576);
    api_request_free(&req);

    req = ACCEPT(API_EXEC, "{\"command\":\"x\",\"shell\":\"/bin/bash\",\"argv0\":\"-bash\"}");
    CHECK_STR(req.spec.procs[0].file, "/bin/bash");
    CHECK_STR(joined(req.spec.procs[0].argv), "-bash|-c|x");
    api_request_free(&req);

    req = ACCEPT(API_EXEC, "{\"command\":\"x\",\"shell\":true}");
    CHECK_STR(req.spec.procs[0].file, "/bin/sh");
    api_request_free(&req);

    /* Node's shell form: program and args joined by single spaces. */
    req = ACCEPT(API_SPAWN, "{\"command\":\"echo\",\"args\":[\"a b\",\"$HOME\"],\"shell\":true}");
    CHECK_STR(req.spec.procs[0].file, "/bin/sh");
    CHECK_STR(joined(req.spec.procs[0].argv), "/bin/sh|-c|echo a b $HOME");
    CHECK(req.spec.procs[0].argv[3] == NULL);
    CHECK_INT(req.max_buffer, 0);
    api_request_free(&req);

    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"args\":[\"-l\"],\"shell\":\"/bin/dash\"}");
    CHECK_STR(req.spec.procs[0].file, "/bin/dash");
    CHECK_STR(joined(req.spec.procs[0].argv), "/bin/dash|-c|ls -l");
    api_request_free(&req);

    req =
        ACCEPT(API_SPAWN, "{\"command\":\"ls\",\"args\":[\"-l\"],\"shell\":false,\"argv0\":\"x\"}");
    CHECK_STR(req.spec.procs[0].file, "ls");
    CHECK_STR(joined(req.spec.procs[0].argv), "x|-l");
    api_request_free(&req);

    REJECT(API_EXEC, "{\"command\":\"x\",\"shell\":false}", INVALID_ARG_VALUE, "shell",
           "cannot be false");
    REJECT(API_EXEC, "{\"command\":\"x\",\"shell\":\"\"}", INVALID_ARG_VALUE, "shell", NULL);
    REJECT(API_SPAWN, "{\"command\":\"x\",\"shell\":1}", INVALID_ARG_TYPE, "shell",
           "must be a boolean or a string");
    REJECT(API_SPAWN, "{\"command\":\"x\",\"shell\":\"/bin/sh\\u0000\"}", INVALID_ARG_VALUE,
           "shell", "NUL");
    REJECT(API_EXEC, "{\"command\":\"x\",\"args\":[]}", INVALID_ARG_VALUE, "args",
           "unknown field \"args\"");
    REJECT(API_EXEC, "{\"command\":\"\"}", INVALID_ARG_VALUE, "command", "must not be empty");
    REJECT(API_EXEC, "{}", INVALID_ARG_TYPE, "command", "\"command\" must be a string");
}

static void test_required(void)
{
    REJECT(API_EXECFILE, "{}", INVALID_ARG_TYPE, "file", "\"file\" must be a string");
    REJECT(API_EXECFILE, "{\"file\":null}", INVALID_ARG_TYPE, "file", NULL);
    REJECT(API_EXECFILE, "{\"file\":5}", INVALID_ARG_TYPE, "file", NULL);
    REJECT(API_EXECFILE, "{\"file\":[\"ls\"]}", INVALID_ARG_TYPE, "file", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"\"}", INVALID_ARG_VALUE, "file", "must not be empty");
    REJECT(API_EXECFILE, "{\"command\":\"ls\"}", INVALID_ARG_VALUE, "command",
           "unknown field \"command\"");
    REJECT(API_SPAWN, "{\"file\":\"ls\"}", INVALID_ARG_VALUE, "file", "unknown field");
    REJECT(API_SPAWN, "{\"args\":[]}", INVALID_ARG_TYPE, "command", NULL);
}

static void test_body(void)
{
    REJECT(API_EXECFILE, "", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "  \n", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "[]", INVALID_ARG_TYPE, "", "must be a JSON object");
    REJECT(API_EXECFILE, "null", INVALID_ARG_TYPE, "", NULL);
    REJECT(API_EXECFILE, "\"ls\"", INVALID_ARG_TYPE, "", NULL);
    REJECT(API_EXECFILE, " 5 ", INVALID_ARG_TYPE, "", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\"} x", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\"}{}", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",}", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\"}\0", INVALID_JSON, "", "NUL");
    REJECT(API_EXECFILE, "{\"file\":\"l\0s\"}", INVALID_JSON, "", "NUL");
    REJECT(API_EXECFILE, "{'file':\"ls\"}", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":NaN}", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":01}", INVALID_JSON, "", "leading zeros");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":1.}", INVALID_JSON, "", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"l\ts\"}", INVALID_JSON, "", "control character");
    REJECT(API_EXECFILE, "{\"file\":\"\xc0\xaf\"}", INVALID_JSON, "", "UTF-8");
    OK(API_EXECFILE, "{\"file\":\"\xc3\xa9\\u00e9\\ud800\"}");

    /* Duplicate keys are refused, however they are spelled. */
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"file\":\"rm\"}", INVALID_JSON, "file",
           "duplicate key \"file\"");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"\\u0066ile\":\"rm\"}", INVALID_JSON, "file",
           "duplicate key \"file\"");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"A\":\"1\",\"\\u0041\":\"2\"}}", INVALID_JSON,
           "env.A", "duplicate key \"A\"");

    /* Unknown fields, including keys json-c would cut at a NUL. */
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timout_ms\":5}", INVALID_ARG_VALUE, "timout_ms",
           "unknown field \"timout_ms\"");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"cwd\\u0000\":\"/etc\"}", INVALID_ARG_VALUE,
           "cwd\\u0000", "NUL");
    REJECT(API_EXECFILE, "{\"cwd\\u0000x\":\"/etc\",\"file\":\"ls\",\"cwd\":\"/\"}",
           INVALID_ARG_VALUE, "cwd\\u0000x", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"File\":\"x\"}", INVALID_ARG_VALUE, "File", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"steps\":[]}", INVALID_ARG_VALUE, "steps", NULL);
    REJECT(API_SPAWN, "{\"command\":\"ls\",\"max_buffer\":10}", INVALID_ARG_VALUE, "max_buffer",
           "unknown field \"max_buffer\"");
}

static char *deep_body(int depth)
{
    /* {"file":"ls","x": + (depth-1) arrays */
    char *s = malloc((size_t)depth * 2 + 64), *w = s;
    w += sprintf(w, "{\"file\":\"ls\",\"x\":");
    for (int i = 0; i < depth - 1; i++)
        *w++ = '[';
    for (int i = 0; i < depth - 1; i++)
        *w++ = ']';
    *w++ = '}';
    *w = 0;
    return s;
}

static void test_depth(void)
{
    /* 32 levels pass the JSON checks (and json-c), then "x" is unknown. */
    char *ok = deep_body(32), *bad = deep_body(33);
    reject_at(__LINE__, API_EXECFILE, ok, strlen(ok), API_ERR_INVALID_ARG_VALUE, "x",
              "unknown field");
    reject_at(__LINE__, API_EXECFILE, bad, strlen(bad), API_ERR_INVALID_JSON, "",
              "nesting deeper than 32");
    free(ok);
    free(bad);
}

static void test_strings(void)
{
    REJECT(API_EXECFILE, "{\"file\":\"l\\u0000s\"}", INVALID_ARG_VALUE, "file",
           "\"file\" must not contain NUL bytes");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"args\":[\"a\",\"b\",\"c\\u0000\"]}", INVALID_ARG_VALUE,
           "args[2]", "NUL");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"args\":[\"a\",1]}", INVALID_ARG_TYPE, "args[1]",
           "\"args[1]\" must be a string");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"args\":[null]}", INVALID_ARG_TYPE, "args[0]", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"args\":\"-l\"}", INVALID_ARG_TYPE, "args",
           "must be an array of strings");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"args\":{}}", INVALID_ARG_TYPE, "args", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"cwd\":\"/t\\u0000mp\"}", INVALID_ARG_VALUE, "cwd",
           "NUL");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"cwd\":\"\"}", INVALID_ARG_VALUE, "cwd", "empty");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"cwd\":1}", INVALID_ARG_TYPE, "cwd", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"argv0\":\"a\\u0000\"}", INVALID_ARG_VALUE, "argv0",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"argv0\":false}", INVALID_ARG_TYPE, "argv0", NULL);
}

static void test_env(void)
{
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":[\"A=1\"]}", INVALID_ARG_TYPE, "env",
           "must be an object of strings");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"A\":1}}", INVALID_ARG_TYPE, "env.A",
           "\"env.A\" must be a string");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"A\":null}}", INVALID_ARG_TYPE, "env.A", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"A=B\":\"x\"}}", INVALID_ARG_VALUE, "env.A=B",
           "must not contain \"=\"");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"=\":\"x\"}}", INVALID_ARG_VALUE,
           "env.=", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"\":\"x\"}}", INVALID_ARG_VALUE, "env",
           "must not be empty");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"A\":\"x\\u0000y\"}}", INVALID_ARG_VALUE,
           "env.A", "NUL");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"A\\u0000B\":\"x\"}}", INVALID_ARG_VALUE,
           "env.A\\u0000B", "NUL");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"env\":{\"PATH\":\"/bin\",\"PATH\\u0000\":\"/x\"}}",
           INVALID_ARG_VALUE, "env.PATH\\u0000", NULL);
}

enum item { ARG, ENV_ENTRY, STEP };

/* head, then n items separated by commas, then tail. */
static char *many(const char *head, enum item item, size_t n, const char *tail)
{
    char *s = malloc(n * 48 + strlen(head) + strlen(tail) + 1), *w = s;
    w += sprintf(w, "%s", head);
    for (size_t i = 0; i < n; i++) {
        if (i) *w++ = ',';
        if (item == ARG)
            w += sprintf(w, "\"%zu\"", i);
        else if (item == ENV_ENTRY)
            w += sprintf(w, "\"K%zu\":\"%zu\"", i, i);
        else
            w += sprintf(w, "{\"command\":\"c%zu\",\"args\":[\"%zu\"]}", i, i);
    }
    sprintf(w, "%s", tail);
    return s;
}

static void test_limits(void)
{
    char *s = many("{\"file\":\"ls\",\"args\":[", ARG, API_MAX_ARGS, "]}");
    struct api_request req = accept_at(__LINE__, API_EXECFILE, s, strlen(s));
    CHECK_STR(req.spec.procs[0].argv[API_MAX_ARGS], "4095");
    CHECK(req.spec.procs[0].argv[API_MAX_ARGS + 1] == NULL);
    api_request_free(&req);
    free(s);
    s = many("{\"file\":\"ls\",\"args\":[", ARG, API_MAX_ARGS + 1, "]}");
    reject_at(__LINE__, API_EXECFILE, s, strlen(s), API_ERR_INVALID_ARG_VALUE, "args",
              "at most 4096");
    free(s);

    s = many("{\"file\":\"ls\",\"env\":{", ENV_ENTRY, API_MAX_ENV, "}}");
    req = accept_at(__LINE__, API_EXECFILE, s, strlen(s));
    CHECK_STR(req.spec.procs[0].envp[API_MAX_ENV - 1], "K4095=4095");
    CHECK(req.spec.procs[0].envp[API_MAX_ENV] == NULL);
    api_request_free(&req);
    free(s);
    s = many("{\"file\":\"ls\",\"env\":{", ENV_ENTRY, API_MAX_ENV + 1, "}}");
    reject_at(__LINE__, API_EXECFILE, s, strlen(s), API_ERR_INVALID_ARG_VALUE, "env",
              "at most 4096");
    free(s);
}

static void test_integers(void)
{
    struct api_request req =
        ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":5000,\"max_buffer\":1,\"uid\":0,"
                             "\"gid\":4294967294}");
    CHECK_INT(req.spec.timeout_ms, 5000);
    CHECK_INT(req.max_buffer, 1);
    CHECK_INT(req.spec.uid, 0);
    CHECK_INT(req.spec.gid, 4294967294ll);
    api_request_free(&req);

    req = ACCEPT(API_EXEC, "{\"command\":\"x\",\"max_buffer\":1073741824,"
                           "\"timeout_ms\":1000000000000}");
    CHECK_INT(req.max_buffer, 1073741824);
    CHECK_INT(req.spec.timeout_ms, 1000000000000ll);
    api_request_free(&req);
    OK(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":-0}");

    /* Out of range: refused, never clamped. */
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":9999999999999999999999}",
           INVALID_ARG_VALUE, "timeout_ms", "must be an integer from 0 to 1000000000000");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":18446744073709551615}", INVALID_ARG_VALUE,
           "timeout_ms", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":9223372036854775807}", INVALID_ARG_VALUE,
           "timeout_ms", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":-9999999999999999999999}",
           INVALID_ARG_VALUE, "timeout_ms", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":1000000000001}", INVALID_ARG_VALUE,
           "timeout_ms", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":-1}", INVALID_ARG_VALUE, "timeout_ms",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":1.5}", INVALID_ARG_TYPE, "timeout_ms",
           "must be an integer");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":1e3}", INVALID_ARG_TYPE, "timeout_ms",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":1.0}", INVALID_ARG_TYPE, "timeout_ms",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":\"5\"}", INVALID_ARG_TYPE, "timeout_ms",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":true}", INVALID_ARG_TYPE, "timeout_ms",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"max_buffer\":0}", INVALID_ARG_VALUE, "max_buffer",
           "from 1 to 1073741824");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"max_buffer\":1073741825}", INVALID_ARG_VALUE,
           "max_buffer", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"uid\":4294967295}", INVALID_ARG_VALUE, "uid", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"uid\":-1}", INVALID_ARG_VALUE, "uid", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"gid\":99999999999999999999}", INVALID_ARG_VALUE, "gid",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"gid\":\"0\"}", INVALID_ARG_TYPE, "gid", NULL);

    /* The server's cap on timeout_ms. */
    cfg.max_timeout_ms = 10000;
    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\"}");
    CHECK_INT(req.spec.timeout_ms, 10000);
    api_request_free(&req);
    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":0}");
    CHECK_INT(req.spec.timeout_ms, 10000);
    api_request_free(&req);
    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":10000}");
    CHECK_INT(req.spec.timeout_ms, 10000);
    api_request_free(&req);
    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":250}");
    CHECK_INT(req.spec.timeout_ms, 250);
    api_request_free(&req);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"timeout_ms\":10001}", INVALID_ARG_VALUE, "timeout_ms",
           "maximum of 10000");
    cfg.max_timeout_ms = 0;
}

static void test_signals(void)
{
    struct api_request req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":\"SIGKILL\"}");
    CHECK_INT(req.spec.kill_signal, SIGKILL);
    api_request_free(&req);
    req = ACCEPT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":2}");
    CHECK_INT(req.spec.kill_signal, SIGINT);
    api_request_free(&req);
    char body[128];
    snprintf(body, sizeof body, "{\"file\":\"ls\",\"kill_signal\":%d}", SIGRTMAX);
    req = accept_at(__LINE__, API_EXECFILE, body, strlen(body));
    CHECK_INT(req.spec.kill_signal, SIGRTMAX);
    api_request_free(&req);
    snprintf(body, sizeof body, "{\"file\":\"ls\",\"kill_signal\":%d}", SIGRTMAX + 1);
    reject_at(__LINE__, API_EXECFILE, body, strlen(body), API_ERR_INVALID_ARG_VALUE, "kill_signal",
              NULL);

    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":\"KILL\"}", INVALID_ARG_VALUE,
           "kill_signal", "unknown signal \"KILL\"");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":\"sigterm\"}", INVALID_ARG_VALUE,
           "kill_signal", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":\"SIGKILL\\u0000x\"}", INVALID_ARG_VALUE,
           "kill_signal", "NUL");
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":0}", INVALID_ARG_VALUE, "kill_signal",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":-9}", INVALID_ARG_VALUE, "kill_signal",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":99999999999999999999}",
           INVALID_ARG_VALUE, "kill_signal", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":9.0}", INVALID_ARG_TYPE, "kill_signal",
           NULL);
    REJECT(API_EXECFILE, "{\"file\":\"ls\",\"kill_signal\":[]}", INVALID_ARG_TYPE, "kill_signal",
           NULL);
}

static void test_stdin_and_encoding(void)
{
    struct api_request req = ACCEPT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"hello\\n\"}");
    CHECK_INT(req.spec.stdin_mode, EXEC_STDIN_DATA);
    CHECK_INT(req.spec.stdin_len, 6);
    CHECK(memcmp(req.spec.stdin_data, "hello\n", 6) == 0);
    api_request_free(&req);

    req = ACCEPT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"\"}");
    CHECK_INT(req.spec.stdin_mode, EXEC_STDIN_DATA);
    CHECK_INT(req.spec.stdin_len, 0);
    api_request_free(&req);

    /* stdin is bytes: a NUL is fine. */
    req = ACCEPT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"a\\u0000b\"}");
    CHECK_INT(req.spec.stdin_len, 3);
    CHECK(memcmp(req.spec.stdin_data, "a\0b", 3) == 0);
    api_request_free(&req);

    req = ACCEPT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"AP8=\",\"stdin_encoding\":\"base64\","
                               "\"encoding\":\"base64\"}");
    CHECK_INT(req.spec.stdin_len, 2);
    CHECK(memcmp(req.spec.stdin_data, "\0\xff", 2) == 0);
    CHECK_INT(req.encoding, API_BASE64);
    api_request_free(&req);

    req = ACCEPT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"\",\"stdin_encoding\":\"base64\"}");
    CHECK_INT(req.spec.stdin_mode, EXEC_STDIN_DATA);
    CHECK_INT(req.spec.stdin_len, 0);
    api_request_free(&req);

    req = ACCEPT(API_EXECFILE,
                 "{\"file\":\"cat\",\"stdin_encoding\":\"utf8\",\"encoding\":\"utf8\"}");
    CHECK_INT(req.spec.stdin_mode, EXEC_STDIN_NULL);
    CHECK_INT(req.encoding, API_UTF8);
    api_request_free(&req);

    REJECT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"AP8\",\"stdin_encoding\":\"base64\"}",
           INVALID_ARG_VALUE, "stdin", "not valid base64");
    REJECT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"A P8=\",\"stdin_encoding\":\"base64\"}",
           INVALID_ARG_VALUE, "stdin", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":5}", INVALID_ARG_TYPE, "stdin", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"cat\",\"stdin\":\"x\",\"stdin_encoding\":\"hex\"}",
           INVALID_ARG_VALUE, "stdin_encoding", "\"utf8\" or \"base64\"");
    REJECT(API_EXECFILE, "{\"file\":\"cat\",\"encoding\":\"latin1\"}", INVALID_ARG_VALUE,
           "encoding", NULL);
    REJECT(API_EXECFILE, "{\"file\":\"cat\",\"encoding\":1}", INVALID_ARG_TYPE, "encoding", NULL);
}

static void test_pipeline(void)
{
    struct api_request req = ACCEPT(
        API_PIPELINE, "{\"steps\":[{\"command\":\"ps\",\"args\":[\"ax\"]},"
                      "{\"command\":\"grep\",\"args\":[\"node\"],\"cwd\":\"/tmp\","
                      "\"env\":{\"B\":\"2\"},\"argv0\":\"g\"},{\"command\":\"wc\"}],"
                      "\"cwd\":\"/\",\"env\":{\"A\":\"1\"},\"stdin\":\"x\","
                      "\"timeout_ms\":100,\"kill_signal\":\"SIGINT\",\"encoding\":\"base64\"}");
    CHECK_INT(req.kind, API_PIPELINE);
    CHECK_INT(req.spec.nprocs, 3);
    if (req.spec.nprocs == 3) {
        const struct exec_proc *p = req.spec.procs;
        CHECK_STR(p[0].file, "ps");
        CHECK_STR(joined(p[0].argv), "ps|ax");
        CHECK_STR(p[0].cwd, "/");
        CHECK_STR(joined(p[0].envp), "A=1");
        CHECK_STR(p[1].file, "grep");
        CHECK_STR(joined(p[1].argv), "g|node");
        CHECK_STR(p[1].cwd, "/tmp");
        CHECK_STR(joined(p[1].envp), "B=2");
        CHECK_STR(joined(p[2].argv), "wc");
        CHECK(p[2].envp == p[0].envp);
    }
    CHECK_INT(req.spec.stdin_mode, EXEC_STDIN_DATA);
    CHECK_INT(req.spec.timeout_ms, 100);
    CHECK_INT(req.spec.kill_signal, SIGINT);
    CHECK_INT(req.encoding, API_BASE64);
    CHECK_INT(req.max_buffer, 0);
    api_request_free(&req);

    /* A top-level shell applies to every step unless the step says otherwise. */
    req = ACCEPT(API_PIPELINE, "{\"shell\":true,\"steps\":[{\"command\":\"echo\",\"args\":[\"a\"]},"
                               "{\"command\":\"cat\",\"shell\":false}]}");
    CHECK_STR(joined(req.spec.procs[0].argv), "/bin/sh|-c|echo a");
    CHECK_STR(joined(req.spec.procs[1].argv), "cat");
    CHECK(req.spec.procs[0].envp == default_env);
    CHECK(req.spec.procs[0].cwd == NULL);
    api_request_free(&req);

    REJECT(API_PIPELINE, "{}", INVALID_ARG_TYPE, "steps", "must be an array of objects");
    REJECT(API_PIPELINE, "{\"steps\":{}}", INVALID_ARG_TYPE, "steps", NULL);
    REJECT(API_PIPELINE, "{\"steps\":[]}", INVALID_ARG_VALUE, "steps", "from 2 to 64");
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"}]}", INVALID_ARG_VALUE, "steps", NULL);
    char *s = many("{\"steps\":[", STEP, 64, "]}");
    req = accept_at(__LINE__, API_PIPELINE, s, strlen(s));
    CHECK_INT(req.spec.nprocs, 64);
    api_request_free(&req);
    free(s);
    s = many("{\"steps\":[", STEP, 65, "]}");
    reject_at(__LINE__, API_PIPELINE, s, strlen(s), API_ERR_INVALID_ARG_VALUE, "steps", NULL);
    free(s);

    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"},\"wc\"]}", INVALID_ARG_TYPE, "steps[1]",
           "\"steps[1]\" must be an object");
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"},{\"args\":[]}]}", INVALID_ARG_TYPE,
           "steps[1].command", "\"steps[1].command\" must be a string");
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"\"}]}", INVALID_ARG_VALUE,
           "steps[1].command", NULL);
    REJECT(API_PIPELINE,
           "{\"steps\":[{\"command\":\"ls\",\"args\":[\"a\",\"b\",7]},{\"command\":"
           "\"wc\"}]}",
           INVALID_ARG_TYPE, "steps[0].args[2]", "\"steps[0].args[2]\" must be a string");
    REJECT(API_PIPELINE,
           "{\"steps\":[{\"command\":\"ls\",\"args\":[\"\\u0000\"]},{\"command\":"
           "\"wc\"}]}",
           INVALID_ARG_VALUE, "steps[0].args[0]", NULL);
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\",\"timeout_ms\":1}]}",
           INVALID_ARG_VALUE, "steps[1].timeout_ms", "unknown field \"steps[1].timeout_ms\"");
    REJECT(API_PIPELINE,
           "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\",\"env\":{\"A\":1}}]}",
           INVALID_ARG_TYPE, "steps[1].env.A", NULL);
    REJECT(API_PIPELINE,
           "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\",\"env\":{\"=\":\"\"}}]}",
           INVALID_ARG_VALUE, "steps[1].env.=", NULL);
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\",\"cwd\":\"\"},{\"command\":\"wc\"}]}",
           INVALID_ARG_VALUE, "steps[0].cwd", NULL);
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\",\"shell\":7},{\"command\":\"wc\"}]}",
           INVALID_ARG_TYPE, "steps[0].shell", NULL);
    REJECT(API_PIPELINE,
           "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\",\"command\":\"x\"}]}",
           INVALID_JSON, "steps[1].command", "duplicate key");
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\"}],\"argv0\":\"x\"}",
           INVALID_ARG_VALUE, "argv0", "unknown field");
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\"}],\"max_buffer\":1}",
           INVALID_ARG_VALUE, "max_buffer", NULL);
    REJECT(API_PIPELINE,
           "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\"}],\"command\":\"x\"}",
           INVALID_ARG_VALUE, "command", NULL);
    REJECT(API_PIPELINE, "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\"}],\"cwd\":5}",
           INVALID_ARG_TYPE, "cwd", NULL);
    REJECT(API_PIPELINE,
           "{\"steps\":[{\"command\":\"ls\"},{\"command\":\"wc\"}],\"env\":{\"A\":5}}",
           INVALID_ARG_TYPE, "env.A", NULL);
}

static void test_config(void)
{
    /* No default environment configured: children get an empty one. */
    cfg.default_env = NULL;
    cfg.default_shell = NULL;
    struct api_request req = ACCEPT(API_EXEC, "{\"command\":\"true\"}");
    CHECK(req.spec.procs[0].envp != NULL && req.spec.procs[0].envp[0] == NULL);
    CHECK_STR(req.spec.procs[0].file, "/bin/sh");
    api_request_free(&req);
    cfg.default_env = default_env;
    cfg.default_shell = "/bin/sh";

    struct api_error err;
    CHECK_INT(api_request_parse((enum api_kind)42, "{}", 2, &cfg, &req, &err), -1);
    CHECK_INT(err.code, API_ERR_INTERNAL);
    /* An empty body may come as NULL. */
    CHECK_INT(api_request_parse(API_EXEC, NULL, 0, &cfg, &req, &err), -1);
    CHECK_INT(err.code, API_ERR_INVALID_JSON);
    CHECK(req.priv == NULL);
}

int main(void)
{
    test_exec_file();
    test_shell();
    test_required();
    test_body();
    test_depth();
    test_strings();
    test_env();
    test_limits();
    test_integers();
    test_signals();
    test_stdin_and_encoding();
    test_pipeline();
    test_config();
    return check_status();
}
