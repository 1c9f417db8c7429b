/* run, exec, start: a remote program that feels local.
 *
 * run starts a background job (POST /v1/jobs, kind "spawn", base64 output)
 * rather than using POST /v1/spawn, because only a job can be signalled and
 * fed stdin while it runs.  One thread drives up to two transfers with curl
 * multi: the job's output followed live (GET .../output?follow=true), whose
 * events are written to fd 1 and 2 as they arrive, and with --stdin an upload
 * of spawnctl's own stdin (POST .../stdin?close=true).  Signals arrive through
 * a self-pipe that wakes curl_multi_poll and are forwarded to the job with
 * POST .../signal.  When the exit event has come the job is deleted and
 * spawnctl exits with the status that mirrors it.
 *
 * Stdin is never made non-blocking (it is shared with the shell): the read
 * callback polls it and pauses the upload when nothing is there, and the
 * loop resumes the upload when it becomes readable. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "common/signame.h"

extern char **environ;

/* Forwarded to the job; everything else keeps its default action. */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])
/* The third Ctrl-C in a row gives up on a job that ignores SIGINT. */
#define SIGINT_GIVE_UP 3

struct run_opts {
    const char *cwd;
    const char **env; /* "K=V", nenv of them */
    size_t nenv;
    unsigned long long timeout_ms;
    const char *kill_signal;
    bool use_stdin;
    bool shell;
};

struct run {
    struct ctl *c;
    char path[160]; /* /v1/jobs/ID */
    CURLM *multi;
    CURL *follow, *upload;
    struct curl_slist *follow_h, *upload_h;
    struct ctl_events ev;
    bool follow_done;
    CURLcode follow_rc;
    char follow_err[CURL_ERROR_SIZE];
    char upload_err[CURL_ERROR_SIZE];
    bool stdin_paused;
    bool stdin_end; /* the job has ended: end the upload now */
    bool sent_sigpipe;
    int nint;     /* SIGINTs forwarded in a row */
    bool give_up; /* SIGINT_GIVE_UP reached */
};

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
    } /* full: the signal is already pending */
    errno = saved;
}

/* Catch the forwarded signals from now on.  No SA_RESTART: a write(2) to a
 * stalled stdout must return EINTR so the signal can still be forwarded. */
static int signals_catch(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(forwarded[i], &sa, NULL);
    /* A closed stdout is reported as EPIPE and passed on to the job. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void signals_restore(void)
{
    for (size_t i = 0; i < NFORWARDED; i++)
        signal(forwarded[i], SIG_DFL);
    if (sig_pipe[0] >= 0) close(sig_pipe[0]);
    if (sig_pipe[1] >= 0) close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
}

/* POST .../signal.  A job that has just ended answers 409: not an error. */
static void send_signal(struct run *r, int sig)
{
    char path[200], body[64];
    const char *name = sig_name(sig);
    snprintf(path, sizeof path, "%s/signal", r->path);
    if (name)
        snprintf(body, sizeof body, "{\"signal\":\"%s\"}", name);
    else
        snprintf(body, sizeof body, "{\"signal\":%d}", sig);
    struct ctl_resp resp;
    if (ctl_request(r->c, "POST", path, body, 10, &resp) < 0)
        ctl_warn("could not forward %s: %s", name ? name : "the signal", resp.error);
    else if (resp.status != 202 && resp.status != 409)
        ctl_warn("could not forward %s: spawnd answered HTTP %ld", name ? name : "the signal",
                 resp.status);
    ctl_resp_free(&resp);
}

/* Forward every signal caught since the last call. */
static void forward_signals(void *arg)
{
    struct run *r = arg;
    unsigned char sigs[64];
    ssize_t n;
    while ((n = read(sig_pipe[0], sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < n && !r->give_up; i++) {
            if (sigs[i] == SIGINT && ++r->nint >= SIGINT_GIVE_UP) {
                r->give_up = true;
                r->ev.error = "interrupted"; /* stops a write(2) blocked on stdout */
                break;
            }
            if (sigs[i] != SIGINT) r->nint = 0;
            send_signal(r, sigs[i]);
        }
    }
}

/* Our stdout is gone (the reader of a pipe exited): a local program would
 * get SIGPIPE on its next write, so the job gets it. */
static void on_output_gone(void *arg, int fd, int err)
{
    struct run *r = arg;
    if (fd == 1 && err == EPIPE && !r->sent_sigpipe) {
        r->sent_sigpipe = true;
        send_signal(r, SIGPIPE);
    }
}

/* --- the request body --------------------------------------------------------- */

static int add_str(json_object *o, const char *key, const char *val)
{
    json_object *s = json_object_new_string(val);
    if (!s || json_object_object_add(o, key, s)) {
        json_object_put(s);
        return -ENOMEM;
    }
    return 0;
}

/* The child's environment when --env is given.  The API replaces the whole
 * environment, so spawnctl sends its own plus the pairs; its SPAWND_*
 * variables stay out (SPAWND_TOKEN is a credential), as the server keeps its
 * own out of the default environment. */
static json_object *make_env(const struct run_opts *o)
{
    json_object *env = json_object_new_object();
    if (!env) return NULL;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e || !strncmp(*e, "SPAWND_", 7)) continue;
        char *key = strndup(*e, (size_t)(eq - *e));
        int rc = key ? add_str(env, key, eq + 1) : -ENOMEM;
        free(key);
        if (rc) goto error;
    }
    for (size_t i = 0; i < o->nenv; i++) {
        const char *eq = strchr(o->env[i], '=');
        char *key = strndup(o->env[i], (size_t)(eq - o->env[i]));
        int rc = key ? add_str(env, key, eq + 1) : -ENOMEM;
        free(key);
        if (rc) goto error;
    }
    return env;

error:
    json_object_put(env);
    return NULL;
}

/* The JSON of POST /v1/jobs for PROGRAM ARGS (or, with shell, the command
 * line); the caller frees it.  NULL when out of memory. */
static char *job_body(const struct run_opts *o, const char *command, char **args, int nargs,
                      bool backpressure)
{
    json_object *b = json_object_new_object(), *a = NULL, *env = NULL;
    char *text = NULL;
    if (!b) return NULL;
    if (add_str(b, "kind", "spawn") || add_str(b, "command", command) ||
        add_str(b, "encoding", "base64"))
        goto out;
    if (nargs) {
        if (!(a = json_object_new_array())) goto out;
        json_object_object_add(b, "args", a);
        for (int i = 0; i < nargs; i++) {
            json_object *s = json_object_new_string(args[i]);
            if (!s || json_object_array_add(a, s)) {
                json_object_put(s);
                goto out;
            }
        }
    }
    /* run/exec: nothing of the output may be dropped before (or while) we
     * read it: spawnd pauses the program instead. A started job runs free. */
    if (backpressure) json_object_object_add(b, "backpressure", json_object_new_boolean(1));
    if (o->shell) json_object_object_add(b, "shell", json_object_new_boolean(1));
    if (o->cwd && add_str(b, "cwd", o->cwd)) goto out;
    if (o->nenv) {
        if (!(env = make_env(o))) goto out;
        json_object_object_add(b, "env", env);
    }
    if (o->timeout_ms)
        json_object_object_add(b, "timeout_ms", json_object_new_int64((int64_t)o->timeout_ms));
    if (o->kill_signal && add_str(b, "kill_signal", o->kill_signal)) goto out;
    /* Without --stdin the program reads end-of-file at once, rather than
     * waiting on a pipe nobody will ever write to. */
    if (!o->use_stdin && add_str(b, "stdin", "")) goto out;
    const char *s =
        json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    text = s ? strdup(s) : NULL;
out:
    json_object_put(b);
    return text;
}

/* Options of run, exec and start, up to PROGRAM (or the command line).
 * Returns the index of the first operand, or -1 after a usage message. */
static int parse_opts(struct ctl *c, const char *cmd, int argc, char **argv, struct run_opts *o)
{
    int i = 0;
    while (i < argc) {
        const char *a = argv[i], *v;
        int r;
        if (!strcmp(a, "--")) return i + 1;
        if (a[0] != '-' || !a[1]) return i; /* PROGRAM: its own options follow */
        if ((r = ctl_opt_global(c, cmd, argc, argv, &i))) {
            if (r < 0) return -1;
        } else if ((r = ctl_opt_value(cmd, argc, argv, &i, "--cwd", &o->cwd))) {
            if (r < 0) return -1;
        } else if ((r = ctl_opt_value(cmd, argc, argv, &i, "--env", &v))) {
            if (r < 0) return -1;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                ctl_usage(cmd, "--env wants NAME=VALUE, got '%.100s'", v);
                return -1;
            }
            o->env[o->nenv++] = v;
        } else if ((r = ctl_opt_value(cmd, argc, argv, &i, "--timeout", &v))) {
            if (r < 0) return -1;
            if (ctl_parse_uint(v, &o->timeout_ms)) {
                ctl_usage(cmd, "--timeout wants milliseconds, got '%.100s'", v);
                return -1;
            }
        } else if ((r = ctl_opt_value(cmd, argc, argv, &i, "--kill-signal", &v))) {
            if (r < 0) return -1;
            int sig = ctl_signal_parse(v);
            if (sig < 0 || !sig_name(sig)) {
                ctl_usage(cmd, "unknown signal '%.100s'", v);
                return -1;
            }
            o->kill_signal = sig_name(sig);
        } else if (!strcmp(a, "--stdin") || !strcmp(a, "-i")) {
            o->use_stdin = true;
            i++;
        } else if (!strcmp(a, "--shell")) {
            o->shell = true;
            i++;
        } else {
            ctl_usage(cmd, "unknown option '%.100s'", a);
            return -1;
        }
    }
    return i;
}

/* POST /v1/jobs.  Returns 0 with the job's path in path, or the exit
 * status after one message (127/126 for a program that cannot start). */
static int create_job(struct ctl *c, const char *body, char *path, size_t size)
{
    struct ctl_resp resp;
    int ret = 0;
    json_object *o = NULL, *id;
    if (ctl_request(c, "POST", "/v1/jobs", body, 60, &resp) < 0) return ctl_fail("%s", resp.error);
    if (resp.status == 422) {
        ret = ctl_spawn_failed(&resp);
        goto out;
    }
    if (resp.status != 201) {
        ret = ctl_fail_resp(&resp, "cannot start the job");
        goto out;
    }
    o = json_tokener_parse(resp.body.data ? resp.body.data : "");
    if (!json_object_object_get_ex(o, "id", &id) ||
        ctl_check_id(NULL, json_object_get_string(id)) < 0) {
        ret = ctl_fail("spawnd answered 201 without a job id");
        goto out;
    }
    snprintf(path, size, "/v1/jobs/%s", json_object_get_string(id));
out:
    json_object_put(o);
    ctl_resp_free(&resp);
    return ret;
}

/* Forget the job (and kill it, if it is still running). */
static void delete_job(struct ctl *c, const char *path)
{
    struct ctl_resp resp;
    if (ctl_request(c, "DELETE", path, NULL, 10, &resp) == 0) ctl_resp_free(&resp);
}

/* --- stdin ----------------------------------------------------------------------- */

static bool stdin_ready(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    return poll(&p, 1, 0) > 0; /* data, end of file, or an error read() will report */
}

static size_t on_stdin(char *p, size_t size, size_t nmemb, void *arg)
{
    struct run *r = arg;
    if (r->stdin_end) return 0;
    if (!stdin_ready()) {
        r->stdin_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    ssize_t n = read(0, p, size * nmemb);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        r->stdin_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    return n < 0 ? 0 : (size_t)n; /* an unreadable stdin ends like an empty one */
}

static size_t discard(char *p, size_t size, size_t nmemb, void *arg)
{
    return size * nmemb;
}

/* --- the loop ---------------------------------------------------------------------- */

static int add_transfers(struct run *r, bool use_stdin)
{
    char path[200];
    snprintf(path, sizeof path, "%s/output?follow=true", r->path);
    r->follow = ctl_easy(r->c, path, NULL, &r->follow_h);
    if (!r->follow) return -ENOMEM;
    r->ev.easy = r->follow;
    curl_easy_setopt(r->follow, CURLOPT_WRITEFUNCTION, ctl_events_curl_write);
    curl_easy_setopt(r->follow, CURLOPT_WRITEDATA, &r->ev);
    curl_easy_setopt(r->follow, CURLOPT_ERRORBUFFER, r->follow_err);
    if (curl_multi_add_handle(r->multi, r->follow)) return -ENOMEM;
    if (!use_stdin) return 0;

    snprintf(path, sizeof path, "%s/stdin?close=true", r->path);
    r->upload = ctl_easy(r->c, path, "application/octet-stream", &r->upload_h);
    if (!r->upload) return -ENOMEM;
    struct curl_slist *t = curl_slist_append(r->upload_h, "Transfer-Encoding: chunked");
    if (!t) return -ENOMEM;
    r->upload_h = t;
    curl_easy_setopt(r->upload, CURLOPT_HTTPHEADER, r->upload_h);
    curl_easy_setopt(r->upload, CURLOPT_POST, 1L);
    curl_easy_setopt(r->upload, CURLOPT_READFUNCTION, on_stdin);
    curl_easy_setopt(r->upload, CURLOPT_READDATA, r);
    curl_easy_setopt(r->upload, CURLOPT_ERRORBUFFER, r->upload_err);
    /* The answer (204, or 409 once the program stopped reading) is not output. */
    curl_easy_setopt(r->upload, CURLOPT_WRITEFUNCTION, discard);
    if (curl_multi_add_handle(r->multi, r->upload)) return -ENOMEM;
    return 0;
}

static void upload_done(struct run *r, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(r->upload, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && (status == 204 || status == 409)) return; /* 409: stdin was closed */
    if (rc == CURLE_OK) {
        ctl_warn("sending stdin failed: spawnd answered HTTP %ld", status);
        return;
    }
    /* When the program closes its stdin (or ends) in the middle of the
     * upload, spawnd answers 409 and drops the connection, which curl often
     * sees as a send error before it reads the answer: the common case, and
     * not an error, as it is not locally.  A connection that really broke
     * breaks the output stream too, which is reported.  Either way the job's
     * stdin is closed, so the program is not left waiting for input that
     * will never come. */
    char path[200];
    struct ctl_resp resp;
    snprintf(path, sizeof path, "%s/stdin?close=true", r->path);
    if (ctl_request(r->c, "POST", path, NULL, 10, &resp) == 0) ctl_resp_free(&resp);
}

static void remove_upload(struct run *r)
{
    if (!r->upload) return;
    curl_multi_remove_handle(r->multi, r->upload);
    curl_easy_cleanup(r->upload);
    r->upload = NULL;
}

/* After the exit event, how long the stdin upload may take to be answered. */
#define UPLOAD_LINGER_S 1.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drive the transfers until the output stream ends (or the user gives up).
 * A stdin upload still going is then ended (its last chunk sent at once)
 * and gets a moment to be answered, rather than being cut off: spawnd does
 * not notice a client leaving while it holds an upload back for a full pipe,
 * and would keep that request until it shuts down. */
static int loop(struct run *r)
{
    double linger_until = 0;
    for (;;) {
        int running, left;
        if (curl_multi_perform(r->multi, &running) != CURLM_OK) return -EIO;
        CURLMsg *m;
        while ((m = curl_multi_info_read(r->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            if (m->easy_handle == r->follow) {
                r->follow_done = true;
                r->follow_rc = m->data.result;
            } else if (m->easy_handle == r->upload) {
                upload_done(r, m->data.result);
                remove_upload(r);
            }
        }
        if (r->follow_done && (!r->upload || !r->ev.exited)) return 0;
        if (r->follow_done && !linger_until) {
            linger_until = now_s() + UPLOAD_LINGER_S;
            r->stdin_end = true;
            if (r->stdin_paused) {
                r->stdin_paused = false;
                curl_easy_pause(r->upload, CURLPAUSE_CONT);
            }
            continue;
        }
        if (linger_until && now_s() >= linger_until) return 0;
        struct curl_waitfd fds[2] = {
            {.fd = sig_pipe[0], .events = CURL_WAIT_POLLIN},
            {.fd = 0, .events = CURL_WAIT_POLLIN},
        };
        unsigned nfds = r->upload && r->stdin_paused ? 2 : 1;
        if (curl_multi_poll(r->multi, fds, nfds, linger_until ? 50 : 1000, NULL) != CURLM_OK)
            return -EIO;
        forward_signals(r);
        if (r->give_up) return 0;
        /* End of file on a pipe is POLLHUP, which curl does not report. */
        if (r->upload && r->stdin_paused && stdin_ready()) {
            r->stdin_paused = false;
            curl_easy_pause(r->upload, CURLPAUSE_CONT);
        }
    }
}

/* The job's exit status from GET /v1/jobs/{id}, into ev, if it has ended. */
static void ended_status(struct ctl *c, const char *path, struct ctl_events *ev)
{
    struct ctl_resp resp;
    json_object *o = NULL, *state, *v;
    if (ctl_request(c, "GET", path, NULL, 10, &resp) < 0) return;
    if (resp.status == 200 && (o = json_tokener_parse(resp.body.data ? resp.body.data : "")) &&
        json_object_object_get_ex(o, "state", &state) &&
        !strcmp(json_object_get_string(state), "exited")) {
        ev->exited = true;
        ev->status = ctl_exit_status(o);
        ev->timed_out = json_object_object_get_ex(o, "timed_out", &v) && json_object_get_boolean(v);
        ev->killed = json_object_object_get_ex(o, "killed", &v) && json_object_get_boolean(v);
    }
    json_object_put(o);
    ctl_resp_free(&resp);
}

/* Run the job described by body in the foreground; returns the exit status. */
static int run_job(struct ctl *c, const char *body, bool use_stdin, unsigned long long timeout_ms)
{
    struct run r = {.c = c};
    int ret = CTL_EXIT_FAILED;
    bool created = false;
    ctl_events_init(&r.ev, false);
    r.ev.on_intr = forward_signals;
    r.ev.on_gone = on_output_gone;
    r.ev.ctx = &r;
    /* Before the job exists, so a Ctrl-C during the start is not lost. */
    if (signals_catch() < 0) {
        ret = ctl_fail("cannot catch signals: %s", strerror(errno));
        goto out;
    }
    ret = create_job(c, body, r.path, sizeof r.path);
    if (ret) goto out;
    created = true;
    ret = CTL_EXIT_FAILED;
    if (!(r.multi = curl_multi_init()) || add_transfers(&r, use_stdin) < 0) {
        ctl_fail("out of memory");
        goto out;
    }
    if (loop(&r) < 0) {
        ctl_fail("the transfer loop failed");
        goto out;
    }
    if (r.give_up) {
        ctl_fail("interrupted %d times: the job was killed and deleted", SIGINT_GIVE_UP);
        ret = 128 + SIGINT;
        goto out;
    }
    if (r.ev.answer.status && r.ev.answer.status != 200) {
        ret = ctl_fail_resp(&r.ev.answer, "cannot follow the job's output");
        goto out;
    }
    if (r.ev.error) {
        ctl_fail("spawnd sent %s", r.ev.error);
        goto out;
    }
    if (!r.ev.exited && r.follow_rc == CURLE_OK) {
        /* spawnd ended the stream without the exit event: it does so when
         * it dropped output this reader had only begun to receive. */
        ended_status(c, r.path, &r.ev);
        if (r.ev.exited) r.ev.dropped += !r.ev.gone[1];
    }
    if (!r.ev.exited) {
        ctl_fail("the output stream from %s ended before the job did: %s", c->url,
                 *r.follow_err ? r.follow_err
                 : r.follow_rc ? curl_easy_strerror(r.follow_rc)
                               : "no exit event");
        goto out;
    }
    if (r.ev.dropped && !r.ev.gone[1]) {
        ctl_fail("output was lost: the program wrote faster than spawnctl could read, and "
                 "spawnd keeps only --job-output-bytes of a job's output (the program exited "
                 "with status %d)",
                 r.ev.status);
        goto out;
    }
    if (r.ev.timed_out && timeout_ms)
        ctl_warn("the program timed out after %llu ms and was killed", timeout_ms);
    else if (r.ev.timed_out)
        ctl_warn("the program ran past the server's --max-timeout-ms and was killed");
    else if (r.ev.killed)
        ctl_warn("spawnd killed the program");
    ret = r.ev.status;
out:
    if (r.follow) {
        curl_multi_remove_handle(r.multi, r.follow);
        curl_easy_cleanup(r.follow);
    }
    remove_upload(&r);
    if (r.multi) curl_multi_cleanup(r.multi);
    curl_slist_free_all(r.follow_h);
    curl_slist_free_all(r.upload_h);
    /* Whatever happened, the job is not left behind. */
    if (created) delete_job(c, r.path);
    signals_restore();
    ctl_events_free(&r.ev);
    return ret;
}

/* --- the commands -------------------------------------------------------------------- */

static int run_or_exec(struct ctl *c, const char *cmd, int argc, char **argv, bool shell)
{
    struct run_opts o = {.shell = shell};
    char *body = NULL, *line = NULL;
    int ret = CTL_EXIT_FAILED;
    if (!(o.env = calloc((size_t)argc + 1, sizeof *o.env))) return ctl_fail("out of memory");
    int first = parse_opts(c, cmd, argc, argv, &o);
    if (first < 0) goto out;
    if (first >= argc) {
        ret = ctl_usage(cmd, shell ? "no command line given" : "no program given");
        goto out;
    }
    if (shell && argc - first > 1) {
        /* exec a b c: one command line, as ssh joins its arguments. */
        size_t n = 0;
        for (int i = first; i < argc; i++)
            n += strlen(argv[i]) + 1;
        if (!(line = malloc(n))) {
            ret = ctl_fail("out of memory");
            goto out;
        }
        line[0] = 0;
        for (int i = first; i < argc; i++) {
            if (i > first) strcat(line, " ");
            strcat(line, argv[i]);
        }
        body = job_body(&o, line, NULL, 0, true);
    } else {
        body = job_body(&o, argv[first], shell ? NULL : argv + first + 1,
                        shell ? 0 : argc - first - 1, true);
    }
    if (!body)
        ret = ctl_fail("out of memory");
    else
        ret = run_job(c, body, o.use_stdin, o.timeout_ms);
out:
    free(line);
    free(body);
    free(o.env);
    return ret;
}

int ctl_cmd_run(struct ctl *c, int argc, char **argv)
{
    return run_or_exec(c, "run", argc, argv, false);
}

int ctl_cmd_exec(struct ctl *c, int argc, char **argv)
{
    return run_or_exec(c, "exec", argc, argv, true);
}

static size_t on_stdin_blocking(char *p, size_t size, size_t nmemb, void *arg)
{
    ssize_t n;
    do
        n = read(0, p, size * nmemb);
    while (n < 0 && errno == EINTR);
    return n < 0 ? 0 : (size_t)n;
}

/* start --stdin: everything on spawnctl's stdin, then close the job's. */
static int upload_all(struct ctl *c, const char *job_path)
{
    char path[200], err[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = NULL;
    snprintf(path, sizeof path, "%s/stdin?close=true", job_path);
    CURL *e = ctl_easy(c, path, "application/octet-stream", &h);
    struct curl_slist *t = e ? curl_slist_append(h, "Transfer-Encoding: chunked") : NULL;
    if (!t) {
        if (e) curl_easy_cleanup(e);
        curl_slist_free_all(h);
        return ctl_fail("out of memory");
    }
    h = t;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_stdin_blocking);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    if (rc != CURLE_OK)
        return ctl_fail("sending stdin failed: %s", *err ? err : curl_easy_strerror(rc));
    if (status != 204 && status != 409)
        return ctl_fail("sending stdin failed: spawnd answered HTTP %ld", status);
    return 0;
}

int ctl_cmd_start(struct ctl *c, int argc, char **argv)
{
    struct run_opts o = {0};
    char *body = NULL, path[160];
    int ret = CTL_EXIT_FAILED;
    if (!(o.env = calloc((size_t)argc + 1, sizeof *o.env))) return ctl_fail("out of memory");
    int first = parse_opts(c, "start", argc, argv, &o);
    if (first < 0) goto out;
    if (first >= argc) {
        ret = ctl_usage("start", "no program given");
        goto out;
    }
    body = job_body(&o, argv[first], argv + first + 1, argc - first - 1, false);
    if (!body) {
        ret = ctl_fail("out of memory");
        goto out;
    }
    ret = create_job(c, body, path, sizeof path);
    if (ret) goto out;
    const char *id = path + strlen("/v1/jobs/");
    /* The id first, so a failed upload still leaves the job in reach. */
    printf("%s\n", id);
    fflush(stdout);
    ret = o.use_stdin ? upload_all(c, path) : 0;
out:
    free(body);
    free(o.env);
    return ret;
}
