/* spawnctl against the real spawnd: the spawnctl binary is run with pipes for
 * its stdin, stdout and stderr, as a build runner would run it, and checked
 * for the bytes it writes and the status it exits with. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "emit.h"
#include "harness.h"

static struct srv S;

/* One run of spawnctl. */
struct call {
    const char *const *argv; /* after "spawnctl", NULL-terminated */
    const void *in;          /* fed to its stdin, then closed; NULL: /dev/null */
    size_t inlen;
    int sig, sig_after_ms;  /* send sig to spawnctl after that long */
    size_t close_out_after; /* close our end of its stdout after this many bytes */
    const char *token;      /* SPAWND_TOKEN for spawnctl, or none */
    /* results */
    struct buf out, err;
    int status; /* exit status; 1000 + N when signal N killed spawnctl */
    double secs;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void call_free(struct call *c)
{
    buf_free(&c->out);
    buf_free(&c->err);
}

static int run_call(struct call *c)
{
    int in[2] = {-1, -1}, out[2], err[2];
    buf_init(&c->out, 64 * 1024 * 1024);
    buf_init(&c->err, 1024 * 1024);
    if ((c->in && pipe2(in, O_CLOEXEC)) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
        perror("pipe");
        exit(2);
    }
    const char *args[64] = {"spawnctl"};
    size_t n = 1;
    for (size_t i = 0; c->argv[i] && n < 63; i++)
        args[n++] = c->argv[i];
    args[n] = NULL;
    double start = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(c->in ? in[0] : devnull, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        setenv("SPAWND_URL", S.url, 1);
        if (c->token)
            setenv("SPAWND_TOKEN", c->token, 1);
        else
            unsetenv("SPAWND_TOKEN");
        signal(SIGPIPE, SIG_DFL);
        execv(SPAWNCTL_BIN, (char *const *)args);
        _exit(99);
    }
    close(out[1]);
    close(err[1]);
    if (c->in) {
        close(in[0]);
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    }
    size_t fed = 0;
    bool signalled = false, out_open = true, err_open = true;
    int infd = c->in ? in[1] : -1;
    if (infd >= 0 && c->inlen == 0) {
        close(infd);
        infd = -1;
    }
    while (out_open || err_open) {
        struct pollfd p[3] = {{out_open ? out[0] : -1, POLLIN, 0},
                              {err_open ? err[0] : -1, POLLIN, 0},
                              {infd, POLLOUT, 0}};
        poll(p, 3, 20);
        if (now_s() - start > 60) {
            fprintf(stderr, "spawnctl did not finish in 60 s; killing it\n");
            kill(pid, SIGKILL);
            break;
        }
        if (c->sig && !signalled && (now_s() - start) * 1000 >= c->sig_after_ms) {
            kill(pid, c->sig);
            signalled = true;
        }
        char chunk[65536];
        for (int k = 0; k < 2; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(p[k].fd, chunk, sizeof chunk);
            if (r > 0) {
                buf_append(k ? &c->err : &c->out, chunk, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                if (k)
                    err_open = false;
                else
                    out_open = false;
                close(p[k].fd);
            }
        }
        if (out_open && c->close_out_after && c->out.len >= c->close_out_after) {
            close(out[0]);
            out_open = false;
        }
        if (infd >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(infd, (const char *)c->in + fed, c->inlen - fed);
            if (w > 0) fed += (size_t)w;
            if (w < 0 && errno != EAGAIN && errno != EINTR) fed = c->inlen;
            if (fed == c->inlen) {
                close(infd);
                infd = -1;
            }
        }
    }
    if (infd >= 0) close(infd);
    if (out_open) close(out[0]);
    if (err_open) close(err[0]);
    int st;
    waitpid(pid, &st, 0);
    c->secs = now_s() - start;
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
    if (getenv("TIMING") && c->secs > 0.3)
        fprintf(stderr, "TIMING %.2f %s %s %s\n", c->secs, args[1], args[2] ? args[2] : "",
                args[3] ? args[3] : "");
    return c->status;
}

/* spawnctl ARGS... with no stdin; the exit status. */
#define CTL(c, ...)                                                                                \
    (memset(&(c), 0, sizeof(c)), (c).argv = (const char *const[]){__VA_ARGS__, NULL},              \
     run_call(&(c)))

static const char *out_of(struct call *c)
{
    return c->out.data ? c->out.data : "";
}

static const char *err_of(struct call *c)
{
    return c->err.data ? c->err.data : "";
}

/* The exit status, with spawnctl's stderr when it is not the one wanted. */
#define CHECK_RC(c, want)                                                                          \
    do {                                                                                           \
        if ((c).status != (want)) fprintf(stderr, "  spawnctl said: %s\n", err_of(&(c)));          \
        CHECK_INT((c).status, want);                                                               \
    } while (0)

/* spawnctl's own failure: exactly one line, "spawnctl: ...". */
static void check_one_line(struct call *c)
{
    const char *e = err_of(c);
    CHECK(strncmp(e, "spawnctl: ", 10) == 0);
    const char *nl = strchr(e, '\n');
    CHECK(nl && nl[1] == 0);
    if (!nl || nl[1]) fprintf(stderr, "  stderr was: %s\n", e);
}

/* How many jobs the server still has (run deletes its own). */
static size_t job_count(void)
{
    struct resp r;
    http_get(&S, "/v1/jobs", &r);
    json_object *o = resp_json(&r);
    size_t n = json_object_array_length(jget(o, "jobs"));
    json_object_put(o);
    resp_free(&r);
    return n;
}

/* --- run: output, exit status ---------------------------------------------------- */

static void test_run_streams_and_exit(void)
{
    struct call c;
    CTL(c, "run", "--", "sh", "-c", "echo out; echo err >&2; exit 3");
    CHECK_RC(c, 3);
    CHECK_STR(out_of(&c), "out\n");
    CHECK_STR(err_of(&c), "err\n");
    call_free(&c);

    /* No "--": options end at PROGRAM, whose own options stay its own. */
    CTL(c, "run", "sh", "-c", "printf '%s|' \"$@\"", "x", "-a", "--help", "b c");
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "-a|--help|b c|");
    call_free(&c);

    CTL(c, "run", "--", "true");
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "");
    CHECK_STR(err_of(&c), "");
    call_free(&c);
}

static void test_run_signal_death(void)
{
    struct call c;
    CTL(c, "run", "--", "sh", "-c", "kill -9 $$");
    CHECK_RC(c, 137);
    CHECK_STR(err_of(&c), "");
    call_free(&c);
    CTL(c, "run", "--", "sh", "-c", "kill -TERM $$");
    CHECK_RC(c, 143);
    call_free(&c);
}

static void test_run_cannot_start(void)
{
    struct call c;
    CTL(c, "run", "--", "no-such-program-xyz");
    CHECK_RC(c, 127);
    check_one_line(&c);
    CHECK_HAS(err_of(&c), "no-such-program-xyz");
    CHECK_STR(out_of(&c), "");
    call_free(&c);

    CTL(c, "run", "--", "/etc/passwd");
    CHECK_RC(c, 126);
    check_one_line(&c);
    CHECK_HAS(err_of(&c), "EACCES");
    call_free(&c);

    CTL(c, "run", "--cwd", "/no/such/dir", "--", "true");
    CHECK_RC(c, 127);
    check_one_line(&c);
    call_free(&c);
}

static void test_unreachable(void)
{
    /* A port that was free a moment ago: nothing listens there. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &len);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    close(s);

    struct call c;
    CTL(c, "--url", url, "run", "--", "true");
    CHECK_RC(c, 125);
    check_one_line(&c);
    CHECK_HAS(err_of(&c), url);
    call_free(&c);
    CTL(c, "jobs", "--url", url);
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "--url", "ftp://x", "jobs");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
}

static void test_run_binary_exact(void)
{
    struct call c;
    char path[512];
    snprintf(path, sizeof path, "%s", helper("emit"));
    /* Odd-sized writes, so reads and events split the bytes arbitrarily. */
    CTL(c, "run", "--", path, "1000000", "42", "4099");
    CHECK_RC(c, 0);
    CHECK_INT(c.out.len, 1000000);
    unsigned char *want = malloc(1000000);
    uint64_t state = 42;
    emit_fill(&state, want, 1000000);
    CHECK(c.out.len == 1000000 && memcmp(c.out.data, want, 1000000) == 0);
    CHECK_STR(err_of(&c), "");
    free(want);
    call_free(&c);

    /* NUL bytes and invalid UTF-8 on stderr too. */
    CTL(c, "run", "--", "printf", "a\\000b\\377\\n");
    CHECK_RC(c, 0);
    CHECK_INT(c.out.len, 5);
    CHECK(c.out.len == 5 && memcmp(c.out.data, "a\0b\377\n", 5) == 0);
    call_free(&c);
    CTL(c, "run", "--", "sh", "-c", "printf '\\000\\376x' >&2");
    CHECK_RC(c, 0);
    CHECK(c.err.len == 3 && memcmp(c.err.data, "\0\376x", 3) == 0);
    call_free(&c);
}

/* spawnd keeps a bounded amount of a background job's output; spawnctl
 * starts its job with backpressure, so a program that outruns it is slowed
 * down instead and every byte arrives, whatever the retention limit. */
static void test_run_lost_output(void)
{
    struct srv small;
    srv_start(&small, (const char *const[]){"--job-output-bytes", "65536", NULL});
    struct srv saved = S;
    S = small;
    char path[512];
    snprintf(path, sizeof path, "%s", helper("emit"));
    struct call c;
    CTL(c, "run", "--", path, "20000000", "3");
    CHECK_RC(c, 0);
    CHECK_INT(c.out.len, 20000000);
    call_free(&c);
    S = saved;
    CHECK_INT(srv_stop(&small, 15000), 0);
}

static void test_run_stdin(void)
{
    size_t n = 5 * 1024 * 1024;
    unsigned char *data = malloc(n);
    uint64_t state = 7;
    emit_fill(&state, data, n);
    struct call c = {
        .argv = (const char *const[]){"run", "--stdin", "--", "cat", NULL}, .in = data, .inlen = n};
    run_call(&c);
    CHECK_RC(c, 0);
    CHECK_INT(c.out.len, n);
    CHECK(c.out.len == n && memcmp(c.out.data, data, n) == 0);
    CHECK_STR(err_of(&c), "");
    call_free(&c);

    /* A program that stops reading early is not an error. */
    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){"run", "-i", "--", "head", "-c", "3", NULL};
    c.in = data;
    c.inlen = n;
    run_call(&c);
    CHECK_RC(c, 0);
    CHECK(c.out.len == 3 && memcmp(c.out.data, data, 3) == 0);
    CHECK_STR(err_of(&c), "");
    call_free(&c);
    free(data);

    /* Without --stdin the program reads end-of-file at once. */
    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){"run", "--", "sh", "-c", "wc -c", NULL};
    c.in = "ignored";
    c.inlen = 7;
    run_call(&c);
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "0\n");
    call_free(&c);
}

static void test_run_sigint_forwarded(void)
{
    struct call c = {
        .argv = (const char *const[]){"run", "--", "sh", "-c",
                                      "trap 'echo got INT; exit 7' INT; sleep 30 & wait", NULL},
        .sig = SIGINT,
        .sig_after_ms = 500,
    };
    run_call(&c);
    CHECK_RC(c, 7);
    CHECK_STR(out_of(&c), "got INT\n");
    CHECK(c.secs < 10);
    call_free(&c);

    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){"run", "--", "sleep", "30", NULL};
    c.sig = SIGTERM;
    c.sig_after_ms = 300;
    run_call(&c);
    CHECK_RC(c, 143);
    CHECK(c.secs < 10);
    call_free(&c);
}

static void test_run_sigpipe(void)
{
    /* `spawnctl run -- yes | head -c 10`: once our stdout's reader is gone,
     * the program gets SIGPIPE, as it would locally. */
    struct call c = {.argv = (const char *const[]){"run", "--", "yes", NULL},
                     .close_out_after = 10};
    run_call(&c);
    CHECK_RC(c, 128 + SIGPIPE);
    CHECK(c.secs < 20);
    call_free(&c);
}

static void test_run_options(void)
{
    struct call c;
    CTL(c, "run", "--cwd", "/tmp", "--", "pwd");
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "/tmp\n");
    call_free(&c);

    /* --env: spawnctl's environment plus the pairs, never its SPAWND_*. */
    setenv("SPAWNCTL_TEST_INHERITED", "yes", 1);
    CTL(c, "run", "--env", "FOO=bar baz", "--env=EMPTY=", "--", "sh", "-c",
        "echo \"$FOO|${EMPTY-unset}|$SPAWNCTL_TEST_INHERITED|${SPAWND_URL-none}\"");
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "bar baz||yes|none\n");
    call_free(&c);
    unsetenv("SPAWNCTL_TEST_INHERITED");

    CTL(c, "run", "--timeout", "300", "--", "sleep", "10");
    CHECK_RC(c, 143);
    CHECK_HAS(err_of(&c), "timed out");
    CHECK(c.secs < 5);
    call_free(&c);

    CTL(c, "run", "--env", "NOEQUALS", "--", "true");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "run", "--timeout", "soon", "--", "true");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "run", "--frobnicate", "--", "true");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "run");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
}

static void test_exec(void)
{
    struct call c;
    CTL(c, "exec", "echo $((1+2))");
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "3\n");
    call_free(&c);
    CTL(c, "exec", "echo", "a", "|", "tr", "a", "b");
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "b\n");
    call_free(&c);
    CTL(c, "exec", "exit 9");
    CHECK_RC(c, 9);
    call_free(&c);
    CTL(c, "exec", "no-such-command-xyz");
    CHECK_RC(c, 127); /* the shell's own 127 */
    call_free(&c);
}

/* --- background jobs ------------------------------------------------------------------- */

static char *start_job(const char *const *argv)
{
    struct call c = {.argv = argv};
    run_call(&c);
    CHECK_RC(c, 0);
    size_t n = c.out.len;
    char *id = strndup(out_of(&c), n && c.out.data[n - 1] == '\n' ? n - 1 : n);
    CHECK(*id && !strchr(id, '\n'));
    call_free(&c);
    return id;
}

static void test_jobs_round_trip(void)
{
    CHECK_INT(job_count(), 0); /* every run above deleted its job */
    struct call c;
    char *id = start_job((const char *const[]){
        "start", "--", "sh", "-c", "echo hello; echo oops >&2; sleep 0.3; exit 5", NULL});

    CTL(c, "status", "--json", id);
    CHECK_RC(c, 0);
    json_object *o = json_tokener_parse(out_of(&c));
    CHECK(o != NULL);
    CHECK_STR(jstr(o, "id"), id);
    CHECK_STR(jstr(o, "kind"), "spawn");
    json_object_put(o);
    call_free(&c);

    CTL(c, "wait", id);
    CHECK_RC(c, 5);
    call_free(&c);

    CTL(c, "status", id);
    CHECK_RC(c, 0);
    CHECK_HAS(out_of(&c), "state        exited");
    CHECK_HAS(out_of(&c), "exit_code    5");
    call_free(&c);

    CTL(c, "logs", id);
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "hello\n");
    CHECK_STR(err_of(&c), "oops\n");
    call_free(&c);

    CTL(c, "jobs");
    CHECK_RC(c, 0);
    CHECK_HAS(out_of(&c), "ID ");
    CHECK_HAS(out_of(&c), id);
    CHECK_HAS(out_of(&c), "exited");
    call_free(&c);

    /* An ended job cannot be signalled. */
    CTL(c, "kill", id);
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    free(id);

    /* kill with the default SIGTERM, then by name and number; wait exits
     * 128 + the signal. */
    static const struct {
        const char *sig;
        int rc;
    } kills[] = {{NULL, 143}, {"KILL", 137}, {"2", 130}};
    id = NULL;
    for (size_t k = 0; k < sizeof kills / sizeof kills[0]; k++) {
        free(id);
        id = start_job((const char *const[]){"start", "--", "sleep", "30", NULL});
        if (kills[k].sig)
            CTL(c, "kill", id, kills[k].sig);
        else
            CTL(c, "kill", id);
        CHECK_RC(c, 0);
        call_free(&c);
        CTL(c, "wait", id);
        CHECK_RC(c, kills[k].rc);
        call_free(&c);
    }
    CTL(c, "kill", id, "SIGNOPE");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    free(id);

    /* logs -f follows a running job to its end. */
    id = start_job((const char *const[]){"start", "--", "sh", "-c",
                                         "echo a; sleep 0.5; echo b >&2; echo c", NULL});
    CTL(c, "logs", "-f", id);
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "a\nc\n");
    CHECK_STR(err_of(&c), "b\n");
    CHECK(c.secs > 0.3);
    call_free(&c);
    free(id);

    /* start --stdin feeds the job and closes its stdin. */
    static const char text[] = "line one\nline two\n";
    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){"start", "--stdin", "--", "wc", "-l", NULL};
    c.in = text;
    c.inlen = strlen(text);
    run_call(&c);
    CHECK_RC(c, 0);
    id = strndup(out_of(&c), strcspn(out_of(&c), "\n"));
    call_free(&c);
    CTL(c, "wait", id);
    CHECK_RC(c, 0);
    call_free(&c);
    CTL(c, "logs", id);
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "2\n");
    call_free(&c);
    free(id);

    /* Jobs that do not exist, ids that are not ids. */
    CTL(c, "status", "nosuchjob");
    CHECK_RC(c, 125);
    check_one_line(&c);
    CHECK_HAS(err_of(&c), "404");
    call_free(&c);
    /* One id in 64 starts with '-': an id, not an unknown option. */
    CTL(c, "status", "-aaaaaaaaaaaaaaaaaaaaaaa");
    CHECK_RC(c, 125);
    check_one_line(&c);
    CHECK_HAS(err_of(&c), "no such job");
    call_free(&c);
    CTL(c, "wait", "../healthz");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "start", "--", "no-such-program-xyz");
    CHECK_RC(c, 127);
    check_one_line(&c);
    call_free(&c);
}

static void test_fork_messages(void)
{
    if (access("/usr/bin/node", X_OK) != 0) {
        fprintf(stderr, "skipped: no /usr/bin/node\n");
        return;
    }
    char js[] = "/tmp/spawnctl-echo-XXXXXX.js";
    int fd = mkstemps(js, 3);
    static const char script[] = "process.on('message', m => {\n"
                                 "  process.send({echo: m});\n"
                                 "  if (m === 'bye') process.disconnect();\n"
                                 "});\n"
                                 "console.log('child up');\n";
    CHECK(fd >= 0 && write(fd, script, strlen(script)) == (ssize_t)strlen(script));
    close(fd);

    struct call c;
    char *id = start_job((const char *const[]){"fork", "--node", "/usr/bin/node", js, NULL});
    CTL(c, "send", id, "{\"a\":[1,2.5,\"x\"]}");
    CHECK_RC(c, 0);
    call_free(&c);
    /* several, one per line, in one request */
    static const char ndjson[] = "1\n\n{\"b\": 2}\n\"three\"\n";
    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){"send", "--lines", id, NULL};
    c.in = ndjson;
    c.inlen = strlen(ndjson);
    run_call(&c);
    CHECK_RC(c, 0);
    call_free(&c);
    /* a bad line: 125 and one line saying which */
    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){"send", "-l", id, NULL};
    c.in = "nope\n";
    c.inlen = 5;
    run_call(&c);
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){"send", id, "-", NULL};
    c.in = "\"bye\"";
    c.inlen = 5;
    run_call(&c);
    CHECK_RC(c, 0);
    call_free(&c);
    CTL(c, "messages", "-f", id);
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "{\"echo\":{\"a\":[1,2.5,\"x\"]}}\n{\"echo\":1}\n{\"echo\":{\"b\":2}}\n"
                          "{\"echo\":\"three\"}\n{\"echo\":\"bye\"}\n");
    call_free(&c);
    CTL(c, "wait", id);
    CHECK_RC(c, 0);
    call_free(&c);
    CTL(c, "logs", id);
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "child up\n");
    call_free(&c);
    /* The channel is closed now. */
    CTL(c, "send", id, "1");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "send", id, "{not json");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    free(id);
    unlink(js);
}

/* A server that checks tokens: spawnctl sends SPAWND_TOKEN (or --token) as a
 * bearer token and never hands it on to the program. */
static void test_token(void)
{
    struct srv secured;
    srv_start_env(&secured, NULL, (const char *const[]){"SPAWND_TOKEN=t0k3n-for-it", NULL});
    struct srv saved = S;
    S = secured;
    struct call c;
    CTL(c, "run", "--", "true");
    CHECK_RC(c, 125);
    check_one_line(&c);
    CHECK_HAS(err_of(&c), "401");
    call_free(&c);
    CTL(c, "--token", "t0k3n-for-it", "run", "--", "echo", "in");
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "in\n");
    call_free(&c);
    memset(&c, 0, sizeof c);
    c.argv = (const char *const[]){
        "run", "--env", "A=1", "--", "sh", "-c", "echo \"$A ${SPAWND_TOKEN-none}\"", NULL};
    c.token = "t0k3n-for-it";
    run_call(&c);
    CHECK_RC(c, 0);
    CHECK_STR(out_of(&c), "1 none\n");
    call_free(&c);
    CHECK(!srv_log_has(&secured, "t0k3n-for-it"));
    S = saved;
    CHECK_INT(srv_stop(&secured, 15000), 0);
}

/* --- help and usage ---------------------------------------------------------------- */

static void test_help(void)
{
    struct call c;
    CTL(c, "--help");
    CHECK_RC(c, 0);
    CHECK_HAS(out_of(&c), "Usage: spawnctl");
    CHECK_HAS(out_of(&c), "Exit status");
    CHECK_STR(err_of(&c), "");
    call_free(&c);
    static const char *const cmds[] = {"run",  "exec", "start", "jobs", "status",   "logs",
                                       "wait", "kill", "fork",  "send", "messages", NULL};
    for (size_t i = 0; cmds[i]; i++) {
        CTL(c, "help", cmds[i]);
        CHECK_RC(c, 0);
        char usage[64];
        snprintf(usage, sizeof usage, "Usage: spawnctl %s", cmds[i]);
        CHECK_HAS(out_of(&c), usage);
        CHECK_HAS(out_of(&c), "Exit status");
        struct call d;
        CTL(d, cmds[i], "--help");
        CHECK_RC(d, 0);
        CHECK_STR(out_of(&d), out_of(&c));
        call_free(&d);
        call_free(&c);
    }
    CTL(c, "run", "--help");
    CHECK_RC(c, 0);
    CHECK_HAS(out_of(&c), "--stdin");
    CHECK_HAS(out_of(&c), "Examples");
    call_free(&c);
    CTL(c, "--version");
    CHECK_RC(c, 0);
    CHECK_HAS(out_of(&c), "spawnctl ");
    call_free(&c);
    CTL(c, "frobnicate");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "help", "frobnicate");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
    CTL(c, "--nope");
    CHECK_RC(c, 125);
    check_one_line(&c);
    call_free(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* Room for all the output of the byte-exact tests even when spawnctl is
     * slow (sanitizers, a loaded machine): see test_run_lost_output. */
    srv_start(&S, (const char *const[]){"--job-output-bytes", "67108864", NULL});
    test_help();
    test_run_streams_and_exit();
    test_run_signal_death();
    test_run_cannot_start();
    test_unreachable();
    test_run_binary_exact();
    test_run_lost_output();
    test_run_stdin();
    test_run_sigint_forwarded();
    test_run_sigpipe();
    test_run_options();
    test_exec();
    test_jobs_round_trip();
    test_fork_messages();
    test_token();
    CHECK_INT(srv_stop(&S, 15000), 0);
    return check_status();
}
