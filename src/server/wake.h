/* A wake-up of the loop from other threads (WAL, apply) without
 * uv_async_t: libuv 1.44's async handle makes the loop spin, with
 * sched_yield, while a sender is between marking the handle pending and
 * finishing its eventfd write; on a loaded machine the sender is often
 * preempted there, and a follower was seen spending ~9 sched_yield calls
 * per put. Here the loop never waits for a sender: a flag says a wake-up
 * is on its way, the eventfd carries it. Private to server/. */
#ifndef CAIRN_SERVER_WAKE_H
#define CAIRN_SERVER_WAKE_H

#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

struct server__wake;
typedef void (*server__wake_cb)(struct server__wake *w);

struct server__wake {
    uv_poll_t poll; /* first: uv_close's callback gets the wake back */
    int fd;         /* eventfd, non-blocking */
    atomic_int pending;
    server__wake_cb cb;
    void *data;
    uint64_t wakeups; /* callbacks run (loop thread only; for tests) */
};

/* 0, or a cairn error code (no eventfd, poll refused). */
int server__wake_init(uv_loop_t *loop, struct server__wake *w,
                      server__wake_cb cb);

/* Any thread: the callback will run on the loop after this call, once
 * for any number of sends before it runs. What the sender wrote before
 * the call is visible to that callback. */
void server__wake_send(struct server__wake *w);

/* Loop thread: stops and closes; close_cb gets (uv_handle_t *)w. */
void server__wake_close(struct server__wake *w, uv_close_cb close_cb);

#endif
