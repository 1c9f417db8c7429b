#include "api/channel.h"

#include <json-c/json.h>
#include <string.h>

#include "api/request.h"
#include "common/buf.h"

int api_message_encode(struct buf *out, const char *body, size_t len, struct api_error *err)
{
    if (api_json_check(body, len, API_MAX_DEPTH, err) < 0) return -1;
    if (buf_reserve(out, len + 1) < 0)
        return api_error_set(err, API_ERR_PAYLOAD_TOO_LARGE, NULL, "message too large");
    char *w = out->data + out->len;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            *w++ = c;
            if (c == '\\') *w++ = body[++i]; /* the escaped byte, whatever it is */
            else if (c == '"') in_string = false;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            *w++ = c;
            if (c == '"') in_string = true;
        }
    }
    *w++ = '\n';
    out->len = (size_t)(w - out->data);
    out->data[out->len] = 0;
    return 0;
}

/* Whether "NODE_" occurs in the line: memchr for its first letter is far
 * cheaper than memmem's set-up on lines this short. */
static bool has_node_prefix(const char *s, size_t len)
{
    for (const char *p = s, *end = s + len; (p = memchr(p, 'N', (size_t)(end - p)));) {
        if ((size_t)(end - p) < 5) return false;
        if (memcmp(p, "NODE_", 5) == 0) return true;
        p++;
    }
    return false;
}

enum api_message_kind api_message_classify(const char *line, size_t len)
{
    struct api_error err;
    if (api_json_check(line, len, API_MAX_DEPTH, &err) < 0) return API_MESSAGE_INVALID;
    /* Only objects with a "cmd" can be internal; skip parsing the rest. */
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == len || line[i] != '{' || !has_node_prefix(line, len)) return API_MESSAGE_USER;
    enum api_message_kind kind = API_MESSAGE_USER;
    struct json_tokener *tok = json_tokener_new_ex(API_MAX_DEPTH);
    struct json_object *o = tok ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
    struct json_object *cmd;
    if (o && json_object_object_get_ex(o, "cmd", &cmd) && json_object_is_type(cmd, json_type_string)) {
        const char *s = json_object_get_string(cmd);
        if (strncmp(s, "NODE_", 5) == 0)
            kind = strcmp(s, "NODE_HANDLE") == 0 ? API_MESSAGE_HANDLE : API_MESSAGE_INTERNAL;
    }
    json_object_put(o);
    if (tok) json_tokener_free(tok);
    return kind;
}

int api_message_record(struct buf *out, const char *line, size_t len)
{
    size_t start = out->len;
    int r = buf_appends(out, "{\"message\":");
    if (!r) r = buf_append(out, line, len);
    if (!r) r = buf_appends(out, "}\n");
    if (r && out->data) {
        out->len = start;
        out->data[start] = 0;
    }
    return r;
}
