/* Conversions between etcd's wire messages and mvcc's request and response
 * types, with etcd's request checks. */
#include <string.h>

#include "fake.h"

#define BIN(s) ((ProtobufCBinaryData){sizeof(s) - 1, (uint8_t *)(s)})

static void test_range_request(void **state)
{
    (void)state;
    Etcdserverpb__RangeRequest in = ETCDSERVERPB__RANGE_REQUEST__INIT;
    struct mvcc_range_req out;
    assert_int_equal(api_range_from_pb(&in, &out), CAIRN_EEMPTYKEY);
    in.key = BIN("a");
    in.range_end = BIN("b");
    in.limit = 7;
    in.revision = 9;
    in.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    in.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD;
    in.keys_only = 1;
    in.count_only = 1;
    in.min_mod_revision = 1;
    in.max_mod_revision = 2;
    in.min_create_revision = 3;
    in.max_create_revision = 4;
    assert_int_equal(api_range_from_pb(&in, &out), 0);
    assert_memory_equal(out.key, "a", 1);
    assert_int_equal(out.key_len, 1);
    assert_memory_equal(out.end, "b", 1);
    assert_int_equal(out.end_len, 1);
    assert_int_equal(out.limit, 7);
    assert_int_equal(out.revision, 9);
    assert_int_equal(out.sort_order, MVCC_SORT_DESCEND);
    assert_int_equal(out.sort_target, MVCC_SORT_MOD);
    assert_true(out.keys_only && out.count_only);
    assert_int_equal(out.min_mod_rev, 1);
    assert_int_equal(out.max_mod_rev, 2);
    assert_int_equal(out.min_create_rev, 3);
    assert_int_equal(out.max_create_rev, 4);
    /* values a newer client might send fall back to the defaults */
    in.sort_order = (Etcdserverpb__RangeRequest__SortOrder)9;
    in.sort_target = (Etcdserverpb__RangeRequest__SortTarget)9;
    assert_int_equal(api_range_from_pb(&in, &out), 0);
    assert_int_equal(out.sort_order, MVCC_SORT_NONE);
    assert_int_equal(out.sort_target, MVCC_SORT_KEY);
}

static void test_put_delete_requests(void **state)
{
    (void)state;
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    struct mvcc_put_req pr;
    assert_int_equal(api_put_from_pb(&p, &pr), CAIRN_EEMPTYKEY);
    p.key = BIN("k");
    p.value = BIN("v");
    p.ignore_value = 1;
    assert_int_equal(api_put_from_pb(&p, &pr), CAIRN_EVALUEPROVIDED);
    p.ignore_value = 0;
    p.ignore_lease = 1;
    p.lease = 5;
    assert_int_equal(api_put_from_pb(&p, &pr), CAIRN_ELEASEPROVIDED);
    p.ignore_lease = 0;
    p.prev_kv = 1;
    assert_int_equal(api_put_from_pb(&p, &pr), 0);
    assert_int_equal(pr.lease, 5);
    assert_true(pr.prev_kv);
    assert_int_equal(pr.value_len, 1);
    assert_memory_equal(pr.value, "v", 1);

    Etcdserverpb__DeleteRangeRequest d =
        ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    struct mvcc_delete_req dr;
    assert_int_equal(api_delete_from_pb(&d, &dr), CAIRN_EEMPTYKEY);
    d.key = BIN("a");
    d.range_end = BIN("\0");
    d.prev_kv = 1;
    assert_int_equal(api_delete_from_pb(&d, &dr), 0);
    assert_int_equal(dr.end_len, 1);
    assert_int_equal(dr.end[0], 0);
    assert_true(dr.prev_kv);
}

static void test_txn_request(void **state)
{
    (void)state;
    Etcdserverpb__Compare c[2] = {ETCDSERVERPB__COMPARE__INIT,
                                  ETCDSERVERPB__COMPARE__INIT};
    c[0].key = BIN("k");
    c[0].target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
    c[0].result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL;
    c[0].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
    c[0].value = BIN("old");
    c[1].key = BIN("k");
    c[1].target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
    c[1].result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS;
    c[1].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
    c[1].mod_revision = 12;
    Etcdserverpb__Compare *cmps[2] = {&c[0], &c[1]};

    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = BIN("k");
    put.value = BIN("new");
    Etcdserverpb__RangeRequest rng = ETCDSERVERPB__RANGE_REQUEST__INIT;
    rng.key = BIN("k");
    Etcdserverpb__TxnRequest inner = ETCDSERVERPB__TXN_REQUEST__INIT;
    Etcdserverpb__RequestOp ops[3] = {ETCDSERVERPB__REQUEST_OP__INIT,
                                      ETCDSERVERPB__REQUEST_OP__INIT,
                                      ETCDSERVERPB__REQUEST_OP__INIT};
    ops[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    ops[0].request_put = &put;
    ops[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
    ops[1].request_txn = &inner;
    ops[2].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    ops[2].request_range = &rng;
    Etcdserverpb__RequestOp *succ[2] = {&ops[0], &ops[1]};
    Etcdserverpb__RequestOp *fail[1] = {&ops[2]};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 2;
    t.compare = cmps;
    t.n_success = 2;
    t.success = succ;
    t.n_failure = 1;
    t.failure = fail;
    /* the inner txn reads in its failure branch */
    inner.n_failure = 1;
    inner.failure = fail;

    struct api_arena arena;
    api_arena_init(&arena);
    struct mvcc_txn_req out;
    assert_int_equal(api_txn_from_pb(&t, 0, &arena, &out), 0);
    assert_int_equal(out.n_compares, 2);
    assert_int_equal(out.compares[0].target, MVCC_CMP_VALUE);
    assert_int_equal(out.compares[0].result, MVCC_CMP_NOT_EQUAL);
    assert_int_equal(out.compares[0].value_len, 3);
    assert_memory_equal(out.compares[0].value, "old", 3);
    assert_int_equal(out.compares[1].target, MVCC_CMP_MOD);
    assert_int_equal(out.compares[1].result, MVCC_CMP_LESS);
    assert_int_equal(out.compares[1].number, 12);
    assert_int_equal(out.n_success, 2);
    assert_int_equal(out.success[0].type, MVCC_OP_PUT);
    assert_int_equal(out.success[0].u.put.value_len, 3);
    assert_int_equal(out.success[1].type, MVCC_OP_TXN);
    assert_int_equal(out.success[1].u.txn->n_failure, 1);
    assert_int_equal(out.success[1].u.txn->failure[0].type, MVCC_OP_RANGE);
    assert_int_equal(out.n_failure, 1);
    assert_int_equal(out.failure[0].type, MVCC_OP_RANGE);

    /* --max-txn-ops, counted per branch as etcd does */
    assert_int_equal(api_txn_from_pb(&t, 1, &arena, &out), CAIRN_ETOOMANYOPS);
    /* an op that fails its own check fails the txn */
    put.key = (ProtobufCBinaryData){0, NULL};
    assert_int_equal(api_txn_from_pb(&t, 0, &arena, &out), CAIRN_EEMPTYKEY);
    put.key = BIN("k");
    /* an op with nothing set: etcd's checkRequestOp says "key not found" */
    Etcdserverpb__RequestOp empty = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__RequestOp *bad[1] = {&empty};
    t.failure = bad;
    assert_int_equal(api_txn_from_pb(&t, 0, &arena, &out), CAIRN_EKEYNOTFOUND);
    api_arena_free(&arena);
}

static void test_txn_depth(void **state)
{
    (void)state;
    /* a chain of 70 nested txns is refused, not recursed without bound */
    enum { DEPTH = 70 };
    Etcdserverpb__TxnRequest t[DEPTH];
    Etcdserverpb__RequestOp op[DEPTH];
    Etcdserverpb__RequestOp *opp[DEPTH];
    for (int i = 0; i < DEPTH; i++) {
        etcdserverpb__txn_request__init(&t[i]);
        etcdserverpb__request_op__init(&op[i]);
        opp[i] = &op[i];
    }
    for (int i = 0; i + 1 < DEPTH; i++) {
        op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
        op[i].request_txn = &t[i + 1];
        t[i].n_success = 1;
        t[i].success = &opp[i];
    }
    struct api_arena arena;
    api_arena_init(&arena);
    struct mvcc_txn_req out;
    assert_int_equal(api_txn_from_pb(&t[0], 0, &arena, &out), CAIRN_ETOOBIG);
    assert_int_equal(api_txn_from_pb(&t[DEPTH - 40], 0, &arena, &out), 0);
    api_arena_free(&arena);
}

/* Packs and unpacks, so the test sees what a client would. */
static ProtobufCMessage *roundtrip(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = cairn_malloc(n + 1);
    assert_non_null(p);
    protobuf_c_message_pack(m, p);
    ProtobufCMessage *back =
        protobuf_c_message_unpack(m->descriptor, NULL, n, p);
    cairn_free(p);
    assert_non_null(back);
    return back;
}

static void test_responses(void **state)
{
    (void)state;
    struct api_header h = {11, 22, 33, 44};
    struct mvcc_kv kvs[2] = {
        {(const uint8_t *)"a", 1, (const uint8_t *)"va", 2, 2, 3, 2, 0},
        {(const uint8_t *)"b", 1, NULL, 0, 4, 4, 1, 7},
    };
    struct mvcc_range_resp rr = {30, kvs, 2, true, 5};
    struct api_arena arena;
    api_arena_init(&arena);
    Etcdserverpb__RangeResponse out;
    assert_int_equal(api_range_to_pb(&h, &rr, &arena, &out), 0);
    Etcdserverpb__RangeResponse *back =
        (Etcdserverpb__RangeResponse *)roundtrip(&out.base);
    assert_int_equal(back->header->cluster_id, 11);
    assert_int_equal(back->header->member_id, 22);
    assert_int_equal(back->header->revision, 33);
    assert_int_equal(back->header->raft_term, 44);
    assert_int_equal(back->n_kvs, 2);
    assert_true(back->more);
    assert_int_equal(back->count, 5);
    assert_int_equal(back->kvs[0]->key.len, 1);
    assert_memory_equal(back->kvs[0]->value.data, "va", 2);
    assert_int_equal(back->kvs[0]->create_revision, 2);
    assert_int_equal(back->kvs[0]->mod_revision, 3);
    assert_int_equal(back->kvs[0]->version, 2);
    assert_int_equal(back->kvs[1]->lease, 7);
    assert_int_equal(back->kvs[1]->value.len, 0);
    protobuf_c_message_free_unpacked(&back->base, NULL);

    /* a txn's sub-responses carry the revision only, as etcd's apply */
    struct mvcc_kv prev = {
        (const uint8_t *)"a", 1, (const uint8_t *)"old", 3, 2, 2, 1, 0};
    struct mvcc_txn_resp inner = {.header_rev = 31, .succeeded = false};
    struct mvcc_op_resp subs[4];
    subs[0] = (struct mvcc_op_resp){.type = MVCC_OP_RANGE};
    subs[0].u.range = rr;
    subs[1] = (struct mvcc_op_resp){.type = MVCC_OP_PUT};
    subs[1].u.put = (struct mvcc_put_resp){31, &prev};
    subs[2] = (struct mvcc_op_resp){.type = MVCC_OP_DELETE};
    subs[2].u.del = (struct mvcc_delete_resp){31, 2, kvs, 2};
    subs[3] = (struct mvcc_op_resp){.type = MVCC_OP_TXN};
    subs[3].u.txn = &inner;
    struct mvcc_txn_resp tr = {31, true, subs, 4};
    Etcdserverpb__TxnResponse tout;
    assert_int_equal(api_txn_to_pb(&h, &tr, &arena, &tout), 0);
    Etcdserverpb__TxnResponse *tb =
        (Etcdserverpb__TxnResponse *)roundtrip(&tout.base);
    assert_true(tb->succeeded);
    assert_int_equal(tb->header->member_id, 22);
    assert_int_equal(tb->n_responses, 4);
    assert_int_equal(tb->responses[0]->response_case,
                     ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE);
    assert_int_equal(tb->responses[0]->response_range->header->revision, 30);
    assert_int_equal(tb->responses[0]->response_range->header->member_id, 0);
    assert_int_equal(tb->responses[1]->response_put->header->revision, 31);
    assert_memory_equal(tb->responses[1]->response_put->prev_kv->value.data,
                        "old", 3);
    assert_int_equal(tb->responses[2]->response_delete_range->deleted, 2);
    assert_int_equal(tb->responses[2]->response_delete_range->n_prev_kvs, 2);
    assert_int_equal(tb->responses[3]->response_case,
                     ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN);
    assert_false(tb->responses[3]->response_txn->succeeded);
    protobuf_c_message_free_unpacked(&tb->base, NULL);
    api_arena_free(&arena);
}

int test_convert_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_request),
        cmocka_unit_test(test_put_delete_requests),
        cmocka_unit_test(test_txn_request),
        cmocka_unit_test(test_txn_depth),
        cmocka_unit_test(test_responses),
    };
    return cmocka_run_group_tests_name("convert", tests, NULL, NULL);
}
