/* path: find the program to run, as execvp does. */
#ifndef SPAWND_PATH_H
#define SPAWND_PATH_H

#include <stddef.h>

/* Resolve file for execution with the PATH of envp (the child's environment;
 * "/bin:/usr/bin" when it has none), from the child's working directory cwd
 * (NULL: spawnd's). A file containing a slash is used as is; a relative
 * result is made relative to cwd, so what is checked here (and by --allow)
 * is what the child will run. Writes the path into out (outsz bytes).
 * Returns 0, -ENOENT (not found), -EACCES (found only without execute
 * permission), -ENAMETOOLONG. */
int exec_path_resolve(const char *file, char *const *envp, const char *cwd, char *out,
                      size_t outsz);

#endif
