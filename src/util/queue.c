/* The bounded blocking queue of queue.h: a ring of slots under one mutex. */
#include "util/queue.h"

#include "util/assert.h"
#include "util/err.h"
#include "util/mem.h"

int cairn_queue_init(struct cairn_queue *q, size_t capacity)
{
    CAIRN_ASSERT(capacity >= 1);
    q->slots = cairn_calloc(capacity, sizeof *q->slots);
    if (!q->slots)
        return CAIRN_ENOMEM;
    q->cap = capacity;
    q->head = 0;
    q->len = 0;
    q->n_wait_empty = 0;
    q->n_wait_full = 0;
    q->closed = false;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    return 0;
}

void cairn_queue_destroy(struct cairn_queue *q)
{
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
    cairn_free(q->slots);
    q->slots = NULL;
}

/* Adds item; returns whether a consumer waits for it (to be signalled
 * once the mutex is released). A consumer that counted itself waiting is
 * inside pthread_cond_wait by the time the producer holds the mutex, so
 * the later signal reaches it. */
static bool queue_put_locked(struct cairn_queue *q, void *item)
{
    q->slots[(q->head + q->len) % q->cap] = item;
    q->len++;
    return q->n_wait_empty > 0;
}

int cairn_queue_try_push(struct cairn_queue *q, void *item)
{
    int rv = 0;
    bool wake = false;
    pthread_mutex_lock(&q->mu);
    if (q->closed)
        rv = CAIRN_ESHUTDOWN;
    else if (q->len == q->cap)
        rv = CAIRN_EFULL;
    else
        wake = queue_put_locked(q, item);
    pthread_mutex_unlock(&q->mu);
    if (wake)
        pthread_cond_signal(&q->not_empty);
    return rv;
}

int cairn_queue_push(struct cairn_queue *q, void *item)
{
    int rv = 0;
    bool wake = false;
    pthread_mutex_lock(&q->mu);
    while (!q->closed && q->len == q->cap) {
        q->n_wait_full++;
        pthread_cond_wait(&q->not_full, &q->mu);
        q->n_wait_full--;
    }
    if (q->closed)
        rv = CAIRN_ESHUTDOWN;
    else
        wake = queue_put_locked(q, item);
    pthread_mutex_unlock(&q->mu);
    if (wake)
        pthread_cond_signal(&q->not_empty);
    return rv;
}

size_t cairn_queue_pop_batch(struct cairn_queue *q, void **items, size_t max,
                             bool wait)
{
    pthread_mutex_lock(&q->mu);
    while (wait && q->len == 0 && !q->closed) {
        q->n_wait_empty++;
        pthread_cond_wait(&q->not_empty, &q->mu);
        q->n_wait_empty--;
    }
    size_t n = q->len < max ? q->len : max;
    for (size_t i = 0; i < n; i++) {
        items[i] = q->slots[q->head];
        q->head = (q->head + 1) % q->cap;
    }
    q->len -= n;
    bool wake_full = n > 0 && q->n_wait_full > 0;
    /* Others may be waiting for what this batch left behind. */
    bool wake_empty = q->len > 0 && q->n_wait_empty > 0;
    pthread_mutex_unlock(&q->mu);
    if (wake_full)
        pthread_cond_broadcast(&q->not_full);
    if (wake_empty)
        pthread_cond_signal(&q->not_empty);
    return n;
}

void cairn_queue_close(struct cairn_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

size_t cairn_queue_len(struct cairn_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}
