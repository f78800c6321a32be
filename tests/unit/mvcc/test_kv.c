/* Hand-written cases of etcd's kv semantics: revisions and versions, range
 * edges and errors, txn validation (duplicate keys, provided values and
 * leases), compares on missing keys, and the NOSPACE alarm. */
#include "helpers.h"
#include "tests.h"

struct fx {
    char *dir;
    struct mvcc_store *s;
    struct mvcc_arena a;
    uint64_t ci;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tmp_dir();
    f->s = store_open(f->dir);
    mvcc_arena_init(&f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mvcc_close(f->s);
    mvcc_arena_free(&f->a);
    rm_dir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int put(struct fx *f, const char *k, const char *v,
               struct mvcc_put_resp *r)
{
    struct mvcc_put_req q = {.key = (const uint8_t *)k,
                             .key_len = strlen(k),
                             .value = (const uint8_t *)v,
                             .value_len = strlen(v),
                             .prev_kv = true};
    struct mvcc_put_resp tmp;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    int rc = mvcc_put(f->s, &q, &f->a, r ? r : &tmp);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    return rc;
}

static int64_t del(struct fx *f, const char *k, const char *end)
{
    struct mvcc_delete_req q = {.key = (const uint8_t *)k,
                                .key_len = strlen(k),
                                .end = (const uint8_t *)end,
                                .end_len = end ? strlen(end) : 0};
    struct mvcc_delete_resp r;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(mvcc_delete_range(f->s, &q, &f->a, &r), 0);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    return r.deleted;
}

static int get(struct fx *f, const char *k, mvcc_rev rev,
               struct mvcc_range_resp *r)
{
    struct mvcc_range_req q = {
        .key = (const uint8_t *)k, .key_len = strlen(k), .revision = rev};
    return mvcc_range(f->s, &q, &f->a, r);
}

static mvcc_rev rev_now(struct fx *f)
{
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(f->s, &st), 0);
    return st.rev;
}

static void test_revisions_and_versions(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rev_now(f), 1);
    struct mvcc_put_resp pr;
    assert_int_equal(put(f, "a", "1", &pr), 0);
    assert_int_equal(pr.header_rev, 2);
    assert_null(pr.prev_kv);
    assert_int_equal(put(f, "a", "2", &pr), 0);
    assert_non_null(pr.prev_kv);
    assert_int_equal(pr.prev_kv->version, 1);
    struct mvcc_range_resp r;
    assert_int_equal(get(f, "a", 0, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    assert_int_equal(r.kvs[0].create_rev, 2);
    assert_int_equal(r.kvs[0].mod_rev, 3);
    assert_int_equal(r.kvs[0].version, 2);
    assert_int_equal(del(f, "a", NULL), 1);
    assert_int_equal(rev_now(f), 4);
    assert_int_equal(del(f, "a", NULL), 0); /* nothing: no new revision */
    assert_int_equal(rev_now(f), 4);
    assert_int_equal(put(f, "a", "3", NULL), 0);
    assert_int_equal(get(f, "a", 0, &r), 0);
    assert_int_equal(r.kvs[0].create_rev, 5);
    assert_int_equal(r.kvs[0].version, 1);
    assert_int_equal(r.header_rev, 5);
    /* History. */
    assert_int_equal(get(f, "a", 3, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    assert_memory_equal(r.kvs[0].value, "2", 1);
    assert_int_equal(get(f, "a", 4, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    assert_int_equal(r.header_rev, 5);
    assert_int_equal(get(f, "a", 6, &r), CAIRN_EFUTUREREV);
    /* Compaction: rev == compact is readable, below is not. */
    mvcc_rev hdr;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(mvcc_compact(f->s, 3, &hdr), 0);
    assert_int_equal(mvcc_compact(f->s, 3, &hdr), CAIRN_EREVCOMPACTED);
    assert_int_equal(mvcc_compact(f->s, 6, &hdr), CAIRN_EFUTUREREV);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    bool done = false;
    assert_int_equal(mvcc_compact_step(f->s, 100, &done), 0);
    assert_true(done);
    assert_int_equal(get(f, "a", 2, &r), CAIRN_EREVCOMPACTED);
    assert_int_equal(get(f, "a", 3, &r), 0);
    assert_memory_equal(r.kvs[0].value, "2", 1);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(f->s, &st), 0);
    assert_int_equal(st.compact_rev, 3);
    assert_int_equal(st.compact_done_rev, 3);
    assert_int_equal(mvcc_sync(f->s), 0);
}

static void test_range_edges(void **state)
{
    struct fx *f = *state;
    const char *keys[] = {"a", "ab", "abc", "b", "c"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(put(f, keys[i], keys[i], NULL), 0);
    static const uint8_t z = 0;
    struct mvcc_range_resp r;
    struct mvcc_range_req q = {
        .key = &z, .key_len = 1, .end = &z, .end_len = 1};
    assert_int_equal(mvcc_range(f->s, &q, &f->a, &r), 0);
    assert_int_equal(r.count, 5); /* "\0".."\0": everything */
    q = (struct mvcc_range_req){.key = (const uint8_t *)"ab",
                                .key_len = 2,
                                .end = (const uint8_t *)"ac",
                                .end_len = 2}; /* prefix "ab" */
    assert_int_equal(mvcc_range(f->s, &q, &f->a, &r), 0);
    assert_int_equal(r.count, 2);
    q.end = (const uint8_t *)"a"; /* end before key: empty */
    q.end_len = 1;
    assert_int_equal(mvcc_range(f->s, &q, &f->a, &r), 0);
    assert_int_equal(r.count, 0);
    q = (struct mvcc_range_req){.key = (const uint8_t *)"a",
                                .key_len = 1,
                                .end = &z,
                                .end_len = 1,
                                .limit = 2};
    assert_int_equal(mvcc_range(f->s, &q, &f->a, &r), 0);
    assert_int_equal(r.n_kvs, 2);
    assert_true(r.more);
    assert_int_equal(r.count, 5);
    q.sort_order = MVCC_SORT_DESCEND;
    q.sort_target = MVCC_SORT_MOD;
    assert_int_equal(mvcc_range(f->s, &q, &f->a, &r), 0);
    assert_memory_equal(r.kvs[0].key, "c", 1);
    assert_memory_equal(r.kvs[1].key, "b", 1);
    q.limit = 0;
    q.count_only = true;
    assert_int_equal(mvcc_range(f->s, &q, &f->a, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    assert_int_equal(r.count, 5);
    q.count_only = false;
    q.keys_only = true;
    q.sort_order = MVCC_SORT_NONE;
    q.sort_target = MVCC_SORT_KEY;
    assert_int_equal(mvcc_range(f->s, &q, &f->a, &r), 0);
    assert_int_equal(r.n_kvs, 5);
    assert_null(r.kvs[0].value);
}

#define OP_PUT(k)                          \
    {                                      \
        .type = MVCC_OP_PUT, .u.put = {    \
            .key = (const uint8_t *)(k),   \
            .key_len = strlen(k),          \
            .value = (const uint8_t *)"v", \
            .value_len = 1                 \
        }                                  \
    }
#define OP_DEL(k, e)                       \
    {                                      \
        .type = MVCC_OP_DELETE, .u.del = { \
            .key = (const uint8_t *)(k),   \
            .key_len = strlen(k),          \
            .end = (const uint8_t *)(e),   \
            .end_len = strlen(e)           \
        }                                  \
    }

static void test_txn_validation(void **state)
{
    (void)state;
    struct mvcc_op two_puts[] = {OP_PUT("a"), OP_PUT("a")};
    struct mvcc_txn_req t = {.success = two_puts, .n_success = 2};
    assert_int_equal(mvcc_txn_validate(&t, 128), CAIRN_EDUPLICATEKEY);
    struct mvcc_op put_in_del[] = {OP_DEL("a", "c"), OP_PUT("b")};
    t = (struct mvcc_txn_req){.success = put_in_del, .n_success = 2};
    assert_int_equal(mvcc_txn_validate(&t, 128), CAIRN_EDUPLICATEKEY);
    /* Then and else of a nested txn may both put a key... */
    struct mvcc_op inner_ops[] = {OP_PUT("k")};
    struct mvcc_txn_req inner = {.success = inner_ops,
                                 .n_success = 1,
                                 .failure = inner_ops,
                                 .n_failure = 1};
    struct mvcc_op outer_ok[] = {{.type = MVCC_OP_TXN, .u.txn = &inner}};
    t = (struct mvcc_txn_req){.success = outer_ok, .n_success = 1};
    assert_int_equal(mvcc_txn_validate(&t, 128), 0);
    /* ...but not together with the outer level. */
    struct mvcc_op outer_dup[] = {{.type = MVCC_OP_TXN, .u.txn = &inner},
                                  OP_PUT("k")};
    t = (struct mvcc_txn_req){.success = outer_dup, .n_success = 2};
    assert_int_equal(mvcc_txn_validate(&t, 128), CAIRN_EDUPLICATEKEY);
    /* Success and failure of the top level are separate. */
    t = (struct mvcc_txn_req){.success = inner_ops,
                              .n_success = 1,
                              .failure = inner_ops,
                              .n_failure = 1};
    assert_int_equal(mvcc_txn_validate(&t, 128), 0);
    struct mvcc_op bad[] = {{.type = MVCC_OP_PUT,
                             .u.put = {.key = (const uint8_t *)"a",
                                       .key_len = 1,
                                       .value = (const uint8_t *)"v",
                                       .value_len = 1,
                                       .ignore_value = true}}};
    t = (struct mvcc_txn_req){.success = bad, .n_success = 1};
    assert_int_equal(mvcc_txn_validate(&t, 128), CAIRN_EVALUEPROVIDED);
    bad[0].u.put = (struct mvcc_put_req){.key = (const uint8_t *)"a",
                                         .key_len = 1,
                                         .lease = 5,
                                         .ignore_lease = true};
    assert_int_equal(mvcc_txn_validate(&t, 128), CAIRN_ELEASEPROVIDED);
    bad[0].u.put.key_len = 0;
    assert_int_equal(mvcc_txn_validate(&t, 128), CAIRN_EEMPTYKEY);
    /* The operation budget: 3 ops at the top leave 0 for a nested txn's
     * one op when the limit is 3. */
    struct mvcc_op three[] = {
        OP_PUT("x"), OP_PUT("y"), {.type = MVCC_OP_TXN, .u.txn = &inner}};
    t = (struct mvcc_txn_req){.success = three, .n_success = 3};
    assert_int_equal(mvcc_txn_validate(&t, 2), CAIRN_ETOOMANYOPS);
    assert_int_equal(mvcc_txn_validate(&t, 3), CAIRN_ETOOMANYOPS);
    assert_int_equal(mvcc_txn_validate(&t, 4), 0);
}

static void test_txn_semantics(void **state)
{
    struct fx *f = *state;
    /* Compares on a missing key: version == 0 holds, any value compare
     * fails. */
    struct mvcc_compare c[] = {{.result = MVCC_CMP_EQUAL,
                                .target = MVCC_CMP_VERSION,
                                .key = (const uint8_t *)"k",
                                .key_len = 1,
                                .number = 0}};
    struct mvcc_op then_ops[] = {
        OP_PUT("k"),
        {.type = MVCC_OP_RANGE,
         .u.range = {.key = (const uint8_t *)"k", .key_len = 1}}};
    struct mvcc_txn_req t = {
        .compares = c, .n_compares = 1, .success = then_ops, .n_success = 2};
    struct mvcc_txn_resp r;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(mvcc_txn(f->s, &t, &f->a, &r), 0);
    assert_true(r.succeeded);
    assert_int_equal(r.header_rev, 2);
    /* The range sees the put of its own txn. */
    assert_int_equal(r.responses[1].u.range.n_kvs, 1);
    assert_int_equal(r.responses[1].u.range.header_rev, 2);
    c[0].target = MVCC_CMP_VALUE;
    c[0].key = (const uint8_t *)"missing";
    c[0].key_len = 7;
    c[0].result = MVCC_CMP_NOT_EQUAL;
    c[0].value = (const uint8_t *)"x";
    c[0].value_len = 1;
    t.n_success = 0;
    assert_int_equal(mvcc_txn(f->s, &t, &f->a, &r), 0);
    assert_false(r.succeeded);
    assert_int_equal(r.header_rev, 2); /* read-only: no new revision */
    /* ignore_value needs the key. */
    struct mvcc_op iv[] = {{.type = MVCC_OP_PUT,
                            .u.put = {.key = (const uint8_t *)"none",
                                      .key_len = 4,
                                      .ignore_value = true}}};
    t = (struct mvcc_txn_req){.success = iv, .n_success = 1};
    assert_int_equal(mvcc_txn(f->s, &t, &f->a, &r), CAIRN_EKEYNOTFOUND);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    assert_int_equal(rev_now(f), 2);
}

static void test_reader_snapshot(void **state)
{
    struct fx *f = *state;
    assert_int_equal(put(f, "a", "1", NULL), 0);
    struct mvcc_reader *r;
    assert_int_equal(mvcc_reader_begin(f->s, &r), 0);
    assert_int_equal(put(f, "a", "2", NULL), 0);
    assert_int_equal(put(f, "b", "1", NULL), 0);
    /* The reader keeps its snapshot; a plain read sees the new state. */
    struct mvcc_range_req q = {.key = (const uint8_t *)"a", .key_len = 1};
    struct mvcc_range_resp rr;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mvcc_reader_range(r, &q, &f->a, &rr), 0);
        assert_int_equal(rr.header_rev, 2);
        assert_int_equal(rr.n_kvs, 1);
        assert_memory_equal(rr.kvs[0].value, "1", 1);
    }
    q.revision = 3;
    assert_int_equal(mvcc_reader_range(r, &q, &f->a, &rr), CAIRN_EFUTUREREV);
    assert_int_equal(get(f, "a", 0, &rr), 0);
    assert_int_equal(rr.header_rev, 4);
    assert_memory_equal(rr.kvs[0].value, "2", 1);
    mvcc_reader_end(r);
}

static void test_nospace_alarm(void **state)
{
    struct fx *f = *state;
    assert_true(mvcc_quota_ok(f->s, 1000));
    assert_false(mvcc_quota_ok(f->s, 64u << 20));
    assert_int_equal(put(f, "a", "1", NULL), 0);
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(mvcc_alarm_set(f->s, true), 0);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    assert_int_equal(put(f, "b", "1", NULL), CAIRN_EQUOTA);
    /* Deletes and txns without puts still work. */
    struct mvcc_op d[] = {OP_DEL("a", "")};
    struct mvcc_op p[] = {OP_PUT("a")};
    struct mvcc_txn_req t = {.success = d, .n_success = 1};
    struct mvcc_txn_resp r;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(mvcc_txn(f->s, &t, &f->a, &r), 0);
    t.failure = p;
    t.n_failure = 1;
    assert_int_equal(mvcc_txn(f->s, &t, &f->a, &r), CAIRN_EQUOTA);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    /* The alarm is persisted. */
    mvcc_close(f->s);
    f->s = store_open(f->dir);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(f->s, &st), 0);
    assert_true(st.nospace_alarm);
    assert_int_equal(put(f, "b", "1", NULL), CAIRN_EQUOTA);
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(mvcc_alarm_set(f->s, false), 0);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    assert_int_equal(put(f, "b", "1", NULL), 0);
}

int test_kv_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_revisions_and_versions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_range_edges, setup, teardown),
        cmocka_unit_test(test_txn_validation),
        cmocka_unit_test_setup_teardown(test_txn_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nospace_alarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot, setup, teardown),
    };
    return cmocka_run_group_tests_name("mvcc_kv", tests, NULL, NULL);
}
