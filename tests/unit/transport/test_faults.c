/* Allocation failures: the Nth allocation of a whole exchange (open,
 * listen, peers, messages, a snapshot, close) fails, for every N
 * (CAIRN_TEST_LONG=1; by default about 40 N spread over the exchange); the
 * transport never crashes or leaks, delivers messages in order without
 * duplicates, reports a snapshot at most once, and closes cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "tests.h"

#define MSGS 20

struct run {
    bool open[2];
    size_t sent; /* messages the transport took */
    char body[PATH_MAX];
};

static bool exchange_done(struct fixture *f, void *arg)
{
    struct run *r = arg;
    if (!r->open[0] || !r->open[1])
        return true;
    return f->m[1].n_got >= r->sent && f->m[0].n_snap_status > 0;
}

/* Runs until done, or until the quiet period after a failure ends: a
 * message lost to a failed allocation is Raft's to resend, not ours. */
static void run_a_while(struct fixture *f, struct run *r, uint64_t ms)
{
    uv_update_time(&f->loop);
    uint64_t end = uv_now(&f->loop) + ms;
    while (!exchange_done(f, r) && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void open_member(struct fixture *f, struct run *r, int i)
{
    struct fx_member *mb = &f->m[i];
    struct transport_config c = f->cfg;
    c.self_id = mb->id;
    c.cluster_id = mb->cluster_id;
    c.snap_dir = mb->snap_dir;
    c.seed = (uint64_t)i;
    fx_log_init(mb);
    c.log = &mb->log;
    if (transport_open(&f->loop, &c, fx_host_cbs(), mb, &mb->t) != 0)
        return;
    mb->open = true;
    r->open[i] = true;
    if (transport_listen(mb->t, "http://127.0.0.1:0", NULL) != 0)
        return;
    mb->port = transport_listen_port(mb->t, 0);
    snprintf(mb->url, sizeof(mb->url), "http://127.0.0.1:%u",
             (unsigned)mb->port);
}

static void one_exchange(struct fixture *f, struct run *r)
{
    open_member(f, r, 0);
    open_member(f, r, 1);
    if (!r->open[0] || !r->open[1])
        return;
    for (int i = 0; i < 2; i++) {
        const char *urls[1] = {f->m[1 - i].url};
        if (f->m[1 - i].port != 0)
            (void)transport_add_peer(f->m[i].t, f->m[1 - i].id, urls, 1, NULL);
    }
    for (uint64_t s = 0; s < MSGS; s++)
        if (fx_send_app(f, 0, 1, s, 100) == 0)
            r->sent++;
    struct raft_snapshot snap = {.meta = {.index = 3, .term = 1}};
    struct raft_message m = {.type = RAFT_MSG_SNAP,
                             .from = 1,
                             .to = 2,
                             .term = 1,
                             .snapshot = &snap};
    if (transport_send_snapshot(f->m[0].t, &m, r->body, NULL) != 0)
        f->m[0].n_snap_status = 1; /* nothing to wait for */
}

static void check_safety(struct fixture *f)
{
    /* In order, no duplicates, right contents. */
    raft_index last = 0;
    for (size_t k = 0; k < f->m[1].n_got; k++) {
        struct fx_got *g = &f->m[1].got[k];
        if (k > 0)
            assert_true(g->index > last);
        last = g->index;
        assert_int_equal(g->data_crc, fx_app_crc(g->index, 100));
    }
    assert_true(f->m[1].n_snaps <= 1);
}

static void every_allocation_fails_once(void **state)
{
    (void)state;
    /* How many allocations one exchange makes. */
    struct fixture f;
    fx_init(&f);
    f.cfg.snap_stall_ms = 500;
    struct run r = {0};
    snprintf(r.body, sizeof(r.body), "%s/body", f.root);
    FILE *fp = fopen(r.body, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 200000; i++)
        fputc(i * 7, fp);
    fclose(fp);
    uint64_t before = cairn_mem_alloc_count();
    one_exchange(&f, &r);
    fx_run_until(&f, exchange_done, &r);
    assert_int_equal(r.sent, MSGS);
    assert_int_equal(f.m[1].n_got, MSGS);
    assert_int_equal(f.m[0].snap_status, 0);
    fx_fini(&f);
    uint64_t n = cairn_mem_alloc_count() - before;
    assert_true(n > 20);
    const char *all = getenv("CAIRN_TEST_LONG");
    uint64_t step = all != NULL ? 1 : 1 + n / 40;

    for (uint64_t k = 0; k < n + 5; k += step) {
        fx_init(&f);
        f.cfg.snap_stall_ms = 500;
        memset(&r, 0, sizeof(r));
        snprintf(r.body, sizeof(r.body), "%s/body", f.root);
        fp = fopen(r.body, "wb");
        assert_non_null(fp);
        for (int i = 0; i < 200000; i++)
            fputc(i * 7, fp);
        fclose(fp);
        cairn_mem_fault_set((int)k, 1);
        one_exchange(&f, &r);
        run_a_while(&f, &r, 400);
        cairn_mem_fault_set(-1, 0);
        check_safety(&f);
        bool done = exchange_done(&f, &r);
        fx_fini(&f);
        if (getenv("CAIRN_TEST_LOG") != NULL)
            fprintf(stderr, "fault at %llu: %s\n", (unsigned long long)k,
                    done ? "completed" : "cut short");
    }
}

int test_faults_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_fails_once),
    };
    return cmocka_run_group_tests_name("transport_faults", tests, NULL, NULL);
}
