/* Leadership transfer (thesis §3.10): bring the target up to date, then
 * TimeoutNow; proposals refused meanwhile; abort after an election
 * timeout. */
#include "tests.h"

#include <string.h>

static char out[16384];

#define EXPECT_QUEUE(net, text) \
    assert_string_equal(h_render_queue((net), out, sizeof(out)), (text))

static void test_transfer_up_to_date(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.check_quorum = true; /* the transfer flag passes the lease */
    c.pre_vote = true;     /* and PreVote */
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 1);
    assert_int_equal(h_transfer(&net, 1, 2), 0);
    EXPECT_QUEUE(&net, "1->2 MsgTimeoutNow term=2\n");
    h_deliver(&net, 1);
    EXPECT_QUEUE(&net, "2->1 MsgVote term=3 logterm=2 index=2 transfer\n"
                       "2->3 MsgVote term=3 logterm=2 index=2 transfer\n");
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 2);
    assert_int_equal(h_role(&net, 1), RAFT_FOLLOWER);
    h_close(&net);
}

static void test_transfer_lagging_target(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_isolate(&net, 3);
    h_propose(&net, 1, "a");
    h_deliver(&net, 1000);
    h_heal(&net);
    h_transfer(&net, 1, 3);
    /* Refused while transferring. */
    assert_int_equal(h_propose(&net, 1, "b"), CAIRN_ETRANSFERRING);
    /* First the missing entry, then TimeoutNow. */
    h_render_queue(&net, out, sizeof(out));
    assert_non_null(strstr(out, "1->3 MsgApp"));
    assert_null(strstr(out, "MsgTimeoutNow"));
    bool sent = false;
    for (int i = 0; i < 100 && !sent; i++) {
        h_deliver(&net, 1);
        sent = strstr(h_render_queue(&net, out, sizeof(out)),
                      "MsgTimeoutNow") != NULL;
        /* Only once 3 has everything. */
        if (sent)
            assert_int_equal(h_last(&net, 3), h_last(&net, 1));
    }
    assert_true(sent);
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 3);
    assert_int_equal(h_commit(&net, 3), 4);
    h_check_safety(&net);
    h_close(&net);
}

static void test_transfer_aborts(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_isolate(&net, 3);
    h_propose(&net, 1, "a");
    h_deliver(&net, 1000);
    h_transfer(&net, 1, 3);
    assert_int_equal(h_r(&net, 1)->lead_transferee, 3);
    for (int i = 0; i < 9; i++) {
        h_tick(&net, 1, 1);
        h_deliver(&net, 1000);
    }
    assert_int_equal(h_propose(&net, 1, "b"), CAIRN_ETRANSFERRING);
    h_tick(&net, 1, 1);
    assert_int_equal(h_r(&net, 1)->lead_transferee, RAFT_NONE);
    assert_int_equal(h_propose(&net, 1, "b"), 0);
    assert_int_equal(h_leader(&net), 1);
    h_close(&net);
}

static void test_transfer_ignored_cases(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 2, NULL); /* 3 is a learner */
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_transfer(&net, 1, 1);
    h_transfer(&net, 1, 3);
    h_transfer(&net, 1, 9);
    EXPECT_QUEUE(&net, "");
    assert_int_equal(h_r(&net, 1)->lead_transferee, RAFT_NONE);
    /* A follower asks for itself: forwarded. */
    assert_int_equal(h_transfer(&net, 2, 2), 0);
    EXPECT_QUEUE(&net, "2->1 MsgTransferLeader term=0\n");
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 2);
    h_close(&net);
}

int test_transfer_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer_up_to_date),
        cmocka_unit_test(test_transfer_lagging_target),
        cmocka_unit_test(test_transfer_aborts),
        cmocka_unit_test(test_transfer_ignored_cases),
    };
    return cmocka_run_group_tests_name("raft_transfer", tests, NULL, NULL);
}
