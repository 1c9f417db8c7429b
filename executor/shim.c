#include "shim.h"

#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define SHIM_MARK "spawnd-exec-shim"
#define SHIM_MAX_ARGS 4100

extern char **environ;

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
    int r = -posix_spawn(pid, "/proc/self/exe", fa, attr, (char *const *)sargv, envp);
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

static int report_fd = -1;

static void shim_fail(int err)
{
    ssize_t n = write(report_fd, &err, sizeof err);
    (void)n;
    _exit(127);
}

void shim_main_if_invoked(int argc, char **argv)
{
    if (argc < 8 || strcmp(argv[0], SHIM_MARK) != 0) return;
    int a = 1;
    report_fd = atoi(argv[a++]);
    pid_t parent = (pid_t)atoi(argv[a++]);
    long long uid = strtoll(argv[a++], NULL, 10), gid = strtoll(argv[a++], NULL, 10);
    int nrl = atoi(argv[a++]);
    if (fcntl(report_fd, F_SETFD, FD_CLOEXEC) < 0) _exit(127);
    for (int i = 0; i < nrl && a + 1 < argc; i++, a += 2) {
        rlim_t v = (rlim_t)strtoull(argv[a + 1], NULL, 10);
        struct rlimit rl = {v, v};
        if (setrlimit(atoi(argv[a]), &rl) < 0) shim_fail(errno);
    }
    if (a >= argc) shim_fail(EINVAL);
    const char *path = argv[a++];
    if (gid >= 0 || uid >= 0) {
        if (setgroups(0, NULL) < 0 && errno != EPERM) shim_fail(errno);
    }
    if (gid >= 0 && setgid((gid_t)gid) < 0) shim_fail(errno);
    if (uid >= 0 && setuid((uid_t)uid) < 0) shim_fail(errno);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) shim_fail(errno);
    /* Die with spawnd. Set after the credential changes (they clear it), and
     * checked against the race where spawnd died before it was set. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) shim_fail(errno);
    if (getppid() != parent) _exit(127);
    execve(path, argv + a, environ);
    shim_fail(errno);
}
