#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_LISTEN, OPT_UINT, OPT_FLAG, OPT_NAME };

static const struct opt {
    const char *name; /* --name; environment SPAWND_NAME with '-' as '_' */
    enum opt_type type;
    size_t off;
    uint64_t min, max;
    const char *arg, *help;
} opts[] = {
    {"listen", OPT_LISTEN, 0, 0, 0, "HOST:PORT",
     "address to serve (default 127.0.0.1:8080); port 0 picks a free port"},
    {"max-jobs", OPT_UINT, offsetof(struct server_config, max_jobs), 1, 1000000, "N",
     "processes running at once; past it new runs get 429 (default 256)"},
    {"kill-grace-ms", OPT_UINT, offsetof(struct server_config, kill_grace_ms), 0, 3600000, "MS",
     "from a job's kill signal to SIGKILL (default 5000)"},
    {"max-timeout-ms", OPT_UINT, offsetof(struct server_config, max_timeout_ms), 0,
     UINT64_C(1) << 40, "MS", "upper bound on any run's timeout_ms; 0 = none (default 0)"},
    {"max-body-bytes", OPT_UINT, offsetof(struct server_config, max_body_bytes), 64,
     UINT64_C(1) << 30, "N", "largest JSON request body, 413 past it (default 1048576)"},
    {"job-ttl-s", OPT_UINT, offsetof(struct server_config, job_ttl_s), 0, 30 * 86400, "S",
     "how long an ended background job stays readable (default 300)"},
    {"job-output-bytes", OPT_UINT, offsetof(struct server_config, job_output_bytes), 1024,
     UINT64_C(1) << 32, "N", "output (and messages) kept per background job (default 1048576)"},
    {"instance-id", OPT_NAME, offsetof(struct server_config, instance_id), 0, 0, "NAME",
     "prefix of job ids ([A-Za-z0-9-], at most 32), so a proxy can route by it"},
    {"insecure", OPT_FLAG, offsetof(struct server_config, insecure), 0, 0, NULL,
     "allow a non-loopback listen address without a token"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: spawnd [options]\n\n"
               "spawnd runs programs for its callers over HTTP: Node's child_process\n"
               "(exec, execFile, spawn) as a JSON API. See README.md and docs/API.md.\n\n"
               "options (each also as environment variable SPAWND_<NAME>; flags win):\n");
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-24s %s\n", left, opts[i].help);
    }
    fprintf(f, "  %-24s %s\n  %-24s %s\n", "--help", "show this help and exit", "--version",
            "show the version and exit");
    fprintf(f, "\nexit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a bad\n"
               "command line or refused configuration, 1 for anything else.\n");
}

bool config_host_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

static int parse_listen(struct server_config *cfg, const char *v)
{
    const char *colon = strrchr(v, ':');
    const char *host = v, *hend = colon;
    if (!colon || colon == v) return -1;
    if (v[0] == '[') { /* [::1]:8080 */
        if (colon[-1] != ']') return -1;
        host = v + 1;
        hend = colon - 1;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof cfg->listen_host) return -1;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port > 65535) return -1;
    memcpy(cfg->listen_host, host, hlen);
    cfg->listen_host[hlen] = 0;
    cfg->listen_port = (unsigned)port;
    return 0;
}

static int set_opt(struct server_config *cfg, const struct opt *o, const char *v, const char *src)
{
    if (o->type == OPT_LISTEN) {
        if (parse_listen(cfg, v) == 0) return 0;
        fprintf(stderr, "spawnd: %s: expected HOST:PORT, got \"%s\"\n", src, v);
        return -1;
    }
    if (o->type == OPT_NAME) {
        size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-");
        if (v[n] || n > 32) {
            fprintf(stderr, "spawnd: %s: expected up to 32 of [A-Za-z0-9-], got \"%s\"\n", src, v);
            return -1;
        }
        memcpy((char *)cfg + o->off, v, n + 1);
        return 0;
    }
    if (o->type == OPT_FLAG) {
        bool *b = (bool *)((char *)cfg + o->off);
        if (!v || !strcmp(v, "1") || !strcmp(v, "true")) *b = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !*v) *b = false;
        else {
            fprintf(stderr, "spawnd: %s: expected 1/true or 0/false, got \"%s\"\n", src, v);
            return -1;
        }
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-' || n < o->min || n > o->max) {
        fprintf(stderr, "spawnd: %s: expected an integer from %llu to %llu, got \"%s\"\n", src,
                (unsigned long long)o->min, (unsigned long long)o->max, v);
        return -1;
    }
    *(uint64_t *)((char *)cfg + o->off) = n;
    return 0;
}

enum config_result config_parse(struct server_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    cfg->max_jobs = 256;
    cfg->kill_grace_ms = 5000;
    cfg->max_body_bytes = 1048576;
    cfg->job_ttl_s = 300;
    cfg->job_output_bytes = 1048576;

    size_t nopts = sizeof opts / sizeof opts[0];
    for (size_t i = 0; i < nopts; i++) {
        char env[64] = "SPAWND_";
        for (size_t k = 0; opts[i].name[k] && k + 8 < sizeof env; k++) {
            char c = opts[i].name[k];
            env[7 + k] = c == '-' ? '_' : (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
        }
        const char *v = getenv(env);
        if (v && set_opt(cfg, &opts[i], v, env) < 0) return CONFIG_BAD_USAGE;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CONFIG_EXIT_OK;
        }
        if (!strcmp(a, "--version")) {
            printf("spawnd %s (API 1)\n", SPAWND_VERSION);
            return CONFIG_EXIT_OK;
        }
        const struct opt *o = NULL;
        const char *val = NULL;
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            for (size_t k = 0; k < nopts; k++)
                if (strlen(opts[k].name) == nlen && !strncmp(opts[k].name, a + 2, nlen))
                    o = &opts[k];
            if (eq) val = eq + 1;
        }
        if (!o) {
            fprintf(stderr, "spawnd: unknown option \"%s\" (see spawnd --help)\n", a);
            return CONFIG_BAD_USAGE;
        }
        if (o->type != OPT_FLAG && !val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "spawnd: --%s needs a value (%s)\n", o->name, o->arg);
                return CONFIG_BAD_USAGE;
            }
            val = argv[++i];
        }
        char src[80];
        snprintf(src, sizeof src, "--%s", o->name);
        if (set_opt(cfg, o, val, src) < 0) return CONFIG_BAD_USAGE;
    }

    if (!config_host_is_loopback(cfg->listen_host) && !cfg->insecure) {
        fprintf(stderr,
                "spawnd: refusing to listen on non-loopback address %s without a token "
                "(pass --insecure to allow it)\n",
                cfg->listen_host);
        return CONFIG_BAD_USAGE;
    }
    return CONFIG_OK;
}
