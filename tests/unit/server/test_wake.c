/* The loop's wake-up from other threads (src/server/wake.c): sends before
 * the loop runs coalesce into one callback; a thread that posts, wakes
 * and waits for the loop to see each post in turn is never left waiting;
 * threads posting and waking as fast as they can always have their last
 * post seen. A lost wake-up would hang the loop: a timer ends the test
 * then, failing it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "server/wake.h"
#include "tests.h"

#define PINGS 20000
#define DEADLINE_MS 30000

struct pingpong {
    struct server__wake w;
    uv_timer_t deadline;
    atomic_int posted;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int seen; /* under mu */
    bool timed_out;
    bool producer_gave_up;
};

static void on_wake_count(struct server__wake *w)
{
    (void)w;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void test_coalesce(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct server__wake w;
    assert_int_equal(server__wake_init(&loop, &w, on_wake_count), 0);
    for (int i = 0; i < 100; i++)
        server__wake_send(&w);
    for (int i = 0; i < 1000 && w.wakeups == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(w.wakeups, 1);
    /* Nothing sent since: no further callback. */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(w.wakeups, 1);
    server__wake_send(&w);
    for (int i = 0; i < 1000 && w.wakeups == 1; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(w.wakeups, 2);
    server__wake_close(&w, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_ping(struct server__wake *w)
{
    struct pingpong *pp = (struct pingpong *)w;
    pthread_mutex_lock(&pp->mu);
    pp->seen = atomic_load(&pp->posted);
    pthread_cond_signal(&pp->cv);
    pthread_mutex_unlock(&pp->mu);
    if (pp->seen == PINGS)
        uv_stop(w->poll.loop);
}

static void on_deadline(uv_timer_t *t)
{
    struct pingpong *pp = t->data;
    pp->timed_out = true;
    uv_stop(t->loop);
}

static void *producer(void *arg)
{
    struct pingpong *pp = arg;
    for (int i = 1; i <= PINGS; i++) {
        atomic_store(&pp->posted, i);
        server__wake_send(&pp->w);
        pthread_mutex_lock(&pp->mu);
        while (pp->seen < i && !pp->producer_gave_up) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += DEADLINE_MS / 1000;
            if (pthread_cond_timedwait(&pp->cv, &pp->mu, &ts) != 0)
                pp->producer_gave_up = true;
        }
        bool stop = pp->producer_gave_up;
        pthread_mutex_unlock(&pp->mu);
        if (stop)
            break;
    }
    return NULL;
}

static void test_no_lost_wakeup(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    static struct pingpong pp;
    atomic_init(&pp.posted, 0);
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.cv, NULL);
    assert_int_equal(server__wake_init(&loop, &pp.w, on_ping), 0);
    uv_timer_init(&loop, &pp.deadline);
    pp.deadline.data = &pp;
    uv_timer_start(&pp.deadline, on_deadline, DEADLINE_MS, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer, &pp), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_mutex_lock(&pp.mu);
    pp.producer_gave_up = true; /* frees the producer if the loop timed out */
    pthread_cond_signal(&pp.cv);
    pthread_mutex_unlock(&pp.mu);
    pthread_join(th, NULL);
    assert_false(pp.timed_out);
    assert_int_equal(pp.seen, PINGS);
    /* Each ping needed its own wake-up: none was merged into another. */
    assert_true(pp.w.wakeups >= PINGS);
    uv_timer_stop(&pp.deadline);
    uv_close((uv_handle_t *)&pp.deadline, on_closed);
    server__wake_close(&pp.w, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    pthread_cond_destroy(&pp.cv);
    pthread_mutex_destroy(&pp.mu);
}

#define FLOOD_THREADS 2
#define FLOOD_SENDS 100000
#define FLOOD_ROUNDS 8 /* the race is narrow: more chances to hit it */

struct flood {
    struct server__wake w;
    uv_timer_t deadline;
    atomic_int posted;
    int seen;
    bool timed_out;
};

static void on_flood(struct server__wake *w)
{
    struct flood *f = (struct flood *)w;
    f->seen = atomic_load(&f->posted);
    if (f->seen == FLOOD_THREADS * FLOOD_SENDS)
        uv_stop(w->poll.loop);
}

static void on_flood_deadline(uv_timer_t *t)
{
    struct flood *f = t->data;
    f->timed_out = true;
    uv_stop(t->loop);
}

static void *flooder(void *arg)
{
    struct flood *f = arg;
    for (int i = 0; i < FLOOD_SENDS; i++) {
        atomic_fetch_add(&f->posted, 1);
        server__wake_send(&f->w);
    }
    return NULL;
}

static void flood_round(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    static struct flood f;
    f.seen = 0;
    f.timed_out = false;
    atomic_init(&f.posted, 0);
    assert_int_equal(server__wake_init(&loop, &f.w, on_flood), 0);
    uv_timer_init(&loop, &f.deadline);
    f.deadline.data = &f;
    uv_timer_start(&f.deadline, on_flood_deadline, DEADLINE_MS, 0);
    pthread_t th[FLOOD_THREADS];
    for (int i = 0; i < FLOOD_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, flooder, &f), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < FLOOD_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_false(f.timed_out);
    assert_int_equal(f.seen, FLOOD_THREADS * FLOOD_SENDS);
    uv_timer_stop(&f.deadline);
    uv_close((uv_handle_t *)&f.deadline, on_closed);
    server__wake_close(&f.w, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_flood_last_seen(void **state)
{
    (void)state;
    for (int r = 0; r < FLOOD_ROUNDS; r++)
        flood_round();
}

int test_wake_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesce),
        cmocka_unit_test(test_no_lost_wakeup),
        cmocka_unit_test(test_flood_last_seen),
    };
    return cmocka_run_group_tests_name("wake", tests, NULL, NULL);
}
