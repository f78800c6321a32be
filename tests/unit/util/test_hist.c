/* Histograms: an observation lands in the first bucket whose bound is >= it
 * (bounds included, as Prometheus' "le"), larger ones in +Inf; the sum and
 * count add up; concurrent observers lose nothing. */
#include <pthread.h>

#include "tests.h"
#include "util/util.h"

static void hist_buckets_le(void **state)
{
    (void)state;
    struct cairn_hist h;
    cairn_hist_init(&h, 1000, 4); /* bounds 1000, 2000, 4000, 8000 */
    const uint64_t obs[] = {0, 1000, 1001, 2000, 3999, 8000, 8001, 1u << 30};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        cairn_hist_observe(&h, obs[i]);
    struct cairn_hist_snap s;
    cairn_hist_read(&h, &s);
    assert_int_equal(s.start_ns, 1000);
    assert_int_equal(s.n_buckets, 4);
    assert_int_equal(s.counts[0], 2); /* 0, 1000 */
    assert_int_equal(s.counts[1], 2); /* 1001, 2000 */
    assert_int_equal(s.counts[2], 1); /* 3999 */
    assert_int_equal(s.counts[3], 1); /* 8000 */
    assert_int_equal(s.counts[4], 2); /* +Inf */
    assert_int_equal(s.count, 8);
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        sum += obs[i];
    assert_int_equal(s.sum_ns, sum);
}

static void hist_etcd_sizes(void **state)
{
    (void)state;
    /* etcd's peer RTT: 0.1 ms * 2^15 = 3.2768 s is the last bound. */
    struct cairn_hist h;
    cairn_hist_init(&h, 100000, 16);
    cairn_hist_observe(&h, 3276800000u);
    cairn_hist_observe(&h, 3276800001u);
    struct cairn_hist_snap s;
    cairn_hist_read(&h, &s);
    assert_int_equal(s.counts[15], 1);
    assert_int_equal(s.counts[16], 1);
}

#define OBSERVERS 4
#define PER_OBSERVER 20000

static void *observe_many(void *arg)
{
    struct cairn_hist *h = arg;
    for (uint64_t i = 0; i < PER_OBSERVER; i++)
        cairn_hist_observe(h, i % 5000);
    return NULL;
}

static void hist_concurrent(void **state)
{
    (void)state;
    struct cairn_hist h;
    cairn_hist_init(&h, 1000, 3);
    pthread_t t[OBSERVERS];
    for (int i = 0; i < OBSERVERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observe_many, &h), 0);
    for (int i = 0; i < OBSERVERS; i++)
        pthread_join(t[i], NULL);
    struct cairn_hist_snap s;
    cairn_hist_read(&h, &s);
    assert_int_equal(s.count, (uint64_t)OBSERVERS * PER_OBSERVER);
    /* i % 5000 over 20,000 draws: each value 4 times per observer. */
    assert_int_equal(s.sum_ns, (uint64_t)OBSERVERS * 4 * (4999 * 5000 / 2));
    assert_int_equal(s.counts[0], (uint64_t)OBSERVERS * 4 * 1001);
    assert_int_equal(s.counts[3], (uint64_t)OBSERVERS * 4 * 999);
}

static void hist_clock_moves(void **state)
{
    (void)state;
    uint64_t a = cairn_hist_now_ns();
    uint64_t b = cairn_hist_now_ns();
    assert_true(a > 0 && b >= a);
}

int test_hist_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hist_buckets_le),
        cmocka_unit_test(hist_etcd_sizes),
        cmocka_unit_test(hist_concurrent),
        cmocka_unit_test(hist_clock_moves),
    };
    return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
