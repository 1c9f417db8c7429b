/* Signal names as Node reports them ("SIGTERM"), both ways. */
#ifndef SPAWND_SIGNAME_H
#define SPAWND_SIGNAME_H

/* The name of signal sig, or NULL when it has none (0, out of range). */
const char *sig_name(int sig);
/* The number of "SIGTERM" (the "SIG" prefix is required, case-sensitive, as
 * in Node), or -1 when the name is unknown. */
int sig_from_name(const char *name);
/* 1 when sig is a signal number spawnd may send (1..SIGRTMAX), else 0. */
int sig_valid(int sig);

#endif
