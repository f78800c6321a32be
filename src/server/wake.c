/* The loop's wake-up from other threads (wake.h). */
#include "server/wake.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/err.h"

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
    w->cb = cb;
    w->wakeups = 0;
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

void server__wake_close(struct server__wake *w, uv_close_cb close_cb)
{
    uv_close((uv_handle_t *)&w->poll, close_cb);
    if (w->fd >= 0)
        close(w->fd); /* uv_close has taken it out of the poll set */
    w->fd = -1;
}
