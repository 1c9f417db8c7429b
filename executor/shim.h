/* shim: what posix_spawn cannot do by itself (switching user and group).
 *
 * A child that needs it is started through spawnd-shim, a small helper: it
 * drops supplementary groups, sets the group and user, sets no-new-privileges
 * and then execs the real program.  A failure is reported as an errno through
 * a close-on-exec pipe (the first descriptor after the child's own), so the caller learns of it
 * exactly as posix_spawn reports an exec failure.  Plain runs never go
 * through the shim and pay nothing for it. */
#ifndef SPAWND_SHIM_H
#define SPAWND_SHIM_H

#include <spawn.h>
#include <stdint.h>
#include <sys/types.h>

struct exec_rlimit;

/* What the shim does before it execs. */
struct shim_opts {
    int64_t uid, gid; /* -1: unchanged */
    const struct exec_rlimit *rlimits;
    size_t nrlimits;
};

/* posix_spawn path through the shim with the given file actions and
 * attributes (which this call extends). nfds is the number of descriptors
 * the child keeps (0..nfds-1); the report descriptor is nfds and everything
 * above is closed. The shim also asks for SIGKILL when spawnd dies
 * (PR_SET_PDEATHSIG), so its child does not outlive a killed spawnd.
 * Returns 0 or a negative errno (from the shim's own steps or from exec). */
int shim_spawn(pid_t *pid, const char *path, posix_spawn_file_actions_t *fa,
               posix_spawnattr_t *attr, char *const argv[], char *const envp[],
               const struct shim_opts *o, int nfds);

/* argv[0] of the helper, so it is never mistaken for a command. */
#define SHIM_MARK "spawnd-exec-shim"

/* Find the helper (spawnd-shim, next to spawnd's own executable). Returns 0
 * or a negative errno: then runs that need it fail with that error. */
int shim_init(void);

#endif
