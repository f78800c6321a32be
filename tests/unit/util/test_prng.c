/* The seeded generator: reproducible, seed-sensitive, bounded draws in range
 * and roughly uniform. */
#include "tests.h"
#include "util/util.h"

static void prng_reproducible(void **state)
{
    (void)state;
    struct prng a, b, c;
    prng_seed(&a, 12345);
    prng_seed(&b, 12345);
    prng_seed(&c, 12346);
    int same_as_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = prng_next(&a);
        assert_true(x == prng_next(&b));
        same_as_c += x == prng_next(&c);
    }
    assert_true(same_as_c < 2);
    /* Published first outputs (checked against an independent Python
     * transcription of both algorithms) pin the streams across platforms. */
    uint64_t st = 0;
    assert_true(splitmix64(&st) == 0xE220A8397B1DCDAFull);
    struct prng z;
    prng_seed(&z, 0);
    assert_true(prng_next(&z) == 0x99EC5F36CB75F2B4ull);
}

static void prng_bounds(void **state)
{
    (void)state;
    struct prng r;
    prng_seed(&r, 1);
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t x = prng_below(&r, 10);
        assert_true(x < 10);
        counts[x]++;
        uint64_t y = prng_range(&r, 5, 7);
        assert_true(y >= 5 && y <= 7);
        double d = prng_double(&r);
        assert_true(d >= 0.0 && d < 1.0);
    }
    for (int i = 0; i < 10; i++)
        assert_true(counts[i] > 9000 && counts[i] < 11000);
    assert_false(prng_chance(&r, 0.0));
    assert_true(prng_chance(&r, 1.0));
    assert_true(prng_range(&r, 0, UINT64_MAX) || 1);
}

int test_prng_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prng_reproducible),
        cmocka_unit_test(prng_bounds),
    };
    return cmocka_run_group_tests_name("prng", tests, NULL, NULL);
}
