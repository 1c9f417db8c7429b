/* api_json_check: the strict RFC 8259 scanner in front of json-c. */
#include <stdlib.h>

#include "api/request.h"
#include "check.h"

/* Literals may hold NUL bytes, so lengths come from sizeof. */
#define ACCEPT(text) accept_at(__LINE__, text, sizeof(text) - 1, 32)
#define REJECT(text, msg)                                                                          \
    reject_at(__LINE__, text, sizeof(text) - 1, 32, 0, API_ERR_INVALID_JSON, NULL, msg)
#define REJECT_FIELD(text, field, msg)                                                             \
    reject_at(__LINE__, text, sizeof(text) - 1, 32, 0, API_ERR_INVALID_JSON, field, msg)

static void accept_at(int line, const char *text, size_t len, int depth)
{
    struct api_error err = {0};
    if (api_json_check(text, len, depth, &err) != 0) {
        fprintf(stderr, "line %d: rejected %.200s: %s\n", line, text, err.message);
        check_failures++;
    }
}

static void reject_at(int line, const char *text, size_t len, int depth, unsigned flags,
                      enum api_code code, const char *field, const char *msg)
{
    struct api_error err = {0};
    int r = api_json_check_ex(text, len, depth, flags, &err);
    if (r != -1 || err.code != code || (field && strcmp(err.field, field) != 0) ||
        (msg && !strstr(err.message, msg))) {
        fprintf(stderr,
                "line %d: %.200s: r=%d code=%d (want %d) field=\"%s\" (want \"%s\") message=\"%s\" "
                "(want \"%s\")\n",
                line, text, r, err.code, code, err.field, field ? field : "*", err.message,
                msg ? msg : "*");
        check_failures++;
    }
}

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = open;
        s[depth * 2 - 1 - i] = close;
    }
    s[depth * 2] = 0;
    return s;
}

static void test_valid(void)
{
    ACCEPT("{}");
    ACCEPT("[]");
    ACCEPT("0");
    ACCEPT("-0");
    ACCEPT("1.5e+10");
    ACCEPT("-1E-2");
    ACCEPT("0.0001");
    ACCEPT("9999999999999999999999"); /* JSON has no range; requests check it */
    ACCEPT("true");
    ACCEPT("null");
    ACCEPT("\"x\"");
    ACCEPT(" \t\r\n{\"a\" : [1, 2, {\"b\": null}], \"c\": false} \t\r\n");
    ACCEPT("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"");
    ACCEPT("\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf \x7f\"");
    /* Lone surrogates in \u escapes are valid JSON. */
    ACCEPT("\"\\ud800\"");
    ACCEPT("[\"\\udc00\\ud800\", \"\\ud800x\"]");
    /* The same key in different objects is fine. */
    ACCEPT("{\"a\":1,\"b\":{\"a\":2},\"c\":[{\"a\":3},{\"a\":4}]}");
    ACCEPT("{\"a\":1,\"A\":2,\"a \":3,\"\\u00e9\":4,\"e\":5}");
    ACCEPT("{\"a\\u0000b\":1,\"a\\u0000c\":2}"); /* allowed without API_JSON_NO_NUL_KEYS */
    ACCEPT("{\"\":1}");
}

static void test_invalid(void)
{
    REJECT("", "empty");
    REJECT(" \n\t ", "empty");
    REJECT("{} x", "byte 3");
    REJECT("{}{}", "expected the end");
    REJECT("{} \n ,", "unexpected ','");
    REJECT("[1,]", "expected a JSON value");
    REJECT("{\"a\":1,}", "expected a string key");
    REJECT("[1 2]", "expected ',' or ']'");
    REJECT("{\"a\" 1}", "expected ':'");
    REJECT("{\"a\":}", NULL);
    REJECT("{1:2}", "string key");
    REJECT("{\"a\":1", "end of text");
    REJECT("[", "end of text");
    REJECT("\"abc", "unterminated string");
    REJECT("\"abc\\", "unterminated string");
    /* Numbers. */
    REJECT("01", "leading zeros");
    REJECT("-01", "leading zeros");
    REJECT("[00]", "leading zeros");
    REJECT("1.", "digit after '.'");
    REJECT("1.e5", "digit after '.'");
    REJECT(".5", NULL);
    REJECT("1e", "exponent");
    REJECT("1e+", "exponent");
    REJECT("+1", NULL);
    REJECT("-", "digit");
    REJECT("0x10", NULL);
    REJECT("NaN", "unexpected 'N'");
    REJECT("Infinity", NULL);
    REJECT("-Infinity", "digit");
    REJECT("[1e400, nan]", NULL);
    /* Literals, comments, quotes. */
    REJECT("nul", NULL);
    REJECT("True", NULL);
    REJECT("tru", NULL);
    REJECT("/*c*/{}", NULL);
    REJECT("{} // c", NULL);
    REJECT("{'a':1}", NULL);
    REJECT("'a'", NULL);
    REJECT("\xef\xbb\xbf{}", "0xEF"); /* a BOM */
    /* Strings. */
    REJECT("\"a\tb\"", "control character");
    REJECT("\"a\nb\"", "control character");
    REJECT("\"\x01\"", "control character");
    REJECT("\"\x1f\"", "control character");
    REJECT("\"\\x\"", "invalid escape");
    REJECT("\"\\U0041\"", "invalid escape");
    REJECT("\"\\'\"", "invalid escape");
    REJECT("\"\\u12\"", "4 hex digits");
    REJECT("\"\\u12g4\"", "4 hex digits");
    REJECT("\"\xff\"", "UTF-8");
    REJECT("\"\x80\"", "UTF-8");
    REJECT("\"\xc0\x80\"", "UTF-8");         /* overlong NUL */
    REJECT("\"\xc1\xbf\"", "UTF-8");         /* overlong */
    REJECT("\"\xe0\x80\xaf\"", "UTF-8");     /* overlong '/' */
    REJECT("\"\xf0\x80\x80\xaf\"", "UTF-8"); /* overlong '/' */
    REJECT("\"\xed\xa0\x80\"", "UTF-8");     /* U+D800 encoded */
    REJECT("\"\xed\xbf\xbf\"", "UTF-8");     /* U+DFFF encoded */
    REJECT("\"\xf4\x90\x80\x80\"", "UTF-8"); /* U+110000 */
    REJECT("\"\xf5\x80\x80\x80\"", "UTF-8");
    REJECT("\"\xe2\x82\"", "UTF-8"); /* cut short */
    REJECT("\"\xe2\x82", "UTF-8");
    REJECT("\"\xc3\"", "UTF-8");
    REJECT("\"\xc3x\"", "UTF-8");
    /* NUL bytes anywhere in the raw text. */
    REJECT("{\"a\":1}\0", "NUL byte");
    REJECT("\"a\0b\"", "byte 2: NUL byte");
    REJECT("\0", "NUL byte");
}

static void test_duplicates(void)
{
    REJECT_FIELD("{\"a\":1,\"a\":2}", "a", "duplicate key \"a\"");
    REJECT_FIELD("{\"a\":1,\"b\":2,\"\\u0061\":3}", "a", "duplicate key \"a\"");
    REJECT_FIELD("{\"a/b\":1,\"a\\/b\":2}", "a/b", "duplicate key");
    REJECT_FIELD("{\"\\n\":1,\"\\u000a\":2}", "\n", "duplicate key");
    REJECT_FIELD("{\"\xc3\xa9\":1,\"\\u00E9\":2}", "\xc3\xa9", "duplicate key");
    REJECT_FIELD("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", "\xf0\x9f\x98\x80", NULL);
    /* json-c turns every lone surrogate into U+FFFD, so these are one key
     * to it: refuse them rather than let it keep the last. */
    REJECT_FIELD("{\"\\ud800\":1,\"\\udc00\":2}", "\xef\xbf\xbd", "duplicate key");
    REJECT_FIELD("{\"\\ud800\":1,\"\\ufffd\":2}", "\xef\xbf\xbd", "duplicate key");
    REJECT_FIELD("{\"\":1,\"\":2}", "", "duplicate key \"\"");
    REJECT_FIELD("{\"x\":{\"k\":1,\"b\":2,\"k\":3}}", "x.k", "duplicate key \"k\"");
    REJECT_FIELD("[{\"a\":1},{\"b\":[1,{\"c\":1,\"c\":2}]}]", "[1].b[1].c", NULL);
    REJECT_FIELD("{\"steps\":[{\"command\":\"a\"},{\"command\":\"b\",\"command\":\"c\"}]}",
                 "steps[1].command", "duplicate key \"command\"");
    /* A key of an inner object does not clash with the outer object's. */
    ACCEPT("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":1}}");

    /* Many keys: linear, and the duplicate is still found at the end. */
    size_t nkeys = 100000;
    char *big = malloc(nkeys * 16 + 32), *w = big;
    w += sprintf(w, "{");
    for (size_t i = 0; i < nkeys; i++)
        w += sprintf(w, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    w += sprintf(w, "}");
    accept_at(__LINE__, big, (size_t)(w - big), 32);
    w--;
    w += sprintf(w, ",\"k77777\":0}");
    reject_at(__LINE__, big, (size_t)(w - big), 32, 0, API_ERR_INVALID_JSON, "k77777",
              "duplicate key \"k77777\"");
    free(big);
}

static void test_nul_keys(void)
{
    const char *t = "{\"env\":{\"A\\u0000B\":\"x\"}}";
    reject_at(__LINE__, t, strlen(t), 32, API_JSON_NO_NUL_KEYS, API_ERR_INVALID_ARG_VALUE,
              "env.A\\u0000B", "must not contain NUL");
    t = "{\"cwd\\u0000\":\"/\",\"cwd\":\"/tmp\"}";
    reject_at(__LINE__, t, strlen(t), 32, API_JSON_NO_NUL_KEYS, API_ERR_INVALID_ARG_VALUE,
              "cwd\\u0000", NULL);
    t = "[1,{\"\\u0000\":1}]";
    reject_at(__LINE__, t, strlen(t), 32, API_JSON_NO_NUL_KEYS, API_ERR_INVALID_ARG_VALUE,
              "[1].\\u0000", NULL);
    /* NUL in values is the caller's business. */
    t = "{\"a\":\"\\u0000\"}";
    struct api_error err;
    CHECK_INT(api_json_check_ex(t, strlen(t), 32, API_JSON_NO_NUL_KEYS, &err), 0);
}

static void test_depth(void)
{
    for (int d = 1; d <= 34; d++) {
        char *arr = nested(d, '[', ']');
        struct api_error err = {0};
        int r = api_json_check(arr, strlen(arr), 32, &err);
        CHECK_INT(r, d <= 32 ? 0 : -1);
        if (d > 32) CHECK_HAS(err.message, "nesting deeper than 32 levels");
        free(arr);
    }
    /* Objects count the same way: {"a":{"a":...{}}} */
    for (int d = 31; d <= 33; d++) {
        char buf[512], *w = buf;
        for (int i = 0; i < d - 1; i++)
            w += sprintf(w, "{\"a\":");
        w += sprintf(w, "{}");
        for (int i = 0; i < d - 1; i++)
            *w++ = '}';
        *w = 0;
        struct api_error err;
        CHECK_INT(api_json_check(buf, (size_t)(w - buf), 32, &err), d <= 32 ? 0 : -1);
    }
    /* A depth of 100000 is refused without recursion. */
    char *deep = nested(100000, '[', ']');
    reject_at(__LINE__, deep, strlen(deep), 32, 0, API_ERR_INVALID_JSON, NULL, "byte 32");
    free(deep);
}

int main(void)
{
    test_valid();
    test_invalid();
    test_duplicates();
    test_nul_keys();
    test_depth();
    return check_status();
}
