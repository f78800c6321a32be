/* gRPC calls between an in-process client and server on one loop: every
 * call shape, large messages across flow-control windows, deadlines,
 * unknown methods, oversized messages, cancellation, back-pressure and many
 * concurrent streams on several connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "rpc/rpc_int.h" /* a call's buffers (idle_stream_holds_no_buffers) */

static void unary_echo(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    fx_call(cl, "/test.Echo/Unary", 5000, &r, "hello", 5, 1, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.n_msgs, 1);
    assert_int_equal(r.last.len, 5);
    assert_memory_equal(r.last.data, "hello", 5);
    /* an empty message is a message too */
    result_free(&r);
    result_init(&r);
    fx_call(cl, "/test.Echo/Unary", -1, &r, "", 0, 1, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.n_msgs, 1);
    assert_int_equal(r.last.len, 0);
    RUN_UNTIL(&f, f.srv_done == 2);
    assert_int_equal(f.srv_done_code[RPC_OK], 2);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

/* A connection's finished calls leave nothing behind in nghttp2: with
 * MAX_CONCURRENT_STREAMS at etcd's 2^32-1 it kept every closed stream of a
 * long-lived client, a member's heap growing by 150 bytes per request. */
static void closed_streams_not_kept(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        struct result r;
        result_init(&r);
        fx_call(cl, "/test.Echo/Unary", 5000, &r, "x", 1, 1, true);
        RUN_UNTIL(&f, r.done && f.srv_done == i + 1);
        assert_int_equal(r.code, RPC_OK);
        result_free(&r);
    }
    assert_int_equal(rpc_server_conn_count(f.srv), 1);
    assert_true(rpc_server_stream_count(f.srv) <= 1);
    rpc_client_close(cl);
    fx_close(&f);
}

/* One server on a TCP and a unix URL at once; clients on both. */
static void unix_socket_and_two_listeners(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    char text[96];
    snprintf(text, sizeof(text), "unix://cairn-test-rpc-%d.sock",
             (int)getpid());
    struct net_url unix_url;
    assert_int_equal(net_url_parse(text, &unix_url, NULL), 0);
    uint16_t port = 1;
    assert_int_equal(rpc_server_listen(f.srv, &unix_url, &port, NULL), 0);
    assert_int_equal(port, 0);
    struct net_url tcp_url = f.url;
    f.url = unix_url;
    struct rpc_client *over_unix = fx_connect(&f, NULL);
    f.url = tcp_url;
    struct rpc_client *over_tcp = fx_connect(&f, NULL);
    struct result a, b;
    result_init(&a);
    result_init(&b);
    fx_call(over_unix, "/test.Echo/Unary", 5000, &a, "u", 1, 1, true);
    fx_call(over_tcp, "/test.Echo/Unary", 5000, &b, "t", 1, 1, true);
    RUN_UNTIL(&f, a.done && b.done);
    assert_int_equal(a.code, RPC_OK);
    assert_int_equal(b.code, RPC_OK);
    assert_memory_equal(a.last.data, "u", 1);
    assert_memory_equal(b.last.data, "t", 1);
    assert_int_equal(rpc_server_conn_count(f.srv), 2);
    result_free(&a);
    result_free(&b);
    rpc_client_close(over_unix);
    rpc_client_close(over_tcp);
    fx_close(&f);
    /* the socket file went with the server */
    assert_int_not_equal(access(unix_url.host, F_OK), 0);
}

static void status_message_round_trip(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    fx_call(cl, "/test.Echo/Fail", -1, &r, NULL, 0, 0, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_FAILED_PRECONDITION);
    assert_string_equal(r.msg, "etcdserver: 100% sure\nnot \xc3\xa9");
    assert_int_equal(r.n_msgs, 0);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

static void metadata_reaches_handler(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    const char *md[] = {"x-other", "1", "token", "abc.def", NULL};
    assert_int_equal(rpc_client_call(cl, "/test.Echo/Meta", -1, md, &result_cbs,
                                     &r, &r.call),
                     0);
    rpc_call_close_send(r.call);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(buf_append_u8(&r.last, 0), 0);
    assert_string_equal((char *)r.last.data, "abc.def /test.Echo/Meta");
    result_free(&r);
    /* none sent: none seen */
    result_init(&r);
    fx_call(cl, "/test.Echo/Meta", -1, &r, NULL, 0, 0, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(buf_append_u8(&r.last, 0), 0);
    assert_string_equal((char *)r.last.data, "(none) /test.Echo/Meta");
    result_free(&r);
    /* an odd list is refused */
    const char *odd[] = {"token", NULL};
    struct rpc_call *call;
    assert_int_equal(
        rpc_client_call(cl, "/test.Echo/Meta", -1, odd, &result_cbs, &r, &call),
        CAIRN_EINVAL);
    rpc_client_close(cl);
    fx_close(&f);
}

/* Once a server call has finished, nothing more reaches its handler. */
static void nothing_after_finish(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    fx_call(cl, "/test.Echo/First", -1, &r, "m", 1, 50, true);
    RUN_UNTIL(&f, r.done && f.srv_done == 1);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(f.first_msgs, 1);
    assert_int_equal(f.first_halves, 0);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

static void server_streaming(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    uint8_t req[8];
    codec_put_u32(req, 20000);
    codec_put_u32(req + 4, 200);
    fx_call(cl, "/test.Echo/ServerStream", -1, &r, req, 8, 1, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.n_msgs, 20000);
    assert_true(r.in_order);
    assert_int_equal(r.bytes, 20000 * 200);
    /* 4 MB through a 1 MiB send queue: the server had to wait */
    assert_true(f.srv_efull > 0);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

/* Bidi ping-pong: the next message goes out when the previous came back. */
struct pingpong {
    struct result r;
    int sent;
    int want;
};
static void pp_msg(void *arg, struct rpc_call *call, const uint8_t *d, size_t n)
{
    struct pingpong *p = arg;
    assert_int_equal(n, 4);
    assert_int_equal(codec_get_u32(d), (uint32_t)p->r.n_msgs);
    p->r.n_msgs++;
    if (p->sent < p->want) {
        uint8_t m[4];
        codec_put_u32(m, (uint32_t)p->sent++);
        assert_int_equal(rpc_call_send(call, m, 4), 0);
    } else {
        rpc_call_close_send(call);
    }
}
static void pp_done(void *arg, struct rpc_call *call, int code, const char *msg)
{
    (void)call;
    (void)msg;
    struct pingpong *p = arg;
    p->r.done++;
    p->r.code = code;
}
static const struct rpc_call_cbs pp_cbs = {NULL, pp_msg, NULL, NULL, pp_done};

static void bidi_ping_pong(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct pingpong p;
    memset(&p, 0, sizeof(p));
    p.want = 500;
    struct rpc_call *call;
    assert_int_equal(
        rpc_client_call(cl, "/test.Echo/Bidi", -1, NULL, &pp_cbs, &p, &call),
        0);
    uint8_t m[4];
    codec_put_u32(m, (uint32_t)p.sent++);
    assert_int_equal(rpc_call_send(call, m, 4), 0);
    RUN_UNTIL(&f, p.r.done);
    assert_int_equal(p.r.code, RPC_OK);
    assert_int_equal(p.r.n_msgs, 500);
    rpc_client_close(cl);
    fx_close(&f);
}

/* A stream idle between messages holds no message buffers: a member's
 * 10,000 open LeaseKeepAlive streams each kept a request and an answer
 * buffer (about 160 bytes a stream) until they closed. */
static void idle_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                     size_t n)
{
    (void)call;
    (void)d;
    (void)n;
    ((struct result *)arg)->n_msgs++;
}
static void idle_done(void *arg, struct rpc_call *call, int code,
                      const char *msg)
{
    (void)call;
    (void)msg;
    struct result *r = arg;
    r->done++;
    r->code = code;
}
static const struct rpc_call_cbs idle_cbs = {NULL, idle_msg, NULL, NULL,
                                             idle_done};

static void idle_stream_holds_no_buffers(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    memset(&r, 0, sizeof(r));
    struct rpc_call *call;
    assert_int_equal(
        rpc_client_call(cl, "/test.Echo/Bidi", -1, NULL, &idle_cbs, &r, &call),
        0);
    uint8_t m[100] = {0};
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(rpc_call_send(call, m, sizeof(m)), 0);
        RUN_UNTIL(&f, r.n_msgs == i);
        /* sent, and the echo delivered: both buffers given back */
        assert_int_equal(call->out.cap, 0);
        assert_int_equal(call->in.cap, 0);
        assert_null(call->timer); /* no deadline, no timer */
    }
    rpc_call_close_send(call);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    rpc_client_close(cl);
    fx_close(&f);
}

static void client_streaming(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    static uint8_t msg[1000];
    /* 500 KB in 500 messages fits the 1 MiB send queue at once */
    fx_call(cl, "/test.Echo/ClientStream", -1, &r, msg, sizeof(msg), 500, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.last.len, 12);
    assert_int_equal(codec_get_u32(r.last.data), 500);
    assert_true(codec_get_u64(r.last.data + 4) == 500000);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

static void large_messages_small_windows(void **state)
{
    (void)state;
    /* 64 KiB stream windows both ways: a 1.5 MiB message needs many
     * WINDOW_UPDATEs in each direction. */
    struct rpc_server_config scfg = {.stream_window_bytes = 65535};
    struct rpc_client_config ccfg = {.stream_window_bytes = 65535};
    struct fx f;
    fx_open(&f, &scfg, false);
    struct rpc_client *cl = fx_connect(&f, &ccfg);
    size_t n = 3u << 19;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    struct prng p;
    prng_seed(&p, 42);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)prng_next(&p);
    struct result r[3];
    for (int i = 0; i < 3; i++) {
        result_init(&r[i]);
        fx_call(cl, "/test.Echo/Unary", -1, &r[i], big, n, 1, true);
    }
    RUN_UNTIL(&f, r[0].done && r[1].done && r[2].done);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].code, RPC_OK);
        assert_int_equal(r[i].last.len, n);
        assert_memory_equal(r[i].last.data, big, n);
        result_free(&r[i]);
    }
    free(big);
    rpc_client_close(cl);
    fx_close(&f);
}

static void deadline_exceeded(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    /* Hold never answers; the 30 ms deadline ends it on both sides. */
    fx_call(cl, "/test.Echo/Hold", 30, &r, NULL, 0, 0, false);
    RUN_UNTIL(&f, f.n_held == 1);
    assert_non_null(f.held[0]);
    int64_t left = rpc_call_deadline_left_ms(f.held[0]);
    assert_true(left >= 0 && left <= 30);
    RUN_UNTIL(&f, r.done && f.srv_done == 1);
    assert_int_equal(r.code, RPC_DEADLINE_EXCEEDED);
    /* Both sides keep the deadline; whichever fires first decides what the
     * server sees: its own expiry, or the client's reset. The server's
     * alone is tested with a raw client (test_bad.c). */
    assert_true(f.srv_last_code == RPC_DEADLINE_EXCEEDED ||
                f.srv_last_code == RPC_CANCELLED);
    /* the connection still serves */
    result_free(&r);
    result_init(&r);
    fx_call(cl, "/test.Echo/Unary", 5000, &r, "x", 1, 1, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

static void unknown_service_and_method(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r1, r2;
    result_init(&r1);
    result_init(&r2);
    fx_call(cl, "/test.Echo/Nope", -1, &r1, "x", 1, 1, true);
    fx_call(cl, "/etcdserverpb.KV/Range", -1, &r2, "x", 1, 1, true);
    RUN_UNTIL(&f, r1.done && r2.done);
    assert_int_equal(r1.code, RPC_UNIMPLEMENTED);
    assert_string_equal(r1.msg, "unknown method Nope for service test.Echo");
    assert_int_equal(r2.code, RPC_UNIMPLEMENTED);
    assert_string_equal(r2.msg, "unknown service etcdserverpb.KV");
    assert_int_equal(f.srv_started, 0);
    result_free(&r1);
    result_free(&r2);
    rpc_client_close(cl);
    fx_close(&f);
}

static void oversized_message(void **state)
{
    (void)state;
    struct rpc_server_config scfg = {.max_recv_msg_bytes = 1000};
    struct fx f;
    fx_open(&f, &scfg, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    static uint8_t msg[300000];
    struct result r;
    result_init(&r);
    fx_call(cl, "/test.Echo/Unary", -1, &r, msg, sizeof(msg), 1, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_RESOURCE_EXHAUSTED);
    assert_string_equal(r.msg,
                        "grpc: received message larger than max (300000 vs. "
                        "1000)");
    /* exactly the limit is fine, on the same connection */
    result_free(&r);
    result_init(&r);
    fx_call(cl, "/test.Echo/Unary", -1, &r, msg, 1000, 1, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.last.len, 1000);
    /* the client's own limit applies to what it receives */
    result_free(&r);
    rpc_client_close(cl);
    struct rpc_client_config ccfg = {.max_recv_msg_bytes = 100};
    cl = fx_connect(&f, &ccfg);
    result_init(&r);
    fx_call(cl, "/test.Echo/Unary", -1, &r, msg, 500, 1, true);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_RESOURCE_EXHAUSTED);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

static void cancel_reaches_server(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    fx_call(cl, "/test.Echo/Hold", -1, &r, NULL, 0, 0, false);
    RUN_UNTIL(&f, f.n_held == 1);
    rpc_call_cancel(r.call);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.code, RPC_CANCELLED);
    RUN_UNTIL(&f, f.srv_done == 1);
    assert_int_equal(f.srv_last_code, RPC_CANCELLED);
    /* closing the client ends the server's calls too */
    result_free(&r);
    result_init(&r);
    fx_call(cl, "/test.Echo/Hold", -1, &r, NULL, 0, 0, false);
    RUN_UNTIL(&f, f.n_held == 2);
    rpc_client_close(cl);
    RUN_UNTIL(&f, r.done == 1);
    assert_int_equal(r.code, RPC_UNAVAILABLE);
    RUN_UNTIL(&f, f.srv_done == 2);
    assert_int_equal(f.srv_last_code, RPC_CANCELLED);
    RUN_UNTIL(&f, rpc_server_conn_count(f.srv) == 0);
    result_free(&r);
    fx_close(&f);
}

/* A client that stops reading one stream: the server's memory for it stays
 * within its send queue, the stream window and the connection's queue; it
 * all arrives once the client reads again. */
static void paused_reader_bounded(void **state)
{
    (void)state;
    struct rpc_server_config scfg = {.send_queue_max_bytes = 256 << 10};
    struct rpc_client_config ccfg = {.stream_window_bytes = 65535};
    struct fx f;
    fx_open(&f, &scfg, false);
    struct rpc_client *cl = fx_connect(&f, &ccfg);
    struct result r;
    result_init(&r);
    uint8_t req[8];
    codec_put_u32(req, 4000);
    codec_put_u32(req + 4, 4096); /* 16 MB in all */
    fx_call(cl, "/test.Echo/ServerStream", -1, &r, req, 8, 1, true);
    rpc_call_recv_pause(r.call, true);
    RUN_UNTIL(&f, f.srv_efull > 0);
    /* let everything settle: nothing more can move */
    for (int i = 0; i < 200; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    size_t held = rpc_server_queued_bytes(f.srv);
    assert_true(held <= (256u << 10) + 4101);
    assert_true(r.n_msgs == 0);
    assert_int_equal(r.done, 0);
    rpc_call_recv_pause(r.call, false);
    RUN_UNTIL(&f, r.done);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.n_msgs, 4000);
    assert_true(r.in_order);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

/* Closes its client from inside the call's done callback. */
struct closer {
    struct result r;
    struct rpc_client *cl;
};
static void closer_done(void *arg, struct rpc_call *call, int code,
                        const char *msg)
{
    (void)call;
    (void)msg;
    struct closer *k = arg;
    k->r.done++;
    k->r.code = code;
    rpc_client_close(k->cl);
}
static const struct rpc_call_cbs closer_cbs = {NULL, NULL, NULL, NULL,
                                               closer_done};

static void server_close_ends_everything(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct closer k;
    memset(&k, 0, sizeof(k));
    k.cl = fx_connect(&f, NULL);
    struct rpc_call *call;
    assert_int_equal(rpc_client_call(k.cl, "/test.Echo/Hold", -1, NULL,
                                     &closer_cbs, &k, &call),
                     0);
    struct rpc_client *other = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    fx_call(other, "/test.Echo/Hold", -1, &r, NULL, 0, 0, true);
    RUN_UNTIL(&f, f.n_held == 2);
    rpc_server_close(f.srv);
    RUN_UNTIL(&f, k.r.done == 1 && r.done == 1 && f.srv_done == 2);
    assert_int_equal(k.r.code, RPC_UNAVAILABLE);
    assert_int_equal(r.code, RPC_UNAVAILABLE);
    assert_int_equal(f.srv_done_code[RPC_CANCELLED], 2);
    assert_false(rpc_client_alive(other));
    rpc_client_close(other); /* after its connection died: frees it */
    result_free(&r);
    fx_loop_close(&f);
}

static void drain_lets_calls_finish(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *busy = fx_connect(&f, NULL);
    struct rpc_client *idle = fx_connect(&f, NULL);
    struct result held, late;
    result_init(&held);
    result_init(&late);
    fx_call(busy, "/test.Echo/Hold", -1, &held, NULL, 0, 0, true);
    RUN_UNTIL(&f, f.n_held == 1 && rpc_server_conn_count(f.srv) == 2);
    rpc_server_drain(f.srv);
    /* the idle connection goes; the busy one stays for its call */
    RUN_UNTIL(&f, !rpc_client_alive(idle) && rpc_server_conn_count(f.srv) == 1);
    /* the busy one heard GOAWAY: no new calls on it */
    assert_false(rpc_client_alive(busy));
    struct rpc_call *call;
    assert_int_equal(rpc_client_call(busy, "/test.Echo/Unary", -1, NULL,
                                     &result_cbs, &late, &call),
                     CAIRN_ESHUTDOWN);
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(held.done, 0);
    /* the held call ends normally, and then its connection closes */
    assert_int_equal(rpc_call_send(f.held[0], "bye", 3), 0);
    rpc_call_finish(f.held[0], RPC_OK, NULL);
    RUN_UNTIL(&f, held.done);
    assert_int_equal(held.code, RPC_OK);
    assert_int_equal(held.n_msgs, 1);
    RUN_UNTIL(&f, rpc_server_conn_count(f.srv) == 0);
    result_free(&held);
    result_free(&late);
    rpc_client_close(busy);
    rpc_client_close(idle);
    fx_close(&f);
}

/* How many calls are done (and OK, when ok_only). */
static int count_ok(const struct result *r, int n, bool ok_only)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += r[i].done && (!ok_only || r[i].code == RPC_OK);
    return k;
}

/* The server finishes while the client holds its messages unread: the
 * messages still come, in order, and then the status. */
static void paused_reader_sees_messages_before_status(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    struct result r;
    result_init(&r);
    uint8_t req[8];
    codec_put_u32(req, 10);
    codec_put_u32(req + 4, 100);
    fx_call(cl, "/test.Echo/ServerStream", -1, &r, req, 8, 1, true);
    rpc_call_recv_pause(r.call, true);
    RUN_UNTIL(&f, f.srv_done == 1);
    for (int i = 0; i < 50; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.n_msgs, 0);
    assert_int_equal(r.done, 0);
    rpc_call_recv_pause(r.call, false);
    assert_int_equal(r.n_msgs, 10);
    assert_true(r.in_order);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    rpc_client_close(cl);
    fx_close(&f);
}

static void many_concurrent_streams(void **state)
{
    (void)state;
    enum { CLIENTS = 4, PER = 300 };
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl[CLIENTS];
    static struct result r[CLIENTS * PER];
    for (int c = 0; c < CLIENTS; c++) {
        cl[c] = fx_connect(&f, NULL);
        for (int i = 0; i < PER; i++) {
            result_init(&r[c * PER + i]);
            fx_call(cl[c], "/test.Echo/Hold", -1, &r[c * PER + i], NULL, 0, 0,
                    true);
        }
    }
    RUN_UNTIL(&f, f.n_held == CLIENTS * PER);
    assert_true(f.held_max >= CLIENTS * PER);
    assert_int_equal(rpc_server_call_count(f.srv), CLIENTS * PER);
    /* answer them all, each with its index */
    for (size_t i = 0; i < f.n_held; i++) {
        uint8_t m[8];
        codec_put_u32(m, 0);
        codec_put_u32(m + 4, (uint32_t)i);
        assert_int_equal(rpc_call_send(f.held[i], m, 8), 0);
        rpc_call_finish(f.held[i], RPC_OK, NULL);
    }
    RUN_UNTIL(&f, count_ok(r, CLIENTS * PER, false) == CLIENTS * PER);
    int ok = 0;
    for (int i = 0; i < CLIENTS * PER; i++) {
        ok += r[i].code == RPC_OK && r[i].n_msgs == 1;
        result_free(&r[i]);
    }
    assert_int_equal(ok, CLIENTS * PER);
    RUN_UNTIL(&f, f.srv_done == CLIENTS * PER);
    for (int c = 0; c < CLIENTS; c++)
        rpc_client_close(cl[c]);
    fx_close(&f);
}

static void max_concurrent_streams_enforced(void **state)
{
    (void)state;
    struct rpc_server_config scfg = {.max_concurrent_streams = 10};
    struct fx f;
    fx_open(&f, &scfg, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    /* let the client learn the server's SETTINGS */
    for (int i = 0; i < 50; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    static struct result r[30];
    for (int i = 0; i < 30; i++) {
        result_init(&r[i]);
        fx_call(cl, "/test.Echo/Hold", -1, &r[i], NULL, 0, 0, true);
    }
    RUN_UNTIL(&f, f.n_held == 10);
    for (int i = 0; i < 50; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(rpc_server_call_count(f.srv), 10);
    /* finishing held calls lets the queued ones in */
    for (int round = 0; round < 3; round++) {
        size_t base = f.n_held - 10;
        for (size_t i = base; i < f.n_held; i++)
            rpc_call_finish(f.held[i], RPC_OK, NULL);
        if (round < 2)
            RUN_UNTIL(&f, f.n_held == base + 20);
    }
    RUN_UNTIL(&f, count_ok(r, 30, true) == 30);
    /* calls queued behind the limit (never sent) can be cancelled, or
     * reach their deadline, without the server hearing of them */
    static struct result h[10], q[2];
    size_t base = f.n_held;
    for (int i = 0; i < 10; i++) {
        result_init(&h[i]);
        fx_call(cl, "/test.Echo/Hold", -1, &h[i], NULL, 0, 0, true);
    }
    RUN_UNTIL(&f, f.n_held == base + 10);
    result_init(&q[0]);
    result_init(&q[1]);
    fx_call(cl, "/test.Echo/Hold", -1, &q[0], NULL, 0, 0, true);
    fx_call(cl, "/test.Echo/Hold", 20, &q[1], NULL, 0, 0, true);
    rpc_call_cancel(q[0].call);
    assert_int_equal(q[0].code, RPC_CANCELLED);
    RUN_UNTIL(&f, q[1].done);
    assert_int_equal(q[1].code, RPC_DEADLINE_EXCEEDED);
    for (size_t i = base; i < base + 10; i++)
        rpc_call_finish(f.held[i], RPC_OK, NULL);
    RUN_UNTIL(&f, count_ok(h, 10, true) == 10);
    for (int i = 0; i < 50; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(f.n_held, base + 10);
    for (int i = 0; i < 10; i++)
        result_free(&h[i]);
    result_free(&q[0]);
    result_free(&q[1]);
    for (int i = 0; i < 30; i++)
        result_free(&r[i]);
    rpc_client_close(cl);
    fx_close(&f);
}

static int count_done(const struct result *r, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += r[i].done;
    return k;
}

/* Answers given in one loop turn leave in one socket write per connection:
 * the server flushes once per turn, not once per message and trailer. */
static void answers_of_one_turn_share_a_write(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    enum { N = 20 };
    struct result r[N];
    for (int i = 0; i < N; i++) {
        result_init(&r[i]);
        fx_call(cl, "/test.Echo/Hold", -1, &r[i], NULL, 0, 0, false);
    }
    RUN_UNTIL(&f, f.n_held == N);
    uint64_t before = rpc_server_write_count(f.srv);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rpc_call_send(f.held[i], "x", 1), 0);
        rpc_call_finish(f.held[i], RPC_OK, NULL);
    }
    RUN_UNTIL(&f, count_done(r, N) == N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].code, RPC_OK);
        assert_int_equal(r[i].n_msgs, 1);
        result_free(&r[i]);
    }
    /* One write for all twenty (two per answer before the turn's flush);
     * a second only if the socket queue split it. */
    uint64_t writes = rpc_server_write_count(f.srv) - before;
    assert_true(writes >= 1 && writes <= 2);
    rpc_client_close(cl);
    fx_close(&f);
}

/* Calls started in one loop turn leave the client in one socket write:
 * the client flushes once per turn too (a benchmark's workers start their
 * next requests from the answers of one turn). */
static void calls_of_one_turn_share_a_write(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    struct rpc_client *cl = fx_connect(&f, NULL);
    enum { N = 20 };
    struct result r[N];
    /* The connection's preface and SETTINGS out first. */
    for (int i = 0; i < 50; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    uint64_t before = rpc_client_write_count(cl);
    for (int i = 0; i < N; i++) {
        result_init(&r[i]);
        fx_call(cl, "/test.Echo/Hold", -1, &r[i], NULL, 0, 0, false);
    }
    assert_int_equal(rpc_client_write_count(cl), before);
    RUN_UNTIL(&f, f.n_held == N);
    /* HEADERS and DATA of twenty calls: one write (twenty before), a
     * second only if an acknowledgement of the server's went out apart. */
    uint64_t writes = rpc_client_write_count(cl) - before;
    assert_true(writes >= 1 && writes <= 2);
    for (int i = 0; i < N; i++)
        rpc_call_finish(f.held[i], RPC_OK, NULL);
    RUN_UNTIL(&f, count_done(r, N) == N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].code, RPC_OK);
        result_free(&r[i]);
    }
    rpc_client_close(cl);
    fx_close(&f);
}

int test_calls_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unary_echo),
        cmocka_unit_test(closed_streams_not_kept),
        cmocka_unit_test(unix_socket_and_two_listeners),
        cmocka_unit_test(status_message_round_trip),
        cmocka_unit_test(metadata_reaches_handler),
        cmocka_unit_test(nothing_after_finish),
        cmocka_unit_test(server_streaming),
        cmocka_unit_test(bidi_ping_pong),
        cmocka_unit_test(idle_stream_holds_no_buffers),
        cmocka_unit_test(client_streaming),
        cmocka_unit_test(large_messages_small_windows),
        cmocka_unit_test(deadline_exceeded),
        cmocka_unit_test(unknown_service_and_method),
        cmocka_unit_test(oversized_message),
        cmocka_unit_test(cancel_reaches_server),
        cmocka_unit_test(paused_reader_bounded),
        cmocka_unit_test(server_close_ends_everything),
        cmocka_unit_test(drain_lets_calls_finish),
        cmocka_unit_test(paused_reader_sees_messages_before_status),
        cmocka_unit_test(many_concurrent_streams),
        cmocka_unit_test(answers_of_one_turn_share_a_write),
        cmocka_unit_test(calls_of_one_turn_share_a_write),
        cmocka_unit_test(max_concurrent_streams_enforced),
    };
    return cmocka_run_group_tests_name("rpc calls", tests, NULL, NULL);
}
