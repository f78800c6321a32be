/* Refusals and hostile input: another cluster, a removed member and a
 * member never added are refused at the handshake and logged once; garbage
 * bytes, corrupted frames and lying messages close that one connection while
 * the transport keeps serving everyone else. */
#include <string.h>

#include "fixture.h"
#include "tests.h"
#include "transport/transport_int.h"

static bool refused_n(struct fixture *f, void *arg)
{
    const size_t *want = arg;
    struct transport_status ts;
    transport_status(f->m[1].t, &ts);
    return ts.inbound_refused >= *want;
}

static void other_cluster_refused_logged_once(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    f.m[1].cluster_id = 0xbadc0ffeeull;
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_mesh(&f, 2);
    /* Both dial, both are refused; they keep redialling with backoff. */
    size_t want = 5;
    fx_run_until(&f, refused_n, &want);
    assert_int_equal(f.m[1].log_refused_in, 1);
    assert_int_equal(f.m[0].log_refused_out, 1);
    assert_int_equal(fx_status(&f, 0, 1).connects, 0);
    assert_int_equal(fx_status(&f, 1, 0).connects, 0);
    assert_int_equal(f.m[1].n_got, 0);
    assert_int_equal(f.m[0].removed_by[2], 0);
    fx_fini(&f);
}

struct recv_cond {
    int i;
    size_t n;
};

static bool got_n(struct fixture *f, void *arg)
{
    struct recv_cond *c = arg;
    return f->m[c->i].n_got >= c->n;
}

static void removed_and_unknown_members_refused(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_open(&f, 2, 0);
    fx_mesh(&f, 2);
    /* Member 3 knows member 2, but member 2 never added it. */
    fx_peer(&f, 2, 1);
    fx_wait_connected(&f, 0, 1);
    assert_int_equal(fx_send_app(&f, 0, 1, 0, 8), 0);
    struct recv_cond c = {1, 1};
    fx_run_until(&f, got_n, &c);

    /* Member 2 removes member 1: member 1's connection is cut, and its
     * redials are refused as coming from a removed member. */
    assert_int_equal(transport_remove_peer(f.m[1].t, 1), 0);
    struct transport_status ts;
    transport_status(f.m[1].t, &ts);
    size_t want = ts.inbound_refused + 4;
    fx_run_until(&f, refused_n, &want);
    assert_true(fx_status(&f, 0, 1).state != TRANSPORT_PEER_CONNECTED);
    for (uint64_t s = 1; s < 10; s++)
        (void)fx_send_app(&f, 0, 1, s, 8);
    want += 2;
    fx_run_until(&f, refused_n, &want);
    assert_int_equal(f.m[1].n_got, 1);
    /* One line per sender and reason: the removed one and the unknown
     * one. */
    assert_int_equal(f.m[1].log_refused_in, 2);
    assert_int_equal(f.m[0].log_refused_out, 1);
    assert_int_equal(f.m[2].log_refused_out, 1);
    assert_true(f.m[0].unreachable[2] >= 1);
    /* Member 1 hears it was removed, once; member 3 (never added) does
     * not. */
    assert_int_equal(f.m[0].removed_by[2], 1);
    assert_int_equal(f.m[2].removed_by[2], 0);
    fx_fini(&f);
}

static bool removed_heard(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[0].removed_by[2] >= 1;
}

/* A member that never saw the removal (restarted, or joined later) learns
 * the removed ids from its store (transport_mark_removed): the removed
 * member dialling it is told so, not answered "unknown", and stops (etcd's
 * "the member has been permanently removed from the cluster"). */
static void marked_removed_refused(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    transport_mark_removed(f.m[1].t, 1);
    transport_mark_removed(f.m[1].t, 1); /* idempotent */
    transport_mark_removed(f.m[1].t, 2); /* itself: ignored */
    fx_peer(&f, 0, 1);
    fx_run_until(&f, removed_heard, NULL);
    assert_int_equal(f.m[0].removed_by[2], 1);
    assert_int_equal(f.m[1].log_refused_in, 1);
    assert_int_equal(fx_status(&f, 0, 1).connects, 0);
    fx_fini(&f);
}

static bool raw_closed(struct fixture *f, void *arg)
{
    (void)f;
    return ((struct fx_raw *)arg)->closed;
}

static void handshake_as(struct fixture *f, struct fx_raw *r, raft_id from)
{
    struct tp_handshake hs = {TRANSPORT_PROTOCOL_VERSION, TP_KIND_MESSAGES,
                              f->cfg.cluster_id, from, f->m[1].id};
    uint8_t b[TP_HANDSHAKE_BYTES];
    tp__handshake_encode(b, &hs);
    fx_raw_write(r, b, sizeof(b));
}

static void expect_closed_by_member2(struct fixture *f, struct fx_raw *r,
                                     uint64_t malformed_before)
{
    fx_run_until(f, raw_closed, r);
    struct transport_status ts;
    transport_status(f->m[1].t, &ts);
    assert_int_equal(ts.inbound_malformed, malformed_before + 1);
    buf_free(&r->got);
}

static void keep_serving(struct fixture *f, uint64_t seq)
{
    assert_int_equal(fx_send_app(f, 0, 1, seq, 16), 0);
    struct recv_cond c = {1, seq + 1};
    fx_run_until(f, got_n, &c);
    assert_int_equal(f->m[1].got[seq].index, seq);
}

static void garbage_and_malformed_frames_close_one_connection(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_mesh(&f, 2);
    fx_wait_connected(&f, 0, 1);
    keep_serving(&f, 0);
    uint16_t port = f.m[1].port;
    struct transport_status ts;
    struct fx_raw r;
    struct prng rng;
    prng_seed(&rng, 7);

    /* 1. Garbage instead of a handshake. */
    transport_status(f.m[1].t, &ts);
    fx_raw_connect(&f, &r, port);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)prng_next(&rng);
    fx_raw_write(&r, junk, sizeof(junk));
    expect_closed_by_member2(&f, &r, ts.inbound_malformed);
    keep_serving(&f, 1);

    /* 2. A good handshake, then a frame whose checksum is wrong. */
    transport_status(f.m[1].t, &ts);
    fx_raw_connect(&f, &r, port);
    handshake_as(&f, &r, 1);
    struct buf b = BUF_INIT;
    struct raft_message hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2};
    assert_int_equal(tp__frame_append_msg(&b, TP_FRAME_MSG, NULL, &hb, 1024),
                     0);
    b.data[b.len - 1] ^= 0x40;
    fx_raw_write(&r, b.data, b.len);
    expect_closed_by_member2(&f, &r, ts.inbound_malformed);
    /* The answer said yes before the frame was judged. */
    keep_serving(&f, 2);

    /* 3. A well-framed payload that is no raft message. */
    transport_status(f.m[1].t, &ts);
    fx_raw_connect(&f, &r, port);
    handshake_as(&f, &r, 1);
    buf_reset(&b);
    assert_int_equal(tp__frame_append(&b, TP_FRAME_MSG, junk, 40), 0);
    fx_raw_write(&r, b.data, b.len);
    expect_closed_by_member2(&f, &r, ts.inbound_malformed);
    keep_serving(&f, 3);

    /* 4. A message claiming another sender than the handshake named. */
    transport_status(f.m[1].t, &ts);
    fx_raw_connect(&f, &r, port);
    handshake_as(&f, &r, 1);
    buf_reset(&b);
    hb.from = 3;
    assert_int_equal(tp__frame_append_msg(&b, TP_FRAME_MSG, NULL, &hb, 1024),
                     0);
    fx_raw_write(&r, b.data, b.len);
    expect_closed_by_member2(&f, &r, ts.inbound_malformed);
    keep_serving(&f, 4);

    /* 5. A frame header announcing more than the frame bound. */
    transport_status(f.m[1].t, &ts);
    fx_raw_connect(&f, &r, port);
    handshake_as(&f, &r, 1);
    uint8_t huge[TP_FRAME_HEADER_BYTES] = {0xff, 0xff, 0xff, 0x7f,
                                           TP_FRAME_MSG};
    fx_raw_write(&r, huge, sizeof(huge));
    expect_closed_by_member2(&f, &r, ts.inbound_malformed);
    keep_serving(&f, 5);

    /* 6. A random flood after a good handshake, over many seeds' worth of
     * bytes: never a crash, always a close. */
    for (int round = 0; round < 20; round++) {
        transport_status(f.m[1].t, &ts);
        fx_raw_connect(&f, &r, port);
        handshake_as(&f, &r, 1);
        size_t n = 1 + prng_below(&rng, sizeof(junk));
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)prng_next(&rng);
        /* A plausible length, so the checksum is what catches it. */
        junk[0] = (uint8_t)prng_below(&rng, 64);
        junk[1] = junk[2] = junk[3] = 0;
        junk[4] = TP_FRAME_MSG;
        size_t want = TP_FRAME_HEADER_BYTES + junk[0];
        while (n < want)
            junk[n++] = 0;
        fx_raw_write(&r, junk, n);
        expect_closed_by_member2(&f, &r, ts.inbound_malformed);
    }
    keep_serving(&f, 6);
    assert_true(f.m[1].log_malformed >= 25);
    /* Member 1's own connection was never disturbed. */
    assert_int_equal(fx_status(&f, 0, 1).connects, 1);
    buf_free(&b);
    fx_fini(&f);
}

static bool no_inbound(struct fixture *f, void *arg)
{
    (void)arg;
    struct transport_status ts;
    transport_status(f->m[0].t, &ts);
    return ts.inbound_conns == 0;
}

static void silent_connections_closed(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    /* One says nothing, one stops in the middle of its handshake: each
     * holds an inbound slot only for 5 probe intervals. */
    struct fx_raw quiet, half;
    fx_raw_connect(&f, &quiet, f.m[0].port);
    fx_raw_connect(&f, &half, f.m[0].port);
    fx_raw_write(&half, "CRNP\x01\x00", 6);
    fx_run_until(&f, raw_closed, &quiet);
    fx_run_until(&f, raw_closed, &half);
    fx_run_until(&f, no_inbound, NULL);
    assert_int_equal(quiet.got.len, 0);
    buf_free(&quiet.got);
    buf_free(&half.got);
    fx_fini(&f);
}

/* A raw dialler's handshake, answered and closed with code. */
static void expect_answer(struct fixture *f, const struct tp_handshake *hs,
                          uint8_t want)
{
    struct fx_raw r;
    fx_raw_connect(f, &r, f->m[1].port);
    uint8_t b[TP_HANDSHAKE_BYTES];
    tp__handshake_encode(b, hs);
    fx_raw_write(&r, b, sizeof(b));
    fx_run_until(f, raw_closed, &r);
    assert_int_equal(r.got.len, TP_ANSWER_BYTES);
    uint8_t code;
    raft_id who;
    assert_int_equal(tp__answer_decode(r.got.data, &code, &who), 0);
    assert_int_equal(code, want);
    assert_int_equal(who, f->m[1].id);
    buf_free(&r.got);
}

static bool raw_answered(struct fixture *f, void *arg)
{
    (void)f;
    struct fx_raw *r = arg;
    return r->got.len >= TP_ANSWER_BYTES || r->closed;
}

static void every_refusal_code(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_peer(&f, 1, 0);
    uint64_t c = f.cfg.cluster_id;
    struct tp_handshake hs = {2, TP_KIND_MESSAGES, c, 1, 2};
    expect_answer(&f, &hs, TP_ANSWER_VERSION);
    hs = (struct tp_handshake){1, TP_KIND_MESSAGES, c + 1, 1, 2};
    expect_answer(&f, &hs, TP_ANSWER_CLUSTER);
    hs = (struct tp_handshake){1, TP_KIND_MESSAGES, c, 1, 3};
    expect_answer(&f, &hs, TP_ANSWER_RECEIVER);
    hs = (struct tp_handshake){1, TP_KIND_MESSAGES, c, 4, 2};
    expect_answer(&f, &hs, TP_ANSWER_UNKNOWN);
    hs = (struct tp_handshake){1, 9, c, 1, 2};
    expect_answer(&f, &hs, TP_ANSWER_KIND);
    assert_int_equal(transport_remove_peer(f.m[1].t, 1), 0);
    hs = (struct tp_handshake){1, TP_KIND_MESSAGES, c, 1, 2};
    expect_answer(&f, &hs, TP_ANSWER_REMOVED);
    /* Added back: accepted again. */
    fx_peer(&f, 1, 0);
    struct fx_raw r;
    fx_raw_connect(&f, &r, f.m[1].port);
    uint8_t b[TP_HANDSHAKE_BYTES];
    tp__handshake_encode(b, &hs);
    fx_raw_write(&r, b, sizeof(b));
    fx_run_until(&f, raw_answered, &r);
    uint8_t code;
    raft_id who;
    assert_int_equal(tp__answer_decode(r.got.data, &code, &who), 0);
    assert_int_equal(code, TP_ANSWER_OK);
    fx_raw_close(&f, &r);
    fx_fini(&f);
}

int test_refuse_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(other_cluster_refused_logged_once),
        cmocka_unit_test(removed_and_unknown_members_refused),
        cmocka_unit_test(marked_removed_refused),
        cmocka_unit_test(garbage_and_malformed_frames_close_one_connection),
        cmocka_unit_test(silent_connections_closed),
        cmocka_unit_test(every_refusal_code),
    };
    return cmocka_run_group_tests_name("transport_refuse", tests, NULL, NULL);
}
