/* errors: the code table, error bodies and Node-style spawn errors. */
#include <errno.h>

#include "api/errors.h"
#include "check.h"
#include "common/buf.h"

static void test_table(void)
{
    static const struct {
        enum api_code code;
        int status;
        const char *name;
    } want[] = {
        {API_ERR_INVALID_JSON, 400, "ERR_INVALID_JSON"},
        {API_ERR_BAD_REQUEST, 400, "ERR_BAD_REQUEST"},
        {API_ERR_INVALID_ARG_TYPE, 400, "ERR_INVALID_ARG_TYPE"},
        {API_ERR_INVALID_ARG_VALUE, 400, "ERR_INVALID_ARG_VALUE"},
        {API_ERR_UNAUTHORIZED, 401, "ERR_UNAUTHORIZED"},
        {API_ERR_FORBIDDEN, 403, "ERR_FORBIDDEN"},
        {API_ERR_NOT_FOUND, 404, "ERR_NOT_FOUND"},
        {API_ERR_METHOD_NOT_ALLOWED, 405, "ERR_METHOD_NOT_ALLOWED"},
        {API_ERR_REQUEST_TIMEOUT, 408, "ERR_REQUEST_TIMEOUT"},
        {API_ERR_CONFLICT, 409, "ERR_CONFLICT"},
        {API_ERR_PAYLOAD_TOO_LARGE, 413, "ERR_PAYLOAD_TOO_LARGE"},
        {API_ERR_HEADERS_TOO_LARGE, 431, "ERR_HEADERS_TOO_LARGE"},
        {API_ERR_UNSUPPORTED_MEDIA_TYPE, 415, "ERR_UNSUPPORTED_MEDIA_TYPE"},
        {API_ERR_TOO_MANY_JOBS, 429, "ERR_TOO_MANY_JOBS"},
        {API_ERR_INTERNAL, 500, "ERR_INTERNAL"},
        {API_ERR_UNAVAILABLE, 503, "ERR_SERVICE_UNAVAILABLE"},
        {API_ERR_SHUTTING_DOWN, 503, "ERR_SHUTTING_DOWN"},
    };
    CHECK_INT(sizeof want / sizeof want[0], API_ERR__COUNT);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK_INT(api_error_status(want[i].code), want[i].status);
        CHECK_STR(api_error_name(want[i].code), want[i].name);
    }
    CHECK_INT(api_error_status(API_ERR__COUNT), 500);
    CHECK_STR(api_error_name((enum api_code) - 1), "ERR_INTERNAL");
}

static void test_encode(void)
{
    struct api_error err;
    struct buf b;
    buf_init(&b, 4096);

    CHECK_INT(
        api_error_set(&err, API_ERR_INVALID_ARG_TYPE, "file", "\"%s\" must be a string", "file"),
        -1);
    CHECK_INT(api_error_encode(&b, &err), 0);
    CHECK_STR(b.data, "{\"error\":{\"code\":\"ERR_INVALID_ARG_TYPE\",\"message\":"
                      "\"\\\"file\\\" must be a string\",\"field\":\"file\"}}");

    buf_reset(&b);
    api_error_set(&err, API_ERR_NOT_FOUND, NULL, "no route for %s", "/v2");
    CHECK_STR(err.field, "");
    CHECK_INT(api_error_encode(&b, &err), 0);
    CHECK_STR(b.data, "{\"error\":{\"code\":\"ERR_NOT_FOUND\",\"message\":\"no route for /v2\"}}");

    /* Messages and fields are escaped; long messages are cut, not overrun. */
    buf_reset(&b);
    api_error_set(&err, API_ERR_INVALID_ARG_VALUE, "env.A\\u0000B", "bad\tvalue\n");
    CHECK_INT(api_error_encode(&b, &err), 0);
    CHECK_STR(b.data, "{\"error\":{\"code\":\"ERR_INVALID_ARG_VALUE\",\"message\":"
                      "\"bad\\tvalue\\n\",\"field\":\"env.A\\\\u0000B\"}}");
    char longs[1000];
    memset(longs, 'x', sizeof longs - 1);
    longs[sizeof longs - 1] = 0;
    api_error_set(&err, API_ERR_INVALID_ARG_VALUE, longs, "%s", longs);
    CHECK_INT(strlen(err.message), sizeof err.message - 1);
    CHECK_INT(strlen(err.field), sizeof err.field - 1);

    /* No room: nothing appended. */
    struct buf small;
    buf_init(&small, 20);
    buf_appends(&small, "ab");
    CHECK_INT(api_error_encode(&small, &err), -ENOBUFS);
    CHECK_STR(small.data, "ab");
    buf_free(&small);
    buf_free(&b);
}

static void test_errno_names(void)
{
    static const struct {
        int err;
        const char *name;
    } want[] = {{ENOENT, "ENOENT"},   {EACCES, "EACCES"},
                {ENOTDIR, "ENOTDIR"}, {E2BIG, "E2BIG"},
                {ENOEXEC, "ENOEXEC"}, {EPERM, "EPERM"},
                {ELOOP, "ELOOP"},     {ENAMETOOLONG, "ENAMETOOLONG"},
                {EMFILE, "EMFILE"},   {ENFILE, "ENFILE"},
                {ENOMEM, "ENOMEM"},   {EAGAIN, "EAGAIN"},
                {EINVAL, "EINVAL"},   {ETXTBSY, "ETXTBSY"},
                {EISDIR, "EISDIR"},   {EIO, "EIO"},
                {ENXIO, "ENXIO"},     {EFAULT, "EFAULT"},
                {ESRCH, "ESRCH"},     {ECHILD, "ECHILD"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_STR(api_errno_name(want[i].err), want[i].name);
    CHECK_STR(api_errno_name(0), "UNKNOWN");
    CHECK_STR(api_errno_name(99999), "UNKNOWN");
    CHECK_STR(api_errno_name(-ENOENT), "UNKNOWN"); /* takes the positive value */
}

static void test_spawn_error(void)
{
    struct buf b;
    buf_init(&b, 4096);
    CHECK_INT(api_spawn_error_encode(&b, -ENOENT, "nosuch", -1), 0);
    CHECK_STR(b.data, "{\"error\":{\"code\":\"ENOENT\",\"errno\":-2,\"syscall\":\"spawn nosuch\","
                      "\"path\":\"nosuch\",\"message\":\"spawn nosuch ENOENT\"}}");

    buf_reset(&b);
    CHECK_INT(api_spawn_error_encode(&b, -EACCES, "/etc/passwd", 1), 0);
    CHECK_STR(b.data, "{\"error\":{\"code\":\"EACCES\",\"errno\":-13,\"syscall\":"
                      "\"spawn /etc/passwd\",\"path\":\"/etc/passwd\",\"message\":"
                      "\"spawn /etc/passwd EACCES\",\"step\":1}}");

    buf_reset(&b);
    CHECK_INT(api_spawn_error_encode(&b, -ENOEXEC, "a\"b\\c\n", 0), 0);
    CHECK_STR(b.data, "{\"error\":{\"code\":\"ENOEXEC\",\"errno\":-8,\"syscall\":"
                      "\"spawn a\\\"b\\\\c\\n\",\"path\":\"a\\\"b\\\\c\\n\",\"message\":"
                      "\"spawn a\\\"b\\\\c\\n ENOEXEC\",\"step\":0}}");

    buf_reset(&b);
    CHECK_INT(api_spawn_error_encode(&b, -9999, "x", -1), 0);
    CHECK_STR(b.data, "{\"error\":{\"code\":\"UNKNOWN\",\"errno\":-9999,\"syscall\":\"spawn x\","
                      "\"path\":\"x\",\"message\":\"spawn x UNKNOWN\"}}");

    /* Appends after what is there; on failure leaves it as it was. */
    buf_reset(&b);
    buf_appends(&b, "pre");
    CHECK_INT(api_spawn_error_encode(&b, -ENOENT, "", -1), 0);
    CHECK_STR(b.data, "pre{\"error\":{\"code\":\"ENOENT\",\"errno\":-2,\"syscall\":\"spawn \","
                      "\"path\":\"\",\"message\":\"spawn  ENOENT\"}}");
    for (size_t cap = 0; cap < 120; cap++) {
        struct buf small;
        buf_init(&small, cap);
        int r = api_spawn_error_encode(&small, -ENOENT, "nosuch", -1);
        CHECK_INT(r, cap >= 111 ? 0 : -ENOBUFS);
        CHECK_INT(small.len, r ? 0 : 111);
        buf_free(&small);
    }
    buf_free(&b);
}

int main(void)
{
    test_table();
    test_encode();
    test_errno_names();
    test_spawn_error();
    return check_status();
}
