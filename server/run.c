/* run: the endpoints that run processes.
 *
 * exec and execFile collect the output (up to max_buffer per stream, as
 * Node does) and answer one JSON result when the job is over.  spawn and
 * pipeline answer at once with a stream that follows the job: NDJSON events,
 * or with ?format=raw the stdout bytes themselves and the exit status in
 * HTTP trailers.  A stream's buffer is bounded: past STREAM_HIGH bytes not
 * yet taken by the client the executor stops reading the child's pipes, so a
 * slow reader slows the child instead of growing spawnd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/encode.h"
#include "common/log.h"
#include "common/signame.h"
#include "executor/exec.h"
#include "server/http.h"

#define STREAM_HIGH (256 * 1024)    /* pause reading the child past this */
#define STREAM_LOW (64 * 1024)      /* and resume below this */
#define STREAM_CAP (2 * 1024 * 1024) /* hard cap: HIGH + one 256 KiB read's worst-case
                                      * encoding (6 bytes per byte, \u00XX) */

struct run_state {
    struct exec_job *job;
    enum api_kind kind;
    enum api_encoding encoding;
    size_t max_buffer;
    /* exec/execFile: the collected output */
    struct buf out, err;
    int truncated;
    /* spawn/pipeline: the stream */
    bool raw, merge, done;
    struct MHD_Response *resp;
    struct buf sbuf;
    size_t soff;
    size_t ndec;
    struct api_utf8 dec[]; /* [0] stdout, [1+i] stderr of step i */
};

static void stop_watching(struct http_req *r)
{
    loop_watch_del(r->srv->loop, &r->hup);
}

void run_release(struct http_req *r)
{
    struct run_state *st = r->run;
    if (!st) return;
    r->run = NULL;
    if (st->job) {
        exec_job_detach(st->job);
        exec_job_kill(st->job); /* no effect once it is over */
        exec_job_unref(st->job);
    }
    buf_free(&st->out);
    buf_free(&st->err);
    buf_free(&st->sbuf);
    free(st);
}

static void on_client_gone(struct http_req *r)
{
    struct run_state *st = r->run;
    log_info("msg=client_gone id=%s", r->id);
    if (st && st->job) exec_job_kill(st->job);
    r->status = 499; /* as nginx logs it: the client closed the request */
    http_resume(r);  /* MHD finds the socket closed and completes the request */
}

/* --- exec and execFile: collect, then answer ------------------------------- */

static void collect_output(struct exec_job *job, void *ctx, enum exec_stream stream, size_t step,
                           const char *data, size_t n)
{
    struct http_req *r = ctx;
    struct run_state *st = r->run;
    struct buf *b = stream == EXEC_STDOUT ? &st->out : &st->err;
    if (st->truncated) return; /* the child is being killed; Node stops here too */
    size_t room = st->max_buffer - b->len;
    if (buf_append(b, data, n < room ? n : room) < 0) {
        log_error("msg=\"out of memory collecting output\" id=%s", r->id);
        exec_job_kill(job);
        return;
    }
    if (n > room) {
        st->truncated = stream;
        exec_job_kill(job);
    }
}

static void collect_exit(struct exec_job *job, void *ctx)
{
    struct http_req *r = ctx;
    struct run_state *st = r->run;
    stop_watching(r);
    if (r->client_gone) return; /* nobody to answer; the request is closing */
    struct buf b;
    buf_init(&b, 2 * st->max_buffer * 6 + 4096);
    struct api_exec_result res = {
        .info = exec_job_info(job),
        .out = st->out.data ? st->out.data : "",
        .out_len = st->out.len,
        .err = st->err.data ? st->err.data : "",
        .err_len = st->err.len,
        .encoding = st->encoding,
        .truncated_stream = st->truncated,
    };
    if (api_exec_result_encode(&b, &res) < 0) {
        buf_free(&b);
        struct api_error e = {.code = API_ERR_INTERNAL};
        snprintf(e.message, sizeof e.message, "out of memory encoding the result");
        http_prepare_error(r, &e);
    } else {
        http_prepare_json(r, 200, &b);
    }
    buf_free(&st->out);
    buf_free(&st->err);
    http_resume(r);
    server_check_stop(r->srv);
}

static unsigned spawn_failure(struct http_req *r, enum api_kind kind, const char *file, int e,
                              size_t step, struct api_error *err, struct buf *body);

static void run_spawned(struct exec_job *job, void *ctx, int e, const char *file);

static const struct exec_job_cb collect_cb = {
    .on_output = collect_output, .on_exit = collect_exit, .on_spawned = run_spawned};

/* --- spawn and pipeline: stream ------------------------------------------ */

static void stream_wake(struct http_req *r)
{
    struct run_state *st = r->run;
    http_resume(r);
    if (st->job && st->sbuf.len - st->soff >= STREAM_HIGH) exec_job_pause(st->job);
}

static void stream_output(struct exec_job *job, void *ctx, enum exec_stream stream, size_t step,
                          const char *data, size_t n)
{
    struct http_req *r = ctx;
    struct run_state *st = r->run;
    int rc = 0;
    if (st->raw) {
        if (stream == EXEC_STDOUT || st->merge) rc = buf_append(&st->sbuf, data, n);
    } else {
        bool pipeline = st->kind == API_PIPELINE;
        size_t di = stream == EXEC_STDOUT ? 0 : 1 + step;
        rc = api_event_output(&st->sbuf, stream, pipeline && stream == EXEC_STDERR ? (long)step : -1,
                              data, n, st->encoding, &st->dec[di]);
    }
    if (rc < 0) { /* cannot happen while the pause keeps us under the cap */
        log_error("msg=\"stream buffer overflow\" id=%s", r->id);
        exec_job_kill(job);
    }
    stream_wake(r);
}

static void stream_exit(struct exec_job *job, void *ctx)
{
    struct http_req *r = ctx;
    struct run_state *st = r->run;
    const struct exec_job_info *info = exec_job_info(job);
    stop_watching(r);
    if (!st->raw) {
        bool pipeline = st->kind == API_PIPELINE;
        for (size_t i = 0; i < st->ndec; i++) /* a dangling partial character */
            api_event_output(&st->sbuf, i == 0 ? EXEC_STDOUT : EXEC_STDERR,
                             pipeline && i > 0 ? (long)(i - 1) : -1, NULL, 0, st->encoding,
                             &st->dec[i]);
        api_event_exit(&st->sbuf, info, pipeline);
    } else {
        const struct exec_status *es = &info->status[info->nprocs - 1];
        char code[16] = "null";
        if (!es->signal) snprintf(code, sizeof code, "%d", es->exit_code);
        const char *sig = es->signal ? sig_name(es->signal) : NULL;
        MHD_add_response_footer(st->resp, "Spawnd-Exit-Code", code);
        MHD_add_response_footer(st->resp, "Spawnd-Signal", sig ? sig : "null");
    }
    st->done = true;
    http_resume(r);
    server_check_stop(r->srv);
}

static const struct exec_job_cb stream_cb = {
    .on_output = stream_output, .on_exit = stream_exit, .on_spawned = run_spawned};

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct http_req *r = cls;
    struct run_state *st = r->run;
    if (!st) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t avail = st->sbuf.len - st->soff;
    if (avail) {
        size_t n = avail < max ? avail : max;
        memcpy(out, st->sbuf.data + st->soff, n);
        st->soff += n;
        if (st->soff == st->sbuf.len) {
            buf_reset(&st->sbuf);
            st->soff = 0;
        } else if (st->soff >= STREAM_LOW) {
            buf_consume(&st->sbuf, st->soff);
            st->soff = 0;
        }
        if (st->job && st->sbuf.len - st->soff < STREAM_LOW) exec_job_resume(st->job);
        return (ssize_t)n;
    }
    if (st->done) return MHD_CONTENT_READER_END_OF_STREAM;
    if (r->client_gone) return MHD_CONTENT_READER_END_WITH_ERROR;
    /* Nothing to send yet: the only time a reader may return 0 is right
     * after suspending, or MHD would call it again at once, forever. The
     * executor resumes us when output or the exit arrives. */
    http_suspend(r);
    return 0;
}

/* The answer of a stream whose program runs: 200, and the spawn event
 * first (NDJSON), or the raw bytes with the exit status in trailers. */
static struct MHD_Response *stream_response(struct http_req *r)
{
    struct run_state *st = r->run;
    if (!st->raw) api_event_spawn(&st->sbuf, exec_job_info(st->job), st->kind == API_PIPELINE);
    struct MHD_Response *resp = http_stream_response(
        r, stream_read, st->raw ? "application/octet-stream" : "application/x-ndjson");
    if (!resp) return NULL;
    st->resp = resp;
    if (st->raw) MHD_add_response_header(resp, "Trailer", "Spawnd-Exit-Code, Spawnd-Signal");
    return resp;
}

/* --- starting a run ------------------------------------------------------ */

static int parse_stream_query(struct http_req *r, struct run_state *st, struct api_error *err)
{
    static const char *const spawn_keys[] = {"format", "stderr", NULL};
    static const char *const none[] = {NULL};
    if (http_check_query(r, st->kind == API_SPAWN ? spawn_keys : none, err) < 0) return -1;
    if (st->kind != API_SPAWN) return 0;
    const char *f = http_query(r, "format"), *e = http_query(r, "stderr");
    if (f && strcmp(f, "raw") && strcmp(f, "ndjson"))
        return api_error_set(err, API_ERR_INVALID_ARG_VALUE, "format",
                             "format must be \"ndjson\" or \"raw\"");
    st->raw = f && !strcmp(f, "raw");
    if (e && (!st->raw || (strcmp(e, "merge") && strcmp(e, "discard"))))
        return api_error_set(err, API_ERR_INVALID_ARG_VALUE, "stderr",
                             "stderr must be \"merge\" or \"discard\", with format=raw");
    st->merge = e && !strcmp(e, "merge");
    return 0;
}

/* The answer to a spawn that failed with e (file: the program of step
 * `step`, as the caller named it): 422 with the spawn error in *body, or
 * another status with *err filled (body untouched). */
static unsigned spawn_failure(struct http_req *r, enum api_kind kind, const char *file, int e,
                              size_t step, struct api_error *err, struct buf *body)
{
    struct server *s = r->srv;
    metrics_spawn_failed(&s->metrics, e == -EBUSY        ? "EBUSY"
                                      : e == -EXEC_EPOLICY ? "EPOLICY"
                                                           : api_errno_name(-e));
    err->field[0] = 0;
    if (e == -EBUSY) {
        err->code = API_ERR_TOO_MANY_JOBS;
        snprintf(err->message, sizeof err->message, "%llu jobs are running (--max-jobs)",
                 (unsigned long long)s->cfg.max_jobs);
        return 0;
    }
    if (e == -EXEC_EPOLICY) {
        err->code = API_ERR_FORBIDDEN;
        snprintf(err->message, sizeof err->message, "%.200s is not an allowed program (--allow)",
                 file);
        return 0;
    }
    if (e == -EMFILE || e == -ENFILE || e == -ENOMEM) {
        err->code = API_ERR_UNAVAILABLE;
        snprintf(err->message, sizeof err->message, "spawnd is out of resources: %s",
                 strerror(-e));
        return 0;
    }
    log_info("msg=spawn_failed id=%s file=%s code=%s", r->id, file, api_errno_name(-e));
    buf_init(body, 64 * 1024);
    api_spawn_error_encode(body, e, file, kind == API_PIPELINE ? (long)step : -1);
    return 422;
}

/* A spawn made on a spawner thread (see exec.h) has started, or could not:
 * a stream answers now; a failure gets the answer exec_job_start's own
 * would have got. exec/execFile otherwise answer when the job ends. */
static void run_spawned(struct exec_job *job, void *ctx, int e, const char *file)
{
    struct http_req *r = ctx;
    struct run_state *st = r->run;
    if (!e) {
        metrics_job_started(&r->srv->metrics, st->kind);
        if (st->kind != API_SPAWN && st->kind != API_PIPELINE) return;
        struct MHD_Response *resp = stream_response(r);
        if (resp) {
            http_prepare_response(r, 200, resp);
        } else {
            exec_job_kill(job);
            http_prepare_error(r, &(struct api_error){.code = API_ERR_UNAVAILABLE,
                                                      .message = "out of memory"});
        }
        http_resume(r);
        return;
    }
    stop_watching(r);
    if (r->client_gone) return;
    run_spawn_failed(r, st->kind, file, e);
    http_resume(r);
    server_check_stop(r->srv);
}

void run_spawn_failed(struct http_req *r, enum api_kind kind, const char *file, int e)
{
    struct api_error err;
    struct buf b;
    if (spawn_failure(r, kind, file, e, 0, &err, &b) == 422) http_prepare_json(r, 422, &b);
    else http_prepare_error(r, &err);
}

enum MHD_Result run_start_failed(struct http_req *r, const struct api_request *req, int e,
                                 size_t step)
{
    struct api_error err;
    struct buf b;
    if (spawn_failure(r, req->kind, req->spec.procs[step].file, e, step, &err, &b) == 422)
        return http_respond_json(r, 422, &b);
    return http_respond_error(r, &err);
}

static enum MHD_Result run_start(struct http_req *r, enum api_kind kind)
{
    struct server *s = r->srv;
    struct api_request req;
    struct api_error err;
    bool stream = kind == API_SPAWN || kind == API_PIPELINE;

    if (api_request_parse(kind, r->body.data ? r->body.data : "", r->body.len, &s->api, &req,
                          &err) < 0)
        return http_respond_error(r, &err);
    buf_free(&r->body);
    size_t ndec = stream ? req.spec.nprocs + 1 : 0;
    struct run_state *st = calloc(1, sizeof *st + ndec * sizeof st->dec[0]);
    if (!st) {
        api_request_free(&req);
        return http_respond_code(r, API_ERR_UNAVAILABLE, "out of memory");
    }
    st->kind = kind;
    st->encoding = req.encoding;
    st->max_buffer = req.max_buffer;
    st->ndec = ndec;
    buf_init(&st->out, req.max_buffer);
    buf_init(&st->err, req.max_buffer);
    buf_init(&st->sbuf, STREAM_CAP);
    if (stream && parse_stream_query(r, st, &err) < 0) {
        api_request_free(&req);
        free(st);
        return http_respond_error(r, &err);
    }

    req.spec.label = r->id;
    /* A stream moves big outputs: a deeper pipe means fewer, fuller reads
     * and wake-ups per megabyte (measured: raw streaming +5-8%). */
    if (stream) req.spec.stdout_pipe_size = 1024 * 1024;
    int e = 0;
    size_t step = 0;
    r->run = st;
    st->job = exec_job_start(s->ex, &req.spec, stream ? &stream_cb : &collect_cb, r, &e, &step);
    if (!st->job) {
        r->run = NULL;
        free(st);
        enum MHD_Result ret = run_start_failed(r, &req, e, step);
        api_request_free(&req);
        return ret;
    }
    api_request_free(&req); /* the executor copied what it keeps */
    /* A spawn handed to a spawner thread is counted when it has started. */
    if (exec_job_info(st->job)->pids[0]) metrics_job_started(&s->metrics, kind);
    http_watch_client(r, on_client_gone);

    /* exec/execFile answer when the job ends; a stream once the program
     * runs: now, or when a spawner thread has started it (run_spawned). */
    if (!stream || !exec_job_info(st->job)->pids[0]) {
        http_wait(r);
        return MHD_YES;
    }
    struct MHD_Response *resp = stream_response(r);
    if (!resp) {
        run_release(r);
        return MHD_NO;
    }
    return http_respond(r, 200, resp);
}

enum MHD_Result run_exec(struct http_req *r)
{
    return run_start(r, API_EXEC);
}

enum MHD_Result run_execfile(struct http_req *r)
{
    return run_start(r, API_EXECFILE);
}

enum MHD_Result run_spawn(struct http_req *r)
{
    return run_start(r, API_SPAWN);
}

enum MHD_Result run_pipeline(struct http_req *r)
{
    return run_start(r, API_PIPELINE);
}
