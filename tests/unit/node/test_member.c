/* Node tests driven event by event through the fake environment: one and
 * three members, KV round trips, durability before acknowledgement,
 * ReadIndex batching and single use, leader changes failing waiting
 * proposals, lease expiry on the leader only, snapshots and log compaction
 * with a lagging follower caught up by snapshot, membership changes, and
 * refusals (too many requests, request too large). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>
#include <lmdb.h>

#include "harness.h"
#include "node/node_int.h"
#include "tests_node.h"

static void test_one_member_kv(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 1, NULL);
    struct h_member *m = h_elect(&c, 1);
    struct h_result put, get, ser;
    assert_int_equal(h_put(m, "foo", "bar", &put), 0);
    h_run(&c);
    assert_int_equal(put.calls, 1);
    assert_int_equal(put.err, 0);
    assert_true(put.rev >= 2);
    assert_int_equal(h_get(m, "foo", false, &get), 0);
    h_tick(&c, 1);
    assert_int_equal(get.calls, 1);
    assert_int_equal(get.err, 0);
    assert_string_equal(get.value, "bar");
    assert_int_equal(get.rev, put.rev);
    /* Serializable: answered inside the call. */
    assert_int_equal(h_get(m, "foo", true, &ser), 0);
    assert_int_equal(ser.calls, 1);
    assert_string_equal(ser.value, "bar");

    /* A txn: compare value == "bar", then put baz, else nothing. */
    struct mvcc_compare cmp = {.result = MVCC_CMP_EQUAL,
                               .target = MVCC_CMP_VALUE,
                               .key = (const uint8_t *)"foo",
                               .key_len = 3,
                               .value = (const uint8_t *)"bar",
                               .value_len = 3};
    struct mvcc_op op = {.type = MVCC_OP_PUT};
    op.u.put.key = (const uint8_t *)"foo";
    op.u.put.key_len = 3;
    op.u.put.value = (const uint8_t *)"baz";
    op.u.put.value_len = 3;
    struct mvcc_txn_req txn = {
        .compares = &cmp, .n_compares = 1, .success = &op, .n_success = 1};
    struct h_result tr = {0};
    assert_int_equal(node_txn(m->n, &txn, &tr, h_done), 0);
    h_run(&c);
    assert_int_equal(tr.calls, 1);
    assert_int_equal(tr.err, 0);
    assert_true(tr.succeeded);
    assert_int_equal(tr.rev, put.rev + 1);
    memset(&tr, 0, sizeof(tr));
    assert_int_equal(node_txn(m->n, &txn, &tr, h_done), 0);
    h_run(&c);
    assert_false(tr.succeeded); /* the value is baz now */

    /* Delete, and the key is gone. */
    struct mvcc_delete_req del = {.key = (const uint8_t *)"foo", .key_len = 3};
    struct h_result dr = {0};
    assert_int_equal(node_delete_range(m->n, &del, &dr, h_done), 0);
    h_run(&c);
    assert_int_equal(dr.err, 0);
    assert_int_equal(h_get(m, "foo", true, &ser), 0);
    assert_int_equal(ser.count, 0);

    /* Members: the bootstrap recorded the one member. */
    struct h_result ml = {0};
    assert_int_equal(node_member_list(m->n, &ml, h_done), 0);
    assert_int_equal(ml.n_members, 1);
    /* etcd's Cluster service answers with no revision in its header, though
     * the store has writes (the delete above). */
    assert_int_equal(ml.rev, 0);
    h_cluster_free(&c);
}

/* Nothing is acknowledged before the local WAL sync, also on one member
 * (etcd #14370), and nothing is applied either. */
static void test_no_ack_before_persist(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 1, NULL);
    struct h_member *m = h_elect(&c, 1);
    raft_index applied = node_applied_index(m->n);
    m->hold_persist = true;
    struct h_result put;
    assert_int_equal(h_put(m, "k", "v", &put), 0);
    h_run(&c);
    h_tick(&c, 3);
    assert_int_equal(put.calls, 0);
    assert_true(node_applied_index(m->n) == applied);
    assert_true(m->n_persists > 0);
    m->hold_persist = false;
    h_run(&c);
    assert_int_equal(put.calls, 1);
    assert_int_equal(put.err, 0);
    assert_true(node_applied_index(m->n) > applied);
    h_cluster_free(&c);
}

/* node_waits_on_persist, which lets the server skip waking its loop for
 * a leader's own sync while no follower has answered: false with
 * nothing in flight or only the followers' answers missing, true once
 * only this member's sync holds the commit, on one member and on a
 * follower. */
static void test_waits_on_persist(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    h_tick(&c, 2);
    h_run(&c);
    assert_false(node_waits_on_persist(l->n)); /* nothing in flight */
    l->hold_persist = true;
    struct h_result p;
    assert_int_equal(h_put(l, "a", "1", &p), 0);
    assert_int_equal(node_flush_proposals(l->n), 0);
    assert_true(l->n_persists > 0);
    assert_false(node_waits_on_persist(l->n)); /* no answer yet */
    h_run(&c); /* the followers sync and answer */
    assert_int_equal(p.calls, 0);
    assert_true(node_waits_on_persist(l->n));
    l->hold_persist = false;
    h_run(&c);
    assert_int_equal(p.calls, 1);
    assert_false(node_waits_on_persist(l->n));

    struct h_member *f = &c.m[1];
    f->hold_persist = true;
    assert_int_equal(h_put(l, "b", "2", &p), 0);
    h_run(&c);
    assert_true(f->n_persists > 0);
    assert_true(node_waits_on_persist(f->n)); /* its answer waits */
    f->hold_persist = false;
    h_run(&c);
    h_cluster_free(&c);

    h_cluster_init(&c, 1, NULL);
    l = h_elect(&c, 1);
    l->hold_persist = true;
    assert_int_equal(h_put(l, "a", "1", &p), 0);
    h_run(&c);
    assert_true(node_waits_on_persist(l->n)); /* alone: always */
    l->hold_persist = false;
    h_run(&c);
    assert_false(node_waits_on_persist(l->n));
    h_cluster_free(&c);
}

static void test_three_members_kv(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *f = &c.m[2];
    assert_true(node_leader(f->n) == 1);
    struct h_result p1, p2, g;
    assert_int_equal(h_put(l, "a", "1", &p1), 0);
    assert_int_equal(h_put(f, "b", "2", &p2), 0); /* forwarded */
    h_run(&c);
    assert_int_equal(p1.calls, 1);
    assert_int_equal(p1.err, 0);
    assert_int_equal(p2.calls, 1);
    assert_int_equal(p2.err, 0);
    assert_int_equal(h_get(f, "a", false, &g), 0);
    h_run(&c);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.value, "1");
    h_tick(&c, 2);
    uint32_t h1 = h_hash_kv(&c.m[0]);
    assert_true(h1 == h_hash_kv(&c.m[1]));
    assert_true(h1 == h_hash_kv(&c.m[2]));
    struct h_result ml = {0};
    assert_int_equal(node_member_list(f->n, &ml, h_done), 0);
    assert_int_equal(ml.n_members, 3);
    h_cluster_free(&c);
}

/* A put costs each member one persist, its entry's: the commit index that
 * follows it alone is not written on its own (etcd's MustSync), but goes
 * with the next persist, or with a tick's once the member is idle. */
static void test_commit_alone_waits_for_a_persist(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    h_tick(&c, 2); /* whatever the election left owed is written */
    uint64_t before[3];
    for (size_t i = 0; i < 3; i++)
        before[i] = c.m[i].persists_issued;
    struct h_result p;
    assert_int_equal(h_put(l, "a", "1", &p), 0);
    h_run(&c);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.err, 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(c.m[i].persists_issued - before[i], 1);
    /* The next tick writes the commit that covers the put everywhere. */
    raft_index put_index = node_applied_index(l->n);
    h_tick(&c, 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(c.m[i].persists_issued - before[i], 2);
        assert_true(c.m[i].hs_only_persists > 0);
        assert_true(c.m[i].last_persisted_commit >= put_index);
    }
    /* Idle members write nothing more. */
    h_tick(&c, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(c.m[i].persists_issued - before[i], 2);
    h_cluster_free(&c);
}

/* Reads waiting together share one round; a read that arrives while a
 * round is out waits for the next one (PITFALLS: etcd #20418). */
static void test_read_index_batching(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    h_elect(&c, 1);
    struct h_member *f = &c.m[1];
    struct h_result r[4];
    uint64_t before = f->sent_by_type[RAFT_MSG_READ_INDEX];
    for (int i = 0; i < 3; i++)
        assert_int_equal(h_get(f, "x", false, &r[i]), 0);
    /* One round asked for all three. */
    assert_true(f->sent_by_type[RAFT_MSG_READ_INDEX] == before + 1);
    /* A fourth read while that round is out. */
    assert_int_equal(h_get(f, "x", false, &r[3]), 0);
    assert_true(f->sent_by_type[RAFT_MSG_READ_INDEX] == before + 1);
    h_run(&c);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, 0);
    }
    /* The fourth needed a round of its own. */
    assert_true(f->sent_by_type[RAFT_MSG_READ_INDEX] == before + 2);

    /* A write acknowledged before a read starts is seen by it. */
    struct h_result p, g;
    assert_int_equal(h_put(&c.m[0], "x", "new", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    f->hold_apply = true;
    assert_int_equal(h_get(f, "x", false, &g), 0);
    h_run(&c);
    /* f may lag in applying: the read waits for it rather than read old
     * data. */
    f->hold_apply = false;
    h_run(&c);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.value, "new");
    h_cluster_free(&c);
}

/* A proposal on a leader that lost its quorum fails with LEADERCHANGED
 * once another member leads; its entry is overwritten. */
static void test_leader_change_fails_proposals(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *old = h_elect(&c, 1);
    old->cut = true;
    struct h_result p;
    assert_int_equal(h_put(old, "lost", "1", &p), 0);
    h_run(&c);
    assert_int_equal(p.calls, 0);
    /* The others elect a new leader. */
    struct h_member *nl = NULL;
    for (int t = 0; t < 100 && nl == NULL; t++) {
        h_tick(&c, 1);
        for (size_t i = 1; i < 3; i++)
            if (node_is_leader(c.m[i].n))
                nl = &c.m[i];
    }
    assert_non_null(nl);
    struct h_result q;
    assert_int_equal(h_put(nl, "kept", "2", &q), 0);
    h_run(&c);
    assert_int_equal(q.err, 0);
    old->cut = false;
    h_tick(&c, 5);
    assert_int_equal(p.calls, 1);
    assert_true(p.err == CAIRN_ELEADERCHANGED || p.err == CAIRN_ETIMEOUT);
    /* Overwritten: nobody has the lost key. */
    h_tick(&c, 2);
    for (size_t i = 0; i < 3; i++) {
        struct h_result g;
        assert_int_equal(h_get(&c.m[i], "lost", true, &g), 0);
        assert_int_equal(g.count, 0);
    }
    h_cluster_free(&c);
}

/* Leases expire by the leader's clock only; followers never run it. */
static void test_lease_expiry_on_leader(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_result g = {0};
    assert_int_equal(node_lease_grant(l->n, 0, 5, &g, h_done), 0);
    h_run(&c);
    assert_int_equal(g.err, 0);
    assert_true(g.lease_id != 0);
    struct mvcc_put_req p = {.key = (const uint8_t *)"lk",
                             .key_len = 2,
                             .value = (const uint8_t *)"v",
                             .value_len = 1,
                             .lease = g.lease_id};
    struct h_result pr = {0};
    assert_int_equal(node_put(c.m[2].n, &p, &pr, h_done), 0);
    h_run(&c);
    assert_int_equal(pr.err, 0);
    for (size_t i = 0; i < 3; i++) {
        struct lessor *ls = node_applier_lessor(c.m[i].ap);
        assert_true(lease_exists(ls, g.lease_id));
        assert_true(lease_is_primary(ls) == (i == 0));
    }
    /* Keep-alive: only the leader renews. */
    struct h_result ka = {0};
    assert_int_equal(node_lease_keepalive(c.m[1].n, g.lease_id, &ka, h_done),
                     CAIRN_ENOTLEADER);
    assert_int_equal(node_lease_keepalive(l->n, g.lease_id, &ka, h_done), 0);
    h_run(&c);
    assert_int_equal(ka.calls, 1);
    assert_int_equal(ka.err, 0);
    /* Past the TTL the leader revokes; the key goes with the lease. */
    h_tick(&c, 60);
    for (size_t i = 0; i < 3; i++) {
        assert_false(lease_exists(node_applier_lessor(c.m[i].ap), g.lease_id));
        struct h_result r;
        assert_int_equal(h_get(&c.m[i], "lk", true, &r), 0);
        assert_int_equal(r.count, 0);
    }
    /* Followers proposed nothing: every revoke came from the leader. */
    assert_true(c.m[1].sent_by_type[RAFT_MSG_PROP] == 0);
    assert_true(c.m[2].sent_by_type[RAFT_MSG_PROP] == 1); /* the put */
    h_cluster_free(&c);
}

/* A keep-alive is answered only once a quorum confirmed the leadership
 * (etcd's ensureLeadership, etcd issue 15247): a leader cut off from its
 * peers (stuck, or paused while the others elected a new one) must not
 * renew a lease by its own stale clock, which a new leader would expire
 * while the client believes it kept alive. */
static void test_keepalive_confirms_leadership(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_result g = {0};
    assert_int_equal(node_lease_grant(l->n, 0, 5, &g, h_done), 0);
    h_run(&c);
    assert_int_equal(g.err, 0);
    l->cut = true;
    struct h_result ka = {0};
    assert_int_equal(node_lease_keepalive(l->n, g.lease_id, &ka, h_done), 0);
    h_run(&c);
    assert_int_equal(ka.calls, 0); /* no quorum heard from: no renewal */
    l->cut = false;
    h_tick(&c, 12); /* the round is asked again, now answered */
    assert_int_equal(ka.calls, 1);
    assert_int_equal(ka.err, 0);
    assert_int_equal(ka.ttl_s, 5);
    /* Cut off until the others elect a new leader: the keep-alive waiting
     * on the old one fails rather than renews. */
    l->cut = true;
    struct h_result ka2 = {0};
    assert_int_equal(node_lease_keepalive(l->n, g.lease_id, &ka2, h_done), 0);
    h_tick(&c, 40);
    assert_true(ka2.calls == 0 || ka2.err != 0);
    l->cut = false;
    h_tick(&c, 5); /* it hears of the new term and steps down */
    assert_false(node_is_leader(l->n));
    assert_int_equal(ka2.calls, 1);
    assert_int_not_equal(ka2.err, 0);
    h_cluster_free(&c);
}

/* Thousands of keep-alives and reads waiting on a leader: each arrival
 * costs O(1), not a walk of every waiter (10,000 keep-alives made a
 * leader's loop turns last 0.5 s, 70% of it in such walks, long enough on
 * a loaded machine for its followers to elect another), and everything
 * waiting is still served, each read once its index is applied. */
static void test_many_keepalives_cost_o1_each(void **state)
{
    (void)state;
    enum { N = 4000 };
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_result g = {0};
    assert_int_equal(node_lease_grant(l->n, 0, 60, &g, h_done), 0);
    h_run(&c);
    assert_int_equal(g.err, 0);
    static struct h_result ka[N];
    memset(ka, 0, sizeof ka);
    uint64_t steps0 = node__read_walk_steps(l->n);
    /* The first one starts a round; the others arrive while it is out. */
    for (int i = 0; i < N; i++)
        assert_int_equal(node_lease_keepalive(l->n, g.lease_id, &ka[i], h_done),
                         0);
    assert_true(node__read_walk_steps(l->n) - steps0 < 4 * N);
    h_run(&c);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ka[i].calls, 1);
        assert_int_equal(ka[i].err, 0);
        assert_int_equal(ka[i].ttl_s, 60);
    }
    /* A read whose round answers past the applied index waits for the
     * apply, while later keep-alives come and go. */
    l->hold_apply = true;
    struct h_result p = {0}, r = {0}, k2 = {0};
    assert_int_equal(h_put(l, "k", "v1", &p), 0);
    h_run(&c);
    assert_int_equal(h_get(l, "k", false, &r), 0);
    h_run(&c);
    assert_int_equal(r.calls, 0);
    assert_int_equal(node_lease_keepalive(l->n, g.lease_id, &k2, h_done), 0);
    h_run(&c);
    assert_int_equal(k2.calls, 0); /* it waits for the commit it saw */
    l->hold_apply = false;
    h_run(&c);
    assert_int_equal(p.calls, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.value, "v1");
    assert_int_equal(k2.calls, 1);
    assert_int_equal(k2.err, 0);
    h_cluster_free(&c);
}

/* Every snapshot_count applied entries a snapshot; the log keeps a tail;
 * a follower cut off past the tail catches up by snapshot. */
static void test_snapshot_and_compaction(void **state)
{
    (void)state;
    struct node_config base = {.snapshot_count = 20,
                               .snapshot_catchup_entries = 5};
    struct h_cluster c;
    h_cluster_init(&c, 3, &base);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *lag = &c.m[2];
    lag->cut = true;
    char k[32];
    for (int i = 0; i < 70; i++) {
        struct h_result p;
        snprintf(k, sizeof(k), "key%03d", i);
        assert_int_equal(h_put(l, k, "v", &p), 0);
        h_run(&c);
        assert_int_equal(p.err, 0);
    }
    assert_true(l->snapshots_done >= 3);
    assert_true(l->last_snapshot_index >= 60);
    lag->cut = false;
    uint64_t snaps_before = l->sent_by_type[RAFT_MSG_SNAP];
    h_tick(&c, 10);
    assert_true(l->sent_by_type[RAFT_MSG_SNAP] > snaps_before);
    assert_true(node_applied_index(lag->n) == node_applied_index(l->n));
    assert_true(h_hash_kv(lag) == h_hash_kv(l));
    struct h_result g;
    assert_int_equal(h_get(lag, "key069", true, &g), 0);
    assert_string_equal(g.value, "v");
    /* It keeps following after the snapshot. */
    struct h_result p;
    assert_int_equal(h_put(lag, "after", "x", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    assert_true(h_hash_kv(lag) == h_hash_kv(l));
    h_cluster_free(&c);
}

/* Puts key%03d (i) with a 40-byte value through l and runs the cluster
 * until it is answered: the cache-bound tests' one write. */
static void put_numbered(struct h_cluster *c, struct h_member *l, int i)
{
    char k[32];
    struct h_result p;
    snprintf(k, sizeof(k), "key%03d", i);
    assert_int_equal(
        h_put(l, k, "0123456789012345678901234567890123456789", &p), 0);
    h_run(c);
    assert_int_equal(p.err, 0);
}

/* Three members whose log caches are bounded at bound bytes, with a
 * catch-up window of 5 entries and no snapshot by count; returns the
 * elected leader. */
static struct h_member *open_cache_cluster(struct h_cluster *c, uint64_t bound)
{
    struct node_config base = {.snapshot_count = 100000,
                               .snapshot_catchup_entries = 5,
                               .log_cache_bytes = bound};
    h_cluster_init(c, 3, &base);
    return h_elect(c, 1);
}

/* The log cache is bounded by bytes without waiting for snapshot_count:
 * live followers are never sent a snapshot for it, and one cut off past
 * the window catches up by snapshot once healed, then keeps following. */
static void test_log_cache_bounded_by_bytes(void **state)
{
    (void)state;
    enum { BOUND = 4096 };
    struct h_cluster c;
    struct h_member *l = open_cache_cluster(&c, BOUND);
    for (int i = 0; i < 300; i++) {
        if (i == 150)
            c.m[2].cut = true;
        put_numbered(&c, l, i);
        for (size_t j = 0; j < 3; j++)
            assert_true(node_log_cache_bytes(c.m[j].n) <= BOUND + BOUND / 4);
        if (i == 149) /* both followers were live: no snapshot needed */
            assert_int_equal(l->sent_by_type[RAFT_MSG_SNAP], 0);
    }
    assert_int_equal(l->snapshots_done, 0);
    struct h_member *lag = &c.m[2];
    lag->cut = false;
    h_tick(&c, 10);
    assert_true(l->sent_by_type[RAFT_MSG_SNAP] > 0);
    assert_true(node_applied_index(lag->n) == node_applied_index(l->n));
    assert_true(h_hash_kv(lag) == h_hash_kv(l));
    struct h_result p;
    assert_int_equal(h_put(lag, "after", "x", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    assert_true(h_hash_kv(lag) == h_hash_kv(l));
    assert_true(node_log_cache_bytes(lag->n) <= BOUND + BOUND / 4);
    h_cluster_free(&c);
}

/* With every follower live and caught up, the cache keeps the catch-up
 * window plus at most a quarter of the bound (and a batch) between trims,
 * not whatever accumulates up to the bound. */
static void test_log_cache_trimmed_before_bound(void **state)
{
    (void)state;
    enum { BOUND = 8192 };
    struct h_cluster c;
    struct h_member *l = open_cache_cluster(&c, BOUND);
    uint64_t most = 0;
    for (int i = 0; i < 300; i++) {
        put_numbered(&c, l, i);
        for (size_t j = 0; j < 3; j++) {
            uint64_t b = node_log_cache_bytes(c.m[j].n);
            most = b > most ? b : most;
        }
    }
    /* 5 entries of about 150 bytes each, a quarter of the bound, one more
     * put: well under half the bound. */
    assert_true(most > 0);
    assert_true(most <= BOUND / 2);
    assert_int_equal(l->sent_by_type[RAFT_MSG_SNAP], 0);
    h_cluster_free(&c);
}

/* A follower whose received snapshot is not installed yet (its restore
 * batch held) persists the entries after it and reports them at once: the
 * raft core keeps them (the node used to hold those reports back until the
 * install, for a core bug since fixed), so nothing is lost once the restore
 * runs. */
static void test_entries_persisted_before_snapshot_installed(void **state)
{
    (void)state;
    struct node_config base = {.snapshot_count = 10,
                               .snapshot_catchup_entries = 3};
    struct h_cluster c;
    h_cluster_init(&c, 3, &base);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *lag = &c.m[2];
    lag->cut = true;
    char k[32];
    struct h_result p;
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof(k), "key%03d", i);
        assert_int_equal(h_put(l, k, "v", &p), 0);
        h_run(&c);
        assert_int_equal(p.err, 0);
    }
    assert_true(l->last_snapshot_index >= 30);
    lag->cut = false;
    lag->hold_apply = true;
    uint64_t snaps = l->sent_by_type[RAFT_MSG_SNAP];
    uint64_t persisted = lag->entries_persisted;
    h_tick(&c, 10);
    assert_true(l->sent_by_type[RAFT_MSG_SNAP] > snaps);
    /* More writes while the restore waits: the follower persists them. */
    for (int i = 40; i < 45; i++) {
        snprintf(k, sizeof(k), "key%03d", i);
        assert_int_equal(h_put(l, k, "w", &p), 0);
        h_run(&c);
        assert_int_equal(p.err, 0);
    }
    h_tick(&c, 2);
    assert_true(lag->entries_persisted > persisted);
    assert_true(lag->n_batches > 0); /* the restore, still held */
    lag->hold_apply = false;
    h_tick(&c, 5);
    assert_true(node_applied_index(lag->n) == node_applied_index(l->n));
    assert_true(h_hash_kv(lag) == h_hash_kv(l));
    struct h_result g;
    assert_int_equal(h_get(lag, "key044", true, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.value, "w");
    assert_int_equal(h_put(lag, "after", "x", &p), 0);
    h_run(&c);
    h_tick(&c, 2);
    assert_int_equal(p.err, 0);
    assert_true(h_hash_kv(lag) == h_hash_kv(l));
    h_cluster_free(&c);
}

static void test_membership(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct node_member nm = {.n_peer_urls = 1};
    strcpy(nm.peer_urls[0], "http://127.0.0.1:9999");
    struct h_result a = {0};
    /* A peer URL in use is refused. */
    struct node_member dup = {.n_peer_urls = 1};
    strcpy(dup.peer_urls[0], "http://127.0.0.1:2390");
    assert_int_equal(node_member_add(l->n, &dup, &a, h_done),
                     CAIRN_EPEERURLEXISTS);
    assert_int_equal(node_member_add(l->n, &nm, &a, h_done), 0);
    h_run(&c);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, 0);
    assert_int_equal(a.n_members, 4);
    assert_true(a.member_id != 0);
    /* The new member joins with an empty log: the leader sends a
     * snapshot. */
    struct h_member *j = h_member_add(&c, a.member_id);
    h_member_start(j, false);
    h_tick(&c, 5);
    assert_true(node_leader(j->n) == 1);
    assert_true(node_applied_index(j->n) == node_applied_index(l->n));
    struct h_result ml = {0};
    assert_int_equal(node_member_list(j->n, &ml, h_done), 0);
    assert_int_equal(ml.n_members, 4);
    /* Remove member 3: the others list three, member 3 stops. */
    struct h_result rm = {0};
    assert_int_equal(node_member_remove(l->n, 12345, &rm, h_done),
                     CAIRN_EMEMBERNOTFOUND);
    assert_int_equal(node_member_remove(l->n, 3, &rm, h_done), 0);
    h_run(&c);
    h_tick(&c, 2);
    assert_int_equal(rm.calls, 1);
    assert_int_equal(rm.err, 0);
    assert_int_equal(rm.n_members, 3);
    int err = 0;
    assert_true(node_stopped(c.m[2].n, &err));
    assert_int_equal(err, CAIRN_EREMOVED);
    /* A member told by its peers that it was removed stops too. */
    struct h_result w;
    c.m[1].cut = true;
    assert_int_equal(h_put(&c.m[1], "x", "1", &w), 0);
    assert_int_equal(node_report_removed(c.m[1].n), 0);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.err, CAIRN_ESTOPPED);
    assert_true(node_stopped(c.m[1].n, &err));
    assert_int_equal(err, CAIRN_EREMOVED);
    struct h_result p;
    assert_int_equal(h_put(j, "from-new", "1", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    assert_true(h_hash_kv(j) == h_hash_kv(l));
    h_cluster_free(&c);
}

static void test_refusals(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 1, NULL);
    struct h_result r;
    /* No leader yet. */
    assert_int_equal(h_put(&c.m[0], "k", "v", &r), CAIRN_ENOLEADER);
    struct h_member *m = h_elect(&c, 1);
    /* Too large. */
    size_t big = NODE_MAX_REQUEST_BYTES_DEFAULT + 1;
    char *v = malloc(big + 1);
    memset(v, 'x', big);
    v[big] = 0;
    assert_int_equal(h_put(m, "k", v, &r), CAIRN_ETOOBIG);
    free(v);
    assert_int_equal(r.calls, 0);
    /* Apply lagging commit by more than 5,000 entries. */
    m->hold_apply = true;
    static struct h_result many[NODE_MAX_APPLY_LAG + 2];
    int refused = 0;
    for (int i = 0; i < NODE_MAX_APPLY_LAG + 2; i++) {
        int rc = h_put(m, "k", "v", &many[i]);
        if (rc == CAIRN_ETOOMANYREQUESTS)
            refused++;
        else
            assert_int_equal(rc, 0);
        h_run(&c);
    }
    assert_true(refused > 0);
    m->hold_apply = false;
    h_run(&c);
    for (int i = 0; i < NODE_MAX_APPLY_LAG + 2 - refused; i++)
        assert_int_equal(many[i].err, 0);
    assert_int_equal(h_put(m, "k", "v", &r), 0);
    h_run(&c);
    assert_int_equal(r.err, 0);
    h_cluster_free(&c);
}

/* A linearizable read without a reachable leader times out; so does a
 * proposal that cannot commit. */
static void test_timeouts(void **state)
{
    (void)state;
    struct node_config base = {.request_timeout_ms = 2000};
    struct h_cluster c;
    h_cluster_init(&c, 3, &base);
    struct h_member *l = h_elect(&c, 1);
    c.m[1].cut = true;
    c.m[2].cut = true;
    struct h_result g, p;
    assert_int_equal(h_get(l, "k", false, &g), 0);
    assert_int_equal(h_put(l, "k", "v", &p), 0);
    h_tick(&c, 5);
    assert_int_equal(g.calls, 0);
    assert_int_equal(p.calls, 0);
    h_tick(&c, 20);
    assert_int_equal(g.calls, 1);
    assert_int_equal(p.calls, 1);
    /* Timed out, or failed because the leader stepped down (CheckQuorum)
     * meanwhile. */
    assert_true(g.err == CAIRN_ETIMEOUT || g.err == CAIRN_ELEADERCHANGED);
    assert_true(p.err == CAIRN_ETIMEOUT || p.err == CAIRN_ELEADERCHANGED);
    h_cluster_free(&c);
}

/* Move-leader hands over; the new leader renews leases (etcd's Promote),
 * so a lease kept alive does not expire across the change, and expires
 * once keep-alives stop. */
static void test_move_leader_and_lease_promote(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_result g = {0};
    assert_int_equal(node_lease_grant(l->n, 0, 3, &g, h_done), 0);
    h_run(&c);
    assert_int_equal(g.err, 0);
    h_tick(&c, 20); /* 2 s of the 3 s TTL */
    struct h_result mv = {0};
    assert_int_equal(node_move_leader(c.m[1].n, 3, &mv, h_done),
                     CAIRN_ENOTLEADER);
    assert_int_equal(node_move_leader(l->n, 3, &mv, h_done), 0);
    h_tick(&c, 3);
    assert_int_equal(mv.calls, 1);
    assert_int_equal(mv.err, 0);
    struct h_member *nl = &c.m[2];
    assert_true(node_is_leader(nl->n));
    assert_true(lease_is_primary(node_applier_lessor(nl->ap)));
    assert_false(lease_is_primary(node_applier_lessor(l->ap)));
    /* 2 more seconds: past the grant's TTL, within TTL + election timeout
     * of the promotion. */
    h_tick(&c, 20);
    assert_true(lease_exists(node_applier_lessor(nl->ap), g.lease_id));
    struct h_result ka = {0};
    assert_int_equal(node_lease_keepalive(nl->n, g.lease_id, &ka, h_done), 0);
    h_run(&c);
    assert_int_equal(ka.err, 0);
    /* No more keep-alives: gone after its TTL (and the revoke). */
    h_tick(&c, 40);
    for (size_t i = 0; i < 3; i++)
        assert_false(lease_exists(node_applier_lessor(c.m[i].ap), g.lease_id));
    h_cluster_free(&c);
}

#ifdef CAIRN_FAULTS
/* Each test-only switch really breaks what it names, so the simulator's
 * checks have something to catch. */
static void test_faults_break_the_node(void **state)
{
    (void)state;
    /* ack_before_persist: acknowledged while the WAL write is held. */
    struct node_config base = {.faults.ack_before_persist = true};
    struct h_cluster c;
    h_cluster_init(&c, 1, &base);
    struct h_member *m = h_elect(&c, 1);
    m->hold_persist = true;
    struct h_result p;
    assert_int_equal(h_put(m, "k", "v", &p), 0);
    h_run(&c);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.err, 0);
    m->hold_persist = false;
    h_run(&c);
    h_cluster_free(&c);

    /* read_before_applied: a follower that has not applied the write
     * answers a linearizable read without it. */
    memset(&base, 0, sizeof(base));
    base.faults.read_before_applied = true;
    h_cluster_init(&c, 3, &base);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *f = &c.m[2];
    f->hold_apply = true;
    assert_int_equal(h_put(l, "k", "new", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    struct h_result g;
    assert_int_equal(h_get(f, "k", false, &g), 0);
    h_run(&c);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.count, 0); /* stale */
    f->hold_apply = false;
    h_run(&c);
    h_cluster_free(&c);

    /* reuse_read_index: a read after the write is served from the answer
     * of a round asked before it. */
    memset(&base, 0, sizeof(base));
    base.faults.reuse_read_index = true;
    h_cluster_init(&c, 3, &base);
    l = h_elect(&c, 1);
    f = &c.m[2];
    assert_int_equal(h_get(f, "k", false, &g), 0);
    h_run(&c);
    assert_int_equal(g.calls, 1);
    f->hold_apply = true;
    assert_int_equal(h_put(l, "k", "new", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    assert_int_equal(h_get(f, "k", false, &g), 0);
    h_run(&c);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.count, 0); /* stale */
    f->hold_apply = false;
    h_run(&c);
    h_cluster_free(&c);

    /* expire_leases_on_follower: followers run the clock too. */
    memset(&base, 0, sizeof(base));
    base.faults.expire_leases_on_follower = true;
    h_cluster_init(&c, 3, &base);
    h_elect(&c, 1);
    assert_true(lease_is_primary(node_applier_lessor(c.m[1].ap)));
    h_cluster_free(&c);
}

/* Without the switches, the same scenarios stay correct. */
static void test_faults_off_is_correct(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *f = &c.m[2];
    struct h_result g, p;
    assert_int_equal(h_get(f, "k", false, &g), 0);
    h_run(&c);
    f->hold_apply = true;
    assert_int_equal(h_put(l, "k", "new", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    assert_int_equal(h_get(f, "k", false, &g), 0);
    h_run(&c);
    assert_int_equal(g.calls, 0); /* waits for the apply */
    f->hold_apply = false;
    h_run(&c);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.value, "new");
    assert_false(lease_is_primary(node_applier_lessor(c.m[1].ap)));
    h_cluster_free(&c);
}
#endif

/* A member persisting through a real WAL (on the in-memory file system)
 * restarts from it and its store: snapshots recorded, segments released,
 * entries after mvcc's consistent index replayed, nothing acknowledged
 * lost; a follower restarted the same way catches up. */
static void test_restart_from_wal(void **state)
{
    (void)state;
    struct node_config base = {.snapshot_count = 10,
                               .snapshot_catchup_entries = 3};
    struct h_cluster c;
    h_cluster_init_wal(&c, 3, &base, true);
    struct h_member *l = h_elect(&c, 1);
    char k[32];
    for (int i = 0; i < 40; i++) {
        struct h_result p;
        snprintf(k, sizeof(k), "key%03d", i);
        assert_int_equal(h_put(l, k, "v", &p), 0);
        h_run(&c);
        assert_int_equal(p.err, 0);
    }
    assert_true(l->snapshots_done >= 3);
    uint32_t before = h_hash_kv(l);
    /* Restart a follower: it recovers and keeps up. */
    struct h_member *f = &c.m[1];
    raft_index f_applied = node_applied_index(f->n);
    h_member_restart(f);
    assert_true(node_applied_index(f->n) == f_applied);
    struct h_result p;
    assert_int_equal(h_put(l, "after-f", "1", &p), 0);
    h_run(&c);
    h_tick(&c, 2);
    assert_int_equal(p.err, 0);
    assert_true(h_hash_kv(f) == h_hash_kv(l));
    /* Restart the leader: another member leads, the data stays. */
    h_member_restart(l);
    struct h_member *nl = h_leader(&c);
    assert_non_null(nl);
    h_tick(&c, 3);
    struct h_result g;
    assert_int_equal(h_get(nl, "key039", false, &g), 0);
    h_tick(&c, 1);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.value, "v");
    assert_int_equal(h_put(nl, "after-l", "2", &p), 0);
    h_run(&c);
    h_tick(&c, 2);
    assert_int_equal(p.err, 0);
    for (size_t i = 0; i < 3; i++)
        assert_true(h_hash_kv(&c.m[i]) == h_hash_kv(nl));
    assert_true(h_hash_kv(nl) != before);
    h_cluster_free(&c);
}

/* A ReadIndex answer meant for a member's previous life (its request was
 * in flight when it crashed) must not answer the restarted member's round:
 * a round numbered from 1 again in each life took it, and served a
 * linearizable read below a write acknowledged before the read began (the
 * whole-member simulation's seed 6004631). */
static void test_read_answer_of_previous_life_ignored(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init_wal(&c, 3, NULL, true);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *f = &c.m[1];
    struct h_result p, g;
    assert_int_equal(h_put(l, "x", "old", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    raft_index old_index = node_applied_index(f->n);
    h_member_restart(f);
    /* The new value is committed and acknowledged; f holds the entry but
     * has not applied it. */
    f->hold_apply = true;
    assert_int_equal(h_put(l, "x", "new", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    assert_true(node_applied_index(f->n) == old_index);
    assert_int_equal(h_get(f, "x", false, &g), 0);
    /* The leader's answer to a round f started before its restart, late:
     * a low index, and the context its first round in that life had. */
    struct raft_message stale = {.type = RAFT_MSG_READ_INDEX_RESP,
                                 .from = l->id,
                                 .to = f->id,
                                 .term = node_term(l->n),
                                 .index = old_index,
                                 .ctx = 1};
    node_receive(f->n, &stale);
    h_run(&c);
    assert_int_equal(g.calls, 0); /* waits for the new entry to apply */
    f->hold_apply = false;
    h_run(&c);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, 0);
    assert_string_equal(g.value, "new");
    h_cluster_free(&c);
}

static uint32_t voters_of(struct h_member *m)
{
    struct raft_status st;
    raft_status_get(node_raft(m->n), &st);
    return st.conf.n_voters;
}

/* A restart whose store is ahead of the WAL's snapshot, with a member
 * removal in between: the next snapshot must record the configuration as
 * of its index, not the older snapshot's, or the restart after it brings
 * the removed member back as a voter (the whole-member simulation's seed
 * 6005924: the one member left waited for two removed voters' votes). */
static void test_snapshot_conf_after_restart(void **state)
{
    (void)state;
    struct node_config base = {.snapshot_count = 10,
                               .snapshot_catchup_entries = 3};
    struct h_cluster c;
    h_cluster_init_wal(&c, 3, &base, true);
    struct h_member *l = h_elect(&c, 1);
    struct h_result rm = {0};
    assert_int_equal(node_member_remove(l->n, 3, &rm, h_done), 0);
    h_run(&c);
    h_tick(&c, 2);
    assert_int_equal(rm.err, 0);
    assert_int_equal(voters_of(l), 2);
    /* Its first snapshot after the removal is lost with a restart: the
     * restarted member takes it again after its next batch, here a
     * defragmentation, before applying any entry. */
    l->hold_snap = true;
    char k[32];
    for (int i = 0; i < 12 && l->n_snaps == 0; i++) {
        struct h_result p;
        snprintf(k, sizeof(k), "key%03d", i);
        assert_int_equal(h_put(l, k, "v", &p), 0);
        h_run(&c);
        assert_int_equal(p.err, 0);
    }
    assert_int_equal(l->snapshots_done, 0);
    assert_true(l->n_snaps > 0);
    h_member_restart(l);
    struct h_result d = {0};
    assert_int_equal(node_defragment(l->n, &d, h_done), 0);
    h_run(&c);
    assert_int_equal(d.err, 0);
    assert_int_equal(l->snapshots_done, 1);
    h_member_restart(l);
    assert_int_equal(voters_of(l), 2);
    h_cluster_free(&c);
}

/* A failed WAL sync stops the member: waiting requests fail, new ones are
 * refused, nothing is retried (PITFALLS: CockroachDB #37102). */
static void test_persist_failure_stops(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 1, NULL);
    struct h_member *m = h_elect(&c, 1);
    m->hold_persist = true;
    struct h_result p;
    assert_int_equal(h_put(m, "k", "v", &p), 0);
    h_run(&c);
    assert_true(m->n_persists > 0);
    uint64_t seq = m->persists[m->n_persists - 1]->seq;
    m->n_persists = 0;
    assert_int_equal(node_persisted(m->n, seq, CAIRN_ESYNC), 0);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.err, CAIRN_ESTOPPED);
    int err = 0;
    assert_true(node_stopped(m->n, &err));
    assert_int_equal(err, CAIRN_ESYNC);
    struct h_result q;
    assert_int_equal(h_put(m, "k2", "v", &q), CAIRN_ESTOPPED);
    assert_int_equal(node_tick(m->n), CAIRN_ESTOPPED);
    h_cluster_free(&c);
}

/* --force-new-cluster's plan (force.c) on a log that is hard to get into
 * from outside: a joint snapshot configuration with a learner, a learner
 * added and a voter removed after it, one entry past the hard state's
 * commit that the store already applied and one it did not; this member
 * is the added learner. */
static int map_full_once(void *arg, int site)
{
    bool *armed = arg;
    if (site != MVCC_FAULT_WRITE || !*armed)
        return 0;
    *armed = false;
    return MDB_MAP_FULL;
}

/* A batch that fails (here LMDB's map full) stops the member, and the
 * batches already handed to the apply thread after it must not apply:
 * they would store a consistent index past the entries lost with the
 * failed batch, which a restart then never replays (the whole-member
 * simulation's seed 1000378 with the full-map fault). */
static void test_apply_failure_applies_nothing_after(void **state)
{
    (void)state;
    bool armed = false;
    struct h_opts o = {.fault = map_full_once, .fault_arg = &armed};
    struct h_cluster c;
    h_cluster_init_opts(&c, 3, NULL, false, &o);
    c.tolerate_apply_errors = true;
    struct h_member *l = h_elect(&c, 1);
    struct h_member *f = &c.m[1];
    f->hold_apply = true;
    struct h_result p1, p2;
    assert_int_equal(h_put(l, "a", "1", &p1), 0);
    h_run(&c);
    assert_int_equal(h_put(l, "b", "2", &p2), 0);
    h_run(&c);
    assert_int_equal(p1.err, 0);
    assert_int_equal(p2.err, 0);
    assert_true(f->n_batches >= 2);
    uint64_t ci = mvcc_consistent_index(f->s);
    armed = true;
    f->hold_apply = false;
    h_run(&c);
    int err = 0;
    assert_true(node_stopped(f->n, &err));
    assert_int_equal(err, CAIRN_ENOSPC);
    assert_true(mvcc_consistent_index(f->s) == ci);
    h_cluster_free(&c);
}

static void conf_entry(struct raft_entry *e, uint8_t *buf, raft_index index,
                       uint8_t type, uint64_t node)
{
    struct raft_conf_change cc;
    memset(&cc, 0, sizeof(cc));
    cc.n_changes = 1;
    cc.changes[0].type = type;
    cc.changes[0].node = node;
    size_t len = raft_conf_change_encode(&cc, buf);
    *e = (struct raft_entry){.term = 4,
                             .index = index,
                             .type = RAFT_ENTRY_CONF_CHANGE,
                             .data = buf,
                             .len = len};
}

static void test_force_plan(void **state)
{
    (void)state;
    uint8_t b1[64], b2[64], b3[64];
    struct raft_entry ents[4];
    ents[0] = (struct raft_entry){.term = 4, .index = 11};
    conf_entry(&ents[1], b1, 12, RAFT_CC_ADD_LEARNER, 6);
    conf_entry(&ents[2], b2, 13, RAFT_CC_REMOVE_NODE, 2);
    conf_entry(&ents[3], b3, 14, RAFT_CC_ADD_NODE, 7);
    struct wal_recovery rec;
    memset(&rec, 0, sizeof(rec));
    rec.has_snap = true;
    rec.snap.index = 10;
    rec.snap.term = 3;
    struct raft_conf_state *cs = &rec.snap.conf;
    cs->n_voters = 3;
    cs->voters[0] = 1, cs->voters[1] = 2, cs->voters[2] = 3;
    cs->n_voters_outgoing = 3;
    cs->voters_outgoing[0] = 1, cs->voters_outgoing[1] = 2;
    cs->voters_outgoing[2] = 4;
    cs->n_learners = 1;
    cs->learners[0] = 5;
    rec.entries = ents;
    rec.n_entries = 4;
    rec.hard_state = (struct raft_hard_state){.term = 5, .commit = 12};
    struct node__forced f;
    /* applied 13: entry 13 was committed even if the hard state lags */
    assert_int_equal(node__force_plan(&rec, 6, 13, NULL, &f), 0);
    assert_int_equal(f.n_keep, 3);
    assert_int_equal(f.n_dropped, 1);
    /* leave joint, add 6 as a voter, remove 1, 3, 4 and 5 */
    assert_int_equal(f.n_ents, 6);
    assert_int_equal(f.n_removed, 4);
    assert_int_equal(f.commit, 19);
    struct raft_conf_change cc;
    uint64_t removed = 0;
    for (size_t i = 0; i < f.n_ents; i++) {
        assert_int_equal(f.ents[i].index, 14 + i);
        assert_int_equal(f.ents[i].term, 5);
        assert_int_equal(
            raft_conf_change_decode(f.ents[i].data, f.ents[i].len, &cc), 0);
        if (i == 0) {
            assert_int_equal(f.ents[i].type, RAFT_ENTRY_CONF_CHANGE_V2);
            assert_int_equal(cc.n_changes, 0);
            continue;
        }
        assert_int_equal(cc.n_changes, 1);
        if (i == 1) {
            assert_int_equal(cc.changes[0].type, RAFT_CC_ADD_NODE);
            assert_int_equal(cc.changes[0].node, 6);
            /* etcd's record for a member it did not know */
            struct node_member m;
            uint64_t req;
            assert_int_equal(
                node__member_decode(cc.context, cc.context_len, &req, &m), 0);
            assert_int_equal(m.id, 6);
            assert_string_equal(m.peer_urls[0], "http://localhost:2380");
            continue;
        }
        assert_int_equal(cc.changes[0].type, RAFT_CC_REMOVE_NODE);
        assert_true(cc.changes[0].node != 6 && cc.changes[0].node < 64);
        removed |= 1ull << cc.changes[0].node;
    }
    assert_true(removed == ((1u << 1) | (1u << 3) | (1u << 4) | (1u << 5)));
    node__force_plan_free(&f);
    /* Already the only voter, nothing past the commit: nothing to add. */
    memset(cs, 0, sizeof(*cs));
    cs->n_voters = 1;
    cs->voters[0] = 6;
    rec.n_entries = 1;
    assert_int_equal(node__force_plan(&rec, 6, 0, NULL, &f), 0);
    assert_int_equal(f.n_keep, 1);
    assert_int_equal(f.n_ents, 0);
    assert_int_equal(f.commit, 11);
    node__force_plan_free(&f);
}

/* --force-new-cluster (etcd's restartAsStandaloneNode): the leader of
 * three, cut off with a put it logged but could not commit, restarts
 * forced: the uncommitted put is gone, the committed data stays, it is the
 * only member and leads alone; a later normal restart keeps it so. */
static void test_force_new_cluster(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init_wal(&c, 3, NULL, true);
    struct h_member *l = h_elect(&c, 1);
    struct h_result p;
    assert_int_equal(h_put(l, "committed", "1", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    c.m[1].cut = c.m[2].cut = true;
    struct h_result lost;
    assert_int_equal(h_put(l, "uncommitted", "2", &lost), 0);
    h_run(&c);
    assert_int_equal(lost.calls, 0);
    c.base.force_new_cluster = true;
    h_member_restart(l);
    c.base.force_new_cluster = false;
    /* The forced configuration is persisted before the node starts. */
    assert_true(l->entries_persisted >= 2);
    h_tick(&c, 12);
    assert_true(node_leader(l->n) == l->id);
    struct h_result ml = {0};
    assert_int_equal(node_member_list(l->n, &ml, h_done), 0);
    assert_int_equal(ml.calls, 1);
    assert_int_equal(ml.n_members, 1);
    struct h_result g = {0};
    assert_int_equal(h_get(l, "committed", false, &g), 0);
    h_tick(&c, 1);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.value, "1");
    struct h_result u = {0};
    assert_int_equal(h_get(l, "uncommitted", false, &u), 0);
    h_tick(&c, 1);
    assert_int_equal(u.calls, 1);
    assert_int_equal(u.err, 0);
    assert_int_equal(u.count, 0);
    assert_int_equal(h_put(l, "alone", "3", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    /* A normal restart recovers the one-member configuration. */
    h_member_restart(l);
    h_tick(&c, 12);
    assert_true(node_leader(l->n) == l->id);
    assert_int_equal(h_put(l, "again", "4", &p), 0);
    h_run(&c);
    assert_int_equal(p.err, 0);
    h_cluster_free(&c);
}

int node_test_member(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_member_kv),
        cmocka_unit_test(test_no_ack_before_persist),
        cmocka_unit_test(test_waits_on_persist),
        cmocka_unit_test(test_three_members_kv),
        cmocka_unit_test(test_commit_alone_waits_for_a_persist),
        cmocka_unit_test(test_read_index_batching),
        cmocka_unit_test(test_leader_change_fails_proposals),
        cmocka_unit_test(test_lease_expiry_on_leader),
        cmocka_unit_test(test_keepalive_confirms_leadership),
        cmocka_unit_test(test_many_keepalives_cost_o1_each),
        cmocka_unit_test(test_snapshot_and_compaction),
        cmocka_unit_test(test_log_cache_bounded_by_bytes),
        cmocka_unit_test(test_log_cache_trimmed_before_bound),
        cmocka_unit_test(test_membership),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_move_leader_and_lease_promote),
        cmocka_unit_test(test_restart_from_wal),
        cmocka_unit_test(test_snapshot_conf_after_restart),
        cmocka_unit_test(test_read_answer_of_previous_life_ignored),
        cmocka_unit_test(test_persist_failure_stops),
        cmocka_unit_test(test_apply_failure_applies_nothing_after),
        cmocka_unit_test(test_force_plan),
        cmocka_unit_test(test_force_new_cluster),
        cmocka_unit_test(test_entries_persisted_before_snapshot_installed),
#ifdef CAIRN_FAULTS
        cmocka_unit_test(test_faults_break_the_node),
        cmocka_unit_test(test_faults_off_is_correct),
#endif
    };
    return cmocka_run_group_tests_name("node member", tests, NULL, NULL);
}
