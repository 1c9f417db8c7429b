/* events: the NDJSON output of a job, written out as the bytes it stands for.
 *
 * Each line is one event: {"seq":N,"event":"stdout","data":"..."} and so on.
 * Output events are decoded and written with write(2) at once, unbuffered,
 * so a program's output appears as it is produced and stdout and stderr
 * interleave as closely as spawnd read them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/encode.h"
#include "cli/ctl.h"

/* One event carries at most one 64 KiB read, which is at most 6 times as
 * long once escaped as JSON text; anything longer is not spawnd talking. */
#define EVENT_LINE_MAX (8 * 1024 * 1024)

void ctl_events_init(struct ctl_events *ev, bool text)
{
    memset(ev, 0, sizeof *ev);
    buf_init(&ev->line, EVENT_LINE_MAX);
    buf_init(&ev->answer.body, 64 * 1024);
    ev->text = text;
    ev->status = CTL_EXIT_FAILED;
}

void ctl_events_free(struct ctl_events *ev)
{
    buf_free(&ev->line);
    buf_free(&ev->answer.body);
    free(ev->dec);
    ev->dec = NULL;
}

static void out(struct ctl_events *ev, int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n && !ev->gone[fd] && !ev->error) { /* on_intr may give up */
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) {
            if (ev->on_intr) ev->on_intr(ev->ctx);
            continue;
        }
        if (w < 0) {
            /* The reader went away (EPIPE) or the disk is full: the rest of
             * this stream has nowhere to go. */
            ev->gone[fd] = true;
            if (ev->on_gone) ev->on_gone(ev->ctx, fd, errno);
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static int output(struct ctl_events *ev, int fd, json_object *data)
{
    if (!data || !json_object_is_type(data, json_type_string)) {
        ev->error = "an output event without data";
        return -EPROTO;
    }
    const char *s = json_object_get_string(data);
    size_t n = (size_t)json_object_get_string_len(data);
    if (ev->text) {
        out(ev, fd, s, n);
        return 0;
    }
    size_t need = n / 4 * 3 + 3;
    if (need > ev->dec_size) {
        unsigned char *d = realloc(ev->dec, need);
        if (!d) {
            ev->error = "out of memory";
            return -ENOMEM;
        }
        ev->dec = d;
        ev->dec_size = need;
    }
    long k = api_base64_decode(s, n, ev->dec);
    if (k < 0) {
        ev->error = "output that is not base64 (was the job started with \"encoding\":\"utf8\"? "
                    "then use --text)";
        return -EPROTO;
    }
    out(ev, fd, ev->dec, (size_t)k);
    return 0;
}

static int event(struct ctl_events *ev, const char *line, size_t n)
{
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        ev->error = "out of memory";
        return -ENOMEM;
    }
    json_object *o = json_tokener_parse_ex(tok, line, (int)n);
    bool complete = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    json_object *name = NULL, *data = NULL, *v = NULL;
    int rc = 0;
    if (!complete || !json_object_object_get_ex(o, "event", &name)) {
        ev->error = "a line that is not an event";
        rc = -EPROTO;
        goto out;
    }
    const char *e = json_object_get_string(name);
    json_object_object_get_ex(o, "data", &data);
    if (!strcmp(e, "stdout")) {
        rc = output(ev, 1, data);
    } else if (!strcmp(e, "stderr")) {
        rc = output(ev, 2, data);
    } else if (!strcmp(e, "exit")) {
        ev->exited = true;
        ev->status = ctl_exit_status(o);
        ev->timed_out = json_object_object_get_ex(o, "timed_out", &v) && json_object_get_boolean(v);
        ev->killed = json_object_object_get_ex(o, "killed", &v) && json_object_get_boolean(v);
    } else if (!strcmp(e, "dropped")) {
        if (json_object_object_get_ex(o, "count", &v))
            ev->dropped += (unsigned long long)json_object_get_int64(v);
    }
    /* "spawn", and events a newer spawnd may add, carry no output. */
out:
    json_object_put(o);
    return rc;
}

int ctl_events_feed(struct ctl_events *ev, const char *p, size_t n)
{
    if (ev->error) return -EPROTO;
    if (buf_append(&ev->line, p, n) < 0) {
        ev->error = "an event line too long";
        return -EPROTO;
    }
    size_t start = 0;
    char *nl;
    while ((nl = memchr(ev->line.data + start, '\n', ev->line.len - start))) {
        size_t len = (size_t)(nl - (ev->line.data + start));
        int rc = len ? event(ev, ev->line.data + start, len) : 0;
        if (rc < 0) return rc;
        start += len + 1;
    }
    buf_consume(&ev->line, start);
    return 0;
}

size_t ctl_events_curl_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct ctl_events *ev = arg;
    if (!ev->answer.status && ev->easy)
        curl_easy_getinfo(ev->easy, CURLINFO_RESPONSE_CODE, &ev->answer.status);
    if (ev->answer.status != 200) /* an error body: keep it for the message */
        return buf_append(&ev->answer.body, p, size * nmemb) < 0 ? 0 : size * nmemb;
    return ctl_events_feed(ev, p, size * nmemb) < 0 ? 0 : size * nmemb;
}
