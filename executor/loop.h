/* loop: the one event loop of spawnd (epoll, level-triggered).
 *
 * Everything that waits in spawnd waits here: child pipes, the HTTP library's
 * own epoll descriptor, client sockets watched for hang-up, signals (through a
 * signalfd) and timers (a binary heap on the monotonic clock).  There is one
 * loop and one thread, so nothing in spawnd needs a lock (the executor's
 * spawner threads only hand spawns over, under their own mutex).
 *
 * Watchers and timers are embedded in their owner's struct; the loop never
 * allocates for them.  A callback may add, change or delete any watcher or
 * timer, including its own: a watcher deleted while events for it are pending
 * in the current batch is simply not called. */
#ifndef SPAWND_LOOP_H
#define SPAWND_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_watch;
struct loop_timer;
struct loop_defer;

typedef void (*loop_watch_cb)(struct loop_watch *w, uint32_t revents);
typedef void (*loop_timer_cb)(struct loop_timer *t);
typedef void (*loop_signal_cb)(int signo, void *arg);
typedef void (*loop_defer_cb)(struct loop_defer *d);

struct loop_watch {
    int fd;          /* -1 while not added */
    uint32_t events; /* EPOLLIN | EPOLLOUT | EPOLLRDHUP ... as registered */
    loop_watch_cb cb;
};

struct loop_timer {
    uint64_t due_ns; /* absolute, CLOCK_MONOTONIC */
    size_t idx;      /* position in the heap; SIZE_MAX while stopped */
    loop_timer_cb cb;
};

/* Create a loop. Blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP in the calling
 * thread so they can be received through loop_on_signal(); call it before any
 * other thread exists. Returns NULL with errno set on failure. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Run until loop_stop(). Returns 0, or a negative errno if epoll fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/* Monotonic time in nanoseconds (fresh each call). */
uint64_t loop_now_ns(void);

void loop_watch_init(struct loop_watch *w, loop_watch_cb cb);
/* Watch fd for events. Returns 0 or a negative errno. */
int loop_watch_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events);
/* Change the events watched; 0 keeps the fd registered but silent. */
int loop_watch_mod(struct loop *l, struct loop_watch *w, uint32_t events);
/* Stop watching (before the fd is closed). Safe on a watcher not added. */
void loop_watch_del(struct loop *l, struct loop_watch *w);
/* The same for an fd the caller closes right away and never duplicated:
 * closing it takes it out of epoll, so no system call is made here. */
void loop_watch_forget(struct loop *l, struct loop_watch *w);
static inline int loop_watch_active(const struct loop_watch *w)
{
    return w->fd >= 0;
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb);
/* (Re)start the timer to fire once, ms milliseconds from now. */
void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms);
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline int loop_timer_active(const struct loop_timer *t)
{
    return t->idx != (size_t)-1;
}

/* Work put off until the batch of events being handled is done: what the
 * callbacks of one batch queued for a descriptor (a run of messages that
 * came in one read, say) is then written once for all. A deferred task is
 * queued at most once; it runs before the loop next sleeps, in the order
 * queued. Its owner cancels it before it is freed. */
struct loop_defer {
    struct loop_defer *prev, *next;
    int queued;
    loop_defer_cb cb;
};
void loop_defer_init(struct loop_defer *d, loop_defer_cb cb);
void loop_defer(struct loop *l, struct loop_defer *d);
void loop_defer_cancel(struct loop *l, struct loop_defer *d);

/* Call cb(signo, arg) from the loop whenever signo arrives. signo must be one
 * of the signals loop_new() blocked. One callback per signal. */
int loop_on_signal(struct loop *l, int signo, loop_signal_cb cb, void *arg);

#endif
