/* The loop's wake-up from other threads (wake.h). */
#include "server/wake.h"

#include <errno.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/err.h"

#define WAKE_OF(h, field)                                                      \
    ((struct server__wake *)(void *)((char *)(h)-offsetof(struct server__wake, \
                                                          field)))

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct server__wake *w = (struct server__wake *)h;
    (void)events;
    if (status < 0)
        return;
    /* Drain first, then clear the flag: a send between the two finds the
     * flag set and writes nothing, and its data is seen by the callback
     * below; clearing first could eat the eventfd count of a send that
     * then leaves the flag set with nothing left to wake the loop. */
    uint64_t v;
    while (read(w->fd, &v, sizeof v) < 0 && errno == EINTR) {
    }
    atomic_exchange_explicit(&w->pending, 0, memory_order_acq_rel);
    /* The callback takes every quiet send published before this. */
    atomic_store(&w->unseen, false);
    w->wakeups++;
    w->cb(w);
}

int server__wake_init(uv_loop_t *loop, struct server__wake *w,
                      server__wake_cb cb)
{
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0)
        return cairn_err_from_errno(errno);
    atomic_init(&w->pending, 0);
    atomic_init(&w->wanted, true);
    atomic_init(&w->unseen, false);
    w->want = NULL;
    w->quiet_started = false;
    w->cb = cb;
    w->wakeups = 0;
    w->quiet_takes = 0;
    int rv = uv_poll_init(loop, &w->poll, w->fd);
    if (rv == 0)
        rv = uv_poll_start(&w->poll, UV_READABLE, on_readable);
    if (rv != 0) {
        close(w->fd);
        w->fd = -1;
        return CAIRN_EIO;
    }
    return 0;
}

void server__wake_send(struct server__wake *w)
{
    /* acq_rel: the loop's clearing exchange reads this store, so what was
     * written before it is visible to the callback that follows. */
    if (atomic_exchange_explicit(&w->pending, 1, memory_order_acq_rel) != 0)
        return;
    uint64_t one = 1;
    while (write(w->fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void server__wake_send_quiet(struct server__wake *w)
{
    atomic_store(&w->unseen, true);
    if (atomic_load(&w->wanted))
        server__wake_send(w);
}

/* Before the loop waits: publish the wish, then look for a quiet send
 * that came before it (its sender may have read the old wish). */
static void on_prepare(uv_prepare_t *h)
{
    struct server__wake *w = WAKE_OF(h, prep);
    bool want = w->want(w);
    if (atomic_load_explicit(&w->wanted, memory_order_relaxed) != want)
        atomic_store(&w->wanted, want);
    /* Not the callback itself: other prepare handles (the transport's,
     * the rpc flush) may already have run this turn, and what it sends
     * would wait for the next wake-up. The eventfd ends the wait at once. */
    if (want && atomic_load(&w->unseen))
        server__wake_send(w);
}

/* After the loop's wait: a quiet send that did not wake it is taken now,
 * in the turn of whatever did (a peer's message, a timer). */
static void on_check(uv_check_t *h)
{
    struct server__wake *w = WAKE_OF(h, check);
    if (!atomic_load_explicit(&w->unseen, memory_order_relaxed))
        return;
    if (!atomic_exchange(&w->unseen, false))
        return;
    w->quiet_takes++;
    w->cb(w);
}

void server__wake_quiet_start(struct server__wake *w, server__wake_want_cb want)
{
    if (w->quiet_started)
        return;
    w->want = want;
    uv_prepare_init(w->poll.loop, &w->prep);
    uv_check_init(w->poll.loop, &w->check);
    uv_prepare_start(&w->prep, on_prepare);
    uv_check_start(&w->check, on_check);
    /* They run every turn but keep no loop alive on their own. */
    uv_unref((uv_handle_t *)&w->prep);
    uv_unref((uv_handle_t *)&w->check);
    w->quiet_started = true;
}

int server__wake_close(struct server__wake *w, uv_close_cb close_cb)
{
    int n = 1;
    if (w->quiet_started) {
        /* libuv calls close callbacks last closed first: the owner frees
         * w only once all n have come back. */
        w->prep.data = w->poll.data;
        w->check.data = w->poll.data;
        uv_close((uv_handle_t *)&w->prep, close_cb);
        uv_close((uv_handle_t *)&w->check, close_cb);
        w->quiet_started = false;
        n += 2;
    }
    uv_close((uv_handle_t *)&w->poll, close_cb);
    if (w->fd >= 0)
        close(w->fd); /* uv_close has taken it out of the poll set */
    w->fd = -1;
    return n;
}
