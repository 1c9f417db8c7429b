/* loop: deferred tasks, and how they meet timers and watchers. */
#include <stddef.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "check.h"
#include "executor/loop.h"

static struct loop *L;
static char trace[64];
static size_t ntrace;

struct task {
    struct loop_defer d;
    char name;
    int requeue;               /* queue itself again this many times */
    struct loop_defer *cancel; /* cancel this one when run */
    int stop;                  /* stop the loop once it no longer re-queues */
};

static void on_task(struct loop_defer *d)
{
    struct task *t = (struct task *)((char *)d - offsetof(struct task, d));
    if (ntrace < sizeof trace - 1) trace[ntrace++] = t->name;
    if (t->cancel) loop_defer_cancel(L, t->cancel);
    if (t->requeue > 0) {
        t->requeue--;
        loop_defer(L, d);
    } else if (t->stop) {
        loop_stop(L);
    }
}

static void on_pipe(struct loop_watch *w, uint32_t revents)
{
    char c;
    (void)revents;
    if (read(w->fd, &c, 1) == 1 && ntrace < sizeof trace - 1) trace[ntrace++] = c;
}

static void on_stop(struct loop_timer *t)
{
    (void)t;
    loop_stop(L);
}

static void reset(void)
{
    ntrace = 0;
    for (size_t i = 0; i < sizeof trace; i++)
        trace[i] = 0;
}

/* Tasks run in the order queued, once however often queued, and not at all
 * once cancelled. */
static void test_order_and_cancel(void)
{
    reset();
    struct task a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'}, d = {.name = 'd'};
    loop_defer_init(&a.d, on_task);
    loop_defer_init(&b.d, on_task);
    loop_defer_init(&c.d, on_task);
    loop_defer_init(&d.d, on_task);
    a.cancel = &c.d; /* a task may cancel another still queued */
    loop_defer(L, &a.d);
    loop_defer(L, &b.d);
    loop_defer(L, &a.d); /* already queued: no second run */
    loop_defer(L, &c.d);
    loop_defer(L, &d.d);
    loop_defer_cancel(L, &b.d);
    loop_defer_cancel(L, &b.d); /* not queued: nothing */
    struct loop_timer stop;
    loop_timer_init(&stop, on_stop);
    loop_timer_start(L, &stop, 50);
    CHECK_INT(loop_run(L), 0);
    CHECK_STR(trace, "ad");
}

/* A task that queues itself runs again in the next round, after what the
 * descriptors have to say, and the loop does not sleep meanwhile. */
static void test_requeue_does_not_starve_or_sleep(void)
{
    reset();
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    struct loop_watch w;
    loop_watch_init(&w, on_pipe);
    CHECK_INT(loop_watch_add(L, &w, fds[0], EPOLLIN), 0);
    CHECK_INT(write(fds[1], "x", 1), 1);
    struct task t = {.name = 't', .requeue = 2, .stop = 1};
    loop_defer_init(&t.d, on_task);
    loop_defer(L, &t.d);
    struct loop_timer stop;
    loop_timer_init(&stop, on_stop);
    loop_timer_start(L, &stop, 200); /* a loop that slept with a task queued would take this long */
    uint64_t t0 = loop_now_ns();
    CHECK_INT(loop_run(L), 0);
    uint64_t ms = (loop_now_ns() - t0) / 1000000u;
    CHECK_STR(trace, "txtt"); /* the pipe's event came between the first two runs */
    CHECK(ms < 150);
    loop_timer_stop(L, &stop);
    loop_watch_del(L, &w);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    L = loop_new();
    CHECK(L != NULL);
    if (!L) return 1;
    test_order_and_cancel();
    test_requeue_does_not_starve_or_sleep();
    loop_free(L);
    return check_status();
}
