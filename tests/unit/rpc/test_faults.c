/* Allocation failures anywhere in a call's path (rpc, net and nghttp2 all
 * allocate through cairn_malloc): every call still ends, with OK or an
 * error, nothing hangs or leaks, and the server serves the next client. */
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* One client, one connection, a unary call and a short server stream.
 * Returns how many allocations it made. */
static uint64_t scenario(struct fx *f, int countdown, int *outcome)
{
    struct result r1, r2;
    result_init(&r1);
    result_init(&r2);
    struct rpc_client *cl = fx_connect(f, NULL);
    uint64_t before = cairn_mem_alloc_count();
    if (countdown >= 0)
        cairn_mem_fault_set(countdown, 1);
    int rv1 = rpc_client_call(cl, "/test.Echo/Unary", -1, NULL, &result_cbs,
                              &r1, &r1.call);
    if (rv1 == 0) {
        rpc_call_send(r1.call, "hello", 5);
        rpc_call_close_send(r1.call);
    }
    uint8_t req[8];
    codec_put_u32(req, 50);
    codec_put_u32(req + 4, 300);
    int rv2 = rpc_client_call(cl, "/test.Echo/ServerStream", -1, NULL,
                              &result_cbs, &r2, &r2.call);
    if (rv2 == 0) {
        rpc_call_send(r2.call, req, 8);
        rpc_call_close_send(r2.call);
    }
    /* a guard timer turns a hang into a failure */
    int fired = 0;
    uv_timer_t guard;
    uv_timer_init(&f->loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, on_guard, 10000, 0);
    RUN_UNTIL(f, fired || ((rv1 != 0 || r1.done) && (rv2 != 0 || r2.done)));
    if (fired)
        fprintf(stderr, "hang with allocation fault at countdown %d\n",
                countdown);
    assert_false(fired);
    uint64_t used = cairn_mem_alloc_count() - before;
    cairn_mem_fault_set(-1, 0);
    fx_close_handle(f, (uv_handle_t *)&guard);
    *outcome = (rv1 == 0 && r1.code == RPC_OK && r1.n_msgs == 1) +
               (rv2 == 0 && r2.code == RPC_OK && r2.n_msgs == 50);
    rpc_client_close(cl);
    result_free(&r1);
    result_free(&r2);
    return used;
}

static void allocation_faults_everywhere(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false);
    int outcome;
    uint64_t n = scenario(&f, -1, &outcome);
    assert_int_equal(outcome, 2);
    assert_true(n > 10);
    int failed_calls = 0;
    for (int k = 0; k < (int)n; k++) {
        scenario(&f, k, &outcome);
        failed_calls += 2 - outcome;
        /* whatever happened, the server still serves */
        scenario(&f, -1, &outcome);
        assert_int_equal(outcome, 2);
    }
    /* the faults did hit calls */
    assert_true(failed_calls > 0);
    fx_close(&f);
}

int test_faults_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocation_faults_everywhere),
    };
    return cmocka_run_group_tests_name("rpc faults", tests, NULL, NULL);
}
