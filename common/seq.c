#include "seq.h"

#include <sys/random.h>
#include <time.h>

uint64_t seq_next(struct seq *s)
{
    if (!s->state && getrandom(&s->state, sizeof s->state, GRND_NONBLOCK) != sizeof s->state) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->state = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    uint64_t z = (s->state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
