/* spawnd: runs programs for its callers over HTTP.
 *
 * main wires the layers together: the configuration, the one event loop,
 * the executor that owns every child process, and the HTTP front end. */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "executor/exec.h"
#include "executor/loop.h"
#include "executor/path.h"
#include "executor/shim.h"
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

/* --allow: each program's real path, looked up in spawnd's PATH as a child
 * would. Exits 2 on a program that does not exist. */
static char **allow_list(const struct strlist *progs)
{
    if (progs->n == 0) return NULL;
    char **out = calloc(progs->n + 1, sizeof *out);
    for (size_t i = 0; out && i < progs->n; i++) {
        char path[4096];
        if (exec_path_resolve(progs->v[i], environ, path, sizeof path) < 0 ||
            !(out[i] = realpath(path, NULL))) {
            fprintf(stderr, "spawnd: --allow %s: no such program\n", progs->v[i]);
            exit(2);
        }
    }
    return out;
}

/* Descriptors 0-2 must be open, or the first pipe would take one of them
 * and a child's stdio set-up would clash with it. */
static void ensure_stdio(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
            exit(1);
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
    shim_main_if_invoked(argc, argv);
    ensure_stdio();
    signal(SIGPIPE, SIG_IGN);

    static struct server s;
    switch (config_parse(&s.cfg, argc, argv)) {
    case CONFIG_OK: break;
    case CONFIG_EXIT_OK: return 0;
    case CONFIG_BAD_USAGE: return 2;
    }
    if (*s.cfg.token_file || s.cfg.token) {
        s.auth = auth_new(s.cfg.token_file, s.cfg.token);
        if (!s.auth) return 2;
    }
    char **env = default_env(&s.cfg.env_allow);
    char **allow = allow_list(&s.cfg.allow);
    struct exec_rlimit rl[16];
    if (s.cfg.rlimits.n > 16) {
        fprintf(stderr, "spawnd: at most 16 --rlimit\n");
        return 2;
    }
    for (size_t i = 0; i < s.cfg.rlimits.n; i++)
        if (exec_rlimit_parse(s.cfg.rlimits.v[i], &rl[i]) < 0) {
            fprintf(stderr, "spawnd: --rlimit %s: expected NAME=VALUE with NAME one of nofile "
                            "nproc as cpu fsize core\n", s.cfg.rlimits.v[i]);
            return 2;
        }
    s.api = (struct api_config){
        .default_env = env,
        .max_timeout_ms = s.cfg.max_timeout_ms,
        .default_shell = "/bin/sh",
    };
    s.loop = loop_new();
    if (!env || !s.loop) {
        perror("spawnd: start-up");
        return 1;
    }
    struct exec_config xc = {
        .max_jobs = (unsigned)s.cfg.max_jobs,
        .kill_grace_ms = s.cfg.kill_grace_ms,
        .drain_ms = 1000,
        .allow = allow,
        .rlimits = rl,
        .nrlimits = s.cfg.rlimits.n,
    };
    s.ex = exec_new(s.loop, &xc);
    if (!s.ex || server_start(&s) < 0) return 1;
    loop_on_signal(s.loop, SIGTERM, on_term, &s);
    loop_on_signal(s.loop, SIGINT, on_term, &s);
    loop_on_signal(s.loop, SIGHUP, on_hup, &s);

    int rc = loop_run(s.loop);
    server_stop(&s);
    exec_free(s.ex);
    loop_free(s.loop);
    free(env);
    for (char **a = allow; a && *a; a++)
        free(*a);
    free(allow);
    auth_free(s.auth);
    config_free(&s.cfg);
    log_info("msg=stopped");
    return rc < 0 ? 1 : 0;
}
