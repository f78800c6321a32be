/* Running out of memory inside a step (every allocation failing in turn),
 * and, in CAIRN_FAULTS builds, that each test-only fault switch really
 * breaks the rule it names. */
#include "tests.h"

#include <string.h>

/* Persists and reports everything an update asks, without faults. */
static void host(struct raft *r, struct raft_memory_storage *ms,
                 struct raft_update *up)
{
    for (int round = 0; round < 8; round++) {
        if (up->n_entries == 0)
            return;
        assert_int_equal(
            raft_memory_storage_append(ms, up->entries, up->n_entries), 0);
        raft_memory_storage_set_hard_state(ms, &up->hard_state);
        const struct raft_entry *last = &up->entries[up->n_entries - 1];
        assert_int_equal(raft_persisted(r, last->index, last->term, up), 0);
    }
}

static void test_nomem_every_allocation(void **state)
{
    (void)state;
    int failures_seen = 0;
    for (int k = 0; k < 60; k++) {
        struct raft_memory_storage *ms;
        assert_int_equal(raft_memory_storage_new(&ms), 0);
        struct raft_conf_state cs = {.n_voters = 1, .voters = {1}};
        assert_int_equal(raft_memory_storage_bootstrap(ms, &cs), 0);
        struct raft_config c;
        h_default_config(&c);
        c.id = 1;
        c.storage = raft_memory_storage_iface(ms);
        struct raft *r;
        struct raft_update up;
        assert_int_equal(raft_new(&c, &r), 0);
        struct raft_event camp = {.type = RAFT_EVENT_CAMPAIGN};
        assert_int_equal(raft_step(r, &camp, &up), 0);
        host(r, ms, &up);
        raft_index before = raft__log_last_index(&r->log);
        struct raft_proposal p[3] = {{(const uint8_t *)"a", 1},
                                     {(const uint8_t *)"bb", 2},
                                     {(const uint8_t *)"ccc", 3}};
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE,
                                .u.propose = {.items = p, .n = 3}};
        cairn_mem_fault_set(k, 1);
        int rv = raft_step(r, &ev, &up);
        cairn_mem_fault_set(-1, 0);
        assert_true(rv == 0 || rv == CAIRN_ENOMEM);
        raft_index after = raft__log_last_index(&r->log);
        /* All or nothing. */
        if (rv == CAIRN_ENOMEM) {
            failures_seen++;
            assert_int_equal(after, before);
        } else {
            assert_int_equal(after, before + 3);
        }
        host(r, ms, &up);
        /* Still working afterwards. */
        assert_int_equal(raft_propose(r, "z", 1, &up), 0);
        host(r, ms, &up);
        assert_int_equal(r->log.committed, raft__log_last_index(&r->log));
        raft_free(r);
        raft_memory_storage_free(ms);
    }
    assert_true(failures_seen > 0);
}

static void test_nomem_raft_new(void **state)
{
    (void)state;
    for (int k = 0; k < 10; k++) {
        struct raft_memory_storage *ms;
        assert_int_equal(raft_memory_storage_new(&ms), 0);
        struct raft_conf_state cs = {.n_voters = 3, .voters = {1, 2, 3}};
        assert_int_equal(raft_memory_storage_bootstrap(ms, &cs), 0);
        struct raft_config c;
        h_default_config(&c);
        c.id = 1;
        c.storage = raft_memory_storage_iface(ms);
        struct raft *r = NULL;
        cairn_mem_fault_set(k, 1);
        int rv = raft_new(&c, &r);
        cairn_mem_fault_set(-1, 0);
        assert_true(rv == 0 || rv == CAIRN_ENOMEM);
        raft_free(r);
        raft_memory_storage_free(ms);
    }
}

static void test_bad_config(void **state)
{
    (void)state;
    struct raft_memory_storage *ms;
    assert_int_equal(raft_memory_storage_new(&ms), 0);
    struct raft_config c;
    h_default_config(&c);
    c.storage = raft_memory_storage_iface(ms);
    struct raft *r;
    assert_int_equal(raft_new(&c, &r), CAIRN_EINVAL); /* id 0 */
    c.id = 1;
    c.election_ticks = 1;
    assert_int_equal(raft_new(&c, &r), CAIRN_EINVAL);
    c.election_ticks = 10;
    c.max_inflight_msgs = 0;
    assert_int_equal(raft_new(&c, &r), CAIRN_EINVAL);
    c.max_inflight_msgs = 1;
    /* A hard state committing beyond the log: the host lost entries. */
    struct raft_hard_state hs = {.term = 1, .commit = 5};
    raft_memory_storage_set_hard_state(ms, &hs);
    assert_int_equal(raft_new(&c, &r), CAIRN_ECORRUPT);
    raft_memory_storage_free(ms);
}

#ifdef CAIRN_FAULTS
static void test_fault_commit_earlier_terms(void **state)
{
    (void)state;
    struct raft_memory_storage *ms;
    assert_int_equal(raft_memory_storage_new(&ms), 0);
    struct raft_entry e[3] = {{.term = 1, .index = 1},
                              {.term = 2, .index = 2},
                              {.term = 3, .index = 3}};
    assert_int_equal(raft_memory_storage_append(ms, e, 3), 0);
    struct raft_log l;
    raft__log_init(&l, raft_memory_storage_iface(ms));
    struct raft_faults f = {.commit_earlier_terms = true};
    l.faults = &f;
    /* Index 2 is of term 2; the leader is in term 3: the broken rule
     * commits it anyway. */
    assert_true(raft__log_maybe_commit(&l, 2, 3));
    assert_int_equal(l.committed, 2);
    raft__log_close(&l);
    raft_memory_storage_free(ms);
}

static void test_fault_vote_before_persist(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.faults.vote_before_persist = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    struct raft_update up;
    struct raft_message v = {.type = RAFT_MSG_VOTE,
                             .from = 1,
                             .to = 2,
                             .term = 2,
                             .log_term = 1,
                             .index = 1};
    assert_int_equal(raft_receive(h_r(&net, 2), &v, &up), 0);
    assert_int_equal(up.n_messages, 1);
    assert_int_equal(up.messages[0].type, RAFT_MSG_VOTE_RESP);
    assert_false(up.messages[0].after_persist);
    h_close(&net);
}

static void test_fault_skip_up_to_date(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.faults.skip_up_to_date_check = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_propose(&net, 1, "a");
    h_deliver(&net, 1000);
    h_drop_queue(&net);
    /* A candidate with only the bootstrap entry gets a vote. */
    struct raft_message v = {.type = RAFT_MSG_VOTE,
                             .from = 3,
                             .to = 2,
                             .term = 9,
                             .log_term = 1,
                             .index = 1};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &v};
    h_step(&net, 2, &ev);
    char out[256];
    assert_string_equal(h_render_queue(&net, out, sizeof(out)),
                        "2->3 MsgVoteResp term=9\n");
    h_close(&net);
}

static void test_fault_skip_append_conflict_check(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.faults.skip_append_conflict_check = true;
    struct h_net net;
    h_init(&net, 2, 2, &c);
    /* 2 has only index 1 (term 1); an append claiming index 1 has term 5
     * is accepted without the consistency check. */
    struct raft_entry e = {.term = 5, .index = 2};
    struct raft_message app = {.type = RAFT_MSG_APP,
                               .from = 1,
                               .to = 2,
                               .term = 5,
                               .log_term = 5,
                               .index = 1,
                               .entries = &e,
                               .n_entries = 1};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &app};
    h_step(&net, 2, &ev);
    char out[256];
    assert_string_equal(h_render_queue(&net, out, sizeof(out)),
                        "2->1 MsgAppResp term=5 index=2\n");
    h_close(&net);
}
#endif

int test_faults_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nomem_every_allocation),
        cmocka_unit_test(test_nomem_raft_new),
        cmocka_unit_test(test_bad_config),
#ifdef CAIRN_FAULTS
        cmocka_unit_test(test_fault_commit_earlier_terms),
        cmocka_unit_test(test_fault_vote_before_persist),
        cmocka_unit_test(test_fault_skip_up_to_date),
        cmocka_unit_test(test_fault_skip_append_conflict_check),
#endif
    };
    return cmocka_run_group_tests_name("raft_faults", tests, NULL, NULL);
}
