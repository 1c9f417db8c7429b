/* auth: bearer tokens.
 *
 * Tokens come from --token-file (one per line; blank lines and lines starting
 * with '#' are skipped; re-read on SIGHUP) and SPAWND_TOKEN. Comparison takes
 * the same time whatever the bytes, and tokens are never logged. */
#ifndef SPAWND_AUTH_H
#define SPAWND_AUTH_H

#include <stdbool.h>

struct auth;

/* Load the tokens. Returns NULL after printing one line on stderr when the
 * file cannot be read or holds no token. file may be "" and env NULL. */
struct auth *auth_new(const char *file, const char *env_token);
void auth_free(struct auth *a);
/* Re-read the token file; on failure the old tokens stay. Returns 0 or -1. */
int auth_reload(struct auth *a);
/* Whether an Authorization header value ("Bearer TOKEN") names a token. */
bool auth_check(const struct auth *a, const char *authorization);

#endif
