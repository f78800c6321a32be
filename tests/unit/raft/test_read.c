/* ReadIndex (thesis §6.4): a heartbeat round confirms leadership, answers
 * come in request order, not before the leader committed an entry of its
 * term, followers forward, and the lease option. */
#include "tests.h"

#include <string.h>

static char out[16384];

#define EXPECT_QUEUE(net, text) \
    assert_string_equal(h_render_queue((net), out, sizeof(out)), (text))

static void test_read_index_round(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    assert_int_equal(h_read(&net, 1, 5), CAIRN_ENOLEADER);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_read(&net, 1, 42), 0);
    EXPECT_QUEUE(&net, "1->2 MsgHeartbeat term=2 commit=2 ctx=1\n"
                       "1->3 MsgHeartbeat term=2 commit=2 ctx=1\n");
    assert_int_equal(net.nodes[1].n_reads, 0);
    h_deliver(&net, 2);
    EXPECT_QUEUE(&net, "2->1 MsgHeartbeatResp term=2 ctx=1\n"
                       "3->1 MsgHeartbeatResp term=2 ctx=1\n");
    h_deliver(&net, 1);
    /* A quorum (self and 2) confirmed: answered with the commit index. */
    assert_int_equal(net.nodes[1].n_reads, 1);
    assert_true(net.nodes[1].reads[0].ctx == 42);
    assert_int_equal(net.nodes[1].reads[0].index, 2);
    h_deliver(&net, 1);
    assert_int_equal(net.nodes[1].n_reads, 1); /* used once */
    h_close(&net);
}

static void test_read_order(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_read(&net, 1, 100);
    h_propose(&net, 1, "w");
    h_read(&net, 1, 101);
    h_read(&net, 1, 102);
    /* Deliver the answers to the last round first: it confirms all
     * earlier rounds too, and the answers keep request order. */
    h_deliver(&net, 1000);
    struct h_node *n1 = &net.nodes[1];
    assert_int_equal(n1->n_reads, 3);
    assert_true(n1->reads[0].ctx == 100 && n1->reads[1].ctx == 101 &&
                n1->reads[2].ctx == 102);
    assert_int_equal(n1->reads[0].index, 2);
    assert_true(n1->reads[1].index >= 2);
    assert_true(n1->reads[2].index >= n1->reads[1].index);
    h_close(&net);
}

static void test_read_waits_for_term_commit(void **state)
{
    (void)state;
    /* TiKV #6340: a new leader answers only after committing its own
     * empty entry. */
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    for (int i = 0; i < 10 && h_role(&net, 1) != RAFT_LEADER; i++)
        h_deliver(&net, 1);
    assert_int_equal(h_role(&net, 1), RAFT_LEADER);
    assert_int_equal(h_commit(&net, 1), 1);
    h_drop_queue(&net);
    h_read(&net, 1, 7);
    /* No round yet. */
    EXPECT_QUEUE(&net, "");
    h_tick(&net, 1, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 1), 2);
    assert_int_equal(net.nodes[1].n_reads, 1);
    assert_int_equal(net.nodes[1].reads[0].index, 2);
    h_close(&net);
}

static void test_read_forwarded(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_read(&net, 3, 9), 0);
    EXPECT_QUEUE(&net, "3->1 MsgReadIndex term=0 ctx=9 index=0\n");
    h_deliver(&net, 1000);
    assert_int_equal(net.nodes[3].n_reads, 1);
    assert_true(net.nodes[3].reads[0].ctx == 9);
    assert_int_equal(net.nodes[3].reads[0].index, 2);
    h_close(&net);
}

static void test_partitioned_leader_cannot_read(void **state)
{
    (void)state;
    /* etcd #741: a deposed leader that still believes it leads. */
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_isolate(&net, 1);
    h_campaign(&net, 2);
    h_deliver(&net, 1000);
    h_propose(&net, 2, "new");
    h_deliver(&net, 1000);
    assert_int_equal(h_role(&net, 1), RAFT_LEADER); /* stale */
    h_read(&net, 1, 1);
    for (int i = 0; i < 5; i++) {
        h_tick(&net, 1, 1);
        h_deliver(&net, 1000);
    }
    assert_int_equal(net.nodes[1].n_reads, 0);
    /* Healed, it learns the new term, steps down, and never answers the
     * old round. */
    h_heal(&net);
    for (int i = 0; i < 3; i++) {
        h_tick(&net, 1, 1);
        h_tick(&net, 2, 1);
        h_deliver(&net, 1000);
    }
    assert_int_equal(h_role(&net, 1), RAFT_FOLLOWER);
    assert_int_equal(net.nodes[1].n_reads, 0);
    h_close(&net);
}

static void test_lease_read(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.read_only = RAFT_READ_ONLY_LEASE_BASED;
    c.id = 1;
    struct raft_memory_storage *ms;
    raft_memory_storage_new(&ms);
    c.storage = raft_memory_storage_iface(ms);
    struct raft *r;
    /* A lease without CheckQuorum is refused. */
    assert_int_equal(raft_new(&c, &r), CAIRN_EINVAL);
    raft_memory_storage_free(ms);
    c.check_quorum = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_read(&net, 1, 3);
    /* Answered at once, no round. */
    assert_int_equal(net.nodes[1].n_reads, 1);
    assert_int_equal(net.nodes[1].reads[0].index, 2);
    EXPECT_QUEUE(&net, "");
    h_close(&net);
}

static void test_single_voter_read(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 1, 1, NULL);
    h_campaign(&net, 1);
    h_read(&net, 1, 77);
    assert_int_equal(net.nodes[1].n_reads, 1);
    assert_int_equal(net.nodes[1].reads[0].index, 2);
    h_close(&net);
}

int test_read_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_index_round),
        cmocka_unit_test(test_read_order),
        cmocka_unit_test(test_read_waits_for_term_commit),
        cmocka_unit_test(test_read_forwarded),
        cmocka_unit_test(test_partitioned_leader_cannot_read),
        cmocka_unit_test(test_lease_read),
        cmocka_unit_test(test_single_voter_read),
    };
    return cmocka_run_group_tests_name("raft_read", tests, NULL, NULL);
}
