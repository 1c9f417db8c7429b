/* sec_kit.h: small helpers shared by the security and hostile-client
 * integration tests (it_security.c, it_hostile.c): raw sockets, temporary
 * files, the "still healthy, nothing leaked" check, and a way to note a
 * known bug without failing the suite. */
#ifndef SPAWND_SEC_KIT_H
#define SPAWND_SEC_KIT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A check that documents a bug reported upstream and not fixed yet: it
 * prints what is wrong but does not fail the suite. When the bug is fixed
 * it says so, so the check can become a CHECK again. */
static int known_bugs;
#define KNOWN_BUG(cond, what)                                                                \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: KNOWN BUG (not counted): %s\n", __FILE__, __LINE__,      \
                    what);                                                                   \
            known_bugs++;                                                                    \
        } else {                                                                             \
            fprintf(stderr, "%s:%d: known bug looks FIXED, make it a CHECK: %s\n", __FILE__, \
                    __LINE__, what);                                                         \
        }                                                                                    \
    } while (0)

/* The status and the JSON error body {"error":{"code":..,"message":..}}. */
static inline void expect_error_at(const char *file, int line, const struct resp *r, long status,
                                   const char *code)
{
    int before = check_failures;
    CHECK_INT(r->status, status);
    const char *ct = resp_header(r, "Content-Type");
    CHECK(ct && strncmp(ct, "application/json", 16) == 0);
    json_object *o = r->body.data ? json_tokener_parse(r->body.data) : NULL;
    CHECK(o != NULL);
    if (o) {
        CHECK_STR(jstr(o, "error.code"), code);
        const char *msg = jstr(o, "error.message");
        CHECK(msg && *msg);
        json_object_put(o);
    }
    if (check_failures != before)
        fprintf(stderr, "  ^ at %s:%d: status %ld body %.300s\n", file, line, r->status,
                r->body.data ? r->body.data : "(none)");
}
#define EXPECT_ERROR(r, status, code) expect_error_at(__FILE__, __LINE__, r, status, code)

/* POST JSON with extra headers ("Name: value", NULL-terminated, may be NULL). */
static inline void post_h(const struct srv *s, const char *path, const char *json,
                          const char *const *hdrs, struct resp *r)
{
    http_req(s, "POST", path, "application/json", json, strlen(json), hdrs, 0, r);
}

/* The status of a request, and nothing else. */
static inline long status_of(const struct srv *s, const char *method, const char *path,
                             const char *json, const char *const *hdrs)
{
    struct resp r;
    http_req(s, method, path, json ? "application/json" : NULL, json, json ? strlen(json) : 0,
             hdrs, 10000, &r);
    long st = r.status;
    resp_free(&r);
    return st;
}

/* POST a run request that must answer 200; returns its stdout (strdup'ed,
 * "" on failure, caller frees). */
static inline char *run_out_at(const char *file, int line, const struct srv *s, const char *path,
                               const char *json, const char *const *hdrs)
{
    struct resp r;
    post_h(s, path, json, hdrs, &r);
    char *out = NULL;
    if (r.status == 200) {
        json_object *o = json_tokener_parse(r.body.data ? r.body.data : "");
        const char *so = o ? jstr(o, "stdout") : NULL;
        out = strdup(so ? so : "");
        if (o) json_object_put(o);
    } else {
        fprintf(stderr, "%s:%d: %s %s: status %ld body %.300s\n", file, line, path, json,
                r.status, r.body.data ? r.body.data : "(none)");
        check_failures++;
        out = strdup("");
    }
    resp_free(&r);
    return out;
}
#define RUN_OUT(s, path, json) run_out_at(__FILE__, __LINE__, s, path, json, NULL)
#define RUN_OUT_H(s, path, json, h) run_out_at(__FILE__, __LINE__, s, path, json, h)

/* After a case: spawnd answers /healthz, holds the descriptors it held
 * before (given; it may take a moment to close a dropped connection), and
 * has no zombie. */
static inline void still_sound_at(const char *file, int line, const struct srv *s, int fds)
{
    int before = check_failures;
    struct resp r;
    http_req(s, "GET", "/healthz", NULL, NULL, 0, NULL, 5000, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    if (fds >= 0) CHECK_INT(srv_fd_settle(s, fds, 2000), fds);
    int z = srv_zombies(s);
    for (int waited = 0; z > 0 && waited < 2000; waited += 20) {
        sleep_ms(20);
        z = srv_zombies(s);
    }
    CHECK_INT(z, 0);
    if (check_failures != before) fprintf(stderr, "  ^ spawnd not sound after %s:%d\n", file, line);
}
#define STILL_SOUND(s, fds) still_sound_at(__FILE__, __LINE__, s, fds)

/* Waits (at most timeout_ms) until spawnd has no descendant left. */
static inline int descendants_settle(const struct srv *s, int timeout_ms)
{
    int n = srv_descendants(s);
    for (int waited = 0; n > 0 && waited < timeout_ms; waited += 20) {
        sleep_ms(20);
        n = srv_descendants(s);
    }
    return n;
}

/* --- raw sockets ----------------------------------------------------------- */

static inline int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline int raw_send(int fd, const char *p, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Reads until `until` (may be NULL) is in what came back, the peer closes
 * (*closed = 1), or timeout_ms passes. Returns what was read (caller frees). */
static inline char *raw_read(int fd, const char *until, int timeout_ms, int *closed)
{
    struct buf in;
    buf_init(&in, 1 << 22);
    buf_append(&in, "", 0);
    double end = now_s() + timeout_ms / 1000.0;
    if (closed) *closed = 0;
    while (now_s() < end && !(until && strstr(in.data, until))) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        char tmp[8192];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (closed) *closed = 1;
            break;
        }
        buf_append(&in, tmp, (size_t)n);
    }
    char *res = strdup(in.data);
    buf_free(&in);
    return res;
}

/* One request on a new connection; reads until `until`, close or timeout. */
static inline char *raw_exchange(int port, const char *req, size_t len, const char *until,
                                 int timeout_ms, int *closed)
{
    int fd = raw_connect(port);
    if (fd < 0) {
        if (closed) *closed = 1;
        return strdup("");
    }
    raw_send(fd, req, len);
    char *got = raw_read(fd, until, timeout_ms, closed);
    close(fd);
    return got;
}

/* The status code of the first response in raw bytes, or 0. */
static inline int raw_status(const char *got)
{
    int st = 0;
    if (sscanf(got, "HTTP/1.%*c %d", &st) != 1) return 0;
    return st;
}

/* --- files ------------------------------------------------------------------ */

static inline void write_file(const char *path, const char *content, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fputs(content, f);
    fclose(f);
    chmod(path, mode);
}

static inline bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A new temporary directory (static storage of the caller's choice). */
static inline void make_tmpdir(char *out, size_t size, const char *tag)
{
    snprintf(out, size, "/tmp/spawnd-%s-%d-XXXXXX", tag, (int)getpid());
    if (!mkdtemp(out)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        exit(2);
    }
    chmod(out, 0755);
}

static inline void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

/* A battery's named tests, run in order with a line each (ok/FAIL, time);
 * then the scratch folder goes and the summary line is printed. */
struct named_test {
    const char *name;
    void (*fn)(void);
};

static inline int run_named(const char *battery, const struct named_test *tests, size_t n,
                            const char *tmpdir, double t0)
{
    for (size_t i = 0; i < n; i++) {
        double t = now_s();
        int before = check_failures;
        tests[i].fn();
        fprintf(stderr, "%-20s %s %.2f s\n", tests[i].name,
                check_failures == before ? "ok  " : "FAIL", now_s() - t);
    }
    remove_tree(tmpdir);
    fprintf(stderr, "%s: %.1f s, %d known bug(s) noted\n", battery, now_s() - t0, known_bugs);
    return check_status();
}

/* The whole log of a server (caller frees). */
static inline char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    struct buf b;
    buf_init(&b, 1 << 26);
    buf_append(&b, "", 0);
    char tmp[8192];
    size_t n;
    while (f && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(&b, tmp, n);
    if (f) fclose(f);
    char *res = strdup(b.data);
    buf_free(&b);
    return res;
}

#endif
