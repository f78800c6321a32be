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

/* Pooled read snapshots are reused between commits (docs/mvcc.md, "Read
 * transactions"): a read that starts after a commit was published, on
 * any thread, must see it, even while other reads hold pooled snapshots
 * across the commit. */
struct fresh {
    struct mvcc_store *s;
    _Atomic int published; /* last value the writer committed */
    _Atomic bool stop;
    _Atomic int reads;
};

static int read_counter(struct mvcc_store *s, struct mvcc_arena *a)
{
    mvcc_arena_reset(a);
    struct mvcc_range_req q = {.key = (const uint8_t *)"ctr", .key_len = 3};
    struct mvcc_range_resp r;
    if (mvcc_range(s, &q, a, &r) != 0)
        return -2;
    if (r.n_kvs != 1)
        return -1;
    char buf[16] = {0};
    memcpy(buf, r.kvs[0].value,
           r.kvs[0].value_len < 15 ? r.kvs[0].value_len : 15);
    return atoi(buf);
}

static void *fresh_reader(void *arg)
{
    struct fresh *f = arg;
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    for (int i = 0; i < 10000000 && !atomic_load(&f->stop); i++) {
        int want = atomic_load(&f->published);
        if (read_counter(f->s, &a) < want)
            abort(); /* a stale snapshot: cmocka asserts are not thread-safe */
        atomic_fetch_add(&f->reads, 1);
    }
    mvcc_arena_free(&a);
    return NULL;
}

static void put_counter(struct mvcc_store *s, struct mvcc_arena *a, int v,
                        uint64_t ci)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", v);
    struct mvcc_put_req q = {.key = (const uint8_t *)"ctr",
                             .key_len = 3,
                             .value = (const uint8_t *)buf,
                             .value_len = strlen(buf)};
    struct mvcc_put_resp r;
    mvcc_arena_reset(a);
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_put(s, &q, a, &r), 0);
    assert_int_equal(mvcc_batch_commit(s, ci), 0);
}

static void test_reads_see_published_commits(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    struct fresh f = {.s = store_open(dir)};
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    put_counter(f.s, &a, 0, 1);
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, fresh_reader, &f), 0);
    for (int i = 1; i <= WRITES; i++) {
        put_counter(f.s, &a, i, (uint64_t)i + 1);
        atomic_store(&f.published, i);
        /* The writer's own read right after its commit. */
        assert_int_equal(read_counter(f.s, &a), i);
    }
    for (int i = 0; i < 60000 && atomic_load(&f.reads) == 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    atomic_store(&f.stop, true);
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_true(f.reads > 0);
    mvcc_arena_free(&a);
    mvcc_close(f.s);
    rm_dir(dir);
    free(dir);
}

/* An idle pooled read snapshot must not keep LMDB from reusing the pages
 * that later commits free: rewriting one large value and compacting its
 * history after one read keeps the file small. */
static void test_idle_reader_does_not_pin_pages(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    struct mvcc_store *s = store_open(dir);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    static uint8_t big[16384];
    memset(big, 'b', sizeof(big));
    uint64_t ci = 0;
    for (int i = 0; i < 400; i++) {
        mvcc_arena_reset(&a);
        big[0] = (uint8_t)('a' + i % 26);
        struct mvcc_put_req q = {.key = (const uint8_t *)"big",
                                 .key_len = 3,
                                 .value = big,
                                 .value_len = sizeof(big)};
        struct mvcc_put_resp r;
        assert_int_equal(mvcc_batch_begin(s), 0);
        assert_int_equal(mvcc_put(s, &q, &a, &r), 0);
        mvcc_rev hdr;
        assert_int_equal(mvcc_compact(s, r.header_rev, &hdr), 0);
        assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
        bool done = false;
        while (!done)
            assert_int_equal(mvcc_compact_step(s, 64, &done), 0);
        if (i == 10) {
            /* One read: its snapshot goes back to the pool. */
            struct mvcc_range_req rq = {.key = (const uint8_t *)"big",
                                        .key_len = 3};
            struct mvcc_range_resp rr;
            assert_int_equal(mvcc_range(s, &rq, &a, &rr), 0);
            assert_int_equal(rr.n_kvs, 1);
        }
    }
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(s, &st), 0);
    /* 400 rewrites of 5 pages each would be 8 MB if none were reused. */
    assert_true(st.db_bytes < (1u << 20));
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(dir);
    free(dir);
}

int test_threads_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_during_applies),
        cmocka_unit_test(test_reads_see_published_commits),
        cmocka_unit_test(test_idle_reader_does_not_pin_pages),
    };
    return cmocka_run_group_tests_name("mvcc_threads", tests, NULL, NULL);
}
