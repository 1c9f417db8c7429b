/* childview: prints how a child of spawnd sees itself, as one JSON object:
 * its open descriptors, blocked and ignored signal masks, session and group.
 * Used to check that spawnd's children inherit nothing they should not. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void status_field(const char *name, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, strlen(name)) == 0) {
            const char *v = line + strlen(name);
            v += strspn(v, " \t");
            snprintf(out, n, "%.*s", (int)strcspn(v, " \t\n"), v);
        }
    if (f) fclose(f);
}

int main(void)
{
    DIR *d = opendir("/proc/self/fd");
    int dfd = dirfd(d);
    printf("{\"fds\":[");
    struct dirent *e;
    int first = 1;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dfd) continue;
        printf("%s%d", first ? "" : ",", fd);
        first = 0;
    }
    closedir(d);
    char blk[64], ign[64];
    status_field("SigBlk:", blk, sizeof blk);
    status_field("SigIgn:", ign, sizeof ign);
    printf("],\"sigblk\":\"%s\",\"sigign\":\"%s\",\"pid\":%d,\"sid\":%d,\"pgid\":%d}\n", blk, ign,
           (int)getpid(), (int)getsid(0), (int)getpgid(0));
    return 0;
}
