/* A seeded random mix of calls of every shape over several connections,
 * with cancels, paused readers, deadlines, oversized messages and clients
 * that disconnect mid-call. Afterwards: every call ended exactly once,
 * every OK call carried exactly what was sent, and the server holds no
 * call. CAIRN_TEST_SEED picks the seed; CAIRN_TEST_LONG=1 runs 20 times
 * longer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

enum kind { K_UNARY, K_STREAM, K_BIDI, K_COUNT, K_HOLD, K_KINDS };
static const char *const paths[K_KINDS] = {
    "/test.Echo/Unary", "/test.Echo/ServerStream", "/test.Echo/Bidi",
    "/test.Echo/ClientStream", "/test.Echo/Hold"};

struct rcall {
    struct result r; /* first: result_cbs' arg */
    enum kind kind;
    int client;
    uint32_t crc;   /* unary: of the payload */
    size_t len;     /* unary: payload length */
    uint32_t count; /* stream: messages asked; bidi/count: messages sent */
    bool oversized; /* unary: over the server's limit */
    bool paused;
    bool started;
};

#define MAX_CALLS 3000

static bool all_done(const struct rcall *calls, int n)
{
    for (int i = 0; i < n; i++)
        if (calls[i].r.done == 0)
            return false;
    return true;
}
#define CLIENTS 3

static void random_mix(void **state)
{
    (void)state;
    uint64_t seed = 20261129;
    const char *env = getenv("CAIRN_TEST_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    int actions = getenv("CAIRN_TEST_LONG") ? 12000 : 600;
    struct prng p;
    prng_seed(&p, seed);
    fprintf(stderr, "rpc random mix: seed %llu (CAIRN_TEST_SEED)\n",
            (unsigned long long)seed);

    struct rpc_server_config scfg = {.max_recv_msg_bytes = 48 << 10,
                                     .send_queue_max_bytes = 16 << 10,
                                     .stream_window_bytes = 65535};
    struct rpc_client_config ccfg = {.stream_window_bytes = 65535};
    struct fx f;
    fx_open(&f, &scfg, false);
    struct rpc_client *cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        cl[i] = fx_connect(&f, &ccfg);
    struct rcall *calls = calloc(MAX_CALLS, sizeof(*calls));
    assert_non_null(calls);
    uint8_t *payload = malloc(64 << 10);
    assert_non_null(payload);
    int n = 0;

    for (int a = 0; a < actions && n < MAX_CALLS; a++) {
        uint64_t what = prng_below(&p, 100);
        if (what < 45) {
            struct rcall *c = &calls[n++];
            result_init(&c->r);
            c->client = (int)prng_below(&p, CLIENTS);
            c->kind = (enum kind)prng_below(&p, K_KINDS);
            int64_t timeout = -1;
            if (c->kind == K_HOLD || prng_below(&p, 10) == 0)
                timeout = (int64_t)prng_range(&p, 1, 30);
            if (rpc_client_call(cl[c->client], paths[c->kind], timeout, NULL,
                                &result_cbs, &c->r, &c->r.call) != 0) {
                c->r.done = 1; /* refused at once: nothing to check */
                c->r.code = RPC_UNAVAILABLE;
                continue;
            }
            c->started = true;
            switch (c->kind) {
            case K_UNARY:
                c->len = (size_t)prng_below(&p, 64 << 10);
                for (size_t i = 0; i < c->len; i++)
                    payload[i] = (uint8_t)prng_next(&p);
                c->crc = crc32c(0, payload, c->len);
                c->oversized = c->len > scfg.max_recv_msg_bytes;
                rpc_call_send(c->r.call, payload, c->len);
                break;
            case K_STREAM: {
                uint8_t req[8];
                c->count = (uint32_t)prng_below(&p, 200);
                codec_put_u32(req, c->count);
                codec_put_u32(req + 4, (uint32_t)prng_range(&p, 4, 3000));
                rpc_call_send(c->r.call, req, 8);
                break;
            }
            case K_BIDI:
            case K_COUNT:
                c->count = (uint32_t)prng_below(&p, 20);
                for (uint32_t i = 0; i < c->count; i++) {
                    uint8_t m[16];
                    codec_put_u32(m, i);
                    rpc_call_send(c->r.call, m, sizeof(m));
                }
                break;
            default:
                break;
            }
            rpc_call_close_send(c->r.call);
        } else if (what < 55 && n > 0) {
            struct rcall *c = &calls[prng_below(&p, (uint64_t)n)];
            if (c->started && !c->r.done)
                rpc_call_cancel(c->r.call);
        } else if (what < 65 && n > 0) {
            struct rcall *c = &calls[prng_below(&p, (uint64_t)n)];
            if (c->started && !c->r.done) {
                c->paused = !c->paused;
                rpc_call_recv_pause(c->r.call, c->paused);
            }
        } else if (what < 67) {
            /* a client goes away mid-call and comes back */
            int i = (int)prng_below(&p, CLIENTS);
            rpc_client_close(cl[i]);
            cl[i] = fx_connect(&f, &ccfg);
        } else if (what < 72 && f.n_held > 0) {
            struct rpc_call *h = f.held[prng_below(&p, f.n_held)];
            if (h)
                rpc_call_finish(h, RPC_OK, NULL);
        } else {
            int turns = (int)prng_below(&p, 8);
            for (int t = 0; t < turns; t++)
                uv_run(&f.loop, UV_RUN_NOWAIT);
        }
    }

    /* wind down: readers resume, held calls are let go */
    for (int i = 0; i < n; i++)
        if (calls[i].started && !calls[i].r.done && calls[i].paused)
            rpc_call_recv_pause(calls[i].r.call, false);
    for (size_t i = 0; i < f.n_held; i++)
        if (f.held[i])
            rpc_call_finish(f.held[i], RPC_OK, NULL);
    RUN_UNTIL(&f, all_done(calls, n));
    int ok = 0;
    for (int i = 0; i < n; i++) {
        struct rcall *c = &calls[i];
        assert_int_equal(c->r.done, 1);
        if (!c->started || c->r.code != RPC_OK) {
            result_free(&c->r);
            continue;
        }
        ok++;
        switch (c->kind) {
        case K_UNARY:
            assert_false(c->oversized);
            assert_int_equal(c->r.n_msgs, 1);
            assert_int_equal(c->r.last.len, c->len);
            assert_int_equal(crc32c(0, c->r.last.data, c->r.last.len), c->crc);
            break;
        case K_STREAM:
            assert_int_equal(c->r.n_msgs, c->count);
            assert_true(c->r.in_order);
            break;
        case K_BIDI:
            assert_int_equal(c->r.n_msgs, c->count);
            assert_true(c->r.in_order);
            break;
        case K_COUNT:
            assert_int_equal(c->r.n_msgs, 1);
            assert_int_equal(codec_get_u32(c->r.last.data), c->count);
            break;
        case K_HOLD:
            assert_int_equal(c->r.n_msgs, 0);
            break;
        default:
            break;
        }
        result_free(&c->r);
    }
    /* a run where nothing succeeded would prove nothing */
    assert_true(ok > n / 4);
    RUN_UNTIL(&f,
              rpc_server_call_count(f.srv) == 0 && f.srv_done == f.srv_started);
    fprintf(stderr, "rpc random mix: %d calls, %d OK\n", n, ok);
    for (int i = 0; i < CLIENTS; i++)
        rpc_client_close(cl[i]);
    fx_close(&f);
    free(calls);
    free(payload);
}

int test_random_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_mix),
    };
    return cmocka_run_group_tests_name("rpc random", tests, NULL, NULL);
}
