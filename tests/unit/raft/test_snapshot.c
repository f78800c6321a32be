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

/* ---- a follower driven by hand: reports of a received snapshot and of
 * the entries after it, in either order ---- */

struct hand {
    struct raft_memory_storage *ms;
    struct raft *r;
    struct raft_update up;
};

static void hand_new(struct hand *h)
{
    struct raft_conf_state cs = {.n_voters = 3, .voters = {1, 2, 3}};
    assert_int_equal(raft_memory_storage_new(&h->ms), 0);
    assert_int_equal(raft_memory_storage_bootstrap(h->ms, &cs), 0);
    struct raft_config c;
    h_default_config(&c);
    c.id = 2;
    c.seed = 7;
    c.storage = raft_memory_storage_iface(h->ms);
    assert_int_equal(raft_new(&c, &h->r), 0);
}

static void hand_free(struct hand *h)
{
    raft_free(h->r);
    raft_memory_storage_free(h->ms);
}

/* Steps and carries out step 1 of the update (storage is written at once,
 * as a host does before it reports); completions are the test's to send. */
static void hand_step(struct hand *h, const struct raft_event *ev)
{
    assert_int_equal(raft_step(h->r, ev, &h->up), 0);
    if (h->up.snapshot != NULL)
        assert_int_equal(
            raft_memory_storage_apply_snapshot(h->ms, h->up.snapshot), 0);
    if (h->up.n_entries > 0)
        assert_int_equal(
            raft_memory_storage_append(h->ms, h->up.entries, h->up.n_entries),
            0);
    if (h->up.hard_state_changed)
        raft_memory_storage_set_hard_state(h->ms, &h->up.hard_state);
}

static void hand_receive(struct hand *h, const struct raft_message *m)
{
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = m};
    hand_step(h, &ev);
}

static void hand_persisted(struct hand *h, raft_index i, raft_term t)
{
    struct raft_event ev = {.type = RAFT_EVENT_PERSISTED,
                            .u.persisted = {.index = i, .term = t}};
    hand_step(h, &ev);
}

static void hand_installed(struct hand *h, raft_index i)
{
    struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_INSTALLED,
                            .u.snapshot_index = i};
    hand_step(h, &ev);
}

static raft_index hand_last(struct hand *h)
{
    struct raft_status st;
    raft_status_get(h->r, &st);
    return st.last_index;
}

/* The only message of the last update, of type; returns it. */
static const struct raft_message *hand_only_msg(struct hand *h, uint8_t type)
{
    assert_int_equal(h->up.n_messages, 1);
    assert_int_equal(h->up.messages[0].type, type);
    return &h->up.messages[0];
}

/* Leader 1 (term 2) sends a snapshot at 10, then entries 11..13 committed
 * up to 13. The host writes both and reports PERSISTED for 13 and
 * SNAPSHOT_INSTALLED for 10 in the order given; the follower must keep
 * 11..13 in its log throughout, refuse a vote to a candidate lacking them,
 * and hand them out for applying once the snapshot is installed. */
static void snapshot_then_entries(bool persisted_first)
{
    struct hand h;
    hand_new(&h);
    static const uint8_t img[] = "image";
    struct raft_snapshot snap = {
        .meta = {.index = 10,
                 .term = 2,
                 .conf = {.n_voters = 3, .voters = {1, 2, 3}}},
        .data = img,
        .len = sizeof(img)};
    struct raft_message sm = {.type = RAFT_MSG_SNAP,
                              .from = 1,
                              .to = 2,
                              .term = 2,
                              .snapshot = &snap};
    hand_receive(&h, &sm);
    assert_non_null(h.up.snapshot);
    assert_int_equal(h.up.snapshot->meta.index, 10);
    assert_int_equal(hand_only_msg(&h, RAFT_MSG_APP_RESP)->index, 10);

    static const uint8_t d[3] = {'a', 'b', 'c'};
    struct raft_entry ents[3];
    for (int i = 0; i < 3; i++)
        ents[i] = (struct raft_entry){
            .term = 2, .index = (raft_index)(11 + i), .data = &d[i], .len = 1};
    struct raft_message am = {.type = RAFT_MSG_APP,
                              .from = 1,
                              .to = 2,
                              .term = 2,
                              .log_term = 2,
                              .index = 10,
                              .commit = 13,
                              .entries = ents,
                              .n_entries = 3};
    hand_receive(&h, &am);
    assert_int_equal(h.up.n_entries, 3);
    assert_int_equal(h.up.entries[0].index, 11);
    assert_int_equal(h.up.n_committed, 0); /* the snapshot comes first */
    const struct raft_message *ack = hand_only_msg(&h, RAFT_MSG_APP_RESP);
    assert_false(ack->reject);
    assert_int_equal(ack->index, 13);
    assert_true(ack->after_persist);

    if (persisted_first) {
        hand_persisted(&h, 13, 2);
        assert_int_equal(h.up.n_committed, 0);
    } else {
        hand_installed(&h, 10);
        /* Installed, but 11..13 are not durable yet: nothing to apply. */
        assert_int_equal(h.up.n_committed, 0);
    }
    /* Between the two reports: 11..13 were acknowledged to the leader, so
     * they must still be the follower's log. */
    raft_index last = hand_last(&h);
    if (last != 13)
        fail_msg("entries 11..13 after the uninstalled snapshot lost: "
                 "last index %llu, want 13",
                 (unsigned long long)last);
    assert_int_equal(raft__log_last_term(&h.r->log), 2);
    /* A probe at 13 matches, and the leader may go on from there. */
    struct raft_message probe = {.type = RAFT_MSG_APP,
                                 .from = 1,
                                 .to = 2,
                                 .term = 2,
                                 .log_term = 2,
                                 .index = 13,
                                 .commit = 13};
    hand_receive(&h, &probe);
    ack = hand_only_msg(&h, RAFT_MSG_APP_RESP);
    assert_false(ack->reject);
    assert_int_equal(ack->index, 13);

    if (persisted_first) {
        hand_installed(&h, 10);
    } else {
        hand_persisted(&h, 13, 2);
    }
    /* Both reports in: 11..13 are applied, in order, once. */
    assert_int_equal(h.up.n_committed, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(h.up.committed[i].index, 11 + i);
        assert_int_equal(h.up.committed[i].len, 1);
        assert_int_equal(h.up.committed[i].data[0], d[i]);
    }
    struct raft_status st;
    raft_status_get(h.r, &st);
    assert_int_equal(st.applied, 13);
    assert_int_equal(st.last_index, 13);
    assert_int_equal(raft__log_durable_index(&h.r->log), 13);
    /* Replication goes on after them. */
    struct raft_entry e14 = {.term = 2, .index = 14};
    struct raft_message am2 = {.type = RAFT_MSG_APP,
                               .from = 1,
                               .to = 2,
                               .term = 2,
                               .log_term = 2,
                               .index = 13,
                               .commit = 13,
                               .entries = &e14,
                               .n_entries = 1};
    hand_receive(&h, &am2);
    assert_int_equal(h.up.n_entries, 1);
    assert_int_equal(h.up.entries[0].index, 14);
    assert_int_equal(hand_only_msg(&h, RAFT_MSG_APP_RESP)->index, 14);

    /* A candidate at term 3 whose log ends at the snapshot lacks entries
     * this member acknowledged: no vote (§5.4.1). */
    struct raft_message vote = {.type = RAFT_MSG_VOTE,
                                .from = 3,
                                .to = 2,
                                .term = 3,
                                .log_term = 2,
                                .index = 10};
    hand_receive(&h, &vote);
    assert_true(hand_only_msg(&h, RAFT_MSG_VOTE_RESP)->reject);
    hand_free(&h);
}

static void test_persisted_before_snapshot_installed(void **state)
{
    (void)state;
    snapshot_then_entries(true);
}

static void test_snapshot_installed_before_persisted(void **state)
{
    (void)state;
    snapshot_then_entries(false);
}

static void test_leader_counts_itself_once_snapshot_installed(void **state)
{
    (void)state;
    /* A follower wins an election while the snapshot it received is not
     * installed yet: its own entries count towards commit only once the
     * snapshot is, and then at once (not at the next PERSISTED). */
    struct hand h;
    hand_new(&h);
    struct raft_snapshot snap = {
        .meta = {.index = 10,
                 .term = 2,
                 .conf = {.n_voters = 3, .voters = {1, 2, 3}}}};
    struct raft_message sm = {.type = RAFT_MSG_SNAP,
                              .from = 1,
                              .to = 2,
                              .term = 2,
                              .snapshot = &snap};
    hand_receive(&h, &sm);
    struct raft_entry ents[3];
    for (int i = 0; i < 3; i++)
        ents[i] = (struct raft_entry){.term = 2, .index = (raft_index)(11 + i)};
    struct raft_message am = {.type = RAFT_MSG_APP,
                              .from = 1,
                              .to = 2,
                              .term = 2,
                              .log_term = 2,
                              .index = 10,
                              .commit = 13,
                              .entries = ents,
                              .n_entries = 3};
    hand_receive(&h, &am);
    hand_persisted(&h, 13, 2);

    struct raft_event camp = {.type = RAFT_EVENT_CAMPAIGN};
    hand_step(&h, &camp);
    assert_int_equal(h.up.n_messages, 2);
    assert_int_equal(h.up.messages[0].index, 13); /* its last entry */
    struct raft_message vr = {
        .type = RAFT_MSG_VOTE_RESP, .from = 1, .to = 2, .term = 3};
    hand_receive(&h, &vr);
    assert_int_equal(h.up.soft_state.role, RAFT_LEADER);
    assert_int_equal(h.up.n_entries, 1);
    assert_int_equal(h.up.entries[0].index, 14);
    hand_persisted(&h, 14, 3);
    assert_int_equal(hand_last(&h), 14);

    /* 1 has 14; with our own entry not yet counted there is no quorum. */
    struct raft_message ar = {
        .type = RAFT_MSG_APP_RESP, .from = 1, .to = 2, .term = 3, .index = 14};
    hand_receive(&h, &ar);
    assert_int_equal(h.up.hard_state.commit, 13);
    assert_int_equal(h.up.n_committed, 0);

    hand_installed(&h, 10);
    assert_int_equal(h.up.hard_state.commit, 14);
    assert_int_equal(h.up.n_committed, 4);
    assert_int_equal(h.up.committed[0].index, 11);
    assert_int_equal(h.up.committed[3].index, 14);
    assert_int_equal(h.up.committed[3].term, 3);
    /* The new commit goes out. */
    bool told = false;
    for (size_t i = 0; i < h.up.n_messages; i++)
        if (h.up.messages[i].to == 1 && h.up.messages[i].type == RAFT_MSG_APP)
            told = h.up.messages[i].commit == 14;
    assert_true(told);
    hand_free(&h);
}

static void test_persisted_report_cut_by_truncation(void **state)
{
    (void)state;
    /* Entries after an uninstalled snapshot are reported persisted, then
     * a new leader replaces the last two of them: on installation only the
     * entry that survived counts as durable, and the replaced ones' late
     * report changes nothing. */
    struct hand h;
    hand_new(&h);
    struct raft_snapshot snap = {
        .meta = {.index = 10,
                 .term = 2,
                 .conf = {.n_voters = 3, .voters = {1, 2, 3}}}};
    struct raft_message sm = {.type = RAFT_MSG_SNAP,
                              .from = 1,
                              .to = 2,
                              .term = 2,
                              .snapshot = &snap};
    hand_receive(&h, &sm);
    struct raft_entry ents[3];
    for (int i = 0; i < 3; i++)
        ents[i] = (struct raft_entry){.term = 2, .index = (raft_index)(11 + i)};
    struct raft_message am = {.type = RAFT_MSG_APP,
                              .from = 1,
                              .to = 2,
                              .term = 2,
                              .log_term = 2,
                              .index = 10,
                              .commit = 11,
                              .entries = ents,
                              .n_entries = 3};
    hand_receive(&h, &am);
    hand_persisted(&h, 13, 2);

    /* Leader 3 of term 3 has 11 but not 12..13 of term 2. */
    struct raft_entry e12 = {.term = 3, .index = 12};
    struct raft_message am3 = {.type = RAFT_MSG_APP,
                               .from = 3,
                               .to = 2,
                               .term = 3,
                               .log_term = 2,
                               .index = 11,
                               .commit = 11,
                               .entries = &e12,
                               .n_entries = 1};
    hand_receive(&h, &am3);
    assert_int_equal(h.up.n_entries, 1);
    assert_int_equal(h.up.entries[0].term, 3);
    assert_int_equal(hand_last(&h), 12);

    hand_installed(&h, 10);
    /* 11 was reported durable before the truncation and is committed. */
    assert_int_equal(raft__log_durable_index(&h.r->log), 11);
    assert_int_equal(h.up.n_committed, 1);
    assert_int_equal(h.up.committed[0].index, 11);
    /* The old report for 13 (term 2) is stale now. */
    hand_persisted(&h, 13, 2);
    assert_int_equal(raft__log_durable_index(&h.r->log), 11);
    hand_persisted(&h, 12, 3);
    assert_int_equal(raft__log_durable_index(&h.r->log), 12);
    assert_int_equal(hand_last(&h), 12);
    assert_int_equal(raft__log_last_term(&h.r->log), 3);
    hand_free(&h);
}

int test_snapshot_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catch_up_by_snapshot),
        cmocka_unit_test(test_report_snapshot),
        cmocka_unit_test(test_stale_snapshot_ignored),
        cmocka_unit_test(test_restart_after_compaction),
        cmocka_unit_test(test_compaction_races_snapshot),
        cmocka_unit_test(test_persisted_before_snapshot_installed),
        cmocka_unit_test(test_snapshot_installed_before_persisted),
        cmocka_unit_test(test_leader_counts_itself_once_snapshot_installed),
        cmocka_unit_test(test_persisted_report_cut_by_truncation),
    };
    return cmocka_run_group_tests_name("raft_snapshot", tests, NULL, NULL);
}
