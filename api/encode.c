#include "api/encode.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/signame.h"

/* --- writing straight into a buf ---------------------------------------- */

/* A cursor into the free space of a buf.  The hot loops write through p and
 * only call into buf when the space reserved so far runs out, so the
 * per-byte cost is a compare and a store. */
struct out {
    struct buf *b;
    char *p, *end;
};

static void out_sync(struct out *o)
{
    o->b->len = (size_t)(o->p - o->b->data);
    o->b->data[o->b->len] = 0;
}

/* Make room for need more bytes; hint is a better guess of what is coming,
 * used when the cap allows it. */
static int out_grow(struct out *o, size_t need, size_t hint)
{
    struct buf *b = o->b;
    if (o->p) out_sync(o);
    int r = hint > need ? buf_reserve(b, hint) : -ENOBUFS;
    if (r == -ENOBUFS) r = buf_reserve(b, need);
    if (r) return r;
    o->p = b->data + b->len;
    /* buf may allocate past its cap; never write past it. */
    o->end = b->data + (b->size < b->cap ? b->size : b->cap);
    return 0;
}

static inline int out_room(struct out *o, size_t need, size_t hint)
{
    if ((size_t)(o->end - o->p) >= need) return 0;
    return out_grow(o, need, hint);
}

static int out_begin(struct out *o, struct buf *b, size_t need, size_t hint)
{
    o->b = b;
    o->p = o->end = NULL;
    return out_grow(o, need, hint);
}

/* Undo everything appended since start (on failure nothing is appended). */
static void rollback(struct buf *b, size_t start)
{
    if (!b->data) return;
    b->len = start;
    b->data[start] = 0;
}

/* --- UTF-8 to JSON string ------------------------------------------------ */

static const char hex[] = "0123456789abcdef";

/* Length of the sequence a lead byte starts, 0 for a byte that cannot start
 * one (continuation bytes, C0, C1, F5..FF). */
static inline unsigned seq_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    if (c < 0xF5) return 4;
    return 0;
}

/* Whether byte c may follow at position pos (1..3) of a sequence started by
 * lead: the second byte's range excludes overlongs (E0, F0), surrogates (ED)
 * and code points past U+10FFFF (F4). */
static inline int cont_ok(unsigned char lead, unsigned pos, unsigned char c)
{
    if (pos == 1) {
        switch (lead) {
        case 0xE0:
            return c >= 0xA0 && c <= 0xBF;
        case 0xED:
            return c >= 0x80 && c <= 0x9F;
        case 0xF0:
            return c >= 0x90 && c <= 0xBF;
        case 0xF4:
            return c >= 0x80 && c <= 0x8F;
        }
    }
    return c >= 0x80 && c <= 0xBF;
}

/* Whether any of the 8 bytes in w needs attention: a control character,
 * '"', '\\' or a byte >= 0x80. */
static inline int word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    uint64_t t = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w;
    return (t & high) != 0;
}

static inline int byte_special(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

static inline void put_fffd(char *p)
{
    p[0] = (char)0xEF;
    p[1] = (char)0xBF;
    p[2] = (char)0xBD;
}

/* Appends the escaped body of a JSON string (no quotes).  Bytes of an
 * incomplete sequence at the end are stored in *utf8 when hold is set, else
 * replaced.  Worst case output is 6 bytes per input byte. */
static int string_body(struct out *o, const unsigned char *s, size_t n, struct api_utf8 *utf8,
                       int hold)
{
    size_t i = 0;
    int r;

    /* Finish a sequence the previous call held back. */
    if (utf8 && utf8->npending) {
        unsigned char *pend = utf8->pending;
        unsigned want = seq_len(pend[0]), k = (unsigned)utf8->npending;
        while (k < want && i < n && cont_ok(pend[0], k, s[i]))
            pend[k++] = s[i++];
        if (k < want && i == n && hold) {
            utf8->npending = k; /* still a valid prefix: wait for more */
            return 0;
        }
        /* Complete, or the maximal subpart ends here. */
        if ((r = out_room(o, k == want ? want : 3, n - i + 8))) return r;
        if (k == want) {
            memcpy(o->p, pend, want);
            o->p += want;
        } else {
            put_fffd(o->p);
            o->p += 3;
        }
        utf8->npending = 0;
    }

    while (i < n) {
        /* Plain run: copy as much as possible at once. */
        size_t j = i;
        while (j + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + j, 8);
            if (word_special(w)) break;
            j += 8;
        }
        while (j < n && !byte_special(s[j]))
            j++;
        if (j > i) {
            if ((r = out_room(o, j - i, n - i + 8))) return r;
            memcpy(o->p, s + i, j - i);
            o->p += j - i;
            i = j;
            if (i == n) break;
        }

        unsigned char c = s[i];
        if (c < 0x80) {
            char short_esc = 0;
            switch (c) {
            case '"':
                short_esc = '"';
                break;
            case '\\':
                short_esc = '\\';
                break;
            case '\b':
                short_esc = 'b';
                break;
            case '\f':
                short_esc = 'f';
                break;
            case '\n':
                short_esc = 'n';
                break;
            case '\r':
                short_esc = 'r';
                break;
            case '\t':
                short_esc = 't';
                break;
            }
            if ((r = out_room(o, short_esc ? 2 : 6, n - i + 16))) return r;
            char *p = o->p;
            *p++ = '\\';
            if (short_esc) {
                *p++ = short_esc;
            } else {
                memcpy(p, "u00", 3);
                p[3] = hex[c >> 4];
                p[4] = hex[c & 15];
                p += 5;
            }
            o->p = p;
            i++;
            continue;
        }

        /* Non-ASCII: a whole valid sequence is copied; an invalid one, up to
         * the byte that breaks it, becomes one U+FFFD; an incomplete one at
         * the end of the input may be held back. */
        unsigned len = seq_len(c), k = 1;
        while (k < len && i + k < n && cont_ok(c, k, s[i + k]))
            k++;
        if (len && k < len && i + k == n && hold) {
            memcpy(utf8->pending, s + i, k);
            utf8->npending = k;
            break;
        }
        bool valid = len && k == len;
        if ((r = out_room(o, valid ? len : 3, n - i + 16))) return r;
        if (valid) {
            memcpy(o->p, s + i, len);
            o->p += len;
        } else {
            put_fffd(o->p);
            o->p += 3;
        }
        i += len ? k : 1;
    }
    return 0;
}

int api_json_string(struct buf *out, const char *s, size_t n, struct api_utf8 *utf8, bool final)
{
    size_t start = out->len;
    struct api_utf8 saved = {{0}, 0};
    if (utf8) saved = *utf8;
    struct out o;
    int r = out_begin(&o, out, 2, n + 8);
    if (!r) {
        *o.p++ = '"';
        r = string_body(&o, (const unsigned char *)s, n, utf8, utf8 && !final);
    }
    if (!r) r = out_room(&o, 1, 1);
    if (!r) {
        *o.p++ = '"';
        out_sync(&o);
        return 0;
    }
    if (utf8) *utf8 = saved;
    rollback(out, start);
    return r;
}

/* --- base64 --------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int api_json_base64(struct buf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n > (SIZE_MAX - 8) / 4 * 3) return -ENOBUFS;
    struct out o;
    int r = out_begin(&o, out, (n + 2) / 3 * 4 + 2, 0);
    if (r) return r;
    char *p = o.p;
    *p++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];
        p[0] = b64[v >> 18];
        p[1] = b64[(v >> 12) & 63];
        p[2] = b64[(v >> 6) & 63];
        p[3] = b64[v & 63];
        p += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < n ? (uint32_t)u[i + 1] << 8 : 0);
        p[0] = b64[v >> 18];
        p[1] = b64[(v >> 12) & 63];
        p[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        p[3] = '=';
        p += 4;
    }
    *p++ = '"';
    o.p = p;
    out_sync(&o);
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long api_base64_decode(const char *in, size_t n, unsigned char *out)
{
    const unsigned char *u = (const unsigned char *)in;
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = 0;
        if (i + 4 == n) pad = (u[n - 1] == '=') + (u[n - 2] == '=' && u[n - 1] == '=');
        int v[4];
        for (int k = 0; k < 4 - pad; k++)
            if ((v[k] = b64_value(u[i + k])) < 0) return -1;
        for (int k = 4 - pad; k < 4; k++)
            v[k] = 0;
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2) out[o++] = (unsigned char)(w >> 8);
        if (pad < 1) out[o++] = (unsigned char)w;
    }
    return (long)o;
}

/* --- results and events ---------------------------------------------------- */

static int put_data(struct buf *out, const char *s, size_t n, enum api_encoding enc)
{
    if (enc == API_BASE64) return api_json_base64(out, s, n);
    return api_json_string(out, s, n, NULL, true);
}

/* "exit_code":N|null,"signal":"SIG.."|N|null */
static int put_status(struct buf *out, const struct exec_status *st)
{
    if (st->signal == 0) return buf_printf(out, "\"exit_code\":%d,\"signal\":null", st->exit_code);
    const char *name = sig_name(st->signal);
    if (name) return buf_printf(out, "\"exit_code\":null,\"signal\":\"%s\"", name);
    return buf_printf(out, "\"exit_code\":null,\"signal\":%d", st->signal);
}

/* Milliseconds with microsecond precision, trailing zeros dropped but one
 * decimal kept ("12.0", "3.4", "0.125"), as JSON numbers. */
static int put_duration(struct buf *out, const struct exec_job_info *info)
{
    uint64_t ns = info->end_ns > info->start_ns ? info->end_ns - info->start_ns : 0;
    uint64_t us = (ns + 500) / 1000;
    unsigned frac = (unsigned)(us % 1000);
    int digits = 3;
    while (digits > 1 && frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    return buf_printf(out, "\"duration_ms\":%llu.%0*u", (unsigned long long)(us / 1000), digits,
                      frac);
}

static const struct exec_status *last_status(const struct exec_job_info *info)
{
    static const struct exec_status none = {-1, 0};
    return info->nprocs && info->status ? &info->status[info->nprocs - 1] : &none;
}

static long last_pid(const struct exec_job_info *info)
{
    return info->nprocs && info->pids ? (long)info->pids[info->nprocs - 1] : 0;
}

static const char *maxbuffer_message(enum exec_stream stream)
{
    return stream == EXEC_STDERR ? "stderr maxBuffer length exceeded"
                                 : "stdout maxBuffer length exceeded";
}

static const char *jbool(bool b)
{
    return b ? "true" : "false";
}

int api_exec_result_encode(struct buf *out, const struct api_exec_result *res)
{
    const struct exec_job_info *info = res->info;
    size_t start = out->len;
    int r = buf_printf(out, "{\"pid\":%ld,", last_pid(info));
    if (!r) r = put_status(out, last_status(info));
    if (!r) r = buf_appends(out, ",\"stdout\":");
    if (!r) r = put_data(out, res->out, res->out_len, res->encoding);
    if (!r) r = buf_appends(out, ",\"stderr\":");
    if (!r) r = put_data(out, res->err, res->err_len, res->encoding);
    if (!r)
        r = buf_printf(out, ",\"timed_out\":%s,\"killed\":%s,\"truncated\":%s,\"error\":",
                       jbool(info->timed_out), jbool(info->killed),
                       jbool(res->truncated_stream != 0));
    if (!r) {
        if (res->truncated_stream)
            r = buf_printf(out,
                           "{\"code\":\"ERR_CHILD_PROCESS_STDIO_MAXBUFFER\",\"message\":\"%s\"}",
                           maxbuffer_message(res->truncated_stream));
        else
            r = buf_appends(out, "null");
    }
    if (!r) r = buf_appendc(out, ',');
    if (!r) r = put_duration(out, info);
    if (!r) r = buf_appendc(out, '}');
    if (r) rollback(out, start);
    return r;
}

int api_event_maxbuffer(struct buf *out, enum exec_stream stream)
{
    return buf_printf(out,
                      "{\"event\":\"error\",\"code\":\"ERR_CHILD_PROCESS_STDIO_MAXBUFFER\","
                      "\"message\":\"%s\"}\n",
                      maxbuffer_message(stream));
}

int api_event_spawn(struct buf *out, const struct exec_job_info *info, bool pipeline)
{
    size_t start = out->len;
    int r = buf_printf(out, "{\"event\":\"spawn\",\"pid\":%ld", last_pid(info));
    if (!r && pipeline) {
        r = buf_appends(out, ",\"pids\":[");
        for (size_t i = 0; !r && i < info->nprocs; i++)
            r = buf_printf(out, "%s%ld", i ? "," : "", (long)info->pids[i]);
        if (!r) r = buf_appendc(out, ']');
    }
    if (!r) r = buf_appends(out, "}\n");
    if (r) rollback(out, start);
    return r;
}

int api_event_output(struct buf *out, enum exec_stream stream, long step, const char *data,
                     size_t n, enum api_encoding enc, struct api_utf8 *utf8)
{
    if (enc == API_BASE64 && (!data || n == 0)) return 0;
    if (enc == API_UTF8 && data && n == 0) return 0;
    if (enc == API_UTF8 && !data && (!utf8 || utf8->npending == 0)) return 0;

    size_t start = out->len;
    struct api_utf8 saved = {{0}, 0};
    if (utf8) saved = *utf8;
    int r =
        buf_printf(out, "{\"event\":\"%s\",\"data\":", stream == EXEC_STDERR ? "stderr" : "stdout");
    if (r) return r;
    size_t at = out->len;
    if (enc == API_BASE64)
        r = api_json_base64(out, data, n);
    else
        r = api_json_string(out, data ? data : "", data ? n : 0, utf8, data == NULL);
    if (!r && out->len - at == 2) {
        /* Every byte was held back as part of an incomplete character. */
        rollback(out, start);
        return 0;
    }
    if (!r && step >= 0) r = buf_printf(out, ",\"step\":%ld", step);
    if (!r) r = buf_appends(out, "}\n");
    if (r) {
        if (utf8) *utf8 = saved;
        rollback(out, start);
    }
    return r;
}

int api_event_exit(struct buf *out, const struct exec_job_info *info, bool pipeline)
{
    size_t start = out->len;
    int r = buf_appends(out, "{\"event\":\"exit\",");
    if (!r) r = put_status(out, last_status(info));
    if (!r)
        r = buf_printf(out, ",\"timed_out\":%s,\"killed\":%s,", jbool(info->timed_out),
                       jbool(info->killed));
    if (!r) r = put_duration(out, info);
    if (!r && pipeline) {
        r = buf_appends(out, ",\"steps\":[");
        for (size_t i = 0; !r && i < info->nprocs; i++) {
            r = buf_appends(out, i ? ",{" : "{");
            if (!r) r = put_status(out, &info->status[i]);
            if (!r) r = buf_appendc(out, '}');
        }
        if (!r) r = buf_appendc(out, ']');
    }
    if (!r) r = buf_appends(out, "}\n");
    if (r) rollback(out, start);
    return r;
}

/* --- jobs ------------------------------------------------------------------ */

static int put_time(struct buf *out, const char *key, int64_t ns)
{
    if (ns <= 0) return buf_printf(out, ",\"%s\":null", key);
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return buf_printf(out, ",\"%s\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", key, tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      (int)(ns / 1000000 % 1000));
}

int api_job_encode(struct buf *out, const struct api_job_view *v)
{
    const struct exec_job_info *info = v->info;
    size_t start = out->len;
    int r = buf_appends(out, "{\"id\":");
    if (!r) r = api_json_string(out, v->id, strlen(v->id), NULL, true);
    if (!r)
        r = buf_printf(out, ",\"kind\":\"%s\",\"pid\":%ld,\"state\":\"%s\",", api_kind_name(v->kind),
                       last_pid(info), info->running ? "running" : "exited");
    if (!r) {
        if (info->running) r = buf_appends(out, "\"exit_code\":null,\"signal\":null");
        else r = put_status(out, last_status(info));
    }
    if (!r)
        r = buf_printf(out, ",\"timed_out\":%s,\"killed\":%s", jbool(info->timed_out),
                       jbool(info->killed));
    if (!r) r = put_time(out, "started_at", v->started_at_ns);
    if (!r) r = put_time(out, "ended_at", info->running ? 0 : v->ended_at_ns);
    if (!r) r = buf_appendc(out, ',');
    if (!r) r = info->running ? buf_appends(out, "\"duration_ms\":null") : put_duration(out, info);
    if (!r)
        r = buf_printf(out, ",\"encoding\":\"%s\"", v->encoding == API_BASE64 ? "base64" : "utf8");
    if (!r && v->kind == API_PIPELINE) {
        r = buf_appends(out, ",\"pids\":[");
        for (size_t i = 0; !r && i < info->nprocs; i++)
            r = buf_printf(out, "%s%ld", i ? "," : "", (long)info->pids[i]);
        if (!r) r = buf_appendc(out, ']');
    }
    if (!r) r = buf_appendc(out, '}');
    if (r) rollback(out, start);
    return r;
}
