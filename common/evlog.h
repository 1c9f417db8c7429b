/* evlog: a bounded log of numbered records (1, 2, 3, ...).
 *
 * Background jobs keep their output events and messages here so readers can
 * come late, resume after a sequence number and follow live.  When the bytes
 * held pass the cap, the oldest records are dropped (the newest is always
 * kept, and so is every record from `pin` on, which a reader still needs);
 * a reader asking for a dropped record learns how many it missed from
 * evlog_first(). Lookup by sequence number is O(1). */
#ifndef SPAWND_EVLOG_H
#define SPAWND_EVLOG_H

#include <stddef.h>
#include <stdint.h>

struct evlog_rec {
    uint64_t seq;
    uint64_t at; /* bytes appended to the log before this record */
    size_t len;
    char data[];
};

struct evlog {
    struct evlog_rec **recs; /* recs[off..n) are held, in order */
    size_t off, n, size;
    size_t bytes, cap;
    uint64_t next;  /* the number the next record gets */
    uint64_t total; /* bytes ever appended */
    uint64_t pin;   /* records from this number on are never dropped (UINT64_MAX: none) */
};

void evlog_init(struct evlog *l, size_t cap);
void evlog_free(struct evlog *l);
/* Append a record made of a then b. Returns its number, or 0 (ENOMEM). */
uint64_t evlog_append(struct evlog *l, const char *a, size_t alen, const char *b, size_t blen);
/* The record numbered seq, or NULL (dropped, or not written yet). */
const struct evlog_rec *evlog_get(const struct evlog *l, uint64_t seq);
/* The number of the oldest record held (l->next when empty). */
uint64_t evlog_first(const struct evlog *l);
/* How many bytes a reader whose next record is seq has still to read
 * (UINT64_MAX when that record was dropped). */
uint64_t evlog_behind(const struct evlog *l, uint64_t seq);

#endif
