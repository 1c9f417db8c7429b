/* jobs: background jobs, their retained output and messages, and fork.
 *
 * A background job is an exec_job plus what the HTTP side keeps of it: an id,
 * its output events and its channel messages (each an evlog, so readers can
 * come late, resume with ?since= and follow live), and the requests waiting
 * on it (followers, waiters, a stdin upload), which are woken when something
 * happens.  Records are stored as the NDJSON lines readers get, with their
 * "seq" already in them, so serving them is a copy.
 *
 * A job stays in the table while it runs and --job-ttl-s seconds after it
 * ended (at most JOBS_MAX_ENDED ended jobs are kept; the oldest go first),
 * then it is forgotten. A reference count keeps it alive while a request
 * still reads it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/channel.h"
#include "api/encode.h"
#include "common/evlog.h"
#include "common/log.h"
#include "executor/exec.h"
#include "server/http.h"

#define JOBS_MAX_ENDED 1000

struct bgjob {
    struct jobs *jobs;
    int refs;
    bool listed;  /* in the table */
    bool deleted; /* DELETE: readers stop */
    char id[96];
    enum api_kind kind;
    enum api_encoding enc;
    struct exec_job *job;
    int64_t started_wall, ended_wall;
    struct evlog out, msgs;
    bool out_done, msgs_done;
    struct buf scratch; /* one encoded event */
    struct buf line;    /* an incomplete line from the channel */
    bool line_skip;     /* the rest of an over-long line is being dropped */
    bool paused;        /* a reader is far behind: the job waits for it */
    bool backpressure;  /* never drop output: wait for readers, even before the first */
    uint64_t delivered; /* the highest record any reader has been sent */
    size_t max_buffer;  /* exec/execFile: bytes per stream, as Node's maxBuffer */
    size_t taken[2];    /* stdout, stderr bytes so far */
    bool truncated;
    struct job_req *watchers;
    struct http_req *uploader; /* the one stdin upload in progress */
    struct loop_timer ttl;
    struct bgjob *prev, *next; /* newest first */
    size_t ndec;
    struct api_utf8 dec[]; /* [0] stdout, [1+i] stderr of step i */
};

struct jobs {
    struct server *srv;
    struct bgjob *head, *tail;
    unsigned nended;
};

enum jr_mode { JR_FOLLOW, JR_WAIT, JR_STDIN, JR_MESSAGES, JR_CREATE, JR_ANSWERED };

/* What a request does with a job. */
struct job_req {
    struct http_req *r;
    struct bgjob *j;
    enum jr_mode mode;
    bool messages;   /* JR_FOLLOW: the messages, not the output */
    bool follow;     /* JR_FOLLOW: wait for more until the end */
    uint64_t next;   /* JR_FOLLOW: the next record to send */
    struct buf part; /* JR_FOLLOW: the rest of a record too big for one read */
    size_t part_off;
    struct loop_timer timeout; /* JR_WAIT */
    int stdin_err;             /* JR_STDIN: why the rest of the body was dropped */
    struct buf enc;            /* JR_MESSAGES: one message as the channel takes it */
    uint64_t lines, sent;      /* JR_MESSAGES: lines done, messages queued */
    bool failed;               /* JR_MESSAGES: err is the answer; the rest is dropped */
    struct api_error err;
    struct job_req *wprev, *wnext;
};

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- the table ------------------------------------------------------------ */

struct jobs *jobs_new(struct server *s)
{
    struct jobs *js = calloc(1, sizeof *js);
    if (js) js->srv = s;
    return js;
}

static void bg_unref(struct bgjob *j)
{
    if (--j->refs) return;
    loop_timer_stop(j->jobs->srv->loop, &j->ttl);
    if (j->job) {
        exec_job_detach(j->job);
        exec_job_kill(j->job);
        exec_job_unref(j->job);
    }
    evlog_free(&j->out);
    evlog_free(&j->msgs);
    buf_free(&j->scratch);
    buf_free(&j->line);
    free(j);
}

static void wake_all(struct bgjob *j);
static void on_wait_timeout(struct loop_timer *t);

/* Take j out of the table; readers still holding it finish. */
static void unlist(struct bgjob *j)
{
    struct jobs *js = j->jobs;
    if (!j->listed) return;
    j->listed = false;
    if (j->prev) j->prev->next = j->next;
    else js->head = j->next;
    if (j->next) j->next->prev = j->prev;
    else js->tail = j->prev;
    if (j->out_done) js->nended--;
    loop_timer_stop(js->srv->loop, &j->ttl);
    bg_unref(j);
}

void jobs_free(struct jobs *js)
{
    if (!js) return;
    while (js->head)
        unlist(js->head);
    free(js);
}

static struct bgjob *find(struct jobs *js, const char *id)
{
    for (struct bgjob *j = js->head; j; j = j->next)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

static void on_ttl(struct loop_timer *t)
{
    struct bgjob *j = (struct bgjob *)((char *)t - offsetof(struct bgjob, ttl));
    log_info("msg=job.expired job=%s", j->id);
    unlist(j);
}

/* --- records -------------------------------------------------------------- */

/* Append the event in j->scratch (a line "{...}\n") to log as record N,
 * with "seq":N put first. */
static void record(struct bgjob *j, struct evlog *log)
{
    if (j->scratch.len < 2) return;
    char prefix[40] = "{\"seq\":";
    size_t n = 7 + fmt_u64(prefix + 7, log->next);
    prefix[n++] = ',';
    if (evlog_append(log, prefix, n, j->scratch.data + 1, j->scratch.len - 1) == 0)
        log_error("msg=\"out of memory keeping output\" job=%s", j->id);
    buf_reset(&j->scratch);
}

static void on_job_output(struct exec_job *job, void *ctx, enum exec_stream stream, size_t step,
                      const char *data, size_t n);
static void flow_check(struct bgjob *j);
static void on_job_exit(struct exec_job *job, void *ctx);
static void on_stdin_ready(struct exec_job *job, void *ctx);
static void on_spawned(struct exec_job *job, void *ctx, int e, const char *file);
static void on_channel_ready(struct exec_job *job, void *ctx);
static void on_channel_closed(struct exec_job *job, void *ctx);

static const struct exec_job_cb bg_cb = {
    .on_output = on_job_output,
    .on_exit = on_job_exit,
    .on_stdin_ready = on_stdin_ready,
    .on_spawned = on_spawned,
    .on_channel_ready = on_channel_ready,
    .on_channel_closed = on_channel_closed,
};

/* One line from the child's channel. */
static void channel_line(struct bgjob *j, const char *line, size_t n)
{
    switch (api_message_classify(line, n)) {
    case API_MESSAGE_USER:
        if (api_message_record(&j->scratch, line, n) == 0) record(j, &j->msgs);
        break;
    case API_MESSAGE_HANDLE:
        exec_job_send(j->job, API_MESSAGE_HANDLE_NACK, strlen(API_MESSAGE_HANDLE_NACK));
        break;
    case API_MESSAGE_INTERNAL:
        break;
    case API_MESSAGE_INVALID:
        log_warn("msg=\"invalid message from child dropped\" job=%s bytes=%zu", j->id, n);
        break;
    }
}

static void channel_bytes(struct bgjob *j, const char *data, size_t n)
{
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t k = nl ? (size_t)(nl - data) : n;
        if (j->line_skip) { /* the tail of a line already dropped */
            if (nl) j->line_skip = false;
        } else if (j->line.len || !nl) {
            if (buf_append(&j->line, data, k) < 0) {
                log_warn("msg=\"message over the size limit dropped\" job=%s", j->id);
                buf_free(&j->line);
                j->line_skip = !nl;
            } else if (nl) {
                channel_line(j, j->line.data, j->line.len);
                buf_reset(&j->line);
            }
        } else {
            channel_line(j, data, k);
        }
        if (!nl) return;
        data += k + 1;
        n -= k + 1;
    }
}

static void on_job_output(struct exec_job *job, void *ctx, enum exec_stream stream, size_t step,
                      const char *data, size_t n)
{
    struct bgjob *j = ctx;
    if (stream == EXEC_CHANNEL) {
        channel_bytes(j, data, n);
    } else if (!j->truncated) {
        bool pipeline = j->kind == API_PIPELINE;
        size_t di = stream == EXEC_STDOUT ? 0 : 1 + step;
        size_t *taken = &j->taken[stream == EXEC_STDOUT ? 0 : 1];
        bool over = j->max_buffer && n > j->max_buffer - *taken;
        if (over) n = j->max_buffer - *taken; /* keep exactly max_buffer bytes, as Node */
        *taken += n;
        api_event_output(&j->scratch, stream, pipeline && stream == EXEC_STDERR ? (long)step : -1,
                         data, n, j->enc, &j->dec[di]);
        record(j, &j->out);
        if (over) {
            j->truncated = true;
            api_event_maxbuffer(&j->scratch, stream);
            record(j, &j->out);
            exec_job_kill(job);
        }
        flow_check(j);
    }
    wake_all(j);
}

static void on_channel_closed(struct exec_job *job, void *ctx)
{
    struct bgjob *j = ctx;
    j->msgs_done = true;
    buf_free(&j->line);
    wake_all(j);
}

static void on_job_exit(struct exec_job *job, void *ctx)
{
    struct bgjob *j = ctx;
    struct jobs *js = j->jobs;
    bool pipeline = j->kind == API_PIPELINE;
    for (size_t i = 0; i < j->ndec; i++) {
        api_event_output(&j->scratch, i == 0 ? EXEC_STDOUT : EXEC_STDERR,
                         pipeline && i > 0 ? (long)(i - 1) : -1, NULL, 0, j->enc, &j->dec[i]);
        record(j, &j->out);
    }
    api_event_exit(&j->scratch, exec_job_info(job), pipeline);
    record(j, &j->out);
    j->out_done = j->msgs_done = true;
    j->ended_wall = wall_ns();
    if (j->listed) {
        js->nended++;
        loop_timer_start(js->srv->loop, &j->ttl, js->srv->cfg.job_ttl_s * 1000);
        /* Too many ended jobs: the oldest ended one goes. */
        for (struct bgjob *o = js->tail; js->nended > JOBS_MAX_ENDED && o; o = o->prev)
            if (o->out_done) {
                unlist(o);
                break;
            }
    }
    wake_all(j);
    server_check_stop(js->srv);
}

/* --- requests on a job ------------------------------------------------------ */

static struct job_req *jr_attach(struct http_req *r, struct bgjob *j, enum jr_mode mode)
{
    struct job_req *jr = calloc(1, sizeof *jr);
    if (!jr) return NULL;
    jr->r = r;
    jr->j = j;
    jr->mode = mode;
    buf_init(&jr->part, 64 * 1024 * 1024);
    loop_timer_init(&jr->timeout, on_wait_timeout);
    j->refs++;
    jr->wnext = j->watchers;
    if (j->watchers) j->watchers->wprev = jr;
    j->watchers = jr;
    r->jr = jr;
    return jr;
}

void jobs_release(struct http_req *r)
{
    struct job_req *jr = r->jr;
    if (!jr) return;
    r->jr = NULL;
    struct bgjob *j = jr->j;
    loop_timer_stop(r->srv->loop, &jr->timeout);
    if (jr->wprev) jr->wprev->wnext = jr->wnext;
    else j->watchers = jr->wnext;
    if (jr->wnext) jr->wnext->wprev = jr->wprev;
    if (j->uploader == r) j->uploader = NULL;
    buf_free(&jr->part);
    buf_free(&jr->enc);
    free(jr);
    if (j->job) flow_check(j); /* a lagging follower leaving lets the job go on */
    bg_unref(j);
}

static int encode_job(struct buf *b, struct bgjob *j)
{
    struct api_job_view v = {j->id, j->kind, j->enc, exec_job_info(j->job), j->started_wall,
                             j->ended_wall};
    return api_job_encode(b, &v);
}

static void wait_answer(struct job_req *jr)
{
    jr->mode = JR_ANSWERED;
    struct buf b;
    buf_init(&b, 64 * 1024);
    encode_job(&b, jr->j);
    http_prepare_json(jr->r, 200, &b);
    http_resume(jr->r);
}

/* Background jobs keep output for readers who come later and do not wait
 * for anyone: a reader that falls behind the retention limit gets a
 * "dropped" line (a stalled reader must not stall a job others follow).
 * A job started with "backpressure" (spawnctl run's) waits instead: while
 * its slowest live follower -- or, with none, the first reader still to
 * come -- is more than half the limit behind, the job is paused (its pipes
 * fill, the child blocks), and nothing not yet read is dropped. */
static void flow_check(struct bgjob *j)
{
    uint64_t worst = 0, pin = UINT64_MAX;
    for (struct job_req *jr = j->backpressure ? j->watchers : NULL; jr; jr = jr->wnext) {
        if (jr->mode != JR_FOLLOW || !jr->follow || jr->messages || jr->r->client_gone) continue;
        uint64_t b = evlog_behind(&j->out, jr->next) + (jr->part.len - jr->part_off);
        if (b != UINT64_MAX && b > worst) worst = b;
        if (b != UINT64_MAX && jr->next < pin) pin = jr->next;
    }
    if (pin == UINT64_MAX && j->backpressure) {
        pin = j->delivered + 1;
        worst = evlog_behind(&j->out, pin);
        if (worst == UINT64_MAX) worst = 0;
    }
    j->out.pin = pin;
    if (!j->paused && worst > j->out.cap / 2) {
        j->paused = true;
        exec_job_pause(j->job);
    } else if (j->paused && worst <= j->out.cap / 4) {
        j->paused = false;
        exec_job_resume(j->job);
    }
}

static void wake_all(struct bgjob *j)
{
    struct job_req *next;
    for (struct job_req *jr = j->watchers; jr; jr = next) {
        next = jr->wnext;
        if (jr->mode == JR_WAIT) {
            if (j->out_done) wait_answer(jr);
            else if (j->deleted) {
                jr->mode = JR_ANSWERED;
                http_prepare_error(jr->r, &(struct api_error){.code = API_ERR_NOT_FOUND,
                                                              .message = "the job was deleted"});
                http_resume(jr->r);
            }
        } else if (jr->mode == JR_FOLLOW || j->out_done || j->deleted ||
                   (jr->mode == JR_MESSAGES && j->msgs_done)) {
            http_resume(jr->r); /* a follower, or an upload that will find its pipe closed */
        }
    }
}

static void on_stdin_ready(struct exec_job *job, void *ctx)
{
    struct bgjob *j = ctx;
    if (j->uploader) http_resume(j->uploader);
}

static void on_channel_ready(struct exec_job *job, void *ctx)
{
    struct bgjob *j = ctx;
    for (struct job_req *jr = j->watchers; jr; jr = jr->wnext)
        if (jr->mode == JR_MESSAGES) http_resume(jr->r);
}

static void on_wait_timeout(struct loop_timer *t)
{
    struct job_req *jr = (struct job_req *)((char *)t - offsetof(struct job_req, timeout));
    jr->mode = JR_ANSWERED;
    struct api_error e = {.code = API_ERR_REQUEST_TIMEOUT};
    snprintf(e.message, sizeof e.message, "the job is still running");
    http_prepare_error(jr->r, &e);
    http_resume(jr->r);
}

static void on_client_gone(struct http_req *r)
{
    r->status = 499;
    http_resume(r);
}

/* The job named by the path, or answer 404. */
static struct bgjob *lookup(struct http_req *r)
{
    struct bgjob *j = find(r->srv->jobs, r->param);
    if (!j)
        http_respond_code(r, API_ERR_NOT_FOUND, "no such job: %.100s", r->param);
    return j;
}

/* ?name=true|false|absent. Returns 0/1, or -1 after answering 400. */
static int query_bool(struct http_req *r, const char *name)
{
    const char *v = http_query(r, name);
    if (!v || !strcmp(v, "false") || !strcmp(v, "0")) return 0;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !*v) return 1;
    http_respond_code(r, API_ERR_INVALID_ARG_VALUE, "?%s must be true or false", name);
    return -1;
}

/* ?name=N (non-negative integer); *out untouched when absent. */
static int query_uint(struct http_req *r, const char *name, uint64_t *out)
{
    const char *v = http_query(r, name);
    if (!v) return 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || *v == '-' || n > (1ull << 53)) {
        http_respond_code(r, API_ERR_INVALID_ARG_VALUE, "?%s must be a non-negative integer", name);
        return -1;
    }
    *out = n;
    return 0;
}

static int check_query(struct http_req *r, const char *const *allowed)
{
    struct api_error e;
    if (http_check_query(r, allowed, &e) == 0) return 0;
    http_respond_error(r, &e);
    return -1;
}

/* --- creating ---------------------------------------------------------------- */

static void new_id(struct jobs *js, char *out, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[18]; /* 144 random bits, 24 characters */
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) abort();
    const char *inst = js->srv->cfg.instance_id;
    size_t k = (size_t)snprintf(out, size, "%s%s", inst, *inst ? "." : ""), start = k;
    for (size_t i = 0; i < sizeof rnd && k + 4 < size; i += 3) {
        unsigned v = (unsigned)rnd[i] << 16 | (unsigned)rnd[i + 1] << 8 | rnd[i + 2];
        for (int s = 18; s >= 0; s -= 6)
            out[k++] = alphabet[(v >> s) & 63];
    }
    out[k] = 0;
    /* Never "-..." (it would read as an option on a command line). */
    if (out[start] == '-' || out[start] == '_') out[start] = alphabet[rnd[0] % 52];
}

static struct MHD_Response *created_response(struct http_req *r, struct bgjob *j);

/* j's program runs: into the table, the spawn event first in its output. */
static void job_listed(struct bgjob *j, const char *request_id)
{
    struct jobs *js = j->jobs;
    metrics_job_started(&js->srv->metrics, j->kind);
    j->started_wall = wall_ns();
    j->listed = true;
    j->next = js->head;
    if (js->head) js->head->prev = j;
    else js->tail = j;
    js->head = j;
    flow_check(j); /* with backpressure, everything from the first record is kept */
    api_event_spawn(&j->scratch, exec_job_info(j->job), j->kind == API_PIPELINE);
    record(j, &j->out);
    log_info("msg=job.created id=%s kind=%s request=%s", j->id, api_kind_name(j->kind),
             request_id);
}

static enum MHD_Result create(struct http_req *r, enum api_kind kind)
{
    struct server *s = r->srv;
    struct jobs *js = s->jobs;
    struct api_request req;
    struct api_error err;
    if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
    if (api_request_parse(kind, r->body.data ? r->body.data : "", r->body.len, &s->api, &req,
                          &err) < 0)
        return http_respond_error(r, &err);
    buf_free(&r->body);
    /* Without "stdin", a background job's stdin is a pipe fed by
     * POST /v1/jobs/{id}/stdin, as Node's spawn gives a pipe. */
    if (req.spec.stdin_mode == EXEC_STDIN_NULL) req.spec.stdin_mode = EXEC_STDIN_PIPE;
    size_t ndec = req.spec.nprocs + 1;
    struct bgjob *j = calloc(1, sizeof *j + ndec * sizeof j->dec[0]);
    if (!j) {
        api_request_free(&req);
        return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
    }
    j->jobs = js;
    j->refs = 1; /* the table's */
    j->kind = req.kind;
    j->enc = req.encoding;
    /* A background job's output is bounded by retention; max_buffer only
     * applies when asked for (then as Node's: past it the job is killed). */
    j->max_buffer = req.max_buffer_set ? req.max_buffer : 0;
    j->backpressure = req.backpressure;
    j->ndec = ndec;
    new_id(js, j->id, sizeof j->id);
    evlog_init(&j->out, s->cfg.job_output_bytes);
    evlog_init(&j->msgs, s->cfg.job_output_bytes);
    buf_init(&j->scratch, 8 * 1024 * 1024);
    buf_init(&j->line, s->cfg.max_body_bytes);
    loop_timer_init(&j->ttl, on_ttl);
    req.spec.label = j->id;
    int e = 0;
    size_t step = 0;
    j->job = exec_job_start(s->ex, &req.spec, &bg_cb, j, &e, &step);
    if (!j->job) {
        enum MHD_Result ret = run_start_failed(r, &req, e, step);
        api_request_free(&req);
        bg_unref(j);
        return ret;
    }
    api_request_free(&req);
    if (!exec_job_info(j->job)->pids[0]) {
        /* Handed to a spawner thread: on_spawned lists it and answers. Till
         * then the creating request holds the only reference: if it goes
         * away first, the job goes with it (nobody learnt its id). */
        if (!jr_attach(r, j, JR_CREATE)) {
            bg_unref(j);
            return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
        }
        bg_unref(j); /* the table's, taken again once listed */
        http_wait(r);
        return MHD_YES;
    }
    job_listed(j, r->id);
    return http_respond(r, 201, created_response(r, j));
}

/* The answer to the request that created j: 201, the job, its Location. */
static struct MHD_Response *created_response(struct http_req *r, struct bgjob *j)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    encode_job(&b, j);
    char loc[160];
    snprintf(loc, sizeof loc, "/v1/jobs/%s", j->id);
    struct MHD_Response *resp = http_json_response(r, &b);
    if (resp) MHD_add_response_header(resp, "Location", loc);
    return resp;
}

/* A background job whose spawn a spawner thread made (see exec.h): into
 * the table and answer its creator, or answer the creator what the spawn
 * failed with (the job is then freed with the creating request). */
static void on_spawned(struct exec_job *job, void *ctx, int e, const char *file)
{
    struct bgjob *j = ctx;
    struct job_req *creator = j->watchers;
    while (creator && creator->mode != JR_CREATE)
        creator = creator->wnext;
    struct http_req *r = creator ? creator->r : NULL;
    if (creator) creator->mode = JR_ANSWERED;
    if (e) {
        if (r) {
            run_spawn_failed(r, j->kind, file, e);
            http_resume(r);
        }
        return;
    }
    j->refs++; /* the table's */
    job_listed(j, r ? r->id : "-");
    if (r) {
        struct MHD_Response *resp = created_response(r, j);
        if (resp) http_prepare_response(r, 201, resp);
        else http_prepare_error(r, &(struct api_error){.code = API_ERR_UNAVAILABLE,
                                                        .message = "out of memory"});
        http_resume(r);
    }
}

enum MHD_Result jobs_create(struct http_req *r)
{
    return create(r, API_JOB);
}

enum MHD_Result jobs_fork(struct http_req *r)
{
    return create(r, API_FORK);
}

/* --- reading ---------------------------------------------------------------- */

enum MHD_Result jobs_list(struct http_req *r)
{
    if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
    struct buf b;
    buf_init(&b, 256 * 1024 * 1024);
    int rc = buf_appends(&b, "{\"jobs\":[");
    for (struct bgjob *j = r->srv->jobs->head; !rc && j; j = j->next) {
        if (j != r->srv->jobs->head) rc = buf_appendc(&b, ',');
        if (!rc) rc = encode_job(&b, j);
    }
    if (!rc) rc = buf_appends(&b, "]}");
    if (rc) {
        buf_free(&b);
        return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
    }
    return http_respond_json(r, 200, &b);
}

enum MHD_Result jobs_get(struct http_req *r)
{
    if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
    struct bgjob *j = lookup(r);
    if (!j) return MHD_YES;
    struct buf b;
    buf_init(&b, 64 * 1024);
    encode_job(&b, j);
    return http_respond_json(r, 200, &b);
}

static ssize_t follow_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct http_req *r = cls;
    struct job_req *jr = r->jr;
    if (!jr) return MHD_CONTENT_READER_END_WITH_ERROR;
    struct bgjob *j = jr->j;
    struct evlog *log = jr->messages ? &j->msgs : &j->out;
    size_t n = 0;
    if (j->deleted) return MHD_CONTENT_READER_END_OF_STREAM;
    /* A record bigger than what MHD takes at once is copied aside first: the
     * log may drop it before the reader has sent all of it. */
    while (n < max) {
        if (jr->part_off < jr->part.len) {
            size_t k = jr->part.len - jr->part_off < max - n ? jr->part.len - jr->part_off : max - n;
            memcpy(out + n, jr->part.data + jr->part_off, k);
            n += k;
            jr->part_off += k;
            if (jr->part_off == jr->part.len) {
                buf_reset(&jr->part);
                jr->part_off = 0;
            }
            continue;
        }
        uint64_t first = evlog_first(log);
        if (jr->next < first) {
            /* The retention limit dropped records this reader has not seen. */
            char line[64];
            int k = snprintf(line, sizeof line, "{\"event\":\"dropped\",\"count\":%llu}\n",
                             (unsigned long long)(first - jr->next));
            jr->next = first;
            buf_append(&jr->part, line, (size_t)k);
            continue;
        }
        const struct evlog_rec *rec = evlog_get(log, jr->next);
        if (!rec) break;
        jr->next++;
        if (rec->len <= max - n) {
            memcpy(out + n, rec->data, rec->len);
            n += rec->len;
        } else if (buf_append(&jr->part, rec->data, rec->len) < 0) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    if (n) {
        if (!jr->messages && jr->next - 1 > j->delivered) j->delivered = jr->next - 1;
        if (j->paused) flow_check(j);
        return (ssize_t)n;
    }
    bool done = jr->messages ? j->msgs_done : j->out_done;
    if (!jr->follow || done) return MHD_CONTENT_READER_END_OF_STREAM;
    if (r->client_gone) return MHD_CONTENT_READER_END_WITH_ERROR;
    http_suspend(r); /* woken by wake_all() */
    return 0;
}

static enum MHD_Result follow(struct http_req *r, bool messages)
{
    static const char *const keys[] = {"follow", "since", NULL};
    if (check_query(r, keys)) return MHD_YES;
    int fol = query_bool(r, "follow");
    uint64_t since = 0;
    if (fol < 0 || query_uint(r, "since", &since) < 0) return MHD_YES;
    struct bgjob *j = lookup(r);
    if (!j) return MHD_YES;
    if (messages && j->kind != API_FORK)
        return http_respond_code(r, API_ERR_CONFLICT, "job %s has no message channel", j->id);
    struct job_req *jr = jr_attach(r, j, JR_FOLLOW);
    if (!jr) return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
    jr->messages = messages;
    jr->follow = fol == 1;
    jr->next = since + 1;
    if (!messages) flow_check(j);
    struct MHD_Response *resp = http_stream_response(r, follow_read, "application/x-ndjson");
    if (!resp) return MHD_NO;
    if (jr->follow) http_watch_client(r, on_client_gone);
    return http_respond(r, 200, resp);
}

enum MHD_Result jobs_output(struct http_req *r)
{
    return follow(r, false);
}

enum MHD_Result jobs_messages_get(struct http_req *r)
{
    return follow(r, true);
}

enum MHD_Result jobs_wait(struct http_req *r)
{
    static const char *const keys[] = {"timeout_ms", NULL};
    if (check_query(r, keys)) return MHD_YES;
    uint64_t timeout = 0;
    if (query_uint(r, "timeout_ms", &timeout) < 0) return MHD_YES;
    struct bgjob *j = lookup(r);
    if (!j) return MHD_YES;
    struct job_req *jr = jr_attach(r, j, JR_WAIT);
    if (!jr) return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
    if (j->out_done) {
        struct buf b;
        buf_init(&b, 64 * 1024);
        encode_job(&b, j);
        return http_respond_json(r, 200, &b);
    }
    if (http_query(r, "timeout_ms")) loop_timer_start(r->srv->loop, &jr->timeout, timeout);
    http_watch_client(r, on_client_gone);
    http_wait(r);
    return MHD_YES;
}

/* --- acting on a job ---------------------------------------------------------- */

enum MHD_Result jobs_delete(struct http_req *r)
{
    if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
    struct bgjob *j = lookup(r);
    if (!j) return MHD_YES;
    exec_job_kill(j->job);
    j->deleted = true;
    log_info("msg=job.deleted id=%s", j->id);
    j->refs++;
    unlist(j);
    wake_all(j);
    bg_unref(j);
    return http_respond(r, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

enum MHD_Result jobs_signal(struct http_req *r)
{
    if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
    struct api_error err;
    int sig = 0;
    if (api_signal_parse(r->body.data ? r->body.data : "", r->body.len, &sig, &err) < 0)
        return http_respond_error(r, &err);
    struct bgjob *j = lookup(r);
    if (!j) return MHD_YES;
    int e = exec_job_signal(j->job, sig);
    if (e == -ESRCH)
        return http_respond_code(r, API_ERR_CONFLICT, "job %s has ended", j->id);
    if (e < 0) return http_respond_code(r, API_ERR_INTERNAL, "kill: %s", strerror(-e));
    struct buf b;
    buf_init(&b, 64 * 1024);
    encode_job(&b, j);
    return http_respond_json(r, 202, &b);
}

/* The stdin upload: bytes go to the pipe as it takes them; when it is full
 * the connection is suspended with the rest of the chunk left unconsumed,
 * and MHD hands it to us again once on_stdin_ready resumes us. */
enum MHD_Result jobs_stdin_upload(struct http_req *r, const char *data, size_t *size)
{
    struct job_req *jr = r->jr;
    if (!data) { /* the headers are in: find the job */
        static const char *const keys[] = {"close", NULL};
        if (check_query(r, keys) || query_bool(r, "close") < 0) return MHD_YES;
        struct bgjob *j = lookup(r);
        if (!j) return MHD_YES;
        if (j->uploader)
            return http_respond_code(r, API_ERR_CONFLICT, "another stdin upload is in progress");
        if (!exec_job_stdin_open(j->job))
            return http_respond_code(r, API_ERR_CONFLICT, "the job's stdin is closed");
        if (!jr_attach(r, j, JR_STDIN))
            return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
        j->uploader = r;
        r->stream = true;
        /* While the pipe is full the upload is suspended, where MHD would not
         * notice the client leaving. */
        http_watch_client(r, on_client_gone);
        return MHD_YES;
    }
    if (!jr || jr->stdin_err) { /* the child's stdin is gone: drop the rest */
        *size = 0;
        return MHD_YES;
    }
    ssize_t n = exec_job_write_stdin(jr->j->job, data, *size);
    if (n < 0) {
        jr->stdin_err = (int)-n;
        *size = 0;
        return MHD_YES;
    }
    *size -= (size_t)n;
    if (*size) http_suspend(r);
    return MHD_YES;
}

enum MHD_Result jobs_stdin(struct http_req *r)
{
    struct job_req *jr = r->jr;
    if (jr->stdin_err)
        return http_respond_code(r, API_ERR_CONFLICT,
                                 "the job's stdin closed before the whole body was written (%s)",
                                 strerror(jr->stdin_err));
    if (query_bool(r, "close") == 1) exec_job_close_stdin(jr->j->job);
    return http_respond(r, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

static void messages_fail(struct job_req *jr, enum api_code code, const char *why)
{
    jr->failed = true;
    jr->err.code = code;
    jr->err.field[0] = 0;
    snprintf(jr->err.message, sizeof jr->err.message,
             "line %llu: %.160s; the %llu messages before it were queued",
             (unsigned long long)jr->lines + 1, why, (unsigned long long)jr->sent);
}

/* One line of an NDJSON upload: queue it as a message (a blank line is
 * skipped). Returns 0 when the line is done, -ENOBUFS when the channel's
 * queue is full (try the same line again later), -1 after messages_fail. */
static int messages_line(struct job_req *jr, const char *line, size_t n)
{
    size_t max = jr->r->srv->cfg.max_body_bytes;
    if (n > max) {
        char why[96];
        snprintf(why, sizeof why, "a message over %zu bytes", max);
        messages_fail(jr, API_ERR_PAYLOAD_TOO_LARGE, why);
        return -1;
    }
    if (n && line[n - 1] == '\r') n--;
    size_t blank = 0;
    while (blank < n && (line[blank] == ' ' || line[blank] == '\t'))
        blank++;
    if (blank == n) {
        jr->lines++;
        return 0;
    }
    jr->enc.len = 0;
    struct api_error err;
    if (api_message_encode(&jr->enc, line, n, &err) < 0) {
        messages_fail(jr, err.code, err.message);
        return -1;
    }
    int e = exec_job_send(jr->j->job, jr->enc.data, jr->enc.len);
    if (e == -ENOBUFS) return e;
    if (e == -EPIPE) messages_fail(jr, API_ERR_CONFLICT, "the channel is closed");
    else if (e < 0) messages_fail(jr, API_ERR_UNAVAILABLE, "out of memory");
    if (e < 0) return -1;
    jr->lines++;
    jr->sent++;
    return 0;
}

/* POST .../messages with Content-Type: application/x-ndjson: one message
 * per line, each queued for the child as soon as its line is in, so one
 * open request carries any number of messages without an HTTP exchange
 * each. While the channel's queue is full the upload is suspended with the
 * rest of the body unconsumed; MHD presents it again once on_channel_ready
 * resumes us. A line split across reads waits in jr->part. */
enum MHD_Result jobs_messages_upload(struct http_req *r, const char *data, size_t *size)
{
    struct job_req *jr = r->jr;
    if (!data) {
        if (!http_content_type_is(r, "application/x-ndjson")) return MHD_YES; /* one message */
        if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
        struct bgjob *j = lookup(r);
        if (!j) return MHD_YES;
        if (!exec_job_channel_open(j->job))
            return http_respond_code(r, API_ERR_CONFLICT, "the channel of job %s is closed", j->id);
        jr = jr_attach(r, j, JR_MESSAGES);
        if (!jr) return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
        buf_init(&jr->part, r->srv->cfg.max_body_bytes);
        buf_init(&jr->enc, r->srv->cfg.max_body_bytes + 2);
        r->stream = true;
        http_watch_client(r, on_client_gone);
        return MHD_YES;
    }
    const char *p = data, *end = data + *size;
    while (p < end && !jr->failed && !r->client_gone) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl ? nl : end) - p), had = jr->part.len;
        if (had || !nl) {
            if (buf_append(&jr->part, p, seg) < 0) {
                messages_line(jr, p, SIZE_MAX); /* over the limit: fails */
                break;
            }
            if (!nl) {
                p = end;
                break;
            }
        }
        int e = had ? messages_line(jr, jr->part.data, jr->part.len) : messages_line(jr, p, seg);
        if (e == -ENOBUFS) {
            jr->part.len = had;
            http_suspend(r);
            break;
        }
        jr->part.len = 0;
        p = nl + 1;
    }
    /* After a failure (or with the client gone) the rest is dropped. */
    *size = jr->failed || r->client_gone ? 0 : (size_t)(end - p);
    return MHD_YES;
}

static enum MHD_Result messages_answer(struct http_req *r, struct job_req *jr)
{
    /* The last line may come without its newline. */
    if (!jr->failed && jr->part.len &&
        messages_line(jr, jr->part.data, jr->part.len) == -ENOBUFS)
        messages_fail(jr, API_ERR_UNAVAILABLE, "the child is not reading its channel");
    if (jr->failed) return http_respond_error(r, &jr->err);
    struct buf ok;
    buf_init(&ok, 64);
    char text[64];
    snprintf(text, sizeof text, "{\"queued\":true,\"count\":%llu}", (unsigned long long)jr->sent);
    buf_appends(&ok, text);
    return http_respond_json(r, 202, &ok);
}

enum MHD_Result jobs_messages_post(struct http_req *r)
{
    if (r->jr && r->jr->mode == JR_MESSAGES) return messages_answer(r, r->jr);
    if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
    struct bgjob *j = lookup(r);
    if (!j) return MHD_YES;
    struct api_error err;
    struct buf b;
    buf_init(&b, r->srv->cfg.max_body_bytes + 2);
    if (api_message_encode(&b, r->body.data ? r->body.data : "", r->body.len, &err) < 0) {
        buf_free(&b);
        return http_respond_error(r, &err);
    }
    int e = exec_job_send(j->job, b.data, b.len);
    buf_free(&b);
    if (e == -EPIPE)
        return http_respond_code(r, API_ERR_CONFLICT, "the channel of job %s is closed", j->id);
    if (e == -ENOMEM) return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
    if (e == -ENOBUFS) {
        struct api_error full = {.code = API_ERR_UNAVAILABLE};
        snprintf(full.message, sizeof full.message,
                 "the child is not reading its channel: %d bytes are queued", EXEC_CHANNEL_QUEUE);
        return http_respond_error(r, &full);
    }
    struct buf ok;
    buf_init(&ok, 64);
    buf_appends(&ok, "{\"queued\":true}");
    return http_respond_json(r, 202, &ok);
}

enum MHD_Result jobs_messages_delete(struct http_req *r)
{
    if (check_query(r, (const char *const[]){NULL})) return MHD_YES;
    struct bgjob *j = lookup(r);
    if (!j) return MHD_YES;
    exec_job_close_channel(j->job);
    return http_respond(r, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}
