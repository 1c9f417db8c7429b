/* jobs: the commands on background jobs and fork channels.
 *
 * Each is one or two plain requests; logs -f and messages -f follow a stream
 * until the server ends it (the job exits, or its channel closes). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "common/signame.h"

/* Options shared by the job commands: the global ones, then the flags named
 * in flags (each "-x" or "--word" of a bool), then operands.  Returns the
 * index of the first operand or -1 after a message. */
struct flag {
    const char *short_name, *long_name;
    bool *set;
};

static int parse_flags(struct ctl *c, const char *cmd, int argc, char **argv,
                       const struct flag *flags)
{
    int i = 0;
    while (i < argc) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--")) return i + 1;
        if (a[0] != '-' || !a[1]) return i;
        if ((r = ctl_opt_global(c, cmd, argc, argv, &i))) {
            if (r < 0) return -1;
            continue;
        }
        const struct flag *f = flags;
        for (; f && f->set; f++)
            if ((f->short_name && !strcmp(a, f->short_name)) || !strcmp(a, f->long_name)) break;
        if ((!f || !f->set) && ctl_looks_like_id(a)) return i; /* an id such as "-fjQK..." */
        if (!f || !f->set) {
            ctl_usage(cmd, "unknown option '%.100s'", a);
            return -1;
        }
        *f->set = true;
        i++;
    }
    return i;
}

/* The operands after the options must be exactly n (or between n and max). */
static int operands(const char *cmd, int argc, int first, int n, int max)
{
    int have = argc - first;
    if (have < n) return ctl_usage(cmd, "missing %s", n - have > 1 ? "arguments" : "argument");
    if (have > max) return ctl_usage(cmd, "too many arguments");
    return 0;
}

static int get_json(struct ctl *c, const char *path, const char *what, json_object **out)
{
    struct ctl_resp resp;
    int ret = 0;
    *out = NULL;
    if (ctl_request(c, "GET", path, NULL, 0, &resp) < 0) return ctl_fail("%s", resp.error);
    if (resp.status != 200)
        ret = ctl_fail_resp(&resp, what);
    else if (!(*out = json_tokener_parse(resp.body.data ? resp.body.data : "")))
        ret = ctl_fail("%s: spawnd answered something that is not JSON", what);
    ctl_resp_free(&resp);
    return ret;
}

static const char *str_field(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    return json_object_get_string(v);
}

/* --- jobs, status ---------------------------------------------------------------- */

/* "3", "SIGKILL", or "-" while running. */
static void exit_column(json_object *j, char *out, size_t size)
{
    const char *code = str_field(j, "exit_code"), *sig = str_field(j, "signal");
    snprintf(out, size, "%s", code ? code : sig ? sig : "-");
}

int ctl_cmd_jobs(struct ctl *c, int argc, char **argv)
{
    bool as_json = false;
    const struct flag flags[] = {{NULL, "--json", &as_json}, {0}};
    int first = parse_flags(c, "jobs", argc, argv, flags);
    if (first < 0 || operands("jobs", argc, first, 0, 0)) return CTL_EXIT_FAILED;
    json_object *o, *list;
    int ret = get_json(c, "/v1/jobs", "cannot list the jobs", &o);
    if (ret) return ret;
    if (as_json) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return 0;
    }
    if (!json_object_object_get_ex(o, "jobs", &list) ||
        !json_object_is_type(list, json_type_array)) {
        json_object_put(o);
        return ctl_fail("cannot list the jobs: spawnd answered without \"jobs\"");
    }
    printf("%-26s %-8s %-8s %-9s %-8s %s\n", "ID", "KIND", "STATE", "EXIT", "PID", "STARTED");
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *j = json_object_array_get_idx(list, i);
        char ex[32];
        exit_column(j, ex, sizeof ex);
        const char *id = str_field(j, "id"), *kind = str_field(j, "kind");
        const char *state = str_field(j, "state"), *pid = str_field(j, "pid");
        const char *started = str_field(j, "started_at");
        printf("%-26s %-8s %-8s %-9s %-8s %s\n", id ? id : "?", kind ? kind : "?",
               state ? state : "?", ex, pid ? pid : "-", started ? started : "-");
    }
    json_object_put(o);
    return 0;
}

int ctl_cmd_status(struct ctl *c, int argc, char **argv)
{
    bool as_json = false;
    const struct flag flags[] = {{NULL, "--json", &as_json}, {0}};
    int first = parse_flags(c, "status", argc, argv, flags);
    if (first < 0 || operands("status", argc, first, 1, 1) || ctl_check_id("status", argv[first]))
        return CTL_EXIT_FAILED;
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s", argv[first]);
    json_object *o;
    int ret = get_json(c, path, "cannot show the job", &o);
    if (ret) return ret;
    if (as_json) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        /* Every field the server sends, so a newer server's show up too. */
        json_object_object_foreach(o, key, val)
        {
            const char *s =
                json_object_is_type(val, json_type_null) ? "-" : json_object_get_string(val);
            printf("%-12s %s\n", key, s);
        }
    }
    json_object_put(o);
    return 0;
}

/* --- logs ------------------------------------------------------------------------------ */

int ctl_cmd_logs(struct ctl *c, int argc, char **argv)
{
    bool follow = false, text = false;
    const struct flag flags[] = {{"-f", "--follow", &follow}, {NULL, "--text", &text}, {0}};
    int first = parse_flags(c, "logs", argc, argv, flags);
    if (first < 0 || operands("logs", argc, first, 1, 1) || ctl_check_id("logs", argv[first]))
        return CTL_EXIT_FAILED;
    char path[200], err[CURL_ERROR_SIZE] = "";
    snprintf(path, sizeof path, "/v1/jobs/%s/output%s", argv[first], follow ? "?follow=true" : "");
    struct curl_slist *h = NULL;
    struct ctl_events ev;
    int ret = CTL_EXIT_FAILED;
    ctl_events_init(&ev, text);
    CURL *e = ctl_easy(c, path, NULL, &h);
    if (!e) {
        ret = ctl_fail("out of memory");
        goto out;
    }
    ev.easy = e;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ctl_events_curl_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &ev);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(e);
    if (ev.answer.status && ev.answer.status != 200) {
        ret = ctl_fail_resp(&ev.answer, "cannot read the job's output");
    } else if (ev.error) {
        ret = ctl_fail("spawnd sent %s", ev.error);
    } else if (rc != CURLE_OK) {
        ret = ctl_fail("cannot read the job's output from %s: %s", c->url,
                       *err ? err : curl_easy_strerror(rc));
    } else {
        if (ev.dropped)
            ctl_warn("%llu earlier output events are no longer kept by spawnd", ev.dropped);
        ret = 0;
    }
out:
    if (e) curl_easy_cleanup(e);
    curl_slist_free_all(h);
    ctl_events_free(&ev);
    return ret;
}

/* --- wait, kill ---------------------------------------------------------------------- */

int ctl_cmd_wait(struct ctl *c, int argc, char **argv)
{
    int first = parse_flags(c, "wait", argc, argv, NULL);
    if (first < 0 || operands("wait", argc, first, 1, 1) || ctl_check_id("wait", argv[first]))
        return CTL_EXIT_FAILED;
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/wait", argv[first]);
    json_object *o;
    int ret = get_json(c, path, "cannot wait for the job", &o);
    if (ret) return ret;
    ret = ctl_exit_status(o);
    json_object_put(o);
    return ret;
}

int ctl_cmd_kill(struct ctl *c, int argc, char **argv)
{
    int first = parse_flags(c, "kill", argc, argv, NULL);
    if (first < 0 || operands("kill", argc, first, 1, 2) || ctl_check_id("kill", argv[first]))
        return CTL_EXIT_FAILED;
    int sig = SIGTERM;
    if (argc - first == 2) {
        const char *s = argv[first + 1];
        sig = ctl_signal_parse(s[0] == '-' ? s + 1 : s); /* "-9", "-KILL", as kill(1) */
        if (sig < 0) return ctl_usage("kill", "unknown signal '%.100s'", s);
    }
    char path[200], body[64];
    snprintf(path, sizeof path, "/v1/jobs/%s/signal", argv[first]);
    if (sig_name(sig))
        snprintf(body, sizeof body, "{\"signal\":\"%s\"}", sig_name(sig));
    else
        snprintf(body, sizeof body, "{\"signal\":%d}", sig);
    struct ctl_resp resp;
    if (ctl_request(c, "POST", path, body, 30, &resp) < 0) return ctl_fail("%s", resp.error);
    int ret = resp.status == 202 ? 0 : ctl_fail_resp(&resp, "cannot signal the job");
    ctl_resp_free(&resp);
    return ret;
}

/* --- fork, send, messages --------------------------------------------------------------- */

int ctl_cmd_fork(struct ctl *c, int argc, char **argv)
{
    json_object *b = json_object_new_object(), *args = json_object_new_array(),
                *exec_argv = json_object_new_array(), *env = NULL, *id;
    struct ctl_resp resp = {0};
    json_object *answer = NULL;
    int ret = CTL_EXIT_FAILED, i = 0;
    if (!b || !args || !exec_argv) {
        ret = ctl_fail("out of memory");
        goto out;
    }
    while (i < argc && argv[i][0] == '-' && argv[i][1]) {
        const char *v;
        int r;
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if ((r = ctl_opt_global(c, "fork", argc, argv, &i))) {
            if (r < 0) goto out;
        } else if ((r = ctl_opt_value("fork", argc, argv, &i, "--cwd", &v))) {
            if (r < 0) goto out;
            json_object_object_add(b, "cwd", json_object_new_string(v));
        } else if ((r = ctl_opt_value("fork", argc, argv, &i, "--node", &v))) {
            if (r < 0) goto out;
            json_object_object_add(b, "exec_path", json_object_new_string(v));
        } else if ((r = ctl_opt_value("fork", argc, argv, &i, "--node-arg", &v))) {
            if (r < 0) goto out;
            json_object_array_add(exec_argv, json_object_new_string(v));
        } else if ((r = ctl_opt_value("fork", argc, argv, &i, "--timeout", &v))) {
            unsigned long long ms;
            if (r < 0) goto out;
            if (ctl_parse_uint(v, &ms)) {
                ret = ctl_usage("fork", "--timeout wants milliseconds, got '%.100s'", v);
                goto out;
            }
            json_object_object_add(b, "timeout_ms", json_object_new_int64((int64_t)ms));
        } else if ((r = ctl_opt_value("fork", argc, argv, &i, "--env", &v))) {
            if (r < 0) goto out;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                ret = ctl_usage("fork", "--env wants NAME=VALUE, got '%.100s'", v);
                goto out;
            }
            /* As for run: spawnctl's environment plus the pairs. */
            if (!env) {
                extern char **environ;
                env = json_object_new_object();
                for (char **e = environ; env && *e; e++) {
                    const char *q = strchr(*e, '=');
                    if (!q || q == *e || !strncmp(*e, "SPAWND_", 7)) continue;
                    char *k = strndup(*e, (size_t)(q - *e));
                    if (k) json_object_object_add(env, k, json_object_new_string(q + 1));
                    free(k);
                }
                json_object_object_add(b, "env", env);
            }
            char *k = strndup(v, (size_t)(eq - v));
            if (k) json_object_object_add(env, k, json_object_new_string(eq + 1));
            free(k);
        } else {
            ret = ctl_usage("fork", "unknown option '%.100s'", argv[i]);
            goto out;
        }
    }
    if (i >= argc) {
        ret = ctl_usage("fork", "no module given");
        goto out;
    }
    json_object_object_add(b, "module", json_object_new_string(argv[i]));
    for (i++; i < argc; i++)
        json_object_array_add(args, json_object_new_string(argv[i]));
    json_object_object_add(b, "args", json_object_get(args));
    if (json_object_array_length(exec_argv))
        json_object_object_add(b, "exec_argv", json_object_get(exec_argv));
    /* Output in base64, so `spawnctl logs` can give back the exact bytes. */
    json_object_object_add(b, "encoding", json_object_new_string("base64"));
    json_object_object_add(b, "stdin", json_object_new_string(""));
    const char *body =
        json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (ctl_request(c, "POST", "/v1/fork", body, 60, &resp) < 0) {
        ret = ctl_fail("%s", resp.error);
        goto out;
    }
    if (resp.status == 422) {
        ret = ctl_spawn_failed(&resp);
        goto out;
    }
    if (resp.status != 201) {
        ret = ctl_fail_resp(&resp, "cannot fork");
        goto out;
    }
    answer = json_tokener_parse(resp.body.data ? resp.body.data : "");
    if (!json_object_object_get_ex(answer, "id", &id)) {
        ret = ctl_fail("spawnd answered 201 without a job id");
        goto out;
    }
    printf("%s\n", json_object_get_string(id));
    ret = 0;
out:
    ctl_resp_free(&resp);
    json_object_put(answer);
    json_object_put(args);
    json_object_put(exec_argv);
    json_object_put(b);
    return ret;
}

int ctl_cmd_send(struct ctl *c, int argc, char **argv)
{
    bool lines = false;
    const struct flag flags[] = {{"-l", "--lines", &lines}, {0}};
    int first = parse_flags(c, "send", argc, argv, flags);
    /* "-" alone is an operand here: the message is read from stdin. */
    if (first < 0) return CTL_EXIT_FAILED;
    int want = lines ? 1 : 2;
    if (operands("send", argc, first, want, want) || ctl_check_id("send", argv[first]))
        return CTL_EXIT_FAILED;
    if (lines) { /* stdin, one message a line, each sent as soon as it is read */
        char path[200];
        snprintf(path, sizeof path, "/v1/jobs/%s/messages", argv[first]);
        struct ctl_resp resp;
        if (ctl_request_fd(c, "POST", path, "application/x-ndjson", 0, &resp) < 0)
            return ctl_fail("%s", resp.error);
        int ret = resp.status == 202 ? 0 : ctl_fail_resp(&resp, "cannot send the messages");
        ctl_resp_free(&resp);
        return ret;
    }
    struct buf msg;
    buf_init(&msg, CTL_BODY_MAX);
    const char *text = argv[first + 1];
    if (!strcmp(text, "-")) {
        char chunk[65536];
        ssize_t n;
        while ((n = read(0, chunk, sizeof chunk)) != 0) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 || buf_append(&msg, chunk, (size_t)n) < 0) {
                buf_free(&msg);
                return ctl_fail("cannot read the message from stdin: %s",
                                n < 0 ? strerror(errno) : "too large");
            }
        }
        text = msg.data ? msg.data : "";
    }
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/messages", argv[first]);
    struct ctl_resp resp;
    int ret;
    if (ctl_request(c, "POST", path, text, 30, &resp) < 0) {
        ret = ctl_fail("%s", resp.error);
    } else {
        ret = resp.status == 202 ? 0 : ctl_fail_resp(&resp, "cannot send the message");
        ctl_resp_free(&resp);
    }
    buf_free(&msg);
    return ret;
}

/* GET .../messages: each record {"seq":N,"message":VALUE}, printed as VALUE
 * on one line, byte for byte as the child sent it. */
struct msg_reader {
    struct buf line;
    CURL *easy;
    struct ctl_resp answer;
    const char *error;
};

static int print_message(struct msg_reader *m, const char *line, size_t n)
{
    json_object *o = json_tokener_parse(line), *v;
    int rc = 0;
    if (!o) {
        m->error = "a line that is not JSON";
        return -EPROTO;
    }
    if (json_object_object_get_ex(o, "message", &v)) {
        /* The record is {"seq":N,"message":VALUE}: the raw VALUE keeps the
         * child's numbers and strings exactly, which re-encoding might not. */
        const char *key = strstr(line, "\"message\":");
        if (key && line[n - 1] == '}' && !strncmp(line, "{\"seq\":", 7)) {
            const char *val = key + strlen("\"message\":");
            size_t len = (size_t)(line + n - 1 - val);
            char *s = malloc(len + 1);
            if (!s) {
                rc = -ENOMEM;
                m->error = "out of memory";
            } else {
                memcpy(s, val, len);
                s[len] = '\n';
                ctl_write_all(1, s, len + 1);
                free(s);
            }
        } else {
            printf("%s\n", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
            fflush(stdout);
        }
    } else if (json_object_object_get_ex(o, "count", &v)) {
        ctl_warn("%s earlier messages are no longer kept by spawnd", json_object_get_string(v));
    }
    json_object_put(o);
    return rc;
}

static size_t on_messages(char *p, size_t size, size_t nmemb, void *arg)
{
    struct msg_reader *m = arg;
    size_t n = size * nmemb;
    if (!m->answer.status) curl_easy_getinfo(m->easy, CURLINFO_RESPONSE_CODE, &m->answer.status);
    if (m->answer.status != 200) return buf_append(&m->answer.body, p, n) < 0 ? 0 : n;
    if (buf_append(&m->line, p, n) < 0) {
        m->error = "a message line too long";
        return 0;
    }
    char *nl;
    while ((nl = memchr(m->line.data, '\n', m->line.len))) {
        *nl = 0;
        size_t len = (size_t)(nl - m->line.data);
        if (len && print_message(m, m->line.data, len) < 0) return 0;
        buf_consume(&m->line, len + 1);
    }
    return n;
}

int ctl_cmd_messages(struct ctl *c, int argc, char **argv)
{
    bool follow = false;
    const struct flag flags[] = {{"-f", "--follow", &follow}, {0}};
    int first = parse_flags(c, "messages", argc, argv, flags);
    if (first < 0 || operands("messages", argc, first, 1, 1) ||
        ctl_check_id("messages", argv[first]))
        return CTL_EXIT_FAILED;
    char path[200], err[CURL_ERROR_SIZE] = "";
    snprintf(path, sizeof path, "/v1/jobs/%s/messages%s", argv[first],
             follow ? "?follow=true" : "");
    struct msg_reader m = {0};
    struct curl_slist *h = NULL;
    int ret = CTL_EXIT_FAILED;
    buf_init(&m.line, CTL_BODY_MAX);
    buf_init(&m.answer.body, 64 * 1024);
    m.easy = ctl_easy(c, path, NULL, &h);
    if (!m.easy) {
        ret = ctl_fail("out of memory");
        goto out;
    }
    curl_easy_setopt(m.easy, CURLOPT_WRITEFUNCTION, on_messages);
    curl_easy_setopt(m.easy, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(m.easy, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(m.easy);
    if (m.answer.status && m.answer.status != 200)
        ret = ctl_fail_resp(&m.answer, "cannot read the messages");
    else if (m.error)
        ret = ctl_fail("spawnd sent %s", m.error);
    else if (rc != CURLE_OK)
        ret = ctl_fail("cannot read the messages from %s: %s", c->url,
                       *err ? err : curl_easy_strerror(rc));
    else
        ret = 0;
out:
    if (m.easy) curl_easy_cleanup(m.easy);
    curl_slist_free_all(h);
    buf_free(&m.line);
    buf_free(&m.answer.body);
    return ret;
}
