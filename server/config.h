/* config: spawnd's command line and its SPAWND_* environment forms. */
#ifndef SPAWND_CONFIG_H
#define SPAWND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A repeatable option's values (flags first, else the environment's
 * comma-separated list). */
struct strlist {
    char **v;
    size_t n;
};

struct server_config {
    char listen_host[256]; /* as written: "127.0.0.1", "::1", "0.0.0.0" */
    unsigned listen_port;
    bool insecure;
    uint64_t max_jobs;
    uint64_t kill_grace_ms;
    uint64_t max_timeout_ms;
    uint64_t max_body_bytes;
    uint64_t job_ttl_s;        /* how long an ended background job stays readable */
    uint64_t job_output_bytes; /* output (and messages) retained per background job */
    char instance_id[64];      /* prefix of job ids; "" for none */
    char token_file[4096];     /* "" for none */
    const char *token;         /* SPAWND_TOKEN, or NULL */
    char tls_cert[4096], tls_key[4096];
    struct strlist allow;      /* --allow PROGRAM */
    struct strlist env_allow;  /* --env-allow NAME */
    struct strlist rlimits;    /* --rlimit NAME=VALUE */
    uint64_t max_connections;
    uint64_t max_connections_per_ip;
    uint64_t request_timeout_ms; /* deadline for a request's headers and body */
};

enum config_result { CONFIG_OK, CONFIG_EXIT_OK, CONFIG_BAD_USAGE };

/* Fill cfg from the defaults, then the environment (SPAWND_LISTEN, ...), then
 * argv (flags win). --help and --version print and return CONFIG_EXIT_OK; a
 * bad command line prints one line on stderr and returns CONFIG_BAD_USAGE. */
enum config_result config_parse(struct server_config *cfg, int argc, char **argv);

void config_free(struct server_config *cfg);

/* True when host is a loopback address or name. */
bool config_host_is_loopback(const char *host);

#endif
