/* emit N [SEED] [CHUNK]: writes N deterministic pseudo-random bytes to stdout
 * (xorshift64*), in writes of CHUNK bytes (default 65536). A test generates
 * the same sequence to check that every byte arrived intact and in order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "emit.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: emit N [SEED] [CHUNK]\n");
        return 2;
    }
    unsigned long long n = strtoull(argv[1], NULL, 10);
    uint64_t state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    size_t chunk = argc > 3 ? strtoul(argv[3], NULL, 10) : 65536;
    static unsigned char buf[1 << 20];
    if (chunk == 0 || chunk > sizeof buf) chunk = sizeof buf;
    while (n) {
        size_t k = n < chunk ? (size_t)n : chunk;
        emit_fill(&state, buf, k);
        for (size_t off = 0; off < k;) {
            ssize_t w = write(1, buf + off, k - off);
            if (w <= 0) return 1;
            off += (size_t)w;
        }
        n -= k;
    }
    return 0;
}
