/* encode: JSON strings with U+FFFD replacement, base64, results, events. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "api/encode.h"
#include "check.h"
#include "common/buf.h"

#define FFFD "\xef\xbf\xbd"

/* s (n bytes) as a complete JSON string, in a static buffer. */
static const char *jstr(const char *s, size_t n)
{
    static struct buf b;
    buf_free(&b);
    buf_init(&b, 1 << 20);
    CHECK_INT(api_json_string(&b, s, n, NULL, true), 0);
    return b.data;
}
#define JSTR(lit) jstr(lit, sizeof(lit) - 1)

static void test_escapes(void)
{
    CHECK_STR(JSTR(""), "\"\"");
    CHECK_STR(JSTR("hello"), "\"hello\"");
    CHECK_STR(JSTR("\"\\/\b\f\n\r\t"), "\"\\\"\\\\/\\b\\f\\n\\r\\t\"");
    CHECK_STR(JSTR("\x01\x1f\x7f"), "\"\\u0001\\u001f\x7f\"");
    CHECK_STR(JSTR("a\0b"), "\"a\\u0000b\"");
    /* Valid UTF-8 passes through, including the extremes of each length. */
    CHECK_STR(JSTR("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"),
              "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\"");
    CHECK_STR(JSTR("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf \xf0\x9f\x98\x80"),
              "\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf \xf0\x9f\x98\x80\"");
    /* Long runs cross the 8-byte fast path at every offset. */
    for (size_t len = 0; len < 40; len++) {
        for (size_t at = 0; at < len; at++) {
            char in[40], want[64];
            memset(in, 'x', len);
            in[at] = '"';
            memset(want + 1, 'x', len + 1);
            want[0] = '"';
            want[at + 1] = '\\';
            want[at + 2] = '"';
            want[len + 2] = '"';
            want[len + 3] = 0;
            CHECK_STR(jstr(in, len), want);
        }
    }
}

static void test_replacement(void)
{
    /* One U+FFFD per maximal invalid subpart, as the WHATWG decoder. */
    CHECK_STR(JSTR("\xc0\x80"), "\"" FFFD FFFD "\"");
    CHECK_STR(JSTR("\xed\xa0\x80"), "\"" FFFD FFFD FFFD "\"");
    CHECK_STR(JSTR("\xf4\x90\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\"");
    CHECK_STR(JSTR("\xe0\x80\xaf"), "\"" FFFD FFFD FFFD "\"");
    CHECK_STR(JSTR("\xf0\x80\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\"");
    CHECK_STR(JSTR("\xff\xfe\x80"), "\"" FFFD FFFD FFFD "\"");
    CHECK_STR(JSTR("\xe2\x82"), "\"" FFFD "\"");
    CHECK_STR(JSTR("\xe2\x82x"), "\"" FFFD "x\"");
    CHECK_STR(JSTR("\xf0\x9f\x98"), "\"" FFFD "\"");
    CHECK_STR(JSTR("\xf0\x9f\x98\n"), "\"" FFFD "\\n\"");
    CHECK_STR(JSTR("a\xc3"), "\"a" FFFD "\"");
    CHECK_STR(JSTR("\xe1\x80\xe2\xf0\x91\x92\xf1\xbf\x41"), "\"" FFFD FFFD FFFD FFFD "A\"");
    CHECK_STR(JSTR("\xf4\x8f\xbf\xc0"), "\"" FFFD FFFD "\"");
}

/* Feed s to a decoder in pieces of `step` bytes, then flush; returns the
 * concatenated string contents (quotes removed). */
static char *stream(const char *s, size_t n, size_t step)
{
    struct api_utf8 d = {{0}, 0};
    struct buf all, one;
    buf_init(&all, 1 << 20);
    buf_init(&one, 1 << 20);
    for (size_t i = 0; i <= n; i += step) {
        size_t k = n - i < step ? n - i : step;
        buf_reset(&one);
        CHECK_INT(api_json_string(&one, s + i, k, &d, i + k == n), 0);
        CHECK(one.len >= 2 && one.data[0] == '"' && one.data[one.len - 1] == '"');
        buf_append(&all, one.data + 1, one.len - 2);
        if (i + k == n) break;
    }
    CHECK_INT(d.npending, 0);
    buf_free(&one);
    char *r = all.data ? all.data : strdup("");
    return r;
}

static void test_streaming(void)
{
    /* A 4-byte character fed one byte at a time: nothing, nothing, nothing,
     * then the character — never U+FFFD. */
    const char *emoji = "\xf0\x9f\x98\x80";
    struct api_utf8 d = {{0}, 0};
    struct buf b;
    buf_init(&b, 1024);
    for (int i = 0; i < 4; i++) {
        buf_reset(&b);
        CHECK_INT(api_json_string(&b, emoji + i, 1, &d, false), 0);
        CHECK_STR(b.data, i < 3 ? "\"\"" : "\"\xf0\x9f\x98\x80\"");
    }
    CHECK_INT(d.npending, 0);

    /* A dangling lead byte flushed at the end is one U+FFFD. */
    buf_reset(&b);
    CHECK_INT(api_json_string(&b, "ab\xf0", 3, &d, false), 0);
    CHECK_STR(b.data, "\"ab\"");
    CHECK_INT(d.npending, 1);
    buf_reset(&b);
    CHECK_INT(api_json_string(&b, NULL, 0, &d, true), 0);
    CHECK_STR(b.data, "\"" FFFD "\"");
    CHECK_INT(d.npending, 0);

    /* A held prefix that the next chunk breaks: U+FFFD, then the new bytes. */
    buf_reset(&b);
    CHECK_INT(api_json_string(&b, "\xe2\x82", 2, &d, false), 0);
    CHECK_STR(b.data, "\"\"");
    buf_reset(&b);
    CHECK_INT(api_json_string(&b, "A", 1, &d, false), 0);
    CHECK_STR(b.data, "\"" FFFD "A\"");
    /* E0 alone may start a character; E0 80 may not. */
    buf_reset(&b);
    CHECK_INT(api_json_string(&b, "\xe0", 1, &d, false), 0);
    CHECK_STR(b.data, "\"\"");
    buf_reset(&b);
    CHECK_INT(api_json_string(&b, "\x80", 1, &d, false), 0);
    CHECK_STR(b.data, "\"" FFFD FFFD "\"");
    /* An invalid tail is never held back. */
    buf_reset(&b);
    CHECK_INT(api_json_string(&b, "x\xed\xa0", 3, &d, false), 0);
    CHECK_STR(b.data, "\"x" FFFD FFFD "\"");
    CHECK_INT(d.npending, 0);
    buf_free(&b);

    /* Any split gives what one call gives. */
    srand(7);
    static const unsigned char pool[] = {'a',  '"',  '\n', 0x00, 0x80, 0xbf, 0xc2,
                                         0xc3, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4,
                                         0xf5, 0xff, 0x9f, 0xa0, 0x90, 0x8f};
    for (int iter = 0; iter < 3000; iter++) {
        char in[64];
        size_t n = (size_t)(rand() % 64);
        for (size_t i = 0; i < n; i++)
            in[i] = (char)pool[rand() % (int)sizeof pool];
        char *whole = stream(in, n, n ? n : 1);
        for (size_t step = 1; step <= 5; step++) {
            char *parts = stream(in, n, step);
            CHECK_STR(parts, whole);
            free(parts);
        }
        free(whole);
    }
}

static void test_limits(void)
{
    struct buf b;
    buf_init(&b, 8);
    CHECK_INT(api_json_string(&b, "abcdef", 6, NULL, true), 0); /* exactly 8 */
    CHECK_STR(b.data, "\"abcdef\"");
    CHECK_INT(api_json_string(&b, "", 0, NULL, true), -ENOBUFS);
    CHECK_INT(b.len, 8);
    CHECK_STR(b.data, "\"abcdef\"");
    buf_free(&b);

    /* Escapes that need more room than the input: fails whole, decoder kept. */
    buf_init(&b, 16);
    buf_appends(&b, "xy");
    struct api_utf8 d = {{0xe2}, 1};
    CHECK_INT(api_json_string(&b, "\x82\x01\x01\x01", 4, &d, false), -ENOBUFS);
    CHECK_INT(b.len, 2);
    CHECK_STR(b.data, "xy");
    CHECK_INT(d.npending, 1);
    CHECK_INT(api_json_string(&b, "\x82\xac", 2, &d, false), 0);
    CHECK_STR(b.data, "xy\"\xe2\x82\xac\"");
    buf_free(&b);

    /* A small cap with a large input that still fits after hold-back. */
    buf_init(&b, 5);
    d.npending = 0;
    CHECK_INT(api_json_string(&b, "ab\xf0\x9f\x98", 5, &d, false), 0);
    CHECK_STR(b.data, "\"ab\"");
    buf_free(&b);
}

static void test_base64(void)
{
    static const char *const vec[][2] = {{"", "\"\""},
                                         {"f", "\"Zg==\""},
                                         {"fo", "\"Zm8=\""},
                                         {"foo", "\"Zm9v\""},
                                         {"foob", "\"Zm9vYg==\""},
                                         {"fooba", "\"Zm9vYmE=\""},
                                         {"foobar", "\"Zm9vYmFy\""}};
    struct buf b;
    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        buf_reset(&b);
        CHECK_INT(api_json_base64(&b, vec[i][0], strlen(vec[i][0])), 0);
        CHECK_STR(b.data, vec[i][1]);
    }

    srand(42);
    for (size_t n = 0; n <= 300; n++) {
        unsigned char in[300], out[300];
        for (size_t i = 0; i < n; i++)
            in[i] = (unsigned char)rand();
        buf_reset(&b);
        CHECK_INT(api_json_base64(&b, (const char *)in, n), 0);
        CHECK_INT(b.len, (n + 2) / 3 * 4 + 2);
        long got = api_base64_decode(b.data + 1, b.len - 2, out);
        CHECK_INT(got, (long)n);
        CHECK(got == (long)n && memcmp(in, out, n) == 0);
    }

    unsigned char out[64];
    CHECK_INT(api_base64_decode("aGk=", 4, out), 2);
    CHECK(memcmp(out, "hi", 2) == 0);
    CHECK_INT(api_base64_decode("", 0, out), 0);
    static const char *const bad[] = {"Zg=",    "Zg",       "Z===",     "====",         "Zg=a",
                                      "Zm9v\n", "Zm 9",     "=Zm9",     "Zm9vYg==Zm9v", "Zm9-",
                                      "Zm9_",   "Zm9v====", "Zg==Zg==", "Zm9\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (api_base64_decode(bad[i], strlen(bad[i]), out) != -1) {
            fprintf(stderr, "accepted bad base64 \"%s\"\n", bad[i]);
            check_failures++;
        }
    }

    buf_free(&b);
    buf_init(&b, 9);
    CHECK_INT(api_json_base64(&b, "foobar", 6), -ENOBUFS);
    CHECK_INT(b.len, 0);
    buf_free(&b);
}

static struct exec_status st1[1];
static pid_t pid1[1] = {4242};

static struct exec_job_info info1(int code, int sig, uint64_t ns)
{
    st1[0].exit_code = code;
    st1[0].signal = sig;
    struct exec_job_info info = {1, pid1, st1, false, false, false, 1000, 1000 + ns};
    return info;
}

static void test_result(void)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    struct exec_job_info info = info1(0, 0, 3400000);
    struct api_exec_result r = {&info, "hi\n", "", 3, 0, API_UTF8, 0};
    CHECK_INT(api_exec_result_encode(&b, &r), 0);
    CHECK_STR(b.data, "{\"pid\":4242,\"exit_code\":0,\"signal\":null,\"stdout\":\"hi\\n\","
                      "\"stderr\":\"\",\"timed_out\":false,\"killed\":false,\"truncated\":false,"
                      "\"error\":null,\"duration_ms\":3.4}");

    info = info1(-1, SIGKILL, 12000000);
    info.timed_out = info.killed = true;
    r = (struct api_exec_result){&info, "hi", "\xff", 2, 1, API_BASE64, EXEC_STDOUT};
    buf_reset(&b);
    CHECK_INT(api_exec_result_encode(&b, &r), 0);
    CHECK_STR(b.data, "{\"pid\":4242,\"exit_code\":null,\"signal\":\"SIGKILL\",\"stdout\":\"aGk=\","
                      "\"stderr\":\"/w==\",\"timed_out\":true,\"killed\":true,\"truncated\":true,"
                      "\"error\":{\"code\":\"ERR_CHILD_PROCESS_STDIO_MAXBUFFER\",\"message\":"
                      "\"stdout maxBuffer length exceeded\"},\"duration_ms\":12.0}");

    info = info1(3, 0, 1234567);
    r = (struct api_exec_result){&info, "", "e\xc0", 0, 2, API_UTF8, EXEC_STDERR};
    buf_reset(&b);
    CHECK_INT(api_exec_result_encode(&b, &r), 0);
    CHECK_STR(b.data,
              "{\"pid\":4242,\"exit_code\":3,\"signal\":null,\"stdout\":\"\","
              "\"stderr\":\"e" FFFD "\",\"timed_out\":false,\"killed\":false,"
              "\"truncated\":true,\"error\":{\"code\":\"ERR_CHILD_PROCESS_STDIO_MAXBUFFER\","
              "\"message\":\"stderr maxBuffer length exceeded\"},\"duration_ms\":1.235}");

    /* A signal without a name is reported by number. */
    info = info1(-1, SIGRTMIN + 3, 0);
    r = (struct api_exec_result){&info, "", "", 0, 0, API_UTF8, 0};
    buf_reset(&b);
    CHECK_INT(api_exec_result_encode(&b, &r), 0);
    char want[64];
    snprintf(want, sizeof want, "\"exit_code\":null,\"signal\":%d,", SIGRTMIN + 3);
    CHECK_HAS(b.data, want);
    CHECK_HAS(b.data, "\"duration_ms\":0.0}");

    /* Too small a buffer: error, nothing appended. */
    struct buf small;
    buf_init(&small, 40);
    buf_appends(&small, "keep");
    CHECK_INT(api_exec_result_encode(&small, &r), -ENOBUFS);
    CHECK_STR(small.data, "keep");
    buf_free(&small);
    buf_free(&b);
}

static void test_durations(void)
{
    static const struct {
        uint64_t ns;
        const char *want;
    } cases[] = {{0, "0.0"},        {499, "0.0"},          {500, "0.001"},
                 {1000, "0.001"},   {125000, "0.125"},     {1000000, "1.0"},
                 {1050000, "1.05"}, {999999500, "1000.0"}, {86400000000000ull, "86400000.0"}};
    struct buf b;
    buf_init(&b, 1024);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct exec_job_info info = info1(0, 0, cases[i].ns);
        buf_reset(&b);
        CHECK_INT(api_event_exit(&b, &info, false), 0);
        char want[128];
        snprintf(want, sizeof want, "\"duration_ms\":%s}\n", cases[i].want);
        CHECK_HAS(b.data, want);
    }
    buf_free(&b);
}

static void test_events(void)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    struct exec_job_info info = info1(0, 0, 12000000);
    CHECK_INT(api_event_spawn(&b, &info, false), 0);
    CHECK_STR(b.data, "{\"event\":\"spawn\",\"pid\":4242}\n");

    pid_t pids[3] = {10, 11, 12};
    struct exec_status st[3] = {{0, 0}, {-1, SIGPIPE}, {1, 0}};
    struct exec_job_info pinfo = {3, pids, st, false, false, true, 0, 2500000};
    buf_reset(&b);
    CHECK_INT(api_event_spawn(&b, &pinfo, true), 0);
    CHECK_STR(b.data, "{\"event\":\"spawn\",\"pid\":12,\"pids\":[10,11,12]}\n");

    buf_reset(&b);
    CHECK_INT(api_event_exit(&b, &info, false), 0);
    CHECK_STR(b.data, "{\"event\":\"exit\",\"exit_code\":0,\"signal\":null,\"timed_out\":false,"
                      "\"killed\":false,\"duration_ms\":12.0}\n");
    buf_reset(&b);
    CHECK_INT(api_event_exit(&b, &pinfo, true), 0);
    CHECK_STR(b.data, "{\"event\":\"exit\",\"exit_code\":1,\"signal\":null,\"timed_out\":false,"
                      "\"killed\":true,\"duration_ms\":2.5,\"steps\":[{\"exit_code\":0,\"signal\":"
                      "null},{\"exit_code\":null,\"signal\":\"SIGPIPE\"},{\"exit_code\":1,"
                      "\"signal\":null}]}\n");

    struct api_utf8 d = {{0}, 0};
    buf_reset(&b);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, "a\"b\n", 4, API_UTF8, &d), 0);
    CHECK_STR(b.data, "{\"event\":\"stdout\",\"data\":\"a\\\"b\\n\"}\n");
    buf_reset(&b);
    CHECK_INT(api_event_output(&b, EXEC_STDERR, 1, "x", 1, API_UTF8, &d), 0);
    CHECK_STR(b.data, "{\"event\":\"stderr\",\"data\":\"x\",\"step\":1}\n");
    buf_reset(&b);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, "hi", 2, API_BASE64, NULL), 0);
    CHECK_STR(b.data, "{\"event\":\"stdout\",\"data\":\"aGk=\"}\n");

    /* Only part of a character: no event until it is complete. */
    buf_reset(&b);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, "\xe2\x82", 2, API_UTF8, &d), 0);
    CHECK_INT(b.len, 0);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, "\xac!", 2, API_UTF8, &d), 0);
    CHECK_STR(b.data, "{\"event\":\"stdout\",\"data\":\"\xe2\x82\xac!\"}\n");
    /* End of stream: nothing pending, nothing written; a dangling byte, one U+FFFD. */
    buf_reset(&b);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, NULL, 0, API_UTF8, &d), 0);
    CHECK_INT(b.len, 0);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, "\xf0", 1, API_UTF8, &d), 0);
    CHECK_INT(b.len, 0);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, 2, NULL, 0, API_UTF8, &d), 0);
    CHECK_STR(b.data, "{\"event\":\"stdout\",\"data\":\"" FFFD "\",\"step\":2}\n");
    CHECK_INT(d.npending, 0);
    /* Empty reads write nothing. */
    buf_reset(&b);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, "", 0, API_UTF8, &d), 0);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, "", 0, API_BASE64, NULL), 0);
    CHECK_INT(api_event_output(&b, EXEC_STDOUT, -1, NULL, 0, API_BASE64, NULL), 0);
    CHECK_INT(b.len, 0);

    /* Out of room: nothing written and the decoder is as it was. */
    struct buf small;
    buf_init(&small, 30);
    d.pending[0] = 0xe2;
    d.npending = 1;
    CHECK_INT(api_event_output(&small, EXEC_STDOUT, -1, "\x82\xac 0123456789", 14, API_UTF8, &d),
              -ENOBUFS);
    CHECK_INT(small.len, 0);
    CHECK_INT(d.npending, 1);
    buf_free(&small);
    buf_free(&b);
}

int main(void)
{
    test_escapes();
    test_replacement();
    test_streaming();
    test_limits();
    test_base64();
    test_result();
    test_durations();
    test_events();
    return check_status();
}
