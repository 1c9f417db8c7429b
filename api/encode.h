/* encode: results and stream events as JSON text.
 *
 * spawnd writes its JSON directly into a buf (no intermediate tree): output
 * bytes are turned into JSON strings here, either as UTF-8 text (invalid
 * sequences become U+FFFD, exactly as Node's TextDecoder/Buffer#toString do:
 * one U+FFFD per maximal invalid subpart) or as base64. */
#ifndef SPAWND_API_ENCODE_H
#define SPAWND_API_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/request.h"
#include "executor/exec.h"

struct buf;

/* A UTF-8 decoder that keeps an incomplete trailing sequence (at most 3
 * bytes) between chunks, so a character split across two reads stays whole. */
struct api_utf8 {
    unsigned char pending[4];
    size_t npending;
};

/* Append s (n bytes) as a quoted JSON string. With utf8 == NULL the bytes are
 * taken as complete: invalid or truncated sequences become U+FFFD. With a
 * decoder, an incomplete sequence at the end is held back for the next call;
 * call with final=true (n may be 0) to flush it (as U+FFFD). */
int api_json_string(struct buf *out, const char *s, size_t n, struct api_utf8 *utf8, bool final);
/* Append s (n bytes) as a quoted base64 JSON string (RFC 4648, padded). */
int api_json_base64(struct buf *out, const char *s, size_t n);
/* Decode base64 (RFC 4648, padding required, no whitespace). Returns the
 * decoded length (out must hold n/4*3 bytes) or -1 when invalid. */
long api_base64_decode(const char *in, size_t n, unsigned char *out);

/* The 200 body of exec/execFile. stdout/stderr are the collected bytes;
 * truncated_stream is 0, EXEC_STDOUT or EXEC_STDERR (the stream that passed
 * max_buffer first). */
struct api_exec_result {
    const struct exec_job_info *info;
    const char *out, *err;
    size_t out_len, err_len;
    enum api_encoding encoding;
    int truncated_stream;
};
int api_exec_result_encode(struct buf *out, const struct api_exec_result *r);

/* Stream events, each one line of NDJSON ending in "\n". */
/* {"event":"error","code":"ERR_CHILD_PROCESS_STDIO_MAXBUFFER","message":"stdout maxBuffer length exceeded"}
 * for a background exec/execFile job past its max_buffer. */
int api_event_maxbuffer(struct buf *out, enum exec_stream stream);
/* {"event":"spawn","pid":N} or, for pipelines, {"event":"spawn","pid":LAST,"pids":[...]} */
int api_event_spawn(struct buf *out, const struct exec_job_info *info, bool pipeline);
/* {"event":"stdout"|"stderr","data":"..."[,"step":i]}; step < 0 for none.
 * With API_UTF8 the decoder state utf8 is used (one per stream and step):
 * bytes of an incomplete character are held back, and when that leaves
 * nothing to send no event is written. data == NULL flushes the decoder at
 * end of stream (an event with U+FFFD only if bytes were pending). */
int api_event_output(struct buf *out, enum exec_stream stream, long step, const char *data,
                     size_t n, enum api_encoding enc, struct api_utf8 *utf8);
/* {"event":"exit","exit_code":..,"signal":..,"timed_out":..,"killed":..,
 *  "duration_ms":..[,"steps":[{"exit_code":..,"signal":..},...]]} */
int api_event_exit(struct buf *out, const struct exec_job_info *info, bool pipeline);

/* A background job as GET /v1/jobs/{id} shows it:
 * {"id","kind","pid","state":"running"|"exited","exit_code","signal",
 *  "timed_out","killed","started_at","ended_at","duration_ms","encoding"[,"pids"]}
 * Times are RFC 3339 in UTC with milliseconds; ended_at and duration_ms are
 * null while it runs. */
struct api_job_view {
    const char *id;
    enum api_kind kind;
    enum api_encoding encoding; /* of its output events */
    const struct exec_job_info *info;
    int64_t started_at_ns, ended_at_ns; /* CLOCK_REALTIME */
};
int api_job_encode(struct buf *out, const struct api_job_view *v);

#endif
