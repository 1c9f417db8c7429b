/* spawnd: runs programs for its callers over HTTP.
 *
 * main wires the layers together: the configuration, the one event loop,
 * the executor that owns every child process, and the HTTP front end. */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "executor/exec.h"
#include "executor/loop.h"
#include "executor/path.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/http.h"

extern char **environ;

/* The children's default environment: spawnd's own, minus its SPAWND_*
 * settings (which may hold secrets such as SPAWND_TOKEN), and only the
 * variables --env-allow names when it is given. */
static char **default_env(const struct strlist *keep)
{
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "SPAWND_", 7) == 0) continue;
        bool kept = keep->n == 0;
        size_t nl = strcspn(*e, "=");
        for (size_t i = 0; !kept && i < keep->n; i++)
            kept = strlen(keep->v[i]) == nl && strncmp(keep->v[i], *e, nl) == 0;
        if (kept) env[k++] = *e;
    }
    return env;
}

static void free_list(char **l)
{
    for (char **a = l; a && *a; a++)
        free(*a);
    free(l);
}

/* --allow: each program's real path, looked up in spawnd's PATH as a child
 * would. Returns -1 (after one line on stderr) on a program that does not
 * exist. */
static int allow_list(const struct strlist *progs, char ***out)
{
    *out = NULL;
    if (progs->n == 0) return 0;
    char **l = calloc(progs->n + 1, sizeof *l);
    for (size_t i = 0; l && i < progs->n; i++) {
        char path[4096];
        if (exec_path_resolve(progs->v[i], environ, NULL, path, sizeof path) < 0 ||
            !(l[i] = realpath(path, NULL))) {
            fprintf(stderr, "spawnd: --allow %s: no such program\n", progs->v[i]);
            free_list(l);
            return -1;
        }
    }
    *out = l;
    return l ? 0 : -1;
}

/* The --rlimit values. Returns -1 (after one line on stderr) on a bad one. */
static int rlimit_list(const struct strlist *l, struct exec_rlimit *rl, size_t max)
{
    if (l->n > max) {
        fprintf(stderr, "spawnd: at most %zu --rlimit\n", max);
        return -1;
    }
    for (size_t i = 0; i < l->n; i++)
        if (exec_rlimit_parse(l->v[i], &rl[i]) < 0) {
            fprintf(stderr,
                    "spawnd: --rlimit %s: expected NAME=VALUE with NAME one of nofile nproc as "
                    "cpu fsize core\n",
                    l->v[i]);
            return -1;
        }
    return 0;
}

/* Descriptors 0-2 must be open, or the first pipe would take one of them
 * and a child's stdio set-up would clash with it. */
static void ensure_stdio(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
            exit(1);
}

/* Every running job holds a few descriptors (its pipes) and every client a
 * socket: take the whole hard limit, as servers do, rather than stop at the
 * usual soft 1024. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_term(int signo, void *arg)
{
    server_shutdown(arg);
}

static void on_hup(int signo, void *arg)
{
    struct server *s = arg;
    if (s->auth) auth_reload(s->auth);
    else log_info("msg=sighup detail=\"no token file to reload\"");
}

int main(int argc, char **argv)
{
    ensure_stdio();
    atexit(log_flush); /* log lines are collected per loop iteration */
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);

    static struct server s;
    char **env = NULL, **allow = NULL;
    struct exec_rlimit rl[16];
    int rc = 2; /* a refused configuration, until the server runs */
    switch (config_parse(&s.cfg, argc, argv)) {
    case CONFIG_OK: break;
    case CONFIG_EXIT_OK: rc = 0; goto out;
    case CONFIG_BAD_USAGE: goto out;
    }
    if ((*s.cfg.token_file || s.cfg.token) && !(s.auth = auth_new(s.cfg.token_file, s.cfg.token)))
        goto out;
    if (s.cfg.token) {
        /* Children running as spawnd's user could read /proc/<spawnd>/environ:
         * wipe the token there, now that auth has its own copy. */
        explicit_bzero((char *)s.cfg.token, strlen(s.cfg.token));
        s.cfg.token = NULL;
    }
    if (allow_list(&s.cfg.allow, &allow) < 0 || rlimit_list(&s.cfg.rlimits, rl, 16) < 0) goto out;

    rc = 1;
    env = default_env(&s.cfg.env_allow);
    s.loop = loop_new();
    if (!env || !s.loop) {
        perror("spawnd: start-up");
        goto out;
    }
    s.api = (struct api_config){
        .default_env = env,
        .max_timeout_ms = s.cfg.max_timeout_ms,
        .default_shell = "/bin/sh",
    };
    struct exec_config xc = {
        .max_jobs = (unsigned)s.cfg.max_jobs,
        .kill_grace_ms = s.cfg.kill_grace_ms,
        .drain_ms = 1000,
        .allow = allow,
        .rlimits = rl,
        .nrlimits = s.cfg.rlimits.n,
    };
    s.ex = exec_new(s.loop, &xc);
    if (!s.ex || server_start(&s) < 0) goto out;
    loop_on_signal(s.loop, SIGTERM, on_term, &s);
    loop_on_signal(s.loop, SIGINT, on_term, &s);
    loop_on_signal(s.loop, SIGHUP, on_hup, &s);

    rc = loop_run(s.loop) < 0 ? 1 : 0;
    log_info("msg=stopped");
out:
    server_stop(&s);
    exec_free(s.ex);
    loop_free(s.loop);
    free(env);
    free_list(allow);
    auth_free(s.auth);
    config_free(&s.cfg);
    return rc;
}
