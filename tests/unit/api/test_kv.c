/* The services through rpc, against the fake member: KV, Maintenance.Status
 * and Auth while disabled, their errors in etcd's words, bad input, and
 * clients that leave while their request is with the member. */
#include <string.h>

#include "fake.h"

#define BIN(s) ((ProtobufCBinaryData){sizeof(s) - 1, (uint8_t *)(s)})
#define KV "/etcdserverpb.KV/"

static void put_kv(struct fx *f, const char *k, const char *v)
{
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = (ProtobufCBinaryData){strlen(k), (uint8_t *)k};
    p.value = (ProtobufCBinaryData){strlen(v), (uint8_t *)v};
    struct result r;
    fx_unary(f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
}

static void test_put_range(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = BIN("foo");
    p.value = BIN("bar");
    struct result r;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.n_msgs, 1);
    Etcdserverpb__PutResponse *pr =
        etcdserverpb__put_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(pr);
    assert_int_equal(pr->header->cluster_id, 0xc1);
    assert_int_equal(pr->header->member_id, 0xa1);
    assert_int_equal(pr->header->revision, 2);
    assert_int_equal(pr->header->raft_term, 2);
    assert_null(pr->prev_kv);
    etcdserverpb__put_response__free_unpacked(pr, NULL);
    result_free(&r);

    /* again with prev_kv */
    p.value = BIN("baz");
    p.prev_kv = 1;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_OK);
    pr = etcdserverpb__put_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(pr);
    assert_non_null(pr->prev_kv);
    assert_memory_equal(pr->prev_kv->value.data, "bar", 3);
    assert_int_equal(pr->header->revision, 3);
    etcdserverpb__put_response__free_unpacked(pr, NULL);
    result_free(&r);

    put_kv(&f, "foo1", "a");
    put_kv(&f, "fop", "b");
    Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
    q.key = BIN("foo");
    q.range_end = BIN("fop"); /* prefix "foo" */
    q.serializable = 1;
    fx_unary(&f, KV "Range", &q.base, &r);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(f.fake.serializable_reads, 1);
    Etcdserverpb__RangeResponse *rr =
        etcdserverpb__range_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(rr);
    assert_int_equal(rr->n_kvs, 2);
    assert_int_equal(rr->count, 2);
    assert_memory_equal(rr->kvs[0]->key.data, "foo", 3);
    assert_memory_equal(rr->kvs[0]->value.data, "baz", 3);
    assert_int_equal(rr->kvs[0]->version, 2);
    assert_int_equal(rr->kvs[0]->create_revision, 2);
    assert_int_equal(rr->kvs[0]->mod_revision, 3);
    assert_memory_equal(rr->kvs[1]->key.data, "foo1", 4);
    assert_int_equal(rr->header->revision, 5);
    etcdserverpb__range_response__free_unpacked(rr, NULL);
    result_free(&r);

    /* limit: more and the whole count */
    q.limit = 1;
    q.serializable = 0;
    fx_unary(&f, KV "Range", &q.base, &r);
    rr = etcdserverpb__range_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(rr);
    assert_int_equal(rr->n_kvs, 1);
    assert_true(rr->more);
    assert_int_equal(rr->count, 2);
    etcdserverpb__range_response__free_unpacked(rr, NULL);
    result_free(&r);
    fx_close(&f);
}

static void test_delete_txn_compact(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    put_kv(&f, "a", "1");
    put_kv(&f, "b", "2");
    put_kv(&f, "c", "3");

    Etcdserverpb__DeleteRangeRequest d =
        ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    d.key = BIN("a");
    d.range_end = BIN("c");
    d.prev_kv = 1;
    struct result r;
    fx_unary(&f, KV "DeleteRange", &d.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__DeleteRangeResponse *dr =
        etcdserverpb__delete_range_response__unpack(NULL, r.last.len,
                                                    r.last.data);
    assert_non_null(dr);
    assert_int_equal(dr->deleted, 2);
    assert_int_equal(dr->n_prev_kvs, 2);
    assert_memory_equal(dr->prev_kvs[1]->value.data, "2", 1);
    assert_int_equal(dr->header->revision, 5);
    etcdserverpb__delete_range_response__free_unpacked(dr, NULL);
    result_free(&r);

    /* txn: if c == "3" then put c=4, get c else get a */
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.key = BIN("c");
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
    cmp.value = BIN("3");
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = BIN("c");
    put.value = BIN("4");
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key = BIN("c");
    Etcdserverpb__RequestOp ops[2] = {ETCDSERVERPB__REQUEST_OP__INIT,
                                      ETCDSERVERPB__REQUEST_OP__INIT};
    ops[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    ops[0].request_put = &put;
    ops[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    ops[1].request_range = &get;
    Etcdserverpb__RequestOp *succ[2] = {&ops[0], &ops[1]};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 1;
    t.compare = cmps;
    t.n_success = 2;
    t.success = succ;
    t.n_failure = 1;
    t.failure = &succ[1];
    fx_unary(&f, KV "Txn", &t.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__TxnResponse *tr =
        etcdserverpb__txn_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(tr);
    assert_true(tr->succeeded);
    assert_int_equal(tr->header->revision, 6);
    assert_int_equal(tr->header->member_id, 0xa1);
    assert_int_equal(tr->n_responses, 2);
    assert_int_equal(tr->responses[1]->response_range->n_kvs, 1);
    assert_memory_equal(tr->responses[1]->response_range->kvs[0]->value.data,
                        "4", 1);
    etcdserverpb__txn_response__free_unpacked(tr, NULL);
    result_free(&r);

    /* the same txn now fails its compare and only reads */
    fx_unary(&f, KV "Txn", &t.base, &r);
    tr = etcdserverpb__txn_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(tr);
    assert_false(tr->succeeded);
    assert_int_equal(tr->header->revision, 6);
    assert_int_equal(tr->n_responses, 1);
    etcdserverpb__txn_response__free_unpacked(tr, NULL);
    result_free(&r);

    /* too many ops, with the default --max-txn-ops of 128 */
    Etcdserverpb__RequestOp *many[129];
    for (int i = 0; i < 129; i++)
        many[i] = &ops[1];
    t.n_success = 129;
    t.success = many;
    fx_unary(&f, KV "Txn", &t.base, &r);
    assert_int_equal(r.code, RPC_INVALID_ARGUMENT);
    assert_string_equal(r.msg,
                        "etcdserver: too many operations in txn request");
    result_free(&r);

    Etcdserverpb__CompactionRequest c = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    c.revision = 5;
    fx_unary(&f, KV "Compact", &c.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__CompactionResponse *cr =
        etcdserverpb__compaction_response__unpack(NULL, r.last.len,
                                                  r.last.data);
    assert_non_null(cr);
    assert_int_equal(cr->header->revision, 6);
    etcdserverpb__compaction_response__free_unpacked(cr, NULL);
    result_free(&r);
    fx_unary(&f, KV "Compact", &c.base, &r);
    assert_int_equal(r.code, RPC_OUT_OF_RANGE);
    assert_string_equal(
        r.msg, "etcdserver: mvcc: required revision has been compacted");
    result_free(&r);
    c.revision = 100;
    fx_unary(&f, KV "Compact", &c.base, &r);
    assert_int_equal(r.code, RPC_OUT_OF_RANGE);
    assert_string_equal(
        r.msg, "etcdserver: mvcc: required revision is a future revision");
    result_free(&r);
    Etcdserverpb__RangeRequest old = ETCDSERVERPB__RANGE_REQUEST__INIT;
    old.key = BIN("a");
    old.revision = 3;
    fx_unary(&f, KV "Range", &old.base, &r);
    assert_int_equal(r.code, RPC_OUT_OF_RANGE);
    assert_string_equal(
        r.msg, "etcdserver: mvcc: required revision has been compacted");
    result_free(&r);
    fx_close(&f);
}

static void test_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct result r;
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_INVALID_ARGUMENT);
    assert_string_equal(r.msg, "etcdserver: key is not provided");
    result_free(&r);
    p.key = BIN("k");
    p.ignore_lease = 1;
    p.lease = 3;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_string_equal(r.msg, "etcdserver: lease is provided");
    result_free(&r);
    p.lease = 0;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_INVALID_ARGUMENT);
    assert_string_equal(r.msg, "etcdserver: key not found");
    result_free(&r);
    /* the member's own failures */
    p.ignore_lease = 0;
    f.fake.fail_next = CAIRN_ENOLEADER;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_UNAVAILABLE);
    assert_string_equal(r.msg, "etcdserver: no leader");
    result_free(&r);
    f.fake.fail_next = CAIRN_EQUOTA;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_RESOURCE_EXHAUSTED);
    assert_string_equal(r.msg, "etcdserver: mvcc: database space exceeded");
    result_free(&r);
    /* refused at once by the member (e.g. stopping) */
    f.fake.refuse_next = CAIRN_ESHUTDOWN;
    fx_unary(&f, KV "Put", &p.base, &r);
    assert_int_equal(r.code, RPC_UNAVAILABLE);
    assert_string_equal(r.msg, "etcdserver: server stopped");
    result_free(&r);
    f.fake.fail_next = CAIRN_ETIMEOUT;
    Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
    q.key = BIN("k");
    fx_unary(&f, KV "Range", &q.base, &r);
    assert_int_equal(r.code, RPC_UNAVAILABLE);
    assert_string_equal(r.msg, "etcdserver: request timed out");
    result_free(&r);
    fx_close(&f);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct result r;
    /* a field 1 of length 100 in a 3-byte message */
    static const uint8_t truncated[] = {0x0a, 0x64, 0x41};
    fx_unary_raw(&f, KV "Range", truncated, sizeof(truncated), &r);
    assert_int_equal(r.code, RPC_INTERNAL);
    assert_non_null(strstr(r.msg, "grpc: error unmarshalling request"));
    result_free(&r);
    /* no message at all before the half-close */
    fx_unary_raw(&f, KV "Put", NULL, 0, &r);
    assert_int_equal(r.code, RPC_INTERNAL);
    result_free(&r);
    /* unknown methods and services, in grpc-go's words */
    fx_unary_raw(&f, KV "Nope", truncated, 0, &r);
    assert_int_equal(r.code, RPC_UNIMPLEMENTED);
    assert_string_equal(r.msg,
                        "unknown method Nope for service etcdserverpb.KV");
    result_free(&r);
    fx_unary_raw(&f, "/etcdserverpb.Nope/Range", truncated, 0, &r);
    assert_int_equal(r.code, RPC_UNIMPLEMENTED);
    assert_string_equal(r.msg, "unknown service etcdserverpb.Nope");
    result_free(&r);
    /* over the request limit: grpc's limit is the request limit + 512 KiB */
    struct api_config cfg = {.max_request_bytes = 1024};
    fx_close(&f);
    fx_open(&f, &cfg);
    size_t big = 1024 + (512u << 10) + 1;
    uint8_t *b = cairn_calloc(1, big);
    assert_non_null(b);
    fx_unary_raw(&f, KV "Put", b, big, &r);
    cairn_free(b);
    assert_int_equal(r.code, RPC_RESOURCE_EXHAUSTED);
    result_free(&r);
    /* and the server goes on serving */
    put_kv(&f, "still", "here");

    /* HTTP/1.1 on a gRPC path: Go's 404, as etcd's mux answers */
    struct buf got = BUF_INIT;
    fx_http_get(&f, "/etcdserverpb.KV/Range", &got);
    assert_non_null(strstr((char *)got.data, "HTTP/1.1 404"));
    buf_reset(&got);
    /* garbage bytes: the connection is closed without a word */
    static const char junk[] = "\x01\x02garbage that is no protocol\r\n\r\n";
    fx_raw(&f, junk, sizeof(junk) - 1, &got);
    assert_int_equal(got.len, 0);
    buf_free(&got);
    /* and the gRPC client on its own connection is still served */
    put_kv(&f, "after", "garbage");
    assert_int_equal(f.fake.rev, 3);
    fx_close(&f);
}

static void test_status_auth(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    f.fake.nospace_alarm = true;
    Etcdserverpb__StatusRequest sr = ETCDSERVERPB__STATUS_REQUEST__INIT;
    struct result r;
    fx_unary(&f, "/etcdserverpb.Maintenance/Status", &sr.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__StatusResponse *st =
        etcdserverpb__status_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(st);
    assert_string_equal(st->version, "3.4.23");
    assert_int_equal(st->leader, 0x1111);
    assert_int_equal(st->raftindex, 40);
    assert_int_equal(st->raftappliedindex, 39);
    assert_int_equal(st->header->revision, 1);
    assert_int_equal(st->header->raft_term, 2);
    assert_int_equal(st->raftterm, 2);
    assert_int_equal(st->dbsize, 20480);
    assert_int_equal(st->dbsizeinuse, 16384);
    assert_int_equal(st->header->member_id, 0xa1);
    assert_int_equal(st->n_errors, 1);
    assert_string_equal(st->errors[0], "memberID:161 alarm:NOSPACE ");
    etcdserverpb__status_response__free_unpacked(st, NULL);
    result_free(&r);

    Etcdserverpb__AuthenticateRequest ar =
        ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    ar.name = (char *)"root";
    ar.password = (char *)"pw";
    fx_unary(&f, "/etcdserverpb.Auth/Authenticate", &ar.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: authentication is not enabled");
    result_free(&r);
    Etcdserverpb__AuthEnableRequest ae =
        ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
    fx_unary(&f, "/etcdserverpb.Auth/AuthEnable", &ae.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: root user does not exist");
    result_free(&r);
    Etcdserverpb__AuthDisableRequest ad =
        ETCDSERVERPB__AUTH_DISABLE_REQUEST__INIT;
    fx_unary(&f, "/etcdserverpb.Auth/AuthDisable", &ad.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    Etcdserverpb__AuthUserListRequest ul =
        ETCDSERVERPB__AUTH_USER_LIST_REQUEST__INIT;
    fx_unary(&f, "/etcdserverpb.Auth/UserList", &ul.base, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__AuthUserListResponse *ulr =
        etcdserverpb__auth_user_list_response__unpack(NULL, r.last.len,
                                                      r.last.data);
    assert_non_null(ulr);
    assert_int_equal(ulr->n_users, 0);
    assert_int_equal(ulr->header->cluster_id, 0xc1);
    assert_int_equal(ulr->header->raft_term, 2);
    etcdserverpb__auth_user_list_response__free_unpacked(ulr, NULL);
    result_free(&r);
    Etcdserverpb__AuthUserGetRequest ug =
        ETCDSERVERPB__AUTH_USER_GET_REQUEST__INIT;
    ug.name = (char *)"bob";
    fx_unary(&f, "/etcdserverpb.Auth/UserGet", &ug.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: user name not found");
    result_free(&r);
    Etcdserverpb__AuthRoleDeleteRequest rd =
        ETCDSERVERPB__AUTH_ROLE_DELETE_REQUEST__INIT;
    rd.role = (char *)"r";
    fx_unary(&f, "/etcdserverpb.Auth/RoleDelete", &rd.base, &r);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: role name not found");
    result_free(&r);
    fx_close(&f);
}

static void test_client_leaves(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    f.fake.hold = true;
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = BIN("k");
    p.value = BIN("v");
    size_t n = etcdserverpb__put_request__get_packed_size(&p);
    uint8_t buf[64];
    assert_true(n <= sizeof(buf));
    etcdserverpb__put_request__pack(&p, buf);
    /* two puts wait with the member; the client cancels the second */
    struct result a, b;
    fx_call_start(&f, KV "Put", buf, n, &a);
    fx_call_start(&f, KV "Put", buf, n, &b);
    RUN_UNTIL(&f, f.fake.n_held == 2);
    rpc_call_cancel(b.call);
    RUN_UNTIL(&f, b.done == 1);
    assert_int_equal(b.code, RPC_CANCELLED);
    RUN_UNTIL(&f, rpc_server_call_count(api_rpc_server(f.api)) == 1);
    /* the member completes both later: the first is answered, the
     * cancelled one only freed */
    fake_release(&f.fake);
    RUN_UNTIL(&f, a.done == 1);
    assert_int_equal(a.code, RPC_OK);
    assert_int_equal(f.fake.rev, 3);
    result_free(&a);
    result_free(&b);

    /* the api closes with a put held: the completion comes after it */
    f.fake.hold = true;
    struct result c;
    fx_call_start(&f, KV "Put", buf, n, &c);
    RUN_UNTIL(&f, f.fake.n_held == 1);
    rpc_client_close(f.cl);
    api_close(f.api);
    LOOP_DRAIN(&f.loop);
    assert_int_equal(c.done, 1);
    assert_int_not_equal(c.code, RPC_OK);
    fake_release(&f.fake);
    assert_int_equal(ru_loop_close(&f.loop), 0);
    result_free(&c);
    fake_free(&f.fake);
}

int test_kv_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_range),
        cmocka_unit_test(test_delete_txn_compact),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_status_auth),
        cmocka_unit_test(test_client_leaves),
    };
    return cmocka_run_group_tests_name("kv", tests, NULL, NULL);
}
