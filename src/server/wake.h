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
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct server__wake;
typedef void (*server__wake_cb)(struct server__wake *w);
/* Loop thread, before each wait: must a quiet send wake the loop now? */
typedef bool (*server__wake_want_cb)(struct server__wake *w);

struct server__wake {
    uv_poll_t poll; /* first: uv_close's callback gets the wake back */
    int fd;         /* eventfd, non-blocking */
    atomic_int pending;
    /* Quiet sends (server__wake_send_quiet): the loop says before each
     * wait whether it wants them to wake it; one that does not wake it is
     * taken after its next wake-up for anything else. */
    atomic_bool wanted;
    atomic_bool unseen; /* a quiet send not taken yet */
    uv_prepare_t prep;
    uv_check_t check;
    server__wake_want_cb want;
    bool quiet_started;
    server__wake_cb cb;
    void *data;
    uint64_t wakeups;     /* callbacks run (loop thread only; for tests) */
    uint64_t quiet_takes; /* of which after a wake-up for something else */
};

/* 0, or a cairn error code (no eventfd, poll refused). */
int server__wake_init(uv_loop_t *loop, struct server__wake *w,
                      server__wake_cb cb);

/* Any thread: the callback will run on the loop after this call, once
 * for any number of sends before it runs. What the sender wrote before
 * the call is visible to that callback. */
void server__wake_send(struct server__wake *w);

/* Loop thread: from now on, before each wait of the loop (prepare
 * phase) want says whether quiet sends must wake it; after each wait
 * (check phase) the callback runs if a quiet send came meanwhile without
 * waking it. Until this call every quiet send wakes. */
void server__wake_quiet_start(struct server__wake *w,
                              server__wake_want_cb want);

/* Any thread, after publishing what the callback will take: wakes the
 * loop only if it said it wants it; otherwise the callback runs after the
 * loop's next wake-up for anything else. The handshake: the sender marks
 * the send unseen and then reads `wanted`; the loop stores `wanted` and
 * then reads `unseen` (both sequentially consistent), so either the
 * sender sees the wish and wakes the loop, or the loop sees the send
 * before it waits and wakes itself. */
void server__wake_send_quiet(struct server__wake *w);

/* Loop thread: stops and closes; close_cb gets (uv_handle_t *)w, and
 * also, after a quiet start, the two phase handles (their data is the
 * poll's). Returns how many handles close_cb will be called for. */
int server__wake_close(struct server__wake *w, uv_close_cb close_cb);

#endif
