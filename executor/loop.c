#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LOOP_BATCH 64
#define LOOP_NSIG 65

struct loop {
    int epfd;
    int stop;
    /* The batch being dispatched, so loop_watch_del() can cancel events
     * still pending for a watcher deleted by an earlier callback. */
    struct epoll_event events[LOOP_BATCH];
    int nevents, cur;
    /* Timers: a binary min-heap on due_ns. */
    struct loop_timer **heap;
    size_t nheap, heap_size;
    /* Signals arrive through one signalfd. */
    sigset_t sigs;
    struct loop_watch sigw;
    struct {
        loop_signal_cb cb;
        void *arg;
    } sig[LOOP_NSIG];
    /* Deferred tasks, in the order queued. */
    struct loop_defer *defer_head, *defer_tail;
    size_t ndefer;
};

uint64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- timers ------------------------------------------------------------ */

static void heap_swap(struct loop *l, size_t a, size_t b)
{
    struct loop_timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->idx = a;
    l->heap[b]->idx = b;
}

static void heap_up(struct loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->due_ns <= l->heap[i]->due_ns) break;
        heap_swap(l, i, p);
        i = p;
    }
}

static void heap_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->nheap && l->heap[c]->due_ns < l->heap[m]->due_ns) m = c;
        if (c + 1 < l->nheap && l->heap[c + 1]->due_ns < l->heap[m]->due_ns) m = c + 1;
        if (m == i) return;
        heap_swap(l, i, m);
        i = m;
    }
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb)
{
    t->due_ns = 0;
    t->idx = (size_t)-1;
    t->cb = cb;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    size_t i = t->idx;
    if (i == (size_t)-1) return;
    t->idx = (size_t)-1;
    l->nheap--;
    if (i == l->nheap) return;
    l->heap[i] = l->heap[l->nheap];
    l->heap[i]->idx = i;
    heap_up(l, i);
    heap_down(l, l->heap[i]->idx);
}

void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms)
{
    loop_timer_stop(l, t);
    if (l->nheap == l->heap_size) {
        size_t n = l->heap_size ? l->heap_size * 2 : 64;
        struct loop_timer **h = realloc(l->heap, n * sizeof *h);
        if (!h) abort(); /* a timer that silently never fires would leak a job */
        l->heap = h;
        l->heap_size = n;
    }
    t->due_ns = loop_now_ns() + ms * 1000000u;
    t->idx = l->nheap;
    l->heap[l->nheap++] = t;
    heap_up(l, t->idx);
}

/* Fire due timers; return the epoll timeout until the next one. */
static int run_timers(struct loop *l)
{
    uint64_t now = loop_now_ns();
    while (l->nheap && l->heap[0]->due_ns <= now) {
        struct loop_timer *t = l->heap[0];
        loop_timer_stop(l, t);
        t->cb(t);
    }
    if (!l->nheap) return -1;
    now = loop_now_ns();
    if (l->heap[0]->due_ns <= now) return 0;
    uint64_t ms = (l->heap[0]->due_ns - now + 999999) / 1000000;
    return ms > 60000 ? 60000 : (int)ms;
}

/* --- deferred tasks ------------------------------------------------------ */

void loop_defer_init(struct loop_defer *d, loop_defer_cb cb)
{
    d->prev = d->next = NULL;
    d->queued = 0;
    d->cb = cb;
}

void loop_defer(struct loop *l, struct loop_defer *d)
{
    if (d->queued) return;
    d->queued = 1;
    d->next = NULL;
    d->prev = l->defer_tail;
    if (l->defer_tail) l->defer_tail->next = d;
    else l->defer_head = d;
    l->defer_tail = d;
    l->ndefer++;
}

void loop_defer_cancel(struct loop *l, struct loop_defer *d)
{
    if (!d->queued) return;
    if (d->prev) d->prev->next = d->next;
    else l->defer_head = d->next;
    if (d->next) d->next->prev = d->prev;
    else l->defer_tail = d->prev;
    d->prev = d->next = NULL;
    d->queued = 0;
    l->ndefer--;
}

/* Runs the tasks queued so far; those they queue wait for the next round
 * (the loop then does not sleep), so a task that keeps re-queueing itself
 * cannot starve the descriptors. */
static void run_defers(struct loop *l)
{
    for (size_t n = l->ndefer; n && l->defer_head; n--) {
        struct loop_defer *d = l->defer_head;
        loop_defer_cancel(l, d);
        d->cb(d);
    }
}

/* --- watchers ---------------------------------------------------------- */

void loop_watch_init(struct loop_watch *w, loop_watch_cb cb)
{
    w->fd = -1;
    w->events = 0;
    w->cb = cb;
}

int loop_watch_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
    w->fd = fd;
    w->events = events;
    return 0;
}

int loop_watch_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
    if (w->fd < 0) return -EBADF;
    if (events == w->events) return 0;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0) return -errno;
    w->events = events;
    return 0;
}

static void watch_drop(struct loop *l, struct loop_watch *w)
{
    w->fd = -1;
    w->events = 0;
    for (int i = l->cur; i < l->nevents; i++)
        if (l->events[i].data.ptr == w) l->events[i].data.ptr = NULL;
}

void loop_watch_forget(struct loop *l, struct loop_watch *w)
{
    if (w->fd >= 0) watch_drop(l, w);
}

void loop_watch_del(struct loop *l, struct loop_watch *w)
{
    if (w->fd < 0) return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    watch_drop(l, w);
}


/* --- signals ----------------------------------------------------------- */

static void on_signalfd(struct loop_watch *w, uint32_t revents)
{
    struct loop *l = (struct loop *)((char *)w - offsetof(struct loop, sigw));
    struct signalfd_siginfo si[16];
    ssize_t n;
    while ((n = read(w->fd, si, sizeof si)) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++) {
            int s = (int)si[i].ssi_signo;
            if (s > 0 && s < LOOP_NSIG && l->sig[s].cb) l->sig[s].cb(s, l->sig[s].arg);
        }
    }
}

int loop_on_signal(struct loop *l, int signo, loop_signal_cb cb, void *arg)
{
    if (signo <= 0 || signo >= LOOP_NSIG || !sigismember(&l->sigs, signo)) return -EINVAL;
    l->sig[signo].cb = cb;
    l->sig[signo].arg = arg;
    return 0;
}

/* --- the loop ---------------------------------------------------------- */

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) goto fail;
    sigemptyset(&l->sigs);
    sigaddset(&l->sigs, SIGCHLD);
    sigaddset(&l->sigs, SIGTERM);
    sigaddset(&l->sigs, SIGINT);
    sigaddset(&l->sigs, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &l->sigs, NULL) != 0) goto fail;
    int sfd = signalfd(-1, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) goto fail;
    loop_watch_init(&l->sigw, on_signalfd);
    if (loop_watch_add(l, &l->sigw, sfd, EPOLLIN) < 0) {
        close(sfd);
        goto fail;
    }
    return l;
fail:
    if (l->epfd >= 0) close(l->epfd);
    free(l);
    return NULL;
}

void loop_free(struct loop *l)
{
    if (!l) return;
    int sfd = l->sigw.fd;
    loop_watch_del(l, &l->sigw);
    close(sfd);
    close(l->epfd);
    free(l->heap);
    free(l);
}

void loop_stop(struct loop *l)
{
    l->stop = 1;
}

int loop_run(struct loop *l)
{
    l->stop = 0;
    while (!l->stop) {
        run_defers(l);
        int timeout = run_timers(l);
        if (l->stop) break;
        if (l->defer_head) timeout = 0;
        log_flush(); /* this iteration's log lines, after its answers went out */
        int n = epoll_wait(l->epfd, l->events, LOOP_BATCH, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        l->nevents = n;
        for (l->cur = 0; l->cur < l->nevents;) {
            struct epoll_event *ev = &l->events[l->cur++];
            struct loop_watch *w = ev->data.ptr;
            if (w) w->cb(w, ev->events);
        }
        l->nevents = l->cur = 0;
    }
    return 0;
}
