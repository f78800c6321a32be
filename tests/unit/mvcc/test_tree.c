/* Point reads take their own descent of the kv tree (src/mvcc/tree.c);
 * these tests hold each answer equal to the range walk's, which goes
 * through LMDB's cursor, on a tree several levels deep: keys of fewer and
 * of more than 8 bytes, several versions, deletions, values on overflow
 * pages, reads at old revisions and after a compaction (whose deletions
 * leave branch separators of removed records behind). */
#include "helpers.h"
#include "tests.h"

#include "util/prng.h"

#define TREE_KEYS 6000

static void key_name(unsigned i, char out[32])
{
    /* Odd keys are short (the comparison's bytewise path), even ones
     * longer than 8 bytes (its word path); "k" + digits + "5" never
     * exists and sorts between two that do. */
    if (i % 2)
        snprintf(out, 32, "k%05u", i);
    else
        snprintf(out, 32, "key/%010u/x", i);
}

static void put_value(struct mvcc_store *s, struct mvcc_arena *a, const char *k,
                      struct prng *p, unsigned round)
{
    static uint8_t v[5000];
    /* One value in 500 goes to overflow pages. */
    size_t len = prng_below(p, 500) == 0 ? 3000 + prng_below(p, 1500)
                                         : prng_below(p, 300);
    for (size_t j = 0; j < len; j++)
        v[j] = (uint8_t)('a' + (j + round) % 26);
    struct mvcc_put_req q = {.key = (const uint8_t *)k,
                             .key_len = strlen(k),
                             .value = v,
                             .value_len = len,
                             .lease = 0};
    struct mvcc_put_resp r;
    assert_int_equal(mvcc_put(s, &q, a, &r), 0);
}

static void del_key(struct mvcc_store *s, struct mvcc_arena *a, const char *k)
{
    struct mvcc_delete_req q = {.key = (const uint8_t *)k,
                                .key_len = strlen(k)};
    struct mvcc_delete_resp r;
    assert_int_equal(mvcc_delete_range(s, &q, a, &r), 0);
}

/* One point read against the walk of [key, key "\0") at rev, through
 * mvcc_range or a reader. */
static void check_point(struct mvcc_store *s, struct mvcc_reader *rdr,
                        const char *k, mvcc_rev rev)
{
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    char end[40];
    size_t kl = strlen(k);
    memcpy(end, k, kl);
    end[kl] = 0;
    struct mvcc_range_req pq = {
        .key = (const uint8_t *)k, .key_len = kl, .revision = rev};
    struct mvcc_range_req wq = pq;
    wq.end = (const uint8_t *)end;
    wq.end_len = kl + 1;
    struct mvcc_range_resp pr, wr;
    if (rdr != NULL) {
        assert_int_equal(mvcc_reader_range(rdr, &pq, &a, &pr), 0);
        assert_int_equal(mvcc_reader_range(rdr, &wq, &a, &wr), 0);
    } else {
        assert_int_equal(mvcc_range(s, &pq, &a, &pr), 0);
        assert_int_equal(mvcc_range(s, &wq, &a, &wr), 0);
    }
    assert_int_equal(pr.n_kvs, wr.n_kvs);
    assert_int_equal(pr.count, wr.count);
    for (size_t i = 0; i < pr.n_kvs; i++) {
        const struct mvcc_kv *x = &pr.kvs[i], *y = &wr.kvs[i];
        assert_int_equal(x->key_len, y->key_len);
        assert_memory_equal(x->key, y->key, x->key_len);
        assert_int_equal(x->value_len, y->value_len);
        if (x->value_len)
            assert_memory_equal(x->value, y->value, x->value_len);
        assert_int_equal(x->create_rev, y->create_rev);
        assert_int_equal(x->mod_rev, y->mod_rev);
        assert_int_equal(x->version, y->version);
        assert_int_equal(x->lease, y->lease);
    }
    mvcc_arena_free(&a);
}

/* Point reads of every key (and of absent ones between them) at the
 * given revisions, and of random keys at random revisions in [lo, cur]. */
static void check_all(struct mvcc_store *s, mvcc_rev lo, mvcc_rev cur,
                      struct prng *p)
{
    char k[32];
    for (unsigned i = 0; i < TREE_KEYS; i++) {
        key_name(i, k);
        check_point(s, NULL, k, 0);
        strcat(k, "5");
        check_point(s, NULL, k, 0);
    }
    struct mvcc_reader *rdr;
    assert_int_equal(mvcc_reader_begin(s, &rdr), 0);
    for (unsigned n = 0; n < 4 * TREE_KEYS; n++) {
        key_name((unsigned)prng_below(p, TREE_KEYS), k);
        mvcc_rev rev = lo + (mvcc_rev)prng_below(p, (uint64_t)(cur - lo + 1));
        check_point(s, n % 2 ? rdr : NULL, k, rev);
    }
    mvcc_reader_end(rdr);
}

static void test_point_reads_match_walks(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    struct mvcc_store *s = store_open(dir);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    struct prng p;
    prng_seed(&p, 20261129);
    uint64_t ci = 0;
    char k[32];
    /* Three rounds: every key put, then random keys updated or deleted,
     * in batches of 500 requests. */
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < TREE_KEYS; i += 500) {
            assert_int_equal(mvcc_batch_begin(s), 0);
            for (unsigned j = i; j < i + 500; j++) {
                unsigned key =
                    round == 0 ? j : (unsigned)prng_below(&p, TREE_KEYS);
                key_name(key, k);
                if (round > 0 && prng_below(&p, 4) == 0)
                    del_key(s, &a, k);
                else
                    put_value(s, &a, k, &p, round);
                mvcc_arena_reset(&a);
            }
            assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
        }
    }
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(s, &st), 0);
    mvcc_rev cur = st.rev;
    check_all(s, 1, cur, &p);

    /* Compact half the history away, then read again. */
    mvcc_rev half = cur / 2;
    assert_int_equal(mvcc_batch_begin(s), 0);
    mvcc_rev hr;
    assert_int_equal(mvcc_compact(s, half, &hr), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(s, 1000, &done), 0);
    check_all(s, half, cur, &p);

    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(dir);
    free(dir);
}

int test_tree_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_reads_match_walks),
    };
    return cmocka_run_group_tests_name("mvcc_tree", tests, NULL, NULL);
}
