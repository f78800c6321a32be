/* Allocation failures injected at every allocation of a batch of requests:
 * each request either succeeds or returns CAIRN_ENOMEM having changed
 * nothing, or its failure fails the whole batch; the committed revision
 * always matches the requests that reported success. */
#include "helpers.h"
#include "tests.h"

struct run {
    mvcc_rev expect; /* revision after the successful requests */
    int failures;
    bool failed; /* a request of this batch failed */
};

#define check_rc(r, rc) check_rc_at(r, rc, __LINE__)
/* ENOMEM, or EIO once an earlier failure may have failed the batch. */
static void check_rc_at(struct run *r, int rc, int line)
{
    if (rc != 0 && rc != CAIRN_ENOMEM && !(rc == CAIRN_EIO && r->failed))
        fprintf(stderr, "unexpected %s at line %d\n", cairn_errname(rc), line);
    assert_true(rc == 0 || rc == CAIRN_ENOMEM ||
                (rc == CAIRN_EIO && r->failed));
    if (rc != 0)
        r->failed = true;
}

static void scenario(struct mvcc_store *s, struct mvcc_arena *a, int iter,
                     struct run *r)
{
    char k1[16], k2[1001];
    snprintf(k1, sizeof(k1), "a%04d", iter);
    /* A long key (stored by prefix and hash, its bytes in the value). */
    memset(k2, 'k', sizeof(k2) - 1);
    k2[sizeof(k2) - 1] = 0;
    for (int i = 0, v = iter; i < 6; i++, v /= 10)
        k2[1 + i] = (char)('0' + v % 10);
    struct mvcc_put_req p1 = {.key = (const uint8_t *)k1,
                              .key_len = strlen(k1),
                              .value = (const uint8_t *)"v",
                              .value_len = 1,
                              .prev_kv = true};
    struct mvcc_put_resp pr;
    int rc = mvcc_put(s, &p1, a, &pr);
    check_rc(r, rc);
    if (rc == 0)
        assert_int_equal(pr.header_rev, ++r->expect);
    struct mvcc_put_req p2 = {.key = (const uint8_t *)k2,
                              .key_len = sizeof(k2) - 1,
                              .value = (const uint8_t *)k2,
                              .value_len = 300};
    rc = mvcc_put(s, &p2, a, &pr);
    check_rc(r, rc);
    if (rc == 0)
        assert_int_equal(pr.header_rev, ++r->expect);
    struct mvcc_delete_req d = {.key = (const uint8_t *)"a",
                                .key_len = 1,
                                .end = (const uint8_t *)"b",
                                .end_len = 1,
                                .prev_kv = true};
    struct mvcc_delete_resp dr;
    rc = mvcc_delete_range(s, &d, a, &dr);
    check_rc(r, rc);
    if (rc == 0 && dr.deleted > 0)
        assert_int_equal(dr.header_rev, ++r->expect);
    static const uint8_t z = 0;
    struct mvcc_compare c = {.result = MVCC_CMP_EQUAL,
                             .target = MVCC_CMP_VERSION,
                             .key = (const uint8_t *)k1,
                             .key_len = strlen(k1)};
    struct mvcc_op ok_ops[] = {
        {.type = MVCC_OP_PUT,
         .u.put = {.key = (const uint8_t *)"b", .key_len = 1}},
        {.type = MVCC_OP_RANGE,
         .u.range = {.key = &z, .key_len = 1, .end = &z, .end_len = 1}},
        {.type = MVCC_OP_DELETE,
         .u.del = {.key = (const uint8_t *)"k",
                   .key_len = 1,
                   .end = (const uint8_t *)"l",
                   .end_len = 1}}};
    struct mvcc_op fail_ops[] = {
        {.type = MVCC_OP_PUT,
         .u.put = {.key = (const uint8_t *)"d", .key_len = 1}}};
    struct mvcc_txn_req t = {.compares = &c,
                             .n_compares = 1,
                             .success = ok_ops,
                             .n_success = 3,
                             .failure = fail_ops,
                             .n_failure = 1};
    struct mvcc_txn_resp tr;
    rc = mvcc_txn(s, &t, a, &tr);
    check_rc(r, rc);
    if (rc == 0) {
        /* Every branch here puts a key: one new revision. */
        assert_int_equal(tr.header_rev, ++r->expect);
    }
}

static void test_alloc_failures(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    struct mvcc_store *s = store_open(dir);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    uint64_t ci = 0;
    /* How many allocations one fault-free round makes. */
    uint64_t before = cairn_mem_alloc_count();
    struct run r = {.expect = 1};
    assert_int_equal(mvcc_batch_begin(s), 0);
    scenario(s, &a, 0, &r);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    int allocs = (int)(cairn_mem_alloc_count() - before);
    assert_true(allocs > 0);
    for (int i = 0; i <= allocs + 2; i++) {
        mvcc_arena_free(&a); /* fresh arena: its chunk is allocated too */
        struct mvcc_status st;
        assert_int_equal(mvcc_status_get(s, &st), 0);
        r.expect = st.rev;
        mvcc_rev start = st.rev;
        assert_int_equal(mvcc_batch_begin(s), 0);
        r.failed = false;
        cairn_mem_fault_set(i, 1);
        scenario(s, &a, i + 1, &r);
        cairn_mem_fault_set(-1, 0);
        int rc = mvcc_batch_commit(s, ++ci);
        assert_int_equal(mvcc_status_get(s, &st), 0);
        if (rc == 0) {
            assert_int_equal(st.rev, r.expect);
        } else {
            assert_int_equal(st.rev, start);
            r.failures++;
        }
    }
    /* Still healthy. */
    assert_int_equal(mvcc_batch_begin(s), 0);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(s, &st), 0);
    r.expect = st.rev;
    scenario(s, &a, 9999, &r);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(dir);
    free(dir);
}

int test_faults_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests_name("mvcc_faults", tests, NULL, NULL);
}
