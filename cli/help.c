/* help: what `spawnctl --help` and `spawnctl help COMMAND` print. */
#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"

static const char overview[] =
    "Usage: spawnctl [--url URL] [--token TOKEN] COMMAND [ARGS...]\n"
    "\n"
    "spawnctl runs programs on a spawnd server and makes them feel local: their\n"
    "output appears on spawnctl's stdout and stderr as it is produced, Ctrl-C\n"
    "reaches them, and spawnctl exits with their exit status.\n"
    "\n"
    "Running:\n"
    "  run [OPTIONS] -- PROGRAM [ARGS...]   run a program, wait, exit as it did\n"
    "  exec [OPTIONS] 'SHELL COMMAND'       the same through /bin/sh -c\n"
    "  start [OPTIONS] -- PROGRAM [ARGS...] start a background job, print its id\n"
    "\n"
    "Background jobs:\n"
    "  jobs                                 list the jobs\n"
    "  status ID                            show one job\n"
    "  logs [-f] ID                         its output (follow with -f)\n"
    "  wait ID                              wait for it, exit as it did\n"
    "  kill ID [SIGNAL]                     signal it (default SIGTERM)\n"
    "\n"
    "Node-style fork with a message channel:\n"
    "  fork MODULE [ARGS...]                start `node MODULE ARGS...`, print its id\n"
    "  send ID JSON                         send the child one message\n"
    "  messages [-f] ID                     the child's messages, one JSON per line\n"
    "\n"
    "  help [COMMAND]                       this text, or a command's page\n"
    "\n"
    "Global options (before the command, or among its options):\n"
    "  --url URL       the server; default $SPAWND_URL, else http://127.0.0.1:8080\n"
    "  --token TOKEN   bearer token; default $SPAWND_TOKEN\n"
    "  -h, --help      help;  'spawnctl COMMAND --help' for one command\n"
    "  --version       print spawnctl's version\n"
    "\n"
    "Exit status:\n"
    "  run, exec, wait: the program's exit code, or 128+N when signal N ended it;\n"
    "  127 the program (or --cwd) was not found; 126 it could not be executed.\n"
    "  Other commands: 0 on success.\n"
    "  125: spawnctl itself failed (bad usage, server unreachable, HTTP error),\n"
    "  with one line on stderr starting with \"spawnctl: \".\n"
    "\n"
    "Examples:\n"
    "  spawnctl run -- make -j8\n"
    "  tar cf - src | spawnctl run --stdin --cwd /build -- tar xf -\n"
    "  spawnctl exec 'ls -l | wc -l'\n"
    "  id=$(spawnctl start -- ./long-job.sh) && spawnctl logs -f \"$id\"\n";

static const char run_opts_text[] =
    "Options:\n"
    "  --cwd DIR          working directory of the program, on the server (default:\n"
    "                     the server's own). Relative paths (PROGRAM, DIR) are\n"
    "                     resolved on the server, not in spawnctl's directory.\n"
    "  --env NAME=VALUE   repeatable: set NAME in the program's environment. With\n"
    "                     --env the program gets spawnctl's own environment (minus\n"
    "                     SPAWND_* variables, so the token is not passed on) plus\n"
    "                     these; without it, the server's default environment.\n"
    "  --timeout MS       kill the program after MS milliseconds (0: never)\n"
    "  --kill-signal SIG  the signal for --timeout (default SIGTERM; SIGKILL follows\n"
    "                     after the server's grace period)\n"
    "  -i, --stdin        send spawnctl's stdin to the program (streamed, any size).\n"
    "                     Without it the program's stdin is empty (end of file).\n"
    "  --shell            run through /bin/sh -c (PROGRAM and ARGS are joined by\n"
    "                     spaces, as Node's shell option does)\n"
    "  --url URL, --token TOKEN   as for every command\n"
    "Options end at '--' or at PROGRAM, so PROGRAM's own options are its own.\n";

static const char run_text[] =
    "Usage: spawnctl run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM on the server as if it ran here: its stdout and stderr are\n"
    "written to spawnctl's stdout and stderr as they arrive, byte for byte\n"
    "(binary safe); SIGINT (Ctrl-C), SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2\n"
    "sent to spawnctl are passed on to the program's process group; when spawnctl's\n"
    "stdout is a pipe whose reader went away, the program gets SIGPIPE. spawnctl\n"
    "exits when the program has ended, with its status. The job is deleted on the\n"
    "server afterwards.\n"
    "\n"
    "PROGRAM without a '/' is looked up in the PATH of the program's environment.\n"
    "\n"
    "%s"
    "\n"
    "A program that ignores Ctrl-C: the third Ctrl-C in a row kills it (spawnd's\n"
    "DELETE) and spawnctl exits with 130. If spawnctl itself is killed with\n"
    "SIGKILL, the program keeps running on the server: use 'spawnctl jobs' and\n"
    "'spawnctl kill' to find and stop it.\n"
    "\n"
    "Exit status:\n"
    "  the program's exit code; 128+N when signal N ended it (e.g. 137 for\n"
    "  SIGKILL, 143 when --timeout sent SIGTERM, with a note on stderr);\n"
    "  127 PROGRAM or --cwd was not found; 126 PROGRAM could not be executed\n"
    "  (not executable, not a program); 125 spawnctl failed (one line on stderr),\n"
    "  also when output was lost because spawnctl could not keep up with it.\n"
    "\n"
    "Examples:\n"
    "  spawnctl run -- uname -a\n"
    "  spawnctl run --cwd /srv/app --env NODE_ENV=test -- npm test\n"
    "  spawnctl run --timeout 60000 -- ./flaky-test\n"
    "  gzip -c big.log | spawnctl run --stdin -- sh -c 'gunzip | wc -l'\n"
    "  spawnctl run -- cat /var/log/syslog > syslog.copy\n";

static const char exec_text[] =
    "Usage: spawnctl exec [OPTIONS] [--] 'SHELL COMMAND'\n"
    "\n"
    "Runs SHELL COMMAND with /bin/sh -c on the server, streamed and mirrored like\n"
    "'spawnctl run' (see its help). Several arguments are joined with spaces into\n"
    "one command line, as ssh does, so quote what the remote shell must see.\n"
    "\n"
    "%s"
    "\n"
    "Exit status: as for run; the shell reports 127 for a command it cannot find.\n"
    "\n"
    "Examples:\n"
    "  spawnctl exec 'echo $((1+2))'\n"
    "  spawnctl exec 'ps ax | grep [n]ode'\n"
    "  spawnctl exec --stdin 'sort | uniq -c' < words.txt\n";

static const char start_text[] =
    "Usage: spawnctl start [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Starts PROGRAM as a background job and prints its id on stdout. Its output is\n"
    "kept on the server (a bounded amount) for 'spawnctl logs'; follow it with\n"
    "'spawnctl logs -f ID', wait with 'spawnctl wait ID'. With --stdin, spawnctl's\n"
    "stdin is sent to the job (after the id is printed) and the job's stdin is\n"
    "closed at its end; without it the job's stdin is empty.\n"
    "\n"
    "%s"
    "\n"
    "Exit status: 0 when the job started; 127/126 when PROGRAM could not be\n"
    "started (as for run); 125 when spawnctl failed.\n"
    "\n"
    "Examples:\n"
    "  id=$(spawnctl start -- ./server --port 9000)\n"
    "  spawnctl start --shell -- 'sleep 60; echo done'\n";

static const char jobs_text[] =
    "Usage: spawnctl jobs [--json]\n"
    "\n"
    "Lists the server's background jobs, newest first: running ones and those that\n"
    "ended recently (the server forgets them after --job-ttl-s).\n"
    "\n"
    "Columns: ID, KIND (spawn, exec, fork, ...), STATE (running, exited), EXIT (the\n"
    "exit code, or the signal that ended it, '-' while running), PID, STARTED.\n"
    "\n"
    "Options:\n"
    "  --json   print the server's answer as one JSON line\n"
    "\n"
    "Exit status: 0; 125 when spawnctl failed.\n";

static const char status_text[] =
    "Usage: spawnctl status [--json] ID\n"
    "\n"
    "Shows one job: every field the server reports (id, kind, pid, state,\n"
    "exit_code, signal, timed_out, killed, started_at, ended_at, duration_ms),\n"
    "one per line; '-' stands for null.\n"
    "\n"
    "Options:\n"
    "  --json   print the job object as one JSON line\n"
    "\n"
    "Exit status: 0; 125 when spawnctl failed (no such job, ...).\n"
    "\n"
    "Example:\n"
    "  spawnctl status --json \"$id\" | jq .state\n";

static const char logs_text[] =
    "Usage: spawnctl logs [-f] [--text] ID\n"
    "\n"
    "Writes a job's output kept by the server: its stdout to stdout and its stderr\n"
    "to stderr, byte for byte. When the server had to drop the oldest output, a\n"
    "note says how many events are missing.\n"
    "\n"
    "Options:\n"
    "  -f, --follow   keep following the output as it is produced, until the job\n"
    "                 ends\n"
    "  --text         the job was started by another client with encoding utf8\n"
    "                 (spawnctl starts jobs with base64): print the text as is\n"
    "\n"
    "Exit status: 0; 125 when spawnctl failed. (spawnctl wait gives the job's.)\n"
    "\n"
    "Example:\n"
    "  spawnctl logs -f \"$id\" | tee job.log\n";

static const char wait_text[] =
    "Usage: spawnctl wait ID\n"
    "\n"
    "Waits until the job has ended, then exits as it did.\n"
    "\n"
    "Exit status: the job's exit code, or 128+N when signal N ended it; 125 when\n"
    "spawnctl failed (no such job, server unreachable).\n"
    "\n"
    "Example:\n"
    "  id=$(spawnctl start -- make) && spawnctl wait \"$id\" && echo built\n";

static const char kill_text[] =
    "Usage: spawnctl kill ID [SIGNAL]\n"
    "\n"
    "Sends SIGNAL to the job's process group. SIGNAL is a name (TERM, SIGTERM,\n"
    "sigint) or a number (9); the default is SIGTERM. It does not wait for the\n"
    "job to end: use 'spawnctl wait ID'.\n"
    "\n"
    "Exit status: 0 when the signal was sent; 125 when spawnctl failed (no such\n"
    "job, or it has already ended).\n"
    "\n"
    "Examples:\n"
    "  spawnctl kill \"$id\"\n"
    "  spawnctl kill \"$id\" KILL\n";

static const char fork_text[] =
    "Usage: spawnctl fork [OPTIONS] [--] MODULE [ARGS...]\n"
    "\n"
    "Starts `node MODULE ARGS...` as Node's child_process.fork does, with a\n"
    "message channel, and prints the job's id. An unmodified Node script's\n"
    "process.send() and process.on('message') work; programs in other languages\n"
    "read and write newline-delimited JSON on the descriptor in NODE_CHANNEL_FD.\n"
    "Its stdout and stderr are the job's output ('spawnctl logs').\n"
    "\n"
    "Options:\n"
    "  --cwd DIR           working directory, on the server\n"
    "  --env NAME=VALUE    repeatable; as for 'spawnctl run'\n"
    "  --timeout MS        kill the child after MS milliseconds\n"
    "  --node PATH         the node binary (default: node, from PATH)\n"
    "  --node-arg ARG      repeatable: an option for node before MODULE\n"
    "\n"
    "Exit status: 0 when the child started; 127/126 when node could not be\n"
    "started; 125 when spawnctl failed.\n"
    "\n"
    "Example:\n"
    "  id=$(spawnctl fork worker.js)\n"
    "  spawnctl send \"$id\" '{\"task\":42}'\n"
    "  spawnctl messages -f \"$id\"\n";

static const char send_text[] =
    "Usage: spawnctl send ID JSON\n"
    "       spawnctl send ID - < message.json\n"
    "       spawnctl send --lines ID < messages.ndjson\n"
    "\n"
    "Sends one message, a JSON value, to a fork job's child; it arrives there as\n"
    "one process.on('message') event. '-' reads the message from stdin.\n"
    "\n"
    "  -l, --lines   read stdin to its end, one message per line, each sent as\n"
    "                soon as its line is read (one request for all of them; a\n"
    "                child that does not read holds the sender back)\n"
    "\n"
    "Exit status: 0 when the message(s) were queued; 125 when spawnctl failed\n"
    "(not JSON, no such job, or the channel is closed; with --lines the lines\n"
    "before a bad one were sent).\n"
    "\n"
    "Examples:\n"
    "  spawnctl send \"$id\" '{\"cmd\":\"reload\"}'\n"
    "  spawnctl send \"$id\" '\"bye\"'\n"
    "  tail -f tasks.ndjson | spawnctl send --lines \"$id\"\n";

static const char messages_text[] =
    "Usage: spawnctl messages [-f] ID\n"
    "\n"
    "Prints the messages a fork job's child has sent (process.send), one JSON\n"
    "value per line, exactly as the child encoded it.\n"
    "\n"
    "Options:\n"
    "  -f, --follow   keep waiting for more until the child closes its channel\n"
    "\n"
    "Exit status: 0; 125 when spawnctl failed.\n"
    "\n"
    "Example:\n"
    "  spawnctl messages -f \"$id\" | jq -c .\n";

static const char help_text[] = "Usage: spawnctl help [COMMAND]\n"
                                "\n"
                                "Prints the overview, or the page of COMMAND (the same as\n"
                                "'spawnctl COMMAND --help').\n";

static const struct {
    const char *name, *text;
    bool with_opts; /* the text has a %s for the run options */
} pages[] = {
    {"run", run_text, true},    {"exec", exec_text, true},          {"start", start_text, true},
    {"jobs", jobs_text, false}, {"status", status_text, false},     {"logs", logs_text, false},
    {"wait", wait_text, false}, {"kill", kill_text, false},         {"fork", fork_text, false},
    {"send", send_text, false}, {"messages", messages_text, false}, {"help", help_text, false},
};

int ctl_help(const char *cmd)
{
    if (!cmd) {
        fputs(overview, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        if (strcmp(pages[i].name, cmd)) continue;
        /* The shared options go where the page has "%s". */
        const char *hole = pages[i].with_opts ? strstr(pages[i].text, "%s") : NULL;
        if (hole) {
            fwrite(pages[i].text, 1, (size_t)(hole - pages[i].text), stdout);
            fputs(run_opts_text, stdout);
            fputs(hole + 2, stdout);
        } else {
            fputs(pages[i].text, stdout);
        }
        return 0;
    }
    return ctl_usage(NULL, "no such command: '%.100s'", cmd);
}
