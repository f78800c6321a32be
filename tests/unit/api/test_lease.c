/* The Lease service through rpc against the fake member: grant, revoke,
 * time-to-live (with keys, and etcd's TTL -1 for an unknown lease), list,
 * and the KeepAlive stream. */
#include <string.h>

#include "fake.h"

#define LEASE "/etcdserverpb.Lease/"

static int64_t grant(struct fx *f, int64_t id, int64_t ttl)
{
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.id = id;
    g.ttl = ttl;
    struct result r;
    fx_unary(f, LEASE "LeaseGrant", &g.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__LeaseGrantResponse *gr =
        etcdserverpb__lease_grant_response__unpack(NULL, r.last.len,
                                                   r.last.data);
    assert_non_null(gr);
    assert_int_equal(gr->ttl, ttl);
    assert_int_equal(gr->header->member_id, 0xa1);
    int64_t got = gr->id;
    etcdserverpb__lease_grant_response__free_unpacked(gr, NULL);
    result_free(&r);
    return got;
}

static void test_grant_ttl_list_revoke(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    int64_t a = grant(&f, 0, 60);
    assert_int_equal(a, 0x7001);
    assert_int_equal(grant(&f, 42, 10), 42);
    struct result r;
    /* the same id again */
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.id = 42;
    g.ttl = 5;
    fx_unary(&f, LEASE "LeaseGrant", &g.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: lease already exists");
    result_free(&r);

    /* a key on lease 42 */
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = (ProtobufCBinaryData){3, (uint8_t *)"lk1"};
    p.lease = 42;
    fx_unary(&f, "/etcdserverpb.KV/Put", &p.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);

    Etcdserverpb__LeaseTimeToLiveRequest t =
        ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    t.id = 42;
    t.keys = 1;
    fx_unary(&f, LEASE "LeaseTimeToLive", &t.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__LeaseTimeToLiveResponse *tr =
        etcdserverpb__lease_time_to_live_response__unpack(NULL, r.last.len,
                                                          r.last.data);
    assert_non_null(tr);
    assert_int_equal(tr->id, 42);
    assert_int_equal(tr->grantedttl, 10);
    assert_int_equal(tr->ttl, 9);
    assert_int_equal(tr->n_keys, 1);
    assert_memory_equal(tr->keys[0].data, "lk1", 3);
    etcdserverpb__lease_time_to_live_response__free_unpacked(tr, NULL);
    result_free(&r);
    /* unknown: TTL -1 and a full header, no error */
    t.id = 99;
    fx_unary(&f, LEASE "LeaseTimeToLive", &t.base, &r);
    assert_int_equal(r.code, RPC_OK);
    tr = etcdserverpb__lease_time_to_live_response__unpack(NULL, r.last.len,
                                                           r.last.data);
    assert_non_null(tr);
    assert_int_equal(tr->id, 99);
    assert_int_equal(tr->ttl, -1);
    assert_int_equal(tr->header->cluster_id, 0xc1);
    assert_int_equal(tr->header->raft_term, 2);
    etcdserverpb__lease_time_to_live_response__free_unpacked(tr, NULL);
    result_free(&r);

    Etcdserverpb__LeaseLeasesRequest l =
        ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
    fx_unary(&f, LEASE "LeaseLeases", &l.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__LeaseLeasesResponse *lr =
        etcdserverpb__lease_leases_response__unpack(NULL, r.last.len,
                                                    r.last.data);
    assert_non_null(lr);
    assert_int_equal(lr->n_leases, 2);
    assert_int_equal(lr->leases[0]->id, 0x7001);
    assert_int_equal(lr->leases[1]->id, 42);
    etcdserverpb__lease_leases_response__free_unpacked(lr, NULL);
    result_free(&r);

    Etcdserverpb__LeaseRevokeRequest v =
        ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    v.id = 42;
    fx_unary(&f, LEASE "LeaseRevoke", &v.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__LeaseRevokeResponse *vr =
        etcdserverpb__lease_revoke_response__unpack(NULL, r.last.len,
                                                    r.last.data);
    assert_non_null(vr);
    /* the attached key went with it, in one revision */
    assert_int_equal(vr->header->revision, 3);
    assert_int_equal(f.fake.n, 0);
    etcdserverpb__lease_revoke_response__free_unpacked(vr, NULL);
    result_free(&r);
    fx_unary(&f, LEASE "LeaseRevoke", &v.base, &r);
    assert_int_equal(r.code, RPC_NOT_FOUND);
    assert_string_equal(r.msg, "etcdserver: requested lease not found");
    result_free(&r);
    fx_close(&f);
}

static void send_ka(struct result *r, int64_t id)
{
    Etcdserverpb__LeaseKeepAliveRequest k =
        ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    k.id = id;
    uint8_t buf[32];
    size_t n = etcdserverpb__lease_keep_alive_request__get_packed_size(&k);
    etcdserverpb__lease_keep_alive_request__pack(&k, buf);
    assert_int_equal(rpc_call_send(r->call, buf, n), 0);
}

static void check_ka(struct result *r, int64_t id, int64_t ttl)
{
    Etcdserverpb__LeaseKeepAliveResponse *kr =
        etcdserverpb__lease_keep_alive_response__unpack(NULL, r->last.len,
                                                        r->last.data);
    assert_non_null(kr);
    assert_int_equal(kr->id, id);
    assert_int_equal(kr->ttl, ttl);
    assert_int_equal(kr->header->member_id, 0xa1);
    etcdserverpb__lease_keep_alive_response__free_unpacked(kr, NULL);
}

static void test_keepalive_stream(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant(&f, 7, 30);
    struct result r;
    fx_stream_start(&f, LEASE "LeaseKeepAlive", &r);
    send_ka(&r, 7);
    RUN_UNTIL(&f, r.n_msgs == 1);
    check_ka(&r, 7, 30);
    /* an unknown lease: TTL 0, and the stream goes on */
    send_ka(&r, 8);
    RUN_UNTIL(&f, r.n_msgs == 2);
    check_ka(&r, 8, 0);
    /* many at once, answered one each */
    for (int i = 0; i < 40; i++)
        send_ka(&r, 7);
    RUN_UNTIL(&f, r.n_msgs == 42);
    check_ka(&r, 7, 30);
    rpc_call_close_send(r.call);
    RUN_UNTIL(&f, r.done == 1);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);

    /* a follower refuses keep-alives: the stream ends with etcd's text */
    fx_stream_start(&f, LEASE "LeaseKeepAlive", &r);
    f.fake.refuse_next = CAIRN_ENOTLEADER;
    send_ka(&r, 7);
    RUN_UNTIL(&f, r.done == 1);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: not leader");
    result_free(&r);

    /* garbage on the stream */
    fx_stream_start(&f, LEASE "LeaseKeepAlive", &r);
    static const uint8_t bad[] = {0x08};
    assert_int_equal(rpc_call_send(r.call, bad, sizeof(bad)), 0);
    RUN_UNTIL(&f, r.done == 1);
    assert_int_equal(r.code, RPC_INTERNAL);
    result_free(&r);

    /* the client goes away mid-stream */
    fx_stream_start(&f, LEASE "LeaseKeepAlive", &r);
    send_ka(&r, 7);
    RUN_UNTIL(&f, r.n_msgs == 1);
    rpc_call_cancel(r.call);
    RUN_UNTIL(&f, r.done == 1);
    RUN_UNTIL(&f, rpc_server_call_count(api_rpc_server(f.api)) == 0);
    result_free(&r);
    fx_close(&f);
}

int test_lease_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grant_ttl_list_revoke),
        cmocka_unit_test(test_keepalive_stream),
    };
    return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
