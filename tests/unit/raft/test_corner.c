/* Corner cases of message handling: stale terms, split votes, higher-term
 * answers deposing a leader, learners and TimeoutNow, stale leaders
 * learning the term (etcd #8243), status and descriptions. */
#include "tests.h"

#include <string.h>

static char out[8192];

#define EXPECT_QUEUE(net, text) \
    assert_string_equal(h_render_queue((net), out, sizeof(out)), (text))

static void test_stale_messages_ignored(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_campaign(&net, 2); /* term 3 */
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 2);
    /* A term-2 append from the old leader: no answer without PreVote or
     * CheckQuorum, no change. */
    struct raft_message app = {.type = RAFT_MSG_APP,
                               .from = 1,
                               .to = 3,
                               .term = 2,
                               .index = 2,
                               .log_term = 2};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &app};
    h_step(&net, 3, &ev);
    EXPECT_QUEUE(&net, "");
    assert_int_equal(h_r(&net, 3)->lead, 2);
    h_close(&net);
}

static void test_stale_leader_learns_term(void **state)
{
    (void)state;
    /* With CheckQuorum, a stale leader's append is answered with our term
     * so it steps down (etcd #8243). */
    struct raft_config c;
    h_default_config(&c);
    c.check_quorum = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_isolate(&net, 1);
    /* 2 and 3 wait out the lease, then elect one of them at term 3. */
    for (int i = 0; i < 100 && h_role(&net, 2) != RAFT_LEADER &&
                    h_role(&net, 3) != RAFT_LEADER;
         i++) {
        h_tick(&net, 2, 1);
        h_tick(&net, 3, 1);
        h_deliver(&net, 1000);
    }
    assert_int_equal(h_term(&net, 2), 3);
    assert_int_equal(h_role(&net, 1), RAFT_LEADER);
    h_heal(&net);
    h_tick(&net, 1, 1); /* heartbeats at term 2 */
    h_deliver(&net, 2);
    EXPECT_QUEUE(&net, "2->1 MsgAppResp term=3 index=0\n"
                       "3->1 MsgAppResp term=3 index=0\n");
    h_deliver(&net, 1);
    assert_int_equal(h_role(&net, 1), RAFT_FOLLOWER);
    assert_int_equal(h_term(&net, 1), 3);
    h_close(&net);
}

static void test_split_vote(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 4, 4, NULL);
    h_cut(&net, 1, 2);
    h_cut(&net, 3, 4);
    h_cut(&net, 1, 4);
    h_cut(&net, 2, 3);
    /* 1 gets 3's vote, 2 gets 4's: 2 of 4 each, nobody wins. */
    h_campaign(&net, 1);
    h_campaign(&net, 2);
    h_deliver(&net, 1000);
    assert_int_equal(h_role(&net, 1), RAFT_CANDIDATE);
    assert_int_equal(h_role(&net, 2), RAFT_CANDIDATE);
    assert_int_equal(h_leader(&net), RAFT_NONE);
    /* Healed, a later election succeeds. */
    h_heal(&net);
    assert_true(h_elect(&net, 100) != RAFT_NONE);
    h_close(&net);
}

static void test_higher_term_answer_deposes_leader(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    struct raft_message resp = {
        .type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 7};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &resp};
    h_step(&net, 1, &ev);
    assert_int_equal(h_role(&net, 1), RAFT_FOLLOWER);
    assert_int_equal(h_term(&net, 1), 7);
    assert_int_equal(h_r(&net, 1)->lead, RAFT_NONE);
    h_close(&net);
}

static void test_learner_ignores_timeout_now(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 2, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    struct raft_message tn = {
        .type = RAFT_MSG_TIMEOUT_NOW, .from = 1, .to = 3, .term = 2};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &tn};
    h_step(&net, 3, &ev);
    assert_int_equal(h_role(&net, 3), RAFT_FOLLOWER);
    EXPECT_QUEUE(&net, "");
    h_close(&net);
}

static void test_status_and_describe(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_propose(&net, 1, "s");
    h_deliver(&net, 1000);
    struct raft_status st;
    raft_status_get(h_r(&net, 1), &st);
    assert_int_equal(st.id, 1);
    assert_int_equal(st.soft_state.role, RAFT_LEADER);
    assert_int_equal(st.hard_state.commit, 3);
    assert_int_equal(st.applied, 3);
    assert_int_equal(st.last_index, 3);
    assert_int_equal(st.n_progress, 3);
    for (uint32_t i = 0; i < st.n_progress; i++) {
        assert_int_equal(st.progress[i].match, 3);
        assert_int_equal(st.progress[i].next, 4);
        assert_int_equal(st.progress[i].state, RAFT_PROGRESS_REPLICATE);
    }
    raft_status_get(h_r(&net, 2), &st);
    assert_int_equal(st.n_progress, 0);
    assert_int_equal(st.soft_state.lead, 1);
    char line[32];
    /* Truncated, NUL-terminated, full length reported. */
    size_t want = raft_describe(h_r(&net, 2), line, sizeof(line));
    assert_true(want > sizeof(line));
    assert_int_equal(strlen(line), sizeof(line) - 1);
    h_close(&net);
}

static void test_unknown_event(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 1, 1, NULL);
    struct raft_event ev = {.type = 99};
    struct raft_update up;
    assert_int_equal(raft_step(h_r(&net, 1), &ev, &up), CAIRN_EINVAL);
    assert_int_equal(up.n_messages, 0);
    h_close(&net);
}

int test_corner_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_messages_ignored),
        cmocka_unit_test(test_stale_leader_learns_term),
        cmocka_unit_test(test_split_vote),
        cmocka_unit_test(test_higher_term_answer_deposes_leader),
        cmocka_unit_test(test_learner_ignores_timeout_now),
        cmocka_unit_test(test_status_and_describe),
        cmocka_unit_test(test_unknown_event),
    };
    return cmocka_run_group_tests_name("raft_corner", tests, NULL, NULL);
}
