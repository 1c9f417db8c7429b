/* metrics: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * Counters the HTTP side sees live here; what the executor sees (output
 * bytes, job durations) comes from exec_stats(). */
#ifndef SPAWND_METRICS_H
#define SPAWND_METRICS_H

#include <stdint.h>

#include "api/request.h"

#define METRICS_MAX_CODES 32

struct metrics {
    uint64_t started[API_JOB]; /* by kind */
    struct {
        char code[24];
        uint64_t n;
    } failures[METRICS_MAX_CODES];
    unsigned nfailures;
    uint64_t http[600]; /* by status */
    uint64_t start_wall_s;
};

struct http_req;

void metrics_job_started(struct metrics *m, enum api_kind kind);
/* A run that could not start: code is the errno name ("ENOENT"), or
 * "EPOLICY" / "EBUSY" for --allow / --max-jobs. */
void metrics_spawn_failed(struct metrics *m, const char *code);
void metrics_http(struct metrics *m, unsigned status);

#endif
