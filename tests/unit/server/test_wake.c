/* The loop's wake-up from other threads (src/server/wake.c): sends before
 * the loop runs coalesce into one callback; a thread that posts, wakes
 * and waits for the loop to see each post in turn is never left waiting;
 * threads posting and waking as fast as they can always have their last
 * post seen. A lost wake-up would hang the loop: a timer ends the test
 * then, failing it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "run_until.h"
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
    LOOP_UNTIL(&loop, w.wakeups > 0);
    assert_int_equal(w.wakeups, 1);
    /* Nothing sent since: no further callback. */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(w.wakeups, 1);
    server__wake_send(&w);
    LOOP_UNTIL(&loop, w.wakeups > 1);
    assert_int_equal(w.wakeups, 2);
    server__wake_close(&w, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ru_loop_close(&loop), 0);
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
    assert_int_equal(ru_loop_close(&loop), 0);
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
    assert_int_equal(ru_loop_close(&loop), 0);
}

static void test_flood_last_seen(void **state)
{
    (void)state;
    for (int r = 0; r < FLOOD_ROUNDS; r++)
        flood_round();
}

/* Quiet sends (server__wake_send_quiet). A post the loop did not want
 * waits up to 1 ms for the timer below: fewer posts than PINGS. */
#define QUIET_PINGS 3000
struct quiet {
    struct server__wake w;
    uv_timer_t timer;
    atomic_bool want;
    atomic_int asked; /* want callbacks run */
    atomic_int posted;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int seen; /* under mu */
    int turns;
    bool toggle; /* want every third turn off */
    bool timed_out;
    bool gave_up;
    bool stop_on_cb;
};

static bool quiet_want(struct server__wake *w)
{
    struct quiet *q = (struct quiet *)w;
    atomic_fetch_add(&q->asked, 1);
    if (q->toggle)
        return q->turns++ % 3 != 0;
    return atomic_load(&q->want);
}

static void on_quiet(struct server__wake *w)
{
    struct quiet *q = (struct quiet *)w;
    pthread_mutex_lock(&q->mu);
    q->seen = atomic_load(&q->posted);
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->stop_on_cb || q->seen == QUIET_PINGS)
        uv_stop(w->poll.loop);
}

static void on_quiet_deadline(uv_timer_t *t)
{
    struct quiet *q = t->data;
    q->timed_out = true;
    uv_stop(t->loop);
}

static void quiet_open(uv_loop_t *loop, struct quiet *q, bool want)
{
    memset(q, 0, sizeof *q);
    atomic_init(&q->want, want);
    atomic_init(&q->asked, 0);
    atomic_init(&q->posted, 0);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    uv_loop_init(loop);
    assert_int_equal(server__wake_init(loop, &q->w, on_quiet), 0);
    server__wake_quiet_start(&q->w, quiet_want);
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
}

static void quiet_close(uv_loop_t *loop, struct quiet *q)
{
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, on_closed);
    assert_int_equal(server__wake_close(&q->w, on_closed), 3);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

static void on_quiet_other(uv_timer_t *t)
{
    (void)t;
}

/* Not wanted: no wake-up is written; the send is taken after the loop's
 * wait for something else (here a timer) ends. */
static void test_quiet_unwanted(void **state)
{
    (void)state;
    uv_loop_t loop;
    static struct quiet q;
    quiet_open(&loop, &q, false);
    q.stop_on_cb = true;
    uv_run(&loop, UV_RUN_NOWAIT); /* until asked, quiet sends wake */
    atomic_store(&q.posted, 1);
    server__wake_send_quiet(&q.w);
    uv_timer_start(&q.timer, on_quiet_other, 20, 0);
    uv_timer_t deadline; /* a send never taken would leave the loop waiting */
    uv_timer_init(&loop, &deadline);
    deadline.data = &q;
    uv_timer_start(&deadline, on_quiet_deadline, DEADLINE_MS, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(q.timed_out);
    assert_int_equal(q.seen, 1);
    assert_int_equal(q.w.wakeups, 0);
    assert_int_equal(q.w.quiet_takes, 1);
    uv_timer_stop(&deadline);
    uv_close((uv_handle_t *)&deadline, on_closed);
    quiet_close(&loop, &q);
}

/* The send lands before the loop asks (its sender read the old, unwanted
 * state): the loop sees it when it says it wants it and does not wait. */
static void test_quiet_before_ask(void **state)
{
    (void)state;
    uv_loop_t loop;
    static struct quiet q;
    quiet_open(&loop, &q, false);
    q.stop_on_cb = true;
    uv_run(&loop, UV_RUN_NOWAIT); /* publishes "not wanted" */
    assert_true(atomic_load(&q.asked) >= 1);
    atomic_store(&q.posted, 1);
    server__wake_send_quiet(&q.w);
    atomic_store(&q.want, true);
    uv_timer_start(&q.timer, on_quiet_deadline, DEADLINE_MS, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(q.timed_out);
    assert_int_equal(q.seen, 1);
    assert_int_equal(q.w.wakeups, 1);
    quiet_close(&loop, &q);
}

static void *quiet_after_ask(void *arg)
{
    struct quiet *q = arg;
    /* Once the loop has said it wants sends (then it waits in poll). */
    for (int i = 0; i < DEADLINE_MS && atomic_load(&q->asked) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&q->posted, 1);
    server__wake_send_quiet(&q->w);
    return NULL;
}

/* The send lands after the loop asked for it: it wakes the loop. */
static void test_quiet_after_ask(void **state)
{
    (void)state;
    uv_loop_t loop;
    static struct quiet q;
    quiet_open(&loop, &q, true);
    q.stop_on_cb = true;
    uv_timer_start(&q.timer, on_quiet_deadline, DEADLINE_MS, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, quiet_after_ask, &q), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_false(q.timed_out);
    assert_int_equal(q.seen, 1);
    assert_int_equal(q.w.wakeups, 1);
    assert_int_equal(q.w.quiet_takes, 0);
    quiet_close(&loop, &q);
}

static void *quiet_producer(void *arg)
{
    struct quiet *q = arg;
    for (int i = 1; i <= QUIET_PINGS; i++) {
        atomic_store(&q->posted, i);
        server__wake_send_quiet(&q->w);
        pthread_mutex_lock(&q->mu);
        while (q->seen < i && !q->gave_up) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += DEADLINE_MS / 1000;
            if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) != 0)
                q->gave_up = true;
        }
        bool stop = q->gave_up;
        pthread_mutex_unlock(&q->mu);
        if (stop)
            break;
    }
    return NULL;
}

static void on_quiet_tick(uv_timer_t *t)
{
    (void)t; /* only ends the loop's wait */
}

/* A thread posting quietly and waiting for each post, while the loop
 * wants wake-ups two turns in three and a 1 ms timer stands for the
 * other events: every post is seen, none waits for the deadline. */
static void test_quiet_no_lost_wakeup(void **state)
{
    (void)state;
    uv_loop_t loop;
    static struct quiet q;
    quiet_open(&loop, &q, true);
    q.toggle = true;
    uv_timer_start(&q.timer, on_quiet_tick, 1, 1);
    uv_timer_t deadline;
    uv_timer_init(&loop, &deadline);
    deadline.data = &q;
    uv_timer_start(&deadline, on_quiet_deadline, DEADLINE_MS, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, quiet_producer, &q), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_mutex_lock(&q.mu);
    q.gave_up = true;
    pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
    pthread_join(th, NULL);
    assert_false(q.timed_out);
    assert_int_equal(q.seen, QUIET_PINGS);
    assert_true(q.w.quiet_takes > 0); /* both paths taken */
    assert_true(q.w.wakeups > 0);
    uv_timer_stop(&deadline);
    uv_close((uv_handle_t *)&deadline, on_closed);
    quiet_close(&loop, &q);
}

int test_wake_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesce),
        cmocka_unit_test(test_no_lost_wakeup),
        cmocka_unit_test(test_flood_last_seen),
        cmocka_unit_test(test_quiet_unwanted),
        cmocka_unit_test(test_quiet_before_ask),
        cmocka_unit_test(test_quiet_after_ask),
        cmocka_unit_test(test_quiet_no_lost_wakeup),
    };
    return cmocka_run_group_tests_name("wake", tests, NULL, NULL);
}
