/* exec: runs processes for spawnd and owns everything about them.
 *
 * A job is one process, or a pipeline of processes joined by kernel pipes,
 * started with posix_spawn in a process group of its own.  The executor reads
 * the job's stdout and stderr, feeds its stdin, enforces its timeout, reaps
 * its processes (spawnd is a child subreaper, so orphaned descendants are
 * reaped here too) and makes sure nothing of it survives: whenever a job ends
 * for any reason its whole process group gets the kill signal, and SIGKILL
 * after the server's grace period if anything is still there.
 *
 * Everything here runs on the loop's thread, except posix_spawn itself for
 * callers that set on_spawned: while other jobs run, it is made on one of
 * two spawner threads (see exec.c).  Output is delivered through
 * callbacks as it is read; a consumer that cannot keep up calls
 * exec_job_pause() and spawnd stops reading the pipes, so the child blocks on
 * a full pipe and spawnd's memory does not grow.
 *
 * Errors are 0 or a negative errno. */
#ifndef SPAWND_EXEC_H
#define SPAWND_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;
struct executor;
struct exec_job;

/* One program to run. Strings are borrowed for the duration of
 * exec_job_start() only. */
struct exec_proc {
    const char *file;   /* as the caller named it; no slash = PATH lookup in envp */
    char *const *argv;  /* NULL-terminated, argv[0] included */
    char *const *envp;  /* NULL-terminated: the child's whole environment */
    const char *cwd;    /* NULL: spawnd's working directory */
};

enum exec_stdin {
    EXEC_STDIN_NULL, /* /dev/null */
    EXEC_STDIN_DATA, /* stdin_data is written, then the pipe is closed */
    EXEC_STDIN_PIPE, /* a pipe the caller feeds with exec_job_write_stdin() */
};

struct exec_spec {
    const struct exec_proc *procs; /* 1, or the steps of a pipeline */
    size_t nprocs;
    enum exec_stdin stdin_mode;
    const char *stdin_data; /* EXEC_STDIN_DATA: copied by exec_job_start() */
    size_t stdin_len;
    uint64_t timeout_ms; /* 0: none */
    int kill_signal;     /* for timeout, exec_job_kill() and the group clean-up */
    int64_t uid, gid;    /* -1: unchanged */
    bool channel;        /* a socketpair on the child's fd 3 (Node's IPC channel) */
    size_t stdout_pipe_size; /* 0: the kernel's default (64 KiB); streams ask for more,
                              * and then stdout is read 256 KiB at a time (not 64) */
    const char *label;   /* names the job in log lines (copied); may be NULL */
};

enum exec_stream { EXEC_STDOUT = 1, EXEC_STDERR = 2, EXEC_CHANNEL = 3 };

/* Bytes queued for the channel at most (exec_job_send); a single message
 * bigger than this is taken when nothing else is queued. */
#define EXEC_CHANNEL_QUEUE (1024 * 1024)

struct exec_status {
    int exit_code; /* -1 when a signal ended the process */
    int signal;    /* 0 when it exited */
};

struct exec_job_cb {
    /* Bytes read from a pipe: stream is EXEC_STDOUT (of the last step) or
     * EXEC_STDERR of step `step`. data is only valid during the call. */
    void (*on_output)(struct exec_job *job, void *ctx, enum exec_stream stream, size_t step,
                      const char *data, size_t n);
    /* The job is over: every process reaped, the pipes read to EOF (or the
     * drain period passed). exec_job_info() is final. Called once. */
    void (*on_exit)(struct exec_job *job, void *ctx);
    /* Optional: set it and exec_job_start() may return before the program
     * has started (its spawn is made on another thread while other jobs
     * run). on_spawned then follows once it has (err 0; pids are known from
     * here on) or could not (err < 0, e.g. -EACCES: nothing runs, no other
     * callback follows, and the job is over). file is the program as the
     * caller named it. Not called for a job that had started by the time
     * exec_job_start() returned (pids[0] != 0). */
    void (*on_spawned)(struct exec_job *job, void *ctx, int err, const char *file);
    /* Optional. The stdin pipe can take more after exec_job_write_stdin()
     * returned less than it was given. */
    void (*on_stdin_ready)(struct exec_job *job, void *ctx);
    /* Optional. The channel's queue has room again (at most half full)
     * after exec_job_send() returned -ENOBUFS. */
    void (*on_channel_ready)(struct exec_job *job, void *ctx);
    /* Optional. The channel is closed (the child closed or exited, or
     * exec_job_close_channel was called). */
    void (*on_channel_closed)(struct exec_job *job, void *ctx);
};

/* What a job is and how it ended, readable at any time. */
struct exec_job_info {
    size_t nprocs;
    const pid_t *pids;
    const struct exec_status *status; /* per step; valid once that step exited */
    bool running;                     /* on_exit not yet called */
    bool timed_out;                   /* the timeout fired */
    bool killed;                      /* spawnd sent the kill signal */
    uint64_t start_ns, end_ns;        /* loop_now_ns() clock */
};

/* A resource limit every child gets (setrlimit in the exec shim). */
struct exec_rlimit {
    int resource; /* RLIMIT_NOFILE, ... */
    uint64_t value; /* soft and hard limit */
};

/* exec_job_start's error when --allow refuses a program (not an errno). */
#define EXEC_EPOLICY 4096

struct exec_config {
    unsigned max_jobs;      /* jobs running at once; past it exec_job_start fails -EBUSY */
    uint64_t kill_grace_ms; /* from the kill signal to SIGKILL */
    uint64_t drain_ms;      /* after the last process exits, how long to wait for pipes */
    char *const *allow;     /* NULL, or the real paths of the only programs that may run */
    const struct exec_rlimit *rlimits; /* applied to every child */
    size_t nrlimits;
};

/* Parse "nofile=1024" (names: nofile nproc as cpu fsize core; a value or
 * "unlimited"). Returns 0 or -EINVAL. */
int exec_rlimit_parse(const char *s, struct exec_rlimit *out);

/* Create the executor on loop l: becomes a child subreaper and takes over
 * SIGCHLD. Returns NULL with errno set. */
struct executor *exec_new(struct loop *l, const struct exec_config *cfg);
void exec_free(struct executor *ex);
/* Jobs started and not yet over. */
unsigned exec_running(const struct executor *ex);

/* Start a job. On success returns it holding one reference for the caller
 * (drop it with exec_job_unref) and callbacks will follow. On failure returns
 * NULL, sets *err to a negative errno and *failed_step to the step that
 * could not start; nothing is left running. -EBUSY means max_jobs,
 * -EXEC_EPOLICY that --allow refused the program of *failed_step. */
struct exec_job *exec_job_start(struct executor *ex, const struct exec_spec *spec,
                                const struct exec_job_cb *cb, void *ctx, int *err,
                                size_t *failed_step);

void exec_job_ref(struct exec_job *job);
void exec_job_unref(struct exec_job *job);
/* Stop calling the callbacks (the consumer has gone). The job runs on, its
 * output read and dropped. */
void exec_job_detach(struct exec_job *job);

/* Kill the job: kill_signal to its process group, SIGKILL after the grace.
 * Marks it killed. No effect once it is over. */
void exec_job_kill(struct exec_job *job);
/* Send sig to the job's process group. Returns 0 or a negative errno. */
int exec_job_signal(struct exec_job *job, int sig);
/* Stop / restart reading the job's pipes (flow control). */
void exec_job_pause(struct exec_job *job);
void exec_job_resume(struct exec_job *job);

const struct exec_job_info *exec_job_info(const struct exec_job *job);

/* EXEC_STDIN_PIPE: write what the pipe takes now, without blocking. Returns
 * the bytes taken (0 when it is full: on_stdin_ready follows), -EPIPE when
 * the child closed its end (stdin is then closed here too), -EBADF when
 * stdin is closed. */
ssize_t exec_job_write_stdin(struct exec_job *job, const char *data, size_t n);
void exec_job_close_stdin(struct exec_job *job);
bool exec_job_stdin_open(const struct exec_job *job);

/* Queue one whole message for the channel. It is written once the batch
 * of events being handled is done, with whatever else this batch queued
 * (one write, one wake-up of the child). Returns 0, -ENOBUFS when the
 * queue (EXEC_CHANNEL_QUEUE) cannot take all of it (on_channel_ready
 * follows), -EPIPE when closed, -ENOMEM. */
int exec_job_send(struct exec_job *job, const char *data, size_t n);
void exec_job_close_channel(struct exec_job *job);
bool exec_job_channel_open(const struct exec_job *job);

/* What the executor has done since it started, for metrics. */
#define EXEC_DURATION_BUCKETS 10
extern const double exec_duration_bounds[EXEC_DURATION_BUCKETS]; /* seconds, ascending */
struct exec_stats {
    uint64_t jobs_ended;
    uint64_t stdout_bytes, stderr_bytes, channel_bytes;
    uint64_t duration_count[EXEC_DURATION_BUCKETS + 1]; /* per bucket; the last is +Inf */
    double duration_sum;                                  /* seconds */
};
const struct exec_stats *exec_stats(const struct executor *ex);

/* Kill every running job (server shutdown). */
void exec_kill_all(struct executor *ex);

#endif
