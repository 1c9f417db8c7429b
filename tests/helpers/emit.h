/* The byte sequence of the emit helper, shared with the tests that check it. */
#ifndef SPAWND_EMIT_H
#define SPAWND_EMIT_H

#include <stddef.h>
#include <stdint.h>

static inline void emit_fill(uint64_t *state, unsigned char *out, size_t n)
{
    uint64_t x = *state ? *state : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out[i] = (unsigned char)((x * 0x2545F4914F6CDD1DULL) >> 56);
    }
    *state = x;
}

#endif
