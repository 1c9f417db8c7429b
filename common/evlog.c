#include "evlog.h"

#include <stdlib.h>
#include <string.h>

void evlog_init(struct evlog *l, size_t cap)
{
    memset(l, 0, sizeof *l);
    l->cap = cap;
    l->next = 1;
    l->pin = UINT64_MAX;
}

void evlog_free(struct evlog *l)
{
    for (size_t i = l->off; i < l->n; i++)
        free(l->recs[i]);
    free(l->recs);
    evlog_init(l, l->cap);
}

static void drop_oldest(struct evlog *l)
{
    struct evlog_rec *r = l->recs[l->off++];
    l->bytes -= r->len;
    free(r);
}

uint64_t evlog_append(struct evlog *l, const char *a, size_t alen, const char *b, size_t blen)
{
    if (l->n == l->size) {
        if (l->off > 0) { /* slide the held records down first */
            memmove(l->recs, l->recs + l->off, (l->n - l->off) * sizeof *l->recs);
            l->n -= l->off;
            l->off = 0;
        }
        if (l->n == l->size) {
            size_t size = l->size ? l->size * 2 : 64;
            struct evlog_rec **recs = realloc(l->recs, size * sizeof *recs);
            if (!recs) return 0;
            l->recs = recs;
            l->size = size;
        }
    }
    struct evlog_rec *r = malloc(sizeof *r + alen + blen);
    if (!r) return 0;
    r->seq = l->next++;
    r->at = l->total;
    r->len = alen + blen;
    l->total += r->len;
    memcpy(r->data, a, alen);
    memcpy(r->data + alen, b, blen);
    l->recs[l->n++] = r;
    l->bytes += r->len;
    while (l->bytes > l->cap && l->n - l->off > 1 && l->recs[l->off]->seq < l->pin)
        drop_oldest(l);
    return r->seq;
}

uint64_t evlog_first(const struct evlog *l)
{
    return l->n > l->off ? l->recs[l->off]->seq : l->next;
}

const struct evlog_rec *evlog_get(const struct evlog *l, uint64_t seq)
{
    uint64_t first = evlog_first(l);
    if (seq < first || seq >= l->next) return NULL;
    return l->recs[l->off + (size_t)(seq - first)];
}

uint64_t evlog_behind(const struct evlog *l, uint64_t seq)
{
    if (seq >= l->next) return 0;
    const struct evlog_rec *r = evlog_get(l, seq);
    return r ? l->total - r->at : UINT64_MAX;
}
