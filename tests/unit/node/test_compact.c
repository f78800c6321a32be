/* Node tests of compaction in bounded steps: a large compaction runs as
 * separate apply batches of one step each, writes queued meanwhile are
 * applied between steps, the compaction still completes, and one that a
 * restart interrupted resumes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "harness.h"
#include "tests_node.h"

/* 300 keys × 10 versions: 3,000 records, several compaction steps. */
static mvcc_rev fill(struct h_cluster *c, struct h_member *l)
{
    struct h_result p;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 300; i++) {
            char k[16], v[16];
            snprintf(k, sizeof(k), "k%03d", i);
            snprintf(v, sizeof(v), "v%d", round);
            assert_int_equal(h_put(l, k, v, &p), 0);
            h_run(c);
            assert_int_equal(p.err, 0);
        }
    }
    return p.rev;
}

/* Applies the member's oldest pending batch and hands it back. */
static void run_one(struct h_member *m)
{
    assert_true(m->n_batches > 0);
    struct node_apply_batch *b = m->batches[0];
    memmove(m->batches, m->batches + 1,
            (m->n_batches - 1) * sizeof(*m->batches));
    m->n_batches--;
    assert_int_equal(node_applier_apply(m->ap, b), 0);
    node_applied(m->n, b);
}

/* Compacts everything below rev with apply batches held; returns once the
 * compaction request is answered (the history is not dropped yet). */
static void compact_held(struct h_cluster *c, struct h_member *l, mvcc_rev rev)
{
    l->hold_apply = true;
    struct h_result cr = {0};
    assert_int_equal(node_compact(l->n, rev, false, &cr, h_done), 0);
    h_run(c);
    while (cr.calls == 0)
        run_one(l);
    assert_int_equal(cr.err, 0);
}

static void test_writes_between_steps(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 1, NULL);
    struct h_member *l = h_elect(&c, 1);
    mvcc_rev rev = fill(&c, l);
    compact_held(&c, l, rev);
    /* The batch that applied the compaction ran no step of it: a step
     * batch is queued. */
    assert_true(mvcc_compact_pending(l->s));
    assert_int_equal(l->n_batches, 1);
    /* A write proposed now is applied after one step, with the
     * compaction still in progress. */
    struct h_result w = {0};
    assert_int_equal(h_put(l, "w", "1", &w), 0);
    h_run(&c);
    size_t ran = 0;
    while (w.calls == 0) {
        run_one(l);
        ran++;
    }
    assert_int_equal(w.err, 0);
    assert_true(ran <= 2);
    assert_true(mvcc_compact_pending(l->s));
    /* The steps go on by themselves until the history is dropped. */
    size_t steps = 0;
    while (l->n_batches > 0) {
        run_one(l);
        steps++;
        assert_true(steps < 100);
    }
    assert_true(steps >= 2);
    assert_false(mvcc_compact_pending(l->s));
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(l->s, &st), 0);
    assert_int_equal(st.compact_done_rev, rev);
    l->hold_apply = false;
    struct h_result g = {0};
    assert_int_equal(h_get(l, "k123", false, &g), 0);
    h_run(&c);
    assert_int_equal(g.err, 0);
    assert_string_equal(g.value, "v9");
    struct mvcc_range_req q = {
        .key = (const uint8_t *)"k123", .key_len = 4, .revision = rev - 1};
    struct h_result old = {0};
    assert_int_equal(node_range(l->n, &q, false, &old, h_done), 0);
    h_run(&c);
    assert_int_equal(old.err, CAIRN_EREVCOMPACTED);
    h_cluster_free(&c);
}

/* A restart between steps (the step in flight lost, as a crash loses it):
 * the restarted member finds the compaction unfinished and completes it. */
static void test_resumes_after_restart(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init_wal(&c, 1, NULL, true);
    struct h_member *l = h_elect(&c, 1);
    mvcc_rev rev = fill(&c, l);
    compact_held(&c, l, rev);
    run_one(l); /* one step done */
    assert_true(mvcc_compact_pending(l->s));
    /* The next step batch is handed back without running: the node
     * believes it done, nothing more is queued. */
    assert_int_equal(l->n_batches, 1);
    struct node_apply_batch *b = l->batches[0];
    l->n_batches = 0;
    node_applied(l->n, b);
    assert_int_equal(l->n_batches, 0);
    assert_true(mvcc_compact_pending(l->s));
    l->hold_apply = false;
    h_member_restart(l);
    l = h_elect(&c, 1);
    h_run(&c);
    assert_false(mvcc_compact_pending(l->s));
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(l->s, &st), 0);
    assert_int_equal(st.compact_done_rev, rev);
    struct h_result g = {0};
    assert_int_equal(h_get(l, "k299", false, &g), 0);
    h_run(&c);
    assert_string_equal(g.value, "v9");
    h_cluster_free(&c);
}

/* With physical set, the answer comes only after the last step, however
 * long that takes (no request timeout), and with the compaction's
 * revision. */
static void test_physical_waits_for_steps(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 1, NULL);
    struct h_member *l = h_elect(&c, 1);
    mvcc_rev rev = fill(&c, l);
    l->hold_apply = true;
    struct h_result cr = {0};
    assert_int_equal(node_compact(l->n, rev, true, &cr, h_done), 0);
    h_run(&c);
    size_t ran = 0;
    while (l->n_batches > 0) {
        run_one(l);
        ran++;
        if (mvcc_compact_pending(l->s)) {
            assert_int_equal(cr.calls, 0);
            h_tick(&c, 100); /* past the request timeout */
            assert_int_equal(cr.calls, 0);
        }
    }
    assert_true(ran >= 3);
    assert_int_equal(cr.calls, 1);
    assert_int_equal(cr.err, 0);
    assert_int_equal(cr.rev, rev);
    assert_false(mvcc_compact_pending(l->s));
    l->hold_apply = false;
    h_cluster_free(&c);
}

int node_test_compact(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_between_steps),
        cmocka_unit_test(test_resumes_after_restart),
        cmocka_unit_test(test_physical_waits_for_steps),
    };
    return cmocka_run_group_tests_name("node_compact", tests, NULL, NULL);
}
