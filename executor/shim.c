#include "shim.h"

#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHIM_MAX_ARGS 4100

static char shim_path[4096];

int shim_init(void)
{
    /* The helper is installed next to spawnd itself. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -errno;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return -ENOENT;
    *slash = 0;
    if ((size_t)snprintf(shim_path, sizeof shim_path, "%s/spawnd-shim", self) >= sizeof shim_path)
        return -ENAMETOOLONG;
    return access(shim_path, X_OK) == 0 ? 0 : -errno;
}

int shim_spawn(pid_t *pid, const char *path, posix_spawn_file_actions_t *fa,
               posix_spawnattr_t *attr, char *const argv[], char *const envp[],
               const struct shim_opts *o, int nfds)
{
    /* argv: MARK report-fd parent-pid uid gid nrlimits (res value)... path argv... */
    size_t argc = 0;
    while (argv[argc])
        argc++;
    size_t head = 7 + 2 * o->nrlimits;
    if (argc + head + 1 > SHIM_MAX_ARGS) return -E2BIG;
    char nums[6 + 2 * 16][24];
    const char **sargv = calloc(argc + head + 1, sizeof *sargv);
    if (!sargv || o->nrlimits > 16) {
        free(sargv);
        return -ENOMEM;
    }
    size_t k = 0, m = 0;
    sargv[k++] = SHIM_MARK;
#define NUM(fmt, v) (snprintf(nums[m], sizeof nums[m], fmt, v), sargv[k++] = nums[m++])
    NUM("%d", nfds);
    NUM("%d", (int)getpid());
    NUM("%" PRId64, o->uid);
    NUM("%" PRId64, o->gid);
    NUM("%zu", o->nrlimits);
    for (size_t i = 0; i < o->nrlimits; i++) {
        NUM("%d", o->rlimits[i].resource);
        NUM("%" PRIu64, o->rlimits[i].value);
    }
#undef NUM
    sargv[k++] = path;
    for (size_t i = 0; i <= argc; i++)
        sargv[k + i] = argv[i];

    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0) {
        free(sargv);
        return -errno;
    }
    posix_spawn_file_actions_adddup2(fa, rep[1], nfds);
    posix_spawn_file_actions_addclosefrom_np(fa, nfds + 1);
    int r = -posix_spawn(pid, shim_path, fa, attr, (char *const *)sargv, envp);
    free(sargv);
    close(rep[1]);
    if (r == 0) {
        /* EOF: the exec succeeded (the report descriptor was close-on-exec). */
        int err = 0;
        ssize_t n;
        while ((n = read(rep[0], &err, sizeof err)) < 0 && errno == EINTR)
            ;
        if (n == (ssize_t)sizeof err) r = -err; /* the shim _exit()s; SIGCHLD reaps it */
    }
    close(rep[0]);
    return r;
}

