/* Bounded blocking queue of pointers, for handing work between threads (the
 * loop thread to the WAL and apply threads). Many producers, many consumers;
 * FIFO. The bound is the back-pressure: a full queue refuses (try_push) or
 * blocks (push). Items are borrowed pointers; the queue never frees them. */
#ifndef CAIRN_UTIL_QUEUE_H
#define CAIRN_UTIL_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct cairn_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    void **slots;
    size_t cap;
    size_t head; /* index of the oldest item */
    size_t len;
    /* Threads blocked on each condition: a signal is sent only when one
     * waits, and after the mutex is released, so that the woken thread
     * does not wake into a mutex still held (and block on it again). */
    unsigned n_wait_empty;
    unsigned n_wait_full;
    bool closed;
};

/* capacity >= 1. Returns 0 or CAIRN_ENOMEM. */
int cairn_queue_init(struct cairn_queue *q, size_t capacity);
/* Frees the slots. No thread may be using the queue. */
void cairn_queue_destroy(struct cairn_queue *q);
/* Adds item without waiting: 0, CAIRN_EFULL, or CAIRN_ESHUTDOWN once closed. */
int cairn_queue_try_push(struct cairn_queue *q, void *item);
/* Adds item, waiting while the queue is full: 0, or CAIRN_ESHUTDOWN if the
 * queue is or becomes closed (the item was then not added). */
int cairn_queue_push(struct cairn_queue *q, void *item);
/* Takes up to max items in FIFO order into items[]. With wait, blocks until
 * at least one item is there or the queue is closed. Returns the number
 * taken; 0 means empty (without wait) or closed and drained (with wait). */
size_t cairn_queue_pop_batch(struct cairn_queue *q, void **items, size_t max,
                             bool wait);
/* Refuses further pushes and wakes every waiter; items already queued can
 * still be popped. Idempotent. */
void cairn_queue_close(struct cairn_queue *q);
size_t cairn_queue_len(struct cairn_queue *q);

#endif
