/* Node entry encoding tests: every internal request type survives an
 * encode/decode/encode round trip byte for byte, and truncated, extended or
 * randomly damaged input is refused cleanly (never a crash, never an
 * out-of-bounds read under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "node/node_int.h"
#include "tests_node.h"

#define B(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

/* Builds one request of each type into reqs (up to max); returns how
 * many. The structures point into static storage. */
static size_t sample_reqs(struct node__req *reqs, size_t max)
{
    static struct mvcc_compare cmps[2];
    static struct mvcc_op inner_ops[2], ops[3], fail_ops[1];
    static struct mvcc_txn_req inner;
    static int64_t ids[3] = {1, -2, 1LL << 40};
    static int64_t rem[3] = {10, 0, 9000000000LL};
    static struct node_member mem;
    size_t n = 0;
    CAIRN_ASSERT(max >= 9);
    memset(reqs, 0, max * sizeof(*reqs));

    reqs[n].type = NODE__E_PUT;
    reqs[n].id = 0x1234567890abcdefULL;
    reqs[n].u.put = (struct mvcc_put_req){.lease = 77, .prev_kv = true};
    reqs[n].u.put.key = (const uint8_t *)"foo";
    reqs[n].u.put.key_len = 3;
    reqs[n].u.put.value = (const uint8_t *)"bar\0baz";
    reqs[n].u.put.value_len = 7;
    n++;

    reqs[n].type = NODE__E_DELETE;
    reqs[n].id = 5;
    reqs[n].u.del.key = (const uint8_t *)"a";
    reqs[n].u.del.key_len = 1;
    reqs[n].u.del.end = (const uint8_t *)"\0";
    reqs[n].u.del.end_len = 1;
    reqs[n].u.del.prev_kv = true;
    n++;

    cmps[0] = (struct mvcc_compare){
        .result = MVCC_CMP_GREATER, .target = MVCC_CMP_MOD, .number = -3};
    cmps[0].key = (const uint8_t *)"k";
    cmps[0].key_len = 1;
    cmps[1] = (struct mvcc_compare){.result = MVCC_CMP_NOT_EQUAL,
                                    .target = MVCC_CMP_VALUE};
    cmps[1].key = (const uint8_t *)"k2";
    cmps[1].key_len = 2;
    cmps[1].value = (const uint8_t *)"v";
    cmps[1].value_len = 1;
    inner_ops[0].type = MVCC_OP_PUT;
    inner_ops[0].u.put.key = (const uint8_t *)"in";
    inner_ops[0].u.put.key_len = 2;
    inner_ops[0].u.put.ignore_lease = true;
    inner_ops[1].type = MVCC_OP_DELETE;
    inner_ops[1].u.del.key = (const uint8_t *)"x";
    inner_ops[1].u.del.key_len = 1;
    inner = (struct mvcc_txn_req){.success = inner_ops, .n_success = 2};
    ops[0].type = MVCC_OP_RANGE;
    ops[0].u.range = (struct mvcc_range_req){.limit = 10,
                                             .revision = 4,
                                             .sort_order = MVCC_SORT_DESCEND,
                                             .sort_target = MVCC_SORT_VALUE,
                                             .keys_only = true,
                                             .min_mod_rev = 1,
                                             .max_create_rev = 9};
    ops[0].u.range.key = (const uint8_t *)"r";
    ops[0].u.range.key_len = 1;
    ops[1].type = MVCC_OP_TXN;
    ops[1].u.txn = &inner;
    ops[2].type = MVCC_OP_PUT;
    ops[2].u.put.key = (const uint8_t *)"p";
    ops[2].u.put.key_len = 1;
    fail_ops[0].type = MVCC_OP_RANGE;
    fail_ops[0].u.range.count_only = true;
    reqs[n].type = NODE__E_TXN;
    reqs[n].id = 6;
    reqs[n].u.txn = (struct mvcc_txn_req){.compares = cmps,
                                          .n_compares = 2,
                                          .success = ops,
                                          .n_success = 3,
                                          .failure = fail_ops,
                                          .n_failure = 1};
    n++;

    reqs[n].type = NODE__E_COMPACT;
    reqs[n].id = 7;
    reqs[n].u.compact.rev = 1000;
    reqs[n].u.compact.physical = true;
    n++;

    reqs[n].type = NODE__E_LEASE_GRANT;
    reqs[n].u.grant.id = 0;
    reqs[n].u.grant.ttl_s = 60;
    n++;

    reqs[n].type = NODE__E_LEASE_REVOKE;
    reqs[n].id = 8;
    reqs[n].u.revoke_id = 123456789;
    n++;

    reqs[n].type = NODE__E_LEASE_CHECKPOINT;
    reqs[n].u.checkpoint.ids = ids;
    reqs[n].u.checkpoint.remaining_s = rem;
    reqs[n].u.checkpoint.n = 3;
    n++;

    reqs[n].type = NODE__E_ALARM;
    reqs[n].id = 9;
    reqs[n].u.alarm.action = NODE_ALARM_ACTIVATE;
    reqs[n].u.alarm.type = NODE_ALARM_NOSPACE;
    reqs[n].u.alarm.member = 0xfeedULL;
    n++;

    memset(&mem, 0, sizeof(mem));
    mem.id = 42;
    strcpy(mem.name, "infra1");
    mem.n_peer_urls = 2;
    strcpy(mem.peer_urls[0], "http://127.0.0.1:2380");
    strcpy(mem.peer_urls[1], "http://10.0.0.1:2380");
    mem.n_client_urls = 1;
    strcpy(mem.client_urls[0], "http://127.0.0.1:2379");
    mem.is_learner = true;
    reqs[n].type = NODE__E_MEMBER_UPDATE;
    reqs[n].id = 10;
    reqs[n].u.member = &mem;
    n++;

    reqs[n].type = NODE__E_AUTH;
    reqs[n].id = 11;
    reqs[n].u.auth = (struct auth_req){.op = AUTH_OP_USER_ADD,
                                       .name = (const uint8_t *)"root",
                                       .name_len = 4,
                                       .password = (const uint8_t *)"$2b$10$x",
                                       .password_len = 8};
    n++;
    reqs[n].type = NODE__E_AUTH;
    reqs[n].id = 12;
    reqs[n].u.auth = (struct auth_req){.op = AUTH_OP_ROLE_GRANT_PERMISSION,
                                       .name = (const uint8_t *)"r1",
                                       .name_len = 2,
                                       .no_password = true};
    reqs[n].u.auth.perm = (struct auth_perm){
        AUTH_PERM_READWRITE, (const uint8_t *)"k", 1, (const uint8_t *)"\0", 1};
    n++;
    reqs[n].type = NODE__E_V2;
    reqs[n].id = 13;
    reqs[n].u.v2 = (struct v2_req){.op = V2_OP_PUT,
                                   .prev_exist = V2_PREV_TRUE,
                                   .dir = false,
                                   .recursive = true,
                                   .refresh = true,
                                   .path = (const uint8_t *)"/a/b",
                                   .path_len = 4,
                                   .value = (const uint8_t *)"v\0",
                                   .value_len = 2,
                                   .prev_value = (const uint8_t *)"p",
                                   .prev_value_len = 1,
                                   .prev_index = 77,
                                   .expiration_ns = 1700000000000000000LL,
                                   .now_ns = -5};
    n++;
    reqs[n].type = NODE__E_V2;
    reqs[n].u.v2 = (struct v2_req){.op = V2_OP_SYNC, .now_ns = 123};
    n++;
    return n;
}

/* A v2 entry the proposer would have refused is malformed: unknown op,
 * a path that is not absolute, ends in '/', holds NUL or is too long. */
static void test_codec_v2_refused(void **state)
{
    (void)state;
    static char long_path[V2_PATH_MAX + 2];
    memset(long_path, 'a', sizeof long_path);
    long_path[0] = '/';
    struct v2_req bad[6] = {
        {.op = 0, .path = (const uint8_t *)"/a", .path_len = 2},
        {.op = V2_OP_MAX + 1, .path = (const uint8_t *)"/a", .path_len = 2},
        {.op = V2_OP_GET, .path = (const uint8_t *)"a", .path_len = 1},
        {.op = V2_OP_GET, .path = (const uint8_t *)"/a/", .path_len = 3},
        {.op = V2_OP_PUT, .path = (const uint8_t *)"/a\0", .path_len = 3},
        {.op = V2_OP_PUT,
         .path = (const uint8_t *)long_path,
         .path_len = sizeof long_path},
    };
    for (size_t i = 0; i < 6; i++) {
        struct node__req q = {.type = NODE__E_V2, .id = 1};
        q.u.v2 = bad[i];
        struct buf a = BUF_INIT;
        assert_int_equal(node__req_encode(&q, &a), 0);
        struct mvcc_arena ar;
        mvcc_arena_init(&ar);
        struct node__req d;
        assert_int_equal(node__req_decode(a.data, a.len, &ar, &d),
                         CAIRN_EMALFORMED);
        mvcc_arena_free(&ar);
        buf_free(&a);
    }
}

/* An auth entry whose content the proposer would have refused is
 * malformed: unknown op or permission type, a NUL in a name. */
static void test_codec_auth_refused(void **state)
{
    (void)state;
    struct auth_req bad[4] = {
        {.op = 0},
        {.op = AUTH_OP_MAX + 1},
        {.op = AUTH_OP_ROLE_GRANT_PERMISSION,
         .perm = {.type = AUTH_PERM_READWRITE + 1}},
        {.op = AUTH_OP_ROLE_ADD, .name = (const uint8_t *)"a\0", .name_len = 2},
    };
    for (size_t i = 0; i < 4; i++) {
        struct node__req q = {.type = NODE__E_AUTH, .id = 1};
        q.u.auth = bad[i];
        struct buf a = BUF_INIT;
        assert_int_equal(node__req_encode(&q, &a), 0);
        struct mvcc_arena ar;
        mvcc_arena_init(&ar);
        struct node__req d;
        assert_int_equal(node__req_decode(a.data, a.len, &ar, &d),
                         CAIRN_EMALFORMED);
        mvcc_arena_free(&ar);
        buf_free(&a);
    }
}

static void test_codec_round_trip(void **state)
{
    (void)state;
    struct node__req reqs[20];
    size_t n = sample_reqs(reqs, 20);
    for (size_t i = 0; i < n; i++) {
        struct buf a = BUF_INIT, b = BUF_INIT;
        struct mvcc_arena ar;
        mvcc_arena_init(&ar);
        assert_int_equal(node__req_encode(&reqs[i], &a), 0);
        struct node__req d;
        assert_int_equal(node__req_decode(a.data, a.len, &ar, &d), 0);
        assert_int_equal(d.type, reqs[i].type);
        assert_true(d.id == reqs[i].id);
        assert_int_equal(node__req_encode(&d, &b), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        char text[256];
        assert_int_equal(node_entry_describe(a.data, a.len, text, sizeof(text)),
                         0);
        assert_true(strlen(text) > 0);
        buf_free(&a);
        buf_free(&b);
        mvcc_arena_free(&ar);
    }
    /* Field checks beyond the byte equality. */
    struct buf a = BUF_INIT;
    struct mvcc_arena ar;
    mvcc_arena_init(&ar);
    struct node__req d;
    assert_int_equal(node__req_encode(&reqs[2], &a), 0);
    assert_int_equal(node__req_decode(a.data, a.len, &ar, &d), 0);
    assert_int_equal(d.u.txn.n_success, 3);
    assert_int_equal(d.u.txn.success[1].type, MVCC_OP_TXN);
    assert_int_equal(d.u.txn.success[1].u.txn->n_success, 2);
    assert_true(d.u.txn.success[1].u.txn->success[0].u.put.ignore_lease);
    assert_int_equal(d.u.txn.compares[0].number, -3);
    assert_int_equal(d.u.txn.success[0].u.range.sort_target, MVCC_SORT_VALUE);
    buf_free(&a);
    mvcc_arena_free(&ar);
}

static void test_codec_member_round_trip(void **state)
{
    (void)state;
    struct node_member m = {.id = 0xabcdef, .n_peer_urls = 1};
    strcpy(m.name, "m1");
    strcpy(m.peer_urls[0], "http://127.0.0.1:12380");
    struct buf b = BUF_INIT;
    assert_int_equal(node__member_encode(99, &m, &b), 0);
    struct node_member d;
    uint64_t id;
    assert_int_equal(node__member_decode(b.data, b.len, &id, &d), 0);
    assert_true(id == 99);
    assert_true(d.id == m.id);
    assert_string_equal(d.name, "m1");
    assert_int_equal(d.n_peer_urls, 1);
    assert_string_equal(d.peer_urls[0], m.peer_urls[0]);
    assert_false(d.is_learner);
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(node__member_decode(b.data, cut, &id, &d),
                         CAIRN_EMALFORMED);
    buf_free(&b);
}

/* Every strict prefix and every one-byte extension is refused. */
static void test_codec_truncated(void **state)
{
    (void)state;
    struct node__req reqs[20];
    size_t n = sample_reqs(reqs, 20);
    for (size_t i = 0; i < n; i++) {
        struct buf a = BUF_INIT;
        assert_int_equal(node__req_encode(&reqs[i], &a), 0);
        for (size_t cut = 0; cut < a.len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any overread. */
            uint8_t *p = malloc(cut ? cut : 1);
            memcpy(p, a.data, cut);
            struct mvcc_arena ar;
            mvcc_arena_init(&ar);
            struct node__req d;
            assert_int_equal(node__req_decode(p, cut, &ar, &d),
                             CAIRN_EMALFORMED);
            mvcc_arena_free(&ar);
            free(p);
        }
        assert_int_equal(buf_append_u8(&a, 0), 0);
        struct mvcc_arena ar;
        mvcc_arena_init(&ar);
        struct node__req d;
        assert_int_equal(node__req_decode(a.data, a.len, &ar, &d),
                         CAIRN_EMALFORMED);
        mvcc_arena_free(&ar);
        buf_free(&a);
    }
}

/* Random damage: decode returns 0 or MALFORMED, and what decodes
 * re-encodes to the same bytes (so nothing was misread). */
static void test_codec_fuzz(void **state)
{
    (void)state;
    uint64_t seed = node_test_seed(0x6e6f6465);
    struct prng rng;
    prng_seed(&rng, seed);
    struct node__req reqs[20];
    size_t n = sample_reqs(reqs, 20);
    size_t ok = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        struct buf a = BUF_INIT;
        assert_int_equal(node__req_encode(&reqs[prng_below(&rng, n)], &a), 0);
        size_t flips = 1 + prng_below(&rng, 4);
        for (size_t f = 0; f < flips; f++)
            a.data[prng_below(&rng, a.len)] = (uint8_t)prng_next(&rng);
        if (prng_chance(&rng, 0.2) && a.len > 1)
            a.len = 1 + prng_below(&rng, a.len - 1);
        uint8_t *p = malloc(a.len);
        memcpy(p, a.data, a.len);
        struct mvcc_arena ar;
        mvcc_arena_init(&ar);
        struct node__req d;
        int rc = node__req_decode(p, a.len, &ar, &d);
        if (rc == 0) {
            struct buf b = BUF_INIT;
            assert_int_equal(node__req_encode(&d, &b), 0);
            if (b.len != a.len || memcmp(a.data, b.data, a.len) != 0)
                fail_msg("seed %llu iter %d: decoded input re-encodes "
                         "differently",
                         (unsigned long long)seed, iter);
            buf_free(&b);
            ok++;
        } else {
            if (rc != CAIRN_EMALFORMED)
                fail_msg("seed %llu iter %d: rc %d", (unsigned long long)seed,
                         iter, rc);
            bad++;
        }
        mvcc_arena_free(&ar);
        free(p);
        buf_free(&a);
    }
    assert_true(bad > 0);
    assert_true(ok > 0);
}

/* Only batches of a few puts (and empty entries) count as light enough
 * for the server to apply on its loop (server.c, env_apply). */
static void test_apply_batch_light(void **state)
{
    (void)state;
    struct node__req reqs[16];
    size_t n = sample_reqs(reqs, 16);
    struct buf enc[16];
    struct raft_entry ents[NODE_APPLY_LIGHT_ENTRIES_MAX + 1];
    struct node_apply_batch b;
    memset(&b, 0, sizeof(b));
    b.kind = NODE__BATCH_ENTRIES;
    b.entries = ents;
    memset(ents, 0, sizeof(ents));
    for (size_t i = 0; i < n; i++) {
        buf_init(&enc[i]);
        assert_int_equal(node__req_encode(&reqs[i], &enc[i]), 0);
        ents[0] = (struct raft_entry){
            .type = RAFT_ENTRY_NORMAL, .data = enc[i].data, .len = enc[i].len};
        b.n_entries = 1;
        assert_int_equal(node_apply_batch_light(&b),
                         reqs[i].type == NODE__E_PUT);
    }
    /* A put and empty entries, up to the count; one more is too many. */
    ents[0] = (struct raft_entry){
        .type = RAFT_ENTRY_NORMAL, .data = enc[0].data, .len = enc[0].len};
    for (size_t i = 1; i <= NODE_APPLY_LIGHT_ENTRIES_MAX; i++)
        ents[i] = (struct raft_entry){.type = RAFT_ENTRY_NORMAL};
    b.n_entries = NODE_APPLY_LIGHT_ENTRIES_MAX;
    assert_true(node_apply_batch_light(&b));
    b.n_entries = NODE_APPLY_LIGHT_ENTRIES_MAX + 1;
    assert_false(node_apply_batch_light(&b));
    /* A configuration change, and another kind of batch. */
    b.n_entries = 2;
    ents[1].type = RAFT_ENTRY_CONF_CHANGE;
    assert_false(node_apply_batch_light(&b));
    ents[1].type = RAFT_ENTRY_NORMAL;
    assert_true(node_apply_batch_light(&b));
    b.kind = NODE__BATCH_COMPACT;
    assert_false(node_apply_batch_light(&b));
    /* Too many bytes: a put of a large value. */
    uint8_t *big = calloc(1, NODE_APPLY_LIGHT_BYTES_MAX + 1);
    assert_non_null(big);
    memcpy(big, enc[0].data, enc[0].len);
    b.kind = NODE__BATCH_ENTRIES;
    ents[0].data = big;
    ents[0].len = NODE_APPLY_LIGHT_BYTES_MAX + 1;
    assert_false(node_apply_batch_light(&b));
    free(big);
    for (size_t i = 0; i < n; i++)
        buf_free(&enc[i]);
}

int node_test_codec(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_member_round_trip),
        cmocka_unit_test(test_codec_auth_refused),
        cmocka_unit_test(test_codec_v2_refused),
        cmocka_unit_test(test_codec_truncated),
        cmocka_unit_test(test_codec_fuzz),
        cmocka_unit_test(test_apply_batch_light),
    };
    return cmocka_run_group_tests_name("node codec", tests, NULL, NULL);
}
