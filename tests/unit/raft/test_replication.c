/* Replication (§5.3): the logs of Figure 7 brought in line, fast
 * backtracking, the commit rule of Figure 8, the in-flight window, message
 * size limits, heartbeats' commit, and proposals. */
#include "tests.h"

#include <stdio.h>
#include <string.h>

static char out[16384];

#define EXPECT_QUEUE(net, text) \
    assert_string_equal(h_render_queue((net), out, sizeof(out)), (text))

/* Replaces id's log after the bootstrap entry with entries of the given
 * terms (index 2 onwards) and sets its term; restarts it. */
static void set_log(struct h_net *net, raft_id id, const raft_term *terms,
                    size_t n, raft_term term)
{
    h_crash(net, id);
    struct h_node *nd = &net->nodes[id];
    for (size_t i = 0; i < n; i++) {
        struct raft_entry e = {.term = terms[i],
                               .index = 2 + i,
                               .data = (const uint8_t *)"e",
                               .len = 1};
        assert_int_equal(raft_memory_storage_append(nd->ms, &e, 1), 0);
    }
    struct raft_hard_state hs = {.term = term, .commit = 1};
    raft_memory_storage_set_hard_state(nd->ms, &hs);
    h_start(net, id);
}

static void assert_logs_equal(struct h_net *net, raft_id a, raft_id b)
{
    assert_int_equal(h_last(net, a), h_last(net, b));
    for (raft_index i = 1; i <= h_last(net, a); i++)
        assert_int_equal(raft__log_term_or_zero(&h_r(net, a)->log, i),
                         raft__log_term_or_zero(&h_r(net, b)->log, i));
}

static int count_rejects(struct h_net *net)
{
    int n = 0;
    h_render_queue(net, out, sizeof(out));
    for (const char *p = out; (p = strstr(p, " reject hint")) != NULL; p++)
        n++;
    return n;
}

/* Figure 7: the leader (term 8) brings each follower log (a)-(f) in line.
 * Index 1 is the bootstrap snapshot; the figure's index i is ours i+1. */
static void test_figure7(void **state)
{
    (void)state;
    static const raft_term leader[] = {1, 1, 4, 4, 5, 5, 6, 6, 6};
    static const raft_term fa[] = {1, 1, 4, 4, 5, 5, 6, 6};
    static const raft_term fb[] = {1, 1, 4};
    static const raft_term fc[] = {1, 1, 4, 4, 5, 5, 6, 6, 6, 6};
    static const raft_term fd[] = {1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7};
    static const raft_term fe[] = {1, 1, 4, 4, 4, 4};
    static const raft_term ff[] = {1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    const raft_term *fol[6] = {fa, fb, fc, fd, fe, ff};
    size_t nfol[6] = {8, 3, 10, 11, 6, 10};
    for (int k = 0; k < 6; k++) {
        struct h_net net;
        h_init(&net, 3, 3, NULL);
        set_log(&net, 1, leader, 9, 7);
        set_log(&net, 2, fol[k], nfol[k], 7);
        /* 3 has only the bootstrap entry: it elects 1. */
        set_log(&net, 3, NULL, 0, 7);
        h_cut(&net, 1, 2);
        h_cut(&net, 2, 3);
        h_campaign(&net, 1);
        h_deliver(&net, 100);
        assert_int_equal(h_role(&net, 1), RAFT_LEADER);
        assert_int_equal(h_term(&net, 1), 8);
        h_crash(&net, 3);
        h_heal(&net);
        int rejects = 0, rounds = 0;
        for (; rounds < 50; rounds++) {
            h_tick(&net, 1, 1);
            while (net.nq > 0) {
                rejects +=
                    count_rejects(&net) > 0 && strstr(out, "2->1") != NULL;
                h_deliver(&net, 1);
            }
            if (h_last(&net, 2) == h_last(&net, 1) &&
                h_commit(&net, 2) == h_commit(&net, 1))
                break;
        }
        assert_logs_equal(&net, 1, 2);
        assert_int_equal(h_commit(&net, 2), h_last(&net, 1));
        /* Backtracking skips whole terms: a handful of rejections. */
        assert_true(rejects <= 4);
        h_close(&net);
    }
}

static void test_fast_backtracking(void **state)
{
    (void)state;
    /* The follower holds 1000 entries of an old term the leader never had:
     * one rejection, not a thousand. */
    static raft_term lt[1000], ft[1000];
    for (int i = 0; i < 1000; i++) {
        lt[i] = 3;
        ft[i] = 2;
    }
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    set_log(&net, 1, lt, 1000, 3);
    set_log(&net, 2, ft, 1000, 3);
    set_log(&net, 3, NULL, 0, 3);
    h_cut(&net, 1, 2);
    h_cut(&net, 2, 3);
    h_campaign(&net, 1);
    h_deliver(&net, 100);
    assert_int_equal(h_role(&net, 1), RAFT_LEADER);
    h_crash(&net, 3);
    h_heal(&net);
    h_tick(&net, 1, 1);
    /* Heartbeat, then the follower's answer lets the leader probe. */
    int rejects = 0, trips = 0;
    while (net.nq > 0 && trips < 100) {
        if (strstr(h_render_queue(&net, out, sizeof(out)), "2->1") == out &&
            strstr(out, "reject hint") != NULL &&
            strstr(out, "reject hint") < strchr(out, '\n'))
            rejects++;
        h_deliver(&net, 1);
        trips++;
    }
    assert_int_equal(rejects, 1);
    assert_logs_equal(&net, 1, 2);
    h_close(&net);
}

/* The hint a follower gives for the figure's case (f) probed at the
 * leader's last entry. */
static void test_reject_hint_exact(void **state)
{
    (void)state;
    static const raft_term ff[] = {1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    struct h_net net;
    h_init(&net, 2, 2, NULL);
    set_log(&net, 2, ff, 10, 3);
    struct raft_message app = {.type = RAFT_MSG_APP,
                               .from = 1,
                               .to = 2,
                               .term = 8,
                               .log_term = 6,
                               .index = 10};
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &app};
    h_step(&net, 2, &ev);
    /* Its last entry of a term <= 6 at or below 10 is 10 (term 3). */
    EXPECT_QUEUE(&net, "2->1 MsgAppResp term=8 index=10 reject hint=3/10\n");
    h_drop_queue(&net);
    app.log_term = 2;
    app.index = 11;
    h_step(&net, 2, &ev);
    EXPECT_QUEUE(&net, "2->1 MsgAppResp term=8 index=11 reject hint=2/6\n");
    h_close(&net);
}

/* Figure 8: an entry of an earlier term on a majority is not committed by
 * counting replicas; it may indeed be overwritten later, safely. */
static void test_figure8(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.max_size_per_msg = 0; /* one entry with data per message */
    struct h_net net;
    h_init(&net, 5, 5, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 1);
    assert_int_equal(h_commit(&net, 3), 2);
    /* (a) S1 (term 2) replicates index 3 to S2 only. */
    h_cut(&net, 1, 3);
    h_cut(&net, 1, 4);
    h_cut(&net, 1, 5);
    h_propose(&net, 1, "x");
    h_deliver(&net, 1000);
    assert_int_equal(h_last(&net, 2), 3);
    assert_int_equal(h_commit(&net, 1), 2);
    /* (b) S1 crashes; S5 wins term 3 with S3 and S4, appends 3/3 only
     * locally, and crashes. */
    h_crash(&net, 1);
    h_heal(&net);
    h_campaign(&net, 5);
    for (int i = 0; i < 100 && h_role(&net, 5) != RAFT_LEADER; i++)
        h_deliver(&net, 1);
    assert_int_equal(h_role(&net, 5), RAFT_LEADER);
    assert_int_equal(h_term(&net, 5), 3);
    h_drop_queue(&net);
    assert_int_equal(raft__log_term_or_zero(&h_r(&net, 5)->log, 3), 3);
    h_crash(&net, 5);
    /* (c) S1 restarts and leads term 4 with S3 and S4 (S2 cut off); it
     * brings index 3 (term 2) to S3 and S4: now on a majority. */
    h_start(&net, 1);
    h_cut(&net, 1, 2);
    for (int i = 0; i < 5 && h_role(&net, 1) != RAFT_LEADER; i++) {
        h_campaign(&net, 1);
        for (int k = 0; k < 100 && h_role(&net, 1) != RAFT_LEADER; k++)
            h_deliver(&net, 1);
    }
    assert_int_equal(h_role(&net, 1), RAFT_LEADER);
    assert_int_equal(h_term(&net, 1), 4);
    bool seen_majority_uncommitted = false;
    for (int k = 0; k < 1000 && net.nq > 0; k++) {
        h_deliver(&net, 1);
        struct raft *l = h_r(&net, 1);
        int have3 = 0, have4 = 0;
        for (raft_id id = 1; id <= 4; id++) {
            if (id == 2 || raft__log_term_or_zero(&h_r(&net, id)->log, 3) == 2)
                have3++;
            if (raft__log_term_or_zero(&h_r(&net, id)->log, 4) == 4)
                have4++;
        }
        if (have3 >= 3 && have4 < 3) {
            /* Figure 8 (c): on a majority, but not committed. */
            assert_int_equal(l->log.committed, 2);
            seen_majority_uncommitted = true;
        }
    }
    assert_true(seen_majority_uncommitted);
    /* Once 4/4 is on a majority, 3 commits with it. */
    assert_int_equal(h_commit(&net, 1), 4);
    h_check_safety(&net);
    h_close(&net);
}

/* Figure 8 (d) does happen: S5 overwrites the uncommitted 3/2. */
static void test_figure8_overwrite(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 5, 5, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_cut(&net, 1, 3);
    h_cut(&net, 1, 4);
    h_cut(&net, 1, 5);
    h_propose(&net, 1, "x");
    h_deliver(&net, 1000);
    h_crash(&net, 1);
    h_heal(&net);
    /* S5 leads term 3 with S3 and S4 and replicates its empty entry to
     * them: 3/3 commits, 3/2 on S2 is overwritten. */
    h_campaign(&net, 5);
    h_deliver(&net, 1000);
    assert_int_equal(h_leader(&net), 5);
    assert_int_equal(raft__log_term_or_zero(&h_r(&net, 2)->log, 3), 3);
    assert_int_equal(h_commit(&net, 2), 3);
    h_check_safety(&net);
    h_close(&net);
}

static int count_apps_to(struct h_net *net, raft_id to, bool with_entries)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "->%llu MsgApp ", (unsigned long long)to);
    h_render_queue(net, out, sizeof(out));
    int n = 0;
    for (char *line = strtok(out, "\n"); line != NULL;
         line = strtok(NULL, "\n"))
        if (strstr(line, pat) != NULL &&
            (!with_entries || strstr(line, "entries=[]") == NULL))
            n++;
    return n;
}

static void test_inflight_window(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.max_inflight_msgs = 3;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    /* 2 stops answering (one-way loss), but stays in replicate state. */
    net.cut[2][1] = true;
    for (int i = 0; i < 10; i++)
        h_propose(&net, 1, "p");
    /* Both followers get 3 messages, then their windows are full. */
    assert_int_equal(count_apps_to(&net, 2, true), 3);
    assert_int_equal(count_apps_to(&net, 3, true), 3);
    /* 3 answers, its window drains and refills: it gets everything. */
    h_deliver(&net, 1000);
    assert_int_equal(h_last(&net, 3), 12);
    assert_int_equal(h_last(&net, 2), 5);
    struct raft_status st;
    raft_status_get(h_r(&net, 1), &st);
    for (uint32_t i = 0; i < st.n_progress; i++) {
        if (st.progress[i].id == 2) {
            assert_int_equal(st.progress[i].state, RAFT_PROGRESS_REPLICATE);
            assert_int_equal(st.progress[i].inflight_count, 3);
            assert_int_equal(st.progress[i].inflight_bytes, 3);
        }
    }
    /* A heartbeat answer frees one slot, and one more append goes out. */
    h_drop_queue(&net);
    net.cut[2][1] = false;
    h_tick(&net, 1, 1);
    h_deliver(&net, 2); /* heartbeats */
    h_deliver(&net, 2); /* answers */
    assert_int_equal(count_apps_to(&net, 2, true), 1);
    h_close(&net);

    /* The byte limit. */
    h_default_config(&c);
    c.max_inflight_bytes = 10;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    net.cut[2][1] = true;
    for (int i = 0; i < 10; i++)
        h_propose(&net, 1, "four");
    /* 4 + 4 + 4 >= 10: three messages, then full. */
    assert_int_equal(count_apps_to(&net, 2, true), 3);
    h_close(&net);
}

static void test_max_size_per_msg(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.max_size_per_msg = 25;
    struct h_net net;
    h_init(&net, 2, 2, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    /* 2 falls behind by 6 entries of 10 bytes. */
    h_isolate(&net, 2);
    struct raft_proposal p[6];
    for (int i = 0; i < 6; i++)
        p[i] = (struct raft_proposal){(const uint8_t *)"0123456789", 10};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE,
                            .u.propose = {.items = p, .n = 6}};
    assert_int_equal(h_step(&net, 1, &ev), 0);
    h_drop_queue(&net);
    h_heal(&net);
    /* The host reports 2 unreachable: back to probing. */
    struct raft_event un = {.type = RAFT_EVENT_REPORT_UNREACHABLE,
                            .u.unreachable = 2};
    h_step(&net, 1, &un);
    /* Probe by heartbeat: the answer makes the leader send 2 entries per
     * message (20 bytes <= 25 < 30). */
    struct raft_message hb = {.type = RAFT_MSG_HEARTBEAT_RESP,
                              .from = 2,
                              .to = 1,
                              .term = h_term(&net, 1)};
    struct raft_event rev = {.type = RAFT_EVENT_RECEIVE, .u.message = &hb};
    h_step(&net, 1, &rev);
    EXPECT_QUEUE(&net, "1->2 MsgApp term=2 logterm=2 index=2 commit=2 "
                       "entries=[2/3 2/4]\n");
    h_deliver(&net, 2);
    /* The answer commits 4 (two members) and turns on pipelining. */
    EXPECT_QUEUE(&net, "1->2 MsgApp term=2 logterm=2 index=4 commit=4 "
                       "entries=[2/5 2/6]\n"
                       "1->2 MsgApp term=2 logterm=2 index=6 commit=4 "
                       "entries=[2/7 2/8]\n");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 2), 8);
    h_close(&net);
}

static void test_heartbeat_commit_is_min_of_match(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    h_isolate(&net, 3);
    h_propose(&net, 1, "a");
    h_propose(&net, 1, "b");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 1), 4);
    h_heal(&net);
    h_tick(&net, 1, 1);
    /* 3 is known to have 2 only: it must not be told to commit 4. */
    EXPECT_QUEUE(&net, "1->2 MsgHeartbeat term=2 commit=4\n"
                       "1->3 MsgHeartbeat term=2 commit=2\n");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 3), 4);
    h_close(&net);
}

static void test_proposals(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    /* No leader yet. */
    assert_int_equal(h_propose(&net, 2, "a"), CAIRN_ENOLEADER);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    /* A follower forwards. */
    assert_int_equal(h_propose(&net, 2, "fwd"), 0);
    EXPECT_QUEUE(&net, "2->1 MsgProp term=0 entries=1\n");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 2), 3);
    h_close(&net);

    struct raft_config c;
    h_default_config(&c);
    c.disable_proposal_forwarding = true;
    c.max_uncommitted_entries_size = 8;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_propose(&net, 2, "a"), CAIRN_EPROPOSALDROPPED);
    EXPECT_QUEUE(&net, "");
    /* The cap on uncommitted bytes: with nobody answering, 8 bytes fit,
     * the ninth does not. */
    h_isolate(&net, 1);
    for (int i = 0; i < 8; i++)
        assert_int_equal(h_propose(&net, 1, "x"), 0);
    assert_int_equal(h_propose(&net, 1, "x"), CAIRN_EPROPOSALDROPPED);
    h_heal(&net);
    h_drop_queue(&net);
    h_tick(&net, 1, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_propose(&net, 1, "x"), 0);
    h_close(&net);
}

static void send_commit(struct h_net *net, raft_id id)
{
    struct raft_event ev = {.type = RAFT_EVENT_SEND_COMMIT};
    assert_int_equal(h_step(net, id, &ev), 0);
}

/* lazy_commit: no append carrying only a new commit index; the next
 * append or SEND_COMMIT carries it, and a follower whose forwarded
 * proposal committed is told at once. */
static void test_lazy_commit(void **state)
{
    (void)state;
    struct raft_config c;
    h_default_config(&c);
    c.lazy_commit = true;
    struct h_net net;
    h_init(&net, 3, 3, &c);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    send_commit(&net, 1);
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 2), 2);
    assert_false(net.nodes[1].commit_unsent);

    assert_int_equal(h_propose(&net, 1, "a"), 0);
    h_deliver(&net, 1000);
    /* Committed on the leader; the followers were not told. */
    assert_int_equal(h_commit(&net, 1), 3);
    assert_int_equal(h_commit(&net, 2), 2);
    assert_int_equal(h_commit(&net, 3), 2);
    assert_true(net.nodes[1].commit_unsent);
    EXPECT_QUEUE(&net, "");
    /* The next proposal's appends carry it. */
    assert_int_equal(h_propose(&net, 1, "b"), 0);
    assert_false(net.nodes[1].commit_unsent);
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 2), 3);
    assert_int_equal(h_commit(&net, 1), 4);
    assert_true(net.nodes[1].commit_unsent);
    /* SEND_COMMIT tells both, once. */
    send_commit(&net, 1);
    assert_false(net.nodes[1].commit_unsent);
    EXPECT_QUEUE(&net,
                 "1->2 MsgApp term=2 logterm=2 index=4 commit=4 entries=[]\n"
                 "1->3 MsgApp term=2 logterm=2 index=4 commit=4 entries=[]\n");
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 2), 4);
    assert_int_equal(h_commit(&net, 3), 4);
    send_commit(&net, 1);
    EXPECT_QUEUE(&net, "");

    /* A forwarded proposal: its follower hears of the commit at once. */
    assert_int_equal(h_propose(&net, 2, "fwd"), 0);
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 1), 5);
    assert_int_equal(h_commit(&net, 2), 5);
    assert_int_equal(h_commit(&net, 3), 4);
    assert_true(net.nodes[1].commit_unsent);
    h_check_safety(&net);
    h_close(&net);
}

/* raft_waits_on_persist: a leader's own sync matters at once only when
 * the followers' acknowledgements are in (or it has none to count on);
 * otherwise the host may report it with the next event. */
static void test_waits_on_persist(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    struct raft *lead = h_r(&net, 1);
    assert_false(raft_waits_on_persist(lead));
    assert_true(raft_waits_on_persist(h_r(&net, 2))); /* a follower */

    net.nodes[1].lazy = true;
    assert_int_equal(h_propose(&net, 1, "a"), 0);
    assert_false(raft_waits_on_persist(lead)); /* no answer yet */
    assert_true(h_deliver_one(&net));          /* 1->2 MsgApp */
    assert_false(raft_waits_on_persist(lead));
    /* 1->3 MsgApp, then 2's answer: the commit misses only ours. */
    assert_true(h_deliver_one(&net));
    assert_true(h_deliver_one(&net));
    assert_int_equal(h_commit(&net, 1), 2);
    assert_true(raft_waits_on_persist(lead));
    h_sync(&net, 1);
    assert_int_equal(h_commit(&net, 1), 3);
    assert_false(raft_waits_on_persist(lead));
    h_deliver(&net, 1000);

    /* Both followers first: committed without us, not applied until our
     * sync. */
    assert_int_equal(h_propose(&net, 1, "b"), 0);
    h_deliver(&net, 1000);
    assert_int_equal(h_commit(&net, 1), 4);
    assert_true(raft_waits_on_persist(lead));
    h_sync(&net, 1);
    assert_false(raft_waits_on_persist(lead));
    h_check_safety(&net);
    h_close(&net);

    /* Alone, the leader waits on its own sync for every commit. */
    h_init(&net, 1, 1, NULL);
    h_campaign(&net, 1);
    h_deliver(&net, 1000);
    net.nodes[1].lazy = true;
    assert_int_equal(h_propose(&net, 1, "a"), 0);
    assert_true(raft_waits_on_persist(h_r(&net, 1)));
    h_sync(&net, 1);
    assert_false(raft_waits_on_persist(h_r(&net, 1)));
    h_close(&net);

    /* A new leader's messages wait for its term to be durable. */
    h_init(&net, 3, 3, NULL);
    net.nodes[2].lazy = true;
    h_campaign(&net, 2);
    h_sync(&net, 2); /* its vote for itself, then the requests */
    h_deliver(&net, 1000);
    assert_int_equal(h_r(&net, 2)->role, RAFT_LEADER);
    assert_true(raft_waits_on_persist(h_r(&net, 2)));
    h_sync(&net, 2);
    h_deliver(&net, 1000);
    h_sync(&net, 2);
    assert_false(raft_waits_on_persist(h_r(&net, 2)));
    h_close(&net);
}

static void test_empty_entry_on_election(void **state)
{
    (void)state;
    struct h_net net;
    h_init(&net, 3, 3, NULL);
    h_campaign(&net, 2);
    h_deliver(&net, 1000);
    const struct raft_log *l = &h_r(&net, 2)->log;
    assert_int_equal(raft__log_last_index(l), 2);
    assert_int_equal(raft__log_term_or_zero(l, 2), 2);
    assert_int_equal(l->committed, 2);
    h_close(&net);
}

int test_replication_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_figure7),
        cmocka_unit_test(test_fast_backtracking),
        cmocka_unit_test(test_reject_hint_exact),
        cmocka_unit_test(test_figure8),
        cmocka_unit_test(test_figure8_overwrite),
        cmocka_unit_test(test_inflight_window),
        cmocka_unit_test(test_max_size_per_msg),
        cmocka_unit_test(test_heartbeat_commit_is_min_of_match),
        cmocka_unit_test(test_proposals),
        cmocka_unit_test(test_lazy_commit),
        cmocka_unit_test(test_waits_on_persist),
        cmocka_unit_test(test_empty_entry_on_election),
    };
    return cmocka_run_group_tests_name("raft_replication", tests, NULL, NULL);
}
