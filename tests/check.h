/* check.h: the assertions every test in tests/ uses.
 *
 * A failed check prints the file, the line, the expression and both sides,
 * then counts a failure; the test's main returns check_status(). */
#ifndef SPAWND_CHECK_H
#define SPAWND_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                                      \
    do {                                                                                     \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                      \
        if (check_a_ != check_b_) {                                                          \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, \
                    #b, check_a_, check_b_);                                                 \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                         \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                     \
            fprintf(stderr, "%s:%d: %s == %s failed:\n  \"%s\"\n  \"%s\"\n", __FILE__,        \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                        \
                    check_b_ ? check_b_ : "(null)");                                         \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

/* Substring check: haystack contains needle. */
#define CHECK_HAS(hay, needle)                                                               \
    do {                                                                                     \
        const char *check_h_ = (hay), *check_n_ = (needle);                                  \
        if (!check_h_ || !strstr(check_h_, check_n_)) {                                      \
            fprintf(stderr, "%s:%d: \"%s\" not found in:\n  %.2000s\n", __FILE__, __LINE__,  \
                    check_n_, check_h_ ? check_h_ : "(null)");                               \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

static inline int check_status(void)
{
    if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
    return check_failures ? 1 : 0;
}

#endif
