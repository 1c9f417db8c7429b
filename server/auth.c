#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

#define AUTH_MAX_TOKENS 1024
#define AUTH_MAX_LEN 1024

struct auth {
    char file[4096];
    char *env;          /* SPAWND_TOKEN, or NULL */
    char **tokens;      /* from the file */
    size_t ntokens;
};

static void free_tokens(char **t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        explicit_bzero(t[i], strlen(t[i]));
        free(t[i]);
    }
    free(t);
}

/* Read the file into *out. Returns the count, or -1 with why in err. */
static long read_tokens(const char *file, char ***out, const char **err)
{
    FILE *f = fopen(file, "re");
    if (!f) {
        *err = strerror(errno);
        return -1;
    }
    char **t = calloc(AUTH_MAX_TOKENS, sizeof *t);
    size_t n = 0;
    char line[AUTH_MAX_LEN + 2];
    while (t && n < AUTH_MAX_TOKENS && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = 0;
        if (len == 0 || line[0] == '#') continue;
        if (!(t[n++] = strdup(line))) break;
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (!t || (n && !t[n - 1])) {
        free_tokens(t, t ? n - 1 : 0);
        *err = "out of memory";
        return -1;
    }
    *out = t;
    return (long)n;
}

struct auth *auth_new(const char *file, const char *env_token)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    snprintf(a->file, sizeof a->file, "%s", file ? file : "");
    if (env_token && *env_token) a->env = strdup(env_token);
    if (*a->file) {
        const char *err = NULL;
        long n = read_tokens(a->file, &a->tokens, &err);
        if (n < 0) {
            fprintf(stderr, "spawnd: --token-file %s: %s\n", a->file, err);
            auth_free(a);
            return NULL;
        }
        a->ntokens = (size_t)n;
    }
    if (!a->env && a->ntokens == 0) {
        fprintf(stderr, "spawnd: --token-file %s holds no token\n", a->file);
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_free(struct auth *a)
{
    if (!a) return;
    free_tokens(a->tokens, a->ntokens);
    if (a->env) {
        explicit_bzero(a->env, strlen(a->env));
        free(a->env);
    }
    free(a);
}

int auth_reload(struct auth *a)
{
    if (!*a->file) return 0;
    char **t = NULL;
    const char *err = NULL;
    long n = read_tokens(a->file, &t, &err);
    if (n < 0 || (n == 0 && !a->env)) {
        log_warn("msg=\"token file not reloaded; the old tokens stay\" file=%s error=\"%s\"",
                 a->file, n < 0 ? err : "no token in it");
        if (t) free_tokens(t, (size_t)n);
        return -1;
    }
    free_tokens(a->tokens, a->ntokens);
    a->tokens = t;
    a->ntokens = (size_t)n;
    log_info("msg=\"tokens reloaded\" count=%ld", n);
    return 0;
}

/* 1 when a and b are equal, in time that depends only on their lengths'
 * maximum, never on where they differ. */
static int same(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen > blen ? alen : blen;
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

bool auth_check(const struct auth *a, const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return false;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    size_t glen = strlen(given);
    if (glen == 0 || glen > AUTH_MAX_LEN) return false;
    int ok = 0;
    if (a->env) ok |= same(a->env, strlen(a->env), given, glen);
    for (size_t i = 0; i < a->ntokens; i++) /* every token is compared, match or not */
        ok |= same(a->tokens[i], strlen(a->tokens[i]), given, glen);
    return ok;
}
