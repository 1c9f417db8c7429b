/* Security controls through the real server: bearer tokens (file, env,
 * SIGHUP reload, never in logs or a child's environment), the refusal to
 * listen on a public address without one, TLS, --allow, --env-allow,
 * --rlimit (with a fork bomb), uid/gid and no-new-privs, and the
 * parent-death signal. Every case ends with spawnd healthy, holding the
 * descriptors it held before, with no zombie.
 *
 * Runs as root here and in CI (uid/gid and the fork bomb need it; the
 * fork bomb runs as uid 65534, because RLIMIT_NPROC does not bind root). */
#include <curl/curl.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "sec_kit.h"

static char TMP[128];

/* --- processes, by /proc ------------------------------------------------------- */

/* Parent pid and state of pid, from /proc/PID/stat; 0 when it is gone. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], b[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = 0;
    char *rp = strrchr(b, ')');
    int pp = 0;
    char st = '?';
    if (!rp || sscanf(rp + 2, "%c %d", &st, &pp) != 2) return 0;
    if (state) *state = st;
    if (ppid) *ppid = pp;
    return 1;
}

/* Gone, or a zombie (dead; whoever adopted it has not reaped it yet). */
static bool proc_dead(pid_t pid)
{
    char st;
    return !proc_stat(pid, &st, NULL) || st == 'Z' || st == 'X';
}

/* Live processes whose argv is exactly a0 a1; up to max pids into out. */
static int find_procs(const char *a0, const char *a1, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        pid_t pid = atoi(e->d_name);
        if (pid <= 0 || proc_dead(pid)) continue;
        char path[64], b[256];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(b, 1, sizeof b - 1, f);
        fclose(f);
        b[len] = 0;
        size_t l0 = strlen(a0);
        if (len == l0 + 1 + strlen(a1) + 1 && strcmp(b, a0) == 0 && strcmp(b + l0 + 1, a1) == 0)
            out[n++] = pid;
    }
    if (d) closedir(d);
    return n;
}

/* --- spawnd started by hand (other listen addresses, other users) -------------- */

struct run {
    int exit_status;  /* when it exited on its own; -1 while it runs */
    bool listening;   /* printed "listening on" */
    char err[4096];   /* its stderr */
    int port;
};

/* Runs spawnd with exactly args (plus the extra env strings; SPAWND_* of the
 * test's own environment are dropped); as_uid >= 0 runs it as that user.
 * Waits (at most timeout_ms) for it to exit or to listen. A listening
 * spawnd is left running in *pid (else *pid = 0). */
static void run_spawnd(const char *const *args, const char *const *env, int as_uid,
                       int timeout_ms, struct run *out, pid_t *pid, char *logpath, size_t logsz)
{
    memset(out, 0, sizeof *out);
    out->exit_status = -1;
    snprintf(logpath, logsz, "/tmp/spawnd-sec-%d-XXXXXX", (int)getpid());
    int lfd = mkstemp(logpath);
    const char *argv[40] = {SPAWND_BIN};
    size_t n = 1;
    for (size_t i = 0; args && args[i] && n < 38; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t p = fork();
    if (p == 0) {
        dup2(lfd, 2);
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 0);
        dup2(dn, 1);
        srv_child_env(env);
        if (as_uid >= 0 && (setgid((gid_t)as_uid) < 0 || setuid((uid_t)as_uid) < 0)) _exit(126);
        execv(SPAWND_BIN, (char *const *)argv);
        _exit(127);
    }
    close(lfd);
    *pid = 0;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int st;
        char *log = read_all(logpath);
        snprintf(out->err, sizeof out->err, "%s", log);
        free(log);
        char *l = strstr(out->err, "listening on http://");
        if (l && strchr(l, '\n')) {
            char *colon = strrchr(l, ':');
            out->port = colon ? atoi(colon + 1) : 0;
            out->listening = true;
            *pid = p;
            return;
        }
        if (waitpid(p, &st, WNOHANG) == p) {
            char *log2 = read_all(logpath);
            snprintf(out->err, sizeof out->err, "%s", log2);
            free(log2);
            out->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return;
        }
        sleep_ms(10);
    }
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
}

static int stop_pid(pid_t p)
{
    int st = 0;
    kill(p, SIGTERM);
    for (int waited = 0; waitpid(p, &st, WNOHANG) != p; waited += 10) {
        if (waited > 5000) {
            kill(p, SIGKILL);
            waitpid(p, &st, 0);
            return -1;
        }
        sleep_ms(10);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Refused configurations: exit 2 with one line on stderr. */
static void expect_refused_at(int line, const char *const *args, const char *const *env,
                              const char *needle)
{
    struct run r;
    pid_t p;
    char log[128];
    run_spawnd(args, env, -1, 5000, &r, &p, log, sizeof log);
    int before = check_failures;
    CHECK(!r.listening);
    CHECK_INT(r.exit_status, 2); /* also under ASan: a refused start-up leaks nothing */
    CHECK_INT(count_lines(r.err), 1);
    if (needle) CHECK_HAS(r.err, needle);
    if (check_failures != before) fprintf(stderr, "  ^ line %d, stderr: %s\n", line, r.err);
    if (p) stop_pid(p);
    unlink(log);
}
#define EXPECT_REFUSED(args, env, needle) expect_refused_at(__LINE__, args, env, needle)

static void expect_starts_at(int line, const char *const *args, const char *const *env)
{
    struct run r;
    pid_t p;
    char log[128];
    run_spawnd(args, env, -1, 5000, &r, &p, log, sizeof log);
    int before = check_failures;
    CHECK(r.listening);
    if (p) CHECK_INT(stop_pid(p), 0);
    if (check_failures != before) fprintf(stderr, "  ^ line %d, stderr: %s\n", line, r.err);
    unlink(log);
}
#define EXPECT_STARTS(args, env) expect_starts_at(__LINE__, args, env)

/* --- tokens ------------------------------------------------------------------ */

#define TOK_A "tA-3f9c1e7b2d4a6f80-alpha"
#define TOK_B "tB-77aa00ff11ee22dd-beta"
#define TOK_C "tC-c0ffee00c0ffee00-gamma"
#define TOK_E "tE-5b5b5b5b5b5b5b5b-env"
#define TOK_BAD "tX-0000000000000000-wrong"

static long with_auth(const struct srv *s, const char *method, const char *path,
                      const char *json, const char *authorization)
{
    char h[512] = "";
    if (authorization) snprintf(h, sizeof h, "Authorization: %s", authorization);
    const char *hdrs[] = {h, NULL};
    return status_of(s, method, path, json, authorization ? hdrs : NULL);
}

static void test_tokens(void)
{
    char file[256], marker[256], json[512];
    snprintf(file, sizeof file, "%s/tokens", TMP);
    snprintf(marker, sizeof marker, "%s/ran", TMP);
    write_file(file,
               "# spawnd tokens: one a line\n"
               "# " TOK_BAD "\n"
               "\n" TOK_A "\r\n"
               "   \n" TOK_B "  \t\n",
               0600);
    struct srv T;
    const char *args[] = {"--token-file", file, NULL};
    const char *env[] = {"SPAWND_TOKEN=" TOK_E, NULL};
    srv_start_env(&T, args, env);
    int fds = srv_fd_count(&T);
    struct resp r;

    /* No header: 401 with the challenge, and nothing runs. */
    http_get(&T, "/v1/version", &r);
    EXPECT_ERROR(&r, 401, "ERR_UNAUTHORIZED");
    CHECK_STR(resp_header(&r, "WWW-Authenticate"), "Bearer");
    resp_free(&r);
    snprintf(json, sizeof json, "{\"file\":\"touch\",\"args\":[\"%s\"]}", marker);
    post_h(&T, "/v1/execFile", json, NULL, &r);
    EXPECT_ERROR(&r, 401, "ERR_UNAUTHORIZED");
    CHECK_STR(resp_header(&r, "WWW-Authenticate"), "Bearer");
    resp_free(&r);
    const char *wrong[] = {"Authorization: Bearer " TOK_BAD, NULL};
    post_h(&T, "/v1/execFile", json, wrong, &r);
    EXPECT_ERROR(&r, 401, "ERR_UNAUTHORIZED");
    CHECK_STR(resp_header(&r, "WWW-Authenticate"), "Bearer");
    resp_free(&r);
    sleep_ms(100);
    CHECK(!file_exists(marker));

    /* Near misses are refused. */
    static const char *const refused[] = {
        "Bearer " TOK_BAD,
        "Bearer tA-3f9c1e7b2d4a6f80-alph",   /* a prefix */
        "Bearer " TOK_A "x",                 /* longer */
        "Bearer " TOK_A TOK_B,               /* two glued */
        "Bearer " TOK_A " " TOK_B,           /* two */
        "Basic " TOK_A,                      /* another scheme */
        "Basic dXNlcjp0QS0zZjljMWU3YjJkNGE2ZjgwLWFscGhh", /* user:TOK_A */
        TOK_A,                               /* no scheme */
        "Bearer",
        "Bearer ",
        "Bearer # spawnd tokens: one a line", /* a comment is not a token */
        "BearerX " TOK_A,
        "Token " TOK_A,
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        long st = with_auth(&T, "GET", "/v1/version", NULL, refused[i]);
        if (st != 401) fprintf(stderr, "  accepted: \"Authorization: %s\"\n", refused[i]);
        CHECK_INT(st, 401);
    }

    /* Both file tokens and the environment's are accepted; the scheme name
     * is case-insensitive (RFC 7235). */
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_A), 200);
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_B), 200);
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_E), 200);
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "bearer " TOK_A), 200);
    CHECK_INT(with_auth(&T, "POST", "/v1/execFile", json, "Bearer " TOK_A), 200);
    CHECK(file_exists(marker));
    unlink(marker);

    /* A token in the query string is never accepted. */
    CHECK_INT(with_auth(&T, "GET", "/v1/version?token=" TOK_A, NULL, NULL), 401);
    CHECK_INT(with_auth(&T, "GET", "/v1/version?access_token=" TOK_A, NULL, NULL), 401);
    CHECK_INT(with_auth(&T, "GET", "/v1/jobs?access_token=" TOK_E, NULL, NULL), 401);
    CHECK_INT(with_auth(&T, "POST", "/v1/execFile?token=" TOK_A, json, NULL), 401);
    CHECK_INT(with_auth(&T, "POST", "/v1/execFile?access_token=" TOK_A, json, NULL), 401);
    sleep_ms(100);
    CHECK(!file_exists(marker));

    /* /healthz is open, with or without a (wrong) token. */
    CHECK_INT(with_auth(&T, "GET", "/healthz", NULL, NULL), 200);
    CHECK_INT(with_auth(&T, "GET", "/healthz", NULL, "Bearer " TOK_BAD), 200);
    /* ...but only /healthz itself (raw bytes: curl would squash the dots). */
    static const char *const not_healthz[] = {
        "GET /healthz/../v1/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "GET /v1/jobs/../../healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "GET /v1/jobs?x=/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "GET //healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof not_healthz / sizeof not_healthz[0]; i++) {
        char *got = raw_exchange(T.port, not_healthz[i], strlen(not_healthz[i]), "\r\n\r\n", 3000,
                                 NULL);
        int code = raw_status(got);
        if (code != 401 && code != 404) fprintf(stderr, "  %s-> %.200s\n", not_healthz[i], got);
        CHECK(code == 401 || code == 404); /* never 200 */
        free(got);
    }

    /* With tokens the Host check is off: a proxy's or a remote name is fine.
     * Without a token a foreign Host is still 401, never 403. */
    const char *remote[] = {"Host: spawnd.example.com:8443", "Authorization: Bearer " TOK_B, NULL};
    http_req(&T, "GET", "/v1/version", NULL, NULL, 0, remote, 0, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    http_req(&T, "POST", "/v1/execFile", "application/json", "{\"file\":\"true\"}", 15, remote,
             0, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    const char *remote_noauth[] = {"Host: evil.example", NULL};
    http_req(&T, "GET", "/v1/version", NULL, NULL, 0, remote_noauth, 0, &r);
    EXPECT_ERROR(&r, 401, "ERR_UNAUTHORIZED");
    resp_free(&r);

    /* No token reaches a child's environment (SPAWND_* is never passed on). */
    const char *auth[] = {"Authorization: Bearer " TOK_A, NULL};
    char *out = RUN_OUT_H(&T, "/v1/execFile", "{\"file\":\"env\"}", auth);
    CHECK(*out);
    CHECK(!strstr(out, TOK_A) && !strstr(out, TOK_B) && !strstr(out, TOK_E));
    CHECK(!strstr(out, "SPAWND_"));
    free(out);
    out = RUN_OUT_H(&T, "/v1/exec", "{\"command\":\"env; tr '\\\\0' '\\\\n' </proc/self/environ\"}", auth);
    CHECK(!strstr(out, TOK_E) && !strstr(out, "SPAWND_"));
    free(out);
    /* Nor can a child running as spawnd's own user find it in spawnd's
     * original environment (/proc/<spawnd>/environ): spawnd wipes it. */
    out = RUN_OUT_H(&T, "/v1/exec", "{\"command\":\"tr '\\\\0' '\\\\n' </proc/$PPID/environ\"}",
                    auth);
    CHECK(!strstr(out, TOK_E));
    free(out);

    /* SIGHUP re-reads the file: the old file tokens stop working, the new
     * one works, and SPAWND_TOKEN is unaffected. */
    write_file(file, "# rotated\n" TOK_C "\n", 0600);
    kill(T.pid, SIGHUP);
    long st = 0;
    for (int waited = 0; waited < 2000; waited += 20) {
        if ((st = with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_A)) == 401) break;
        sleep_ms(20);
    }
    CHECK_INT(st, 401);
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_B), 401);
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_C), 200);
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_E), 200);
    CHECK(srv_log_has(&T, "tokens reloaded"));
    /* A reload that fails (file gone) keeps the tokens in force. */
    unlink(file);
    kill(T.pid, SIGHUP);
    for (int waited = 0; waited < 2000 && !srv_log_has(&T, "not reloaded"); waited += 20)
        sleep_ms(20);
    CHECK(srv_log_has(&T, "not reloaded"));
    CHECK_INT(with_auth(&T, "GET", "/v1/version", NULL, "Bearer " TOK_C), 200);

    /* No token, right or wrong, ever reaches the log. */
    char *log = read_all(T.log);
    CHECK(strstr(log, "status=401") != NULL); /* the log does record the refusals */
    static const char *const secrets[] = {TOK_A, TOK_B, TOK_C, TOK_E, TOK_BAD, "3f9c1e7b2d4a6f80",
                                          "5b5b5b5b5b5b5b5b", "c0ffee00c0ffee00"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (strstr(log, secrets[i])) fprintf(stderr, "  token in the log: %s\n", secrets[i]);
        CHECK(!strstr(log, secrets[i]));
    }
    free(log);

    STILL_SOUND(&T, fds);
    CHECK_INT(srv_stop(&T, 5000), 0);
}

/* Where spawnd may listen, and the other refused configurations. */
static void test_listen_and_config(void)
{
    char file[256], empty[256], cert[256];
    snprintf(file, sizeof file, "%s/tokens-listen", TMP);
    snprintf(empty, sizeof empty, "%s/tokens-empty", TMP);
    snprintf(cert, sizeof cert, "%s/nocert.pem", TMP);
    write_file(file, TOK_A "\n", 0600);
    write_file(empty, "# nothing here\n\n", 0600);

    const char *any4[] = {"--listen", "0.0.0.0:0", NULL};
    const char *any6[] = {"--listen", "[::]:0", NULL};
    EXPECT_REFUSED(any4, NULL, "refusing to listen on non-loopback address 0.0.0.0");
    EXPECT_REFUSED(any6, NULL, "without a token");
    const char *empty_tok[] = {"SPAWND_TOKEN=", NULL};
    EXPECT_REFUSED(any4, empty_tok, "without a token");
    const char *env_listen[] = {"SPAWND_LISTEN=0.0.0.0:0", NULL};
    EXPECT_REFUSED(NULL, env_listen, "without a token");

    const char *tok[] = {"SPAWND_TOKEN=" TOK_E, NULL};
    EXPECT_STARTS(any4, tok);
    const char *insecure[] = {"--listen", "0.0.0.0:0", "--insecure", NULL};
    EXPECT_STARTS(insecure, NULL);
    const char *insecure_env[] = {"SPAWND_INSECURE=1", "SPAWND_LISTEN=0.0.0.0:0", NULL};
    EXPECT_STARTS(NULL, insecure_env);
    const char *with_file[] = {"--listen", "0.0.0.0:0", "--token-file", file, NULL};
    EXPECT_STARTS(with_file, NULL);

    /* A token file that cannot be read or holds no token is refused. */
    const char *missing[] = {"--listen", "127.0.0.1:0", "--token-file", "/nonexistent/tokens",
                             NULL};
    EXPECT_REFUSED(missing, NULL, "/nonexistent/tokens");
    const char *no_tokens[] = {"--listen", "0.0.0.0:0", "--token-file", empty, NULL};
    EXPECT_REFUSED(no_tokens, NULL, "no token");
    /* Half a TLS configuration, an --allow that names nothing, a bad rlimit. */
    const char *half_tls[] = {"--listen", "127.0.0.1:0", "--tls-cert", cert, NULL};
    EXPECT_REFUSED(half_tls, NULL, "--tls-key");
    const char *bad_allow[] = {"--listen", "127.0.0.1:0", "--allow", "no-such-program-xyz", NULL};
    EXPECT_REFUSED(bad_allow, NULL, "no-such-program-xyz");
    const char *bad_rl[] = {"--listen", "127.0.0.1:0", "--rlimit", "stack=1", NULL};
    EXPECT_REFUSED(bad_rl, NULL, "stack=1");
    const char *bad_rl2[] = {"--listen", "127.0.0.1:0", "--rlimit", "nofile=-1", NULL};
    EXPECT_REFUSED(bad_rl2, NULL, "nofile=-1");
}

/* --- TLS --------------------------------------------------------------------- */

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
    struct buf *b = arg;
    buf_append(b, p, sz * n);
    return sz * n;
}

struct tls_result {
    long status;
    int code; /* CURLcode */
    char body[2048];
    double total_s;
};

static void tls_req(const char *url, const char *cainfo, long sslversion, const char *json,
                    struct tls_result *out)
{
    CURL *c = curl_easy_init();
    struct buf b;
    buf_init(&b, 1 << 20);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (cainfo) curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
    curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    if (sslversion) {
        curl_easy_setopt(c, CURLOPT_SSLVERSION, sslversion);
        /* Let the client offer old protocols: the server must be the one refusing. */
        curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, "DEFAULT:@SECLEVEL=0");
    }
    if (json) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    out->code = (int)curl_easy_perform(c);
    out->status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->total_s);
    snprintf(out->body, sizeof out->body, "%s", b.data ? b.data : "");
    buf_free(&b);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void test_tls(void)
{
    char cert[256], key[256], cmd[1024], url[256];
    snprintf(cert, sizeof cert, "%s/cert.pem", TMP);
    snprintf(key, sizeof key, "%s/key.pem", TMP);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 2 "
             "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
             ">/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl cannot make a certificate: TLS cases skipped\n");
        check_failures++;
        return;
    }
    struct srv TL;
    const char *args[] = {"--tls-cert", cert, "--tls-key", key, "--request-timeout-ms", "1500",
                          NULL};
    srv_start(&TL, args);
    int fds = srv_fd_count(&TL);
    struct tls_result r;

    snprintf(url, sizeof url, "https://localhost:%d/healthz", TL.port);
    tls_req(url, cert, 0, NULL, &r);
    CHECK_INT(r.code, CURLE_OK);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "{\"status\":\"ok\"}\n");
    snprintf(url, sizeof url, "https://127.0.0.1:%d/v1/execFile", TL.port);
    tls_req(url, cert, 0, "{\"file\":\"echo\",\"args\":[\"over tls\"]}", &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"stdout\":\"over tls\\n\"");
    /* TLS 1.2 and 1.3 each work; 1.1 and older are refused. */
    tls_req(url, cert, CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2,
            "{\"file\":\"true\"}", &r);
    CHECK_INT(r.status, 200);
    tls_req(url, cert, CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3,
            "{\"file\":\"true\"}", &r);
    CHECK_INT(r.status, 200);
    tls_req(url, cert, CURL_SSLVERSION_TLSv1 | CURL_SSLVERSION_MAX_TLSv1_1, "{\"file\":\"true\"}",
            &r);
    CHECK(r.code != CURLE_OK);
    CHECK_INT(r.status, 0);
    tls_req(url, cert, CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_0, "{\"file\":\"true\"}",
            &r);
    CHECK(r.code != CURLE_OK);
    /* An unknown certificate is not trusted by a verifying client. */
    snprintf(url, sizeof url, "https://localhost:%d/healthz", TL.port);
    tls_req(url, "/dev/null", 0, NULL, &r);
    CHECK(r.code != CURLE_OK);

    /* Plain HTTP to the TLS port fails quickly and cleanly. */
    struct resp pr;
    http_req(&TL, "GET", "/healthz", NULL, NULL, 0, NULL, 4000, &pr);
    CHECK(pr.status != 200);
    CHECK(pr.total_s < 3.0);
    resp_free(&pr);
    int closed = 0;
    const char *plain = "POST /v1/exec HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                        "application/json\r\nContent-Length: 20\r\n\r\n{\"command\":\"true\"}";
    char *got = raw_exchange(TL.port, plain, strlen(plain), NULL, 4000, &closed);
    CHECK(closed);
    CHECK(!strstr(got, "\"exit_code\""));
    free(got);
    /* A client that connects and never starts the handshake is cut at the
     * request deadline. */
    int fd = raw_connect(TL.port);
    double t0 = now_s();
    got = raw_read(fd, NULL, 4000, &closed);
    CHECK(closed);
    CHECK(now_s() - t0 < 3.0);
    free(got);
    close(fd);

    tls_req(url, cert, 0, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK_INT(srv_fd_settle(&TL, fds, 2000), fds);
    CHECK_INT(srv_zombies(&TL), 0);
    CHECK_INT(srv_stop(&TL, 5000), 0);
}

/* --- --allow ------------------------------------------------------------------ */

static void test_allow(void)
{
    char dir[256], path[512], json[1024], marker[512];
    snprintf(dir, sizeof dir, "%s/allow", TMP);
    mkdir(dir, 0755);
    snprintf(marker, sizeof marker, "%s/pwned", dir);

    /* A script named like an allowed program, and links to programs. */
    char script[600];
    snprintf(script, sizeof script, "#!/bin/sh\ntouch %s\necho PWNED\n", marker);
    snprintf(path, sizeof path, "%s/true", dir);
    write_file(path, script, 0755);
    snprintf(path, sizeof path, "%s/usr/bin", dir);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/true' '%s/true' && cp /bin/true '%s/copy-of-true'"
             " && ln -s /bin/true '%s/link-true' && ln -s /bin/false '%s/link-false'"
             " && ln -s link-true '%s/link-link-true'",
             path, dir, path, dir, dir, dir, dir);
    CHECK_INT(system(cmd), 0);

    /* spawnd's working directory is / here, so that a relative program name
     * means something different to spawnd than in the child's cwd. */
    char here[PATH_MAX];
    if (!getcwd(here, sizeof here)) exit(2);
    if (chdir("/") < 0) exit(2);
    struct srv AL;
    const char *args[] = {"--allow", "/bin/true", "--allow", "touch", "--kill-grace-ms", "200",
                          NULL};
    srv_start(&AL, args);
    if (chdir(here) < 0) exit(2);
    int fds = srv_fd_count(&AL);
    struct resp r;

    /* Allowed: by absolute path, by its real path, by name, through links. */
    static const char *const allowed[] = {"/bin/true", "/usr/bin/true", "true"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(json, sizeof json, "{\"file\":\"%s\"}", allowed[i]);
        post_h(&AL, "/v1/execFile", json, NULL, &r);
        CHECK_INT(r.status, 200);
        resp_free(&r);
    }
    snprintf(json, sizeof json, "{\"file\":\"%s/link-true\"}", dir);
    post_h(&AL, "/v1/execFile", json, NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    snprintf(json, sizeof json, "{\"file\":\"%s/link-link-true\"}", dir);
    post_h(&AL, "/v1/execFile", json, NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    /* argv0 changes only what the program sees as its name. */
    post_h(&AL, "/v1/execFile", "{\"file\":\"true\",\"argv0\":\"sh\"}", NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);

    /* Refused, with 403 ERR_FORBIDDEN and nothing run. */
    const char *refused_json[16];
    char bufs[16][1024];
    int nr = 0;
    snprintf(bufs[nr], sizeof bufs[nr], "{\"file\":\"false\"}");
    refused_json[nr] = bufs[nr], nr++;
    snprintf(bufs[nr], sizeof bufs[nr], "{\"file\":\"/bin/sh\",\"argv0\":\"true\",\"args\":[\"-c\",\"touch %s\"]}", marker);
    refused_json[nr] = bufs[nr], nr++;
    snprintf(bufs[nr], sizeof bufs[nr], "{\"file\":\"%s/link-false\"}", dir);
    refused_json[nr] = bufs[nr], nr++;
    snprintf(bufs[nr], sizeof bufs[nr], "{\"file\":\"%s/copy-of-true\"}", dir);
    refused_json[nr] = bufs[nr], nr++;
    /* The PATH trick: a script named "true" first in the child's PATH. */
    snprintf(bufs[nr], sizeof bufs[nr], "{\"file\":\"true\",\"env\":{\"PATH\":\"%s\"}}", dir);
    refused_json[nr] = bufs[nr], nr++;
    snprintf(bufs[nr], sizeof bufs[nr], "{\"file\":\"true\",\"env\":{\"PATH\":\"%s:/usr/bin:/bin\"}}", dir);
    refused_json[nr] = bufs[nr], nr++;
    /* The shell is not allowed, so neither is anything through it. */
    snprintf(bufs[nr], sizeof bufs[nr], "{\"file\":\"true\",\"shell\":true}");
    refused_json[nr] = bufs[nr], nr++;
    for (int i = 0; i < nr; i++) {
        post_h(&AL, "/v1/execFile", refused_json[i], NULL, &r);
        EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
        if (r.status != 403) fprintf(stderr, "  ^ request %s\n", refused_json[i]);
        resp_free(&r);
    }
    snprintf(json, sizeof json, "{\"command\":\"touch %s\"}", marker);
    post_h(&AL, "/v1/exec", json, NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    post_h(&AL, "/v1/exec", "{\"command\":\"true\"}", NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    post_h(&AL, "/v1/spawn", "{\"command\":\"false\"}", NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    post_h(&AL, "/v1/jobs", "{\"kind\":\"execFile\",\"file\":\"false\"}", NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    /* A pipeline with one refused step: 403, and no step ran. */
    snprintf(json, sizeof json,
             "{\"steps\":[{\"command\":\"touch\",\"args\":[\"%s\"]},{\"command\":\"false\"}]}",
             marker);
    post_h(&AL, "/v1/pipeline", json, NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    snprintf(json, sizeof json,
             "{\"kind\":\"pipeline\",\"steps\":[{\"command\":\"touch\",\"args\":[\"%s\"]},"
             "{\"command\":\"true\",\"env\":{\"PATH\":\"%s\"}}]}",
             marker, dir);
    post_h(&AL, "/v1/jobs", json, NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    /* fork: exec_path is the program that is checked. */
    post_h(&AL, "/v1/fork", "{\"module\":\"child.js\",\"exec_path\":\"/bin/false\"}", NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    snprintf(json, sizeof json, "{\"module\":\"child.js\",\"exec_path\":\"%s/true\"}", dir);
    post_h(&AL, "/v1/fork", json, NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    post_h(&AL, "/v1/fork", "{\"module\":\"child.js\",\"exec_path\":\"true\"}", NULL, &r);
    CHECK_INT(r.status, 201);
    json_object *o = r.status == 201 ? resp_json(&r) : NULL;
    if (o) {
        char p[256];
        snprintf(p, sizeof p, "/v1/jobs/%s/wait?timeout_ms=5000", jstr(o, "id"));
        CHECK_INT(status_of(&AL, "GET", p, NULL, NULL), 200);
        snprintf(p, sizeof p, "/v1/jobs/%s", jstr(o, "id"));
        CHECK_INT(status_of(&AL, "DELETE", p, NULL, NULL), 204);
        json_object_put(o);
    }
    resp_free(&r);
    sleep_ms(200);
    CHECK(!file_exists(marker));

    /* A relative program name (or PATH entry) means the same to the check
     * as to the exec: relative to the request's cwd. (It was once checked
     * relative to spawnd's working directory, here /, and run from cwd:
     * DIR/usr/bin/true passed as /usr/bin/true.) */
    snprintf(json, sizeof json, "{\"file\":\"usr/bin/true\",\"cwd\":\"%s\"}", dir);
    post_h(&AL, "/v1/execFile", json, NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    snprintf(json, sizeof json, "{\"file\":\"true\",\"cwd\":\"%s\",\"env\":{\"PATH\":\"usr/bin\"}}",
             dir);
    post_h(&AL, "/v1/execFile", json, NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    snprintf(json, sizeof json, "{\"file\":\"../../../../../usr/bin/true\",\"cwd\":\"%s\"}", dir);
    post_h(&AL, "/v1/execFile", json, NULL, &r);
    CHECK_INT(r.status, 200); /* the real /usr/bin/true, reached from cwd */
    resp_free(&r);
    post_h(&AL, "/v1/execFile", "{\"file\":\"usr/bin/true\",\"cwd\":\"/\"}", NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    sleep_ms(100);
    CHECK(!file_exists(marker));
    unlink(marker);

    STILL_SOUND(&AL, fds);
    CHECK_INT(srv_stop(&AL, 5000), 0);

    /* With the shell allowed (by its link /bin/sh: the check is on its real
     * path), exec works, and so does everything the shell runs: allowing a
     * shell allows every program. */
    struct srv AS;
    const char *args2[] = {"--allow", "/bin/sh", "--allow", "true", NULL};
    srv_start(&AS, args2);
    fds = srv_fd_count(&AS);
    char *out = RUN_OUT(&AS, "/v1/exec", "{\"command\":\"true && echo through-the-shell\"}");
    CHECK_STR(out, "through-the-shell\n");
    free(out);
    post_h(&AS, "/v1/execFile", "{\"file\":\"true\",\"shell\":true}", NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    post_h(&AS, "/v1/execFile", "{\"file\":\"echo\"}", NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    /* Another shell is another program. */
    snprintf(json, sizeof json, "{\"file\":\"true\",\"shell\":\"%s/true\"}", dir);
    post_h(&AS, "/v1/execFile", json, NULL, &r);
    EXPECT_ERROR(&r, 403, "ERR_FORBIDDEN");
    resp_free(&r);
    STILL_SOUND(&AS, fds);
    CHECK_INT(srv_stop(&AS, 5000), 0);
    CHECK(!file_exists(marker));
}

/* --- --env-allow ------------------------------------------------------------ */

static void check_env_only(const char *out, const char *const *names)
{
    int seen = 0, lines = 0;
    for (const char *p = out; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        bool ok = false;
        for (size_t i = 0; names[i]; i++) {
            size_t n = strlen(names[i]);
            if (len > n && strncmp(p, names[i], n) == 0 && p[n] == '=') {
                ok = true;
                seen |= 1 << i;
            }
        }
        if (!ok) fprintf(stderr, "  unexpected variable: %.*s\n", (int)len, p);
        CHECK(ok);
        lines++;
        p += len + (eol ? 1 : 0);
    }
    size_t nn = 0;
    while (names[nn])
        nn++;
    CHECK_INT(seen, (1 << nn) - 1);
    CHECK_INT(lines, (int)nn);
}

static void test_env_allow(void)
{
    struct srv EA;
    const char *args[] = {"--env-allow", "PATH", "--env-allow", "HOME", NULL};
    const char *env[] = {"FOO_SECRET=hunter2", "HOME=/home/spawnd-test", "AWS_SECRET_ACCESS_KEY=x",
                         "LD_PRELOAD=", "SPAWND_MAX_JOBS=100", NULL};
    srv_start_env(&EA, args, env);
    int fds = srv_fd_count(&EA);
    static const char *const path_home[] = {"PATH", "HOME", NULL};
    char *out = RUN_OUT(&EA, "/v1/execFile", "{\"file\":\"env\"}");
    check_env_only(out, path_home);
    CHECK_HAS(out, "HOME=/home/spawnd-test\n");
    free(out);
    /* The same default for every kind of run. */
    out = RUN_OUT(&EA, "/v1/exec", "{\"command\":\"exec env -u PWD\"}");
    check_env_only(out, path_home);
    free(out);
    /* An explicit env replaces it, as in Node. */
    out = RUN_OUT(&EA, "/v1/execFile", "{\"file\":\"/usr/bin/env\",\"env\":{\"ONLY\":\"1\"}}");
    CHECK_STR(out, "ONLY=1\n");
    free(out);
    STILL_SOUND(&EA, fds);
    CHECK_INT(srv_stop(&EA, 5000), 0);

    /* The environment form: a comma-separated list. */
    const char *env2[] = {"SPAWND_ENV_ALLOW=PATH", "FOO_SECRET=hunter2", NULL};
    srv_start_env(&EA, NULL, env2);
    static const char *const path_only[] = {"PATH", NULL};
    out = RUN_OUT(&EA, "/v1/execFile", "{\"file\":\"env\"}");
    check_env_only(out, path_only);
    free(out);
    CHECK_INT(srv_stop(&EA, 5000), 0);
}

/* --- --rlimit, uid/gid, the fork bomb -------------------------------------------- */

/* The soft and hard values of one line of /proc/self/limits ("Max open files"). */
static void limits_of(const char *limits, const char *name, char *soft, char *hard)
{
    *soft = *hard = 0;
    const char *p = strstr(limits, name);
    if (p) sscanf(p + strlen(name), "%31s %31s", soft, hard);
}

struct bomb {
    const struct srv *s;
    struct resp r;
};

static void *bomb_thread(void *arg)
{
    struct bomb *b = arg;
    post_h(b->s, "/v1/exec",
           "{\"command\":\"f(){ f|f& }; f; sleep 30\",\"uid\":65534,\"gid\":65534,\"cwd\":\"/\","
           "\"timeout_ms\":3000,\"max_buffer\":65536}",
           NULL, &b->r);
    return NULL;
}

static void test_rlimits(void)
{
    struct srv RL;
    const char *args[] = {"--rlimit", "nofile=64", "--rlimit", "nproc=50", "--rlimit", "core=0",
                          "--rlimit", "fsize=4096", "--kill-grace-ms", "300", NULL};
    srv_start(&RL, args);
    int fds = srv_fd_count(&RL);
    char soft[32], hard[32];

    char *out = RUN_OUT(&RL, "/v1/execFile", "{\"file\":\"cat\",\"args\":[\"/proc/self/limits\"]}");
    limits_of(out, "Max open files", soft, hard);
    CHECK_STR(soft, "64");
    CHECK_STR(hard, "64");
    limits_of(out, "Max processes", soft, hard);
    CHECK_STR(soft, "50");
    CHECK_STR(hard, "50");
    limits_of(out, "Max core file size", soft, hard);
    CHECK_STR(soft, "0");
    CHECK_STR(hard, "0");
    limits_of(out, "Max file size", soft, hard);
    CHECK_STR(soft, "4096");
    free(out);
    /* Every child goes through the shim here, so every one has no-new-privs
     * (a setuid program gains nothing) and dies with spawnd. */
    out = RUN_OUT(&RL, "/v1/execFile", "{\"file\":\"grep\",\"args\":[\"NoNewPrivs\",\"/proc/self/status\"]}");
    CHECK_STR(out, "NoNewPrivs:\t1\n");
    free(out);
    /* Through the shell and under another uid alike; and a child cannot
     * raise a hard limit back. */
    out = RUN_OUT(&RL, "/v1/exec",
                  "{\"command\":\"ulimit -n; ulimit -n 65 2>/dev/null || echo refused\","
                  "\"uid\":65534,\"gid\":65534,\"cwd\":\"/\"}");
    CHECK_STR(out, "64\nrefused\n");
    free(out);
    /* fsize: a write past it stops at the limit (SIGXFSZ). */
    char json[512], big[256];
    snprintf(big, sizeof big, "%s/big", TMP);
    snprintf(json, sizeof json, "{\"command\":\"head -c 10000 /dev/zero > %s; echo rc=$?\"}", big);
    out = RUN_OUT(&RL, "/v1/exec", json);
    CHECK_STR(out, "rc=153\n");
    free(out);
    struct stat st;
    CHECK(stat(big, &st) == 0 && st.st_size == 4096);
    unlink(big);

    /* A fork bomb as an unprivileged user: nproc holds it, spawnd stays
     * responsive, and the timeout leaves nothing behind. */
    struct bomb b = {.s = &RL};
    pthread_t t;
    double t0 = now_s(), worst = 0;
    pthread_create(&t, NULL, bomb_thread, &b);
    int probes = 0, ok = 0;
    while (now_s() - t0 < 2.8) {
        struct resp r;
        double p0 = now_s();
        http_req(&RL, "GET", "/healthz", NULL, NULL, 0, NULL, 5000, &r);
        double dt = now_s() - p0;
        if (dt > worst) worst = dt;
        probes++;
        ok += r.status == 200;
        resp_free(&r);
        sleep_ms(100);
    }
    pthread_join(t, NULL);
    CHECK_INT(ok, probes);
    if (worst >= 1.0) fprintf(stderr, "  slowest /healthz during the fork bomb: %.3f s\n", worst);
    CHECK(worst < 1.0);
    CHECK_INT(b.r.status, 200);
    json_object *o = b.r.status == 200 ? resp_json(&b.r) : NULL;
    if (o) {
        CHECK(jnull(o, "exit_code")); /* it did not finish: it was ended */
        json_object_put(o);
    }
    resp_free(&b.r);
    CHECK_INT(descendants_settle(&RL, 3000), 0);
    STILL_SOUND(&RL, fds);
    CHECK_INT(srv_stop(&RL, 5000), 0);
}

static void test_uid_gid(void)
{
    struct srv U;
    srv_start(&U, NULL);
    int fds = srv_fd_count(&U);
    char *out;
    if (geteuid() != 0) {
        fprintf(stderr, "not root: uid/gid as root skipped\n");
    } else {
        out = RUN_OUT(&U, "/v1/execFile",
                      "{\"file\":\"id\",\"args\":[\"-u\"],\"uid\":65534,\"gid\":65534,\"cwd\":\"/\"}");
        CHECK_STR(out, "65534\n");
        free(out);
        /* Supplementary groups are dropped: only the gid. */
        out = RUN_OUT(&U, "/v1/execFile",
                      "{\"file\":\"id\",\"args\":[\"-G\"],\"uid\":65534,\"gid\":65534,\"cwd\":\"/\"}");
        CHECK_STR(out, "65534\n");
        free(out);
        out = RUN_OUT(&U, "/v1/execFile",
                      "{\"file\":\"cat\",\"args\":[\"/proc/self/status\"],\"uid\":65534,"
                      "\"gid\":65534,\"cwd\":\"/\"}");
        CHECK_HAS(out, "NoNewPrivs:\t1\n");
        CHECK_HAS(out, "CapEff:\t0000000000000000\n");
        CHECK_HAS(out, "CapPrm:\t0000000000000000\n");
        CHECK_HAS(out, "Uid:\t65534\t65534\t65534\t65534\n");
        CHECK_HAS(out, "Gid:\t65534\t65534\t65534\t65534\n");
        const char *g = strstr(out, "Groups:");
        CHECK(g && strcspn(g, "0123456789") > strcspn(g, "\n")); /* no group at all */
        free(out);
        /* A gid alone: root keeps its uid but loses its other groups. */
        out = RUN_OUT(&U, "/v1/exec", "{\"command\":\"id -u; id -G\",\"gid\":65534,\"cwd\":\"/\"}");
        CHECK_STR(out, "0\n65534\n");
        free(out);
    }
    STILL_SOUND(&U, fds);
    CHECK_INT(srv_stop(&U, 5000), 0);

    /* spawnd running as an ordinary user cannot switch users: EPERM. */
    if (geteuid() != 0) return;
    struct run rr;
    pid_t p;
    char log[128];
    const char *args[] = {"--listen", "127.0.0.1:0", NULL};
    run_spawnd(args, NULL, 65534, 5000, &rr, &p, log, sizeof log);
    if (!rr.listening) {
        fprintf(stderr, "spawnd cannot run as uid 65534 here (%s): EPERM case skipped\n", rr.err);
        unlink(log);
        return;
    }
    struct srv N = {.pid = p, .port = rr.port};
    snprintf(N.url, sizeof N.url, "http://127.0.0.1:%d", rr.port);
    snprintf(N.log, sizeof N.log, "%s", log);
    fds = srv_fd_count(&N);
    struct resp r;
    post_h(&N, "/v1/execFile", "{\"file\":\"id\",\"uid\":0}", NULL, &r);
    CHECK_INT(r.status, 422);
    CHECK_HAS(r.body.data, "\"code\":\"EPERM\"");
    resp_free(&r);
    post_h(&N, "/v1/execFile", "{\"file\":\"id\",\"gid\":0}", NULL, &r);
    CHECK_INT(r.status, 422);
    CHECK_HAS(r.body.data, "\"code\":\"EPERM\"");
    resp_free(&r);
    out = RUN_OUT(&N, "/v1/execFile", "{\"file\":\"id\",\"args\":[\"-u\"],\"cwd\":\"/\"}");
    CHECK_STR(out, "65534\n");
    free(out);
    STILL_SOUND(&N, fds);
    CHECK_INT(srv_stop(&N, 5000), 0);
}

/* --- parent-death signal ------------------------------------------------------- */

struct bg_req {
    const struct srv *s;
    const char *path, *json;
    struct resp r;
};

static void *bg_post(void *arg)
{
    struct bg_req *b = arg;
    http_req(b->s, "POST", b->path, "application/json", b->json, strlen(b->json), NULL, 15000,
             &b->r);
    return NULL;
}

static void test_pdeathsig(void)
{
    struct srv P;
    const char *args[] = {"--rlimit", "core=0", NULL};
    srv_start(&P, args);
    struct resp r;
    /* A background job, a waiting exec, and a streaming spawn. */
    /* Durations no other process on the machine is likely to sleep for:
     * the children are found by their command lines. */
    post_h(&P, "/v1/jobs", "{\"kind\":\"execFile\",\"file\":\"sleep\",\"args\":[\"100.017\"]}",
           NULL, &r);
    CHECK_INT(r.status, 201);
    resp_free(&r);
    struct bg_req ex = {.s = &P, .path = "/v1/exec", .json = "{\"command\":\"exec sleep 101.017\"}"};
    struct bg_req sp = {.s = &P, .path = "/v1/spawn", .json = "{\"command\":\"sleep\",\"args\":[\"102.017\"]}"};
    /* A grandchild (not a direct child of spawnd). */
    struct bg_req gc = {.s = &P, .path = "/v1/exec", .json = "{\"command\":\"sleep 103.017 & wait\"}"};
    pthread_t t1, t2, t3;
    pthread_create(&t1, NULL, bg_post, &ex);
    pthread_create(&t2, NULL, bg_post, &sp);
    pthread_create(&t3, NULL, bg_post, &gc);
    static const char *const secs[] = {"100.017", "101.017", "102.017", "103.017"};
    pid_t pids[4] = {0};
    for (int waited = 0; waited < 3000; waited += 20) {
        int found = 0;
        for (int i = 0; i < 4; i++)
            found += pids[i] || find_procs("sleep", secs[i], &pids[i], 1) == 1;
        if (found == 4) break;
        sleep_ms(20);
    }
    for (int i = 0; i < 4; i++)
        CHECK(pids[i] > 0);

    kill(P.pid, SIGKILL);
    waitpid(P.pid, NULL, 0);
    double t0 = now_s();
    bool all_dead = false;
    while (!all_dead && now_s() - t0 < 1.0) {
        all_dead = true;
        for (int i = 0; i < 3; i++)
            all_dead &= !pids[i] || proc_dead(pids[i]);
        if (!all_dead) sleep_ms(10);
    }
    for (int i = 0; i < 3; i++)
        if (pids[i] && !proc_dead(pids[i])) {
            fprintf(stderr, "  sleep %s (pid %d) outlived spawnd's kill -9 by 1 s\n", secs[i],
                    (int)pids[i]);
            CHECK(false);
            kill(pids[i], SIGKILL);
        }
    /* The parent-death signal is the direct child's: a grandchild is not
     * covered (documented in SECURITY.md; a cgroup is the cure). */
    sleep_ms(100);
    if (pids[3] && !proc_dead(pids[3])) {
        fprintf(stderr, "note: a grandchild outlives kill -9 of spawnd (documented)\n");
        kill(pids[3], SIGKILL);
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    CHECK(ex.r.status != 200);
    resp_free(&ex.r);
    resp_free(&sp.r);
    resp_free(&gc.r);
    unlink(P.log);
}

int main(void)
{
    double t0 = now_s();
    make_tmpdir(TMP, sizeof TMP, "sec");
    signal(SIGPIPE, SIG_IGN);
    static const struct named_test tests[] = {
        {"tokens", test_tokens},       {"listen_and_config", test_listen_and_config},
        {"tls", test_tls},             {"allow", test_allow},
        {"env_allow", test_env_allow}, {"rlimits", test_rlimits},
        {"uid_gid", test_uid_gid},     {"pdeathsig", test_pdeathsig},
    };
    return run_named("it_security", tests, sizeof tests / sizeof tests[0], TMP, t0);
}
