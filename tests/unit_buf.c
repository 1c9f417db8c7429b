/* buf: the bounded growable buffer. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "common/buf.h"

static void test_basics(void)
{
    struct buf b;
    buf_init(&b, 100);
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(buf_room(&b), 100);

    CHECK_INT(buf_append(&b, "abc", 3), 0);
    CHECK_INT(b.len, 3);
    CHECK_STR(b.data, "abc"); /* always NUL-terminated */
    CHECK_INT(buf_appends(&b, "de"), 0);
    CHECK_INT(buf_appendc(&b, 'f'), 0);
    CHECK_STR(b.data, "abcdef");
    CHECK_INT(buf_room(&b), 94);
    CHECK_INT(buf_append(&b, NULL, 0), 0);
    CHECK_INT(b.len, 6);

    buf_consume(&b, 2);
    CHECK_STR(b.data, "cdef");
    buf_consume(&b, 100);
    CHECK_INT(b.len, 0);
    CHECK_STR(b.data, "");

    buf_appends(&b, "xyz");
    char *mem = b.data;
    buf_reset(&b);
    CHECK_INT(b.len, 0);
    CHECK(b.data == mem); /* memory kept */
    CHECK_STR(b.data, "");

    buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(buf_appends(&b, "again"), 0); /* usable after free, same cap */
    CHECK_STR(b.data, "again");
    CHECK_INT(b.cap, 100);
    buf_free(&b);
}

static void test_cap(void)
{
    struct buf b;
    buf_init(&b, 10);
    CHECK_INT(buf_append(&b, "0123456789", 10), 0);
    CHECK_INT(buf_room(&b), 0);
    CHECK_INT(buf_appendc(&b, 'x'), -ENOBUFS);
    CHECK_INT(b.len, 10);
    CHECK_STR(b.data, "0123456789");
    buf_consume(&b, 5);
    CHECK_INT(buf_append(&b, "abcdef", 6), -ENOBUFS); /* nothing appended */
    CHECK_STR(b.data, "56789");
    CHECK_INT(buf_append(&b, "abcde", 5), 0);
    CHECK_STR(b.data, "56789abcde");
    CHECK_INT(buf_reserve(&b, 1), -ENOBUFS);
    CHECK_INT(buf_reserve(&b, 0), 0);
    CHECK_INT(buf_reserve(&b, (size_t)-1), -ENOBUFS);
    buf_free(&b);

    buf_init(&b, 0);
    CHECK_INT(buf_appendc(&b, 'x'), -ENOBUFS);
    CHECK_INT(buf_printf(&b, "%d", 1), -ENOBUFS);
    CHECK_INT(buf_append(&b, "", 0), 0);
    buf_free(&b);

    /* Growing past the first allocation up to a large cap. */
    buf_init(&b, 1 << 20);
    char chunk[1000];
    memset(chunk, 'q', sizeof chunk);
    for (int i = 0; i < 1048; i++)
        CHECK_INT(buf_append(&b, chunk, sizeof chunk), 0);
    CHECK_INT(b.len, 1048000);
    CHECK_INT(buf_append(&b, chunk, sizeof chunk), -ENOBUFS);
    CHECK_INT(buf_append(&b, chunk, 576), 0);
    CHECK_INT(b.len, 1 << 20);
    CHECK(b.data[b.len] == 0);
    buf_free(&b);
}

static void test_printf(void)
{
    struct buf b;
    buf_init(&b, 4096);
    CHECK_INT(buf_printf(&b, "%s=%d", "a", 42), 0);
    CHECK_STR(b.data, "a=42");
    /* Longer than printf's stack buffer. */
    char big[1001];
    memset(big, 'z', 1000);
    big[1000] = 0;
    CHECK_INT(buf_printf(&b, "[%s]", big), 0);
    CHECK_INT(b.len, 4 + 1002);
    CHECK(b.data[4] == '[' && b.data[1005] == ']' && b.data[1006] == 0);
    buf_free(&b);

    buf_init(&b, 8);
    CHECK_INT(buf_printf(&b, "%s", "123456789"), -ENOBUFS);
    CHECK_INT(b.len, 0);
    CHECK_INT(buf_printf(&b, "%s", "12345678"), 0);
    CHECK_STR(b.data, "12345678");
    buf_free(&b);

    buf_init(&b, 300);
    CHECK_INT(buf_printf(&b, "%s", big), -ENOBUFS);
    CHECK_INT(b.len, 0);
    buf_free(&b);
}

static void test_fmt_u64(void)
{
    char d[24];
    static const struct {
        unsigned long long v;
        const char *s;
    } cases[] = {{0, "0"}, {7, "7"}, {10, "10"}, {1234567890, "1234567890"},
                 {18446744073709551615ull, "18446744073709551615"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = fmt_u64(d, cases[i].v);
        d[n] = 0;
        CHECK_INT(n, strlen(cases[i].s));
        CHECK_STR(d, cases[i].s);
    }
}

int main(void)
{
    test_basics();
    test_cap();
    test_printf();
    test_fmt_u64();
    return check_status();
}
