/* The threading contract: reads on other threads run while the apply thread
 * commits batches and compaction steps, and every read sees one committed
 * state (two keys always written together are always equal), revisions
 * that never go back, and no spurious compaction error at the current
 * revision. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "helpers.h"
#include "tests.h"

#define WRITES 3000

struct shared {
    struct mvcc_store *s;
    _Atomic bool stop;
    _Atomic int reads;
};

static void *reader(void *arg)
{
    struct shared *sh = arg;
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    mvcc_rev last = 0;
    /* Bounded: the writer stops us after WRITES batches; the bound is a
     * safety net. */
    for (int i = 0; i < 10000000 && !atomic_load(&sh->stop); i++) {
        mvcc_arena_reset(&a);
        struct mvcc_range_req q = {.key = (const uint8_t *)"p",
                                   .key_len = 1,
                                   .end = (const uint8_t *)"q",
                                   .end_len = 1};
        struct mvcc_range_resp r;
        int rc = mvcc_range(sh->s, &q, &a, &r);
        if (rc != 0 || r.header_rev < last)
            abort(); /* cmocka asserts are not thread-safe */
        last = r.header_rev;
        if (r.n_kvs == 2 &&
            (r.kvs[0].value_len != r.kvs[1].value_len ||
             memcmp(r.kvs[0].value, r.kvs[1].value, r.kvs[0].value_len) != 0 ||
             r.kvs[0].mod_rev != r.kvs[1].mod_rev))
            abort();
        if (r.n_kvs == 1)
            abort();
        atomic_fetch_add(&sh->reads, 1);
    }
    mvcc_arena_free(&a);
    return NULL;
}

static void test_reads_during_applies(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    struct shared sh = {.s = store_open(dir)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader, &sh), 0);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    uint64_t ci = 0;
    for (int i = 0; i < WRITES; i++) {
        mvcc_arena_reset(&a);
        char v[32];
        snprintf(v, sizeof(v), "value-%d", i);
        struct mvcc_op ops[] = {{.type = MVCC_OP_PUT,
                                 .u.put = {.key = (const uint8_t *)"p1",
                                           .key_len = 2,
                                           .value = (const uint8_t *)v,
                                           .value_len = strlen(v)}},
                                {.type = MVCC_OP_PUT,
                                 .u.put = {.key = (const uint8_t *)"p2",
                                           .key_len = 2,
                                           .value = (const uint8_t *)v,
                                           .value_len = strlen(v)}}};
        struct mvcc_txn_req t = {.success = ops, .n_success = 2};
        struct mvcc_txn_resp tr;
        assert_int_equal(mvcc_batch_begin(sh.s), 0);
        assert_int_equal(mvcc_txn(sh.s, &t, &a, &tr), 0);
        if (i % 50 == 49) {
            mvcc_rev hdr;
            assert_int_equal(mvcc_compact(sh.s, tr.header_rev, &hdr), 0);
        }
        assert_int_equal(mvcc_batch_commit(sh.s, ++ci), 0);
        if (i % 50 == 49) {
            bool done = false;
            while (!done)
                assert_int_equal(mvcc_compact_step(sh.s, 16, &done), 0);
        }
    }
    /* On a loaded machine the reader may not have run yet: wait for its
     * first read (bounded) instead of assuming the writes took long
     * enough. */
    for (int i = 0; i < 60000 && atomic_load(&sh.reads) == 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    atomic_store(&sh.stop, true);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(sh.reads > 0);
    mvcc_arena_free(&a);
    mvcc_close(sh.s);
    rm_dir(dir);
    free(dir);
}

int test_threads_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_during_applies),
    };
    return cmocka_run_group_tests_name("mvcc_threads", tests, NULL, NULL);
}
