/* Quorum arithmetic and the in-flight window, against deliberately naive
 * reference implementations over many random cases. */
#include "tests.h"

#include <string.h>

/* Naive: the largest x acked by at least a majority, by trying them all. */
static raft_index naive_committed(const raft_index *acked, uint32_t n)
{
    if (n == 0)
        return UINT64_MAX;
    raft_index best = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t count = 0;
        for (uint32_t j = 0; j < n; j++)
            count += acked[j] >= acked[i];
        if (count * 2 > n && acked[i] > best)
            best = acked[i];
    }
    return best;
}

static enum vote_result naive_vote(const int8_t *v, uint32_t n)
{
    if (n == 0)
        return VOTE_WON;
    uint32_t yes = 0, no = 0;
    for (uint32_t i = 0; i < n; i++) {
        yes += v[i] > 0;
        no += v[i] < 0;
    }
    if (2 * yes > n)
        return VOTE_WON;
    if (2 * no >= n) /* a majority of yes is out of reach */
        return VOTE_LOST;
    return VOTE_PENDING;
}

static void test_committed_random(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed());
    int iters = test_scale(20000);
    for (int it = 0; it < iters; it++) {
        uint32_t n = (uint32_t)prng_below(&p, 8);
        raft_index acked[RAFT_CONF_MAX];
        for (uint32_t i = 0; i < n; i++)
            acked[i] = prng_below(&p, 10);
        assert_true(raft__quorum_committed(acked, n) ==
                    naive_committed(acked, n));
    }
}

static void test_joint_committed_random(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed() + 1);
    int iters = test_scale(5000);
    for (int it = 0; it < iters; it++) {
        /* A joint configuration over ids 1..6: the index acked by a
         * majority of both halves, found naively by trying every value. */
        uint32_t n1 = 1 + (uint32_t)prng_below(&p, 5);
        uint32_t n2 = (uint32_t)prng_below(&p, 5);
        raft_index a1[8], a2[8];
        raft_index vals[6];
        for (int i = 0; i < 6; i++)
            vals[i] = prng_below(&p, 10);
        for (uint32_t i = 0; i < n1; i++)
            a1[i] = vals[i];
        for (uint32_t i = 0; i < n2; i++)
            a2[i] = vals[(i + 2) % 6]; /* overlapping members */
        raft_index c1 = raft__quorum_committed(a1, n1);
        raft_index c2 = raft__quorum_committed(a2, n2);
        raft_index joint = c1 < c2 ? c1 : c2;
        raft_index naive = 0;
        for (raft_index x = 0; x < 10; x++) {
            uint32_t k1 = 0, k2 = 0;
            for (uint32_t i = 0; i < n1; i++)
                k1 += a1[i] >= x;
            for (uint32_t i = 0; i < n2; i++)
                k2 += a2[i] >= x;
            if (2 * k1 > n1 && (n2 == 0 || 2 * k2 > n2))
                naive = x;
        }
        assert_true(joint == naive);
    }
}

static void test_vote_random(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed() + 2);
    int iters = test_scale(20000);
    for (int it = 0; it < iters; it++) {
        uint32_t n = (uint32_t)prng_below(&p, 8);
        int8_t v[RAFT_CONF_MAX];
        for (uint32_t i = 0; i < n; i++)
            v[i] = (int8_t)((int)prng_below(&p, 3) - 1);
        assert_int_equal(raft__quorum_vote(v, n), naive_vote(v, n));
    }
}

/* Naive joint result: try the best and the worst completion of the missing
 * votes, counting each half by brute force. */
static bool half_wins(const int8_t *v, uint32_t n, int8_t missing_as)
{
    if (n == 0)
        return true;
    uint32_t yes = 0;
    for (uint32_t i = 0; i < n; i++)
        yes += (v[i] == 0 ? missing_as : v[i]) > 0;
    return 2 * yes > n;
}

static void test_joint_vote_random(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed() + 4);
    int iters = test_scale(20000);
    for (int it = 0; it < iters; it++) {
        uint32_t n1 = (uint32_t)prng_below(&p, 7);
        uint32_t n2 = (uint32_t)prng_below(&p, 7);
        int8_t a[8], b[8];
        for (uint32_t i = 0; i < n1; i++)
            a[i] = (int8_t)((int)prng_below(&p, 3) - 1);
        for (uint32_t i = 0; i < n2; i++)
            b[i] = (int8_t)((int)prng_below(&p, 3) - 1);
        bool worst = half_wins(a, n1, -1) && half_wins(b, n2, -1);
        bool best = half_wins(a, n1, 1) && half_wins(b, n2, 1);
        enum vote_result want =
            worst ? VOTE_WON : (best ? VOTE_PENDING : VOTE_LOST);
        assert_int_equal(raft__quorum_vote_joint(a, n1, b, n2), want);
    }
}

static void test_vote_examples(void **state)
{
    (void)state;
    int8_t v3[3] = {1, 1, 0};
    assert_int_equal(raft__quorum_vote(v3, 3), VOTE_WON);
    int8_t v4[4] = {1, 1, -1, 0};
    assert_int_equal(raft__quorum_vote(v4, 4), VOTE_PENDING);
    int8_t v4b[4] = {1, -1, -1, 0};
    assert_int_equal(raft__quorum_vote(v4b, 4), VOTE_LOST);
    assert_int_equal(raft__quorum_vote(v4, 0), VOTE_WON);
    raft_index a[5] = {5, 1, 4, 3, 2};
    assert_int_equal(raft__quorum_committed(a, 5), 3);
    raft_index b[4] = {5, 1, 4, 3};
    assert_int_equal(raft__quorum_committed(b, 4), 3);
}

/* Naive window: a plain list of (index, bytes). */
struct naive_window {
    raft_index idx[64];
    uint64_t bytes[64];
    int n;
};

static void test_inflights_random(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed() + 3);
    int iters = test_scale(300);
    for (int it = 0; it < iters; it++) {
        uint32_t size = 1 + (uint32_t)prng_below(&p, 10);
        uint64_t maxb = prng_chance(&p, 0.5) ? 0 : 1 + prng_below(&p, 100);
        struct inflights in;
        raft__inflights_init(&in, size, maxb);
        struct naive_window nw = {.n = 0};
        raft_index next = 1;
        for (int op = 0; op < 400; op++) {
            uint64_t total = 0;
            for (int i = 0; i < nw.n; i++)
                total += nw.bytes[i];
            bool naive_full =
                (uint32_t)nw.n >= size || (maxb > 0 && total >= maxb);
            assert_int_equal(raft__inflights_full(&in), naive_full);
            assert_int_equal(in.count, (uint32_t)nw.n);
            assert_true(in.bytes == total);
            int what = (int)prng_below(&p, 4);
            if (what <= 1 && !naive_full) {
                next += 1 + prng_below(&p, 3);
                uint64_t b = prng_below(&p, 40);
                assert_int_equal(raft__inflights_add(&in, next, b), 0);
                nw.idx[nw.n] = next;
                nw.bytes[nw.n] = b;
                nw.n++;
            } else if (what == 2) {
                raft_index to = next > 5 ? next - prng_below(&p, 6) : next;
                raft__inflights_free_le(&in, to);
                int k = 0;
                while (k < nw.n && nw.idx[k] <= to)
                    k++;
                memmove(nw.idx, nw.idx + k, (size_t)(nw.n - k) * 8);
                memmove(nw.bytes, nw.bytes + k, (size_t)(nw.n - k) * 8);
                nw.n -= k;
            } else if (what == 3 && prng_chance(&p, 0.3)) {
                raft__inflights_free_first_one(&in);
                if (nw.n > 0) {
                    memmove(nw.idx, nw.idx + 1, (size_t)(nw.n - 1) * 8);
                    memmove(nw.bytes, nw.bytes + 1, (size_t)(nw.n - 1) * 8);
                    nw.n--;
                }
            } else if (prng_chance(&p, 0.02)) {
                raft__inflights_reset(&in);
                nw.n = 0;
            }
        }
        raft__inflights_close(&in);
    }
}

static void test_progress_decr(void **state)
{
    (void)state;
    struct progress pr = {
        .match = 5, .next = 10, .state = RAFT_PROGRESS_REPLICATE};
    raft__inflights_init(&pr.ins, 4, 0);
    /* Stale rejection in replicate: ignored. */
    assert_false(raft__progress_maybe_decr_to(&pr, 5, 5));
    /* Real one: back to match + 1. */
    assert_true(raft__progress_maybe_decr_to(&pr, 9, 9));
    assert_int_equal(pr.next, 6);
    raft__progress_become_probe(&pr);
    pr.next = 10;
    /* In probe only the answer to the last probe counts. */
    assert_false(raft__progress_maybe_decr_to(&pr, 5, 3));
    assert_true(raft__progress_maybe_decr_to(&pr, 9, 7));
    assert_int_equal(pr.next, 8);
    /* The hint never goes below match + 1. */
    assert_true(raft__progress_maybe_decr_to(&pr, 7, 0));
    assert_int_equal(pr.next, 6);
    assert_false(raft__progress_is_paused(&pr));
    pr.probe_sent = true;
    assert_true(raft__progress_is_paused(&pr));
    raft__progress_become_snapshot(&pr, 20);
    assert_true(raft__progress_is_paused(&pr));
    raft__progress_become_probe(&pr);
    assert_int_equal(pr.next, 21);
    raft__inflights_close(&pr.ins);
}

int test_quorum_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_random),
        cmocka_unit_test(test_joint_committed_random),
        cmocka_unit_test(test_vote_random),
        cmocka_unit_test(test_joint_vote_random),
        cmocka_unit_test(test_vote_examples),
        cmocka_unit_test(test_inflights_random),
        cmocka_unit_test(test_progress_decr),
    };
    return cmocka_run_group_tests_name("raft_quorum", tests, NULL, NULL);
}
