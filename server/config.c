#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_LISTEN, OPT_UINT, OPT_FLAG, OPT_NAME, OPT_PATH, OPT_LIST };

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
    {"token-file", OPT_PATH, offsetof(struct server_config, token_file), 0, 0, "FILE",
     "accepted bearer tokens, one per line; re-read on SIGHUP (SPAWND_TOKEN gives one)"},
    {"tls-cert", OPT_PATH, offsetof(struct server_config, tls_cert), 0, 0, "FILE",
     "serve HTTPS (TLS 1.2+) with this PEM certificate chain (needs --tls-key)"},
    {"tls-key", OPT_PATH, offsetof(struct server_config, tls_key), 0, 0, "FILE",
     "the PEM private key of --tls-cert"},
    {"allow", OPT_LIST, offsetof(struct server_config, allow), 0, 0, "PROGRAM",
     "repeatable: only these programs may run (after PATH lookup and realpath)"},
    {"env-allow", OPT_LIST, offsetof(struct server_config, env_allow), 0, 0, "NAME",
     "repeatable: the children's default environment keeps only these variables"},
    {"rlimit", OPT_LIST, offsetof(struct server_config, rlimits), 0, 0, "NAME=VALUE",
     "repeatable: a resource limit for every child (nofile nproc as cpu fsize core)"},
    {"max-connections", OPT_UINT, offsetof(struct server_config, max_connections), 1, 1000000, "N",
     "open HTTP connections at most (default 8192)"},
    {"max-connections-per-ip", OPT_UINT, offsetof(struct server_config, max_connections_per_ip), 0,
     1000000, "N", "open HTTP connections per client address; 0 = no limit (default 0)"},
    {"request-timeout-ms", OPT_UINT, offsetof(struct server_config, request_timeout_ms), 100,
     3600000, "MS", "deadline for receiving a request's headers and JSON body (default 10000)"},
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

void config_free(struct server_config *cfg)
{
    struct strlist *lists[] = {&cfg->allow, &cfg->env_allow, &cfg->rlimits};
    for (size_t i = 0; i < 3; i++) {
        for (size_t k = 0; k < lists[i]->n; k++)
            free(lists[i]->v[k]);
        free(lists[i]->v);
        lists[i]->v = NULL;
        lists[i]->n = 0;
    }
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
    if (o->type == OPT_PATH) {
        if (!*v || strlen(v) >= 4096) {
            fprintf(stderr, "spawnd: %s: expected a file name\n", src);
            return -1;
        }
        strcpy((char *)cfg + o->off, v);
        return 0;
    }
    if (o->type == OPT_LIST) {
        struct strlist *l = (struct strlist *)((char *)cfg + o->off);
        char **nv = realloc(l->v, (l->n + 2) * sizeof *nv);
        if (!nv || !*v) {
            fprintf(stderr, "spawnd: %s: expected a value\n", src);
            return -1;
        }
        l->v = nv;
        l->v[l->n++] = strdup(v);
        l->v[l->n] = NULL;
        return 0;
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

/* The flag at argv[*i] (and its value, which may be the next argument). */
static enum config_result next_flag(int argc, char **argv, int *i, const struct opt **out,
                                    const char **val)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        usage(stdout);
        return CONFIG_EXIT_OK;
    }
    if (!strcmp(a, "--version")) {
        printf("spawnd %s (API 1)\n", SPAWND_VERSION);
        return CONFIG_EXIT_OK;
    }
    const struct opt *o = NULL;
    *val = NULL;
    if (a[0] == '-' && a[1] == '-') {
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strlen(opts[k].name) == nlen && !strncmp(opts[k].name, a + 2, nlen)) o = &opts[k];
        if (eq) *val = eq + 1;
    }
    if (!o) {
        fprintf(stderr, "spawnd: unknown option \"%s\" (see spawnd --help)\n", a);
        return CONFIG_BAD_USAGE;
    }
    if (o->type != OPT_FLAG && !*val) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "spawnd: --%s needs a value (%s)\n", o->name, o->arg);
            return CONFIG_BAD_USAGE;
        }
        *val = argv[++*i];
    }
    *out = o;
    return CONFIG_OK;
}

enum config_result config_parse(struct server_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg); /* the lists start empty */
    strcpy(cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    cfg->max_jobs = 256;
    cfg->kill_grace_ms = 5000;
    cfg->max_body_bytes = 1048576;
    cfg->job_ttl_s = 300;
    cfg->job_output_bytes = 1048576;
    cfg->max_connections = 8192;
    cfg->request_timeout_ms = 10000;

    /* Flags win over the environment: see which options the flags give
     * first, so a bad environment value they override does not matter. */
    size_t nopts = sizeof opts / sizeof opts[0];
    bool given[sizeof opts / sizeof opts[0]] = {false};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const struct opt *o = NULL;
            const char *val = NULL;
            enum config_result r = next_flag(argc, argv, &i, &o, &val);
            if (r != CONFIG_OK) return r;
            if (pass == 0) {
                given[o - opts] = true;
                continue;
            }
            char src[80];
            snprintf(src, sizeof src, "--%s", o->name);
            if (set_opt(cfg, o, val, src) < 0) return CONFIG_BAD_USAGE;
        }
        if (pass == 1) break;
        for (size_t i = 0; i < nopts; i++) {
            if (given[i]) continue;
            char env[64] = "SPAWND_";
            for (size_t k = 0; opts[i].name[k] && k + 8 < sizeof env; k++) {
                char c = opts[i].name[k];
                env[7 + k] = c == '-' ? '_' : (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
            }
            const char *v = getenv(env);
            if (!v) continue;
            if (opts[i].type != OPT_LIST) {
                if (set_opt(cfg, &opts[i], v, env) < 0) return CONFIG_BAD_USAGE;
                continue;
            }
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (set_opt(cfg, &opts[i], t, env) < 0) {
                    free(copy);
                    return CONFIG_BAD_USAGE;
                }
            free(copy);
        }
    }
    cfg->token = getenv("SPAWND_TOKEN");
    if (cfg->token && !*cfg->token) cfg->token = NULL;

    if (!config_host_is_loopback(cfg->listen_host) && !cfg->insecure && !cfg->token &&
        !*cfg->token_file) {
        fprintf(stderr,
                "spawnd: refusing to listen on non-loopback address %s without a token "
                "(give --token-file or SPAWND_TOKEN, or pass --insecure)\n",
                cfg->listen_host);
        return CONFIG_BAD_USAGE;
    }
    if (!*cfg->tls_cert != !*cfg->tls_key) {
        fprintf(stderr, "spawnd: --tls-cert and --tls-key go together\n");
        return CONFIG_BAD_USAGE;
    }
    return CONFIG_OK;
}
