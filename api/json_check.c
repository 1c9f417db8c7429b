/* A strict RFC 8259 scanner run over every request body before json-c sees
 * it.  json-c (0.16, even with JSON_TOKENER_STRICT) accepts NaN, Infinity,
 * "1.", "-01", single-quoted keys, raw control characters and invalid UTF-8
 * in strings, and keeps the last of two equal keys; it also cuts object keys
 * at a NUL byte, so {"cwd\u0000":..} would land on "cwd".  This scanner
 * refuses all of that, so what json-c builds is exactly what was sent.
 *
 * It walks the text once with a fixed stack of CHECK_MAX_DEPTH frames (no
 * recursion, about 5 KiB of C stack).  The only memory it may allocate is the
 * set of object keys seen, for the duplicate check: a hash table that starts
 * inline and grows on the heap, so the check stays linear in the number of
 * keys (its hash is seeded per call from a sequence of its own that nothing
 * reveals, so a sender cannot pick keys that collide). */
#include "api/request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/seq.h"

/* The ceiling of max_depth: the stack below is this deep. */
#define CHECK_MAX_DEPTH 128

struct frame {
    bool object;
    uint32_t serial;         /* object: identifies its keys in the key set */
    size_t index;            /* array: index of the element being scanned */
    size_t key_off, key_len; /* object: raw text of the current key, quotes excluded */
};

struct key_slot {
    uint64_t hash;   /* of the decoded key and the object's serial */
    uint32_t serial; /* 0: empty slot */
    size_t off, len;
};

#define INLINE_SLOTS 32

struct scan {
    const unsigned char *s;
    size_t n, pos;
    int depth, max_depth;
    unsigned flags;
    uint32_t serials;
    uint64_t seed;
    struct key_slot *slots;
    size_t nslots, nkeys;
    struct api_error *err;
    struct key_slot inline_slots[INLINE_SLOTS];
    struct frame stack[CHECK_MAX_DEPTH];
};

static int fail(struct scan *sc, const char *what)
{
    return api_error_set(sc->err, API_ERR_INVALID_JSON, NULL, "invalid JSON at byte %zu: %s",
                         sc->pos, what);
}

static int fail_char(struct scan *sc, const char *expected)
{
    char what[96];
    unsigned char c = sc->pos < sc->n ? sc->s[sc->pos] : 0;
    if (sc->pos >= sc->n)
        snprintf(what, sizeof what, "unexpected end of text, expected %s", expected);
    else if (c > 0x20 && c < 0x7f)
        snprintf(what, sizeof what, "unexpected '%c', expected %s", c, expected);
    else
        snprintf(what, sizeof what, "unexpected byte 0x%02X, expected %s", c, expected);
    return fail(sc, what);
}

static inline void skip_ws(struct scan *sc)
{
    while (sc->pos < sc->n) {
        unsigned char c = sc->s[sc->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        sc->pos++;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static long hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Length of a valid UTF-8 sequence at p (n bytes available), or 0 when it is
 * invalid: overlong, a surrogate, past U+10FFFF, or cut short. */
static size_t utf8_valid(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

/* Scan the string starting at the '"' under pos; on success pos is past the
 * closing quote and *off, *len give the raw contents. */
static int scan_string(struct scan *sc, size_t *off, size_t *len)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n, start = ++sc->pos, i = start;
    for (;;) {
        while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
            i++;
        sc->pos = i;
        if (i == n) return fail(sc, "unterminated string");
        unsigned char c = s[i];
        if (c == '"') break;
        if (c < 0x20) return fail(sc, "control character in string (must be escaped)");
        if (c == '\\') {
            if (i + 1 == n) return fail(sc, "unterminated string");
            switch (s[i + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                i += 2;
                continue;
            case 'u':
                if (n - i < 6 || hex4(s + i + 2) < 0)
                    return fail(sc, "\\u must be followed by 4 hex digits");
                i += 6;
                continue;
            default:
                return fail(sc, "invalid escape sequence");
            }
        }
        size_t k = utf8_valid(s + i, n - i);
        if (!k) return fail(sc, "invalid UTF-8 in string");
        i += k;
    }
    *off = start;
    *len = i - start;
    sc->pos = i + 1;
    return 0;
}

/* The next code point of a key scan_string accepted, decoded as json-c
 * decodes it (a \u escape of a lone surrogate becomes U+FFFD), or -1 at the
 * end.  Keys are compared and hashed as these code points. */
static long key_next(const unsigned char *s, size_t *i, size_t end)
{
    if (*i >= end) return -1;
    unsigned char c = s[*i];
    if (c == '\\') {
        unsigned char e = s[*i + 1];
        *i += 2;
        switch (e) {
        case 'b':
            return '\b';
        case 'f':
            return '\f';
        case 'n':
            return '\n';
        case 'r':
            return '\r';
        case 't':
            return '\t';
        case 'u':
            break;
        default:
            return e; /* '"', '\\', '/' */
        }
        long u = hex4(s + *i);
        *i += 4;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - *i >= 6 && s[*i] == '\\' && s[*i + 1] == 'u') {
                long lo = hex4(s + *i + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    *i += 6;
                    return 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                }
            }
            return 0xFFFD;
        }
        if (u >= 0xDC00 && u <= 0xDFFF) return 0xFFFD;
        return u;
    }
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    long cp = c & (0x7F >> len);
    for (size_t k = 1; k < len; k++)
        cp = cp << 6 | (s[*i + k] & 0x3F);
    *i += len;
    return cp;
}

static bool key_equal(const unsigned char *s, size_t aoff, size_t alen, size_t boff, size_t blen)
{
    size_t a = aoff, b = boff;
    for (;;) {
        long x = key_next(s, &a, aoff + alen), y = key_next(s, &b, boff + blen);
        if (x != y) return false;
        if (x < 0) return true;
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Appends up to n bytes of src to dst (cap bytes, NUL-terminated), cutting
 * what does not fit. */
static void append(char *dst, size_t cap, const char *src, size_t n)
{
    size_t len = strlen(dst);
    if (n > cap - 1 - len) n = cap - 1 - len;
    memcpy(dst + len, src, n);
    dst[len + n] = 0;
}

/* Appends a key as text: UTF-8, with a NUL shown as \u0000. */
static void append_key(char *dst, size_t cap, const unsigned char *s, size_t off, size_t len)
{
    size_t i = off;
    long cp;
    while ((cp = key_next(s, &i, off + len)) >= 0) {
        char u[4];
        size_t k;
        if (cp == 0) {
            append(dst, cap, "\\u0000", 6);
            continue;
        }
        if (cp < 0x80) {
            u[0] = (char)cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | cp >> 12);
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            u[0] = (char)(0xF0 | cp >> 18);
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            k = 4;
        }
        append(dst, cap, u, k);
    }
}

/* The path of the value being scanned, as request errors name fields:
 * "env.PATH", "steps[1].args[0]". */
static void build_path(const struct scan *sc, char *dst, size_t cap)
{
    dst[0] = 0;
    for (int d = 0; d < sc->depth; d++) {
        const struct frame *f = &sc->stack[d];
        if (f->object) {
            if (d) append(dst, cap, ".", 1);
            append_key(dst, cap, sc->s, f->key_off, f->key_len);
        } else {
            char idx[32];
            int k = snprintf(idx, sizeof idx, "[%zu]", f->index);
            append(dst, cap, idx, (size_t)k);
        }
    }
}

static int grow_keys(struct scan *sc)
{
    size_t nslots = sc->nslots * 2;
    struct key_slot *slots = calloc(nslots, sizeof *slots);
    if (!slots) return api_error_set(sc->err, API_ERR_UNAVAILABLE, NULL, "out of memory");
    for (size_t i = 0; i < sc->nslots; i++) {
        const struct key_slot *k = &sc->slots[i];
        if (!k->serial) continue;
        size_t j = k->hash & (nslots - 1);
        while (slots[j].serial)
            j = (j + 1) & (nslots - 1);
        slots[j] = *k;
    }
    if (sc->slots != sc->inline_slots) free(sc->slots);
    sc->slots = slots;
    sc->nslots = nslots;
    return 0;
}

/* Check the key just scanned into the top frame: no NUL (when asked), not
 * seen before in the same object; then remember it. */
static int add_key(struct scan *sc)
{
    const struct frame *f = &sc->stack[sc->depth - 1];
    uint64_t h = sc->seed ^ f->serial;
    bool nul = false;
    size_t i = f->key_off;
    long cp;
    while ((cp = key_next(sc->s, &i, f->key_off + f->key_len)) >= 0) {
        h = (h ^ (uint64_t)cp) * 0x100000001b3ull;
        nul |= cp == 0;
    }
    h = mix64(h);

    if (nul && (sc->flags & API_JSON_NO_NUL_KEYS)) {
        char key[96] = "";
        append_key(key, sizeof key, sc->s, f->key_off, f->key_len);
        char path[sizeof sc->err->field];
        build_path(sc, path, sizeof path);
        return api_error_set(sc->err, API_ERR_INVALID_ARG_VALUE, path,
                             "key \"%s\" must not contain NUL bytes", key);
    }

    if (sc->nkeys + 1 > sc->nslots / 2 && grow_keys(sc)) return -1;
    size_t j = h & (sc->nslots - 1);
    for (; sc->slots[j].serial; j = (j + 1) & (sc->nslots - 1)) {
        const struct key_slot *k = &sc->slots[j];
        if (k->hash == h && k->serial == f->serial &&
            key_equal(sc->s, k->off, k->len, f->key_off, f->key_len)) {
            char key[96] = "";
            append_key(key, sizeof key, sc->s, f->key_off, f->key_len);
            char path[sizeof sc->err->field];
            build_path(sc, path, sizeof path);
            return api_error_set(sc->err, API_ERR_INVALID_JSON, path, "duplicate key \"%s\"", key);
        }
    }
    sc->slots[j] = (struct key_slot){h, f->serial, f->key_off, f->key_len};
    sc->nkeys++;
    return 0;
}

static int scan_number(struct scan *sc)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n;
    if (s[sc->pos] == '-') sc->pos++;
    if (sc->pos < n && s[sc->pos] == '0') {
        sc->pos++;
        if (sc->pos < n && s[sc->pos] >= '0' && s[sc->pos] <= '9')
            return fail(sc, "leading zeros are not allowed");
    } else if (sc->pos < n && s[sc->pos] >= '1' && s[sc->pos] <= '9') {
        while (sc->pos < n && s[sc->pos] >= '0' && s[sc->pos] <= '9')
            sc->pos++;
    } else
        return fail_char(sc, "a digit");
    if (sc->pos < n && s[sc->pos] == '.') {
        sc->pos++;
        if (sc->pos == n || s[sc->pos] < '0' || s[sc->pos] > '9')
            return fail_char(sc, "a digit after '.'");
        while (sc->pos < n && s[sc->pos] >= '0' && s[sc->pos] <= '9')
            sc->pos++;
    }
    if (sc->pos < n && (s[sc->pos] == 'e' || s[sc->pos] == 'E')) {
        sc->pos++;
        if (sc->pos < n && (s[sc->pos] == '+' || s[sc->pos] == '-')) sc->pos++;
        if (sc->pos == n || s[sc->pos] < '0' || s[sc->pos] > '9')
            return fail_char(sc, "a digit in the exponent");
        while (sc->pos < n && s[sc->pos] >= '0' && s[sc->pos] <= '9')
            sc->pos++;
    }
    return 0;
}

static int push(struct scan *sc, bool object)
{
    if (sc->depth >= sc->max_depth) {
        char what[64];
        snprintf(what, sizeof what, "nesting deeper than %d levels", sc->max_depth);
        return fail(sc, what);
    }
    struct frame *f = &sc->stack[sc->depth++];
    f->object = object;
    f->serial = object ? ++sc->serials : 0;
    f->index = 0;
    f->key_off = f->key_len = 0;
    sc->pos++;
    return 0;
}

static int scan(struct scan *sc)
{
    const unsigned char *s = sc->s;
    size_t off, len;

value:
    skip_ws(sc);
    if (sc->pos == sc->n) return fail(sc, "unexpected end of text");
    switch (s[sc->pos]) {
    case '{':
        if (push(sc, true)) return -1;
        skip_ws(sc);
        if (sc->pos < sc->n && s[sc->pos] == '}') {
            sc->pos++;
            sc->depth--;
            goto after;
        }
        goto key;
    case '[':
        if (push(sc, false)) return -1;
        skip_ws(sc);
        if (sc->pos < sc->n && s[sc->pos] == ']') {
            sc->pos++;
            sc->depth--;
            goto after;
        }
        goto value;
    case '"':
        if (scan_string(sc, &off, &len)) return -1;
        goto after;
    case 't':
    case 'f':
    case 'n': {
        const char *lit = s[sc->pos] == 't' ? "true" : s[sc->pos] == 'f' ? "false" : "null";
        size_t k = strlen(lit);
        if (sc->n - sc->pos < k || memcmp(s + sc->pos, lit, k) != 0)
            return fail_char(sc, "a JSON value");
        sc->pos += k;
        goto after;
    }
    default:
        if (s[sc->pos] == '-' || (s[sc->pos] >= '0' && s[sc->pos] <= '9')) {
            if (scan_number(sc)) return -1;
            goto after;
        }
        return fail_char(sc, "a JSON value");
    }

key:
    skip_ws(sc);
    if (sc->pos == sc->n || s[sc->pos] != '"') return fail_char(sc, "a string key");
    if (scan_string(sc, &off, &len)) return -1;
    sc->stack[sc->depth - 1].key_off = off;
    sc->stack[sc->depth - 1].key_len = len;
    if (add_key(sc)) return -1;
    skip_ws(sc);
    if (sc->pos == sc->n || s[sc->pos] != ':') return fail_char(sc, "':'");
    sc->pos++;
    goto value;

after:
    skip_ws(sc);
    if (sc->depth == 0) {
        if (sc->pos != sc->n) return fail_char(sc, "the end of the text");
        return 0;
    }
    if (sc->stack[sc->depth - 1].object) {
        if (sc->pos < sc->n && s[sc->pos] == ',') {
            sc->pos++;
            goto key;
        }
        if (sc->pos < sc->n && s[sc->pos] == '}') {
            sc->pos++;
            sc->depth--;
            goto after;
        }
        return fail_char(sc, "',' or '}'");
    }
    if (sc->pos < sc->n && s[sc->pos] == ',') {
        sc->pos++;
        sc->stack[sc->depth - 1].index++;
        goto value;
    }
    if (sc->pos < sc->n && s[sc->pos] == ']') {
        sc->pos++;
        sc->depth--;
        goto after;
    }
    return fail_char(sc, "',' or ']'");
}

int api_json_check_ex(const char *text, size_t len, int max_depth, unsigned flags,
                      struct api_error *err)
{
    const char *nul = len ? memchr(text, 0, len) : NULL; /* text may be NULL when empty */
    if (nul) {
        return api_error_set(err, API_ERR_INVALID_JSON, NULL, "invalid JSON at byte %zu: NUL byte",
                             (size_t)(nul - text));
    }
    struct scan scan_state, *sc = &scan_state;
    sc->s = (const unsigned char *)text;
    sc->n = len;
    sc->pos = 0;
    sc->depth = 0;
    sc->max_depth = max_depth < 1 ? 1 : max_depth > CHECK_MAX_DEPTH ? CHECK_MAX_DEPTH : max_depth;
    sc->flags = flags;
    sc->serials = 0;
    static struct seq seeds; /* one getrandom per process, not per call */
    sc->seed = seq_next(&seeds);
    sc->slots = sc->inline_slots;
    sc->nslots = INLINE_SLOTS;
    sc->nkeys = 0;
    memset(sc->inline_slots, 0, sizeof sc->inline_slots);
    sc->err = err;

    skip_ws(sc);
    int r = sc->pos == sc->n ? fail(sc, "empty text") : scan(sc);
    if (sc->slots != sc->inline_slots) free(sc->slots);
    return r;
}

int api_json_check(const char *text, size_t len, int max_depth, struct api_error *err)
{
    return api_json_check_ex(text, len, max_depth, 0, err);
}
