/* Snapshots (§5.1 of the thesis' chapter 5): catch-up of a follower whose
 * next entry was compacted, restore, the host's reports, and the
 * configuration travelling in snapshots. */
#include "tests.h"

#include <string.h>

static char out[16384];

#define EXPECT_QUEUE(net, text) \
    assert_string_equal(h_render_queue((net), out, sizeof(out)), (text))

/* Delivers one message at a time until a MsgSnap is the only thing
 * queued for 3; returns the queue then. */
static const char *deliver_until_snap(struct h_net *net)
{
    for (int i = 0; i < 100; i++) {
        const char *q = h_render_queue(net, out, sizeof(out));
        if (strstr(q, "MsgSnap") != NULL)
            return q;
        if (!h_deliver_one(net))
            break;
    }
    return h_render_queue(net, out, sizeof(out));
}

static raft_id setup_lagging(struct h_net *net, int entries)
{
    h_init(net, 3, 3, NULL);
    h_campaign(net, 1);
    h_deliver(net, 1000);
    h_isolate(net, 3);
    for (int i = 0; i < entries; i++)
        h_propose(net, 1, "v");
    h_deliver(net, 1000);
    for (raft_id i = 1; i <= 2; i++)
        h_compact(net, i);
    return 1;
}

static void test_catch_up_by_snapshot(void **state)
{
    (void)state;
    struct h_net net;
    setup_lagging(&net, 10);
    assert_int_equal(h_commit(&net, 1), 12);
    assert_int_equal(raft__log_first_index(&h_r(&net, 1)->log), 13);
    h_heal(&net);
    h_tick(&net, 1, 1);
    /* Heartbeats, answers, a probe of 3 that it rejects (it has 2 only),
     * and the leader finds 3..12 compacted. */
    assert_string_equal(deliver_until_snap(&net),
                        "1->3 MsgSnap term=2 snap=2/12\n");
    struct raft_status st;
    raft_status_get(h_r(&net, 1), &st);
    for (uint32_t i = 0; i < st.n_progress; i++)
        if (st.progress[i].id == 3) {
            assert_int_equal(st.progress[i].state, RAFT_PROGRESS_SNAPSHOT);
            assert_int_equal(st.progress[i].pending_snapshot, 12);
        }
    h_deliver(&net, 1);
    /* 3 restored, persisted, installed, and answers from 12. */
    assert_int_equal(h_commit(&net, 3), 12);
    assert_int_equal(net.nodes[3].applied_to, 12);
    EXPECT_QUEUE(&net, "3->1 MsgAppResp term=2 index=12\n");
    h_deliver(&net, 1);
    raft_status_get(h_r(&net, 1), &st);
    for (uint32_t i = 0; i < st.n_progress; i++)
        if (st.progress[i].id == 3) {
            assert_int_equal(st.progress[i].state, RAFT_PROGRESS_REPLICATE);
            assert_int_equal(st.progress[i].match, 12);
        }
    /* Replication resumes after the snapshot (hashicorp/raft #212). */
    h_propose(&net, 1, "after");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 3), 13);
    assert_int_equal(net.nodes[3].applied_to, 13);
    h_check_safety(&net);
    h_close(&net);
}

static void test_report_snapshot(void **state)
{
    (void)state;
    struct h_net net;
    setup_lagging(&net, 5);
    h_heal(&net);
    h_tick(&net, 1, 1);
    assert_string_equal(deliver_until_snap(&net),
                        "1->3 MsgSnap term=2 snap=2/7\n");
    h_drop_queue(&net); /* lost on the way */
    /* The host reports the failure: probe again, paused until 3 is
     * heard from. */
    struct raft_event ev = {.type = RAFT_EVENT_REPORT_SNAPSHOT,
                            .u.snapshot_report = {.id = 3, .failed = true}};
    h_step(&net, 1, &ev);
    struct raft_status st;
    raft_status_get(h_r(&net, 1), &st);
    for (uint32_t i = 0; i < st.n_progress; i++)
        if (st.progress[i].id == 3) {
            assert_int_equal(st.progress[i].state, RAFT_PROGRESS_PROBE);
            assert_true(st.progress[i].probe_sent);
            assert_int_equal(st.progress[i].pending_snapshot, 0);
        }
    EXPECT_QUEUE(&net, "");
    /* The next heartbeat round resends it, and this time it arrives. */
    h_tick(&net, 1, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 3), 7);
    h_check_safety(&net);
    h_close(&net);
}

static void test_stale_snapshot_ignored(void **state)
{
    (void)state;
    struct h_net net;
    setup_lagging(&net, 3);
    h_heal(&net);
    h_tick(&net, 1, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 3), 5);
    /* An old snapshot arriving late changes nothing. */
    struct raft_snapshot s = {.meta = {.index = 3, .term = 2}};
    s.meta.conf = h_r(&net, 1)->conf;
    uint8_t data[8] = {0};
    s.data = data;
    s.len = 8;
    struct raft_message m = {
        .type = RAFT_MSG_SNAP, .from = 1, .to = 3, .term = 2, .snapshot = &s};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &m};
    h_drop_queue(&net);
    h_step(&net, 3, &ev);
    EXPECT_QUEUE(&net, "3->1 MsgAppResp term=2 index=5\n");
    assert_int_equal(h_last(&net, 3), 5);
    h_close(&net);
}

static void test_restart_after_compaction(void **state)
{
    (void)state;
    struct h_net net;
    setup_lagging(&net, 6);
    h_heal(&net);
    h_tick(&net, 1, 1);
    h_deliver(&net, 1000);
    for (raft_id i = 1; i <= 3; i++) {
        h_crash(&net, i);
        h_start(&net, i);
    }
    raft_id l = h_elect(&net, 100);
    assert_true(l != RAFT_NONE);
    h_propose(&net, l, "z");
    h_deliver(&net, 1000);
    for (raft_id i = 1; i <= 3; i++)
        assert_int_equal(h_commit(&net, i), h_last(&net, l));
    h_check_safety(&net);
    h_close(&net);
}

static void test_compaction_races_snapshot(void **state)
{
    (void)state;
    /* PITFALLS (hashicorp/raft #212): the leader compacts past the
     * snapshot while it is on its way; the follower installs it, then gets
     * a newer snapshot, and replication resumes; no loop. */
    struct h_net net;
    setup_lagging(&net, 4);
    h_heal(&net);
    h_tick(&net, 1, 1);
    assert_string_equal(deliver_until_snap(&net),
                        "1->3 MsgSnap term=2 snap=2/6\n");
    /* Before it arrives, more entries and another compaction. */
    struct h_msg snap = net.q[0];
    net.nq = 0;
    h_isolate(&net, 3);
    for (int i = 0; i < 5; i++)
        h_propose(&net, 1, "w");
    h_deliver(&net, 1000);
    h_compact(&net, 1);
    assert_int_equal(raft__log_first_index(&h_r(&net, 1)->log), 12);
    h_heal(&net);
    net.q[0] = snap;
    net.nq = 1;
    int snaps = 0;
    for (int i = 0; i < 200 && net.nq > 0; i++) {
        if (net.q[0].type == RAFT_MSG_SNAP)
            snaps++;
        h_deliver(&net, 1);
        if (net.nq == 0)
            h_tick(&net, 1, 1);
        if (h_commit(&net, 3) == h_last(&net, 1))
            break;
    }
    assert_int_equal(h_commit(&net, 3), 11);
    assert_int_equal(snaps, 2);
    assert_int_equal(net.nodes[3].applied_to, 11);
    h_propose(&net, 1, "z");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 3), 12);
    h_check_safety(&net);
    h_close(&net);
}

int test_snapshot_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catch_up_by_snapshot),
        cmocka_unit_test(test_report_snapshot),
        cmocka_unit_test(test_stale_snapshot_ignored),
        cmocka_unit_test(test_restart_after_compaction),
        cmocka_unit_test(test_compaction_races_snapshot),
    };
    return cmocka_run_group_tests_name("raft_snapshot", tests, NULL, NULL);
}
