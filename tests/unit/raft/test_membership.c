/* Membership (thesis ch. 4, etcd's confchange): single-step changes, joint
 * consensus entered and left automatically or on request, learners and
 * their promotion, one pending change at a time, a removed leader stepping
 * down, and configurations travelling in snapshots and restarts. */
#include "tests.h"

#include <string.h>

static bool has(const raft_id *ids, uint32_t n, raft_id id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void settle(struct h_net *net, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        for (int k = 1; k <= net->n; k++)
            if (net->nodes[k].up)
                h_tick(net, (raft_id)k, 1);
        h_deliver(net, 100000);
    }
}

static void test_add_learner_and_promote(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_propose(&net, 1, "before");
    h_deliver(&net, 1000);
    h_add_empty(&net, 4);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_LEARNER, 4), 0);
    h_deliver(&net, 1000);
    settle(&net, 3);
    const struct raft_conf_state *cs = &h_r(&net, 1)->conf;
    assert_true(has(cs->learners, cs->n_learners, 4));
    assert_false(has(cs->voters, cs->n_voters, 4));
    assert_true(net.nodes[1].conf.n_learners == 1); /* host was told */
    /* The learner received the log (the bootstrap snapshot, then entries)
     * and knows its own configuration. */
    assert_int_equal(h_commit(&net, 4), h_commit(&net, 1));
    assert_true(
        has(h_r(&net, 4)->conf.learners, h_r(&net, 4)->conf.n_learners, 4));
    /* A learner never counts: with 2 and 3 cut off nothing commits, though
     * 4 has everything. */
    h_isolate(&net, 2);
    h_isolate(&net, 3);
    raft_index c = h_commit(&net, 1);
    h_propose(&net, 1, "stuck");
    h_deliver(&net, 1000);
    assert_int_equal(h_last(&net, 4), c + 1);
    assert_int_equal(h_commit(&net, 1), c);
    /* Nor campaigns. */
    for (int i = 0; i < 50; i++)
        h_tick(&net, 4, 1);
    assert_int_equal(h_role(&net, 4), RAFT_FOLLOWER);
    h_heal(&net);
    settle(&net, 2);
    assert_int_equal(h_commit(&net, 1), c + 1);
    /* Promotion. */
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_NODE, 4), 0);
    settle(&net, 2);
    cs = &h_r(&net, 4)->conf;
    assert_true(has(cs->voters, cs->n_voters, 4));
    assert_int_equal(cs->n_learners, 0);
    /* 4 now counts: with two of four cut off, nothing commits; with one,
     * it does (3 of 4). */
    h_isolate(&net, 2);
    c = h_commit(&net, 1);
    h_propose(&net, 1, "with4");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 1), c + 1);
    h_heal(&net);
    settle(&net, 2);
    h_check_safety(&net);
    h_close(&net);
}

static void test_one_pending_change(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    /* Before the leader committed an entry of its term. */
    for (int i = 0; i < 10 && h_role(&net, 1) != RAFT_LEADER; i++)
        h_deliver(&net, 1);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_LEARNER, 4),
        CAIRN_ECONFCHANGEPENDING);
    h_deliver(&net, 1000);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_LEARNER, 4), 0);
    /* A second one while the first is not committed. */
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_LEARNER, 5),
        CAIRN_ECONFCHANGEPENDING);
    h_deliver(&net, 1000);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_LEARNER, 5), 0);
    h_deliver(&net, 1000);
    /* Invalid changes: two voters at once without joint; leaving a
     * configuration that is not joint; removing every voter. */
    assert_int_equal(h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 2,
                            RAFT_CC_ADD_NODE, 4, RAFT_CC_ADD_NODE, 5),
                     0); /* two changes with AUTO: joint */
    h_deliver(&net, 1000);
    h_deliver(&net, 1000);
    assert_false(raft__conf_is_joint(&h_r(&net, 1)->conf));
    assert_int_equal(h_r(&net, 1)->conf.n_voters, 5);
    assert_int_equal(h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 0), CAIRN_EINVAL);
    struct raft_conf_state cs = h_r(&net, 1)->conf;
    struct raft_conf_change cc = {.n_changes = 2};
    cc.changes[0] = (struct raft_conf_change_item){RAFT_CC_REMOVE_NODE, 4};
    cc.changes[1] = (struct raft_conf_change_item){RAFT_CC_REMOVE_NODE, 5};
    cc.transition = RAFT_CC_TRANSITION_AUTO;
    /* As a simple change (forced), it must be refused. */
    struct raft_conf_state trial = cs;
    struct raft_conf_change single = cc;
    single.n_changes = 1;
    assert_int_equal(raft__conf_apply(&trial, &single), 0);
    trial = cs;
    struct raft_conf_change all = {.n_changes = 5};
    for (int i = 0; i < 5; i++)
        all.changes[i] = (struct raft_conf_change_item){RAFT_CC_REMOVE_NODE,
                                                        (raft_id)(i + 1)};
    assert_int_equal(raft__conf_apply(&trial, &all), CAIRN_EINVAL);
    assert_true(raft_conf_state_equal(&trial, &cs));
    h_check_safety(&net);
    h_close(&net);
}

static void test_conf_rules(void **state)
{
    (void)state;
    struct raft_conf_state cs = {.n_voters = 3, .voters = {1, 2, 3}};
    struct raft_conf_change cc = {.transition = RAFT_CC_TRANSITION_AUTO};
    /* Simple: one voter at a time. */
    struct raft_conf_state t = cs;
    cc.n_changes = 1;
    cc.changes[0] = (struct raft_conf_change_item){RAFT_CC_ADD_NODE, 4};
    assert_int_equal(raft__conf_apply(&t, &cc), 0);
    assert_int_equal(t.n_voters, 4);
    /* Joint: outgoing is the old voters; demoting a voter puts it in
     * learners_next until the joint configuration is left. */
    t = cs;
    cc.transition = RAFT_CC_TRANSITION_JOINT_EXPLICIT;
    cc.n_changes = 2;
    cc.changes[0] = (struct raft_conf_change_item){RAFT_CC_ADD_LEARNER, 3};
    cc.changes[1] = (struct raft_conf_change_item){RAFT_CC_ADD_NODE, 4};
    assert_int_equal(raft__conf_apply(&t, &cc), 0);
    assert_true(raft__conf_is_joint(&t));
    assert_false(t.auto_leave);
    assert_int_equal(t.n_voters_outgoing, 3);
    assert_true(has(t.learners_next, t.n_learners_next, 3));
    assert_false(has(t.learners, t.n_learners, 3));
    assert_true(raft__conf_is_voter(&t, 3)); /* still, in the old half */
    /* No new change while joint. */
    struct raft_conf_state t2 = t;
    assert_int_equal(raft__conf_apply(&t2, &cc), CAIRN_EINVAL);
    struct raft_conf_change leave = {.transition = RAFT_CC_TRANSITION_AUTO};
    assert_int_equal(raft__conf_apply(&t, &leave), 0);
    assert_false(raft__conf_is_joint(&t));
    assert_true(has(t.learners, t.n_learners, 3));
    assert_false(raft__conf_is_voter(&t, 3));
    assert_true(raft__conf_is_voter(&t, 4));
    /* Leaving when not joint. */
    assert_int_equal(raft__conf_apply(&t, &leave), CAIRN_EINVAL);
    /* Two voters in one simple step. */
    struct raft_conf_change two = {.transition = RAFT_CC_TRANSITION_AUTO,
                                   .n_changes = 1};
    two.changes[0] = (struct raft_conf_change_item){RAFT_CC_ADD_NODE, 9};
    t = cs;
    assert_int_equal(raft__conf_apply(&t, &two), 0);
}

static void test_joint_change_removes_leader(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_add_empty(&net, 4);
    /* Replace 1 (the leader) by 4, jointly, leaving automatically. */
    assert_int_equal(h_conf(&net, 1, RAFT_CC_TRANSITION_JOINT_IMPLICIT, 2,
                            RAFT_CC_ADD_NODE, 4, RAFT_CC_REMOVE_NODE, 1),
                     0);
    /* Joint first: the leader still leads (it is in the outgoing half). */
    bool saw_joint = false;
    for (int i = 0; i < 200 && h_role(&net, 1) == RAFT_LEADER; i++) {
        h_deliver(&net, 1);
        if (raft__conf_is_joint(&h_r(&net, 1)->conf)) {
            saw_joint = true;
            assert_int_equal(h_role(&net, 1), RAFT_LEADER);
        }
        if (net.nq == 0)
            settle(&net, 1);
    }
    assert_true(saw_joint);
    /* Leaving the joint configuration removed it: it stepped down. */
    assert_int_equal(h_role(&net, 1), RAFT_FOLLOWER);
    const struct raft_conf_state *cs = &h_r(&net, 1)->conf;
    assert_false(raft__conf_is_joint(cs));
    assert_false(raft__conf_is_voter(cs, 1));
    assert_true(raft__conf_is_voter(cs, 4));
    /* The rest elect a new leader and go on. */
    settle(&net, 40);
    raft_id l = h_leader(&net);
    assert_true(l == 2 || l == 3 || l == 4);
    assert_int_equal(h_propose(&net, l, "next"), 0);
    settle(&net, 2);
    assert_int_equal(h_commit(&net, 4), h_last(&net, l));
    /* 1 never campaigns again. */
    for (int i = 0; i < 50; i++)
        h_tick(&net, 1, 1);
    assert_int_equal(h_role(&net, 1), RAFT_FOLLOWER);
    h_check_safety(&net);
    h_close(&net);
}

static void test_explicit_joint(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_add_empty(&net, 4);
    assert_int_equal(h_conf(&net, 1, RAFT_CC_TRANSITION_JOINT_EXPLICIT, 1,
                            RAFT_CC_ADD_NODE, 4),
                     0);
    settle(&net, 5);
    /* Stays joint until asked. */
    assert_true(raft__conf_is_joint(&h_r(&net, 1)->conf));
    assert_true(raft__conf_is_joint(&h_r(&net, 2)->conf));
    assert_int_equal(h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 0), 0);
    settle(&net, 2);
    assert_false(raft__conf_is_joint(&h_r(&net, 1)->conf));
    assert_int_equal(h_r(&net, 1)->conf.n_voters, 4);
    h_check_safety(&net);
    h_close(&net);
}

static void test_remove_follower_and_snapshot_conf(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_REMOVE_NODE, 3), 0);
    settle(&net, 2);
    assert_int_equal(h_r(&net, 1)->conf.n_voters, 2);
    struct raft_status st;
    raft_status_get(h_r(&net, 1), &st);
    assert_int_equal(st.n_progress, 2);
    /* With 3 gone, 1 and 2 commit alone. */
    h_crash(&net, 3);
    h_propose(&net, 1, "two");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 2), h_last(&net, 1));
    /* Compact, then add a new learner 5: it gets the configuration from
     * the snapshot. */
    h_compact(&net, 1);
    h_compact(&net, 2);
    h_add_empty(&net, 5);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_LEARNER, 5), 0);
    settle(&net, 3);
    assert_true(
        raft_conf_state_equal(&h_r(&net, 5)->conf, &h_r(&net, 1)->conf));
    /* Restarts rebuild the configuration from snapshot plus log. */
    h_crash(&net, 2);
    h_start(&net, 2);
    assert_true(
        raft_conf_state_equal(&h_r(&net, 2)->conf, &h_r(&net, 1)->conf));
    h_check_safety(&net);
    h_close(&net);
}

static void test_uncommitted_conf_in_force_and_rolled_back(void **state)
{
    (void)state;
    /* PITFALLS: the configuration in force is the latest in the log,
     * committed or not; a restart keeps it; a truncation rolls it back. */
    struct h_net net;
    h_init(&net, 5, 5, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_cut(&net, 1, 3);
    h_cut(&net, 1, 4);
    h_cut(&net, 1, 5);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_ADD_LEARNER, 6), 0);
    h_deliver(&net, 1000);
    /* On 1 and 2 only: uncommitted, but in force. */
    assert_int_equal(h_commit(&net, 2), 2);
    assert_int_equal(h_last(&net, 2), 3);
    assert_true(raft__conf_is_learner(&h_r(&net, 2)->conf, 6));
    assert_false(raft__conf_is_learner(&h_r(&net, 3)->conf, 6));
    /* A restart does not forget it. */
    h_crash(&net, 2);
    h_start(&net, 2);
    assert_true(raft__conf_is_learner(&h_r(&net, 2)->conf, 6));
    /* 3 leads term 3 without 1 and 2, and overwrites index 3. */
    h_crash(&net, 1);
    h_heal(&net);
    h_cut(&net, 2, 3);
    h_cut(&net, 2, 4);
    h_cut(&net, 2, 5);
    h_campaign(&net, 3);
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 3);
    h_heal(&net);
    h_tick(&net, 3, 1);
    h_deliver(&net, 1000);
    /* 2's entry 3 was replaced: the configuration rolled back. */
    assert_int_equal(raft__log_term_or_zero(&h_r(&net, 2)->log, 3), 3);
    assert_false(raft__conf_is_learner(&h_r(&net, 2)->conf, 6));
    assert_int_equal(h_r(&net, 2)->conf.n_voters, 5);
    h_check_safety(&net);
    h_close(&net);
}

static void test_excluded_voter_campaigns_to_commit_change(void **state)
{
    (void)state;
    /* 1 holds the only copy of its own removal (uncommitted). It may still
     * campaign, as a voter of the committed configuration, and is elected
     * by a majority of the new one; it commits the change and hands over. */
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_isolate(&net, 1);
    assert_int_equal(
        h_conf(&net, 1, RAFT_CC_TRANSITION_AUTO, 1, RAFT_CC_REMOVE_NODE, 1), 0);
    h_drop_queue(&net);
    assert_false(raft__conf_is_voter(&h_r(&net, 1)->conf, 1));
    h_crash(&net, 1);
    h_start(&net, 1);
    h_heal(&net);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    /* Elected (by 2 and 3), committed its removal, handed over. */
    for (raft_id i = 2; i <= 3; i++) {
        assert_int_equal(h_r(&net, i)->conf.n_voters, 2);
        assert_false(raft__conf_is_voter(&h_r(&net, i)->conf, 1));
    }
    raft_id l = h_leader(&net);
    assert_true(l == 2 || l == 3);
    assert_int_equal(h_propose(&net, l, "x"), 0);
    h_deliver(&net, 1000);
    h_check_safety(&net);
    h_close(&net);
}

int test_membership_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_learner_and_promote),
        cmocka_unit_test(test_one_pending_change),
        cmocka_unit_test(test_conf_rules),
        cmocka_unit_test(test_joint_change_removes_leader),
        cmocka_unit_test(test_explicit_joint),
        cmocka_unit_test(test_remove_follower_and_snapshot_conf),
        cmocka_unit_test(test_uncommitted_conf_in_force_and_rolled_back),
        cmocka_unit_test(test_excluded_voter_campaigns_to_commit_change),
    };
    return cmocka_run_group_tests_name("raft_membership", tests, NULL, NULL);
}
