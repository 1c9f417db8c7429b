#include "server/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/buf.h"
#include "executor/exec.h"
#include "server/http.h"

void metrics_job_started(struct metrics *m, enum api_kind kind)
{
    if ((unsigned)kind < API_JOB) m->started[kind]++;
}

void metrics_spawn_failed(struct metrics *m, const char *code)
{
    for (unsigned i = 0; i < m->nfailures; i++)
        if (strcmp(m->failures[i].code, code) == 0) {
            m->failures[i].n++;
            return;
        }
    unsigned i = m->nfailures < METRICS_MAX_CODES ? m->nfailures++ : METRICS_MAX_CODES - 1;
    if (i == METRICS_MAX_CODES - 1) code = "OTHER"; /* the table is full: lump the rest */
    snprintf(m->failures[i].code, sizeof m->failures[i].code, "%s", code);
    m->failures[i].n++;
}

void metrics_http(struct metrics *m, unsigned status)
{
    if (status < 600) m->http[status]++;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = -1; /* the directory's own descriptor */
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2; /* "." and ".." */
}

static long rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

static void help(struct buf *b, const char *name, const char *type, const char *text)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

enum MHD_Result metrics_handle(struct http_req *r)
{
    struct server *s = r->srv;
    struct metrics *m = &s->metrics;
    const struct exec_stats *x = exec_stats(s->ex);
    struct buf b;
    buf_init(&b, 1 << 20);

    help(&b, "spawnd_jobs_started_total", "counter", "Processes started, by kind of run.");
    for (int k = 0; k < API_JOB; k++)
        buf_printf(&b, "spawnd_jobs_started_total{kind=\"%s\"} %llu\n", api_kind_name(k),
                   (unsigned long long)m->started[k]);
    help(&b, "spawnd_jobs_running", "gauge", "Jobs whose processes have not all ended.");
    buf_printf(&b, "spawnd_jobs_running %u\n", exec_running(s->ex));
    help(&b, "spawnd_spawn_failures_total", "counter",
         "Runs that could not start, by error code.");
    for (unsigned i = 0; i < m->nfailures; i++)
        buf_printf(&b, "spawnd_spawn_failures_total{code=\"%s\"} %llu\n", m->failures[i].code,
                   (unsigned long long)m->failures[i].n);
    help(&b, "spawnd_http_requests_total", "counter", "HTTP requests answered, by status.");
    for (unsigned st = 0; st < 600; st++)
        if (m->http[st])
            buf_printf(&b, "spawnd_http_requests_total{code=\"%u\"} %llu\n", st,
                       (unsigned long long)m->http[st]);
    help(&b, "spawnd_job_duration_seconds", "histogram", "Time from start to end of a job.");
    uint64_t cum = 0;
    for (int i = 0; i <= EXEC_DURATION_BUCKETS; i++) {
        cum += x->duration_count[i];
        if (i < EXEC_DURATION_BUCKETS)
            buf_printf(&b, "spawnd_job_duration_seconds_bucket{le=\"%g\"} %llu\n",
                       exec_duration_bounds[i], (unsigned long long)cum);
        else
            buf_printf(&b, "spawnd_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                       (unsigned long long)cum);
    }
    buf_printf(&b, "spawnd_job_duration_seconds_sum %.6f\n", x->duration_sum);
    buf_printf(&b, "spawnd_job_duration_seconds_count %llu\n", (unsigned long long)cum);
    help(&b, "spawnd_output_bytes_total", "counter", "Bytes read from children, by stream.");
    buf_printf(&b, "spawnd_output_bytes_total{stream=\"stdout\"} %llu\n",
               (unsigned long long)x->stdout_bytes);
    buf_printf(&b, "spawnd_output_bytes_total{stream=\"stderr\"} %llu\n",
               (unsigned long long)x->stderr_bytes);
    buf_printf(&b, "spawnd_output_bytes_total{stream=\"channel\"} %llu\n",
               (unsigned long long)x->channel_bytes);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    help(&b, "process_open_fds", "gauge", "Open file descriptors.");
    buf_printf(&b, "process_open_fds %ld\n", open_fds());
    help(&b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    buf_printf(&b, "process_max_fds %llu\n", (unsigned long long)nofile.rlim_cur);
    help(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    buf_printf(&b, "process_resident_memory_bytes %ld\n", rss_bytes());
    help(&b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    buf_printf(&b, "process_cpu_seconds_total %.3f\n",
               (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    help(&b, "process_start_time_seconds", "gauge", "Start time since the epoch in seconds.");
    buf_printf(&b, "process_start_time_seconds %llu\n", (unsigned long long)m->start_wall_s);

    return http_respond(r, 200,
                        http_buffer_response(r, &b, "text/plain; version=0.0.4; charset=utf-8"));
}
