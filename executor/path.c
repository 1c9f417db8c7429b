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

int exec_path_resolve(const char *file, char *const *envp, char *out, size_t outsz)
{
    size_t flen = strlen(file);
    if (flen == 0) return -ENOENT;
    if (strchr(file, '/')) {
        if (flen >= outsz) return -ENAMETOOLONG;
        memcpy(out, file, flen + 1);
        return 0;
    }
    int err = -ENOENT;
    const char *p = env_path(envp);
    for (;;) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        /* An empty element means the current directory, as in execvp. */
        const char *dir = dlen ? p : ".";
        if (!dlen) dlen = 1;
        if (dlen + 1 + flen < outsz) {
            memcpy(out, dir, dlen);
            out[dlen] = '/';
            memcpy(out + dlen + 1, file, flen + 1);
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
