#include "path.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *env_path(char *const *envp)
{
    for (; envp && *envp; envp++)
        if (strncmp(*envp, "PATH=", 5) == 0) return *envp + 5;
    return "/bin:/usr/bin"; /* confstr(_CS_PATH), what execvp uses */
}

/* out = rel made absolute: relative to cwd (the child's), itself relative to
 * spawnd's working directory when it is not absolute. The child execs the
 * result after its chdir, so it must not depend on either directory. */
static int join(const char *cwd, const char *rel, size_t rlen, char *out, size_t outsz)
{
    if (rel[0] == '/') {
        if (rlen >= outsz) return -ENAMETOOLONG;
        memcpy(out, rel, rlen);
        out[rlen] = 0;
        return 0;
    }
    size_t len = 0;
    if (!cwd || cwd[0] != '/') {
        if (!getcwd(out, outsz)) return -errno;
        len = strlen(out);
    }
    if (cwd) {
        size_t clen = strlen(cwd);
        if (len + 1 + clen >= outsz) return -ENAMETOOLONG;
        if (len) out[len++] = '/';
        memcpy(out + len, cwd, clen);
        len += clen;
    }
    if (len + 1 + rlen >= outsz) return -ENAMETOOLONG;
    out[len++] = '/';
    memcpy(out + len, rel, rlen);
    out[len + rlen] = 0;
    return 0;
}

int exec_path_resolve(const char *file, char *const *envp, const char *cwd, char *out,
                      size_t outsz)
{
    size_t flen = strlen(file);
    if (flen == 0) return -ENOENT;
    if (strchr(file, '/')) return join(cwd, file, flen, out, outsz);
    int err = -ENOENT;
    const char *p = env_path(envp);
    for (;;) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        /* An empty element means the current directory, as in execvp. */
        const char *dir = dlen ? p : ".";
        if (!dlen) dlen = 1;
        char cand[4096];
        if (dlen + 1 + flen < sizeof cand) {
            memcpy(cand, dir, dlen);
            cand[dlen] = '/';
            memcpy(cand + dlen + 1, file, flen + 1);
        }
        if (dlen + 1 + flen < sizeof cand && join(cwd, cand, dlen + 1 + flen, out, outsz) == 0) {
            struct stat st;
            if (stat(out, &st) == 0) {
                if (S_ISREG(st.st_mode) && access(out, X_OK) == 0) return 0;
                err = -EACCES; /* execvp remembers EACCES and keeps looking */
            }
        }
        if (!*end) break;
        p = end + 1;
    }
    return err;
}
