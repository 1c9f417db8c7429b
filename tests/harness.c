#include "harness.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void srv_start(struct srv *s, const char *const *argv)
{
    srv_start_env(s, argv, NULL);
}

void srv_start_env(struct srv *s, const char *const *argv, const char *const *env)
{
    static int curl_ready;
    if (!curl_ready++) curl_global_init(CURL_GLOBAL_ALL);
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "/tmp/spawnd-test-%d-XXXXXX", (int)getpid());
    int lfd = mkstemp(s->log);
    if (lfd < 0) die("mkstemp: %s", strerror(errno));
    const char *args[64] = {SPAWND_BIN, "--listen", "127.0.0.1:0"};
    size_t n = 3;
    for (size_t i = 0; argv && argv[i] && n < 62; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    s->pid = fork();
    if (s->pid < 0) die("fork: %s", strerror(errno));
    if (s->pid == 0) {
        dup2(lfd, 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        srv_child_env(env);
        execv(SPAWND_BIN, (char *const *)args);
        _exit(127);
    }
    close(lfd);
    for (int waited = 0; waited < 10000; waited += 10) {
        FILE *f = fopen(s->log, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            char *p = strstr(line, "listening on http");
            if (p && (sscanf(p, "listening on http://127.0.0.1:%d", &s->port) == 1 ||
                      sscanf(p, "listening on https://127.0.0.1:%d", &s->port) == 1)) {
                fclose(f);
                snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
                return;
            }
        }
        if (f) fclose(f);
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) die("spawnd exited at start-up; log %s", s->log);
        sleep_ms(10);
    }
    die("spawnd did not start listening; log %s", s->log);
}

void srv_child_env(const char *const *env)
{
    extern char **environ;
    for (char **e = environ; *e;) {
        if (strncmp(*e, "SPAWND_", 7) == 0) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
            unsetenv(name); /* environ shifts down: look at the same slot again */
        } else {
            e++;
        }
    }
    for (size_t i = 0; env && env[i]; i++)
        putenv((char *)env[i]);
}

int srv_stop(struct srv *s, int timeout_ms)
{
    int st = 0;
    kill(s->pid, SIGTERM);
    for (int waited = 0;; waited += 10) {
        pid_t p = waitpid(s->pid, &st, WNOHANG);
        if (p == s->pid) break;
        if (waited >= timeout_ms) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            fprintf(stderr, "harness: spawnd did not stop in %d ms; log kept at %s\n", timeout_ms,
                    s->log);
            return -1;
        }
        sleep_ms(10);
    }
    if (getenv("SPAWND_TEST_SHOW_LOG")) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "cat %s >&2", s->log);
        if (system(cmd)) {}
    }
    unlink(s->log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int srv_fd_count(const struct srv *s)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)s->pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

int srv_fd_settle(const struct srv *s, int want, int timeout_ms)
{
    int n = srv_fd_count(s), same = 0;
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (want >= 0 ? n == want : same >= 5) break;
        sleep_ms(20);
        int m = srv_fd_count(s);
        same = m == n ? same + 1 : 0;
        n = m;
    }
    return n;
}

/* Walk /proc: count processes whose ancestry reaches the server. */
static int count_procs(const struct srv *s, bool zombies_only, bool direct_only)
{
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        int cur = pid, depth = 0;
        bool under = false, zombie = false;
        while (cur > 1 && depth++ < 64) {
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/%d/stat", cur);
            FILE *f = fopen(path, "r");
            if (!f) break;
            size_t len = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[len] = 0;
            char *rp = strrchr(buf, ')');
            if (!rp) break;
            char state;
            int ppid;
            if (sscanf(rp + 2, "%c %d", &state, &ppid) != 2) break;
            if (cur == pid) zombie = state == 'Z';
            if (ppid == s->pid) {
                under = !direct_only || cur == pid;
                break;
            }
            if (direct_only) break;
            cur = ppid;
        }
        if (under && (!zombies_only || zombie)) n++;
    }
    closedir(d);
    return n;
}

int srv_zombies(const struct srv *s)
{
    return count_procs(s, true, false);
}

int srv_descendants(const struct srv *s)
{
    return count_procs(s, false, false);
}

long long srv_proc_field(const struct srv *s, const char *file, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)s->pid, file);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtoll(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* spawnd writes its log lines once per loop iteration, just after the
 * answers of that iteration went out: a line may reach the file a moment
 * after the response that followed it, so look again for up to a second. */
bool srv_log_has(const struct srv *s, const char *needle)
{
    for (int waited = 0; waited <= 1000; waited += 20) {
        FILE *f = fopen(s->log, "r");
        if (!f) return false;
        char line[4096];
        bool found = false;
        while (!found && fgets(line, sizeof line, f))
            found = strstr(line, needle) != NULL;
        fclose(f);
        if (found) return true;
        sleep_ms(20);
    }
    return false;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct resp *r = arg;
    return buf_append(&r->body, p, sz * n) == 0 ? sz * n : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct resp *r = arg;
    return buf_append(&r->headers, p, sz * n) == 0 ? sz * n : 0;
}

void http_req(const struct srv *s, const char *method, const char *path, const char *ctype,
              const char *body, size_t len, const char *const *extra_headers, int timeout_ms,
              struct resp *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body, (size_t)1 << 31);
    buf_init(&r->headers, 1 << 20);
    CURL *c = curl_easy_init();
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    struct curl_slist *h = NULL;
    char ct[256];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    } else if (body) {
        h = curl_slist_append(h, "Content-Type:");
    }
    h = curl_slist_append(h, "Expect:");
    for (size_t i = 0; extra_headers && extra_headers[i]; i++)
        h = curl_slist_append(h, extra_headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms ? timeout_ms : 30000));
    r->curl_code = (int)curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->total_s);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

void http_post_json(const struct srv *s, const char *path, const char *json, struct resp *r)
{
    http_req(s, "POST", path, "application/json", json, strlen(json), NULL, 0, r);
}

void http_get(const struct srv *s, const char *path, struct resp *r)
{
    http_req(s, "GET", path, NULL, NULL, 0, NULL, 0, r);
}

void resp_free(struct resp *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
}

json_object *resp_json(const struct resp *r)
{
    json_object *o = r->body.data ? json_tokener_parse(r->body.data) : NULL;
    if (!o) {
        fprintf(stderr, "harness: response (status %ld) is not JSON: %.500s\n", r->status,
                r->body.data ? r->body.data : "(empty)");
        exit(2);
    }
    return o;
}

const char *resp_header(const struct resp *r, const char *name)
{
    static char value[1024];
    size_t nlen = strlen(name);
    const char *p = r->headers.data;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) eol = p + strlen(p);
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= sizeof value) vl = sizeof value - 1;
            memcpy(value, v, vl);
            value[vl] = 0;
            return value;
        }
        p = *eol ? eol + 2 : eol;
    }
    return NULL;
}

char *srv_raw_exchange(const struct srv *s, const char *req, size_t len, const char *until,
                       int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        if (fd >= 0) close(fd);
        return strdup("");
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    struct buf in;
    buf_init(&in, 1 << 20);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (until && in.data && strstr(in.data, until)) break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) break;
        buf_append(&in, tmp, (size_t)n);
    }
    close(fd);
    char *res = strdup(in.data ? in.data : "");
    buf_free(&in);
    return res;
}

json_object *jget(json_object *o, const char *path)
{
    char key[128];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = 0;
        if (json_object_is_type(o, json_type_array)) {
            o = json_object_array_get_idx(o, (size_t)atoi(key));
        } else if (!json_object_object_get_ex(o, key, &o)) {
            return NULL;
        }
        path += n + (dot ? 1 : 0);
    }
    return o;
}

const char *jstr(json_object *o, const char *path)
{
    json_object *v = jget(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

long long jint(json_object *o, const char *path)
{
    json_object *v = jget(o, path);
    return v && json_object_is_type(v, json_type_int) ? (long long)json_object_get_int64(v) : -9999;
}

bool jnull(json_object *o, const char *path)
{
    json_object *parent = o;
    const char *last = strrchr(path, '.');
    char head[256];
    if (last) {
        snprintf(head, sizeof head, "%.*s", (int)(last - path), path);
        parent = jget(o, head);
        path = last + 1;
    }
    json_object *v;
    return parent && json_object_object_get_ex(parent, path, &v) && v == NULL;
}

bool jbool(json_object *o, const char *path)
{
    json_object *v = jget(o, path);
    return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

const char *helper(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", HELPERS_DIR, name);
    return path;
}
