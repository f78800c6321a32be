/* The bounded queue: FIFO order, the bound, close semantics, and many
 * producers handing items to one consumer across threads with nothing lost,
 * duplicated or reordered per producer. */
#include <pthread.h>

#include "tests.h"
#include "util/queue.h"
#include "util/util.h"
#include "watchdog.h"

static void queue_fifo_and_bound(void **state)
{
    (void)state;
    struct cairn_queue q;
    assert_int_equal(cairn_queue_init(&q, 3), 0);
    int v[5] = {0, 1, 2, 3, 4};
    void *out[8];
    assert_int_equal(cairn_queue_pop_batch(&q, out, 8, false), 0);
    for (int round = 0; round < 4; round++) { /* wraps around the ring */
        assert_int_equal(cairn_queue_try_push(&q, &v[0]), 0);
        assert_int_equal(cairn_queue_try_push(&q, &v[1]), 0);
        assert_int_equal(cairn_queue_push(&q, &v[2]), 0);
        assert_int_equal(cairn_queue_try_push(&q, &v[3]), CAIRN_EFULL);
        assert_int_equal(cairn_queue_len(&q), 3);
        assert_int_equal(cairn_queue_pop_batch(&q, out, 2, true), 2);
        assert_ptr_equal(out[0], &v[0]);
        assert_ptr_equal(out[1], &v[1]);
        assert_int_equal(cairn_queue_try_push(&q, &v[4]), 0);
        assert_int_equal(cairn_queue_pop_batch(&q, out, 8, false), 2);
        assert_ptr_equal(out[0], &v[2]);
        assert_ptr_equal(out[1], &v[4]);
    }
    cairn_queue_destroy(&q);
}

static void queue_close_drains(void **state)
{
    (void)state;
    struct cairn_queue q;
    assert_int_equal(cairn_queue_init(&q, 4), 0);
    int a = 1;
    assert_int_equal(cairn_queue_push(&q, &a), 0);
    cairn_queue_close(&q);
    cairn_queue_close(&q);
    assert_int_equal(cairn_queue_try_push(&q, &a), CAIRN_ESHUTDOWN);
    assert_int_equal(cairn_queue_push(&q, &a), CAIRN_ESHUTDOWN);
    void *out[4];
    assert_int_equal(cairn_queue_pop_batch(&q, out, 4, true), 1);
    assert_int_equal(cairn_queue_pop_batch(&q, out, 4, true), 0);
    cairn_queue_destroy(&q);
}

enum { PRODUCERS = 4, PER_PRODUCER = 20000 };

struct producer {
    struct cairn_queue *q;
    uintptr_t id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (uintptr_t i = 0; i < PER_PRODUCER; i++) {
        /* item = producer id in the top bits, sequence below; +1 keeps it
         * non-NULL */
        uintptr_t item = (p->id << 24) | (i + 1);
        if (cairn_queue_push(p->q, (void *)item) != 0)
            return (void *)1;
    }
    return NULL;
}

static void queue_threads(void **state)
{
    (void)state;
    struct cairn_queue q;
    assert_int_equal(cairn_queue_init(&q, 16), 0); /* small: producers block */
    pthread_t t[PRODUCERS];
    struct producer p[PRODUCERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){&q, i};
        assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
    }
    uintptr_t next[PRODUCERS] = {0};
    size_t total = 0;
    void *out[7];
    /* A lost wake-up would leave a blocking pop or push waiting forever. */
    WATCH_BEGIN("the consumer's blocking pops or the producers' joins");
    while (total < (size_t)PRODUCERS * PER_PRODUCER) {
        size_t n = cairn_queue_pop_batch(&q, out, 7, true);
        assert_true(n >= 1);
        for (size_t k = 0; k < n; k++) {
            uintptr_t item = (uintptr_t)out[k];
            uintptr_t id = item >> 24, seq = (item & 0xffffff) - 1;
            assert_true(id < PRODUCERS);
            assert_true(seq == next[id]); /* per-producer FIFO, no loss */
            next[id]++;
        }
        total += n;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_null(rv);
    }
    WATCH_END();
    assert_int_equal(cairn_queue_pop_batch(&q, out, 7, false), 0);
    cairn_queue_destroy(&q);
}

int test_queue_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_fifo_and_bound),
        cmocka_unit_test(queue_close_drains),
        cmocka_unit_test(queue_threads),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
