/* Lease tests: grant and its errors, persistence across reopen, attach and
 * detach through Put, revoke in one revision, expiry on the primary's
 * clock, renew, and checkpoints that keep a restart from extending or
 * shortening a lease. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "lease/lease.h"
#include "util/util.h"

struct fx {
    char dir[64];
    struct mvcc_store *s;
    struct lessor *l;
    uint64_t ci;
};

static void fx_open(struct fx *f)
{
    struct mvcc_options o = {.dir = f->dir, .quota_bytes = 64u << 20};
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &f->s, &em), 0);
    struct lease_options lo = {.min_ttl_s = 5, .checkpoint_interval_ms = 60000};
    assert_int_equal(lease_open(f->s, &lo, &f->l), 0);
}

static void fx_close(struct fx *f)
{
    lease_close(f->l);
    mvcc_close(f->s);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/cairn-lease-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    char p[128];
    snprintf(p, sizeof(p), "%s/data.mdb", f->dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void begin(struct fx *f)
{
    assert_int_equal(mvcc_batch_begin(f->s), 0);
}
static void commit(struct fx *f)
{
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
}

static int grant(struct fx *f, int64_t id, int64_t ttl, int64_t now,
                 int64_t *gid, int64_t *gttl)
{
    begin(f);
    int rc = lease_grant(f->l, id, ttl, now, gid, gttl);
    commit(f);
    return rc;
}

static void put(struct fx *f, const char *k, int64_t lease, int expect)
{
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    struct mvcc_put_req q = {.key = (const uint8_t *)k,
                             .key_len = strlen(k),
                             .value = (const uint8_t *)"v",
                             .value_len = 1,
                             .lease = lease};
    struct mvcc_put_resp r;
    begin(f);
    assert_int_equal(mvcc_put(f->s, &q, &a, &r), expect);
    commit(f);
    mvcc_arena_free(&a);
}

static int64_t count_keys(struct fx *f, int64_t *lease_of_a)
{
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    static const uint8_t z = 0;
    struct mvcc_range_req q = {
        .key = &z, .key_len = 1, .end = &z, .end_len = 1};
    struct mvcc_range_resp r;
    assert_int_equal(mvcc_range(f->s, &q, &a, &r), 0);
    if (lease_of_a != NULL) {
        *lease_of_a = -1;
        for (size_t i = 0; i < r.n_kvs; i++)
            if (r.kvs[i].key_len == 1 && r.kvs[i].key[0] == 'a')
                *lease_of_a = r.kvs[i].lease;
    }
    int64_t n = r.count;
    mvcc_arena_free(&a);
    return n;
}

static void test_grant_errors_and_ids(void **state)
{
    struct fx *f = *state;
    int64_t id, ttl;
    assert_int_equal(grant(f, 7, 2, 0, &id, &ttl), 0);
    assert_int_equal(id, 7);
    assert_int_equal(ttl, 5); /* raised to the minimum */
    assert_int_equal(grant(f, 7, 10, 0, &id, &ttl), CAIRN_ELEASEEXISTS);
    assert_int_equal(grant(f, 8, LEASE_TTL_MAX + 1, 0, &id, &ttl),
                     CAIRN_ELEASETTLTOOLARGE);
    /* Chosen ids: the lowest free from the last pick up, persisted. */
    assert_int_equal(grant(f, 0, 10, 0, &id, &ttl), 0);
    assert_int_equal(id, 1);
    assert_int_equal(grant(f, 2, 10, 0, &id, &ttl), 0);
    assert_int_equal(grant(f, 0, 10, 0, &id, &ttl), 0);
    assert_int_equal(id, 3);
    fx_close(f);
    fx_open(f);
    assert_int_equal(grant(f, 0, 10, 0, &id, &ttl), 0);
    assert_int_equal(id, 4);
    int64_t ids[8];
    assert_int_equal(lease_list(f->l, ids, 8), 5);
    int64_t want[] = {1, 2, 3, 4, 7};
    for (int i = 0; i < 5; i++)
        assert_int_equal(ids[i], want[i]);
    struct lease_info info;
    assert_int_equal(lease_time_to_live(f->l, 7, 0, &info, 0, NULL, NULL), 0);
    assert_int_equal(info.granted_ttl_s, 5);
    assert_int_equal(lease_time_to_live(f->l, 99, 0, &info, 0, NULL, NULL),
                     CAIRN_ELEASENOTFOUND);
}

struct keys {
    char k[8][8];
    int n;
};
static int key_cb(void *arg, const uint8_t *key, size_t key_len)
{
    struct keys *ks = arg;
    assert_true(key_len < 8 && ks->n < 8);
    memcpy(ks->k[ks->n], key, key_len);
    ks->k[ks->n][key_len] = 0;
    ks->n++;
    return 0;
}

static void test_attach_detach_revoke(void **state)
{
    struct fx *f = *state;
    int64_t id, ttl, lease_a;
    put(f, "a", 42, CAIRN_ELEASENOTFOUND);
    assert_int_equal(grant(f, 42, 30, 0, &id, &ttl), 0);
    assert_int_equal(grant(f, 43, 30, 0, &id, &ttl), 0);
    put(f, "c", 42, 0);
    put(f, "a", 42, 0);
    put(f, "b", 42, 0);
    put(f, "d", 0, 0);
    put(f, "b", 43, 0); /* moves b to lease 43 */
    struct keys ks = {0};
    struct lease_info info;
    assert_int_equal(lease_time_to_live(f->l, 42, 0, &info, 10, &ks, key_cb),
                     0);
    assert_int_equal(ks.n, 2);
    assert_string_equal(ks.k[0], "a");
    assert_string_equal(ks.k[1], "c");
    assert_int_equal(count_keys(f, &lease_a), 4);
    assert_int_equal(lease_a, 42);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(f->s, &st), 0);
    mvcc_rev before = st.rev;
    begin(f);
    assert_int_equal(lease_revoke(f->l, 42), 0);
    assert_int_equal(lease_revoke(f->l, 42), CAIRN_ELEASENOTFOUND);
    commit(f);
    assert_int_equal(mvcc_status_get(f->s, &st), 0);
    assert_int_equal(st.rev, before + 1); /* one revision for both keys */
    assert_int_equal(count_keys(f, NULL), 2);
    assert_false(lease_exists(f->l, 42));
    put(f, "x", 42, CAIRN_ELEASENOTFOUND);
    /* Survives a reopen: 43 is there with b attached, 42 is gone. */
    fx_close(f);
    fx_open(f);
    assert_false(lease_exists(f->l, 42));
    ks.n = 0;
    assert_int_equal(lease_time_to_live(f->l, 43, 0, &info, 10, &ks, key_cb),
                     0);
    assert_int_equal(ks.n, 1);
    assert_string_equal(ks.k[0], "b");
    /* A put without lease detaches. */
    put(f, "b", 0, 0);
    ks.n = 0;
    assert_int_equal(lease_time_to_live(f->l, 43, 0, &info, 10, &ks, key_cb),
                     0);
    assert_int_equal(ks.n, 0);
}

static void test_expiry_and_renew(void **state)
{
    struct fx *f = *state;
    int64_t id, ttl, ids[4];
    assert_int_equal(grant(f, 1, 10, 0, &id, &ttl), 0);
    /* Not primary: nothing ever expires, renew is refused. */
    assert_int_equal(lease_expired(f->l, 1000000, ids, 4), 0);
    bool clear;
    assert_int_equal(lease_renew(f->l, 1, 0, &ttl, &clear), CAIRN_ENOTLEADER);
    lease_promote(f->l, 1000, 0);
    assert_int_equal(grant(f, 2, 20, 1000, &id, &ttl), 0);
    assert_int_equal(lease_expired(f->l, 10999, ids, 4), 0);
    assert_int_equal(lease_expired(f->l, 11000, ids, 4), 1);
    assert_int_equal(ids[0], 1);
    struct lease_info info;
    assert_int_equal(lease_time_to_live(f->l, 2, 5000, &info, 0, NULL, NULL),
                     0);
    assert_int_equal(info.ttl_s, 16);
    assert_int_equal(lease_renew(f->l, 2, 15000, &ttl, &clear), 0);
    assert_int_equal(ttl, 20);
    assert_false(clear);
    assert_int_equal(lease_expired(f->l, 34999, ids, 4), 1);
    assert_int_equal(lease_expired(f->l, 35000, ids, 4), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(lease_renew(f->l, 1, 40000, &ttl, &clear),
                     CAIRN_ELEASENOTFOUND);
    lease_demote(f->l);
    assert_int_equal(lease_expired(f->l, 1000000, ids, 4), 0);
}

static void test_checkpoint_survives_restart(void **state)
{
    struct fx *f = *state;
    int64_t id, ttl, ids[4], rem[4];
    assert_int_equal(grant(f, 5, 600, 0, &id, &ttl), 0);
    assert_int_equal(grant(f, 6, 30, 0, &id, &ttl), 0);
    lease_promote(f->l, 0, 0);
    assert_int_equal(lease_checkpoints_due(f->l, 59999, ids, rem, 4), 0);
    /* Only the lease longer than an interval gets checkpoints. */
    assert_int_equal(lease_checkpoints_due(f->l, 60000, ids, rem, 4), 1);
    assert_int_equal(ids[0], 5);
    assert_int_equal(rem[0], 540);
    assert_int_equal(lease_checkpoints_due(f->l, 60001, ids, rem, 4), 0);
    begin(f);
    assert_int_equal(lease_checkpoint(f->l, 5, rem[0]), 0);
    assert_int_equal(lease_checkpoint(f->l, 77, 10), 0); /* unknown: ignored */
    commit(f);
    /* Restart; a new leader at t=100s: the lease ends 540 s later, not
     * 600 s (no endless extension) and not before (no shortening). */
    fx_close(f);
    fx_open(f);
    struct lease_info info;
    assert_int_equal(lease_time_to_live(f->l, 5, 0, &info, 0, NULL, NULL), 0);
    assert_int_equal(info.ttl_s, 540);
    assert_int_equal(info.granted_ttl_s, 600);
    lease_promote(f->l, 100000, 0);
    assert_int_equal(lease_expired(f->l, 100000 + 539999, ids, 4), 1);
    assert_int_equal(ids[0], 6);
    assert_int_equal(lease_expired(f->l, 100000 + 540000, ids, 4), 2);
    /* Renewing clears the checkpoint (the caller proposes a 0). */
    bool clear;
    assert_int_equal(lease_renew(f->l, 5, 200000, &ttl, &clear), 0);
    assert_true(clear);
    assert_int_equal(lease_time_to_live(f->l, 5, 200000, &info, 0, NULL, NULL),
                     0);
    assert_int_equal(info.ttl_s, 600);
}

static void test_grant_refused_under_nospace_alarm(void **state)
{
    struct fx *f = *state;
    int64_t id, ttl;
    begin(f);
    assert_int_equal(mvcc_alarm_set(f->s, true), 0);
    assert_int_equal(lease_grant(f->l, 1, 10, 0, &id, &ttl), CAIRN_EQUOTA);
    assert_int_equal(mvcc_alarm_set(f->s, false), 0);
    assert_int_equal(lease_grant(f->l, 1, 10, 0, &id, &ttl), 0);
    commit(f);
}

static void test_promote_spreads_expiries(void **state)
{
    struct fx *f = *state;
    int64_t id, ttl;
    begin(f);
    for (int i = 1; i <= 2000; i++)
        assert_int_equal(lease_grant(f->l, i, 10, 0, &id, &ttl), 0);
    commit(f);
    lease_promote(f->l, 0, 0);
    /* All 2000 would expire at 10 s: at most 750 per second now, none
     * earlier than its TTL, all eventually. */
    static int64_t ids[2000];
    size_t prev = 0;
    for (int64_t t = 9999; t <= 20000; t += 1000) {
        size_t n = lease_expired(f->l, t, ids, 2000);
        assert_true(n >= prev);
        assert_true(n - prev <= 750);
        if (t == 9999)
            assert_int_equal(n, 0);
        prev = n;
    }
    assert_int_equal(prev, 2000);
}

/* The lessor visited or moved at most 100 leases per lease of n since
 * `before` (lease__work_steps), printed for the log. */
static void assert_steps_per_lease(struct fx *f, uint64_t before, int n,
                                   const char *what)
{
    uint64_t steps = lease__work_steps(f->l) - before;
    print_message("%s, %d leases: %llu steps\n", what, n,
                  (unsigned long long)steps);
    assert_true(steps < (uint64_t)n * 100);
}

/* A client fleet dies: N leases of one TTL expire together, and the leader
 * revokes them at its rate, tick by tick, as node's lease_tick does
 * (expired ids, then checkpoints due). The lessor's work must grow as
 * N log N, not N^2 (a scan of every lease per pick, a shift of the sorted
 * array per revoke: ~N^2 steps before). */
static void test_mass_expiry_costs_n_log_n(void **state)
{
    struct fx *f = *state;
    enum { N = 20000, PER_TICK = 100, TICK_MS = 100 };
    int64_t id, ttl;
    begin(f);
    for (int i = 0; i < N; i++)
        assert_int_equal(lease_grant(f->l, 0, 10, 0, &id, &ttl), 0);
    commit(f);
    lease_promote(f->l, 0, 0);
    uint64_t before = lease__work_steps(f->l);
    size_t revoked = 0;
    int64_t last_exp_id = 0;
    for (int64_t now = 0; revoked < N; now += TICK_MS) {
        assert_true(now < 120000); /* 750 a second: all gone by ~37 s */
        int64_t ids[PER_TICK], cids[128], rem[128];
        size_t k = lease_expired(f->l, now, ids, PER_TICK);
        begin(f);
        for (size_t i = 0; i < k; i++) {
            /* Oldest expiry first: with one TTL, lowest id first. */
            assert_true(ids[i] > last_exp_id);
            last_exp_id = ids[i];
            assert_int_equal(lease_revoke(f->l, ids[i]), 0);
        }
        commit(f);
        revoked += k;
        assert_int_equal(lease_checkpoints_due(f->l, now, cids, rem, 128), 0);
    }
    assert_int_equal(lease_list(f->l, NULL, 0), 0);
    assert_steps_per_lease(f, before, N, "mass expiry");
}

/* Leases longer than the checkpoint interval: every tick asks for the
 * checkpoints due, at most 128 each. Ticks with none due cost O(1), and
 * each lease gets its checkpoint, with the right remaining TTL, once per
 * interval (before: every lease visited on every tick). */
static void test_checkpoints_cost_log_n(void **state)
{
    struct fx *f = *state;
    enum { N = 20000, TICK_MS = 100 };
    int64_t id, ttl;
    begin(f);
    for (int i = 0; i < N; i++)
        assert_int_equal(lease_grant(f->l, 0, 600, 0, &id, &ttl), 0);
    commit(f);
    lease_promote(f->l, 0, 0);
    uint64_t before = lease__work_steps(f->l);
    static bool seen[N + 1];
    size_t got = 0;
    for (int64_t now = 0; now < 110000; now += TICK_MS) {
        int64_t cids[128], rem[128];
        size_t c = lease_checkpoints_due(f->l, now, cids, rem, 128);
        for (size_t i = 0; i < c; i++) {
            assert_true(cids[i] >= 1 && cids[i] <= N);
            assert_false(seen[cids[i]]);
            seen[cids[i]] = true;
            /* Each expires at 600 s or later (spread by promote). */
            assert_true(rem[i] * 1000 >= 600000 - now);
        }
        got += c;
    }
    assert_int_equal(got, N);
    assert_steps_per_lease(f, before, N, "checkpoints");
}

/* Grants with ids in any order cost O(1) each (before: a shift of the
 * sorted array), and the list is still in id order, also when the caller
 * has room for fewer ids than there are leases. */
static void test_grants_any_order_and_list(void **state)
{
    struct fx *f = *state;
    enum { N = 20000 };
    int64_t id, ttl;
    uint64_t before = lease__work_steps(f->l);
    begin(f);
    for (int i = N; i >= 1; i--)
        assert_int_equal(lease_grant(f->l, 3 * i, 60, 0, &id, &ttl), 0);
    commit(f);
    assert_steps_per_lease(f, before, N, "grants in descending id order");
    static int64_t ids[N];
    assert_int_equal(lease_list(f->l, ids, N), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(ids[i], 3 * (i + 1));
    memset(ids, 0, sizeof(ids));
    assert_int_equal(lease_list(f->l, ids, 7), N);
    for (int i = 0; i < 7; i++)
        assert_int_equal(ids[i], 3 * (i + 1));
    assert_int_equal(ids[7], 0);
    assert_int_equal(lease_list(f->l, NULL, 0), N);
}

/* Out of memory at every allocation of grants and revokes (the table and
 * the heaps growing and shrinking): the call fails cleanly or succeeds, and
 * the lessor stays consistent; queries that allocate scratch space fall
 * back without it. */
static void test_out_of_memory(void **state)
{
    struct fx *f = *state;
    enum { N = 40 };
    int64_t id, ttl, ids[400];
    lease_promote(f->l, 0, 0);
    for (int64_t i = 1; i <= N; i++) {
        int rc = CAIRN_ENOMEM;
        for (int cd = 0; rc != 0; cd++) {
            assert_true(cd < 100);
            begin(f);
            cairn_mem_fault_set(cd, 1);
            rc = lease_grant(f->l, 100 - i, 10 + i, 0, &id, &ttl);
            cairn_mem_fault_set(-1, 0);
            if (rc == 0) {
                commit(f);
                break;
            }
            assert_int_equal(rc, CAIRN_ENOMEM);
            assert_false(lease_exists(f->l, 100 - i));
            mvcc_batch_abort(f->s);
        }
    }
    cairn_mem_fault_set(0, 1000000);
    assert_int_equal(lease_list(f->l, ids, 300), N);
    assert_int_equal(lease_expired(f->l, 1000000, ids + 100, 300), N);
    cairn_mem_fault_set(-1, 0);
    for (int64_t i = 0; i < N; i++) {
        assert_int_equal(ids[i], 100 - N + i);
        assert_int_equal(ids[100 + i], 100 - 1 - i); /* shortest TTL first */
    }
    for (int64_t i = 1; i <= N; i++) {
        int rc = CAIRN_ENOMEM;
        for (int cd = 0; rc != 0; cd++) {
            assert_true(cd < 100);
            begin(f);
            cairn_mem_fault_set(cd, 1);
            rc = lease_revoke(f->l, 100 - i);
            cairn_mem_fault_set(-1, 0);
            if (rc == 0) {
                commit(f);
                break;
            }
            mvcc_batch_abort(f->s);
            /* mvcc failed before the lessor let go of the lease. */
            assert_true(lease_exists(f->l, 100 - i));
        }
        assert_false(lease_exists(f->l, 100 - i));
        assert_int_equal(lease_list(f->l, NULL, 0), N - i);
        assert_int_equal(lease_expired(f->l, 1000000, ids, 300), N - i);
    }
}

/* ---- a random sequence against a model ---- */

#define ML 24
#define FOREVER_MS INT64_MAX

struct mlease {
    bool used;
    int64_t ttl, rem, expiry, next_cp;
};

struct mlessor {
    struct mlease l[ML + 1]; /* ids 1..ML */
    bool primary;
    int64_t next_auto;
};

static int64_t m_rem_or_ttl(const struct mlease *x)
{
    return x->rem > 0 ? x->rem : x->ttl;
}

static void m_refresh(struct mlease *x, int64_t now, int64_t extend)
{
    x->expiry = now + m_rem_or_ttl(x) * 1000 + extend;
    x->next_cp = m_rem_or_ttl(x) * 1000 > 60000 ? now + 60000 : FOREVER_MS;
}

static void test_random_against_model(void **state)
{
    struct fx *f = *state;
    struct mlessor m = {.next_auto = 1};
    struct prng p;
    prng_seed(&p, 4242);
    int64_t now = 0;
    for (int step = 0; step < 3000; step++) {
        now += (int64_t)prng_below(&p, 4000);
        int64_t id = 1 + (int64_t)prng_below(&p, ML);
        struct mlease *x = &m.l[id];
        uint64_t op = prng_below(&p, 100);
        if (op < 20) {
            bool auto_id = prng_chance(&p, 0.3);
            int64_t ttl = (int64_t)prng_range(&p, 1, 400);
            int64_t want = id;
            if (auto_id) {
                want = m.next_auto;
                while (want <= ML && m.l[want].used)
                    want++;
                if (want > ML)
                    continue; /* keep ids in the model's range */
            }
            int64_t gid = 0, gttl = 0;
            begin(f);
            int rc = lease_grant(f->l, auto_id ? 0 : id, ttl, now, &gid, &gttl);
            commit(f);
            if (m.l[want].used) {
                assert_int_equal(rc, CAIRN_ELEASEEXISTS);
                continue;
            }
            assert_int_equal(rc, 0);
            assert_int_equal(gid, want);
            x = &m.l[want];
            *x = (struct mlease){.used = true,
                                 .ttl = ttl < 5 ? 5 : ttl,
                                 .expiry = FOREVER_MS,
                                 .next_cp = FOREVER_MS};
            assert_int_equal(gttl, x->ttl);
            if (m.primary)
                m_refresh(x, now, 0);
            if (auto_id)
                m.next_auto = want + 1;
        } else if (op < 30) {
            begin(f);
            int rc = lease_revoke(f->l, id);
            commit(f);
            assert_int_equal(rc, x->used ? 0 : CAIRN_ELEASENOTFOUND);
            x->used = false;
        } else if (op < 40) {
            int64_t rem = (int64_t)prng_below(&p, 300);
            begin(f);
            assert_int_equal(lease_checkpoint(f->l, id, rem), 0);
            commit(f);
            if (x->used)
                x->rem = rem;
        } else if (op < 50) {
            int64_t ttl;
            bool clear;
            int rc = lease_renew(f->l, id, now, &ttl, &clear);
            if (!m.primary) {
                assert_int_equal(rc, CAIRN_ENOTLEADER);
            } else if (!x->used || x->expiry <= now) {
                assert_int_equal(rc, CAIRN_ELEASENOTFOUND);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(ttl, x->ttl);
                assert_int_equal(clear, x->rem > 0);
                if (clear) {
                    /* The caller proposes a checkpoint of 0 (etcd's Renew),
                     * so a restart does not bring the old one back. */
                    begin(f);
                    assert_int_equal(lease_checkpoint(f->l, id, 0), 0);
                    commit(f);
                }
                x->rem = 0;
                x->expiry = now + x->ttl * 1000;
                x->next_cp = x->ttl * 1000 > 60000 ? now + 60000 : FOREVER_MS;
            }
        } else if (op < 65) {
            int64_t ids[ML];
            size_t n = lease_expired(f->l, now, ids, ML);
            /* The model's expired leases by expiry, then id. */
            int64_t want[ML];
            size_t k = 0;
            for (int64_t i = 1; m.primary && i <= ML; i++)
                if (m.l[i].used && m.l[i].expiry <= now)
                    want[k++] = i;
            for (size_t a = 1; a < k; a++)
                for (size_t b = a; b > 0; b--) {
                    struct mlease *u = &m.l[want[b - 1]], *v = &m.l[want[b]];
                    if (u->expiry < v->expiry ||
                        (u->expiry == v->expiry && want[b - 1] < want[b]))
                        break;
                    int64_t t = want[b];
                    want[b] = want[b - 1];
                    want[b - 1] = t;
                }
            assert_int_equal(n, k);
            for (size_t i = 0; i < k; i++)
                assert_int_equal(ids[i], want[i]);
        } else if (op < 72) {
            int64_t ids[ML], rem[ML];
            size_t n = lease_checkpoints_due(f->l, now, ids, rem, ML);
            /* Earliest due first: compare in id order. */
            for (size_t a = 1; a < n; a++)
                for (size_t b = a; b > 0 && ids[b - 1] > ids[b]; b--) {
                    int64_t t = ids[b], r = rem[b];
                    ids[b] = ids[b - 1];
                    rem[b] = rem[b - 1];
                    ids[b - 1] = t;
                    rem[b - 1] = r;
                }
            size_t k = 0;
            for (int64_t i = 1; m.primary && i <= ML; i++) {
                struct mlease *y = &m.l[i];
                if (!y->used || y->next_cp > now || y->expiry <= now)
                    continue;
                assert_true(k < n);
                assert_int_equal(ids[k], i);
                int64_t rem_ms = y->expiry - now;
                assert_int_equal(rem[k], (rem_ms + 999) / 1000);
                y->next_cp = rem_ms > 60000 ? now + 60000 : FOREVER_MS;
                k++;
            }
            assert_int_equal(n, k);
        } else if (op < 82) {
            struct lease_info info;
            int rc = lease_time_to_live(f->l, id, now, &info, 0, NULL, NULL);
            if (!x->used) {
                assert_int_equal(rc, CAIRN_ELEASENOTFOUND);
                continue;
            }
            assert_int_equal(rc, 0);
            assert_int_equal(info.granted_ttl_s, x->ttl);
            if (m.primary)
                assert_int_equal(info.ttl_s, x->expiry - now <= 0
                                                 ? -1
                                                 : (x->expiry - now) / 1000);
            else
                assert_int_equal(info.ttl_s, m_rem_or_ttl(x));
        } else if (op < 88) {
            int64_t extend = (int64_t)prng_below(&p, 2000);
            lease_promote(f->l, now, extend);
            m.primary = true;
            for (int64_t i = 1; i <= ML; i++)
                if (m.l[i].used)
                    m_refresh(&m.l[i], now, extend);
        } else if (op < 92) {
            lease_demote(f->l);
            m.primary = false;
            for (int64_t i = 1; i <= ML; i++) {
                m.l[i].expiry = FOREVER_MS;
                m.l[i].next_cp = FOREVER_MS;
            }
        } else if (op < 96) {
            int64_t ids[ML + 1];
            size_t n = lease_list(f->l, ids, ML + 1);
            size_t k = 0;
            for (int64_t i = 1; i <= ML; i++)
                if (m.l[i].used) {
                    assert_true(k < n);
                    assert_int_equal(ids[k++], i);
                }
            assert_int_equal(n, k);
        } else {
            /* Restart: leases, their checkpoints and the next chosen id
             * survive; the clock stops until a promotion. */
            fx_close(f);
            fx_open(f);
            m.primary = false;
            for (int64_t i = 1; i <= ML; i++) {
                m.l[i].expiry = FOREVER_MS;
                m.l[i].next_cp = FOREVER_MS;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grant_errors_and_ids, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_attach_detach_revoke, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expiry_and_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_survives_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grant_refused_under_nospace_alarm,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_promote_spreads_expiries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mass_expiry_costs_n_log_n, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_cost_log_n, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grants_any_order_and_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_against_model, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
