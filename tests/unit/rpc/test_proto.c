/* The generated etcd wire types: packing gives the bytes a hand encoding of
 * etcd's field numbers predicts, and unpacking those bytes gives the fields
 * back, so a renumbered or retyped field in src/proto fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "proto/proto.h"

/* Packs a message into a fixed buffer and compares it with `want`. */
#define CHECK_PACKED(msg, prefix, want)                            \
    do {                                                           \
        uint8_t out_[256];                                         \
        size_t n_ = prefix##__get_packed_size(msg);                \
        assert_int_equal(n_, sizeof(want));                        \
        assert_true(n_ <= sizeof(out_));                           \
        assert_int_equal(prefix##__pack(msg, out_), sizeof(want)); \
        assert_memory_equal(out_, want, sizeof(want));             \
    } while (0)

static ProtobufCBinaryData bin(const char *s)
{
    ProtobufCBinaryData b = {strlen(s), (uint8_t *)(uintptr_t)s};
    return b;
}

static void put_request(void **state)
{
    (void)state;
    Etcdserverpb__PutRequest m = ETCDSERVERPB__PUT_REQUEST__INIT;
    m.key = bin("a");
    m.value = bin("b");
    m.lease = 5;
    m.prev_kv = 1;
    /* key=1 bytes, value=2 bytes, lease=3 varint, prev_kv=4 varint */
    static const uint8_t want[] = {0x0a, 1,    'a', 0x12, 1,
                                   'b',  0x18, 5,   0x20, 1};
    CHECK_PACKED(&m, etcdserverpb__put_request, want);

    Etcdserverpb__PutRequest *u =
        etcdserverpb__put_request__unpack(NULL, sizeof(want), want);
    assert_non_null(u);
    assert_int_equal(u->key.len, 1);
    assert_memory_equal(u->key.data, "a", 1);
    assert_memory_equal(u->value.data, "b", 1);
    assert_int_equal(u->lease, 5);
    assert_true(u->prev_kv);
    assert_false(u->ignore_value);
    etcdserverpb__put_request__free_unpacked(u, NULL);
}

static void range_request_enums(void **state)
{
    (void)state;
    Etcdserverpb__RangeRequest m = ETCDSERVERPB__RANGE_REQUEST__INIT;
    m.key = bin("foo");
    m.range_end = bin("fop");
    m.limit = 10;
    m.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    m.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD;
    m.max_create_revision = 1;
    /* sort_order=5 (DESCEND=2), sort_target=6 (MOD=3), field 13 varint */
    static const uint8_t want[] = {0x0a, 3,   'f',  'o', 'o',  0x12,
                                   3,    'f', 'o',  'p', 0x18, 10,
                                   0x28, 2,   0x30, 3,   0x68, 1};
    CHECK_PACKED(&m, etcdserverpb__range_request, want);
}

static void negative_int64_is_ten_bytes(void **state)
{
    (void)state;
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
    kv.lease = -1; /* int64, not sint64: two's complement in 10 bytes */
    kv.mod_revision = 300;
    static const uint8_t want[] = {0x18, 0xac, 0x02, 0x30, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_PACKED(&kv, mvccpb__key_value, want);
    Mvccpb__KeyValue *u = mvccpb__key_value__unpack(NULL, sizeof(want), want);
    assert_non_null(u);
    assert_int_equal(u->lease, -1);
    assert_int_equal(u->mod_revision, 300);
    mvccpb__key_value__free_unpacked(u, NULL);
}

static void status_response_nested_header(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.cluster_id = 1;
    h.member_id = 2;
    h.revision = 300;
    h.raft_term = 4;
    Etcdserverpb__StatusResponse m = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    m.header = &h;
    m.version = "3.4.0";
    m.leader = 2;
    m.islearner = 1;
    static const uint8_t want[] = {
        0x0a, 9, 0x08, 1,   0x10, 2,   0x18, 0xac, 0x02, 0x20, 4, /* hdr */
        0x12, 5, '3',  '.', '4',  '.', '0',                       /* ver */
        0x20, 2,                                                  /* 4 */
        0x50, 1};                                                 /* 10 */
    CHECK_PACKED(&m, etcdserverpb__status_response, want);
}

static void watch_request_oneof_and_packed_filters(void **state)
{
    (void)state;
    Etcdserverpb__WatchCreateRequest c =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key = bin("k");
    Etcdserverpb__WatchCreateRequest__FilterType f[2] = {
        ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT,
        ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE};
    c.n_filters = 2;
    c.filters = f;
    c.prev_kv = 1;
    Etcdserverpb__WatchRequest w = ETCDSERVERPB__WATCH_REQUEST__INIT;
    w.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    w.create_request = &c;
    /* proto3 packs repeated enums: field 5, length 2, values 0 and 1 */
    static const uint8_t want[] = {0x0a, 9,    0x0a, 1,    'k', 0x2a,
                                   2,    0x00, 0x01, 0x30, 1};
    CHECK_PACKED(&w, etcdserverpb__watch_request, want);
    Etcdserverpb__WatchRequest *u =
        etcdserverpb__watch_request__unpack(NULL, sizeof(want), want);
    assert_non_null(u);
    assert_int_equal(u->request_union_case,
                     ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST);
    assert_int_equal(u->create_request->n_filters, 2);
    assert_int_equal(u->create_request->filters[1],
                     ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE);
    etcdserverpb__watch_request__free_unpacked(u, NULL);
}

static void txn_request_ops(void **state)
{
    (void)state;
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = bin("x");
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    op.request_put = &p;
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER; /* 1 */
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;     /* 2 */
    cmp.key = bin("x");
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
    cmp.mod_revision = 7; /* field 6 */
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    Etcdserverpb__RequestOp *ops[1] = {&op};
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
    t.n_compare = 1;
    t.compare = cmps;
    t.n_failure = 1; /* field 3 */
    t.failure = ops;
    static const uint8_t want[] = {
        0x0a, 9, 0x08, 1, 0x10, 2, 0x1a, 1, 'x', 0x30, 7, /* compare */
        0x1a, 5, 0x12, 3, 0x0a, 1, 'x'}; /* failure: request_put */
    CHECK_PACKED(&t, etcdserverpb__txn_request, want);
}

static void lock_and_election(void **state)
{
    (void)state;
    V3lockpb__LockRequest l = V3LOCKPB__LOCK_REQUEST__INIT;
    l.name = bin("n");
    l.lease = 2;
    static const uint8_t want_lock[] = {0x0a, 1, 'n', 0x10, 2};
    CHECK_PACKED(&l, v3lockpb__lock_request, want_lock);

    V3electionpb__LeaderKey k = V3ELECTIONPB__LEADER_KEY__INIT;
    k.rev = 3;
    k.lease = 4;
    V3electionpb__ProclaimRequest pr = V3ELECTIONPB__PROCLAIM_REQUEST__INIT;
    pr.leader = &k;
    pr.value = bin("v");
    static const uint8_t want_pr[] = {0x0a, 4, 0x18, 3, 0x20, 4, 0x12, 1, 'v'};
    CHECK_PACKED(&pr, v3electionpb__proclaim_request, want_pr);
}

static void service_descriptors(void **state)
{
    (void)state;
    /* gRPC paths are "/<package>.<Service>/<Method>", from these names. */
    const ProtobufCServiceDescriptor *kv = &etcdserverpb__kv__descriptor;
    assert_string_equal(kv->name, "etcdserverpb.KV");
    assert_int_equal(kv->n_methods, 5);
    const ProtobufCServiceDescriptor *m =
        &etcdserverpb__maintenance__descriptor;
    assert_string_equal(m->name, "etcdserverpb.Maintenance");
    assert_int_equal(m->n_methods, 7);
    assert_string_equal(etcdserverpb__watch__descriptor.name,
                        "etcdserverpb.Watch");
    assert_string_equal(etcdserverpb__lease__descriptor.name,
                        "etcdserverpb.Lease");
    assert_string_equal(etcdserverpb__cluster__descriptor.name,
                        "etcdserverpb.Cluster");
    assert_int_equal(etcdserverpb__auth__descriptor.n_methods, 16);
    assert_string_equal(v3lockpb__lock__descriptor.name, "v3lockpb.Lock");
    assert_string_equal(v3electionpb__election__descriptor.name,
                        "v3electionpb.Election");
    assert_int_equal(v3electionpb__election__descriptor.n_methods, 5);
}

static void malformed_input_rejected(void **state)
{
    (void)state;
    /* a length that runs past the end, and a truncated varint */
    static const uint8_t bad1[] = {0x0a, 5, 'a'};
    static const uint8_t bad2[] = {0x18, 0xff};
    assert_null(etcdserverpb__put_request__unpack(NULL, sizeof(bad1), bad1));
    assert_null(etcdserverpb__put_request__unpack(NULL, sizeof(bad2), bad2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_request),
        cmocka_unit_test(range_request_enums),
        cmocka_unit_test(negative_int64_is_ten_bytes),
        cmocka_unit_test(status_response_nested_header),
        cmocka_unit_test(watch_request_oneof_and_packed_filters),
        cmocka_unit_test(txn_request_ops),
        cmocka_unit_test(lock_and_election),
        cmocka_unit_test(service_descriptors),
        cmocka_unit_test(malformed_input_rejected),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
