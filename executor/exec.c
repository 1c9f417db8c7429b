#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/signame.h"
#include "executor/loop.h"
#include "executor/path.h"
#include "executor/shim.h"

#define PID_BUCKETS 1024
#define READ_CHUNK 65536            /* per read of a pipe, usually */
#define READ_CHUNK_BIG (256 * 1024) /* of a stdout given a big pipe (streams) */

struct exec_pipe {
    struct loop_watch w;
    struct exec_job *job;
    int fd; /* -1 once closed */
    enum exec_stream stream;
    size_t step;
    size_t read_max; /* bytes per read(): on_output never gets more at once */
};

/* One process of a job, findable by pid when SIGCHLD says it ended. */
struct exec_proc_state {
    pid_t pid;
    size_t step;
    bool reaped;
    struct exec_job *job;
    struct exec_proc_state *hnext;
};

struct exec_job {
    struct executor *ex;
    int refs;
    const struct exec_job_cb *cb;
    void *ctx;
    struct exec_job_info info;
    pid_t pgid;
    int kill_signal;
    size_t nlive; /* processes not reaped yet */
    bool paused;
    bool spawning;     /* handed to the spawner thread: no pid yet (pgid 0) */
    bool kill_pending; /* killed while spawning: kill_group once the pid is known */
    char label[64];

    pid_t *pids;
    struct exec_status *status;
    struct exec_proc_state *procs;
    struct exec_pipe *pipes; /* [0] stdout of the last step, [1+i] stderr of step i */
    size_t npipes, nopen;

    struct loop_watch in_w; /* stdin: written from in_data (then closed), or fed by the caller */
    int in_fd;
    bool in_stream; /* EXEC_STDIN_PIPE */
    char *in_data;
    size_t in_len, in_off;

    struct loop_watch ch_w; /* the channel (fork): our end of the socketpair */
    int ch_fd;
    struct buf ch_out;          /* messages not yet written */
    struct loop_defer ch_flush; /* writes ch_out once the batch of events is handled */
    bool ch_full;               /* exec_job_send said -ENOBUFS: call on_channel_ready */

    struct loop_timer timeout, drain, grace;
    struct exec_job *prev, *next; /* every job not yet freed */
};

const double exec_duration_bounds[EXEC_DURATION_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1,
                                                           0.25,  0.5,  1,     5,    30};

#define STRANGER_SWEEP_MS 100
#define STASH_SIZE 256

/* A spawn handed to the spawner threads. Everything in it is the thread's
 * until it comes back on the done list; the job is only touched again on
 * the loop's thread, in spawn_complete(). */
struct spawn_req {
    struct exec_job *job;
    char path[4096];
    char **argv, **envp; /* one block each, copied from the request */
    char *file;          /* as the caller named it */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int child_fds[4]; /* the child's ends, closed once it has them: -1 unused */
    pid_t pid;
    int err;
    struct spawn_req *next;
};

/* The spawner threads: glibc's posix_spawn blocks its caller until the
 * child has exec'd (a vfork), hundreds of microseconds on a loaded machine.
 * While other jobs run, spawns are made here so the loop goes on serving,
 * and two children can be set up at once. */
#define SPAWNERS 2 /* threads: two children can be set up and exec'd at once */
/* Spawns handed over and not back yet, at most; past that the loop spawns
 * itself (the queue, and the copies of argv and environment in it, stay
 * bounded, and a burst slows down to the rate children can be made). */
#define SPAWN_QUEUE_MAX (2 * SPAWNERS)

struct spawner {
    pthread_t thread[SPAWNERS];
    unsigned nthreads;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct spawn_req *todo, *todo_tail, *done; /* under mu */
    bool quit;                                 /* under mu */
    int efd;            /* eventfd: something is on the done list */
    struct loop_watch w;
    unsigned inflight;  /* handed over, not completed (loop's thread) */
};

struct executor {
    struct loop *loop;
    struct loop_timer sweep; /* kill_strangers, soon after jobs end */
    uint64_t swept_ns;
    struct exec_config cfg;
    struct exec_stats stats;
    int devnull; /* stdin of jobs without one */
    unsigned nrunning;
    struct exec_job *jobs;
    struct exec_proc_state *by_pid[PID_BUCKETS];
    struct spawner sp;
    /* Exit statuses of children not in the pid table, kept while spawns are
     * in flight: a child can be reaped before its spawn has completed. */
    struct {
        pid_t pid;
        int wst;
    } stash[STASH_SIZE];
    unsigned nstash;
    char scratch[READ_CHUNK_BIG];
};

static void job_finish_if_done(struct exec_job *job);
void exec_job_resume(struct exec_job *job);
static void channel_close(struct exec_job *job);

/* --- pid table --------------------------------------------------------- */

static struct exec_proc_state **pid_slot(struct executor *ex, pid_t pid)
{
    struct exec_proc_state **pp = &ex->by_pid[(unsigned)pid % PID_BUCKETS];
    while (*pp && (*pp)->pid != pid)
        pp = &(*pp)->hnext;
    return pp;
}

static void pid_insert(struct executor *ex, struct exec_proc_state *ps)
{
    struct exec_proc_state **pp = pid_slot(ex, ps->pid);
    ps->hnext = *pp;
    *pp = ps;
}

/* --- lifetime ---------------------------------------------------------- */

void exec_job_ref(struct exec_job *job)
{
    job->refs++;
}

static void job_close_stdin(struct exec_job *job)
{
    if (job->in_fd < 0) return;
    loop_watch_del(job->ex->loop, &job->in_w);
    close(job->in_fd);
    job->in_fd = -1;
    free(job->in_data);
    job->in_data = NULL;
}

static void pipe_close(struct exec_pipe *p)
{
    if (p->fd < 0) return;
    /* close() takes the pipe out of epoll only when no other descriptor
     * refers to it. Ours is CLOEXEC, but while the spawner thread is in
     * posix_spawn its vfork child holds a copy of every descriptor until
     * it execs: then the pipe must be taken out first. */
    struct executor *ex = p->job->ex;
    if (ex->sp.inflight) loop_watch_del(ex->loop, &p->w);
    else loop_watch_forget(ex->loop, &p->w);
    close(p->fd);
    p->fd = -1;
    p->job->nopen--;
}

static void job_free(struct exec_job *job)
{
    struct executor *ex = job->ex;
    for (size_t i = 0; i < job->npipes; i++)
        pipe_close(&job->pipes[i]);
    job_close_stdin(job);
    job->cb = NULL;
    channel_close(job);
    loop_timer_stop(ex->loop, &job->timeout);
    loop_timer_stop(ex->loop, &job->drain);
    loop_timer_stop(ex->loop, &job->grace);
    for (size_t i = 0; i < job->info.nprocs; i++) {
        struct exec_proc_state **pp = pid_slot(ex, job->procs[i].pid);
        if (*pp == &job->procs[i]) *pp = job->procs[i].hnext;
    }
    if (job->prev) job->prev->next = job->next;
    else ex->jobs = job->next;
    if (job->next) job->next->prev = job->prev;
    free(job);
}

void exec_job_unref(struct exec_job *job)
{
    if (--job->refs == 0) job_free(job);
}

void exec_job_detach(struct exec_job *job)
{
    job->cb = NULL;
    job->ctx = NULL;
    /* Nobody will take output any more: read (and drop) it to the end, or
     * a job paused for its consumer would never see EOF and never end. */
    exec_job_resume(job);
}

const struct exec_job_info *exec_job_info(const struct exec_job *job)
{
    return &job->info;
}

const struct exec_stats *exec_stats(const struct executor *ex)
{
    return &ex->stats;
}

unsigned exec_running(const struct executor *ex)
{
    return ex->nrunning;
}

/* --- killing ----------------------------------------------------------- */

static void on_grace(struct loop_timer *t)
{
    struct exec_job *job = (struct exec_job *)((char *)t - offsetof(struct exec_job, grace));
    if (kill(-job->pgid, SIGKILL) == 0)
        log_info("msg=job.sigkill job=%s pgid=%d", job->label, (int)job->pgid);
    exec_job_unref(job);
}

/* Send sig to the whole group; if anything received it, SIGKILL follows
 * after the grace period unless that is already on its way.
 * Returns 1 when some process was signalled. */
static int kill_group(struct exec_job *job, int sig)
{
    if (job->spawning) { /* no group yet: kill(-0) would hit spawnd's own */
        job->kill_pending = true;
        return 1;
    }
    if (kill(-job->pgid, sig) < 0) return 0;
    if (sig != SIGKILL && !loop_timer_active(&job->grace)) {
        exec_job_ref(job); /* the timer holds the job until it fires */
        loop_timer_start(job->ex->loop, &job->grace, job->ex->cfg.kill_grace_ms);
    }
    return 1;
}

void exec_job_kill(struct exec_job *job)
{
    if (!job->info.running) return;
    job->info.killed = true;
    kill_group(job, job->kill_signal);
    exec_job_resume(job);
}

int exec_job_signal(struct exec_job *job, int sig)
{
    if (!job->info.running) return -ESRCH;
    if (job->spawning) return -EAGAIN;
    if (kill(-job->pgid, sig) < 0) return -errno;
    return 0;
}

void exec_kill_all(struct executor *ex)
{
    for (struct exec_job *j = ex->jobs; j; j = j->next)
        exec_job_kill(j);
}

static void on_timeout(struct loop_timer *t)
{
    struct exec_job *job = (struct exec_job *)((char *)t - offsetof(struct exec_job, timeout));
    job->info.timed_out = true;
    exec_job_kill(job);
}

/* --- output ------------------------------------------------------------ */

static void pipe_watch(struct exec_pipe *p)
{
    /* A paused pipe is taken out of epoll entirely: even with no events
     * asked for, epoll keeps reporting EPOLLHUP once the writer is gone. */
    if (p->fd < 0 || loop_watch_active(&p->w)) return;
    if (loop_watch_add(p->job->ex->loop, &p->w, p->fd, EPOLLIN) < 0) pipe_close(p);
}

static void proc_reaped(struct executor *ex, struct exec_proc_state *ps, int wst);

/* The job's last pipe closed: usually its processes are exiting, a moment
 * before SIGCHLD says so. Reap those already gone now, instead of going
 * back to sleep until the signal (one wake-up less before the answer). */
static void reap_now(struct exec_job *job)
{
    for (size_t i = 0; i < job->info.nprocs && job->nlive; i++) {
        struct exec_proc_state *ps = &job->procs[i];
        int wst;
        if (!ps->reaped && ps->pid > 0 && waitpid(ps->pid, &wst, WNOHANG) == ps->pid)
            proc_reaped(job->ex, ps, wst);
    }
}

static void on_pipe(struct loop_watch *w, uint32_t revents)
{
    struct exec_pipe *p = (struct exec_pipe *)w;
    struct exec_job *job = p->job;
    struct executor *ex = job->ex;
    ssize_t n = read(p->fd, ex->scratch, p->read_max);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        pipe_close(p);
        exec_job_ref(job);
        if (!job->nopen && job->nlive) reap_now(job);
        job_finish_if_done(job);
        exec_job_unref(job);
        return;
    }
    if (p->stream == EXEC_STDOUT) ex->stats.stdout_bytes += (uint64_t)n;
    else ex->stats.stderr_bytes += (uint64_t)n;
    exec_job_ref(job);
    if (job->cb && job->cb->on_output)
        job->cb->on_output(job, job->ctx, p->stream, p->step, ex->scratch, (size_t)n);
    exec_job_unref(job);
}

void exec_job_pause(struct exec_job *job)
{
    /* A job being killed drains whatever its processes left, so it can end
     * (and a shutdown or DELETE need not wait for a reader). */
    if (job->paused || job->info.killed) return;
    job->paused = true;
    for (size_t i = 0; i < job->npipes; i++)
        loop_watch_del(job->ex->loop, &job->pipes[i].w);
    /* A consumer that is behind must not lose the tail of the output. */
    loop_timer_stop(job->ex->loop, &job->drain);
}

void exec_job_resume(struct exec_job *job)
{
    if (!job->paused) return;
    job->paused = false;
    for (size_t i = 0; i < job->npipes; i++)
        pipe_watch(&job->pipes[i]);
    if (job->info.running && job->nlive == 0 && job->nopen)
        loop_timer_start(job->ex->loop, &job->drain, job->ex->cfg.drain_ms);
}

static void on_drain(struct loop_timer *t)
{
    struct exec_job *job = (struct exec_job *)((char *)t - offsetof(struct exec_job, drain));
    /* Something that left the process group still holds the pipes. */
    log_info("msg=job.drain_timeout job=%s", job->label);
    for (size_t i = 0; i < job->npipes; i++)
        pipe_close(&job->pipes[i]);
    job_finish_if_done(job);
}

/* --- stdin ------------------------------------------------------------- */

static void stdin_write(struct exec_job *job)
{
    while (job->in_off < job->in_len) {
        ssize_t n = write(job->in_fd, job->in_data + job->in_off, job->in_len - job->in_off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if (!loop_watch_active(&job->in_w) &&
                    loop_watch_add(job->ex->loop, &job->in_w, job->in_fd, EPOLLOUT) == 0)
                    return;
                if (loop_watch_active(&job->in_w)) return;
            }
            break; /* EPIPE: the child does not read its stdin; fine */
        }
        job->in_off += (size_t)n;
    }
    job_close_stdin(job);
}

static void on_stdin(struct loop_watch *w, uint32_t revents)
{
    struct exec_job *job = (struct exec_job *)((char *)w - offsetof(struct exec_job, in_w));
    if (!job->in_stream) {
        stdin_write(job);
        return;
    }
    loop_watch_del(job->ex->loop, w);
    if (job->cb && job->cb->on_stdin_ready) job->cb->on_stdin_ready(job, job->ctx);
}

ssize_t exec_job_write_stdin(struct exec_job *job, const char *data, size_t n)
{
    if (job->in_fd < 0 || !job->in_stream) return -EBADF;
    ssize_t w;
    while ((w = write(job->in_fd, data, n)) < 0 && errno == EINTR)
        ;
    if (w < 0 && errno != EAGAIN) {
        int err = -errno;
        job_close_stdin(job); /* the child closed its end: so is ours */
        return err;
    }
    if (w < 0) w = 0;
    if ((size_t)w < n && !loop_watch_active(&job->in_w))
        loop_watch_add(job->ex->loop, &job->in_w, job->in_fd, EPOLLOUT);
    return w;
}

void exec_job_close_stdin(struct exec_job *job)
{
    job_close_stdin(job);
}

bool exec_job_stdin_open(const struct exec_job *job)
{
    return job->in_fd >= 0;
}

/* --- the channel ------------------------------------------------------------ */

static void channel_close(struct exec_job *job)
{
    if (job->ch_fd < 0) return;
    loop_defer_cancel(job->ex->loop, &job->ch_flush);
    loop_watch_del(job->ex->loop, &job->ch_w);
    close(job->ch_fd);
    job->ch_fd = -1;
    buf_free(&job->ch_out);
    if (job->cb && job->cb->on_channel_closed) job->cb->on_channel_closed(job, job->ctx);
}

/* Read once from the channel. Descriptors the child tries to pass (Node's
 * NODE_HANDLE) are closed at once: spawnd accepts none. Returns the bytes
 * read, 0 at EOF (the channel is then closed), -1 when nothing is there. */
static ssize_t channel_read(struct exec_job *job)
{
    struct executor *ex = job->ex;
    struct iovec iov = {ex->scratch, READ_CHUNK};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * 16)];
    } cm;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof cm};
    ssize_t n = recvmsg(job->ch_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n >= 0 && c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int *fds = (int *)CMSG_DATA(c);
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
            close(fds[i]);
    }
    if (n <= 0) {
        channel_close(job);
        return 0;
    }
    ex->stats.channel_bytes += (uint64_t)n;
    exec_job_ref(job);
    if (job->cb && job->cb->on_output)
        job->cb->on_output(job, job->ctx, EXEC_CHANNEL, 0, ex->scratch, (size_t)n);
    exec_job_unref(job);
    return n;
}

/* Write what the socket takes now. Returns 0, or -1 when the socket failed
 * (the caller closes the channel). */
static int channel_write(struct exec_job *job)
{
    while (job->ch_out.len) {
        ssize_t w = send(job->ch_fd, job->ch_out.data, job->ch_out.len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno == EAGAIN ? 0 : -1;
        buf_consume(&job->ch_out, (size_t)w);
    }
    return 0;
}

/* Write what is queued; wait for EPOLLOUT for the rest, and tell the caller
 * that was refused (-ENOBUFS) once half the queue is free again. Only ever
 * called from the loop itself (a watcher or a deferred task), never from
 * inside a caller's call into the executor. */
static void channel_flush(struct exec_job *job)
{
    if (channel_write(job) < 0) {
        channel_close(job);
        return;
    }
    loop_watch_mod(job->ex->loop, &job->ch_w, job->ch_out.len ? EPOLLIN | EPOLLOUT : EPOLLIN);
    if (job->ch_full && job->ch_out.len <= EXEC_CHANNEL_QUEUE / 2) {
        job->ch_full = false;
        if (job->cb && job->cb->on_channel_ready) job->cb->on_channel_ready(job, job->ctx);
    }
}

static void on_channel_flush(struct loop_defer *d)
{
    channel_flush((struct exec_job *)((char *)d - offsetof(struct exec_job, ch_flush)));
}

static void on_channel(struct loop_watch *w, uint32_t revents)
{
    struct exec_job *job = (struct exec_job *)((char *)w - offsetof(struct exec_job, ch_w));
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        exec_job_ref(job);
        channel_read(job);
        bool gone = job->refs == 1;
        exec_job_unref(job);
        if (gone) return;
    }
    if (job->ch_fd >= 0 && (revents & EPOLLOUT)) channel_flush(job);
}

int exec_job_send(struct exec_job *job, const char *data, size_t n)
{
    if (job->ch_fd < 0) return -EPIPE;
    /* The queue holds at most EXEC_CHANNEL_QUEUE bytes, but one message of
     * any size is taken when it is empty (the caller bounds messages). When
     * it would overflow, what the socket takes now goes first: the queue's
     * own write may still be waiting for the end of this batch of events (a
     * socket error is left to that write, which closes the channel). */
    if (job->ch_out.len && job->ch_out.len + n > EXEC_CHANNEL_QUEUE) channel_write(job);
    if (job->ch_out.len && job->ch_out.len + n > EXEC_CHANNEL_QUEUE) {
        job->ch_full = true;
        return -ENOBUFS;
    }
    if (buf_append(&job->ch_out, data, n) < 0) return -ENOMEM;
    /* Not written yet: messages queued by the same batch of events go out
     * in one write, and the child wakes once for all of them. */
    if (!(job->ch_w.events & EPOLLOUT)) loop_defer(job->ex->loop, &job->ch_flush);
    return 0;
}

void exec_job_close_channel(struct exec_job *job)
{
    /* What the socket takes of the queue still goes (a message answered 202
     * a moment ago, its write deferred); the rest is dropped. */
    if (job->ch_fd >= 0) channel_write(job);
    channel_close(job);
}

bool exec_job_channel_open(const struct exec_job *job)
{
    return job->ch_fd >= 0;
}

/* --- ending -------------------------------------------------------------- */

/* One child of spawnd's that belongs to no job: kill it (and its group,
 * if it leads one) unless it is already dead. */
static void kill_stranger(struct executor *ex, pid_t pid)
{
    if (pid <= 0 || *pid_slot(ex, pid)) return;
    char path[64], st[64], state = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t k = sfd >= 0 ? read(sfd, st, sizeof st - 1) : -1;
    if (sfd >= 0) close(sfd);
    if (k > 0) {
        st[k] = 0;
        char *rp = strrchr(st, ')');
        if (rp && rp[1]) state = rp[2];
    }
    if (state == 'Z' || state == 0) return; /* already dead: SIGCHLD reaps it */
    log_info("msg=orphan_killed pid=%d", (int)pid);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/* Processes that left their job's process group (setsid, a double fork)
 * and were orphaned come back to spawnd, the subreaper, as children that
 * belong to no job. A job must not leave processes behind, so when a job
 * ends such strangers are killed. /proc/self/task/TID/children lists
 * spawnd's children, a page or so per read: read to the end, keeping a
 * number cut at a read's end for the next. */
static void kill_strangers(struct executor *ex)
{
    char path[64], buf[4096 + 16];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)gettid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    size_t keep = 0;
    for (;;) {
        ssize_t n = read(fd, buf + keep, sizeof buf - 1 - keep);
        if (n < 0 && errno == EINTR) continue;
        size_t len = keep + (n > 0 ? (size_t)n : 0);
        buf[len] = 0;
        char *p = buf, *end;
        for (;; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p) break;
            if (*end == 0 && n > 0) break; /* maybe cut: parse it with the next read */
            kill_stranger(ex, (pid_t)pid);
        }
        if (n <= 0) break;
        keep = len - (size_t)(p - buf);
        memmove(buf, p, keep);
    }
    close(fd);
}

static void job_finish_if_done(struct exec_job *job)
{
    struct executor *ex = job->ex;
    if (!job->info.running || job->nlive || job->nopen) return;
    /* Messages the child sent just before it ended are still delivered. */
    while (job->ch_fd >= 0 && channel_read(job) > 0)
        ;
    channel_close(job);
    job->info.running = false;
    job->info.end_ns = loop_now_ns();
    /* Over, drain period included: whatever escaped its group goes soon (a
     * sweep at most every STRANGER_SWEEP_MS: it reads /proc; and not before
     * the answer due now is sent: the sweep is not on its path). */
    if (!loop_timer_active(&ex->sweep)) {
        bool recent = ex->swept_ns + STRANGER_SWEEP_MS * 1000000u > loop_now_ns();
        loop_timer_start(ex->loop, &ex->sweep, recent ? STRANGER_SWEEP_MS : 1);
    }
    loop_timer_stop(ex->loop, &job->timeout);
    loop_timer_stop(ex->loop, &job->drain);
    job_close_stdin(job);
    ex->nrunning--;
    double secs = (double)(job->info.end_ns - job->info.start_ns) / 1e9;
    size_t b = 0;
    while (b < EXEC_DURATION_BUCKETS && secs > exec_duration_bounds[b])
        b++;
    ex->stats.duration_count[b]++;
    ex->stats.duration_sum += secs;
    ex->stats.jobs_ended++;
    const struct exec_status *st = &job->status[job->info.nprocs - 1];
    log_info("msg=job.end job=%s pid=%d exit_code=%d signal=%s timed_out=%d killed=%d "
             "duration_ms=%.1f",
             job->label, (int)job->pids[job->info.nprocs - 1], st->exit_code,
             st->signal ? sig_name(st->signal) : "none", job->info.timed_out, job->info.killed,
             (double)(job->info.end_ns - job->info.start_ns) / 1e6);
    if (job->cb && job->cb->on_exit) job->cb->on_exit(job, job->ctx);
    exec_job_unref(job); /* the executor's own reference */
}

static void on_sweep(struct loop_timer *t)
{
    struct executor *ex = (struct executor *)((char *)t - offsetof(struct executor, sweep));
    /* A child being spawned is not in the pid table yet: not a stranger. */
    if (ex->sp.inflight) {
        loop_timer_start(ex->loop, &ex->sweep, 1);
        return;
    }
    ex->swept_ns = loop_now_ns();
    kill_strangers(ex);
}

/* Every process of the job has been reaped. */
static void job_all_exited(struct exec_job *job)
{
    loop_timer_stop(job->ex->loop, &job->timeout);
    /* Whatever the job started is still in its process group: end it. */
    if (!loop_timer_active(&job->grace)) kill_group(job, job->kill_signal);
    if (job->nopen && !job->paused)
        loop_timer_start(job->ex->loop, &job->drain, job->ex->cfg.drain_ms);
    job_finish_if_done(job);
}

/* Process ps (of a job) ended with wait status wst. */
static void proc_reaped(struct executor *ex, struct exec_proc_state *ps, int wst)
{
    struct exec_job *job = ps->job;
    struct exec_status *st = &job->status[ps->step];
    if (WIFEXITED(wst)) {
        st->exit_code = WEXITSTATUS(wst);
        st->signal = 0;
    } else {
        st->exit_code = -1;
        st->signal = WTERMSIG(wst);
    }
    ps->reaped = true;
    *pid_slot(ex, ps->pid) = ps->hnext;
    ps->hnext = NULL;
    ps->pid = -ps->pid; /* off the table; the number may be reused now */
    if (--job->nlive == 0) job_all_exited(job);
}

static void on_sigchld(int signo, void *arg)
{
    struct executor *ex = arg;
    int wst;
    pid_t pid;
    /* Reap everything: our jobs' processes and, as a subreaper, any orphaned
     * descendant that was re-parented to spawnd. */
    while ((pid = waitpid(-1, &wst, WNOHANG)) > 0) {
        struct exec_proc_state *ps = *pid_slot(ex, pid);
        if (ps) {
            proc_reaped(ex, ps, wst);
        } else if (ex->sp.inflight) { /* maybe a child whose spawn is still coming back */
            if (ex->nstash == STASH_SIZE) log_warn("msg=\"reaped statuses overflow\" pid=%d", (int)pid);
            unsigned i = ex->nstash < STASH_SIZE ? ex->nstash++ : (unsigned)pid % STASH_SIZE;
            ex->stash[i].pid = pid;
            ex->stash[i].wst = wst;
        }
    }
}

/* --- starting ------------------------------------------------------------ */

/* Every signal, including glibc's two internal ones (32 and 33, below
 * SIGRTMIN). sigfillset() leaves those out, and glibc's posix_spawn then sets
 * them to SIG_IGN in the child, which exec preserves: the child would start
 * with two ignored signals. Their bits are set directly so they are reset to
 * SIG_DFL like all the others. */
static void fill_all_signals(sigset_t *set)
{
    const size_t bits = 8 * sizeof(unsigned long);
    sigfillset(set);
    for (int sig = 32; sig < SIGRTMIN; sig++)
        ((unsigned long *)set)[(size_t)(sig - 1) / bits] |= 1UL << ((size_t)(sig - 1) % bits);
}

/* The file actions and attributes of one child: fds 0-2 (and the channel
 * as 3), every signal at its default and unblocked, a new session or the
 * pipeline's group. Returns how many descriptors the child keeps. */
static int spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr,
                       const struct exec_proc *p, int fd_in, int fd_out, int fd_err, int fd_chan,
                       pid_t pgid, bool own_session)
{
    posix_spawn_file_actions_init(fa);
    posix_spawnattr_init(attr);
    sigset_t all, none;
    fill_all_signals(&all);
    sigemptyset(&none);
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (own_session) {
        flags |= POSIX_SPAWN_SETSID;
    } else {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(attr, pgid);
    }
    posix_spawnattr_setflags(attr, flags);
    posix_spawnattr_setsigdefault(attr, &all);
    posix_spawnattr_setsigmask(attr, &none);

    posix_spawn_file_actions_adddup2(fa, fd_in, 0);
    posix_spawn_file_actions_adddup2(fa, fd_out, 1);
    posix_spawn_file_actions_adddup2(fa, fd_err, 2);
    int nfds = 3;
    if (fd_chan >= 0) posix_spawn_file_actions_adddup2(fa, fd_chan, nfds++);
    if (p->cwd) posix_spawn_file_actions_addchdir_np(fa, p->cwd);
    return nfds;
}

static bool needs_shim(const struct executor *ex, const struct exec_spec *spec)
{
    return spec->uid >= 0 || spec->gid >= 0 || ex->cfg.nrlimits;
}

static int spawn_one(struct executor *ex, const struct exec_proc *p, const struct exec_spec *spec,
                     int fd_in, int fd_out, int fd_err, int fd_chan, pid_t pgid, bool own_session,
                     pid_t *pid)
{
    char path[4096];
    int r = exec_path_resolve(p->file, p->envp, p->cwd, path, sizeof path);
    if (r < 0) return r;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int nfds = spawn_setup(&fa, &attr, p, fd_in, fd_out, fd_err, fd_chan, pgid, own_session);
    if (needs_shim(ex, spec)) {
        struct shim_opts so = {spec->uid, spec->gid, ex->cfg.rlimits, ex->cfg.nrlimits};
        r = shim_spawn(pid, path, &fa, &attr, p->argv, p->envp, &so, nfds);
    } else {
        posix_spawn_file_actions_addclosefrom_np(&fa, nfds);
        r = -posix_spawn(pid, path, &fa, &attr, p->argv, p->envp);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return r;
}

/* --- the spawner threads ---------------------------------------------------- */

/* A NULL-terminated vector and its strings, in one allocation. */
static char **strv_copy(char *const *v)
{
    size_t n = 0, bytes = 0;
    for (; v[n]; n++)
        bytes += strlen(v[n]) + 1;
    char **out = malloc((n + 1) * sizeof *out + bytes);
    if (!out) return NULL;
    char *w = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        out[i] = memcpy(w, v[i], len);
        w += len;
    }
    out[n] = NULL;
    return out;
}

static void spawn_req_free(struct spawn_req *q)
{
    for (size_t i = 0; i < 4; i++)
        if (q->child_fds[i] >= 0) close(q->child_fds[i]);
    posix_spawn_file_actions_destroy(&q->fa);
    posix_spawnattr_destroy(&q->attr);
    free(q->argv);
    free(q->envp);
    free(q->file);
    free(q);
}

static void *spawner_main(void *arg)
{
    struct spawner *sp = arg;
    pthread_mutex_lock(&sp->mu);
    for (;;) {
        while (!sp->todo && !sp->quit)
            pthread_cond_wait(&sp->cv, &sp->mu);
        struct spawn_req *q = sp->todo;
        if (!q) break; /* quit, and nothing left to do */
        sp->todo = q->next;
        pthread_mutex_unlock(&sp->mu);
        q->err = -posix_spawn(&q->pid, q->path, &q->fa, &q->attr, q->argv, q->envp);
        pthread_mutex_lock(&sp->mu);
        q->next = sp->done;
        sp->done = q;
        if (!q->next) { /* otherwise the loop has been told already */
            uint64_t one = 1;
            ssize_t w = write(sp->efd, &one, sizeof one);
            (void)w; /* only fails when the counter is full: it is read long before */
        }
    }
    pthread_mutex_unlock(&sp->mu);
    return NULL;
}

/* Hand job's only process to the spawner: fds are the child's stdin,
 * stdout, stderr and channel (-1: none); those in owned go with the request
 * and are closed once the child has them. Returns 0 or a negative errno
 * (nothing handed over; the caller still owns its descriptors). */
static int spawn_defer(struct executor *ex, struct exec_job *job, const struct exec_proc *p,
                       const int fds[4], const int owned[4])
{
    struct spawn_req *q = calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    int r = exec_path_resolve(p->file, p->envp, p->cwd, q->path, sizeof q->path);
    if (r < 0) {
        free(q);
        return r;
    }
    q->argv = strv_copy(p->argv);
    q->envp = strv_copy(p->envp);
    q->file = strdup(p->file);
    if (!q->argv || !q->envp || !q->file) {
        free(q->argv);
        free(q->envp);
        free(q->file);
        free(q);
        return -ENOMEM;
    }
    int nfds = spawn_setup(&q->fa, &q->attr, p, fds[0], fds[1], fds[2], fds[3], 0, true);
    posix_spawn_file_actions_addclosefrom_np(&q->fa, nfds);
    memcpy(q->child_fds, owned, sizeof q->child_fds);
    q->job = job;
    job->spawning = true;
    struct spawner *sp = &ex->sp;
    sp->inflight++;
    pthread_mutex_lock(&sp->mu);
    if (sp->todo_tail && sp->todo) sp->todo_tail->next = q;
    else sp->todo = q;
    sp->todo_tail = q;
    pthread_cond_signal(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    return 0;
}

static void job_watch(struct exec_job *job);
static void proc_reaped(struct executor *ex, struct exec_proc_state *ps, int wst);

/* A spawn came back from the spawner thread (on the loop's thread). */
static void spawn_complete(struct executor *ex, struct spawn_req *q)
{
    struct exec_job *job = q->job;
    for (size_t i = 0; i < 4; i++)
        if (q->child_fds[i] >= 0) close(q->child_fds[i]);
    memset(q->child_fds, -1, sizeof q->child_fds);
    job->spawning = false;
    ex->sp.inflight--;
    if (q->err < 0) {
        /* Nothing runs: the job ends here, without an on_exit. */
        const struct exec_job_cb *cb = job->cb;
        void *ctx = job->ctx;
        job->cb = NULL;
        for (size_t i = 0; i < job->npipes; i++)
            pipe_close(&job->pipes[i]);
        job_close_stdin(job);
        channel_close(job);
        loop_timer_stop(ex->loop, &job->timeout);
        job->info.running = false;
        job->info.end_ns = loop_now_ns();
        ex->nrunning--;
        exec_job_ref(job);
        if (cb && cb->on_spawned) cb->on_spawned(job, ctx, q->err, q->file);
        exec_job_unref(job);
        exec_job_unref(job); /* the executor's own reference */
    } else {
        pid_t pid = q->pid;
        job->pids[0] = job->pgid = pid;
        job->procs[0] = (struct exec_proc_state){.pid = pid, .step = 0, .job = job};
        job->nlive = 1;
        pid_insert(ex, &job->procs[0]);
        job_watch(job);
        log_info("msg=job.start job=%s pid=%d file=%s nprocs=1", job->label, (int)pid, q->file);
        exec_job_ref(job);
        if (job->cb && job->cb->on_spawned) job->cb->on_spawned(job, job->ctx, 0, q->file);
        if (job->kill_pending && job->info.running) kill_group(job, job->kill_signal);
        for (unsigned i = 0; i < ex->nstash; i++) {
            if (ex->stash[i].pid != pid) continue;
            int wst = ex->stash[i].wst;
            ex->stash[i] = ex->stash[--ex->nstash];
            proc_reaped(ex, &job->procs[0], wst); /* may end the job */
            break;
        }
        exec_job_unref(job);
    }
    if (!ex->sp.inflight) ex->nstash = 0; /* nothing can claim them any more */
    spawn_req_free(q);
}

static void on_spawner(struct loop_watch *w, uint32_t revents)
{
    struct executor *ex = (struct executor *)((char *)w - offsetof(struct executor, sp.w));
    uint64_t n;
    ssize_t rd = read(ex->sp.efd, &n, sizeof n);
    (void)rd;
    pthread_mutex_lock(&ex->sp.mu);
    struct spawn_req *list = ex->sp.done, *rev = NULL;
    ex->sp.done = NULL;
    pthread_mutex_unlock(&ex->sp.mu);
    while (list) { /* oldest first */
        struct spawn_req *q = list;
        list = q->next;
        q->next = rev;
        rev = q;
    }
    while (rev) {
        struct spawn_req *q = rev;
        rev = q->next;
        spawn_complete(ex, q);
    }
}

static void spawner_start(struct executor *ex)
{
    struct spawner *sp = &ex->sp;
    sp->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sp->efd < 0) return;
    pthread_mutex_init(&sp->mu, NULL);
    pthread_cond_init(&sp->cv, NULL);
    loop_watch_init(&sp->w, on_spawner);
    if (loop_watch_add(ex->loop, &sp->w, sp->efd, EPOLLIN) < 0) {
        close(sp->efd);
        sp->efd = -1;
        return;
    }
    while (sp->nthreads < SPAWNERS &&
           pthread_create(&sp->thread[sp->nthreads], NULL, spawner_main, sp) == 0)
        sp->nthreads++;
    if (!sp->nthreads) {
        loop_watch_del(ex->loop, &sp->w);
        close(sp->efd);
        sp->efd = -1;
        log_warn("msg=\"no spawner thread: every spawn is made on the loop's thread\"");
        return;
    }
    sp->running = true;
}

/* Let the thread finish what it was given, then stop it; children it
 * started for jobs that are going away are killed (and reaped as strangers). */
static void spawner_stop(struct executor *ex)
{
    struct spawner *sp = &ex->sp;
    if (!sp->running) return;
    pthread_mutex_lock(&sp->mu);
    sp->quit = true;
    pthread_cond_broadcast(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    for (unsigned i = 0; i < sp->nthreads; i++)
        pthread_join(sp->thread[i], NULL);
    sp->running = false;
    while (sp->done) {
        struct spawn_req *q = sp->done;
        sp->done = q->next;
        if (q->err == 0) kill(q->pid, SIGKILL);
        q->job->spawning = false;
        sp->inflight--;
        spawn_req_free(q);
    }
    loop_watch_del(ex->loop, &sp->w);
    close(sp->efd);
    pthread_mutex_destroy(&sp->mu);
    pthread_cond_destroy(&sp->cv);
}

/* --allow: the program, after PATH lookup and symlinks, must be listed. */
static int policy_check(const struct executor *ex, const struct exec_proc *p)
{
    if (!ex->cfg.allow) return 0;
    char path[4096], real[PATH_MAX];
    int r = exec_path_resolve(p->file, p->envp, p->cwd, path, sizeof path);
    if (r < 0) return r;
    if (!realpath(path, real)) return -errno;
    for (char *const *a = ex->cfg.allow; *a; a++)
        if (strcmp(*a, real) == 0) return 0;
    return -EXEC_EPOLICY;
}

int exec_rlimit_parse(const char *s, struct exec_rlimit *out)
{
    static const struct {
        const char *name;
        int resource;
    } names[] = {{"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"as", RLIMIT_AS},
                 {"cpu", RLIMIT_CPU},       {"fsize", RLIMIT_FSIZE}, {"core", RLIMIT_CORE}};
    const char *eq = strchr(s, '=');
    if (!eq) return -EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) != (size_t)(eq - s) || strncmp(s, names[i].name, (size_t)(eq - s)))
            continue;
        out->resource = names[i].resource;
        if (strcmp(eq + 1, "unlimited") == 0) {
            out->value = RLIM_INFINITY;
            return 0;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(eq + 1, &end, 10);
        if (errno || end == eq + 1 || *end || eq[1] == '-') return -EINVAL;
        out->value = v;
        return 0;
    }
    return -EINVAL;
}

/* Our ends of fresh pipes and sockets: no other status flag is set. */
static int set_nonblock(int fd)
{
    return fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
}

/* A pair of pipes (a step's stdout and stderr); on failure neither is open. */
static int pipes_open(int out[2], int errp[2])
{
    if (pipe2(out, O_CLOEXEC) < 0) return -errno;
    if (pipe2(errp, O_CLOEXEC) < 0) {
        int e = -errno;
        close(out[0]);
        close(out[1]);
        return e;
    }
    return 0;
}

/* A job from its start (or hand-over to a spawner): listed, counted
 * against --max-jobs, its timeout running. */
static void job_enlist(struct exec_job *job, uint64_t timeout_ms)
{
    struct executor *ex = job->ex;
    job->next = ex->jobs;
    if (ex->jobs) ex->jobs->prev = job;
    ex->jobs = job;
    ex->nrunning++;
    if (timeout_ms) loop_timer_start(ex->loop, &job->timeout, timeout_ms);
}

/* The job's processes run: watch its pipes and channel, start feeding stdin. */
static void job_watch(struct exec_job *job)
{
    struct executor *ex = job->ex;
    for (size_t i = 0; i < job->npipes; i++) {
        set_nonblock(job->pipes[i].fd);
        pipe_watch(&job->pipes[i]);
    }
    if (job->in_fd >= 0) {
        set_nonblock(job->in_fd);
        if (!job->in_stream) stdin_write(job);
    }
    if (job->ch_fd >= 0) {
        set_nonblock(job->ch_fd);
        if (loop_watch_add(ex->loop, &job->ch_w, job->ch_fd, EPOLLIN) < 0) channel_close(job);
    }
}

struct exec_job *exec_job_start(struct executor *ex, const struct exec_spec *spec,
                                const struct exec_job_cb *cb, void *ctx, int *err,
                                size_t *failed_step)
{
    size_t n = spec->nprocs;
    struct exec_job *job = NULL;
    int r = 0, fd_in = -1, prev_read = -1, chan[2] = {-1, -1};
    *failed_step = 0;

    if (n == 0) {
        r = -EINVAL;
        goto fail;
    }
    if (ex->nrunning >= ex->cfg.max_jobs) {
        r = -EBUSY;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        *failed_step = i;
        if ((r = policy_check(ex, &spec->procs[i])) < 0) goto fail;
    }
    *failed_step = 0;
    size_t sz = sizeof *job + n * (sizeof(pid_t) + sizeof(struct exec_status) +
                                   sizeof(struct exec_proc_state)) +
                (n + 1) * sizeof(struct exec_pipe);
    job = calloc(1, sz);
    if (!job) {
        r = -ENOMEM;
        goto fail;
    }
    job->procs = (struct exec_proc_state *)(job + 1);
    job->pipes = (struct exec_pipe *)(job->procs + n);
    job->status = (struct exec_status *)(job->pipes + n + 1);
    job->pids = (pid_t *)(job->status + n);
    job->ex = ex;
    job->refs = 2; /* the caller's and the executor's (dropped when it ends) */
    job->cb = cb;
    job->ctx = ctx;
    job->kill_signal = spec->kill_signal ? spec->kill_signal : SIGTERM;
    job->info.nprocs = n;
    job->info.pids = job->pids;
    job->info.status = job->status;
    job->in_fd = -1;
    job->ch_fd = -1;
    buf_init(&job->ch_out, SIZE_MAX / 2); /* bounded by exec_job_send's rule */
    loop_watch_init(&job->ch_w, on_channel);
    loop_defer_init(&job->ch_flush, on_channel_flush);
    job->npipes = n + 1;
    snprintf(job->label, sizeof job->label, "%s", spec->label ? spec->label : "-");
    loop_watch_init(&job->in_w, on_stdin);
    loop_timer_init(&job->timeout, on_timeout);
    loop_timer_init(&job->drain, on_drain);
    loop_timer_init(&job->grace, on_grace);
    for (size_t i = 0; i < job->npipes; i++) {
        struct exec_pipe *p = &job->pipes[i];
        loop_watch_init(&p->w, on_pipe);
        p->job = job;
        p->fd = -1;
        p->stream = i == 0 ? EXEC_STDOUT : EXEC_STDERR;
        p->step = i == 0 ? n - 1 : i - 1;
        /* A stream's stdout comes in big steps: fewer wake-ups per MB. */
        p->read_max = i == 0 && spec->stdout_pipe_size ? READ_CHUNK_BIG : READ_CHUNK;
    }
    for (size_t i = 0; i < n; i++)
        job->status[i] = (struct exec_status){-1, 0};

    /* stdin of the first step: a pipe we fill, or /dev/null. */
    if (spec->stdin_mode != EXEC_STDIN_NULL) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) {
            r = -errno;
            goto fail;
        }
        fd_in = fds[0];
        job->in_fd = fds[1];
        job->in_stream = spec->stdin_mode == EXEC_STDIN_PIPE;
        if (spec->stdin_mode == EXEC_STDIN_DATA && spec->stdin_len) {
            job->in_data = malloc(spec->stdin_len);
            if (!job->in_data) {
                r = -ENOMEM;
                goto fail;
            }
            memcpy(job->in_data, spec->stdin_data, spec->stdin_len);
            job->in_len = spec->stdin_len;
        }
    }
    int src0 = fd_in >= 0 ? fd_in : ex->devnull; /* one /dev/null serves every job */

    if (spec->channel) {
        if (n != 1) {
            r = -EINVAL;
            goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0) {
            r = -errno;
            goto fail;
        }
        job->ch_fd = chan[0];
    }

    job->info.running = true;
    job->info.start_ns = loop_now_ns();
    /* While other jobs run, the spawn itself is made by the spawner thread
     * (for callers that can take its outcome later); with nothing else to
     * do, on this thread, which is quicker for a lone request. */
    if (cb && cb->on_spawned && n == 1 && ex->sp.running && ex->nrunning > 0 &&
        ex->sp.inflight < SPAWN_QUEUE_MAX && !needs_shim(ex, spec)) {
        int out[2], errp[2];
        if ((r = pipes_open(out, errp)) < 0) goto fail;
        job->pipes[0].fd = out[0];
        job->pipes[1].fd = errp[0];
        job->nopen = 2;
        if (spec->stdout_pipe_size) fcntl(out[0], F_SETPIPE_SZ, (int)spec->stdout_pipe_size);
        const int fds[4] = {src0, out[1], errp[1], chan[1]};
        const int owned[4] = {fd_in, out[1], errp[1], chan[1]}; /* not the shared /dev/null */
        r = spawn_defer(ex, job, &spec->procs[0], fds, owned);
        if (r < 0) {
            close(out[1]);
            close(errp[1]);
            goto fail;
        }
        fd_in = chan[1] = -1; /* the spawner's now */
        job_enlist(job, spec->timeout_ms);
        return job;
    }
    for (size_t i = 0; i < n; i++) {
        int out[2], errp[2];
        if ((r = pipes_open(out, errp)) < 0) {
            *failed_step = i;
            goto fail_started;
        }
        int src = i == 0 ? src0 : prev_read;
        r = spawn_one(ex, &spec->procs[i], spec, src, out[1], errp[1], chan[1], job->pgid, n == 1,
                      &job->pids[i]);
        close(out[1]);
        close(errp[1]);
        if (i > 0) close(prev_read);
        prev_read = -1;
        job->pipes[1 + i].fd = errp[0];
        job->nopen++;
        if (i == n - 1) {
            /* Best effort: past the user's pipe quota the kernel says no. */
            if (spec->stdout_pipe_size) fcntl(out[0], F_SETPIPE_SZ, (int)spec->stdout_pipe_size);
            job->pipes[0].fd = out[0];
            job->nopen++;
        } else {
            prev_read = out[0];
        }
        if (r < 0) {
            *failed_step = i;
            goto fail_started;
        }
        if (i == 0) job->pgid = job->pids[0];
        job->procs[i] = (struct exec_proc_state){.pid = job->pids[i], .step = i, .job = job};
        job->nlive++;
    }
    if (fd_in >= 0) close(fd_in);
    fd_in = -1;
    if (chan[1] >= 0) close(chan[1]);

    for (size_t i = 0; i < n; i++)
        pid_insert(ex, &job->procs[i]);
    job_enlist(job, spec->timeout_ms);
    job_watch(job);
    log_info("msg=job.start job=%s pid=%d file=%s nprocs=%zu", job->label,
             (int)job->pids[n - 1], spec->procs[n - 1].file, n);
    return job;

fail_started:
    /* Steps already running are killed; SIGCHLD reaps them as strangers. */
    if (job->pgid > 0) kill(-job->pgid, SIGKILL);
    if (prev_read >= 0) close(prev_read);
fail:
    if (fd_in >= 0) close(fd_in);
    if (chan[1] >= 0) close(chan[1]);
    if (job) {
        if (job->ch_fd >= 0) close(job->ch_fd);
        buf_free(&job->ch_out);
        for (size_t i = 0; i < job->npipes; i++)
            if (job->pipes[i].fd >= 0) close(job->pipes[i].fd);
        if (job->in_fd >= 0) close(job->in_fd);
        free(job->in_data);
        free(job);
    }
    *err = r;
    return NULL;
}

/* --- the executor -------------------------------------------------------- */

struct executor *exec_new(struct loop *l, const struct exec_config *cfg)
{
    struct executor *ex = calloc(1, sizeof *ex);
    if (!ex) return NULL;
    ex->loop = l;
    ex->cfg = *cfg;
    loop_timer_init(&ex->sweep, on_sweep);
    int sr = shim_init();
    if (sr < 0 && (cfg->nrlimits || geteuid() == 0))
        log_warn("msg=\"spawnd-shim not found next to spawnd: runs with uid/gid or --rlimit "
                 "will fail\" error=%d", -sr);
    ex->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (ex->devnull < 0) {
        free(ex);
        return NULL;
    }
    /* Orphaned descendants of our children are re-parented to us, so they
     * are reaped here too (also when spawnd is PID 1 in a container). */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    loop_on_signal(l, SIGCHLD, on_sigchld, ex);
    spawner_start(ex);
    return ex;
}

void exec_free(struct executor *ex)
{
    if (!ex) return;
    spawner_stop(ex);
    while (ex->jobs) {
        struct exec_job *j = ex->jobs;
        if (j->pgid > 0 && (j->info.running || loop_timer_active(&j->grace)))
            kill(-j->pgid, SIGKILL);
        j->refs = 1;
        exec_job_unref(j);
    }
    loop_timer_stop(ex->loop, &ex->sweep);
    kill_strangers(ex);
    on_sigchld(SIGCHLD, ex);
    close(ex->devnull);
    free(ex);
}
