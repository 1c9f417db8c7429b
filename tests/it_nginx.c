/* it_nginx: the shipped nginx configuration (deploy/nginx/) in front of two
 * real spawnd instances, i0 and i1.
 *
 * The test renders deploy/nginx/spawnd.conf for a free loopback port, writes
 * spawnd.upstreams with deploy/nginx/gen-upstreams.sh, runs a real nginx on
 * them (in a temporary prefix, logs there too) and checks, through the proxy:
 * exec; a spawn stream arriving live; background jobs landing on both
 * instances and every request for a job reaching the instance that owns it
 * (get, follow, signal, delete); stdin streaming through unbuffered; a client
 * hanging up killing its job; raw streams (their trailers are lost, as the
 * README says); tokens passing through; an unknown instance's job id; and,
 * with one instance stopped, stateless requests still served and its jobs
 * answered 502. Skipped (77) when nginx is not installed. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define TOKEN "it-nginx-token-7f3a"
#define AUTH "Authorization: Bearer " TOKEN

static struct srv S[2]; /* i0, i1 */
static struct srv P;    /* the proxy: only its url is used */
static pid_t nginx_pid;
static char tmpdir[64] = "/tmp/spawnd-nginx-XXXXXX";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "it_nginx: %s\n", what);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cat %s/error.log %s/nginx.out >&2 2>/dev/null", tmpdir, tmpdir);
    if (system(cmd)) {}
    if (nginx_pid > 0) { /* fast shutdown: the master takes its workers down */
        kill(nginx_pid, SIGTERM);
        for (int waited = 0; waited < 3000 && waitpid(nginx_pid, NULL, WNOHANG) != nginx_pid;
             waited += 20)
            sleep_ms(20);
    }
    for (int i = 0; i < 2; i++)
        if (S[i].pid > 0) srv_stop(&S[i], 3000);
    exit(1);
}

static const char *find_nginx(void)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin", "/usr/bin",
                                       "/usr/local/nginx/sbin", "/usr/local/bin"};
    static char path[256];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/nginx", dirs[i]);
        if (access(path, X_OK) == 0) return path;
    }
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        fail("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) fail("cannot write a file in the temporary directory");
}

/* deploy/nginx/spawnd.conf with its one placeholder filled in, as envsubst
 * would; no other placeholder may be left. */
static void render_conf(int port)
{
    char *t = slurp(DEPLOY_DIR "/nginx/spawnd.conf");
    if (!t) fail("cannot read deploy/nginx/spawnd.conf");
    static const char ph[] = "${SPAWND_PROXY_LISTEN}";
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    char *out = calloc(1, strlen(t) * 2 + 64), *w = out;
    int n = 0;
    for (const char *p = t, *at; *p; p = at + strlen(ph), n++) {
        if (!(at = strstr(p, ph))) {
            w = stpcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(at - p));
        w += at - p;
        w = stpcpy(w, addr);
    }
    if (n == 0) fail("deploy/nginx/spawnd.conf has no ${SPAWND_PROXY_LISTEN}");
    CHECK(strstr(out, "${") == NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/spawnd.conf", tmpdir);
    write_file(path, out);
    free(out);
    free(t);
}

static void start_nginx(const char *nginx, int port)
{
    char cmd[512], path[128], conf[2048];
    snprintf(cmd, sizeof cmd, "sh %s/nginx/gen-upstreams.sh i0=127.0.0.1:%d i1=127.0.0.1:%d > %s/spawnd.upstreams",
             DEPLOY_DIR, S[0].port, S[1].port, tmpdir);
    if (system(cmd) != 0) fail("gen-upstreams.sh failed");
    render_conf(port);
    /* The main file: everything nginx writes goes to the temporary prefix. */
    snprintf(conf, sizeof conf,
             "worker_processes 1;\n"
             "error_log %1$s/error.log info;\n"
             "events { worker_connections 512; }\n"
             "http {\n"
             "    access_log %1$s/access.log;\n"
             "    client_body_temp_path %1$s/body;\n"
             "    proxy_temp_path %1$s/proxy;\n"
             "    fastcgi_temp_path %1$s/fastcgi;\n"
             "    uwsgi_temp_path %1$s/uwsgi;\n"
             "    scgi_temp_path %1$s/scgi;\n"
             "    include spawnd.conf;\n"
             "}\n",
             tmpdir);
    snprintf(path, sizeof path, "%s/nginx.conf", tmpdir);
    write_file(path, conf);

    char prefix[80], errlog[96], globals[160], out[96];
    snprintf(prefix, sizeof prefix, "%s/", tmpdir);
    snprintf(errlog, sizeof errlog, "%s/error.log", tmpdir);
    snprintf(globals, sizeof globals, "daemon off; pid %s/nginx.pid;", tmpdir);
    snprintf(out, sizeof out, "%s/nginx.out", tmpdir);
    nginx_pid = fork();
    if (nginx_pid < 0) fail("fork");
    if (nginx_pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(nginx, nginx, "-p", prefix, "-c", path, "-e", errlog, "-g", globals, (char *)NULL);
        _exit(127);
    }
    snprintf(P.url, sizeof P.url, "http://127.0.0.1:%d", port);
    P.port = port;
    for (int waited = 0; waited < 10000; waited += 50) {
        int st;
        if (waitpid(nginx_pid, &st, WNOHANG) == nginx_pid) {
            nginx_pid = 0;
            fail("nginx exited at start-up");
        }
        struct resp r;
        http_req(&P, "GET", "/healthz", NULL, NULL, 0, NULL, 1000, &r);
        long status = r.status;
        resp_free(&r);
        if (status == 200) return;
        sleep_ms(50);
    }
    fail("nginx did not answer /healthz through the proxy in 10 s");
}

static void stop_nginx(void)
{
    if (nginx_pid <= 0) return;
    kill(nginx_pid, SIGQUIT); /* graceful: finish the open requests, exit */
    int st = 0;
    for (int waited = 0; waitpid(nginx_pid, &st, WNOHANG) != nginx_pid; waited += 20) {
        if (waited > 10000) {
            fprintf(stderr, "it_nginx: nginx did not stop in 10 s\n");
            kill(nginx_pid, SIGKILL);
            waitpid(nginx_pid, &st, 0);
            break;
        }
        sleep_ms(20);
    }
    nginx_pid = 0;
}

/* --- requests through the proxy -------------------------------------------- */

static const char *const auth[] = {AUTH, NULL};

static void get(const struct srv *s, const char *path, struct resp *r)
{
    http_req(s, "GET", path, NULL, NULL, 0, auth, 0, r);
}

static void post(const struct srv *s, const char *path, const char *json, struct resp *r)
{
    http_req(s, "POST", path, "application/json", json, strlen(json), auth, 0, r);
}

/* A streamed response read with the curl multi interface, so the test can
 * act while it arrives. */
struct stream {
    CURL *h;
    struct curl_slist *hdrs;
    struct buf body;
    double t0, t_match; /* when started; when needle first arrived (0: not yet) */
    const char *needle;
    bool done;
    int abort_after_needle; /* hang up once the needle is in */
    /* uploads */
    const char *const *parts; /* NULL-terminated chunks, the next sent on unpause */
    int next_part;
    bool paused;
};

static size_t stream_write(char *p, size_t sz, size_t n, void *arg)
{
    struct stream *s = arg;
    if (buf_append(&s->body, p, sz * n) < 0) return 0;
    if (s->needle && !s->t_match && strstr(s->body.data, s->needle)) {
        s->t_match = now_s();
        if (s->abort_after_needle) return 0; /* curl closes the connection */
    }
    return sz * n;
}

static size_t stream_read(char *p, size_t sz, size_t n, void *arg)
{
    struct stream *s = arg;
    if (s->paused) return CURL_READFUNC_PAUSE;
    const char *part = s->parts[s->next_part];
    if (!part) return 0; /* the end of the body */
    size_t len = strlen(part);
    if (len > sz * n) fail("upload part too large");
    memcpy(p, part, len);
    s->next_part++;
    s->paused = true; /* the next part waits for the test to unpause */
    return len;
}

static void stream_begin(CURLM *m, struct stream *s, const char *method, const char *path,
                         const char *json)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->body, 16 << 20);
    s->h = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", P.url, path);
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    s->hdrs = curl_slist_append(s->hdrs, AUTH);
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    if (json) {
        s->hdrs = curl_slist_append(s->hdrs, "Content-Type: application/json");
        curl_easy_setopt(s->h, CURLOPT_COPYPOSTFIELDS, json);
    }
    curl_easy_setopt(s->h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    s->t0 = now_s();
    if (m) curl_multi_add_handle(m, s->h);
}

/* A chunked upload of parts, each sent only after stream_unpause(). */
static void upload_begin(CURLM *m, struct stream *s, const char *path, const char *const *parts)
{
    stream_begin(NULL, s, "POST", path, NULL);
    s->parts = parts;
    s->hdrs = curl_slist_append(s->hdrs, "Content-Type: application/octet-stream");
    s->hdrs = curl_slist_append(s->hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(s->h, CURLOPT_POST, 1L);
    curl_easy_setopt(s->h, CURLOPT_READFUNCTION, stream_read);
    curl_easy_setopt(s->h, CURLOPT_READDATA, s);
    curl_multi_add_handle(m, s->h);
}

static void stream_unpause(struct stream *s)
{
    s->paused = false;
    curl_easy_pause(s->h, CURLPAUSE_CONT);
}

static void stream_end(CURLM *m, struct stream *s)
{
    if (m) curl_multi_remove_handle(m, s->h);
    curl_easy_cleanup(s->h);
    curl_slist_free_all(s->hdrs);
    buf_free(&s->body);
}

/* Run the transfers until cond(arg) holds or timeout_ms passes; returns
 * whether cond held. */
static bool pump(CURLM *m, int timeout_ms, bool (*cond)(void *), void *arg)
{
    double end = now_s() + timeout_ms / 1000.0;
    while (now_s() < end) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct stream *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            s->done = true;
        }
        if (cond(arg)) return true;
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    return cond(arg);
}

static bool is_done(void *arg)
{
    return ((struct stream *)arg)->done;
}

static bool has_match(void *arg)
{
    struct stream *s = arg;
    return s->t_match > 0 || s->done;
}

/* --- the checks -------------------------------------------------------------- */

static void check_basics(void)
{
    struct resp r;
    /* /healthz needs no token, through the proxy too. */
    http_get(&P, "/healthz", &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body.data, "\"status\":\"ok\"");
    resp_free(&r);
    /* Tokens are spawnd's business: nginx passes Authorization through. */
    http_get(&P, "/v1/version", &r);
    CHECK_INT(r.status, 401);
    CHECK_HAS(r.body.data, "ERR_UNAUTHORIZED");
    resp_free(&r);
    get(&P, "/v1/version", &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body.data, "\"api\":1");
    resp_free(&r);

    /* exec through the proxy. */
    post(&P, "/v1/exec", "{\"command\":\"echo hello; echo err >&2; exit 3\"}", &r);
    CHECK_INT(r.status, 200);
    json_object *o = resp_json(&r);
    CHECK_STR(jstr(o, "stdout"), "hello\n");
    CHECK_STR(jstr(o, "stderr"), "err\n");
    CHECK_INT(jint(o, "exit_code"), 3);
    json_object_put(o);
    resp_free(&r);

    /* Errors spawnd makes pass through unchanged (here a 422). */
    post(&P, "/v1/spawn", "{\"command\":\"no-such-program-it-nginx\"}", &r);
    CHECK_INT(r.status, 422);
    CHECK_HAS(r.body.data, "\"code\":\"ENOENT\"");
    resp_free(&r);

    /* A job id that names no instance behind the proxy: 404 from nginx,
     * shaped as spawnd's. */
    get(&P, "/v1/jobs/zz.AAAAAAAAAAAAAAAAAAAAAAAA", &r);
    CHECK_INT(r.status, 404);
    CHECK_HAS(r.body.data, "\"code\":\"ERR_NOT_FOUND\"");
    CHECK_HAS(resp_header(&r, "Content-Type"), "application/json");
    resp_free(&r);
    get(&P, "/v1/jobs/nodot/output", &r);
    CHECK_INT(r.status, 404);
    resp_free(&r);
}

/* The first line of `echo a; sleep 2; echo b` arrives at once, not when the
 * program ends: nginx does not buffer the stream. */
static void check_live_spawn(void)
{
    CURLM *m = curl_multi_init();
    struct stream s;
    stream_begin(m, &s, "POST", "/v1/spawn",
                 "{\"command\":\"sh\",\"args\":[\"-c\",\"echo a; sleep 2; echo b\"]}");
    s.needle = "\"data\":\"a\\n\"";
    CHECK(pump(m, 15000, is_done, &s));
    CHECK(s.t_match > 0);
    double first = s.t_match - s.t0, total = now_s() - s.t0;
    fprintf(stderr, "spawn through nginx: first line after %.3f s, all after %.3f s\n", first,
            total);
    CHECK(first < 1.0);
    CHECK(total >= 1.9);
    CHECK_HAS(s.body.data, "{\"event\":\"spawn\",\"pid\":");
    CHECK_HAS(s.body.data, "\"data\":\"b\\n\"");
    CHECK_HAS(s.body.data, "{\"event\":\"exit\",\"exit_code\":0,");
    long status = 0;
    curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &status);
    CHECK_INT(status, 200);
    stream_end(m, &s);
    curl_multi_cleanup(m);
}

/* Raw streams: the bytes come through; the trailers do not (nginx drops
 * them, and the config hides the Trailer header that announces them). */
static void check_raw(void)
{
    struct resp r;
    post(&P, "/v1/spawn?format=raw&stderr=merge",
         "{\"command\":\"sh\",\"args\":[\"-c\",\"printf raw; printf E >&2; exit 3\"]}", &r);
    CHECK_INT(r.status, 200);
    CHECK(r.body.len == 4 && (memcmp(r.body.data, "rawE", 4) == 0 || memcmp(r.body.data, "Eraw", 4) == 0));
    CHECK_HAS(resp_header(&r, "Content-Type"), "application/octet-stream");
    CHECK(resp_header(&r, "Trailer") == NULL);
    if (resp_header(&r, "Spawnd-Exit-Code"))
        fprintf(stderr, "note: nginx forwarded the raw stream's trailers; deploy/nginx/README.md "
                        "says they are lost\n");
    resp_free(&r);
}

/* A client that hangs up on nginx makes nginx hang up on spawnd, which kills
 * the job, as without a proxy. */
static void check_client_gone(void)
{
    CURLM *m = curl_multi_init();
    struct stream s;
    stream_begin(m, &s, "POST", "/v1/spawn", "{\"command\":\"sleep\",\"args\":[\"30\"]}");
    s.needle = "{\"event\":\"spawn\",\"pid\":";
    s.abort_after_needle = 1;
    CHECK(pump(m, 10000, is_done, &s));
    const char *p = s.body.data ? strstr(s.body.data, s.needle) : NULL;
    int pid = p ? atoi(p + strlen(s.needle)) : 0;
    CHECK(pid > 0);
    stream_end(m, &s);
    curl_multi_cleanup(m);
    bool gone = false;
    for (int waited = 0; pid > 0 && waited < 5000 && !gone; waited += 20) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d", pid);
        gone = access(path, F_OK) != 0;
        if (!gone) sleep_ms(20);
    }
    CHECK(gone);
    CHECK(srv_log_has(&S[0], "msg=client_gone") || srv_log_has(&S[1], "msg=client_gone"));
}

static int owner_of(const char *id)
{
    if (strncmp(id, "i0.", 3) == 0) return 0;
    if (strncmp(id, "i1.", 3) == 0) return 1;
    return -1;
}

/* Create jobs through the proxy until both instances own one; each is
 * reachable through the proxy, and only on its owner directly. */
static void check_jobs(char ids[2][96])
{
    ids[0][0] = ids[1][0] = 0;
    for (int n = 0; n < 20 && (!ids[0][0] || !ids[1][0]); n++) {
        struct resp r;
        post(&P, "/v1/jobs",
             "{\"kind\":\"spawn\",\"command\":\"sh\",\"args\":[\"-c\",\"echo started; exec sleep 60\"]}",
             &r);
        CHECK_INT(r.status, 201);
        json_object *o = resp_json(&r);
        const char *id = jstr(o, "id");
        int who = id ? owner_of(id) : -1;
        CHECK(who >= 0);
        char loc[512];
        snprintf(loc, sizeof loc, "/v1/jobs/%s", id ? id : "");
        CHECK_STR(resp_header(&r, "Location"), loc);
        if (who >= 0 && !ids[who][0]) snprintf(ids[who], sizeof ids[who], "%s", id);
        else if (who >= 0) { /* one more on an instance that has one: not needed */
            struct resp d;
            http_req(&P, "DELETE", loc, NULL, NULL, 0, auth, 0, &d);
            CHECK_INT(d.status, 204);
            resp_free(&d);
        }
        json_object_put(o);
        resp_free(&r);
    }
    CHECK(ids[0][0] && ids[1][0]);
    for (int i = 0; i < 2; i++) {
        if (!ids[i][0]) continue;
        char path[512];
        snprintf(path, sizeof path, "/v1/jobs/%s", ids[i]);
        struct resp r;
        get(&P, path, &r);
        CHECK_INT(r.status, 200);
        json_object *o = resp_json(&r);
        CHECK_STR(jstr(o, "id"), ids[i]);
        CHECK_STR(jstr(o, "state"), "running");
        json_object_put(o);
        resp_free(&r);
        get(&S[i], path, &r); /* directly: the owner has it */
        CHECK_INT(r.status, 200);
        resp_free(&r);
        get(&S[1 - i], path, &r); /* the other instance does not */
        CHECK_INT(r.status, 404);
        resp_free(&r);
    }
    /* GET /v1/jobs is balanced: each answer is one instance's list. */
    struct resp r;
    get(&P, "/v1/jobs", &r);
    CHECK_INT(r.status, 200);
    CHECK(r.body.data && (strstr(r.body.data, ids[0]) != NULL) != (strstr(r.body.data, ids[1]) != NULL));
    resp_free(&r);
}

/* Follow a job's output through the proxy, signal it and delete it, all
 * through the proxy. */
static void check_follow_signal_delete(const char *id)
{
    char path[512];
    CURLM *m = curl_multi_init();
    struct stream f;
    snprintf(path, sizeof path, "/v1/jobs/%s/output?follow=true", id);
    stream_begin(m, &f, "GET", path, NULL);
    f.needle = "\"data\":\"started\\n\"";
    CHECK(pump(m, 10000, has_match, &f));
    CHECK(f.t_match > 0 && !f.done); /* the retained line came, and the stream stays open */

    struct resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/signal", id);
    post(&P, path, "{\"signal\":\"SIGTERM\"}", &r);
    CHECK_INT(r.status, 202);
    CHECK_HAS(r.body.data, id);
    resp_free(&r);

    CHECK(pump(m, 10000, is_done, &f));
    CHECK_HAS(f.body.data, "{\"seq\":1,\"event\":\"spawn\"");
    CHECK_HAS(f.body.data, "\"event\":\"exit\",\"exit_code\":null,\"signal\":\"SIGTERM\"");
    stream_end(m, &f);
    curl_multi_cleanup(m);

    snprintf(path, sizeof path, "/v1/jobs/%s/wait?timeout_ms=5000", id);
    get(&P, path, &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body.data, "\"state\":\"exited\"");
    resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    http_req(&P, "DELETE", path, NULL, NULL, 0, auth, 0, &r);
    CHECK_INT(r.status, 204);
    resp_free(&r);
    get(&P, path, &r);
    CHECK_INT(r.status, 404);
    CHECK_HAS(r.body.data, "ERR_NOT_FOUND");
    resp_free(&r);
}

static bool saw_one(void *arg)
{
    struct stream *f = arg;
    return f->done || (f->body.data && strstr(f->body.data, "one"));
}

static bool saw_two(void *arg)
{
    struct stream *f = arg;
    return f->done || (f->body.data && strstr(f->body.data, "two"));
}

/* stdin through the proxy as it is sent: "one" reaches the child (and comes
 * back in its output) while the upload is still open. With request
 * buffering, nginx would hold it until the body ended. */
static void check_stdin_streams(void)
{
    struct resp r;
    post(&P, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"cat\"}", &r);
    CHECK_INT(r.status, 201);
    json_object *o = resp_json(&r);
    char id[96];
    snprintf(id, sizeof id, "%s", jstr(o, "id") ? jstr(o, "id") : "none");
    json_object_put(o);
    resp_free(&r);

    CURLM *m = curl_multi_init();
    struct stream f, u;
    char path[512];
    snprintf(path, sizeof path, "/v1/jobs/%s/output?follow=true", id);
    stream_begin(m, &f, "GET", path, NULL);
    static const char *const parts[] = {"one\n", "two\n", NULL};
    snprintf(path, sizeof path, "/v1/jobs/%s/stdin?close=true", id);
    upload_begin(m, &u, path, parts);
    CHECK(pump(m, 10000, saw_one, &f));
    CHECK(f.body.data && strstr(f.body.data, "one"));
    CHECK(!u.done); /* the upload is still going */
    stream_unpause(&u);  /* "two" */
    CHECK(pump(m, 10000, saw_two, &f));
    CHECK(!u.done);
    stream_unpause(&u); /* the end of the body */
    CHECK(pump(m, 10000, is_done, &u));
    long status = 0;
    curl_easy_getinfo(u.h, CURLINFO_RESPONSE_CODE, &status);
    CHECK_INT(status, 204);
    CHECK(pump(m, 10000, is_done, &f)); /* cat saw EOF and exited */
    CHECK_HAS(f.body.data, "two");
    CHECK_HAS(f.body.data, "\"event\":\"exit\",\"exit_code\":0,");
    stream_end(m, &u);
    stream_end(m, &f);
    curl_multi_cleanup(m);
}

/* One instance gone: stateless requests still succeed (nginx tries the next
 * instance when a connection is refused), its jobs' URLs answer 502. */
static void check_instance_down(const char *id_on_i1)
{
    CHECK_INT(srv_stop(&S[1], 15000), 0);
    S[1].pid = 0;
    for (int i = 0; i < 6; i++) {
        struct resp r;
        post(&P, "/v1/exec", "{\"command\":\"echo still\"}", &r);
        CHECK_INT(r.status, 200);
        CHECK_HAS(r.body.data, "\"stdout\":\"still\\n\"");
        resp_free(&r);
    }
    struct resp r;
    char path[512];
    snprintf(path, sizeof path, "/v1/jobs/%s", id_on_i1);
    get(&P, path, &r);
    CHECK_INT(r.status, 502);
    CHECK_HAS(r.body.data, "\"code\":\"ERR_BAD_GATEWAY\"");
    resp_free(&r);
}

int main(void)
{
    const char *nginx = find_nginx();
    if (!nginx) {
        printf("SKIP: nginx is not installed (Debian: apt-get install nginx-light)\n");
        return 77;
    }
    if (!mkdtemp(tmpdir)) fail("mkdtemp");
    chmod(tmpdir, 0755); /* nginx's workers run as an unprivileged user */

    static const char *const env[] = {"SPAWND_TOKEN=" TOKEN, NULL};
    srv_start_env(&S[0], (const char *const[]){"--instance-id", "i0", NULL}, env);
    srv_start_env(&S[1], (const char *const[]){"--instance-id", "i1", NULL}, env);
    start_nginx(nginx, free_port());

    check_basics();
    check_live_spawn();
    check_raw();
    check_client_gone();
    char ids[2][96];
    check_jobs(ids);
    for (int i = 0; i < 2; i++)
        if (ids[i][0]) check_follow_signal_delete(ids[i]);
    check_stdin_streams();

    /* A job left running on i1 for the instance-down check. */
    char id1[96] = "";
    for (int n = 0; n < 20 && !id1[0]; n++) {
        struct resp r;
        post(&P, "/v1/jobs", "{\"kind\":\"spawn\",\"command\":\"sleep\",\"args\":[\"60\"]}", &r);
        json_object *o = r.status == 201 ? resp_json(&r) : NULL;
        const char *id = o ? jstr(o, "id") : NULL;
        if (id && owner_of(id) == 1) snprintf(id1, sizeof id1, "%s", id);
        if (o) json_object_put(o);
        resp_free(&r);
    }
    CHECK(id1[0]);
    check_instance_down(id1[0] ? id1 : "i1.AAAAAAAAAAAAAAAAAAAAAAAA");

    stop_nginx();
    CHECK_INT(srv_stop(&S[0], 15000), 0);
    S[0].pid = 0;
    if (check_failures) {
        fprintf(stderr, "nginx logs kept in %s\n", tmpdir);
    } else {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd)) {}
    }
    return check_status();
}
