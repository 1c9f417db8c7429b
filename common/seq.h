/* seq: cheap distinct 64-bit values without a system call each.
 *
 * splitmix64 over a counter that starts at a random point (one getrandom
 * per sequence). Values look random and never repeat within 2^64 calls, but
 * one value gives away the next: never use them where a secret is needed
 * (job ids use getrandom directly). Each user keeps its own sequence, so
 * values one hands out (request ids) say nothing about another's. */
#ifndef SPAWND_SEQ_H
#define SPAWND_SEQ_H

#include <stdint.h>

struct seq {
    uint64_t state; /* 0: not started */
};

uint64_t seq_next(struct seq *s);

#endif
