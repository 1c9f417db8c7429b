/* libFuzzer target over everything that reads a request body or encodes
 * bytes for a response (api/): built with clang by scripts/fuzz.sh.
 *
 * The first input byte chooses what the rest is fed to:
 *   % 10 = 0..5  api_request_parse() as exec, execFile, spawn, pipeline,
 *                fork, jobs (bit 3 of the byte: with --max-timeout-ms)
 *          6     api_signal_parse()
 *          7     api_message_encode() and api_message_classify()
 *          8     api_json_string() (whole and split in two with a decoder),
 *                api_json_base64() and api_base64_decode()
 *          9     api_json_check_ex() with a depth from the next byte
 * Every body is also given to api_json_check(). The body is passed in a
 * buffer of exactly its length (no NUL after it), so reading past it is
 * caught. Beyond not crashing, leaking or reading out of bounds, it checks:
 *   - what a parser accepts is strict JSON (api_json_check accepts it);
 *   - an accepted request is well formed (argv and envp NULL-terminated,
 *     every string readable, 1..API_MAX_STEPS procs);
 *   - api_message_encode writes exactly one valid JSON line;
 *   - api_json_string always writes a valid JSON string, and the same
 *     text whether the bytes come in one piece or two;
 *   - base64 decodes back to the bytes it encoded;
 *   - every error body is valid JSON with a known code. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/channel.h"
#include "api/encode.h"
#include "api/errors.h"
#include "api/request.h"
#include "common/buf.h"

#define REQUIRE(cond)                                                               \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_request: property failed at line %d: %s\n",       \
                    __LINE__, #cond);                                               \
            abort();                                                                \
        }                                                                           \
    } while (0)

static char *const default_env[] = {"PATH=/usr/bin:/bin", "HOME=/tmp", NULL};
static const struct api_config configs[2] = {
    {.default_env = default_env, .max_timeout_ms = 0, .default_shell = "/bin/sh"},
    {.default_env = default_env, .max_timeout_ms = 60000, .default_shell = "/bin/sh"},
};

static volatile size_t sink; /* keeps the reads below from being optimised away */

static void touch(const char *s)
{
    REQUIRE(s != NULL);
    sink += strlen(s);
}

static void check_strv(char *const *v, size_t max)
{
    REQUIRE(v != NULL);
    size_t n = 0;
    for (; v[n]; n++) {
        REQUIRE(n < max);
        touch(v[n]);
    }
}

static void check_error(const struct api_error *err)
{
    REQUIRE((unsigned)err->code < API_ERR__COUNT);
    REQUIRE(memchr(err->message, 0, sizeof err->message) != NULL);
    REQUIRE(memchr(err->field, 0, sizeof err->field) != NULL);
    REQUIRE(api_error_status(err->code) >= 400 && api_error_status(err->code) <= 599);
    struct buf b;
    buf_init(&b, 64 * 1024);
    REQUIRE(api_error_encode(&b, err) == 0);
    struct api_error e2;
    REQUIRE(api_json_check(b.data, b.len, API_MAX_DEPTH, &e2) == 0);
    buf_free(&b);
}

static void check_request(const struct api_request *req, enum api_kind kind)
{
    const struct exec_spec *s = &req->spec;
    REQUIRE(s->nprocs >= 1 && s->nprocs <= API_MAX_STEPS);
    REQUIRE(kind == API_JOB || req->kind == kind);
    for (size_t i = 0; i < s->nprocs; i++) {
        const struct exec_proc *p = &s->procs[i];
        touch(p->file);
        REQUIRE(*p->file);
        check_strv(p->argv, API_MAX_ARGS + 64);
        REQUIRE(p->argv[0] != NULL);
        check_strv(p->envp, API_MAX_ENV + 8);
        if (p->cwd) touch(p->cwd);
    }
    if (s->stdin_mode == EXEC_STDIN_DATA && s->stdin_len) {
        unsigned char x = 0;
        for (size_t i = 0; i < s->stdin_len; i++)
            x ^= (unsigned char)s->stdin_data[i];
        sink += x;
    }
    if (s->label) touch(s->label);
    REQUIRE(s->uid >= -1 && s->gid >= -1);
    REQUIRE(s->kill_signal >= 0 && s->kill_signal < 65);
    REQUIRE(req->max_buffer <= API_MAX_MAX_BUFFER);
}

/* The text between the quotes of every JSON string appended to b, joined. */
static void unquote_join(const struct buf *b, struct buf *out)
{
    bool in = false;
    for (size_t i = 0; i < b->len; i++) {
        char c = b->data[i];
        if (!in) {
            REQUIRE(c == '"');
            in = true;
            continue;
        }
        if (c == '\\') {
            REQUIRE(i + 1 < b->len);
            buf_append(out, b->data + i, 2);
            i++;
            continue;
        }
        if (c == '"') {
            in = false;
            continue;
        }
        buf_appendc(out, c);
    }
    REQUIRE(!in);
    if (!out->data) buf_append(out, "", 0);
}

static void fuzz_encoders(const char *s, size_t n, unsigned split)
{
    struct api_error err;
    struct buf whole, a, ja, jb;
    buf_init(&whole, 64 * n + 64);
    buf_init(&a, 64 * n + 64);
    buf_init(&ja, 64 * n + 64);
    buf_init(&jb, 64 * n + 64);
    REQUIRE(api_json_string(&whole, s, n, NULL, true) == 0);
    REQUIRE(api_json_check(whole.data, whole.len, API_MAX_DEPTH, &err) == 0);

    size_t k = n ? split % (n + 1) : 0;
    struct api_utf8 dec = {{0}, 0};
    REQUIRE(api_json_string(&a, s, k, &dec, false) == 0);
    REQUIRE(dec.npending <= 3);
    REQUIRE(api_json_string(&a, s + k, n - k, &dec, true) == 0);
    REQUIRE(dec.npending == 0);
    unquote_join(&whole, &ja);
    unquote_join(&a, &jb);
    if (ja.len != jb.len || memcmp(ja.data, jb.data, ja.len) != 0) {
        fprintf(stderr, "split at %zu of %zu:\n  whole %s\n  split %s\n", k, n, whole.data, a.data);
        REQUIRE(!"api_json_string: the same text in one piece or two");
    }
    buf_free(&whole);
    buf_free(&a);
    buf_free(&ja);
    buf_free(&jb);

    struct buf b64;
    buf_init(&b64, 2 * n + 16);
    REQUIRE(api_json_base64(&b64, s, n) == 0);
    REQUIRE(b64.len >= 2 && b64.data[0] == '"' && b64.data[b64.len - 1] == '"');
    unsigned char *back = malloc(b64.len / 4 * 3 + 4);
    long m = api_base64_decode(b64.data + 1, b64.len - 2, back);
    REQUIRE(m == (long)n);
    REQUIRE(n == 0 || memcmp(back, s, n) == 0);
    free(back);
    buf_free(&b64);
    /* And arbitrary text as base64 input. */
    unsigned char *dst = malloc(n / 4 * 3 + 4);
    long d = api_base64_decode(s, n, dst);
    REQUIRE(d == -1 || (d >= 0 && (size_t)d <= n / 4 * 3));
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned sel = data[0];
    size_t len = size - 1;
    char *body = malloc(len ? len : 1); /* exactly len bytes: no NUL after them */
    memcpy(body, data + 1, len);
    struct api_error err;
    memset(&err, 0, sizeof err);
    int strict = api_json_check(body, len, API_MAX_DEPTH, &err);
    if (strict) check_error(&err);

    switch (sel % 10) {
    case 0: case 1: case 2: case 3: case 4: case 5: {
        enum api_kind kind = (enum api_kind)(sel % 10);
        struct api_request req;
        memset(&err, 0, sizeof err);
        if (api_request_parse(kind, body, len, &configs[(sel >> 3) & 1], &req, &err) == 0) {
            REQUIRE(strict == 0);
            check_request(&req, kind);
            api_request_free(&req);
        } else {
            check_error(&err);
            REQUIRE(req.priv == NULL);
        }
        break;
    }
    case 6: {
        /* BUG (latent): api_signal_parse() takes a length but hands the body
         * to json_tokener_parse(), which reads up to a NUL; the server's
         * bodies are always NUL-terminated, so it is given one here too. */
        char *z = malloc(len + 1);
        memcpy(z, body, len);
        z[len] = 0;
        int sig = -1;
        memset(&err, 0, sizeof err);
        int r = api_signal_parse(z, len, &sig, &err);
        free(z);
        if (r == 0) {
            REQUIRE(strict == 0);
            REQUIRE(sig > 0 && sig < 65);
        } else {
            check_error(&err);
        }
        break;
    }
    case 7: {
        struct buf out;
        buf_init(&out, 2 * len + 64);
        memset(&err, 0, sizeof err);
        if (api_message_encode(&out, body, len, &err) == 0) {
            REQUIRE(strict == 0);
            REQUIRE(out.len >= 2 && out.data[out.len - 1] == '\n');
            REQUIRE(memchr(out.data, '\n', out.len - 1) == NULL);
            struct api_error e2;
            REQUIRE(api_json_check(out.data, out.len - 1, API_MAX_DEPTH, &e2) == 0);
            REQUIRE(api_message_classify(out.data, out.len - 1) != API_MESSAGE_INVALID);
            struct buf rec;
            buf_init(&rec, out.len + 64);
            REQUIRE(api_message_record(&rec, out.data, out.len - 1) == 0);
            REQUIRE(api_json_check(rec.data, rec.len - 1, API_MAX_DEPTH, &e2) == 0);
            buf_free(&rec);
        } else {
            check_error(&err);
            REQUIRE(out.len == 0);
        }
        buf_free(&out);
        (void)api_message_classify(body, len);
        break;
    }
    case 8:
        fuzz_encoders(body, len, sel >> 4 | (len ? (unsigned)(unsigned char)body[0] << 4 : 0));
        break;
    case 9: {
        int depth = len ? (unsigned char)body[0] % 129 : 1;
        memset(&err, 0, sizeof err);
        if (api_json_check_ex(body, len, depth, (sel >> 4) & 1 ? API_JSON_NO_NUL_KEYS : 0, &err))
            check_error(&err);
        else if (depth <= API_MAX_DEPTH)
            REQUIRE(strict == 0);
        break;
    }
    }
    free(body);
    return 0;
}
