/* client: spawnctl's HTTP requests, messages and small parsers. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "common/signame.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

/* --- messages ------------------------------------------------------------------ */

static void vline(const char *fmt, va_list ap)
{
    char line[1024] = "spawnctl: ";
    size_t n = strlen(line);
    /* Leave room for the '\n'; a longer message is cut, not split. */
    int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    if (k > 0) n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    /* The message may quote the server or a file name: keep it one line. */
    for (size_t i = 10; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    line[n++] = '\n';
    ctl_write_all(2, line, n);
}

int ctl_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
    return CTL_EXIT_FAILED;
}

void ctl_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

int ctl_usage(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd) return ctl_fail("%s (see 'spawnctl %s --help')", msg, cmd);
    return ctl_fail("%s (see 'spawnctl --help')", msg);
}

int ctl_write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* --- command line ---------------------------------------------------------------- */

int ctl_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name,
                  const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        (*i)++;
        return 1;
    }
    if (a[n]) return 0;
    if (*i + 1 >= argc) {
        ctl_usage(cmd, "option %s needs a value", name);
        return -1;
    }
    *val = argv[*i + 1];
    *i += 2;
    return 1;
}

int ctl_opt_global(struct ctl *c, const char *cmd, int argc, char **argv, int *i)
{
    const char *v;
    int r = ctl_opt_value(cmd, argc, argv, i, "--url", &v);
    if (r == 1) {
        free(c->url_mem);
        c->url_mem = NULL;
        return ctl_init(c, v, c->token) ? -1 : 1;
    }
    if (r) return r;
    r = ctl_opt_value(cmd, argc, argv, i, "--token", &v);
    if (r == 1) c->token = v;
    return r;
}

bool ctl_is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int ctl_check_id(const char *cmd, const char *id)
{
    size_t n = strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~");
    if (*id && !id[n] && n < 96) return 0;
    ctl_usage(cmd, "'%.100s' is not a job id", id);
    return -EINVAL;
}

bool ctl_looks_like_id(const char *arg)
{
    size_t n = strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~");
    return !arg[n] && n >= 16 && n < 96;
}

int ctl_parse_uint(const char *s, unsigned long long *out)
{
    char *end;
    if (!isdigit((unsigned char)*s)) return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return -EINVAL;
    *out = v;
    return 0;
}

/* --- HTTP ---------------------------------------------------------------------- */

int ctl_init(struct ctl *c, const char *url, const char *token)
{
    if (!url || !*url) url = getenv("SPAWND_URL");
    if (!url || !*url) url = DEFAULT_URL;
    if (!token) token = getenv("SPAWND_TOKEN");
    c->token = token && *token ? token : NULL;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return ctl_fail("the server URL must start with http:// or https:// (got '%.200s')", url);
    /* Paths are appended to it: a trailing '/' would make them "//v1/...". */
    size_t n = strlen(url);
    while (n > 8 && url[n - 1] == '/')
        n--;
    c->url_mem = strndup(url, n);
    if (!c->url_mem) return ctl_fail("out of memory");
    c->url = c->url_mem;
    return 0;
}

void ctl_free(struct ctl *c)
{
    free(c->url_mem);
    c->url_mem = NULL;
}

CURL *ctl_easy(const struct ctl *c, const char *path, const char *ctype,
               struct curl_slist **headers)
{
    CURL *h = curl_easy_init();
    struct curl_slist *l = NULL, *t;
    char *url = NULL;
    if (!h) goto error;
    if (asprintf(&url, "%s%s", c->url, path) < 0) {
        url = NULL;
        goto error;
    }
    /* curl would wait up to a second for "100 Continue" before an upload. */
    if (!(t = curl_slist_append(l, "Expect:"))) goto error;
    l = t;
    if (ctype) {
        char line[128];
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        if (!(t = curl_slist_append(l, line))) goto error;
        l = t;
    }
    if (c->token) {
        char *line;
        if (asprintf(&line, "Authorization: Bearer %s", c->token) < 0) goto error;
        t = curl_slist_append(l, line);
        free(line);
        if (!t) goto error;
        l = t;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "spawnctl/" SPAWND_VERSION);
    /* A proxy from the environment would see the token and break streaming. */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    *headers = l;
    return h;

error:
    free(url);
    curl_slist_free_all(l);
    if (h) curl_easy_cleanup(h);
    return NULL;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct ctl_resp *r = arg;
    if (buf_append(&r->body, p, size * nmemb) < 0) return 0; /* aborts the transfer */
    return size * nmemb;
}

/* Run h (set up by the caller) into r; see ctl_request. */
static int perform(const struct ctl *c, CURL *h, struct curl_slist *headers, struct ctl_resp *r)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    int ret = 0;
    if (rc != CURLE_OK) {
        snprintf(r->error, sizeof r->error, "cannot reach spawnd at %s: %s", c->url,
                 *errbuf ? errbuf : curl_easy_strerror(rc));
        if (rc == CURLE_WRITE_ERROR)
            snprintf(r->error, sizeof r->error, "the answer of spawnd at %s is too large", c->url);
        buf_free(&r->body);
        r->status = 0;
        ret = -EIO;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return ret;
}

int ctl_request(const struct ctl *c, const char *method, const char *path, const char *json,
                long timeout_s, struct ctl_resp *r)
{
    struct curl_slist *headers = NULL;
    memset(r, 0, sizeof *r);
    buf_init(&r->body, CTL_BODY_MAX);
    CURL *h = ctl_easy(c, path, json ? "application/json" : NULL, &headers);
    if (!h) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return -ENOMEM;
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (json || !strcmp(method, "POST")) { /* an empty POST still says Content-Length: 0 */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json ? json : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(json ? strlen(json) : 0));
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    return perform(c, h, headers, r);
}

static size_t read_fd(char *p, size_t size, size_t nmemb, void *arg)
{
    int fd = *(int *)arg;
    for (;;) {
        ssize_t n = read(fd, p, size * nmemb);
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
    }
}

int ctl_request_fd(const struct ctl *c, const char *method, const char *path, const char *ctype,
                   int fd, struct ctl_resp *r)
{
    struct curl_slist *headers = NULL;
    memset(r, 0, sizeof *r);
    buf_init(&r->body, CTL_BODY_MAX);
    CURL *h = ctl_easy(c, path, ctype, &headers);
    if (!h) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return -ENOMEM;
    }
    curl_easy_setopt(h, CURLOPT_POST, 1L); /* no size: chunked */
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_fd);
    curl_easy_setopt(h, CURLOPT_READDATA, &fd);
    return perform(c, h, headers, r);
}

void ctl_resp_free(struct ctl_resp *r)
{
    buf_free(&r->body);
}

const char *ctl_error_message(json_object *body)
{
    json_object *e, *m;
    if (!json_object_object_get_ex(body, "error", &e)) return NULL;
    if (!json_object_object_get_ex(e, "message", &m)) return NULL;
    return json_object_get_string(m);
}

int ctl_fail_resp(const struct ctl_resp *r, const char *what)
{
    if (!r->status) return ctl_fail("%s", r->error);
    json_object *body = r->body.data ? json_tokener_parse(r->body.data) : NULL;
    json_object *e, *code;
    const char *msg = ctl_error_message(body);
    const char *cs =
        json_object_object_get_ex(body, "error", &e) && json_object_object_get_ex(e, "code", &code)
            ? json_object_get_string(code)
            : NULL;
    int ret;
    if (msg)
        ret = ctl_fail("%s: spawnd answered %ld %s: %s", what, r->status, cs ? cs : "", msg);
    else
        ret = ctl_fail("%s: spawnd answered HTTP %ld", what, r->status);
    json_object_put(body);
    return ret;
}

/* --- what the server says --------------------------------------------------------- */


/* A "signal" field: a name, or a number for signals without one. */
static int signal_of(json_object *v)
{
    if (json_object_is_type(v, json_type_int)) return json_object_get_int(v);
    if (!json_object_is_type(v, json_type_string)) return 0;
    return ctl_signal_parse(json_object_get_string(v));
}

int ctl_exit_status(json_object *o)
{
    json_object *v;
    if (json_object_object_get_ex(o, "exit_code", &v) && json_object_is_type(v, json_type_int))
        return json_object_get_int(v) & 0xff;
    if (json_object_object_get_ex(o, "signal", &v)) {
        int sig = signal_of(v);
        if (sig > 0) return 128 + sig;
    }
    return CTL_EXIT_FAILED; /* neither: not an ended job */
}

int ctl_signal_parse(const char *s)
{
    unsigned long long n;
    if (ctl_parse_uint(s, &n) == 0) return n >= 1 && n <= (unsigned)SIGRTMAX ? (int)n : -1;
    char name[32] = "SIG";
    const char *p = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    size_t k = 3;
    for (; *p && k < sizeof name - 1; p++)
        name[k++] = (char)toupper((unsigned char)*p);
    name[k] = 0;
    if (*p) return -1;
    return sig_from_name(name);
}

int ctl_spawn_failed(const struct ctl_resp *r)
{
    json_object *body = r->body.data ? json_tokener_parse(r->body.data) : NULL;
    json_object *e = NULL, *code = NULL, *path = NULL;
    json_object_object_get_ex(body, "error", &e);
    json_object_object_get_ex(e, "code", &code);
    json_object_object_get_ex(e, "path", &path);
    const char *cs = code ? json_object_get_string(code) : "";
    const char *msg = ctl_error_message(body);
    int ret = !strcmp(cs, "ENOENT") ? CTL_EXIT_NOTFOUND : CTL_EXIT_NOEXEC;
    if (!strcmp(cs, "ENOENT"))
        ctl_fail("%s: not found, or the working directory does not exist (%s)",
                 path ? json_object_get_string(path) : "program", msg ? msg : cs);
    else if (!strcmp(cs, "EACCES"))
        ctl_fail("%s: permission denied (%s)", path ? json_object_get_string(path) : "program",
                 msg ? msg : cs);
    else
        ctl_fail("%s: cannot be run (%s)", path ? json_object_get_string(path) : "program",
                 msg ? msg : cs);
    json_object_put(body);
    return ret;
}
