/* channel: the messages of a fork job, as JSON lines.
 *
 * Node's IPC in "json" serialization mode frames each message as
 * JSON.stringify(message) + "\n". spawnd writes only complete, valid,
 * single-line JSON texts (one bad line throws inside a Node child), and reads
 * the child's lines back, keeping Node's own internal messages (objects whose
 * "cmd" starts with "NODE_") away from the caller. */
#ifndef SPAWND_API_CHANNEL_H
#define SPAWND_API_CHANNEL_H

#include <stddef.h>

#include "api/errors.h"

struct buf;

/* Validate body as one JSON text (strictly, as requests are) and append it to
 * out on one line, without the whitespace between tokens, followed by "\n".
 * Strings, numbers and everything else are copied byte for byte. Returns 0,
 * or -1 with err filled (out unchanged). */
int api_message_encode(struct buf *out, const char *body, size_t len, struct api_error *err);

enum api_message_kind {
    API_MESSAGE_USER,     /* a message for the caller */
    API_MESSAGE_INTERNAL, /* Node's own ({"cmd":"NODE_..."}): not delivered */
    API_MESSAGE_HANDLE,   /* NODE_HANDLE: the child tries to pass a handle */
    API_MESSAGE_INVALID,  /* not JSON */
};

/* What one line from the child (without its "\n") is. */
enum api_message_kind api_message_classify(const char *line, size_t len);

/* The answer spawnd gives a NODE_HANDLE: declined, so Node's child stops
 * waiting (it retransmits a few times, then drops the handle). */
#define API_MESSAGE_HANDLE_NACK "{\"cmd\":\"NODE_HANDLE_NACK\"}\n"

/* Append the record kept for one user message: {"message":LINE}\n. */
int api_message_record(struct buf *out, const char *line, size_t len);

#endif
