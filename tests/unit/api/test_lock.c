/* The Lock and Election services through rpc against the fake member:
 * two lockers exclude each other, Unlock and lease revocation release, a
 * waiter that goes away removes its key; Campaign waits for older
 * candidates, Proclaim and Resign only while leader, Leader and Observe
 * follow the oldest key, errors as etcd's. */
#include <stdio.h>
#include <string.h>

#include "fake.h"

#define LOCK "/v3lockpb.Lock/Lock"
#define UNLOCK "/v3lockpb.Lock/Unlock"
#define CAMPAIGN "/v3electionpb.Election/Campaign"
#define PROCLAIM "/v3electionpb.Election/Proclaim"
#define LEADER "/v3electionpb.Election/Leader"
#define OBSERVE "/v3electionpb.Election/Observe"
#define RESIGN "/v3electionpb.Election/Resign"
#define BIN(s) ((ProtobufCBinaryData){strlen(s), (uint8_t *)(s)})

/* One turn of the member's watch poll and of the loop, without blocking:
 * the fake's watch events wake nothing. */
static void poll_turn(struct fx *f)
{
    fake_watch_poll(&f->fake);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Runs the loop with the member's watch polls until cond. */
#define RUN_POLLING(f, cond) STEP_UNTIL(cond, poll_turn(f))

/* Turns the loop a while: nothing that waits may answer meanwhile. */
static void settle(struct fx *f)
{
    for (int i = 0; i < 200; i++)
        poll_turn(f);
}

static void start(struct fx *f, const char *path, const ProtobufCMessage *m,
                  struct result *r)
{
    uint8_t buf[512];
    size_t n = protobuf_c_message_get_packed_size(m);
    assert_true(n <= sizeof(buf));
    protobuf_c_message_pack(m, buf);
    fx_call_start(f, path, buf, n, r);
}

static int64_t grant(struct fx *f, int64_t id)
{
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.id = id;
    g.ttl = 30;
    struct result r;
    fx_unary(f, "/etcdserverpb.Lease/LeaseGrant", &g.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    return id;
}

static void revoke(struct fx *f, int64_t id)
{
    Etcdserverpb__LeaseRevokeRequest q =
        ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    q.id = id;
    struct result r;
    fx_unary(f, "/etcdserverpb.Lease/LeaseRevoke", &q.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
}

static void lock_start(struct fx *f, const char *name, int64_t lease,
                       struct result *r)
{
    V3lockpb__LockRequest q = V3LOCKPB__LOCK_REQUEST__INIT;
    q.name = BIN(name);
    q.lease = lease;
    start(f, LOCK, &q.base, r);
}

/* The key of a finished Lock (NUL-terminated into key). */
static V3lockpb__LockResponse *lock_resp(struct result *r)
{
    assert_int_equal(r->code, RPC_OK);
    V3lockpb__LockResponse *l =
        v3lockpb__lock_response__unpack(NULL, r->last.len, r->last.data);
    assert_non_null(l);
    assert_non_null(l->header);
    return l;
}

static void unlock(struct fx *f, const ProtobufCBinaryData *key, int code)
{
    V3lockpb__UnlockRequest q = V3LOCKPB__UNLOCK_REQUEST__INIT;
    q.key = *key;
    struct result r;
    fx_unary(f, UNLOCK, &q.base, &r);
    assert_int_equal(r.code, code);
    result_free(&r);
}

static bool has_key(struct fake *fk, const char *key)
{
    for (size_t i = 0; i < fk->n; i++)
        if (fk->kvs[i].key_len == strlen(key) &&
            memcmp(fk->kvs[i].key, key, fk->kvs[i].key_len) == 0)
            return true;
    return false;
}

static void test_lock_excludes(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant(&f, 0x1a);
    grant(&f, 0x2b);
    struct result a, b;
    lock_start(&f, "mylock", 0x1a, &a);
    RUN_POLLING(&f, a.done);
    V3lockpb__LockResponse *la = lock_resp(&a);
    assert_int_equal(la->key.len, strlen("mylock/1a"));
    assert_memory_equal(la->key.data, "mylock/1a", la->key.len);
    assert_int_equal(la->header->revision, f.fake.rev);
    assert_true(has_key(&f.fake, "mylock/1a"));

    lock_start(&f, "mylock", 0x2b, &b);
    settle(&f);
    assert_int_equal(b.done, 0); /* held by a */
    assert_true(has_key(&f.fake, "mylock/2b"));

    /* locking again with a's lease is a's lock: granted at once */
    struct result a2;
    lock_start(&f, "mylock", 0x1a, &a2);
    RUN_POLLING(&f, a2.done);
    assert_int_equal(a2.code, RPC_OK);
    result_free(&a2);

    unlock(&f, &la->key, RPC_OK);
    RUN_POLLING(&f, b.done);
    V3lockpb__LockResponse *lb = lock_resp(&b);
    assert_memory_equal(lb->key.data, "mylock/2b", lb->key.len);
    /* the header of the read that found no older key */
    assert_int_equal(lb->header->revision, f.fake.rev);
    v3lockpb__lock_response__free_unpacked(la, NULL);
    v3lockpb__lock_response__free_unpacked(lb, NULL);
    result_free(&a);
    result_free(&b);
    fx_close(&f);
}

static void test_lock_lease_expiry_releases(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant(&f, 0x10);
    grant(&f, 0x20);
    grant(&f, 0x30);
    struct result a, b, c;
    lock_start(&f, "l", 0x10, &a);
    RUN_POLLING(&f, a.done);
    lock_start(&f, "l", 0x20, &b);
    lock_start(&f, "l", 0x30, &c);
    settle(&f);
    assert_int_equal(b.done + c.done, 0);
    revoke(&f, 0x10); /* a's session ends: its key goes */
    RUN_POLLING(&f, b.done);
    settle(&f);
    assert_int_equal(c.done, 0); /* c waits for b, not for a */
    revoke(&f, 0x20);
    RUN_POLLING(&f, c.done);
    V3lockpb__LockResponse *lc = lock_resp(&c);
    assert_memory_equal(lc->key.data, "l/30", lc->key.len);
    v3lockpb__lock_response__free_unpacked(lc, NULL);
    result_free(&a);
    result_free(&b);
    result_free(&c);
    fx_close(&f);
}

static void test_lock_session_lease(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct result a;
    lock_start(&f, "s", 0, &a); /* etcd grants a 60 s session lease */
    RUN_POLLING(&f, a.done);
    V3lockpb__LockResponse *la = lock_resp(&a);
    assert_int_equal(f.fake.n_leases, 1);
    assert_int_equal(f.fake.leases[0].ttl_s, 60);
    char want[32];
    snprintf(want, sizeof(want), "s/%llx",
             (unsigned long long)f.fake.leases[0].id);
    assert_int_equal(la->key.len, strlen(want));
    assert_memory_equal(la->key.data, want, la->key.len);
    assert_int_equal(f.fake.kvs[0].lease, f.fake.leases[0].id);
    v3lockpb__lock_response__free_unpacked(la, NULL);
    result_free(&a);
    fx_close(&f);
}

static void test_lock_waiter_leaves(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant(&f, 0x1);
    grant(&f, 0x2);
    struct result a, b;
    lock_start(&f, "w", 0x1, &a);
    RUN_POLLING(&f, a.done);
    lock_start(&f, "w", 0x2, &b);
    settle(&f);
    assert_true(has_key(&f.fake, "w/2"));
    rpc_call_cancel(b.call); /* etcd's Mutex unlocks when its wait fails */
    RUN_POLLING(&f, !has_key(&f.fake, "w/2"));
    assert_true(has_key(&f.fake, "w/1"));
    result_free(&a);
    result_free(&b);
    fx_close(&f);
}

static void test_lock_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    ProtobufCBinaryData none = {0, NULL};
    struct result r;
    /* clientv3's Delete of "" meets the server's check */
    V3lockpb__UnlockRequest q = V3LOCKPB__UNLOCK_REQUEST__INIT;
    q.key = none;
    fx_unary(&f, UNLOCK, &q.base, &r);
    assert_int_equal(r.code, RPC_INVALID_ARGUMENT);
    assert_string_equal(r.msg, "etcdserver: key is not provided");
    result_free(&r);
    fx_unary_raw(&f, LOCK, "\xff\xff", 2, &r);
    assert_int_equal(r.code, RPC_INTERNAL);
    result_free(&r);
    /* the member refusing the txn fails the lock */
    f.fake.fail_next = CAIRN_ENOSPC;
    struct result a;
    grant(&f, 0x5);
    lock_start(&f, "e", 0x5, &a);
    RUN_POLLING(&f, a.done);
    assert_int_not_equal(a.code, RPC_OK);
    result_free(&a);
    fx_close(&f);
}

/* ---- Election ---- */

static void campaign_start(struct fx *f, const char *name, int64_t lease,
                           const char *value, struct result *r)
{
    V3electionpb__CampaignRequest q = V3ELECTIONPB__CAMPAIGN_REQUEST__INIT;
    q.name = BIN(name);
    q.lease = lease;
    q.value = BIN(value);
    start(f, CAMPAIGN, &q.base, r);
}

static V3electionpb__CampaignResponse *campaign_resp(struct result *r)
{
    assert_int_equal(r->code, RPC_OK);
    V3electionpb__CampaignResponse *c = v3electionpb__campaign_response__unpack(
        NULL, r->last.len, r->last.data);
    assert_non_null(c);
    assert_non_null(c->leader);
    assert_non_null(c->header);
    return c;
}

/* Leader(name): the value, or the error's code and text in r. */
static void leader_of(struct fx *f, const char *name, struct result *r,
                      char *value, size_t cap)
{
    V3electionpb__LeaderRequest q = V3ELECTIONPB__LEADER_REQUEST__INIT;
    q.name = BIN(name);
    fx_unary(f, LEADER, &q.base, r);
    value[0] = 0;
    if (r->code != RPC_OK)
        return;
    V3electionpb__LeaderResponse *l =
        v3electionpb__leader_response__unpack(NULL, r->last.len, r->last.data);
    assert_non_null(l);
    assert_non_null(l->kv);
    assert_true(l->kv->value.len < cap);
    memcpy(value, l->kv->value.data, l->kv->value.len);
    value[l->kv->value.len] = 0;
    v3electionpb__leader_response__free_unpacked(l, NULL);
}

static int proclaim(struct fx *f, V3electionpb__LeaderKey *k, const char *v,
                    struct result *r)
{
    V3electionpb__ProclaimRequest q = V3ELECTIONPB__PROCLAIM_REQUEST__INIT;
    q.leader = k;
    q.value = BIN(v);
    fx_unary(f, PROCLAIM, &q.base, r);
    return r->code;
}

static int resign(struct fx *f, V3electionpb__LeaderKey *k, struct result *r)
{
    V3electionpb__ResignRequest q = V3ELECTIONPB__RESIGN_REQUEST__INIT;
    q.leader = k;
    fx_unary(f, RESIGN, &q.base, r);
    return r->code;
}

static void test_election_campaign(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant(&f, 0xa);
    grant(&f, 0xb);
    char v[64];
    struct result a, b, r;
    leader_of(&f, "e", &r, v, sizeof(v));
    assert_int_equal(r.code, RPC_UNKNOWN);
    assert_string_equal(r.msg, "election: no leader");
    result_free(&r);

    campaign_start(&f, "e", 0xa, "one", &a);
    RUN_POLLING(&f, a.done);
    V3electionpb__CampaignResponse *ca = campaign_resp(&a);
    assert_memory_equal(ca->leader->name.data, "e", 1);
    assert_memory_equal(ca->leader->key.data, "e/a", ca->leader->key.len);
    assert_int_equal(ca->leader->lease, 0xa);
    assert_int_equal(ca->leader->rev, f.fake.rev);
    leader_of(&f, "e", &r, v, sizeof(v));
    assert_string_equal(v, "one");
    result_free(&r);

    campaign_start(&f, "e", 0xb, "two", &b);
    settle(&f);
    assert_int_equal(b.done, 0);

    assert_int_equal(proclaim(&f, ca->leader, "uno", &r), RPC_OK);
    result_free(&r);
    leader_of(&f, "e", &r, v, sizeof(v));
    assert_string_equal(v, "uno");
    result_free(&r);

    /* a leader key whose revision is not the key's create revision */
    V3electionpb__LeaderKey wrong = *ca->leader;
    wrong.rev = ca->leader->rev + 100;
    assert_int_equal(proclaim(&f, &wrong, "x", &r), RPC_UNKNOWN);
    assert_string_equal(r.msg, "election: not leader");
    result_free(&r);
    /* Resign of a non-leader: OK, nothing changes */
    assert_int_equal(resign(&f, &wrong, &r), RPC_OK);
    result_free(&r);
    settle(&f);
    assert_int_equal(b.done, 0);

    assert_int_equal(resign(&f, ca->leader, &r), RPC_OK);
    result_free(&r);
    RUN_POLLING(&f, b.done);
    V3electionpb__CampaignResponse *cb = campaign_resp(&b);
    assert_memory_equal(cb->leader->key.data, "e/b", cb->leader->key.len);
    leader_of(&f, "e", &r, v, sizeof(v));
    assert_string_equal(v, "two");
    result_free(&r);
    v3electionpb__campaign_response__free_unpacked(ca, NULL);
    v3electionpb__campaign_response__free_unpacked(cb, NULL);
    result_free(&a);
    result_free(&b);
    fx_close(&f);
}

static void test_election_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct result r;
    assert_int_equal(proclaim(&f, NULL, "v", &r), RPC_UNKNOWN);
    assert_string_equal(r.msg, "\"leader\" field must be provided");
    result_free(&r);
    assert_int_equal(resign(&f, NULL, &r), RPC_UNKNOWN);
    assert_string_equal(r.msg, "\"leader\" field must be provided");
    result_free(&r);
    /* campaigning again on the same lease with a new value proclaims it */
    grant(&f, 0x7);
    struct result a;
    campaign_start(&f, "e", 0x7, "first", &a);
    RUN_POLLING(&f, a.done);
    result_free(&a);
    campaign_start(&f, "e", 0x7, "second", &a);
    RUN_POLLING(&f, a.done);
    assert_int_equal(a.code, RPC_OK);
    result_free(&a);
    char v[64];
    leader_of(&f, "e", &r, v, sizeof(v));
    assert_string_equal(v, "second");
    result_free(&r);
    fx_close(&f);
}

static V3electionpb__LeaderResponse *observed(struct fx *f, struct result *r,
                                              int n)
{
    RUN_POLLING(f, r->n_msgs >= n);
    assert_int_equal(r->n_msgs, n);
    V3electionpb__LeaderResponse *l =
        v3electionpb__leader_response__unpack(NULL, r->last.len, r->last.data);
    assert_non_null(l);
    assert_non_null(l->kv);
    assert_non_null(l->header);
    return l;
}

static void test_election_observe(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant(&f, 0xa);
    grant(&f, 0xb);
    struct result o, a, b, r;
    V3electionpb__LeaderRequest q = V3ELECTIONPB__LEADER_REQUEST__INIT;
    q.name = BIN("obs");
    fx_stream_start(&f, OBSERVE, &o);
    uint8_t buf[64];
    size_t n = v3electionpb__leader_request__get_packed_size(&q);
    v3electionpb__leader_request__pack(&q, buf);
    assert_int_equal(rpc_call_send(o.call, buf, n), 0);
    rpc_call_close_send(o.call);
    settle(&f);
    assert_int_equal(o.n_msgs, 0); /* no leader yet */

    campaign_start(&f, "obs", 0xa, "A", &a);
    V3electionpb__LeaderResponse *l = observed(&f, &o, 1);
    assert_memory_equal(l->kv->value.data, "A", 1);
    assert_int_equal(l->header->revision, l->kv->mod_revision);
    v3electionpb__leader_response__free_unpacked(l, NULL);
    RUN_POLLING(&f, a.done);
    V3electionpb__CampaignResponse *ca = campaign_resp(&a);

    assert_int_equal(proclaim(&f, ca->leader, "A2", &r), RPC_OK);
    result_free(&r);
    l = observed(&f, &o, 2);
    assert_memory_equal(l->kv->value.data, "A2", 2);
    v3electionpb__leader_response__free_unpacked(l, NULL);

    campaign_start(&f, "obs", 0xb, "B", &b);
    settle(&f);
    assert_int_equal(o.n_msgs, 2); /* a candidate is not the leader */
    assert_int_equal(resign(&f, ca->leader, &r), RPC_OK);
    result_free(&r);
    l = observed(&f, &o, 3);
    assert_memory_equal(l->kv->value.data, "B", 1);
    assert_memory_equal(l->kv->key.data, "obs/b", l->kv->key.len);
    v3electionpb__leader_response__free_unpacked(l, NULL);
    RUN_POLLING(&f, b.done);
    assert_int_equal(b.code, RPC_OK);
    assert_int_equal(o.done, 0); /* observing goes on */

    rpc_call_cancel(o.call);
    RUN_POLLING(&f, o.done);
    v3electionpb__campaign_response__free_unpacked(ca, NULL);
    result_free(&o);
    result_free(&a);
    result_free(&b);
    fx_close(&f);
}

/* A client leaving mid-campaign resigns; the api closing with waiters
 * ends them. */
static void test_election_leaves(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant(&f, 0x1);
    grant(&f, 0x2);
    grant(&f, 0x3);
    struct result a, b, c;
    campaign_start(&f, "x", 0x1, "a", &a);
    RUN_POLLING(&f, a.done);
    campaign_start(&f, "x", 0x2, "b", &b);
    settle(&f);
    assert_true(has_key(&f.fake, "x/2"));
    rpc_call_cancel(b.call);
    RUN_POLLING(&f, !has_key(&f.fake, "x/2"));
    /* one still waiting when the api closes */
    campaign_start(&f, "x", 0x3, "c", &c);
    settle(&f);
    assert_int_equal(c.done, 0);
    result_free(&a);
    result_free(&b);
    fx_close(&f);
    result_free(&c);
}

int test_lock_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_excludes),
        cmocka_unit_test(test_lock_lease_expiry_releases),
        cmocka_unit_test(test_lock_session_lease),
        cmocka_unit_test(test_lock_waiter_leaves),
        cmocka_unit_test(test_lock_errors),
        cmocka_unit_test(test_election_campaign),
        cmocka_unit_test(test_election_errors),
        cmocka_unit_test(test_election_observe),
        cmocka_unit_test(test_election_leaves),
    };
    return cmocka_run_group_tests_name("lock", tests, NULL, NULL);
}
