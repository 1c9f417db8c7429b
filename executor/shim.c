#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define SHIM_MARK "spawnd-exec-shim"
#define SHIM_MAX_ARGS 4100

extern char **environ;

int shim_spawn(pid_t *pid, const char *path, posix_spawn_file_actions_t *fa,
               posix_spawnattr_t *attr, char *const argv[], char *const envp[], int64_t uid,
               int64_t gid, int nfds)
{
    size_t argc = 0;
    while (argv[argc])
        argc++;
    if (argc + 6 > SHIM_MAX_ARGS) return -E2BIG;
    char uids[24], gids[24], rfd[12];
    snprintf(uids, sizeof uids, "%" PRId64, uid);
    snprintf(gids, sizeof gids, "%" PRId64, gid);
    snprintf(rfd, sizeof rfd, "%d", nfds);
    const char **sargv = calloc(argc + 6, sizeof *sargv);
    if (!sargv) return -ENOMEM;
    sargv[0] = SHIM_MARK;
    sargv[1] = rfd;
    sargv[2] = uids;
    sargv[3] = gids;
    sargv[4] = path;
    for (size_t i = 0; i <= argc; i++)
        sargv[5 + i] = argv[i];

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
    if (argc < 6 || strcmp(argv[0], SHIM_MARK) != 0) return;
    report_fd = atoi(argv[1]);
    long long uid = strtoll(argv[2], NULL, 10), gid = strtoll(argv[3], NULL, 10);
    const char *path = argv[4];
    if (fcntl(report_fd, F_SETFD, FD_CLOEXEC) < 0) _exit(127);
    if (gid >= 0 || uid >= 0) {
        if (setgroups(0, NULL) < 0 && errno != EPERM) shim_fail(errno);
    }
    if (gid >= 0 && setgid((gid_t)gid) < 0) shim_fail(errno);
    if (uid >= 0 && setuid((uid_t)uid) < 0) shim_fail(errno);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) shim_fail(errno);
    execve(path, argv + 5, environ);
    shim_fail(errno);
}
