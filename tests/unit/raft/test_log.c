/* The in-memory storage and the core's log (unstable tail, conflicts,
 * fast-backtracking hints, commit rule). */
#include "tests.h"

#include <string.h>

#include "util/prng.h"

static void ents_of(struct raft_entry *e, const raft_term *terms, size_t n,
                    raft_index first)
{
    for (size_t i = 0; i < n; i++)
        e[i] = (struct raft_entry){.term = terms[i], .index = first + i};
}

static void test_memory_storage(void **state)
{
    (void)state;
    struct raft_memory_storage *ms;
    assert_int_equal(raft_memory_storage_new(&ms), 0);
    const struct raft_storage *st = raft_memory_storage_iface(ms);
    raft_index i;
    raft_term t;
    st->first_index(st->ctx, &i);
    assert_int_equal(i, 1);
    st->last_index(st->ctx, &i);
    assert_int_equal(i, 0);
    assert_int_equal(st->term(st->ctx, 0, &t), 0);
    assert_int_equal(t, 0);
    struct raft_entry e[6];
    raft_term terms[6] = {1, 1, 2, 2, 3, 3};
    ents_of(e, terms, 6, 1);
    e[2].data = (const uint8_t *)"abc";
    e[2].len = 3;
    assert_int_equal(raft_memory_storage_append(ms, e, 6), 0);
    st->last_index(st->ctx, &i);
    assert_int_equal(i, 6);
    assert_int_equal(st->term(st->ctx, 7, &t), CAIRN_EUNAVAILABLE);
    /* Max bytes: at least one entry, then stop before exceeding. */
    const struct raft_entry *out;
    size_t n;
    assert_int_equal(st->entries(st->ctx, 3, 7, 0, &out, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(out[0].data, "abc", 3);
    assert_int_equal(st->entries(st->ctx, 1, 7, 3, &out, &n), 0);
    assert_int_equal(n, 6);
    /* Truncating append. */
    raft_term t2[2] = {4, 4};
    ents_of(e, t2, 2, 5);
    assert_int_equal(raft_memory_storage_append(ms, e, 2), 0);
    assert_int_equal(st->term(st->ctx, 5, &t), 0);
    assert_int_equal(t, 4);
    /* A gap is refused. */
    ents_of(e, t2, 1, 9);
    assert_int_equal(raft_memory_storage_append(ms, e, 1), CAIRN_EUNAVAILABLE);
    /* Snapshot and compaction. */
    struct raft_conf_state cs = {.n_voters = 1, .voters = {1}};
    assert_int_equal(raft_memory_storage_create_snapshot(ms, 4, &cs, "s", 1),
                     0);
    assert_int_equal(raft_memory_storage_create_snapshot(ms, 3, &cs, "s", 1),
                     CAIRN_ESNAPOUTOFDATE);
    assert_int_equal(raft_memory_storage_compact(ms, 4), 0);
    assert_int_equal(raft_memory_storage_compact(ms, 4), CAIRN_ECOMPACTED);
    st->first_index(st->ctx, &i);
    assert_int_equal(i, 5);
    assert_int_equal(st->term(st->ctx, 4, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(st->term(st->ctx, 3, &t), CAIRN_ECOMPACTED);
    assert_int_equal(st->entries(st->ctx, 4, 6, 100, &out, &n),
                     CAIRN_ECOMPACTED);
    const struct raft_snapshot *snap;
    assert_int_equal(st->snapshot(st->ctx, &snap), 0);
    assert_int_equal(snap->meta.index, 4);
    /* Applying a newer snapshot replaces the log. */
    struct raft_snapshot s2 = {.meta = {.index = 10, .term = 5, .conf = cs}};
    assert_int_equal(raft_memory_storage_apply_snapshot(ms, &s2), 0);
    st->last_index(st->ctx, &i);
    assert_int_equal(i, 10);
    assert_int_equal(raft_memory_storage_apply_snapshot(ms, &s2),
                     CAIRN_ESNAPOUTOFDATE);
    raft_memory_storage_free(ms);
}

/* The naive cost of the entries after the snapshot. */
static uint64_t naive_bytes(const struct raft_storage *st, raft_index from)
{
    raft_index first, last;
    st->first_index(st->ctx, &first);
    st->last_index(st->ctx, &last);
    uint64_t b = 0;
    for (raft_index i = from > first ? from : first; i <= last; i++) {
        const struct raft_entry *e;
        size_t n;
        assert_int_equal(st->entries(st->ctx, i, i + 1, UINT64_MAX, &e, &n), 0);
        b += e->len + RAFT_MEMORY_STORAGE_ENTRY_OVERHEAD;
    }
    return b;
}

/* The byte count follows appends, truncations, compactions and snapshots,
 * against a sum over the entries; keep_bytes gives the lowest compaction
 * index whose remaining entries fit. */
static void test_memory_storage_bytes(void **state)
{
    (void)state;
    struct raft_memory_storage *ms;
    assert_int_equal(raft_memory_storage_new(&ms), 0);
    const struct raft_storage *st = raft_memory_storage_iface(ms);
    struct prng rng;
    prng_seed(&rng, 7);
    static const uint8_t data[64];
    struct raft_entry e[8];
    for (int step = 0; step < 2000; step++) {
        raft_index first, last;
        st->first_index(st->ctx, &first);
        st->last_index(st->ctx, &last);
        uint64_t what = prng_range(&rng, 0, 9);
        if (what < 7) { /* append, sometimes over the tail */
            raft_index at = last + 1;
            if (what == 0 && last >= first)
                at = first + prng_range(&rng, 0, (uint32_t)(last - first));
            size_t n = prng_range(&rng, 1, 8);
            for (size_t i = 0; i < n; i++)
                e[i] = (struct raft_entry){
                    .term = 1,
                    .index = at + i,
                    .data = data,
                    .len = prng_range(&rng, 0, sizeof(data))};
            for (size_t i = 0; i < n; i++)
                if (e[i].len == 0)
                    e[i].data = NULL;
            assert_int_equal(raft_memory_storage_append(ms, e, n), 0);
        } else if (what == 7 && last >= first) {
            raft_index k =
                first + prng_range(&rng, 0, (uint32_t)(last - first));
            assert_int_equal(raft_memory_storage_compact(ms, k), 0);
        } else if (what == 8 && step % 50 == 0) {
            struct raft_snapshot s = {
                .meta = {.index = last + 3,
                         .term = 2,
                         .conf = {.n_voters = 1, .voters = {1}}}};
            assert_int_equal(raft_memory_storage_apply_snapshot(ms, &s), 0);
        } else {
            uint64_t budget = prng_range(&rng, 0, 2000);
            raft_index k = raft_memory_storage_keep_bytes(ms, budget);
            assert_true(k + 1 >= first && k <= last);
            assert_true(naive_bytes(st, k + 1) <= budget);
            if (k + 1 > first) /* one more entry would not fit */
                assert_true(naive_bytes(st, k) > budget);
        }
        assert_int_equal(raft_memory_storage_bytes(ms), naive_bytes(st, 0));
    }
    raft_memory_storage_free(ms);
}

static void test_memory_storage_nomem(void **state)
{
    (void)state;
    /* Every allocation failing in turn leaves a consistent storage. */
    for (int k = 0; k < 8; k++) {
        struct raft_memory_storage *ms;
        assert_int_equal(raft_memory_storage_new(&ms), 0);
        struct raft_entry e[3] = {
            {.term = 1, .index = 1, .data = (const uint8_t *)"a", .len = 1},
            {.term = 1, .index = 2, .data = (const uint8_t *)"b", .len = 1},
            {.term = 1, .index = 3, .data = (const uint8_t *)"c", .len = 1}};
        cairn_mem_fault_set(k, 1);
        int rv = raft_memory_storage_append(ms, e, 3);
        cairn_mem_fault_set(-1, 0);
        const struct raft_storage *st = raft_memory_storage_iface(ms);
        raft_index last;
        st->last_index(st->ctx, &last);
        assert_true((rv == 0 && last == 3) ||
                    (rv == CAIRN_ENOMEM && last == 0));
        raft_memory_storage_free(ms);
    }
}

/* A log over a storage holding terms[0..n) at 1..n. */
struct fixture {
    struct raft_memory_storage *ms;
    struct raft_log log;
    struct arena arena;
};

static void fx_init(struct fixture *f, const raft_term *terms, size_t n)
{
    assert_int_equal(raft_memory_storage_new(&f->ms), 0);
    struct raft_entry e[32];
    ents_of(e, terms, n, 1);
    assert_int_equal(raft_memory_storage_append(f->ms, e, n), 0);
    raft__log_init(&f->log, raft_memory_storage_iface(f->ms));
    raft__arena_init(&f->arena);
}

static void fx_close(struct fixture *f)
{
    raft__log_close(&f->log);
    raft__arena_free(&f->arena);
    raft_memory_storage_free(f->ms);
}

static void test_log_append_and_stable(void **state)
{
    (void)state;
    struct fixture f;
    raft_term terms[3] = {1, 2, 2};
    fx_init(&f, terms, 3);
    assert_int_equal(raft__log_last_index(&f.log), 3);
    assert_int_equal(raft__log_durable_index(&f.log), 3);
    struct raft_entry e[3];
    raft_term t[3] = {3, 3, 3};
    ents_of(e, t, 3, 4);
    assert_int_equal(raft__log_append(&f.log, e, 3), 0);
    assert_int_equal(raft__log_last_index(&f.log), 6);
    assert_int_equal(raft__log_durable_index(&f.log), 3);
    /* Replace the unstable tail from 5. */
    raft_term t4[1] = {4};
    ents_of(e, t4, 1, 5);
    assert_int_equal(raft__log_append(&f.log, e, 1), 0);
    assert_int_equal(raft__log_last_index(&f.log), 5);
    assert_int_equal(raft__log_term_or_zero(&f.log, 5), 4);
    /* A stale persisted report (term 3 at 5) is ignored. */
    f.log.u.handed_out = 5;
    raft__log_stable_to(&f.log, 5, 3);
    assert_int_equal(raft__log_durable_index(&f.log), 3);
    raft__log_stable_to(&f.log, 4, 3);
    assert_int_equal(raft__log_durable_index(&f.log), 4);
    /* Truncating below the unstable offset (into storage). */
    raft_term t5[2] = {5, 5};
    ents_of(e, t5, 2, 3);
    assert_int_equal(raft__log_append(&f.log, e, 2), 0);
    assert_int_equal(raft__log_durable_index(&f.log), 2);
    assert_int_equal(raft__log_term_or_zero(&f.log, 3), 5);
    assert_int_equal(raft__log_last_index(&f.log), 4);
    /* Slices cross storage and unstable and respect max bytes. */
    struct raft_entry *out;
    size_t n;
    assert_int_equal(
        raft__log_slice(&f.log, 1, 5, UINT64_MAX, &f.arena, &out, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[2].term, 5);
    /* Only data counts towards max bytes: empty entries always fit. */
    assert_int_equal(raft__log_slice(&f.log, 1, 5, 0, &f.arena, &out, &n), 0);
    assert_int_equal(n, 4);
    fx_close(&f);
}

static void test_log_maybe_append(void **state)
{
    (void)state;
    struct fixture f;
    raft_term terms[3] = {1, 2, 3};
    fx_init(&f, terms, 3);
    f.log.committed = 1;
    struct raft_entry e[2];
    raft_index lastnew, wf;
    /* Mismatch at (3, 2): rejected. */
    raft_term t4[2] = {4, 4};
    ents_of(e, t4, 2, 4);
    assert_int_equal(
        raft__log_maybe_append(&f.log, 3, 2, 3, e, 2, &lastnew, &wf), 0);
    assert_int_equal(wf, 0);
    assert_int_equal(raft__log_last_index(&f.log), 3);
    /* Match: appended, commit = min(leader commit, last new). */
    assert_int_equal(
        raft__log_maybe_append(&f.log, 3, 3, 9, e, 2, &lastnew, &wf), 1);
    assert_int_equal(wf, 4);
    assert_int_equal(lastnew, 5);
    assert_int_equal(f.log.committed, 5);
    /* Entries already present are not truncated by a shorter append. */
    ents_of(e, t4, 1, 4);
    assert_int_equal(
        raft__log_maybe_append(&f.log, 3, 3, 5, e, 1, &lastnew, &wf), 1);
    assert_int_equal(wf, 0);
    assert_int_equal(raft__log_last_index(&f.log), 5);
    fx_close(&f);
}

static void test_log_find_conflict_by_term(void **state)
{
    (void)state;
    struct fixture f;
    raft_term terms[8] = {1, 1, 2, 2, 2, 5, 5, 6};
    fx_init(&f, terms, 8);
    raft_term t;
    assert_int_equal(raft__log_find_conflict_by_term(&f.log, 8, 4, &t), 5);
    assert_int_equal(t, 2);
    assert_int_equal(raft__log_find_conflict_by_term(&f.log, 8, 6, &t), 8);
    assert_int_equal(raft__log_find_conflict_by_term(&f.log, 4, 1, &t), 2);
    assert_int_equal(raft__log_find_conflict_by_term(&f.log, 8, 0, &t), 0);
    /* Beyond our log: the index itself, term unknown. */
    assert_int_equal(raft__log_find_conflict_by_term(&f.log, 20, 6, &t), 20);
    assert_int_equal(t, 0);
    fx_close(&f);
}

static void test_log_commit_rule(void **state)
{
    (void)state;
    struct fixture f;
    raft_term terms[4] = {1, 2, 2, 3};
    fx_init(&f, terms, 4);
    /* Index 3 is of term 2: a leader of term 3 may not commit it by
     * counting; index 4 (term 3) it may. */
    assert_false(raft__log_maybe_commit(&f.log, 3, 3));
    assert_int_equal(f.log.committed, 0);
    assert_true(raft__log_maybe_commit(&f.log, 4, 3));
    assert_int_equal(f.log.committed, 4);
    /* Never backwards. */
    assert_false(raft__log_maybe_commit(&f.log, 2, 3));
    raft__log_commit_to(&f.log, 1);
    assert_int_equal(f.log.committed, 4);
    fx_close(&f);
}

static void test_log_up_to_date(void **state)
{
    (void)state;
    struct fixture f;
    raft_term terms[3] = {1, 2, 2};
    fx_init(&f, terms, 3);
    assert_true(raft__log_is_up_to_date(&f.log, 3, 2));
    assert_true(raft__log_is_up_to_date(&f.log, 1, 3));
    assert_false(raft__log_is_up_to_date(&f.log, 2, 2));
    assert_false(raft__log_is_up_to_date(&f.log, 9, 1));
    fx_close(&f);
}

static void test_arena(void **state)
{
    (void)state;
    struct arena a;
    raft__arena_init(&a);
    uint8_t *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = raft__arena_alloc(&a, (size_t)(i * 1000));
        assert_non_null(p[i]);
        memset(p[i], i, (size_t)(i * 1000));
    }
    for (int i = 0; i < 100; i++)
        if (i > 0)
            assert_int_equal(p[i][i * 1000 - 1], i);
    uint64_t before = cairn_mem_alloc_count();
    for (int round = 0; round < 3; round++) {
        raft__arena_reset(&a);
        for (int i = 0; i < 100; i++)
            assert_non_null(raft__arena_alloc(&a, (size_t)(i * 1000)));
    }
    /* Reset keeps the blocks: the steady state allocates nothing. */
    assert_true(cairn_mem_alloc_count() == before);
    raft__arena_free(&a);
}

int test_log_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_storage),
        cmocka_unit_test(test_memory_storage_nomem),
        cmocka_unit_test(test_memory_storage_bytes),
        cmocka_unit_test(test_log_append_and_stable),
        cmocka_unit_test(test_log_maybe_append),
        cmocka_unit_test(test_log_find_conflict_by_term),
        cmocka_unit_test(test_log_commit_rule),
        cmocka_unit_test(test_log_up_to_date),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests_name("raft_log", tests, NULL, NULL);
}
