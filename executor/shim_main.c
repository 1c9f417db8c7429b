/* spawnd-shim: what posix_spawn cannot do, done between spawn and exec.
 *
 * spawnd starts this small helper (installed next to it, linked statically
 * so it starts in a fraction of what spawnd itself would) instead of the
 * program when a child needs resource limits or another user: it applies
 * them, sets no-new-privileges and the parent-death signal, and execs the
 * program. Any failure is written as an errno to the report descriptor
 * (close-on-exec, so a successful exec reads as EOF) and ends it with 127.
 *
 *   spawnd-exec-shim REPORT-FD PARENT-PID UID GID NRLIMITS (RES VALUE)... PATH ARGV...
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "executor/shim.h"

extern char **environ;

static int report_fd = -1;

static void shim_fail(int err)
{
    ssize_t n = write(report_fd, &err, sizeof err);
    (void)n;
    _exit(127);
}

int main(int argc, char **argv)
{
    if (argc < 8 || strcmp(argv[0], SHIM_MARK) != 0) {
        fprintf(stderr, "spawnd-shim: started by spawnd only\n");
        return 2;
    }
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
