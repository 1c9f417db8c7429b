/* Base64 (RFC 4648, with padding) decoding for the tests that check the
 * bytes of encoding "base64" output. */
#ifndef SPAWND_TEST_B64_H
#define SPAWND_TEST_B64_H

#include <stddef.h>

static inline int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes n characters of s (a multiple of 4, padded) into out (room for
 * n / 4 * 3 bytes). Returns the number of bytes, or -1 when s is not valid
 * padded base64. */
static inline long b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad) return -1; /* data after padding */
                v[k] = b64_val(c);
                if (v[k] < 0) return -1;
            }
        }
        unsigned long w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                          ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2) out[o++] = (unsigned char)(w >> 8);
        if (pad < 1) out[o++] = (unsigned char)w;
    }
    return (long)o;
}

#endif
