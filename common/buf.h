/* buf: a growable byte buffer with a hard cap set at creation.
 *
 * Every buffer in spawnd that grows with input (request bodies, collected
 * output, encoded events) is a buf, so every one of them is bounded.  A buf is
 * always NUL-terminated (data[len] == 0) so it can be handed to C string APIs
 * and parsers without a copy. */
#ifndef SPAWND_BUF_H
#define SPAWND_BUF_H

#include <stddef.h>

struct buf {
    char *data;  /* NULL until the first append */
    size_t len;  /* bytes in use */
    size_t size; /* bytes allocated (excluding the terminating NUL) */
    size_t cap;  /* len never exceeds this */
};

/* Initialise an empty buffer that may hold up to cap bytes. Allocates nothing. */
void buf_init(struct buf *b, size_t cap);
/* Release the memory; the buffer is empty and usable again afterwards. */
void buf_free(struct buf *b);
/* Make room for n more bytes. Returns 0, -ENOBUFS past the cap, -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* Append n bytes. Returns 0, -ENOBUFS (nothing appended) or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appends(struct buf *b, const char *s);
int buf_appendc(struct buf *b, char c);
/* Write v in decimal at dst (room for 20 digits) and return how many bytes:
 * for hot paths, where snprintf's set-up costs more than the digits. */
size_t fmt_u64(char *dst, unsigned long long v);
/* printf-style append. Returns 0, -ENOBUFS or -ENOMEM. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (a consumer took them). */
void buf_consume(struct buf *b, size_t n);
/* Forget the contents but keep the memory. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = 0;
}
static inline size_t buf_room(const struct buf *b)
{
    return b->cap - b->len;
}

#endif
