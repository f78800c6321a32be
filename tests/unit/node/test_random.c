/* A seeded random run of three members through the fake environment,
 * each persisting through a WAL on an in-memory file system: puts and
 * linearizable reads on any member while members are cut off and healed,
 * WAL writes and applies held back and released, members restarted from
 * WAL and store, and leadership moved. Checks: no acknowledged write is lost on
 * any member, every linearizable read sees every write acknowledged before it
 * started, and the members' HashKV agree once quiet. CAIRN_TEST_SEED picks the
 * seed; CAIRN_NODE_RANDOM_RUNS runs more of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "harness.h"
#include "tests_node.h"

#define OPS_MAX 600
#define MOVES_MAX 1024 /* more than the steps: never reused */

struct op {
    bool is_read;
    int key;           /* writes: their own key; reads: the key read */
    bool acked_before; /* reads: the key's write was acked at issue */
    struct h_result r;
};

static struct h_member *live_leader(struct h_cluster *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (!node_stopped(c->m[i].n, NULL) && node_is_leader(c->m[i].n))
            return &c->m[i];
    return NULL;
}

/* Membership changes mid-run: member 2 or 3 is removed around step 150, a
 * new voter is added around step 300 and joins by snapshot once the add
 * is applied (as a raft learner that the leader promotes once caught up). A
 * removed member that was cut off when its removal committed never learns of it
 * (in production the peers' transport refuses it); it is left out of the final
 * checks. */
static void change_members(struct h_cluster *c, struct prng *rng, int step,
                           struct h_result *rm, uint64_t *victim,
                           struct h_result *add, bool *joined)
{
    struct h_member *l = live_leader(c);
    if (step >= 150 && rm->calls == 0 && l != NULL && !rm->n_members) {
        uint64_t id = 2 + prng_below(rng, 2);
        if (id != l->id && node_member_remove(l->n, id, rm, h_done) == 0) {
            rm->n_members = (size_t)-1; /* asked */
            *victim = id;
        }
    }
    if (step >= 300 && add->calls == 0 && l != NULL && !add->n_members) {
        struct node_member nm = {.n_peer_urls = 1};
        strcpy(nm.peer_urls[0], "http://127.0.0.1:9000");
        if (node_member_add(l->n, &nm, add, h_done) == 0)
            add->n_members = (size_t)-1;
    }
    if (add->calls == 1 && add->err == 0 && !*joined) {
        struct h_member *j = h_member_add(c, add->member_id);
        h_member_use_wal(j);
        h_member_start(j, false);
        *joined = true;
    }
}

static void run_seed(uint64_t seed, bool membership)
{
    struct prng rng;
    prng_seed(&rng, seed);
    struct node_config base = {.snapshot_count = 50,
                               .snapshot_catchup_entries = 10};
    struct h_cluster c;
    h_cluster_init_wal(&c, 3, &base, true);
    h_elect(&c, 1);
    static struct op ops[OPS_MAX];
    static struct h_result moves[MOVES_MAX];
    size_t n_moves = 0, restarts = 0;
    memset(ops, 0, sizeof(ops));
    size_t n_ops = 0;
    int n_keys = 0;
    int key_op[OPS_MAX]; /* key -> op index of its write */
    char k[32], v[32];
    static struct h_result rm, add;
    memset(&rm, 0, sizeof(rm));
    memset(&add, 0, sizeof(add));
    bool joined = false;
    uint64_t victim = 0;
    for (int step = 0; step < 1500 && n_ops < OPS_MAX; step++) {
        if (membership)
            change_members(&c, &rng, step, &rm, &victim, &add, &joined);
        struct h_member *m = &c.m[prng_below(&rng, c.n)];
        uint64_t dice = prng_below(&rng, 100);
        if (dice < 35) {
            struct op *o = &ops[n_ops];
            memset(o, 0, sizeof(*o)); /* a refused op leaves its slot */
            o->key = n_keys;
            snprintf(k, sizeof(k), "k%d", o->key);
            snprintf(v, sizeof(v), "v%d", o->key);
            if (h_put(m, k, v, &o->r) == 0) {
                key_op[n_keys++] = (int)n_ops;
                n_ops++;
            }
        } else if (dice < 50 && n_keys > 0) {
            struct op *o = &ops[n_ops];
            memset(o, 0, sizeof(*o));
            o->is_read = true;
            o->key = (int)prng_below(&rng, (uint64_t)n_keys);
            const struct op *w = &ops[key_op[o->key]];
            o->acked_before = w->r.calls == 1 && w->r.err == 0;
            snprintf(k, sizeof(k), "k%d", o->key);
            if (h_get(m, k, false, &o->r) == 0)
                n_ops++;
        } else if (dice < 55) {
            for (size_t i = 0; i < c.n; i++)
                c.m[i].cut = false;
            m->cut = true;
        } else if (dice < 62) {
            for (size_t i = 0; i < c.n; i++)
                c.m[i].cut = false;
        } else if (dice < 66) {
            m->hold_persist = !m->hold_persist;
        } else if (dice < 70) {
            m->hold_apply = !m->hold_apply;
        } else if (dice < 72 && !node_stopped(m->n, NULL)) {
            /* An orderly restart from WAL and store: its requests fail
             * with STOPPED, nothing acknowledged may be lost. */
            m->hold_persist = false;
            m->hold_apply = false;
            h_member_restart(m);
            restarts++;
        } else if (dice < 74 && node_is_leader(m->n)) {
            /* The outcome is not checked (a transfer may time out), but
             * its result must outlive the request. */
            struct h_result *mv = &moves[n_moves++ % MOVES_MAX];
            memset(mv, 0, sizeof(*mv));
            uint64_t to = 1 + prng_below(&rng, 3);
            if (node_move_leader(m->n, to, mv, h_done) == 0)
                h_tick(&c, 3);
        } else {
            h_tick(&c, 1);
        }
        h_run(&c);
        /* Reads answered so far saw what was acknowledged before them. */
        for (size_t i = 0; i < n_ops; i++) {
            struct op *o = &ops[i];
            if (!o->is_read || o->r.calls == 0 || o->r.err != 0 ||
                !o->acked_before)
                continue;
            if (o->r.count != 1)
                fail_msg("seed %llu: read of k%d missed an acknowledged "
                         "write",
                         (unsigned long long)seed, o->key);
        }
    }
    /* Quiet: heal, release, settle. */
    for (size_t i = 0; i < c.n; i++) {
        c.m[i].cut = false;
        c.m[i].hold_persist = false;
        c.m[i].hold_apply = false;
    }
    h_run(&c);
    h_tick(&c, 80);
    /* Whether the removal took effect (its answer may have been lost to
     * a leader change). */
    bool victim_removed = false;
    if (victim != 0) {
        struct node_member list[8];
        size_t nm =
            node_members(c.m[0].id == victim ? c.m[1].n : c.m[0].n, list, 8);
        victim_removed = true;
        for (size_t i = 0; i < nm && i < 8; i++)
            if (list[i].id == victim)
                victim_removed = false;
    }
    size_t acked = 0;
    for (size_t i = 0; i < n_ops; i++) {
        struct op *o = &ops[i];
        if (o->r.calls > 1)
            fail_msg("seed %llu: op %zu answered twice",
                     (unsigned long long)seed, i);
        if (o->r.calls == 0)
            fail_msg("seed %llu: op %zu never answered",
                     (unsigned long long)seed, i);
        if (o->is_read || o->r.err != 0)
            continue;
        acked++;
        snprintf(k, sizeof(k), "k%d", o->key);
        snprintf(v, sizeof(v), "v%d", o->key);
        for (size_t j = 0; j < c.n; j++) {
            struct h_result g;
            if (node_stopped(c.m[j].n, NULL) ||
                (c.m[j].id == victim && victim_removed))
                continue; /* removed */
            assert_int_equal(h_get(&c.m[j], k, true, &g), 0);
            if (g.count != 1 || strcmp(g.value, v) != 0)
                fail_msg("seed %llu: acknowledged %s lost on member %zu",
                         (unsigned long long)seed, k, j + 1);
        }
    }
    assert_true(acked > 0);
    assert_true(restarts > 0);
    uint32_t h = 0;
    bool first = true;
    for (size_t j = 0; j < c.n; j++) {
        if (node_stopped(c.m[j].n, NULL) ||
            (c.m[j].id == victim && victim_removed))
            continue;
        if (first)
            h = h_hash_kv(&c.m[j]);
        first = false;
        if (h_hash_kv(&c.m[j]) != h)
            fail_msg("seed %llu: HashKV differs on member %zu",
                     (unsigned long long)seed, j + 1);
    }
    /* Each change asked for was answered once (a run may end, or lack a
     * leader, before asking). */
    if (victim != 0)
        assert_int_equal(rm.calls, 1);
    if (add.n_members != 0)
        assert_int_equal(add.calls, 1);
    assert_true(joined || add.calls == 0 || add.err != 0);
    /* The voter added joined raft as a learner; once quiet it caught up
     * and whichever member leads made it vote. */
    if (joined) {
        struct h_member *j = &c.m[c.n - 1];
        struct node_status st;
        node_status_get(j->n, &st);
        if (st.is_learner)
            fail_msg("seed %llu: the member added was never promoted",
                     (unsigned long long)seed);
    }
    h_cluster_free(&c);
}

static void test_random_runs(void **state)
{
    (void)state;
    uint64_t seed = node_test_seed(20261129);
    const char *e = getenv("CAIRN_NODE_RANDOM_RUNS");
    int runs = e != NULL && *e ? atoi(e) : 4;
    for (int i = 0; i < runs; i++)
        run_seed(seed + (uint64_t)i, false);
}

static void test_random_membership(void **state)
{
    (void)state;
    uint64_t seed = node_test_seed(20261200);
    const char *e = getenv("CAIRN_NODE_RANDOM_RUNS");
    int runs = e != NULL && *e ? atoi(e) : 3;
    for (int i = 0; i < runs; i++)
        run_seed(seed + (uint64_t)i, true);
}

/* Leases under random cuts and leader moves: a lease kept alive through
 * whichever member leads never disappears sooner than its TTL after the
 * last successful keep-alive (less an election timeout of slack, for a
 * deposed leader that still renewed), and once keep-alives stop it is
 * revoked with its key. */
static void run_lease_seed(uint64_t seed)
{
    struct prng rng;
    prng_seed(&rng, seed);
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    const int64_t ttl_ms = 5000, slack_ms = 1000;
    struct h_result g = {0};
    assert_int_equal(node_lease_grant(l->n, 0, ttl_ms / 1000, &g, h_done), 0);
    h_run(&c);
    assert_int_equal(g.err, 0);
    struct mvcc_put_req p = {.key = (const uint8_t *)"lk",
                             .key_len = 2,
                             .value = (const uint8_t *)"v",
                             .value_len = 1,
                             .lease = g.lease_id};
    struct h_result pr = {0};
    assert_int_equal(node_put(l->n, &p, &pr, h_done), 0);
    h_run(&c);
    assert_int_equal(pr.err, 0);
    int64_t last_ok = c.now_ms;
    static struct h_result ka[4096];
    size_t n_ka = 0;
    for (int step = 0; step < 600; step++) {
        struct h_member *m = &c.m[prng_below(&rng, 3)];
        uint64_t dice = prng_below(&rng, 100);
        if (dice < 4) {
            for (size_t i = 0; i < 3; i++)
                c.m[i].cut = false;
            m->cut = true;
        } else if (dice < 10) {
            for (size_t i = 0; i < 3; i++)
                c.m[i].cut = false;
        } else if (dice < 12 && node_is_leader(m->n)) {
            struct h_result *mv = &ka[n_ka++ % 4096];
            memset(mv, 0, sizeof(*mv));
            node_move_leader(m->n, 1 + prng_below(&rng, 3), mv, h_done);
        }
        /* A keep-alive to every member believing it leads, every second. */
        if (step % 10 == 0)
            for (size_t i = 0; i < 3; i++) {
                if (!node_is_leader(c.m[i].n))
                    continue;
                struct h_result *r = &ka[n_ka++ % 4096];
                memset(r, 0, sizeof(*r));
                r->type_hint = 1;
                node_lease_keepalive(c.m[i].n, g.lease_id, r, h_done);
            }
        h_tick(&c, 1);
        for (size_t i = 0; i < n_ka && i < 4096; i++)
            if (ka[i].type_hint && ka[i].calls == 1 && ka[i].err == 0) {
                if (c.now_ms > last_ok)
                    last_ok = c.now_ms;
                ka[i].type_hint = 0;
            }
        bool gone = false;
        for (size_t i = 0; i < 3; i++)
            gone |= !lease_exists(node_applier_lessor(c.m[i].ap), g.lease_id);
        if (gone) {
            if (c.now_ms - last_ok < ttl_ms - slack_ms)
                fail_msg("seed %llu: lease revoked %lld ms after its last "
                         "keep-alive",
                         (unsigned long long)seed,
                         (long long)(c.now_ms - last_ok));
            break;
        }
    }
    /* Keep-alives stop: the lease and its key go. */
    for (size_t i = 0; i < 3; i++)
        c.m[i].cut = false;
    h_tick(&c, 150);
    for (size_t i = 0; i < 3; i++) {
        assert_false(lease_exists(node_applier_lessor(c.m[i].ap), g.lease_id));
        struct h_result r;
        assert_int_equal(h_get(&c.m[i], "lk", true, &r), 0);
        assert_int_equal(r.count, 0);
    }
    h_cluster_free(&c);
}

static void test_random_leases(void **state)
{
    (void)state;
    uint64_t seed = node_test_seed(20261300);
    const char *e = getenv("CAIRN_NODE_RANDOM_RUNS");
    int runs = e != NULL && *e ? atoi(e) : 3;
    for (int i = 0; i < runs; i++)
        run_lease_seed(seed + (uint64_t)i);
}

int node_test_random(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_runs),
        cmocka_unit_test(test_random_membership),
        cmocka_unit_test(test_random_leases),
    };
    return cmocka_run_group_tests_name("node random", tests, NULL, NULL);
}
