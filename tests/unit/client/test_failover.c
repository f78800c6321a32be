/* Failover against fake members on the test's loop: an endpoint that says
 * "etcdserver: not leader" sends the client to the next one; a member that
 * goes away with calls in flight has its read-only calls retried elsewhere
 * and its writes failed (they may have been applied). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "client/client.h"
#include "rpc/rpc.h"
#include "run_until.h"

enum fake_mode { FAKE_NOT_LEADER, FAKE_ANSWER, FAKE_HOLD };

struct fake {
    enum fake_mode mode;
    int64_t revision; /* put in every answer's header, to tell who answered */
    int calls;
    struct rpc_server *srv;
    char url[64];
};

static void fake_half_close(void *arg, struct rpc_call *call)
{
    struct fake *f = arg;
    f->calls++;
    if (f->mode == FAKE_NOT_LEADER) {
        rpc_call_finish(call, RPC_FAILED_PRECONDITION,
                        "etcdserver: not leader");
        return;
    }
    if (f->mode == FAKE_HOLD)
        return; /* ended when the server closes */
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.revision = f->revision;
    uint8_t buf[64];
    size_t n;
    if (strcmp(rpc_call_method(call), "/etcdserverpb.KV/Put") == 0) {
        Etcdserverpb__PutResponse r = ETCDSERVERPB__PUT_RESPONSE__INIT;
        r.header = &h;
        n = etcdserverpb__put_response__pack(&r, buf);
    } else {
        Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
        r.header = &h;
        n = etcdserverpb__range_response__pack(&r, buf);
    }
    assert_int_equal(rpc_call_send(call, buf, n), 0);
    rpc_call_finish(call, RPC_OK, NULL);
}

static void fake_done(void *arg, struct rpc_call *call, int code,
                      const char *message)
{
    (void)arg;
    (void)call;
    (void)code;
    (void)message;
}

static const struct rpc_call_cbs fake_cbs = {.half_close = fake_half_close,
                                             .done = fake_done};

static void fake_start(uv_loop_t *loop, struct fake *f, enum fake_mode mode,
                       int64_t revision)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->revision = revision;
    struct rpc_method methods[] = {
        {"/etcdserverpb.KV/Put", &fake_cbs, f},
        {"/etcdserverpb.KV/Range", &fake_cbs, f},
    };
    assert_int_equal(
        rpc_server_init(&f->srv, loop, NULL, methods, 2, NULL, NULL), 0);
    struct net_url url;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &url, NULL), 0);
    uint16_t port;
    assert_int_equal(rpc_server_listen(f->srv, &url, &port, NULL), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", port);
}

struct outcome {
    int done;
    int status;
    int64_t revision;
    /* stopped at the end, so that a callback run from the timer phase
     * does not leave LOOP_UNTIL's turn waiting in poll */
    uv_loop_t *loop;
};

static void outcome_cb(void *arg, const struct client_status *st,
                       ProtobufCMessage *resp)
{
    struct outcome *o = arg;
    o->done++;
    o->status = st->status;
    if (resp) {
        /* Put and Range responses both carry the header first */
        const Etcdserverpb__ResponseHeader *h =
            resp->descriptor == &etcdserverpb__put_response__descriptor
                ? ((Etcdserverpb__PutResponse *)resp)->header
                : ((Etcdserverpb__RangeResponse *)resp)->header;
        o->revision = h ? h->revision : -1;
    }
    client_msg_free(resp);
    uv_stop(o->loop);
}

static void not_leader_moves_on(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fake a, b;
    fake_start(&loop, &a, FAKE_NOT_LEADER, 1);
    fake_start(&loop, &b, FAKE_ANSWER, 2);
    const char *eps[] = {a.url, b.url};
    struct client_config cfg = {.endpoints = eps, .n_endpoints = 2};
    struct client *cl;
    assert_int_equal(client_init(&cl, &loop, &cfg, NULL), 0);
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key.data = (uint8_t *)"k";
    p.key.len = 1;
    struct outcome o = {.loop = &loop};
    assert_int_equal(client_call(cl, CLIENT_KV_PUT, &p.base, &o, outcome_cb),
                     0);
    LOOP_UNTIL(&loop, o.done == 1);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.revision, 2);
    assert_int_equal(a.calls, 1);
    assert_int_equal(client_endpoint_current(cl), 1);
    /* the next call goes straight to the member that answered */
    o = (struct outcome){.loop = &loop};
    assert_int_equal(client_call(cl, CLIENT_KV_PUT, &p.base, &o, outcome_cb),
                     0);
    LOOP_UNTIL(&loop, o.done == 1);
    assert_int_equal(o.revision, 2);
    assert_int_equal(a.calls, 1);

    /* when every member says "not leader", the call ends after a bounded
     * number of tries with the server's error */
    b.mode = FAKE_NOT_LEADER;
    o = (struct outcome){.loop = &loop};
    assert_int_equal(client_call(cl, CLIENT_KV_PUT, &p.base, &o, outcome_cb),
                     0);
    LOOP_UNTIL(&loop, o.done == 1);
    assert_int_equal(o.status, CAIRN_ENOTLEADER);
    assert_int_equal(a.calls + b.calls,
                     1 + 2 + 2 * CLIENT_RETRIES_PER_ENDPOINT);

    client_close(cl);
    rpc_server_close(a.srv);
    rpc_server_close(b.srv);
    LOOP_DRAIN(&loop); /* not ended early by the callbacks' stops */
    assert_int_equal(ru_loop_close(&loop), 0);
}

static void lost_member_retries_reads_only(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fake a, b;
    fake_start(&loop, &a, FAKE_HOLD, 1);
    fake_start(&loop, &b, FAKE_ANSWER, 2);
    const char *eps[] = {a.url, b.url};
    struct client_config cfg = {.endpoints = eps, .n_endpoints = 2};
    struct client *cl;
    assert_int_equal(client_init(&cl, &loop, &cfg, NULL), 0);
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
    p.key.data = r.key.data = (uint8_t *)"k";
    p.key.len = r.key.len = 1;
    struct outcome op = {.loop = &loop}, orr = {.loop = &loop};
    assert_int_equal(client_call(cl, CLIENT_KV_PUT, &p.base, &op, outcome_cb),
                     0);
    assert_int_equal(
        client_call(cl, CLIENT_KV_RANGE, &r.base, &orr, outcome_cb), 0);
    LOOP_UNTIL(&loop, a.calls == 2);
    rpc_server_close(a.srv);
    LOOP_UNTIL(&loop, op.done == 1 && orr.done == 1);
    assert_int_equal(op.status, CAIRN_ENOENDPOINT);
    assert_int_equal(orr.status, 0);
    assert_int_equal(orr.revision, 2);
    assert_int_equal(b.calls, 1);

    client_close(cl);
    rpc_server_close(b.srv);
    LOOP_DRAIN(&loop); /* not ended early by the callbacks' stops */
    assert_int_equal(ru_loop_close(&loop), 0);
}

int failover_tests(void);
int failover_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(not_leader_moves_on),
        cmocka_unit_test(lost_member_retries_reads_only),
    };
    return cmocka_run_group_tests_name("failover", tests, NULL, NULL);
}
