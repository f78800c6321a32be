/* Elections (§5.2, §5.4.1), PreVote (§9.6) and CheckQuorum (§6.2), driven
 * message by message with the exact messages asserted. */
#include "tests.h"

#include <stdio.h>
#include <string.h>

static char out[8192];

#define EXPECT_QUEUE(net, text) \
    assert_string_equal(h_render_queue((net), out, sizeof(out)), (text))

static void test_single_node(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 1, 1, NULL);
    assert_int_equal(h_campaign(&net, 1), 0);
    assert_int_equal(h_role(&net, 1), RAFT_LEADER);
    assert_int_equal(h_term(&net, 1), 2);
    /* The empty entry of the new term commits once durable. */
    assert_int_equal(h_last(&net, 1), 2);
    assert_int_equal(h_commit(&net, 1), 2);
    assert_int_equal(h_propose(&net, 1, "x"), 0);
    assert_int_equal(h_commit(&net, 1), 3);
    assert_int_equal(net.nodes[1].applied_to, 3);
    h_close(&net);
}

static void test_single_node_commit_waits_for_persist(void **state)
{
    (void)state;
    /* etcd #14370: even alone, nothing commits before the local sync. */
    struct raft_memory_storage *ms;
    assert_int_equal(raft_memory_storage_new(&ms), 0);
    struct raft_conf_state cs = {.n_voters = 1, .voters = {1}};
    assert_int_equal(raft_memory_storage_bootstrap(ms, &cs), 0);
    struct raft_config c;
    h_default_config(&c);
    c.id = 1;
    c.storage = raft_memory_storage_iface(ms);
    struct raft *r;
    assert_int_equal(raft_new(&c, &r), 0);
    struct raft_update up;
    struct raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    assert_int_equal(raft_step(r, &ev, &up), 0);
    assert_true(up.soft_state_changed);
    assert_int_equal(up.soft_state.role, RAFT_LEADER);
    assert_true(up.hard_state_changed);
    assert_int_equal(up.hard_state.term, 2);
    assert_int_equal(up.hard_state.vote, 1);
    assert_int_equal(up.hard_state.commit, 1);
    assert_int_equal(up.n_entries, 1);
    assert_int_equal(up.entries[0].index, 2);
    assert_int_equal(up.n_committed, 0);
    assert_int_equal(raft_memory_storage_append(ms, up.entries, 1), 0);
    assert_int_equal(raft_propose(r, "a", 1, &up), 0);
    assert_int_equal(up.n_entries, 1);
    assert_int_equal(up.entries[0].index, 3);
    assert_int_equal(up.hard_state.commit, 1);
    assert_false(up.hard_state_changed);
    /* Persisted up to 2 only: commits 2, not 3. */
    assert_int_equal(raft_memory_storage_append(ms, up.entries, 1), 0);
    assert_int_equal(raft_persisted(r, 2, 2, &up), 0);
    assert_int_equal(up.hard_state.commit, 2);
    assert_int_equal(up.n_committed, 1);
    assert_int_equal(up.committed[0].index, 2);
    assert_int_equal(raft_persisted(r, 3, 2, &up), 0);
    assert_int_equal(up.hard_state.commit, 3);
    assert_int_equal(up.n_committed, 1);
    assert_memory_equal(up.committed[0].data, "a", 1);
    char line[128];
    raft_describe(r, line, sizeof(line));
    assert_string_equal(
        line, "1 leader term=2 vote=1 commit=3 applied=3 last=3 lead=1");
    raft_free(r);
    raft_memory_storage_free(ms);
}

static void test_election_messages(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    assert_int_equal(h_role(&net, 1), RAFT_CANDIDATE);
    EXPECT_QUEUE(&net, "1->2 MsgVote term=2 logterm=1 index=1\n"
                       "1->3 MsgVote term=2 logterm=1 index=1\n");
    h_deliver(&net, 2);
    EXPECT_QUEUE(&net, "2->1 MsgVoteResp term=2\n"
                       "3->1 MsgVoteResp term=2\n");
    h_deliver(&net, 1);
    assert_int_equal(h_role(&net, 1), RAFT_LEADER);
    EXPECT_QUEUE(&net, "3->1 MsgVoteResp term=2\n"
                       "1->2 MsgApp term=2 logterm=1 index=1 commit=1 "
                       "entries=[2/2]\n"
                       "1->3 MsgApp term=2 logterm=1 index=1 commit=1 "
                       "entries=[2/2]\n");
    h_deliver(&net, 3);
    EXPECT_QUEUE(&net, "2->1 MsgAppResp term=2 index=2\n"
                       "3->1 MsgAppResp term=2 index=2\n");
    h_deliver(&net, 1);
    assert_int_equal(h_commit(&net, 1), 2);
    /* The commit travels in the next (empty) append; 3 is still being
     * probed and gets it once it answers. */
    EXPECT_QUEUE(&net, "3->1 MsgAppResp term=2 index=2\n"
                       "1->2 MsgApp term=2 logterm=2 index=2 commit=2 "
                       "entries=[]\n");
    h_deliver(&net, 1);
    EXPECT_QUEUE(&net, "1->2 MsgApp term=2 logterm=2 index=2 commit=2 "
                       "entries=[]\n"
                       "1->3 MsgApp term=2 logterm=2 index=2 commit=2 "
                       "entries=[]\n");
    h_deliver(&net, 100);
    assert_int_equal(h_commit(&net, 2), 2);
    assert_int_equal(h_commit(&net, 3), 2);
    h_check_safety(&net);
    h_close(&net);
}

static void test_durability_marks(void **state)
{
    (void)state;
    /* Vote requests, vote answers and append answers wait for the disk;
     * the leader's appends do not (§10.2.1). */
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    struct raft_update up;
    struct raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    raft_step(h_r(&net, 1), &ev, &up);
    assert_int_equal(up.n_messages, 2);
    assert_true(up.messages[0].after_persist);
    struct raft_message vote = up.messages[0];
    raft_receive(h_r(&net, 2), &vote, &up);
    assert_int_equal(up.n_messages, 1);
    assert_int_equal(up.messages[0].type, RAFT_MSG_VOTE_RESP);
    assert_true(up.messages[0].after_persist);
    assert_true(up.hard_state_changed);
    assert_int_equal(up.hard_state.vote, 1);
    struct raft_message resp = up.messages[0];
    raft_receive(h_r(&net, 1), &resp, &up);
    assert_int_equal(up.soft_state.role, RAFT_LEADER);
    assert_int_equal(up.n_messages, 2);
    assert_int_equal(up.messages[0].type, RAFT_MSG_APP);
    /* The new leader's first appends wait until its term is durable. */
    assert_true(up.messages[0].after_persist);
    struct raft_message app = up.messages[0];
    struct raft_entry e0 = app.entries[0];
    app.entries = &e0;
    struct raft_memory_storage *ms1 = net.nodes[1].ms;
    assert_int_equal(raft_memory_storage_append(ms1, &e0, 1), 0);
    raft_memory_storage_set_hard_state(ms1, &up.hard_state);
    raft_receive(h_r(&net, 2), &app, &up);
    assert_int_equal(up.n_messages, 1);
    assert_int_equal(up.messages[0].type, RAFT_MSG_APP_RESP);
    assert_true(up.messages[0].after_persist);
    assert_int_equal(up.n_entries, 1);
    /* Once it is, the leader's appends go out at once (§10.2.1). */
    assert_int_equal(raft_persisted(h_r(&net, 1), 2, 2, &up), 0);
    assert_int_equal(raft_tick(h_r(&net, 1), &up), 0);
    assert_int_equal(up.n_messages, 2);
    assert_int_equal(up.messages[0].type, RAFT_MSG_HEARTBEAT);
    assert_false(up.messages[0].after_persist);
    h_close(&net);
}

static void test_vote_waits_for_disk(void **state)
{
    (void)state;
    /* With a slow disk, 3's vote is not sent before it is durable; a
     * crash before the sync forgets the vote, and no answer ever left. */
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    net.nodes[3].lazy = true;
    h_campaign(&net, 1);
    h_deliver(&net, 2);
    EXPECT_QUEUE(&net, "2->1 MsgVoteResp term=2\n");
    h_crash(&net, 3);
    h_start(&net, 3);
    assert_int_equal(h_term(&net, 3), 1);
    assert_int_equal(h_r(&net, 3)->vote, RAFT_NONE);
    /* Synced, the answer goes out. */
    h_drop_queue(&net);
    h_campaign(&net, 1);
    h_deliver(&net, 2);
    EXPECT_QUEUE(&net, "2->1 MsgVoteResp term=3\n");
    h_sync(&net, 3);
    EXPECT_QUEUE(&net, "2->1 MsgVoteResp term=3\n"
                       "3->1 MsgVoteResp term=3\n");
    h_close(&net);
}

static void test_randomized_timeout(void **state)
{
    (void)state;
    /* A follower campaigns after a number of ticks in [T, 2T). */
    bool seen[20] = {false};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct raft_config c;
        h_default_config(&c);
        c.seed = seed;
        struct h_net net;
        h_init(&net, 3, 3, &c);
        int ticks = 0;
        while (h_role(&net, 1) == RAFT_FOLLOWER && ticks < 100) {
            h_tick(&net, 1, 1);
            ticks++;
        }
        assert_true(ticks >= 10 && ticks < 20);
        seen[ticks] = true;
        h_close(&net);
    }
    int distinct = 0;
    for (int i = 0; i < 20; i++)
        distinct += seen[i];
    assert_true(distinct >= 8);
}

static void test_vote_once_per_term(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_drop_queue(&net);
    h_campaign(&net, 2); /* both at term 2 */
    h_drop_queue(&net);
    struct raft_message v1 = {.type = RAFT_MSG_VOTE,
                              .from = 1,
                              .to = 3,
                              .term = 2,
                              .log_term = 1,
                              .index = 1};
    struct raft_message v2 = v1;
    v2.from = 2;
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &v1};
    h_step(&net, 3, &ev);
    ev.u.message = &v2;
    h_step(&net, 3, &ev);
    EXPECT_QUEUE(&net, "3->1 MsgVoteResp term=2\n"
                       "3->2 MsgVoteResp term=2 reject\n");
    /* A repeated request from the one it voted for is granted again. */
    h_drop_queue(&net);
    ev.u.message = &v1;
    h_step(&net, 3, &ev);
    EXPECT_QUEUE(&net, "3->1 MsgVoteResp term=2\n");
    /* The vote survives a restart. */
    h_crash(&net, 3);
    h_start(&net, 3);
    h_drop_queue(&net);
    ev.u.message = &v2;
    h_step(&net, 3, &ev);
    EXPECT_QUEUE(&net, "3->2 MsgVoteResp term=2 reject\n");
    h_close(&net);
}

static void test_up_to_date_check(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    raft_id l = h_elect(&net, 50);
    assert_true(l != RAFT_NONE);
    h_propose(&net, l, "a");
    h_deliver(&net, 1000);
    raft_index last = h_last(&net, 1);
    raft_term t = h_term(&net, 1);
    /* A candidate with a shorter log, same last term: refused. */
    raft_id other = l == 1 ? 2 : 1;
    struct raft_message v = {.type = RAFT_MSG_VOTE,
                             .from = 9,
                             .to = other,
                             .term = t + 1,
                             .log_term = t,
                             .index = last - 1};
    /* 9 is unknown but voting needs no membership on the voter's side. */
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &v};
    h_drop_queue(&net);
    h_step(&net, other, &ev);
    char want[128];
    snprintf(want, sizeof(want), "%llu->9 MsgVoteResp term=%llu reject\n",
             (unsigned long long)other, (unsigned long long)(t + 1));
    EXPECT_QUEUE(&net, want);
    /* A higher last term wins even with a shorter log. */
    h_drop_queue(&net);
    v.term = t + 2;
    v.log_term = t + 1;
    v.index = 1;
    h_step(&net, other, &ev);
    snprintf(want, sizeof(want), "%llu->9 MsgVoteResp term=%llu\n",
             (unsigned long long)other, (unsigned long long)(t + 2));
    EXPECT_QUEUE(&net, want);
    h_close(&net);
}

/* A member cut off from the others, then rejoining: with PreVote it
 * neither raises its term nor deposes the leader. */
static void partitioned_rejoin(bool pre_vote, bool check_quorum)
{
    struct raft_config c;
    h_default_config(&c);
    c.pre_vote = pre_vote;
    c.check_quorum = check_quorum;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 1);
    raft_term t = h_term(&net, 1);
    h_isolate(&net, 3);
    for (int i = 0; i < 100; i++) {
        h_tick(&net, 1, 1);
        h_tick(&net, 2, 1);
        h_tick(&net, 3, 1);
        h_deliver(&net, 1000);
    }
    assert_int_equal(h_leader(&net), 1);
    if (pre_vote)
        assert_int_equal(h_term(&net, 3), t);
    else
        assert_true(h_term(&net, 3) > t);
    h_heal(&net);
    for (int i = 0; i < 40; i++) {
        h_tick(&net, 1, 1);
        h_tick(&net, 2, 1);
        h_tick(&net, 3, 1);
        h_deliver(&net, 1000);
    }
    raft_id l = h_leader(&net);
    assert_true(l != RAFT_NONE);
    if (pre_vote) {
        /* Undisturbed. */
        assert_int_equal(l, 1);
        assert_int_equal(h_term(&net, 1), t);
    } else {
        /* The rejoining member's higher term disrupted the leader. */
        assert_true(h_term(&net, l) > t);
    }
    /* Everyone agrees again. */
    h_propose(&net, l, "after");
    h_deliver(&net, 1000);
    for (raft_id i = 1; i <= 3; i++)
        assert_int_equal(h_commit(&net, i), h_last(&net, l));
    h_check_safety(&net);
    h_close(&net);
}

static void test_partitioned_rejoin_prevote(void **state)
{
    (void)state;
    partitioned_rejoin(true, false);
    partitioned_rejoin(true, true);
}

static void test_partitioned_rejoin_no_prevote(void **state)
{
    (void)state;
    partitioned_rejoin(false, false);
}

static void test_prevote_messages(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.pre_vote = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    assert_int_equal(h_role(&net, 1), RAFT_PRE_CANDIDATE);
    assert_int_equal(h_term(&net, 1), 1);
    EXPECT_QUEUE(&net, "1->2 MsgPreVote term=2 logterm=1 index=1\n"
                       "1->3 MsgPreVote term=2 logterm=1 index=1\n");
    h_deliver(&net, 2);
    /* Voters do not change term for a PreVote. */
    assert_int_equal(h_term(&net, 2), 1);
    EXPECT_QUEUE(&net, "2->1 MsgPreVoteResp term=2\n"
                       "3->1 MsgPreVoteResp term=2\n");
    h_deliver(&net, 1);
    assert_int_equal(h_role(&net, 1), RAFT_CANDIDATE);
    assert_int_equal(h_term(&net, 1), 2);
    EXPECT_QUEUE(&net, "3->1 MsgPreVoteResp term=2\n"
                       "1->2 MsgVote term=2 logterm=1 index=1\n"
                       "1->3 MsgVote term=2 logterm=1 index=1\n");
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 1);
    h_close(&net);
}

static void test_check_quorum_step_down(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.check_quorum = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 1);
    h_isolate(&net, 1);
    /* The first check may see the peers active from before the cut. */
    for (int i = 0; i < 2 * 10 + 1; i++) {
        h_tick(&net, 1, 1);
        h_deliver(&net, 1000);
    }
    assert_int_equal(h_role(&net, 1), RAFT_FOLLOWER);
    assert_int_equal(h_r(&net, 1)->lead, RAFT_NONE);
    /* Without CheckQuorum it would lead forever. */
    h_close(&net);
    h_default_config(&c);
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_isolate(&net, 1);
    for (int i = 0; i < 100; i++) {
        h_tick(&net, 1, 1);
        h_deliver(&net, 1000);
    }
    assert_int_equal(h_role(&net, 1), RAFT_LEADER);
    h_close(&net);
}

static void test_check_quorum_lease(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.check_quorum = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    raft_term t = h_term(&net, 2);
    /* 2 heard from the leader just now: a higher-term vote is ignored
     * (no answer, no term change)... */
    struct raft_message v = {.type = RAFT_MSG_VOTE,
                             .from = 3,
                             .to = 2,
                             .term = t + 1,
                             .log_term = t,
                             .index = 9};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &v};
    h_step(&net, 2, &ev);
    EXPECT_QUEUE(&net, "");
    assert_int_equal(h_term(&net, 2), t);
    /* ...unless it is for a leadership transfer. */
    v.transfer = true;
    h_step(&net, 2, &ev);
    char want[128];
    snprintf(want, sizeof(want), "2->3 MsgVoteResp term=%llu\n",
             (unsigned long long)(t + 1));
    EXPECT_QUEUE(&net, want);
    h_close(&net);
}

/* PITFALLS: PreVote x CheckQuorum x a member restarting with a stale term,
 * under partitions: the cluster must always come back. */
static void test_prevote_checkquorum_restart_matrix(void **state)
{
    (void)state;
    for (int mask = 0; mask < 4; mask++) {
        for (uint64_t seed = 1; seed <= 6; seed++) {
            struct raft_config c;
            h_default_config(&c);
            c.pre_vote = (mask & 1) != 0;
            c.check_quorum = (mask & 2) != 0;
            c.seed = seed;
            struct h_net net;
            h_init(&net, 3, 3, &c);
            raft_id l = h_elect(&net, 100);
            assert_true(l != RAFT_NONE);
            /* 3 falls behind in term: it is cut off while the others
             * go through elections. */
            raft_id stale = l == 3 ? 2 : 3;
            h_isolate(&net, stale);
            for (int round = 0; round < 3; round++) {
                raft_id cur = h_leader(&net);
                raft_id other = 0;
                for (raft_id i = 1; i <= 3; i++)
                    if (i != stale && i != cur)
                        other = i;
                if (cur != RAFT_NONE) {
                    h_transfer(&net, cur, other);
                    h_deliver(&net, 1000);
                }
                h_elect(&net, 100);
            }
            /* Then it restarts with its old, stale term and rejoins,
             * while the (old) leader is cut off for a while. */
            h_crash(&net, stale);
            h_start(&net, stale);
            h_heal(&net);
            raft_id cur = h_leader(&net);
            if (cur != RAFT_NONE && (seed & 1))
                h_isolate(&net, cur);
            for (int i = 0; i < 60; i++) {
                for (raft_id k = 1; k <= 3; k++)
                    h_tick(&net, k, 1);
                h_deliver(&net, 1000);
            }
            h_heal(&net);
            raft_id fin = RAFT_NONE;
            for (int i = 0; i < 200 && fin == RAFT_NONE; i++) {
                for (raft_id k = 1; k <= 3; k++)
                    h_tick(&net, k, 1);
                h_deliver(&net, 1000);
                fin = h_leader(&net);
                if (fin != RAFT_NONE && h_propose(&net, fin, "ok") != 0)
                    fin = RAFT_NONE;
            }
            assert_true(fin != RAFT_NONE);
            for (int i = 0; i < 30; i++) {
                for (raft_id k = 1; k <= 3; k++)
                    h_tick(&net, k, 1);
                h_deliver(&net, 1000);
            }
            /* Every member caught up with the final leader. */
            fin = h_leader(&net);
            assert_true(fin != RAFT_NONE);
            for (raft_id k = 1; k <= 3; k++)
                assert_int_equal(h_commit(&net, k), h_commit(&net, fin));
            h_check_safety(&net);
            h_close(&net);
        }
    }
}

static void test_learner_never_campaigns(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 2, NULL);
    for (int i = 0; i < 100; i++)
        h_tick(&net, 3, 1);
    assert_int_equal(h_role(&net, 3), RAFT_FOLLOWER);
    EXPECT_QUEUE(&net, "");
    /* Voters do not ask it either. */
    h_campaign(&net, 1);
    EXPECT_QUEUE(&net, "1->2 MsgVote term=2 logterm=1 index=1\n");
    h_close(&net);
}

int test_election_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_node),
        cmocka_unit_test(test_single_node_commit_waits_for_persist),
        cmocka_unit_test(test_election_messages),
        cmocka_unit_test(test_durability_marks),
        cmocka_unit_test(test_vote_waits_for_disk),
        cmocka_unit_test(test_randomized_timeout),
        cmocka_unit_test(test_vote_once_per_term),
        cmocka_unit_test(test_up_to_date_check),
        cmocka_unit_test(test_partitioned_rejoin_prevote),
        cmocka_unit_test(test_partitioned_rejoin_no_prevote),
        cmocka_unit_test(test_prevote_messages),
        cmocka_unit_test(test_check_quorum_step_down),
        cmocka_unit_test(test_check_quorum_lease),
        cmocka_unit_test(test_prevote_checkquorum_restart_matrix),
        cmocka_unit_test(test_learner_never_campaigns),
    };
    return cmocka_run_group_tests_name("raft_election", tests, NULL, NULL);
}
