/* GET /metrics: Prometheus text whose counters follow what the server did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"

static struct srv S;

/* The value of a sample line "name{labels} value", or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return atof(p + n + 1);
    return -1;
}

int main(void)
{
    srv_start(&S, NULL);
    struct resp r;
    http_post_json(&S, "/v1/exec", "{\"command\":\"printf 12345\"}", &r);
    resp_free(&r);
    http_post_json(&S, "/v1/execFile", "{\"file\":\"no-such-program-xyz\"}", &r);
    resp_free(&r);
    http_post_json(&S, "/v1/spawn", "{\"command\":\"sh\",\"args\":[\"-c\",\"echo e >&2\"]}", &r);
    resp_free(&r);

    http_get(&S, "/metrics", &r);
    CHECK_INT(r.status, 200);
    CHECK_HAS(resp_header(&r, "Content-Type"), "text/plain; version=0.0.4");
    const char *t = r.body.data;
    CHECK_HAS(t, "# TYPE spawnd_jobs_started_total counter\n");
    CHECK(sample(t, "spawnd_jobs_started_total{kind=\"exec\"}") == 1);
    CHECK(sample(t, "spawnd_jobs_started_total{kind=\"spawn\"}") == 1);
    CHECK(sample(t, "spawnd_jobs_running") == 0);
    CHECK(sample(t, "spawnd_spawn_failures_total{code=\"ENOENT\"}") == 1);
    CHECK(sample(t, "spawnd_http_requests_total{code=\"200\"}") == 2);
    CHECK(sample(t, "spawnd_http_requests_total{code=\"422\"}") == 1);
    CHECK(sample(t, "spawnd_job_duration_seconds_count") == 2);
    CHECK(sample(t, "spawnd_job_duration_seconds_bucket{le=\"+Inf\"}") == 2);
    CHECK(sample(t, "spawnd_output_bytes_total{stream=\"stdout\"}") == 5);
    CHECK(sample(t, "spawnd_output_bytes_total{stream=\"stderr\"}") == 2);
    CHECK(sample(t, "process_open_fds") > 3);
    CHECK(sample(t, "process_resident_memory_bytes") > 0);
    /* Every line is a comment or "name[{labels}] number". */
    for (const char *p = t; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (*p == '#') continue;
        const char *sp = strchr(p, ' ');
        CHECK(sp && sp > p && (sp[1] == '-' || (sp[1] >= '0' && sp[1] <= '9')));
    }
    resp_free(&r);
    CHECK_INT(srv_stop(&S, 5000), 0);
    return check_status();
}
