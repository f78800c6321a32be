/* Messages between members: delivered in order per peer, both ways and in
 * a three-member mesh; batched per write; a peer that is down or does not
 * answer bounds the queue, drops are reported unreachable, and the peer is
 * reached again once it is back; round trips are probed. */
#include <string.h>

#include "fixture.h"
#include "tests.h"

struct count_cond {
    int i;       /* receiver */
    size_t want; /* messages */
};

static bool got_at_least(struct fixture *f, void *arg)
{
    struct count_cond *c = arg;
    return f->m[c->i].n_got >= c->want;
}

/* Member i got exactly the sequence seq 0..n-1 from member `from`, in
 * order, each with its data (len + seq * step bytes). */
static void check_in_order_sized(struct fixture *f, int i, int from, size_t n,
                                 size_t len, size_t step)
{
    size_t next = 0;
    struct fx_member *mb = &f->m[i];
    for (size_t k = 0; k < mb->n_got; k++) {
        struct fx_got *g = &mb->got[k];
        if (g->from != f->m[from].id)
            continue;
        assert_int_equal(g->type, RAFT_MSG_APP);
        assert_int_equal(g->index, next);
        assert_int_equal(g->n_entries, 1);
        assert_int_equal(g->data_crc, fx_app_crc(next, len + next * step));
        next++;
    }
    assert_int_equal(next, n);
}

static void check_in_order(struct fixture *f, int i, int from, size_t n,
                           size_t len)
{
    check_in_order_sized(f, i, from, n, len, 0);
}

static void two_members_in_order_both_ways(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_mesh(&f, 2);
    /* Sent before any connection exists: queued, then delivered. */
    for (uint64_t s = 0; s < 300; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 100), 0);
    struct count_cond c = {1, 300};
    fx_run_until(&f, got_at_least, &c);
    /* Sizes from 0 to about 80 KiB (8 MiB in all, within the bound). */
    for (uint64_t s = 0; s < 200; s++)
        assert_int_equal(fx_send_app(&f, 1, 0, s, (size_t)s * 400), 0);
    c = (struct count_cond){0, 200};
    fx_run_until(&f, got_at_least, &c);
    /* More, across many loop turns. */
    for (uint64_t s = 300; s < 700; s++) {
        assert_int_equal(fx_send_app(&f, 0, 1, s, 100), 0);
        if (s % 50 == 0)
            uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    c = (struct count_cond){1, 700};
    fx_run_until(&f, got_at_least, &c);
    check_in_order(&f, 1, 0, 700, 100);
    check_in_order_sized(&f, 0, 1, 200, 0, 400);

    struct transport_peer_status st = fx_status(&f, 0, 1);
    assert_int_equal(st.state, TRANSPORT_PEER_CONNECTED);
    assert_int_equal(st.msgs_sent, 700);
    assert_int_equal(st.msgs_dropped, 0);
    assert_int_equal(st.connects, 1);
    assert_true(st.connected_ms > 0);
    assert_true(st.bytes_sent > 700 * 100);
    struct transport_peer_status rs = fx_status(&f, 1, 0);
    assert_int_equal(rs.msgs_received, 700);
    assert_true(rs.bytes_received >= st.bytes_sent - 64); /* probes */
    assert_int_equal(f.m[0].unreachable[2], 0);
    fx_fini(&f);
}

static bool rtt_measured(struct fixture *f, void *arg)
{
    (void)arg;
    return fx_status(f, 0, 1).rtt_us_max > 0 &&
           fx_status(f, 1, 0).rtt_us_max > 0;
}

static void round_trip_probed(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_mesh(&f, 2);
    fx_run_until(&f, rtt_measured, NULL);
    struct transport_peer_status st = fx_status(&f, 0, 1);
    assert_true(st.rtt_us_max >= st.rtt_us);
    /* Probes are not messages. */
    assert_int_equal(st.msgs_sent, 0);
    assert_int_equal(fx_status(&f, 1, 0).msgs_received, 0);
    fx_fini(&f);
}

static void one_turn_one_write(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    /* Only the probe at connection time, however slow the machine. */
    f.cfg.probe_interval_ms = 60000;
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_mesh(&f, 2);
    fx_wait_connected(&f, 0, 1);
    uint64_t writes = fx_status(&f, 0, 1).writes;
    /* Everything sent within one loop turn goes out together: one write,
     * or two when a probe's write had not drained yet. */
    for (uint64_t s = 0; s < 500; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 50), 0);
    assert_int_equal(fx_status(&f, 0, 1).queued_msgs, 500);
    struct count_cond c = {1, 500};
    fx_run_until(&f, got_at_least, &c);
    check_in_order(&f, 1, 0, 500, 50);
    struct transport_peer_status st = fx_status(&f, 0, 1);
    assert_true(st.writes - writes >= 1);
    assert_true(st.writes - writes <= 2);
    assert_int_equal(st.queued_msgs, 0);
    fx_fini(&f);
}

static bool mesh_done(struct fixture *f, void *arg)
{
    size_t want = *(size_t *)arg;
    for (int i = 0; i < 3; i++)
        if (f->m[i].n_got < want)
            return false;
    return true;
}

static void three_members_mesh(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    for (int i = 0; i < 3; i++)
        fx_open(&f, i, 0);
    fx_mesh(&f, 3);
    for (uint64_t s = 0; s < 150; s++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    assert_int_equal(fx_send_app(&f, i, j, s, 64), 0);
    size_t want = 300;
    fx_run_until(&f, mesh_done, &want);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                check_in_order(&f, i, j, 150, 64);
    raft_id ids[8];
    assert_int_equal(transport_peer_ids(f.m[0].t, ids, 8), 2);
    fx_fini(&f);
}

static bool in_backoff(struct fixture *f, void *arg)
{
    (void)arg;
    return fx_status(f, 0, 1).state == TRANSPORT_PEER_BACKOFF;
}

static void peer_down_then_back(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    uint16_t port = f.m[1].port;
    /* Member 2 goes away; its port refuses connections. */
    fx_close(&f, 1);
    fx_peer(&f, 0, 1);
    fx_run_until(&f, in_backoff, NULL);
    /* A peer known to be down: sends are dropped and reported, once per
     * episode rather than per message. */
    for (uint64_t s = 0; s < 20; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 10), CAIRN_EFULL);
    assert_int_equal(f.m[0].unreachable[2], 1);
    struct transport_peer_status st = fx_status(&f, 0, 1);
    assert_int_equal(st.msgs_dropped, 20);
    assert_int_equal(st.unreachable_reports, 1);
    assert_int_equal(st.connects, 0);

    /* Back on the same port: the backoff's next dial finds it. */
    fx_open(&f, 1, port);
    fx_peer(&f, 1, 0);
    fx_wait_connected(&f, 0, 1);
    for (uint64_t s = 0; s < 50; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 10), 0);
    struct count_cond c = {1, 50};
    fx_run_until(&f, got_at_least, &c);
    check_in_order(&f, 1, 0, 50, 10);

    /* Lost again: reported again (a new episode). */
    fx_close(&f, 1);
    fx_run_until(&f, in_backoff, NULL);
    assert_int_equal(f.m[0].unreachable[2], 2);
    fx_fini(&f);
}

static void queue_bound_when_unanswered(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    f.cfg.queue_msgs_max = 16;
    f.cfg.queue_bytes_max = 64 << 10;
    f.cfg.probe_interval_ms = 2000; /* the answer wait outlives the test */
    fx_open(&f, 0, 0);
    struct fx_mute mute;
    fx_mute_open(&f, &mute);
    const char *urls[1] = {mute.url};
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 1, NULL), 0);
    fx_mute_wait_conn(&f, &mute);
    /* Connected at the TCP level but never accepted: messages wait, up to
     * the bound. */
    for (uint64_t s = 0; s < 16; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 10), 0);
    assert_int_equal(fx_send_app(&f, 0, 1, 16, 10), CAIRN_EFULL);
    assert_int_equal(fx_send_app(&f, 0, 1, 17, 10), CAIRN_EFULL);
    struct transport_peer_status st = fx_status(&f, 0, 1);
    assert_int_equal(st.state, TRANSPORT_PEER_CONNECTING);
    assert_int_equal(st.queued_msgs, 16);
    assert_int_equal(st.msgs_dropped, 2);
    assert_int_equal(f.m[0].unreachable[2], 1);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(fx_status(&f, 0, 1).queued_msgs, 16);

    /* The byte bound: with room for messages but not for 100 KiB more. */
    assert_int_equal(transport_remove_peer(f.m[0].t, 2), 0);
    assert_int_equal(transport_remove_peer(f.m[0].t, 2), CAIRN_ENOTFOUND);
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 1, NULL), 0);
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 1, NULL),
                     CAIRN_EEXISTS);
    assert_int_equal(fx_send_app(&f, 0, 1, 0, 10), 0);
    assert_int_equal(fx_send_app(&f, 0, 1, 1, 100 << 10), CAIRN_EFULL);
    /* A lone message larger than the byte bound still fits an empty
     * queue, up to the frame bound. */
    assert_int_equal(transport_remove_peer(f.m[0].t, 2), 0);
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 1, NULL), 0);
    assert_int_equal(fx_send_app(&f, 0, 1, 0, 100 << 10), 0);

    fx_close(&f, 0);
    fx_mute_close(&f, &mute);
    fx_fini(&f);
}

static void bad_peer_arguments(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    const char *good[1] = {"http://127.0.0.1:1"};
    const char *bad[1] = {"ftp://x:1"};
    struct cairn_errmsg msg;
    assert_int_equal(transport_add_peer(f.m[0].t, 1, good, 1, &msg),
                     CAIRN_EINVAL);
    assert_int_equal(transport_add_peer(f.m[0].t, 0, good, 1, &msg),
                     CAIRN_EINVAL);
    assert_int_equal(transport_add_peer(f.m[0].t, 5, bad, 1, &msg),
                     CAIRN_EINVAL);
    assert_int_equal(transport_add_peer(f.m[0].t, 5, good, 0, &msg),
                     CAIRN_EINVAL);
    assert_int_equal(transport_update_peer(f.m[0].t, 5, good, 1, &msg),
                     CAIRN_ENOTFOUND);
    struct raft_message m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 5};
    assert_int_equal(transport_send(f.m[0].t, &m), CAIRN_ENOTFOUND);
    struct transport_peer_status st;
    assert_int_equal(transport_peer_status(f.m[0].t, 5, &st), CAIRN_ENOTFOUND);
    fx_fini(&f);
}

static bool member3_refused(struct fixture *f, void *arg)
{
    (void)arg;
    struct transport_status ts;
    transport_status(f->m[2].t, &ts);
    return ts.inbound_refused > 0;
}

static void update_peer_urls(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_open(&f, 2, 0);
    /* Member 1 first knows member 2 at member 3's address (refused there
     * as meant for another member), then learns the right one. */
    const char *wrong[1] = {f.m[2].url};
    assert_int_equal(transport_add_peer(f.m[0].t, 2, wrong, 1, NULL), 0);
    fx_peer(&f, 2, 0);
    fx_peer(&f, 1, 0);
    fx_run_until(&f, member3_refused, NULL);
    assert_int_equal(f.m[2].log_refused_in, 1);
    const char *right[1] = {f.m[1].url};
    assert_int_equal(transport_update_peer(f.m[0].t, 2, right, 1, NULL), 0);
    fx_wait_connected(&f, 0, 1);
    assert_int_equal(fx_send_app(&f, 0, 1, 0, 10), 0);
    struct count_cond c = {1, 1};
    fx_run_until(&f, got_at_least, &c);
    check_in_order(&f, 1, 0, 1, 10);
    fx_fini(&f);
}

static void on_adopt(void *arg, struct net_conn *c)
{
    transport_adopt(arg, c);
}

static void second_url_and_adopted_connections(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_open(&f, 2, 0);
    uint16_t dead_port = f.m[2].port;
    fx_close(&f, 2);
    /* Member 2 also serves peers on a listener its host owns. */
    struct net_listener *l;
    struct net_url u;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &u, NULL), 0);
    assert_int_equal(net_listener_open(&f.loop, &u, NULL, NULL, &l, f.m[1].t,
                                       on_adopt, NULL),
                     0);
    char dead[64], hosted[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", (unsigned)dead_port);
    snprintf(hosted, sizeof(hosted), "http://127.0.0.1:%u",
             (unsigned)net_listener_port(l));
    /* The first URL refuses; the second is tried after it. */
    const char *urls[2] = {dead, hosted};
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 2, NULL), 0);
    fx_peer(&f, 1, 0);
    fx_wait_connected(&f, 0, 1);
    assert_int_equal(fx_send_app(&f, 0, 1, 0, 10), 0);
    struct count_cond c = {1, 1};
    fx_run_until(&f, got_at_least, &c);
    check_in_order(&f, 1, 0, 1, 10);
    net_listener_close(l);
    fx_fini(&f);
}

static bool peer_gone(struct fixture *f, void *arg)
{
    (void)arg;
    struct transport_peer_status st;
    return transport_peer_status(f->m[0].t, 2, &st) == CAIRN_ENOTFOUND;
}

static bool member2_closed(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[1].closed;
}

static void host_calls_back_from_callbacks(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    uint16_t dead = f.m[1].port;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)dead);
    fx_close(&f, 1);
    /* Messages wait for the first dial; it fails; the host hears of the
     * drop and removes the peer from inside the callback. */
    f.m[0].remove_on_unreachable = true;
    const char *urls[1] = {url};
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 1, NULL), 0);
    for (uint64_t s = 0; s < 5; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 10), 0);
    fx_run_until(&f, peer_gone, NULL);
    assert_int_equal(f.m[0].unreachable[2], 1);
    /* Again, removed from inside transport_send's own report. */
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 1, NULL), 0);
    fx_run_until(&f, in_backoff, NULL);
    assert_int_equal(fx_send_app(&f, 0, 1, 0, 10), CAIRN_EFULL);
    assert_true(peer_gone(&f, NULL));
    assert_int_equal(f.m[0].unreachable[2], 2);
    f.m[0].remove_on_unreachable = false;

    /* A host that closes its transport from the receive callback hears
     * nothing more, and the close completes. */
    fx_open(&f, 1, dead);
    f.m[1].close_on_receive = true;
    fx_peer(&f, 0, 1);
    fx_peer(&f, 1, 0);
    fx_wait_connected(&f, 0, 1);
    for (uint64_t s = 0; s < 50; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 10), 0);
    fx_run_until(&f, member2_closed, NULL);
    assert_int_equal(f.m[1].n_got, 1);
    fx_fini(&f);
}

int test_messages_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_members_in_order_both_ways),
        cmocka_unit_test(round_trip_probed),
        cmocka_unit_test(one_turn_one_write),
        cmocka_unit_test(three_members_mesh),
        cmocka_unit_test(peer_down_then_back),
        cmocka_unit_test(queue_bound_when_unanswered),
        cmocka_unit_test(bad_peer_arguments),
        cmocka_unit_test(update_peer_urls),
        cmocka_unit_test(second_url_and_adopted_connections),
        cmocka_unit_test(host_calls_back_from_callbacks),
    };
    return cmocka_run_group_tests_name("transport_messages", tests, NULL, NULL);
}
