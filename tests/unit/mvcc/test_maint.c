/* Maintenance: HashKV equal on stores that applied the same requests
 * whatever their physical compaction progress, different when the data
 * differs; defragmentation shrinking the file and keeping the content; the
 * consistent index stored with each batch. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "tests.h"

static void apply_ops(struct mvcc_store *s, uint64_t seed, int n,
                      mvcc_rev compact_at, bool twist)
{
    struct prng p;
    prng_seed(&p, seed);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    assert_int_equal(mvcc_batch_begin(s), 0);
    for (int i = 0; i < n; i++) {
        mvcc_arena_reset(&a);
        char k[16], v[32];
        snprintf(k, sizeof(k), "k%02u", (unsigned)prng_below(&p, 40));
        snprintf(v, sizeof(v), "v%llu", (unsigned long long)prng_next(&p));
        if (twist && i == n - 1)
            v[1] = 'X';
        bool do_put = prng_chance(&p, 0.8);
        if (do_put || (twist && i == n - 1)) {
            struct mvcc_put_req q = {.key = (const uint8_t *)k,
                                     .key_len = strlen(k),
                                     .value = (const uint8_t *)v,
                                     .value_len = strlen(v)};
            struct mvcc_put_resp r;
            assert_int_equal(mvcc_put(s, &q, &a, &r), 0);
        } else {
            struct mvcc_delete_req q = {.key = (const uint8_t *)k,
                                        .key_len = strlen(k)};
            struct mvcc_delete_resp r;
            assert_int_equal(mvcc_delete_range(s, &q, &a, &r), 0);
        }
        if (i == n / 2) {
            mvcc_rev hdr;
            assert_int_equal(mvcc_compact(s, compact_at, &hdr), 0);
        }
    }
    assert_int_equal(mvcc_batch_commit(s, (uint64_t)n), 0);
    mvcc_arena_free(&a);
}

static void test_hash_kv_independent_of_compaction_progress(void **state)
{
    (void)state;
    char *da = tmp_dir(), *db = tmp_dir(), *dc = tmp_dir();
    struct mvcc_store *a = store_open(da), *b = store_open(db),
                      *c = store_open(dc);
    apply_ops(a, 9, 600, 200, false);
    apply_ops(b, 9, 600, 200, false);
    apply_ops(c, 9, 600, 200, true);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(a, 50, &done), 0);
    assert_int_equal(mvcc_compact_step(b, 5, &done), 0);
    assert_false(done);
    uint32_t ha, hb, hc;
    mvcc_rev ca, cb, cc, ra, rb, rc;
    for (mvcc_rev rev = 250; rev <= 450; rev += 50) {
        assert_int_equal(mvcc_hash_kv(a, rev, &ha, &ca, &ra), 0);
        assert_int_equal(mvcc_hash_kv(b, rev, &hb, &cb, &rb), 0);
        assert_int_equal(ha, hb);
        assert_int_equal(ca, 200);
        assert_int_equal(cb, 200);
    }
    assert_int_equal(mvcc_hash_kv(a, 0, &ha, &ca, &ra), 0);
    assert_int_equal(mvcc_hash_kv(b, 0, &hb, &cb, &rb), 0);
    assert_int_equal(mvcc_hash_kv(c, 0, &hc, &cc, &rc), 0);
    assert_int_equal(ha, hb);
    assert_int_equal(ra, rb);
    assert_int_not_equal(ha, hc);
    assert_int_equal(mvcc_hash_kv(a, 200, &ha, &ca, &ra), CAIRN_EREVCOMPACTED);
    assert_int_equal(mvcc_hash_kv(a, ra + 1, &ha, &ca, &ra), CAIRN_EFUTUREREV);
    /* Once b finishes too, the whole-database hashes agree as well. */
    while (!done)
        assert_int_equal(mvcc_compact_step(b, 7, &done), 0);
    assert_int_equal(mvcc_hash(a, &ha, &ra), 0);
    assert_int_equal(mvcc_hash(b, &hb, &rb), 0);
    assert_int_equal(ha, hb);
    mvcc_close(a);
    mvcc_close(b);
    mvcc_close(c);
    rm_dir(da);
    rm_dir(db);
    rm_dir(dc);
    free(da);
    free(db);
    free(dc);
}

/* A compaction interrupted after some steps (the store closed as a crash
 * after a sync leaves it) resumes where it stopped and ends with the same
 * content as one run without a break. */
static void test_compaction_resumes_after_reopen(void **state)
{
    (void)state;
    char *da = tmp_dir(), *db = tmp_dir();
    struct mvcc_store *a = store_open(da), *b = store_open(db);
    apply_ops(a, 11, 800, 300, false);
    apply_ops(b, 11, 800, 300, false);
    bool done = false;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mvcc_compact_step(a, 20, &done), 0);
        assert_false(done);
    }
    mvcc_close(a);
    a = store_open(da);
    assert_true(mvcc_compact_pending(a));
    int steps = 0;
    while (!done) {
        assert_int_equal(mvcc_compact_step(a, 20, &done), 0);
        assert_true(++steps < 1000);
    }
    assert_false(mvcc_compact_pending(a));
    while (mvcc_compact_pending(b))
        assert_int_equal(mvcc_compact_step(b, 1000, &done), 0);
    uint32_t ha, hb;
    mvcc_rev ra, rb;
    assert_int_equal(mvcc_hash(a, &ha, &ra), 0);
    assert_int_equal(mvcc_hash(b, &hb, &rb), 0);
    assert_int_equal(ha, hb);
    mvcc_close(a);
    mvcc_close(b);
    rm_dir(da);
    rm_dir(db);
    free(da);
    free(db);
}

static void test_defrag(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct mvcc_store *s = store_open(d);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    static uint8_t big[2000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(mvcc_batch_begin(s), 0);
    for (int i = 0; i < 3000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "key%05d", i);
        struct mvcc_put_req q = {.key = (const uint8_t *)k,
                                 .key_len = strlen(k),
                                 .value = big,
                                 .value_len = sizeof(big)};
        struct mvcc_put_resp r;
        assert_int_equal(mvcc_put(s, &q, &a, &r), 0);
        mvcc_arena_reset(&a);
    }
    assert_int_equal(mvcc_batch_commit(s, 1), 0);
    assert_int_equal(mvcc_batch_begin(s), 0);
    struct mvcc_delete_req dq = {.key = (const uint8_t *)"key00010",
                                 .key_len = 8,
                                 .end = (const uint8_t *)"key9",
                                 .end_len = 4};
    struct mvcc_delete_resp dr;
    assert_int_equal(mvcc_delete_range(s, &dq, &a, &dr), 0);
    assert_int_equal(dr.deleted, 2990);
    mvcc_rev hdr;
    assert_int_equal(mvcc_compact(s, 3002, &hdr), 0);
    assert_int_equal(mvcc_batch_commit(s, 2), 0);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(s, 1000, &done), 0);
    struct mvcc_status before, after;
    assert_int_equal(mvcc_status_get(s, &before), 0);
    assert_true(before.in_use_bytes < before.db_bytes / 2);
    uint32_t h1, h2;
    mvcc_rev r1, r2;
    assert_int_equal(mvcc_hash(s, &h1, &r1), 0);
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_defrag(s, &em), 0);
    assert_int_equal(mvcc_status_get(s, &after), 0);
    assert_true(after.db_bytes < before.db_bytes / 2);
    assert_int_equal(after.rev, before.rev);
    assert_int_equal(after.consistent_index, 2);
    assert_int_equal(mvcc_hash(s, &h2, &r2), 0);
    assert_int_equal(h1, h2);
    assert_int_equal(r1, r2);
    /* Still writable and readable. */
    static const uint8_t z = 0;
    struct mvcc_range_req q = {
        .key = &z, .key_len = 1, .end = &z, .end_len = 1};
    struct mvcc_range_resp rr;
    assert_int_equal(mvcc_range(s, &q, &a, &rr), 0);
    assert_int_equal(rr.count, 10);
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_delete_range(s, &dq, &a, &dr), 0);
    dq.key = (const uint8_t *)"key00000";
    assert_int_equal(mvcc_delete_range(s, &dq, &a, &dr), 0);
    assert_int_equal(dr.deleted, 10);
    assert_int_equal(mvcc_batch_commit(s, 3), 0);
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

struct inject {
    int site, rc, calls;
};

static int inject_cb(void *arg, int site)
{
    struct inject *in = arg;
    in->calls++;
    return site == in->site ? in->rc : 0;
}

static int put_one(struct mvcc_store *s, struct mvcc_arena *a, const char *k)
{
    struct mvcc_put_req q = {.key = (const uint8_t *)k,
                             .key_len = strlen(k),
                             .value = (const uint8_t *)"v",
                             .value_len = 1};
    struct mvcc_put_resp r;
    return mvcc_put(s, &q, a, &r);
}

/* The test hook the whole-member simulation uses: MDB_MAP_FULL injected at
 * a record write takes mvcc's real path (CAIRN_ENOSPC, the batch refused,
 * nothing of it kept), and a failing fdatasync is CAIRN_ESYNC. */
static void test_injected_map_full_and_sync_failure(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct inject in = {0};
    struct mvcc_options o = {.dir = d, .fault = inject_cb, .fault_arg = &in};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &s, &em), 0);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(put_one(s, &a, "a"), 0);
    assert_int_equal(mvcc_batch_commit(s, 1), 0);
    assert_true(in.calls > 0);
    assert_int_equal(mvcc_sync(s), 0);
    in.site = MVCC_FAULT_WRITE;
    in.rc = MDB_MAP_FULL;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(put_one(s, &a, "b"), CAIRN_ENOSPC);
    assert_int_equal(mvcc_ext_put(s, 'T', "x", 1, "", 0), CAIRN_EIO);
    assert_int_not_equal(mvcc_batch_commit(s, 2), 0);
    in.site = MVCC_FAULT_SYNC;
    in.rc = EIO;
    assert_int_equal(mvcc_sync(s), CAIRN_ESYNC);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(s, &st), 0);
    assert_int_equal(st.rev, 2);
    assert_int_equal(st.consistent_index, 1);
    /* Space freed: the same batch goes through. */
    in.site = 0;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(put_one(s, &a, "b"), 0);
    assert_int_equal(mvcc_batch_commit(s, 2), 0);
    assert_int_equal(mvcc_sync(s), 0);
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

/* The store's state as the maintenance tests compare it. */
static void hash_of(struct mvcc_store *s, uint32_t *h, struct mvcc_status *st)
{
    mvcc_rev c, r;
    assert_int_equal(mvcc_hash_kv(s, 0, h, &c, &r), 0);
    assert_int_equal(mvcc_status_get(s, st), 0);
}

/* A full map injected at the maintenance paths (the whole-member
 * simulation's disk-full fault): a compaction step, a defragmentation and a
 * snapshot restore each fail with CAIRN_ENOSPC and leave the store as it
 * was (same HashKV, revision, compaction progress; no copy left behind),
 * and each goes through once space is freed. */
static void test_injected_map_full_maintenance(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct inject in = {0};
    struct mvcc_options o = {.dir = d, .fault = inject_cb, .fault_arg = &in};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &s, &em), 0);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    assert_int_equal(mvcc_batch_begin(s), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(put_one(s, &a, i % 2 ? "a" : "b"), 0);
    mvcc_rev hdr;
    assert_int_equal(mvcc_compact(s, 5, &hdr), 0);
    assert_int_equal(mvcc_batch_commit(s, 1), 0);
    uint32_t h0, h;
    struct mvcc_status st0, st;
    hash_of(s, &h0, &st0);
    assert_true(mvcc_compact_pending(s));

    in.rc = MDB_MAP_FULL;
    in.site = MVCC_FAULT_COMPACT;
    bool done = true;
    assert_int_equal(mvcc_compact_step(s, 100, &done), CAIRN_ENOSPC);
    assert_true(mvcc_compact_pending(s));
    hash_of(s, &h, &st);
    assert_int_equal(h, h0);
    assert_int_equal(st.compact_done_rev, st0.compact_done_rev);

    in.site = MVCC_FAULT_DEFRAG;
    assert_int_equal(mvcc_defrag(s, &em), CAIRN_ENOSPC);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s/defrag.tmp", d);
    struct stat sb;
    assert_int_equal(stat(tmp, &sb), -1);
    hash_of(s, &h, &st);
    assert_int_equal(h, h0);
    assert_int_equal(st.rev, st0.rev);

    char snap[4200];
    snprintf(snap, sizeof(snap), "%s/snap.img", d);
    int fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(mvcc_snapshot_write(s, fd, &em), 0);
    close(fd);
    in.site = MVCC_FAULT_RESTORE;
    assert_int_equal(mvcc_snapshot_restore(s, snap, &em), CAIRN_ENOSPC);
    assert_int_equal(stat(snap, &sb), 0); /* the image is still there */
    hash_of(s, &h, &st);
    assert_int_equal(h, h0);

    /* Space freed: each goes through. */
    in.site = 0;
    assert_int_equal(mvcc_snapshot_restore(s, snap, &em), 0);
    while (!done || mvcc_compact_pending(s))
        assert_int_equal(mvcc_compact_step(s, 100, &done), 0);
    assert_int_equal(mvcc_defrag(s, &em), 0);
    hash_of(s, &h, &st);
    assert_int_equal(st.rev, st0.rev);
    assert_int_equal(st.compact_done_rev, 5);
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

/* A full map mid-batch fails the request, and the batch commit refuses and
 * aborts, so nothing half-written survives: the store is exactly as the
 * last committed batch left it. */
static void test_map_full_fails_the_batch_cleanly(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct mvcc_options o = {
        .dir = d, .quota_bytes = 256 * 1024, .map_bytes = 1024 * 1024};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &s, &em), 0);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    static uint8_t v[3000];
    int rc = 0, committed = 0;
    uint64_t ci = 0, ok_ci = 0;
    for (int b = 0; b < 1000 && rc == 0; b++) {
        assert_int_equal(mvcc_batch_begin(s), 0);
        for (int i = 0; i < 10 && rc == 0; i++) {
            char k[16];
            snprintf(k, sizeof(k), "k%05d", b * 10 + i);
            struct mvcc_put_req q = {.key = (const uint8_t *)k,
                                     .key_len = strlen(k),
                                     .value = v,
                                     .value_len = sizeof(v)};
            struct mvcc_put_resp r;
            rc = mvcc_put(s, &q, &a, &r);
            mvcc_arena_reset(&a);
        }
        if (rc == 0) {
            /* The commit itself may be what finds the map full. */
            rc = mvcc_batch_commit(s, ++ci);
            if (rc == 0) {
                committed += 10;
                ok_ci = ci;
            }
        } else {
            assert_int_equal(rc, CAIRN_ENOSPC);
            assert_int_not_equal(mvcc_batch_commit(s, ++ci), 0);
        }
    }
    assert_int_equal(rc, CAIRN_ENOSPC);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(s, &st), 0);
    assert_int_equal(st.rev, 1 + committed);
    assert_int_equal(st.consistent_index, ok_ci);
    static const uint8_t z = 0;
    struct mvcc_range_req q = {
        .key = &z, .key_len = 1, .end = &z, .end_len = 1, .count_only = true};
    struct mvcc_range_resp rr;
    assert_int_equal(mvcc_range(s, &q, &a, &rr), 0);
    assert_int_equal(rr.count, committed);
    assert_false(mvcc_quota_ok(s, 0));
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

/* Free pages on LMDB's free list of the store in dir, counted the slow way
 * (walking the list), to check the figure the quota uses against. */
static uint64_t walk_free_pages(const char *dir)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    MDB_txn *t;
    MDB_cursor *c;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    assert_int_equal(mdb_cursor_open(t, 0, &c), 0);
    uint64_t n = 0;
    MDB_val k, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        size_t cnt;
        memcpy(&cnt, v.mv_data, sizeof(cnt)); /* first word: the count */
        n += cnt;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    mdb_env_close(env);
    return n;
}

static int put_kv(struct mvcc_store *s, struct mvcc_arena *a, uint64_t *ci,
                  const char *k, const uint8_t *v, size_t vl)
{
    struct mvcc_put_req q = {.key = (const uint8_t *)k,
                             .key_len = strlen(k),
                             .value = v,
                             .value_len = vl};
    struct mvcc_put_resp r;
    if (mvcc_quota_ok(s, mvcc_put_cost(&q)) == false)
        return CAIRN_EQUOTA; /* the leader's check before proposing */
    assert_int_equal(mvcc_batch_begin(s), 0);
    int rc = mvcc_put(s, &q, a, &r);
    assert_int_equal(mvcc_batch_commit(s, ++*ci), 0);
    mvcc_arena_reset(a);
    return rc;
}

/* etcd's e2e TestCtlV3Alarm at the store's level: with a quota of 13
 * pages a first small put fits; rewriting a page-sized value fills the
 * quota within a few puts; compaction and defragmentation make room again.
 * The quota charges the pages in use, which must equal the high-water mark
 * minus LMDB's free list. */
static void test_quota_as_etcd_alarm_test(void **state)
{
    (void)state;
    char *d = tmp_dir();
    long page = sysconf(_SC_PAGESIZE);
    struct mvcc_options o = {.dir = d, .quota_bytes = (size_t)(13 * page)};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &s, &em), 0);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    uint64_t ci = 0;
    uint8_t small[64], big[4096];
    memset(small, 'a', sizeof(small));
    memset(big, 'b', sizeof(big));
    assert_int_equal(put_kv(s, &a, &ci, "1st_test", small, sizeof(small)), 0);
    int puts = 0;
    while (put_kv(s, &a, &ci, "2nd_test", big, sizeof(big)) == 0)
        assert_true(++puts < 20);
    assert_true(puts >= 1);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(s, &st), 0);
    assert_true(st.in_use_bytes + 256 + 8 + sizeof(big) >= o.quota_bytes);
    /* Raised and persisted by the member: every put is refused. */
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_alarm_set(s, true), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    struct mvcc_put_req q = {
        .key = S("3rd_test"), .value = small, .value_len = sizeof(small)};
    struct mvcc_put_resp pr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_put(s, &q, &a, &pr), CAIRN_EQUOTA);
    mvcc_batch_abort(s);
    /* Compact at the current revision, physically, then defragment. */
    mvcc_rev hr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_compact(s, st.rev, &hr), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(s, 1000, &done), 0);
    assert_int_equal(mvcc_defrag(s, &em), 0);
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_alarm_set(s, false), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    assert_int_equal(put_kv(s, &a, &ci, "4th_test", small, sizeof(small)), 0);
    /* The quota's figure, against a walk of the free list. */
    assert_int_equal(mvcc_status_get(s, &st), 0);
    mvcc_close(s);
    uint64_t free_bytes = walk_free_pages(d) * (uint64_t)page;
    assert_int_equal(st.in_use_bytes, st.db_bytes - free_bytes);
    mvcc_arena_free(&a);
    rm_dir(d);
    free(d);
}

/* etcd charges bolt's file size, which compaction does not shrink (later
 * writes reuse the freed pages) and defragmentation does: after a full
 * quota, a physical compaction leaves the quota refusing, across a
 * restart too, until defragmentation. */
static void test_quota_refuses_until_defrag(void **state)
{
    (void)state;
    char *d = tmp_dir();
    long page = sysconf(_SC_PAGESIZE);
    struct mvcc_options o = {.dir = d, .quota_bytes = (size_t)(13 * page)};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &s, &em), 0);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    uint64_t ci = 0;
    uint8_t small[64], big[4096];
    memset(small, 'a', sizeof(small));
    memset(big, 'b', sizeof(big));
    int puts = 0;
    while (put_kv(s, &a, &ci, "2nd_test", big, sizeof(big)) == 0)
        assert_true(++puts < 20);
    struct mvcc_put_req sq = {
        .key = S("3rd_test"), .value = small, .value_len = sizeof(small)};
    size_t cost = mvcc_put_cost(&sq);
    assert_false(mvcc_quota_ok(s, cost));
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(s, &st), 0);
    mvcc_rev hr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_compact(s, st.rev, &hr), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(s, 1000, &done), 0);
    /* The history is gone: fewer pages are in use than the quota
     * charges, and still the quota refuses, as etcd's. */
    assert_int_equal(mvcc_status_get(s, &st), 0);
    assert_true(st.in_use_bytes + cost < o.quota_bytes);
    assert_false(mvcc_quota_ok(s, cost));
    /* A write that fits in the freed pages does not change that. */
    assert_int_equal(mvcc_batch_begin(s), 0);
    struct mvcc_put_resp pr;
    assert_int_equal(mvcc_put(s, &sq, &a, &pr), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    mvcc_arena_reset(&a);
    assert_false(mvcc_quota_ok(s, cost));
    mvcc_close(s);
    assert_int_equal(mvcc_open(&o, &s, &em), 0);
    assert_false(mvcc_quota_ok(s, cost));
    assert_int_equal(mvcc_defrag(s, &em), 0);
    assert_true(mvcc_quota_ok(s, cost));
    assert_int_equal(put_kv(s, &a, &ci, "4th_test", small, sizeof(small)), 0);
    /* And a restart after defragmentation keeps the smaller figure. */
    mvcc_close(s);
    assert_int_equal(mvcc_open(&o, &s, &em), 0);
    assert_true(mvcc_quota_ok(s, cost));
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

static bool any_lease(void *arg, int64_t id)
{
    (void)arg;
    (void)id;
    return true;
}

static void kat_put(struct mvcc_store *s, struct mvcc_arena *a, const char *k,
                    const char *v, int64_t lease)
{
    struct mvcc_put_req q = {.key = (const uint8_t *)k,
                             .key_len = strlen(k),
                             .value = (const uint8_t *)v,
                             .value_len = strlen(v),
                             .lease = lease};
    struct mvcc_put_resp r;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_put(s, &q, a, &r), 0);
    assert_int_equal(mvcc_batch_commit(s, 1), 0);
}

static void kat_del(struct mvcc_store *s, struct mvcc_arena *a, const char *k)
{
    struct mvcc_delete_req q = {.key = (const uint8_t *)k,
                                .key_len = strlen(k)};
    struct mvcc_delete_resp r;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_delete_range(s, &q, a, &r), 0);
    assert_int_equal(mvcc_batch_commit(s, 1), 0);
}

static void kat_hash(struct mvcc_store *s, mvcc_rev rev, uint32_t want,
                     mvcc_rev want_compact)
{
    uint32_t h;
    mvcc_rev c, cur;
    assert_int_equal(mvcc_hash_kv(s, rev, &h, &c, &cur), 0);
    assert_int_equal(h, want);
    assert_int_equal(c, want_compact);
}

/* Known answers from etcd 3.4.23 (`etcdctl endpoint hashkv --rev=N`) after
 * the same requests: put a 1, put b 2, put a 3, del b, put c x with lease
 * 0x390da22708e78709, put b "", put a 4; compaction at 5; put d 5, del a. */
static void test_hash_kv_equals_etcd(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct mvcc_store *s = store_open(d);
    struct mvcc_lease_hooks hooks = {any_lease, NULL};
    mvcc_set_lease_hooks(s, &hooks);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    kat_put(s, &a, "a", "1", 0);
    kat_put(s, &a, "b", "2", 0);
    kat_put(s, &a, "a", "3", 0);
    kat_del(s, &a, "b");
    kat_put(s, &a, "c", "x", 0x390da22708e78709LL);
    kat_put(s, &a, "b", "", 0);
    kat_put(s, &a, "a", "4", 0);
    kat_hash(s, 4, 2069675932u, -1);
    kat_hash(s, 6, 2824342995u, -1);
    kat_hash(s, 8, 3256210621u, -1);
    mvcc_rev hdr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_compact(s, 5, &hdr), 0);
    assert_int_equal(mvcc_batch_commit(s, 1), 0);
    kat_put(s, &a, "d", "5", 0);
    kat_del(s, &a, "a");
    kat_hash(s, 8, 626101631u, 5);
    kat_hash(s, 10, 1774675244u, 5);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(s, 2, &done), 0);
    kat_hash(s, 8, 626101631u, 5);
    kat_hash(s, 0, 1774675244u, 5);
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

static void counts_eq(struct mvcc_store *s, uint64_t puts, uint64_t dels,
                      uint64_t ranges, uint64_t txns, int64_t keys)
{
    struct mvcc_op_counts c;
    mvcc_op_counts_get(s, &c);
    assert_int_equal(c.puts, puts);
    assert_int_equal(c.deletes, dels);
    assert_int_equal(c.ranges, ranges);
    assert_int_equal(c.txns, txns);
    assert_int_equal(c.keys, keys);
}

/* The counters behind etcd_mvcc_*_total and etcd_debugging_mvcc_keys_total:
 * what committed batches did (an aborted batch counts nothing), reads, a
 * txn of two operations, and the live keys counted again at open. */
static void test_op_counts(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct mvcc_store *s = store_open(d);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    counts_eq(s, 0, 0, 0, 0, 0);
    kat_put(s, &a, "a", "1", 0);
    kat_put(s, &a, "a", "2", 0); /* same key: no new key */
    kat_put(s, &a, "b", "1", 0);
    counts_eq(s, 3, 0, 0, 0, 2);
    kat_del(s, &a, "a");
    kat_del(s, &a, "zz"); /* deletes nothing: still a delete */
    counts_eq(s, 3, 2, 0, 0, 1);
    kat_put(s, &a, "a", "3", 0); /* deleted before: a new key again */
    counts_eq(s, 4, 2, 0, 0, 2);
    kat_del(s, &a, "a");
    counts_eq(s, 4, 3, 0, 0, 1);
    /* aborted: not counted */
    struct mvcc_put_req q = {.key = S("c"), .value = S("x")};
    struct mvcc_put_resp pr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_put(s, &q, &a, &pr), 0);
    mvcc_batch_abort(s);
    counts_eq(s, 4, 3, 0, 0, 1);
    /* a read */
    struct mvcc_range_req rq = {.key = S("b")};
    struct mvcc_range_resp rr;
    assert_int_equal(mvcc_range(s, &rq, &a, &rr), 0);
    counts_eq(s, 4, 3, 1, 0, 1);
    /* a txn: put c, range b */
    struct mvcc_op ops[2] = {{.type = MVCC_OP_PUT}, {.type = MVCC_OP_RANGE}};
    ops[0].u.put = q;
    ops[1].u.range = rq;
    struct mvcc_txn_req t = {.success = ops, .n_success = 2};
    struct mvcc_txn_resp tr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_txn(s, &t, &a, &tr), 0);
    assert_int_equal(mvcc_batch_commit(s, 2), 0);
    counts_eq(s, 5, 3, 2, 1, 2);
    mvcc_close(s);
    /* reopened: the operations start again, the live keys are stored */
    s = store_open(d);
    counts_eq(s, 0, 0, 0, 0, 2);
    mvcc_close(s);
    /* a store written before the count was stored has it counted */
    MDB_env *env;
    MDB_txn *mt;
    MDB_dbi meta;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_mapsize(env, 64u << 20);
    assert_int_equal(mdb_env_open(env, d, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &mt), 0);
    assert_int_equal(mdb_dbi_open(mt, "meta", 0, &meta), 0);
    MDB_val mk = {4, "keys"};
    assert_int_equal(mdb_del(mt, meta, &mk, NULL), 0);
    assert_int_equal(mdb_txn_commit(mt), 0);
    mdb_env_close(env);
    s = store_open(d);
    counts_eq(s, 0, 0, 0, 0, 2);
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

int test_maint_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_kv_independent_of_compaction_progress),
        cmocka_unit_test(test_hash_kv_equals_etcd),
        cmocka_unit_test(test_compaction_resumes_after_reopen),
        cmocka_unit_test(test_defrag),
        cmocka_unit_test(test_map_full_fails_the_batch_cleanly),
        cmocka_unit_test(test_injected_map_full_and_sync_failure),
        cmocka_unit_test(test_injected_map_full_maintenance),
        cmocka_unit_test(test_quota_as_etcd_alarm_test),
        cmocka_unit_test(test_quota_refuses_until_defrag),
        cmocka_unit_test(test_op_counts),
    };
    return cmocka_run_group_tests_name("mvcc_maint", tests, NULL, NULL);
}
