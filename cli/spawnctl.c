/* spawnctl: the command-line client of spawnd.
 *
 *   spawnctl [--url URL] [--token TOKEN] COMMAND [ARGS...]
 *
 * main() reads the global options, then hands the rest of the command line
 * to the command (cli/run.c, cli/jobs.c), whose return value is the exit
 * status.  See cli/help.c for what each command promises. */
#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"

static const struct {
    const char *name;
    int (*fn)(struct ctl *c, int argc, char **argv);
} commands[] = {
    {"run", ctl_cmd_run},   {"exec", ctl_cmd_exec},         {"start", ctl_cmd_start},
    {"jobs", ctl_cmd_jobs}, {"status", ctl_cmd_status},     {"logs", ctl_cmd_logs},
    {"wait", ctl_cmd_wait}, {"kill", ctl_cmd_kill},         {"fork", ctl_cmd_fork},
    {"send", ctl_cmd_send}, {"messages", ctl_cmd_messages},
};

/* Whether the command's own arguments ask for help: before its operands
 * (and before "--"), so `spawnctl run -- prog --help` runs prog. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) return false;
        if (ctl_is_help(argv[i])) return true;
        if (argv[i][0] != '-' || ctl_looks_like_id(argv[i])) return false;
        static const char *const with_value[] = {"--url",  "--token",   "--cwd",
                                                 "--env",  "--timeout", "--kill-signal",
                                                 "--node", "--node-arg"};
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (!strcmp(argv[i], with_value[k])) {
                i++;
                break;
            }
    }
    return false;
}

int main(int argc, char **argv)
{
    struct ctl c = {0};
    const char *url = NULL, *token = NULL;
    int i = 1, ret = CTL_EXIT_FAILED;

    /* Global options before the command. */
    while (i < argc && argv[i][0] == '-') {
        int r;
        if (ctl_is_help(argv[i])) return ctl_help(NULL);
        if (!strcmp(argv[i], "--version")) {
            printf("spawnctl %s\n", SPAWND_VERSION);
            return 0;
        }
        if ((r = ctl_opt_value(NULL, argc, argv, &i, "--url", &url)) ||
            (r = ctl_opt_value(NULL, argc, argv, &i, "--token", &token))) {
            if (r < 0) return CTL_EXIT_FAILED;
            continue;
        }
        return ctl_usage(NULL, "unknown option '%.100s'", argv[i]);
    }
    if (i >= argc) return ctl_usage(NULL, "no command given");
    const char *cmd = argv[i++];
    if (!strcmp(cmd, "help")) {
        if (argc - i > 1) return ctl_usage("help", "too many arguments");
        return ctl_help(i < argc ? argv[i] : NULL);
    }
    size_t k = 0;
    while (k < sizeof commands / sizeof commands[0] && strcmp(commands[k].name, cmd))
        k++;
    if (k == sizeof commands / sizeof commands[0])
        return ctl_usage(NULL, "no such command: '%.100s'", cmd);
    if (wants_help(argc - i, argv + i)) return ctl_help(cmd);

    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) return ctl_fail("cannot initialise libcurl");
    if (ctl_init(&c, url, token) == 0) ret = commands[k].fn(&c, argc - i, argv + i);
    ctl_free(&c);
    curl_global_cleanup();
    /* Output written with stdio (ids, tables) must reach a closed pipe's
     * error as a failure, not vanish. */
    if (fflush(stdout) != 0 && ret == 0) ret = ctl_fail("cannot write to stdout");
    return ret;
}
