/* Keys longer than the 479 bytes stored verbatim (docs/mvcc.md "Long
 * keys"): sizes around the limits up to a mebibyte, ranges across long keys
 * sharing a long prefix, history, compaction, lease revocation order,
 * watch events, reopen and snapshot restore. The model test mixes long
 * keys into its random sequences too. */
#include <fcntl.h>

#include "helpers.h"
#include "tests.h"

#define N_SIZES 7
static const size_t sizes[N_SIZES] = {
    479, 480, 495, 496, 511, 4096, (1u << 20) - 64};

/* Key i: sizes[i] bytes of 'k', so each is a prefix of the next and they
 * all share the 479-byte prefix of the long ones (one more 'k' allocated
 * for reading a key one byte longer). */
static uint8_t *key_of(size_t len)
{
    uint8_t *k = malloc(len + 1);
    assert_non_null(k);
    memset(k, 'k', len + 1);
    return k;
}

static void put1(struct mvcc_store *s, uint64_t *ci, const uint8_t *k,
                 size_t kl, const char *v, int64_t lease)
{
    struct mvcc_put_req q = {.key = k,
                             .key_len = kl,
                             .value = (const uint8_t *)v,
                             .value_len = strlen(v),
                             .lease = lease};
    struct mvcc_put_resp r;
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_put(s, &q, &a, &r), 0);
    assert_int_equal(mvcc_batch_commit(s, ++*ci), 0);
    mvcc_arena_free(&a);
}

/* Every key of the store at rev in key order must be exactly want[0..n). */
static void check_all(struct mvcc_store *s, mvcc_rev rev, uint8_t **want,
                      const size_t *want_len, size_t n)
{
    static const uint8_t z = 0;
    struct mvcc_range_req q = {
        .key = &z, .key_len = 1, .end = &z, .end_len = 1, .revision = rev};
    struct mvcc_range_resp r;
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    assert_int_equal(mvcc_range(s, &q, &a, &r), 0);
    assert_int_equal(r.count, (int64_t)n);
    assert_int_equal(r.n_kvs, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r.kvs[i].key_len, want_len[i]);
        assert_memory_equal(r.kvs[i].key, want[i], want_len[i]);
    }
    mvcc_arena_free(&a);
}

static void test_sizes(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    struct mvcc_store *s = store_open(dir);
    uint64_t ci = 0;
    uint8_t *keys[N_SIZES];
    /* Put in reverse order, so the store's order is not the put order. */
    for (size_t i = N_SIZES; i-- > 0;) {
        keys[i] = key_of(sizes[i]);
        char v[32];
        snprintf(v, sizeof(v), "v%zu", sizes[i]);
        put1(s, &ci, keys[i], sizes[i], v, 0);
    }
    check_all(s, 0, keys, sizes, N_SIZES);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    for (size_t i = 0; i < N_SIZES; i++) {
        struct mvcc_range_req q = {.key = keys[i], .key_len = sizes[i]};
        struct mvcc_range_resp r;
        assert_int_equal(mvcc_range(s, &q, &a, &r), 0);
        assert_int_equal(r.count, 1);
        char v[32];
        snprintf(v, sizeof(v), "v%zu", sizes[i]);
        assert_int_equal(r.kvs[0].value_len, strlen(v));
        assert_memory_equal(r.kvs[0].value, v, strlen(v));
        assert_int_equal(r.kvs[0].mod_rev, (mvcc_rev)(N_SIZES - i + 1));
        /* A key one byte longer or shorter than a stored one is absent
         * unless it is the next size. */
        q.key_len = sizes[i] + 1;
        assert_int_equal(mvcc_range(s, &q, &a, &r), 0);
        assert_int_equal(r.count, i + 1 < N_SIZES && sizes[i + 1] == q.key_len);
        /* [key_i, key_{i+3}) holds exactly keys i, i+1, i+2. */
        if (i + 3 < N_SIZES) {
            q.key_len = sizes[i];
            q.end = keys[i + 3];
            q.end_len = sizes[i + 3];
            assert_int_equal(mvcc_range(s, &q, &a, &r), 0);
            assert_int_equal(r.count, 3);
            assert_int_equal(r.kvs[2].key_len, sizes[i + 2]);
            q.end = NULL;
            q.end_len = 0;
        }
        mvcc_arena_reset(&a);
    }
    /* Update, delete with prev_kv, and read the history. */
    put1(s, &ci, keys[5], sizes[5], "again", 0);
    struct mvcc_delete_req d = {
        .key = keys[3], .key_len = sizes[3], .prev_kv = true};
    struct mvcc_delete_resp dr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_delete_range(s, &d, &a, &dr), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    assert_int_equal(dr.deleted, 1);
    assert_int_equal(dr.prev_kvs[0].key_len, sizes[3]);
    uint8_t *left[N_SIZES];
    size_t left_len[N_SIZES], nl = 0;
    for (size_t i = 0; i < N_SIZES; i++)
        if (i != 3) {
            left[nl] = keys[i];
            left_len[nl++] = sizes[i];
        }
    check_all(s, 0, left, left_len, nl);
    check_all(s, N_SIZES + 1, keys, sizes, N_SIZES);
    /* Compaction drops the old versions and keeps what is alive. */
    mvcc_rev hdr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_compact(s, N_SIZES + 3, &hdr), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(s, 2, &done), 0);
    check_all(s, 0, left, left_len, nl);
    struct mvcc_range_req q = {.key = keys[5], .key_len = sizes[5]};
    struct mvcc_range_resp r;
    assert_int_equal(mvcc_range(s, &q, &a, &r), 0);
    assert_int_equal(r.kvs[0].version, 2);
    assert_memory_equal(r.kvs[0].value, "again", 5);
    q.revision = N_SIZES + 1;
    assert_int_equal(mvcc_range(s, &q, &a, &r), CAIRN_EREVCOMPACTED);
    /* Reopen, then a snapshot restored into another store reads the same. */
    mvcc_close(s);
    s = store_open(dir);
    check_all(s, 0, left, left_len, nl);
    char snap[512];
    snprintf(snap, sizeof(snap), "%s/snap.tmp", dir);
    int fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_snapshot_write(s, fd, &em), 0);
    close(fd);
    char *dir2 = tmp_dir();
    struct mvcc_store *s2 = store_open(dir2);
    assert_int_equal(mvcc_snapshot_restore(s2, snap, &em), 0);
    check_all(s2, 0, left, left_len, nl);
    uint32_t h1, h2;
    mvcc_rev c1, c2, r1, r2;
    assert_int_equal(mvcc_hash_kv(s, 0, &h1, &c1, &r1), 0);
    assert_int_equal(mvcc_hash_kv(s2, 0, &h2, &c2, &r2), 0);
    assert_int_equal(h1, h2);
    unlink(snap);
    mvcc_close(s2);
    rm_dir(dir2);
    free(dir2);
    mvcc_arena_free(&a);
    for (size_t i = 0; i < N_SIZES; i++)
        free(keys[i]);
    mvcc_close(s);
    rm_dir(dir);
    free(dir);
}

static bool any_lease(void *arg, int64_t id)
{
    (void)arg;
    return id == 7;
}

struct evs {
    uint8_t *key[64];
    size_t len[64];
    mvcc_rev rev[64];
    bool del[64];
    size_t n;
};

static int ev_cb(void *arg, const struct mvcc_watch_resp *resp)
{
    struct evs *e = arg;
    for (size_t i = 0; i < resp->n_events && e->n < 64; i++) {
        const struct mvcc_event *ev = &resp->events[i];
        e->key[e->n] = malloc(ev->kv.key_len);
        memcpy(e->key[e->n], ev->kv.key, ev->kv.key_len);
        e->len[e->n] = ev->kv.key_len;
        e->rev[e->n] = ev->kv.mod_rev;
        e->del[e->n++] = ev->is_delete;
    }
    return 0;
}

static int count_cb(void *arg, const uint8_t *key, size_t key_len)
{
    (void)key;
    assert_true(key_len > 600);
    (*(int *)arg)++;
    return 0;
}

/* Many long keys under one 600-byte prefix, random tails: a prefix range
 * and sub-ranges return them in key order, a watcher on the prefix sees
 * their full keys, and revoking their lease deletes them in key order (one
 * revision, sub-revisions in key order, as etcd). */
static void run_group(unsigned hash_bits)
{
    char *dir = tmp_dir();
    struct mvcc_store *s = store_open_hb(dir, hash_bits);
    struct mvcc_lease_hooks hooks = {any_lease, NULL};
    mvcc_set_lease_hooks(s, &hooks);
    struct mvcc_watch_hub *h;
    struct evs ev = {0};
    assert_int_equal(mvcc_watch_hub_init(s, NULL, &ev, ev_cb, &h), 0);
    enum { N = 24, PRE = 600 };
    uint8_t *keys[N];
    size_t lens[N];
    struct prng p;
    prng_seed(&p, 5);
    for (int i = 0; i < N; i++) {
        lens[i] = PRE + 1 + prng_below(&p, 40);
        keys[i] = malloc(lens[i]);
        memset(keys[i], 'p', PRE);
        for (size_t j = PRE; j < lens[i]; j++)
            keys[i][j] = (uint8_t)prng_below(&p, 3); /* 0x00..0x02 */
        keys[i][PRE] = (uint8_t)i;                   /* distinct */
    }
    uint8_t end[PRE];
    memset(end, 'p', PRE);
    end[PRE - 1]++;
    struct mvcc_watch_req wq = {
        .key = keys[0], .key_len = PRE, .end = end, .end_len = PRE};
    int64_t id = -1;
    assert_int_equal(mvcc_watch_create(h, &wq, &id), 0);
    uint64_t ci = 0;
    for (int i = N; i-- > 0;)
        put1(s, &ci, keys[i], lens[i], "x", 7);
    /* keys[i][PRE] == i orders them by i. */
    check_all(s, 0, keys, lens, N);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    struct mvcc_range_req q = {.key = keys[5],
                               .key_len = lens[5],
                               .end = keys[17],
                               .end_len = lens[17],
                               .limit = 4};
    struct mvcc_range_resp r;
    assert_int_equal(mvcc_range(s, &q, &a, &r), 0);
    assert_int_equal(r.count, 12);
    assert_int_equal(r.n_kvs, 4);
    assert_true(r.more);
    for (int i = 0; i < 4; i++)
        assert_memory_equal(r.kvs[i].key, keys[5 + i], lens[5 + i]);
    int nk = 0;
    assert_int_equal(mvcc_lease_keys(s, 7, 100, &nk, count_cb), 0);
    assert_int_equal(nk, N);
    int64_t deleted;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_lease_revoke_keys(s, 7, &deleted), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    assert_int_equal(deleted, N);
    check_all(s, 0, keys, lens, 0);
    bool more = true;
    while (more)
        assert_int_equal(mvcc_watch_hub_poll(h, &more), 0);
    assert_int_equal(ev.n, 2 * N);
    for (int i = 0; i < N; i++) {
        /* Puts in reverse key order, then the revoke's deletes in order. */
        assert_int_equal(ev.len[i], lens[N - 1 - i]);
        assert_memory_equal(ev.key[i], keys[N - 1 - i], lens[N - 1 - i]);
        assert_false(ev.del[i]);
        assert_int_equal(ev.len[N + i], lens[i]);
        assert_memory_equal(ev.key[N + i], keys[i], lens[i]);
        assert_true(ev.del[N + i]);
        assert_int_equal(ev.rev[N + i], N + 2);
    }
    for (size_t i = 0; i < ev.n; i++)
        free(ev.key[i]);
    mvcc_watch_hub_close(h);
    mvcc_arena_free(&a);
    for (int i = 0; i < N; i++)
        free(keys[i]);
    mvcc_close(s);
    rm_dir(dir);
    free(dir);
}

static void test_group(void **state)
{
    (void)state;
    run_group(0);
}

/* The same with every long key's hash cut to one bit (sanitizer build):
 * keys that collide are told apart by sequence number. */
static void test_group_collisions(void **state)
{
    (void)state;
    run_group(1);
}

int test_longkeys_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_group_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
