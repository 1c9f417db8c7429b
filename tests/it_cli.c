/* The server's command line and process life: --help/--version, bad usage
 * (exit 2, one line on stderr), environment forms and flags winning,
 * --max-jobs (429), graceful shutdown on SIGTERM/SIGINT, --max-timeout-ms,
 * and runs as another user (uid/gid, when the tests run as root). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appends(&b, "");
    char tmp[4096];
    size_t n;
    while (f && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(&b, tmp, n);
    if (f) fclose(f);
    char *s = strdup(b.data);
    buf_free(&b);
    return s;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static pid_t fork_spawnd(const char *const *argv, const char *const *env, int out_fd, int err_fd)
{
    const char *args[64] = {SPAWND_BIN};
    size_t n = 1;
    for (size_t i = 0; argv && argv[i] && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        srv_child_env(env);
        execv(SPAWND_BIN, (char *const *)args);
        _exit(127);
    }
    return pid;
}

/* Runs spawnd to its end (at most timeout_ms, then it is killed and -1
 * returned); its stdout and stderr are returned in *out and *err. */
static int run_cli(const char *const *argv, const char *const *env, char **out, char **err,
                   int timeout_ms)
{
    char op[] = "/tmp/spawnd-cli-out-XXXXXX", ep[] = "/tmp/spawnd-cli-err-XXXXXX";
    int ofd = mkstemp(op), efd = mkstemp(ep);
    pid_t pid = fork_spawnd(argv, env, ofd, efd);
    close(ofd);
    close(efd);
    int st = 0, rc = -1;
    for (int waited = 0;; waited += 10) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(10000);
    }
    *out = slurp(op);
    *err = slurp(ep);
    unlink(op);
    unlink(ep);
    return rc;
}

/* Starts spawnd with exactly these arguments (no --listen added) and waits
 * for its "listening on" line. Returns 0 when it listens (s is then usable
 * with the harness), or its exit status when it ended instead. */
static int start_spawnd(struct srv *s, const char *const *argv, const char *const *env)
{
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "/tmp/spawnd-cli-%d-XXXXXX", (int)getpid());
    int lfd = mkstemp(s->log);
    int devnull = open("/dev/null", O_WRONLY);
    s->pid = fork_spawnd(argv, env, devnull, lfd);
    close(lfd);
    close(devnull);
    for (int waited = 0; waited < 5000; waited += 10) {
        char *log = slurp(s->log);
        char *p = strstr(log, "listening on http://");
        char *eol = p ? strchr(p, '\n') : NULL;
        if (p && eol) {
            *eol = 0;
            char *colon = strrchr(p, ':');
            s->port = atoi(colon + 1);
            snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
            free(log);
            return 0;
        }
        free(log);
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            unlink(s->log);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    return -1;
}

/* How many lines of the server's log contain needle. */
static int log_count(const struct srv *s, const char *needle)
{
    char *log = slurp(s->log);
    int n = 0;
    for (char *p = log; (p = strstr(p, needle)); p++)
        n++;
    free(log);
    return n;
}

static bool wait_log_count(const struct srv *s, const char *needle, int n, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (log_count(s, needle) >= n) return true;
        usleep(10000);
    }
    return false;
}

/* --- --help, --version --------------------------------------------------------- */

static void test_help_version(void)
{
    char *out, *err;
    const char *help[] = {"--help", NULL};
    CHECK_INT(run_cli(help, NULL, &out, &err, 3000), 0);
    CHECK_HAS(out, "usage");
    static const char *const documented[] = {"--listen", "--max-jobs", "--kill-grace-ms",
                                             "--max-timeout-ms", "--max-body-bytes", "--insecure",
                                             "--help", "--version"};
    for (size_t i = 0; i < sizeof documented / sizeof documented[0]; i++)
        CHECK_HAS(out, documented[i]);
    CHECK_STR(err, "");
    free(out);
    free(err);

    /* --help wins over everything else on the line, even a bad option. */
    const char *help2[] = {"--max-jobs", "5", "--help", NULL};
    CHECK_INT(run_cli(help2, NULL, &out, &err, 3000), 0);
    CHECK_HAS(out, "usage");
    free(out);
    free(err);

    const char *version[] = {"--version", NULL};
    CHECK_INT(run_cli(version, NULL, &out, &err, 3000), 0);
    CHECK_HAS(out, "spawnd");
    int a, b, c;
    const char *v = strpbrk(out, "0123456789");
    CHECK(v && sscanf(v, "%d.%d.%d", &a, &b, &c) == 3);
    CHECK_INT(count_lines(out), 1);
    CHECK_STR(err, "");
    free(out);
    free(err);
}

/* --- bad command lines: exit 2, one clear line on stderr ------------------------------ */

static void test_bad_usage(void)
{
    static const struct {
        const char *argv[6];
        const char *env[3];
    } cases[] = {
        {{"--nope"}, {NULL}},
        {{"-x"}, {NULL}},
        {{"stray-argument"}, {NULL}},
        {{"--max-jobs", "abc"}, {NULL}},
        {{"--max-jobs"}, {NULL}},
        {{"--max-jobs", "0"}, {NULL}},
        {{"--max-jobs", "-1"}, {NULL}},
        {{"--max-jobs", "5x"}, {NULL}},
        {{"--max-jobs", ""}, {NULL}},
        {{"--max-jobs", "99999999999999999999999"}, {NULL}},
        {{"--kill-grace-ms", "1.5"}, {NULL}},
        {{"--max-body-bytes", "10"}, {NULL}},
        {{"--max-timeout-ms", "abc"}, {NULL}},
        {{"--listen", "0.0.0.0:0"}, {NULL}},
        {{"--listen", "[::]:0"}, {NULL}},
        {{"--listen", "127.0.0.1"}, {NULL}},
        {{"--listen", "127.0.0.1:99999"}, {NULL}},
        {{"--listen", "127.0.0.1:port"}, {NULL}},
        {{"--listen", ":8080"}, {NULL}},
        {{NULL}, {"SPAWND_MAX_JOBS=abc"}},
        {{NULL}, {"SPAWND_KILL_GRACE_MS=-5"}},
        {{NULL}, {"SPAWND_LISTEN=bad:x"}},
        {{NULL}, {"SPAWND_LISTEN=0.0.0.0:0"}},
        {{"--listen", "0.0.0.0:0"}, {"SPAWND_INSECURE=maybe"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = run_cli(cases[i].argv, cases[i].env, &out, &err, 3000);
        int before = check_failures;
        CHECK_INT(rc, 2);
        CHECK_STR(out, "");
        CHECK_INT(count_lines(err), 1);
        CHECK(strlen(err) > 10 && err[strlen(err) - 1] == '\n');
        CHECK(!strstr(err, "listening on"));
        if (check_failures != before)
            fprintf(stderr, "  ^ case %zu: %s %s %s / %s: rc %d, stderr: %s\n", i,
                    cases[i].argv[0] ? cases[i].argv[0] : "", cases[i].argv[1] ? cases[i].argv[1] : "",
                    cases[i].argv[2] ? cases[i].argv[2] : "", cases[i].env[0] ? cases[i].env[0] : "",
                    rc, err);
        free(out);
        free(err);
    }

    /* Not a usage error: an address that cannot be bound is exit 1. */
    char *out, *err;
    const char *nobind[] = {"--listen", "192.0.2.1:0", "--insecure", NULL};
    CHECK_INT(run_cli(nobind, NULL, &out, &err, 3000), 1);
    CHECK(!strstr(err, "listening on"));
    free(out);
    free(err);
}

/* --- environment forms ------------------------------------------------------------ */

struct call {
    const struct srv *s;
    const char *path, *body;
    struct resp r;
    double secs;
};

static void *call_thread(void *arg)
{
    struct call *c = arg;
    double t0 = now_s();
    http_req(c->s, "POST", c->path, "application/json", c->body, strlen(c->body), NULL, 30000, &c->r);
    c->secs = now_s() - t0;
    return NULL;
}

/* With one `sleep` running, is a second run refused? */
static long second_run_status(const struct srv *s, int nth_start)
{
    struct call c = {.s = s, .path = "/v1/execFile", .body = "{\"file\":\"sleep\",\"args\":[\"1\"]}"};
    pthread_t t;
    pthread_create(&t, NULL, call_thread, &c);
    CHECK(wait_log_count(s, "msg=job.start", nth_start, 3000));
    struct resp r;
    http_post_json(s, "/v1/execFile", "{\"file\":\"true\"}", &r);
    long st = r.status;
    resp_free(&r);
    pthread_join(t, NULL);
    CHECK_INT(c.r.status, 200);
    resp_free(&c.r);
    return st;
}

static void test_env_and_flags(void)
{
    struct srv s;
    /* The environment form alone. */
    const char *env1[] = {"SPAWND_LISTEN=127.0.0.1:0", "SPAWND_MAX_JOBS=1", NULL};
    CHECK_INT(start_spawnd(&s, NULL, env1), 0);
    if (s.port) {
        CHECK_INT(second_run_status(&s, 1), 429);
        CHECK_INT(srv_stop(&s, 5000), 0);
    }
    /* Flags win over the environment. */
    const char *args2[] = {"--listen", "127.0.0.1:0", "--max-jobs", "3", NULL};
    CHECK_INT(start_spawnd(&s, args2, env1), 0);
    if (s.port) {
        CHECK_INT(second_run_status(&s, 1), 200);
        CHECK_INT(srv_stop(&s, 5000), 0);
    }
    /* Insecure by environment: a wildcard address is allowed. */
    const char *env3[] = {"SPAWND_LISTEN=0.0.0.0:0", "SPAWND_INSECURE=1", NULL};
    CHECK_INT(start_spawnd(&s, NULL, env3), 0);
    if (s.port) {
        struct resp r;
        http_get(&s, "/healthz", &r);
        CHECK_INT(r.status, 200);
        resp_free(&r);
        CHECK_INT(srv_stop(&s, 5000), 0);
    }
    const char *args4[] = {"--listen", "0.0.0.0:0", "--insecure", NULL};
    CHECK_INT(start_spawnd(&s, args4, NULL), 0);
    if (s.port) CHECK_INT(srv_stop(&s, 5000), 0);

    /* Flags win: a bad environment value that a flag overrides does not matter. */
    const char *env5[] = {"SPAWND_LISTEN=bad:x", "SPAWND_MAX_JOBS=abc", NULL};
    const char *args5[] = {"--listen", "127.0.0.1:0", "--max-jobs", "4", NULL};
    int rc = start_spawnd(&s, args5, env5);
    CHECK_INT(rc, 0);
    if (rc == 0) CHECK_INT(srv_stop(&s, 5000), 0);
}

/* --- --max-jobs ------------------------------------------------------------------ */

static void test_max_jobs(void)
{
    struct srv s;
    const char *args[] = {"--max-jobs", "1", NULL};
    srv_start(&s, args);
    struct call c = {.s = &s, .path = "/v1/exec", .body = "{\"command\":\"sleep 2\"}"};
    pthread_t t;
    pthread_create(&t, NULL, call_thread, &c);
    CHECK(wait_log_count(&s, "msg=job.start", 1, 3000));

    static const struct { const char *path, *body; } runs[] = {
        {"/v1/exec", "{\"command\":\"true\"}"},
        {"/v1/execFile", "{\"file\":\"true\"}"},
        {"/v1/spawn", "{\"command\":\"true\"}"},
        {"/v1/spawn?format=raw", "{\"command\":\"true\"}"},
        {"/v1/pipeline", "{\"steps\":[{\"command\":\"true\"},{\"command\":\"true\"}]}"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        struct resp r;
        http_post_json(&s, runs[i].path, runs[i].body, &r);
        CHECK_INT(r.status, 429);
        const char *ra = resp_header(&r, "Retry-After");
        CHECK(ra && atoi(ra) >= 1);
        CHECK_HAS(resp_header(&r, "Content-Type"), "application/json");
        json_object *o = r.body.data ? json_tokener_parse(r.body.data) : NULL;
        CHECK_STR(jstr(o, "error.code"), "ERR_TOO_MANY_JOBS");
        CHECK(jstr(o, "error.message") != NULL);
        json_object_put(o);
        resp_free(&r);
    }
    /* Requests that run nothing are still served. */
    struct resp r;
    http_get(&s, "/healthz", &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);

    pthread_join(t, NULL);
    CHECK_INT(c.r.status, 200);
    json_object *o = resp_json(&c.r);
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    resp_free(&c.r);

    /* The slot is free again; a run that fails to start does not keep it. */
    http_post_json(&s, "/v1/spawn", "{\"command\":\"no-such-program-xyz\"}", &r);
    CHECK_INT(r.status, 422);
    resp_free(&r);
    http_post_json(&s, "/v1/execFile", "{\"file\":\"true\"}", &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    CHECK_INT(srv_stop(&s, 5000), 0);
}

/* --- shutdown ------------------------------------------------------------------------ */

static void test_graceful_shutdown(void)
{
    struct srv s;
    const char *args[] = {"--kill-grace-ms", "1000", NULL};
    srv_start(&s, args);
    /* One exec that dies of SIGTERM, one stream whose process ignores it. */
    struct call ex = {.s = &s, .path = "/v1/exec", .body = "{\"command\":\"sleep 100\"}"};
    struct call st = {.s = &s, .path = "/v1/spawn", .body =
                      "{\"command\":\"sh\",\"args\":[\"-c\",\"trap '' TERM; echo ready; sleep 100\"]}"};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, call_thread, &ex);
    pthread_create(&t2, NULL, call_thread, &st);
    CHECK(wait_log_count(&s, "msg=job.start", 2, 3000));
    usleep(100000); /* the trap is set */

    double t0 = now_s();
    kill(s.pid, SIGTERM);
    /* New requests: 503 while the ignoring job holds spawnd up. */
    struct resp r = {0};
    for (int i = 0; i < 50; i++) {
        http_get(&s, "/healthz", &r);
        if (r.status != 200) break;
        resp_free(&r);
        usleep(10000);
    }
    CHECK_INT(r.status, 503);
    CHECK_HAS(r.body.data, "\"ERR_SHUTTING_DOWN\"");
    resp_free(&r);
    http_post_json(&s, "/v1/exec", "{\"command\":\"true\"}", &r);
    CHECK(r.status == 503 || r.curl_code == CURLE_COULDNT_CONNECT);
    if (r.status == 503) CHECK_HAS(r.body.data, "\"ERR_SHUTTING_DOWN\"");
    resp_free(&r);

    int wst = 0;
    pid_t done = 0;
    while ((done = waitpid(s.pid, &wst, WNOHANG)) == 0 && now_s() - t0 < 6)
        usleep(10000);
    double secs = now_s() - t0;
    CHECK_INT(done, s.pid);
    if (done != s.pid) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, &wst, 0);
    }
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    CHECK(secs < 1.0 + 2.0 + 0.3); /* kill grace + 2 s */
    CHECK(secs > 0.9);              /* the grace was given to the ignoring job */
    fprintf(stderr, "shutdown took %.2f s\n", secs);

    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_INT(ex.r.status, 200);
    json_object *o = ex.r.status == 200 ? resp_json(&ex.r) : NULL;
    CHECK(jbool(o, "killed"));
    CHECK(!jbool(o, "timed_out"));
    CHECK_STR(jstr(o, "signal"), "SIGTERM");
    CHECK(jnull(o, "exit_code"));
    json_object_put(o);
    CHECK(ex.secs < 1.0); /* answered at once, not held until the end */
    resp_free(&ex.r);

    /* The stream was finished properly: its last line is the exit event. */
    CHECK_INT(st.r.status, 200);
    CHECK_HAS(st.r.body.data, "\"data\":\"ready\\n\"");
    const char *last = st.r.body.data ? strstr(st.r.body.data, "{\"event\":\"exit\"") : NULL;
    CHECK(last != NULL);
    json_object *x = last ? json_tokener_parse(last) : NULL;
    CHECK(jbool(x, "killed"));
    CHECK_STR(jstr(x, "signal"), "SIGKILL");
    json_object_put(x);
    resp_free(&st.r);

    /* Gone: connections are refused. */
    http_get(&s, "/healthz", &r);
    CHECK_INT(r.curl_code, CURLE_COULDNT_CONNECT);
    resp_free(&r);
    CHECK(srv_log_has(&s, "msg=shutdown"));
    CHECK(srv_log_has(&s, "msg=stopped"));
    unlink(s.log);

    /* SIGINT on an idle server: a clean exit at once. */
    srv_start(&s, NULL);
    t0 = now_s();
    kill(s.pid, SIGINT);
    while ((done = waitpid(s.pid, &wst, WNOHANG)) == 0 && now_s() - t0 < 3)
        usleep(10000);
    CHECK_INT(done, s.pid);
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    CHECK(now_s() - t0 < 0.5);
    unlink(s.log);
}

/* A client that stops reading cannot hold spawnd up past the deadline, and
 * SIGHUP does not stop it. */
static void test_shutdown_with_stalled_client(void)
{
    struct srv s;
    const char *args[] = {"--kill-grace-ms", "500", NULL};
    srv_start(&s, args);

    kill(s.pid, SIGHUP);
    usleep(100000);
    struct resp r;
    http_get(&s, "/healthz", &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    CHECK(srv_log_has(&s, "msg=sighup"));

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    const char *body = "{\"command\":\"yes\"}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /v1/spawn HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    CHECK(write(fd, req, (size_t)n) == n);
    CHECK(wait_log_count(&s, "msg=job.start", 1, 3000));
    usleep(300000); /* the stream fills up; the client reads nothing */

    double t0 = now_s();
    kill(s.pid, SIGTERM);
    int wst = 0;
    pid_t done;
    while ((done = waitpid(s.pid, &wst, WNOHANG)) == 0 && now_s() - t0 < 6)
        usleep(10000);
    double secs = now_s() - t0;
    CHECK_INT(done, s.pid);
    if (done != s.pid) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, &wst, 0);
    }
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    CHECK(secs < 0.5 + 2.0 + 0.3);
    fprintf(stderr, "shutdown with a stalled client took %.2f s\n", secs);
    close(fd);
    unlink(s.log);
}

/* --- --max-timeout-ms ------------------------------------------------------------- */

static void test_max_timeout(void)
{
    struct srv s;
    const char *args[] = {"--max-timeout-ms", "500", "--kill-grace-ms", "500", NULL};
    srv_start(&s, args);
    struct resp r;
    http_post_json(&s, "/v1/execFile", "{\"file\":\"sleep\",\"args\":[\"5\"],\"timeout_ms\":1000}", &r);
    CHECK_INT(r.status, 400);
    json_object *o = r.status == 400 ? resp_json(&r) : NULL;
    CHECK_STR(jstr(o, "error.code"), "ERR_INVALID_ARG_VALUE");
    CHECK_STR(jstr(o, "error.field"), "timeout_ms");
    json_object_put(o);
    resp_free(&r);
    http_post_json(&s, "/v1/spawn", "{\"command\":\"sleep\",\"args\":[\"5\"],\"timeout_ms\":501}", &r);
    CHECK_INT(r.status, 400);
    resp_free(&r);

    static const struct { const char *timeout; double lo, hi; } cases[] = {
        {"", 0.45, 1.5},                  /* none asked: the server's maximum */
        {",\"timeout_ms\":0", 0.45, 1.5}, /* 0 means none: the maximum too */
        {",\"timeout_ms\":500", 0.45, 1.5},
        {",\"timeout_ms\":150", 0.1, 0.45},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"file\":\"sleep\",\"args\":[\"5\"]%s}", cases[i].timeout);
        http_post_json(&s, "/v1/execFile", body, &r);
        CHECK_INT(r.status, 200);
        o = resp_json(&r);
        CHECK(jbool(o, "timed_out"));
        CHECK(jbool(o, "killed"));
        CHECK_STR(jstr(o, "signal"), "SIGTERM");
        double ms = json_object_get_double(jget(o, "duration_ms"));
        CHECK(ms >= cases[i].lo * 1000 && ms <= cases[i].hi * 1000);
        if (ms < cases[i].lo * 1000 || ms > cases[i].hi * 1000)
            fprintf(stderr, "  ^ %s: %.0f ms\n", body, ms);
        json_object_put(o);
        resp_free(&r);
    }
    /* Streams get the maximum too. */
    http_post_json(&s, "/v1/spawn", "{\"command\":\"sleep\",\"args\":[\"5\"]}", &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body.data, "\"timed_out\":true");
    CHECK(r.total_s < 1.5);
    resp_free(&r);
    /* A quick run is not affected. */
    http_post_json(&s, "/v1/execFile", "{\"file\":\"true\"}", &r);
    o = resp_json(&r);
    CHECK(!jbool(o, "timed_out"));
    CHECK_INT(jint(o, "exit_code"), 0);
    json_object_put(o);
    resp_free(&r);
    CHECK_INT(srv_stop(&s, 5000), 0);
}

/* --- uid and gid ---------------------------------------------------------------------- */

static json_object *run_as(const struct srv *s, const char *path, const char *body, long status)
{
    struct resp r;
    http_post_json(s, path, body, &r);
    CHECK_INT(r.status, status);
    if (r.status != status) fprintf(stderr, "  ^ %s %s: %s\n", path, body, r.body.data);
    json_object *o = r.body.data ? json_tokener_parse(r.body.data) : NULL;
    resp_free(&r);
    return o;
}

/* The concatenated data of the stdout events of an NDJSON stream. */
static char *ndjson_stdout(const char *body)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appends(&b, "");
    for (const char *p = body; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, n);
        json_object *e = json_tokener_parse(line);
        if (e && jstr(e, "event") && !strcmp(jstr(e, "event"), "stdout") && jstr(e, "data"))
            buf_appends(&b, jstr(e, "data"));
        json_object_put(e);
        free(line);
        p = nl ? nl + 1 : NULL;
    }
    char *s = strdup(b.data);
    buf_free(&b);
    return s;
}

static void test_uid_gid(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP test_uid_gid: not running as root\n");
        return;
    }
    struct srv s;
    srv_start(&s, NULL);
    json_object *o;
    o = run_as(&s, "/v1/execFile", "{\"file\":\"id\",\"args\":[\"-u\"],\"uid\":65534,\"gid\":65534}", 200);
    CHECK_STR(jstr(o, "stdout"), "65534\n");
    json_object_put(o);
    o = run_as(&s, "/v1/execFile", "{\"file\":\"id\",\"args\":[\"-g\"],\"uid\":65534,\"gid\":65534}", 200);
    CHECK_STR(jstr(o, "stdout"), "65534\n");
    json_object_put(o);
    /* Supplementary groups are dropped: only the one group is left. */
    o = run_as(&s, "/v1/execFile", "{\"file\":\"id\",\"args\":[\"-G\"],\"uid\":65534,\"gid\":65534}", 200);
    CHECK_STR(jstr(o, "stdout"), "65534\n");
    json_object_put(o);
    o = run_as(&s, "/v1/execFile",
               "{\"file\":\"grep\",\"args\":[\"-E\",\"^(NoNewPrivs|Uid|Gid|Groups):\",\"/proc/self/status\"],"
               "\"uid\":65534,\"gid\":65534}", 200);
    CHECK_HAS(jstr(o, "stdout"), "NoNewPrivs:\t1\n");
    CHECK_HAS(jstr(o, "stdout"), "Uid:\t65534\t65534\t65534\t65534\n");
    CHECK_HAS(jstr(o, "stdout"), "Gid:\t65534\t65534\t65534\t65534\n");
    json_object_put(o);
    /* Runs that do not ask are not touched (and do not go through the shim). */
    o = run_as(&s, "/v1/execFile", "{\"file\":\"grep\",\"args\":[\"NoNewPrivs\",\"/proc/self/status\"]}", 200);
    CHECK_STR(jstr(o, "stdout"), "NoNewPrivs:\t0\n");
    json_object_put(o);
    o = run_as(&s, "/v1/execFile", "{\"file\":\"id\",\"args\":[\"-u\"]}", 200);
    CHECK_STR(jstr(o, "stdout"), "0\n");
    json_object_put(o);
    /* uid alone */
    o = run_as(&s, "/v1/execFile", "{\"file\":\"id\",\"args\":[\"-u\"],\"uid\":65534}", 200);
    CHECK_STR(jstr(o, "stdout"), "65534\n");
    json_object_put(o);
    /* through the shell, as a stream, in every step of a pipeline */
    o = run_as(&s, "/v1/exec", "{\"command\":\"id -u; id -G\",\"uid\":65534,\"gid\":65534}", 200);
    CHECK_STR(jstr(o, "stdout"), "65534\n65534\n");
    json_object_put(o);
    struct resp r;
    http_post_json(&s, "/v1/spawn", "{\"command\":\"id\",\"args\":[\"-u\"],\"uid\":65534,\"gid\":65534}", &r);
    char *out = ndjson_stdout(r.body.data);
    CHECK_STR(out, "65534\n");
    free(out);
    resp_free(&r);
    http_post_json(&s, "/v1/pipeline",
                   "{\"steps\":[{\"command\":\"id\",\"args\":[\"-u\"]},{\"command\":\"sh\",\"args\":[\"-c\",\"cat; id -u\"]}],"
                   "\"uid\":65534,\"gid\":65534}", &r);
    out = ndjson_stdout(r.body.data);
    CHECK_STR(out, "65534\n65534\n");
    free(out);
    resp_free(&r);

    /* The child sees what any child sees: fds 0-2 only, a clean signal
     * state, its own session. */
    char body[512];
    snprintf(body, sizeof body, "{\"file\":\"%s\",\"uid\":65534,\"gid\":65534}", helper("childview"));
    o = run_as(&s, "/v1/execFile", body, 200);
    json_object *v = jstr(o, "stdout") ? json_tokener_parse(jstr(o, "stdout")) : NULL;
    CHECK(v != NULL);
    if (v) {
        CHECK_INT(json_object_array_length(jget(v, "fds")), 3);
        CHECK_STR(jstr(v, "sigblk"), "0000000000000000");
        CHECK_STR(jstr(v, "sigign"), "0000000000000000");
        CHECK_INT(jint(v, "sid"), jint(v, "pid"));
        json_object_put(v);
    }
    json_object_put(o);

    /* exec errors come through the shim as they would without it */
    const char *priv = "/tmp/spawnd-it-cli-rootonly";
    FILE *f = fopen(priv, "w");
    fputs("#!/bin/sh\necho secret\n", f);
    fclose(f);
    chmod(priv, 0700);
    snprintf(body, sizeof body, "{\"file\":\"%s\",\"uid\":65534,\"gid\":65534}", priv);
    o = run_as(&s, "/v1/execFile", body, 422);
    CHECK_STR(jstr(o, "error.code"), "EACCES");
    json_object_put(o);
    snprintf(body, sizeof body, "{\"file\":\"%s\"}", priv);
    o = run_as(&s, "/v1/execFile", body, 200);
    CHECK_STR(jstr(o, "stdout"), "secret\n");
    json_object_put(o);
    unlink(priv);
    o = run_as(&s, "/v1/execFile", "{\"file\":\"no-such-program-xyz\",\"uid\":65534}", 422);
    CHECK_STR(jstr(o, "error.code"), "ENOENT");
    json_object_put(o);

    static const char *const bad[] = {"\"uid\":-1", "\"uid\":4294967295", "\"gid\":-2",
                                      "\"uid\":\"0\"", "\"gid\":1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "{\"file\":\"true\",%s}", bad[i]);
        o = run_as(&s, "/v1/execFile", body, 400);
        json_object_put(o);
    }
    /* A shim that reported a failed exec exits at once; it may still be
     * on its way to being reaped. */
    int left = srv_descendants(&s);
    for (int i = 0; i < 100 && left; i++) {
        usleep(10000);
        left = srv_descendants(&s);
    }
    CHECK_INT(left, 0);
    CHECK_INT(srv_stop(&s, 5000), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    test_help_version();
    test_bad_usage();
    test_env_and_flags();
    test_max_jobs();
    test_graceful_shutdown();
    test_shutdown_with_stalled_client();
    test_max_timeout();
    test_uid_gid();
    return check_status();
}
