/* The Cluster service and the rest of Maintenance (Alarm, Hash, HashKV,
 * Defragment, MoveLeader) through rpc against the fake member. */
#include <openssl/evp.h>
#include <string.h>

#include "fake.h"

#define CLUSTER "/etcdserverpb.Cluster/"
#define MAINT "/etcdserverpb.Maintenance/"

static void test_members(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct result r;
    char *urls[2] = {(char *)"http://127.0.0.1:2390", (char *)"not a url"};
    Etcdserverpb__MemberAddRequest a = ETCDSERVERPB__MEMBER_ADD_REQUEST__INIT;
    a.n_peerurls = 2;
    a.peerurls = urls;
    fx_unary(&f, CLUSTER "MemberAdd", &a.base, &r);
    assert_int_equal(r.code, RPC_INVALID_ARGUMENT);
    assert_string_equal(r.msg, "etcdserver: given member URLs are invalid");
    result_free(&r);
    a.n_peerurls = 0;
    fx_unary(&f, CLUSTER "MemberAdd", &a.base, &r);
    assert_string_equal(r.msg, "etcdserver: given member URLs are invalid");
    result_free(&r);
    a.n_peerurls = 1;
    a.islearner = 1;
    fx_unary(&f, CLUSTER "MemberAdd", &a.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__MemberAddResponse *ar =
        etcdserverpb__member_add_response__unpack(NULL, r.last.len,
                                                  r.last.data);
    assert_non_null(ar);
    assert_int_equal(ar->member->id, 0x12u);
    assert_true(ar->member->islearner);
    assert_int_equal(ar->member->n_peerurls, 1);
    assert_string_equal(ar->member->peerurls[0], "http://127.0.0.1:2390");
    assert_string_equal(ar->member->name, "");
    assert_int_equal(ar->n_members, 2);
    assert_string_equal(ar->members[1]->name, "default");
    assert_int_equal(ar->members[0]->id, 0x12u); /* sorted by id */
    assert_string_equal(ar->members[1]->clienturls[0], "http://127.0.0.1:2379");
    etcdserverpb__member_add_response__free_unpacked(ar, NULL);
    result_free(&r);
    /* the same peer URL again */
    fx_unary(&f, CLUSTER "MemberAdd", &a.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: Peer URLs already exists");
    result_free(&r);

    Etcdserverpb__MemberPromoteRequest p =
        ETCDSERVERPB__MEMBER_PROMOTE_REQUEST__INIT;
    p.id = 0xa1;
    fx_unary(&f, CLUSTER "MemberPromote", &p.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: can only promote a learner member");
    result_free(&r);
    p.id = 0x12u;
    fx_unary(&f, CLUSTER "MemberPromote", &p.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__MemberPromoteResponse *pr =
        etcdserverpb__member_promote_response__unpack(NULL, r.last.len,
                                                      r.last.data);
    assert_non_null(pr);
    assert_int_equal(pr->n_members, 2);
    assert_false(pr->members[0]->islearner);
    etcdserverpb__member_promote_response__free_unpacked(pr, NULL);
    result_free(&r);

    char *nurl[1] = {(char *)"http://127.0.0.1:2391"};
    Etcdserverpb__MemberUpdateRequest u =
        ETCDSERVERPB__MEMBER_UPDATE_REQUEST__INIT;
    u.id = 0x12u;
    u.n_peerurls = 1;
    u.peerurls = nurl;
    fx_unary(&f, CLUSTER "MemberUpdate", &u.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__MemberUpdateResponse *ur =
        etcdserverpb__member_update_response__unpack(NULL, r.last.len,
                                                     r.last.data);
    assert_non_null(ur);
    assert_string_equal(ur->members[0]->peerurls[0], "http://127.0.0.1:2391");
    assert_int_equal(ur->header->member_id, 0xa1);
    etcdserverpb__member_update_response__free_unpacked(ur, NULL);
    result_free(&r);

    Etcdserverpb__MemberRemoveRequest rm =
        ETCDSERVERPB__MEMBER_REMOVE_REQUEST__INIT;
    rm.id = 0x12u;
    fx_unary(&f, CLUSTER "MemberRemove", &rm.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    fx_unary(&f, CLUSTER "MemberRemove", &rm.base, &r);
    assert_int_equal(r.code, RPC_NOT_FOUND);
    assert_string_equal(r.msg, "etcdserver: member not found");
    result_free(&r);

    Etcdserverpb__MemberListRequest l = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    fx_unary(&f, CLUSTER "MemberList", &l.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__MemberListResponse *lr =
        etcdserverpb__member_list_response__unpack(NULL, r.last.len,
                                                   r.last.data);
    assert_non_null(lr);
    assert_int_equal(lr->n_members, 1);
    assert_int_equal(lr->members[0]->id, 0xa1);
    assert_int_equal(lr->header->cluster_id, 0xc1);
    etcdserverpb__member_list_response__free_unpacked(lr, NULL);
    result_free(&r);
    fx_close(&f);
}

static void test_maintenance(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct result r;
    Etcdserverpb__AlarmRequest al = ETCDSERVERPB__ALARM_REQUEST__INIT;
    al.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    al.memberid = 0xa1;
    al.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
    fx_unary(&f, MAINT "Alarm", &al.base, &r);
    assert_int_equal(r.code, RPC_OK);
    assert_true(f.fake.nospace_alarm);
    result_free(&r);
    al.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET;
    fx_unary(&f, MAINT "Alarm", &al.base, &r);
    Etcdserverpb__AlarmResponse *ar =
        etcdserverpb__alarm_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(ar);
    assert_int_equal(ar->n_alarms, 1);
    assert_int_equal(ar->alarms[0]->memberid, 0xa1);
    assert_int_equal(ar->alarms[0]->alarm, ETCDSERVERPB__ALARM_TYPE__NOSPACE);
    etcdserverpb__alarm_response__free_unpacked(ar, NULL);
    result_free(&r);
    /* an action etcd does not know: an empty answer */
    al.action = (Etcdserverpb__AlarmRequest__AlarmAction)7;
    fx_unary(&f, MAINT "Alarm", &al.base, &r);
    assert_int_equal(r.code, RPC_OK);
    ar = etcdserverpb__alarm_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(ar);
    assert_int_equal(ar->n_alarms, 0);
    assert_int_equal(ar->header->member_id, 0xa1);
    etcdserverpb__alarm_response__free_unpacked(ar, NULL);
    result_free(&r);
    al.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE;
    fx_unary(&f, MAINT "Alarm", &al.base, &r);
    assert_int_equal(r.code, RPC_OK);
    assert_false(f.fake.nospace_alarm);
    result_free(&r);

    Etcdserverpb__HashRequest h = ETCDSERVERPB__HASH_REQUEST__INIT;
    fx_unary(&f, MAINT "Hash", &h.base, &r);
    Etcdserverpb__HashResponse *hr =
        etcdserverpb__hash_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(hr);
    assert_int_equal(hr->hash, 0xabc1);
    etcdserverpb__hash_response__free_unpacked(hr, NULL);
    result_free(&r);
    Etcdserverpb__HashKVRequest hk = ETCDSERVERPB__HASH_KVREQUEST__INIT;
    fx_unary(&f, MAINT "HashKV", &hk.base, &r);
    Etcdserverpb__HashKVResponse *hkr =
        etcdserverpb__hash_kvresponse__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(hkr);
    assert_int_equal(hkr->hash, 0xdef1);
    assert_int_equal(hkr->compact_revision, -1);
    etcdserverpb__hash_kvresponse__free_unpacked(hkr, NULL);
    result_free(&r);

    Etcdserverpb__DefragmentRequest d = ETCDSERVERPB__DEFRAGMENT_REQUEST__INIT;
    fx_unary(&f, MAINT "Defragment", &d.base, &r);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(f.fake.defrags, 1);
    Etcdserverpb__DefragmentResponse *dr =
        etcdserverpb__defragment_response__unpack(NULL, r.last.len,
                                                  r.last.data);
    assert_non_null(dr);
    assert_int_equal(dr->header->member_id, 0xa1);
    etcdserverpb__defragment_response__free_unpacked(dr, NULL);
    result_free(&r);

    Etcdserverpb__MoveLeaderRequest m = ETCDSERVERPB__MOVE_LEADER_REQUEST__INIT;
    m.targetid = 0xa1;
    fx_unary(&f, MAINT "MoveLeader", &m.base, &r);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(f.fake.leader, 0xa1);
    result_free(&r);
    m.targetid = 5; /* etcd: "etcdserver: bad leader transferee" */
    fx_unary(&f, MAINT "MoveLeader", &m.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: bad leader transferee");
    result_free(&r);
    fx_close(&f);
}

struct snap_got {
    struct buf data;
    int msgs, done, code;
    uint64_t last_remaining;
    bool remaining_ok;
};

static void snap_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                     size_t n)
{
    (void)call;
    struct snap_got *g = arg;
    Etcdserverpb__SnapshotResponse *s =
        etcdserverpb__snapshot_response__unpack(NULL, n, d);
    assert_non_null(s);
    assert_int_equal(buf_append(&g->data, s->blob.data, s->blob.len), 0);
    if (g->msgs > 0 && s->remaining_bytes > g->last_remaining)
        g->remaining_ok = false;
    g->last_remaining = s->remaining_bytes;
    g->msgs++;
    etcdserverpb__snapshot_response__free_unpacked(s, NULL);
}

static void snap_end(void *arg, struct rpc_call *call, int code,
                     const char *msg)
{
    (void)call;
    (void)msg;
    struct snap_got *g = arg;
    g->done++;
    g->code = code;
}

static void test_snapshot(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    static const struct rpc_call_cbs cbs = {NULL, snap_msg, NULL, NULL,
                                            snap_end};
    struct snap_got g = {.remaining_ok = true};
    buf_init(&g.data);
    struct rpc_call *call;
    assert_int_equal(
        rpc_client_call(f.cl, MAINT "Snapshot", -1, NULL, &cbs, &g, &call), 0);
    Etcdserverpb__SnapshotRequest q = ETCDSERVERPB__SNAPSHOT_REQUEST__INIT;
    uint8_t qb[8];
    size_t qn = etcdserverpb__snapshot_request__pack(&q, qb);
    assert_int_equal(rpc_call_send(call, qb, qn), 0);
    rpc_call_close_send(call);
    RUN_UNTIL(&f, g.done == 1);
    assert_int_equal(g.code, RPC_OK);
    assert_true(g.remaining_ok);
    assert_int_equal(g.last_remaining, 0);
    /* 100,000 bytes padded to 100,352 (196 * 512), then the digest:
     * etcdctl's check is size % 512 == 32 */
    assert_int_equal(g.data.len, 100352 + 32);
    assert_int_equal(g.data.len % 512, 32);
    assert_true(g.msgs >= 5);
    assert_int_equal(g.data.data[999], (uint8_t)(999 * 7 + 3));
    assert_int_equal(g.data.data[100000], 0);
    uint8_t sum[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    assert_int_equal(
        EVP_Digest(g.data.data, 100352, sum, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
    assert_memory_equal(sum, g.data.data + 100352, 32);
    buf_free(&g.data);
    fx_close(&f);
}

int test_cluster_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_maintenance),
        cmocka_unit_test(test_snapshot),
    };
    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
