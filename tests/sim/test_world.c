/* The simulated world: event order on simulated time, trace hashing, the
 * network's partitions, loss, duplication and FIFO links, and the disk's
 * crash semantics (synced data survives, unsynced is lost or torn). */
#include "sim_tests.h"
#include "world.h"

struct order_log {
    uint64_t seen[16];
    int n;
};

static void record(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)b;
    struct order_log *o = arg;
    o->seen[o->n++] = a * 1000000 + w->now_us;
}

static void events_run_in_time_order(void **state)
{
    (void)state;
    struct sim_world w;
    assert_int_equal(sim_world_init(&w, 1, 64, 8), 0);
    struct order_log o = {.n = 0};
    sim_world_schedule(&w, 30, record, NULL, &o, 1, 0);
    sim_world_schedule(&w, 10, record, NULL, &o, 2, 0);
    sim_world_schedule(&w, 10, record, NULL, &o, 3, 0); /* tie: after 2 */
    sim_world_schedule(&w, 20, record, NULL, &o, 4, 0);
    assert_true(sim_world_step(&w, UINT64_MAX));
    assert_true(sim_world_step(&w, UINT64_MAX));
    assert_false(sim_world_step(&w, 15)); /* next is at 20 */
    while (sim_world_step(&w, UINT64_MAX))
        ;
    assert_int_equal(o.n, 4);
    assert_int_equal(o.seen[0], 2000010);
    assert_int_equal(o.seen[1], 3000010);
    assert_int_equal(o.seen[2], 4000020);
    assert_int_equal(o.seen[3], 1000030);
    assert_int_equal(w.now_us, 30);
    sim_world_close(&w);
}

static void trace_hash_and_ring(void **state)
{
    (void)state;
    struct sim_world a, b;
    assert_int_equal(sim_world_init(&a, 1, 8, 4), 0);
    assert_int_equal(sim_world_init(&b, 1, 8, 4), 0);
    for (int i = 0; i < 10; i++) {
        sim_tracef(&a, "line %d", i);
        sim_tracef(&b, "line %d", i);
    }
    assert_true(a.trace.hash == b.trace.hash);
    sim_tracef(&b, "extra");
    assert_true(a.trace.hash != b.trace.hash);
    /* Only the last four lines are kept, oldest first. */
    char out[1024] = {0};
    FILE *f = fmemopen(out, sizeof(out) - 1, "w");
    assert_non_null(f);
    sim_trace_dump(&a, f);
    fclose(f);
    assert_null(strstr(out, "line 5\n"));
    assert_non_null(strstr(out, "0.000000 line 6\n0.000000 line 7\n"));
    assert_non_null(strstr(out, "line 9\n"));
    sim_world_close(&a);
    sim_world_close(&b);
}

struct inbox {
    int n;
    int from[256];
    int to[256];
    uint8_t first[256];
};

static void deliver(void *arg, int from, int to, const uint8_t *bytes,
                    size_t len)
{
    struct inbox *in = arg;
    assert_true(len >= 1);
    in->from[in->n] = from;
    in->to[in->n] = to;
    in->first[in->n] = bytes[0];
    in->n++;
}

static void run_all(struct sim_world *w)
{
    while (sim_world_step(w, UINT64_MAX))
        ;
}

static void net_partitions_and_fifo(void **state)
{
    (void)state;
    struct sim_world w;
    assert_int_equal(sim_world_init(&w, 7, 1024, 16), 0);
    struct sim_link def = {.latency_us_min = 100, .latency_us_max = 5000};
    struct sim_net net;
    struct inbox in = {.n = 0};
    sim_net_init(&net, &w, 3, &def, 100, deliver, &in);
    /* FIFO per link despite random latencies. */
    for (uint8_t i = 0; i < 20; i++)
        sim_net_send(&net, 0, 1, &i, 1);
    run_all(&w);
    assert_int_equal(in.n, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(in.first[i], i);
    /* A one-way cut drops 0->1 but not 1->0. */
    in.n = 0;
    sim_net_cut(&net, 0, 1, true);
    uint8_t x = 42;
    sim_net_send(&net, 0, 1, &x, 1);
    sim_net_send(&net, 1, 0, &x, 1);
    run_all(&w);
    assert_int_equal(in.n, 1);
    assert_int_equal(in.from[0], 1);
    assert_true(sim_net_has_cuts(&net));
    /* A split cuts messages already in flight. */
    sim_net_heal(&net);
    assert_false(sim_net_has_cuts(&net));
    in.n = 0;
    sim_net_send(&net, 2, 0, &x, 1);
    sim_net_split(&net, 1u << 2);
    run_all(&w);
    assert_int_equal(in.n, 0);
    sim_net_heal(&net);
    /* Isolation, then loss and duplication. */
    sim_net_isolate(&net, 1);
    sim_net_send(&net, 0, 1, &x, 1);
    sim_net_send(&net, 0, 2, &x, 1);
    run_all(&w);
    assert_int_equal(in.n, 1);
    sim_net_heal(&net);
    in.n = 0;
    net.link[0][2].loss_p = 1.0;
    net.link[2][0].dup_p = 1.0;
    sim_net_send(&net, 0, 2, &x, 1);
    sim_net_send(&net, 2, 0, &x, 1);
    run_all(&w);
    assert_int_equal(in.n, 2);
    assert_int_equal(in.from[0], 2);
    assert_int_equal(in.from[1], 2);
    /* The in-flight bound drops the excess. */
    in.n = 0;
    for (int i = 0; i < 150; i++)
        sim_net_send(&net, 1, 2, &x, 1);
    run_all(&w);
    assert_int_equal(in.n, 100);
    sim_world_close(&w);
}

static void net_pending_freed_at_close(void **state)
{
    (void)state;
    struct sim_world w;
    assert_int_equal(sim_world_init(&w, 7, 1024, 16), 0);
    struct sim_link def = {.latency_us_min = 100, .latency_us_max = 200};
    struct sim_net net;
    struct inbox in = {.n = 0};
    sim_net_init(&net, &w, 2, &def, 100, deliver, &in);
    uint8_t x = 1;
    sim_net_send(&net, 0, 1, &x, 1);
    /* Closing with the message in flight must not leak (ASan checks). */
    sim_world_close(&w);
    assert_int_equal(in.n, 0);
}

struct recs {
    int n;
    size_t len[16];
};

static void count_rec(void *arg, const uint8_t *p, size_t len)
{
    struct recs *r = arg;
    (void)p;
    r->len[r->n++] = len;
}

static void disk_crash_semantics(void **state)
{
    (void)state;
    struct sim_disk d;
    struct prng rng;
    prng_seed(&rng, 3);
    sim_disk_init(&d, 0);
    uint8_t data[100];
    memset(data, 0xab, sizeof(data));
    assert_int_equal(sim_rec_append(&d, "log", data, 10), 0);
    assert_int_equal(sim_rec_append(&d, "log", data, 20), 0);
    assert_int_equal(sim_disk_sync(&d, "log"), 0);
    assert_int_equal(sim_rec_append(&d, "log", data, 30), 0);
    assert_int_equal(sim_disk_unsynced(&d), 18 + 28 + 38);
    /* Without tearing, the unsynced record is gone. */
    sim_disk_crash(&d, &rng, 0.0);
    struct recs r = {.n = 0};
    assert_int_equal(sim_rec_scan(&d, "log", &r, count_rec), 18 + 28);
    assert_int_equal(r.n, 2);
    assert_int_equal(sim_disk_unsynced(&d), 0);
    /* With tearing, a prefix of the unsynced tail may survive; the scan
     * stops at the torn record. */
    int torn_seen = 0;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(sim_rec_append(&d, "log", data, 60), 0);
        sim_disk_crash(&d, &rng, 1.0);
        const struct buf *b = sim_disk_read(&d, "log");
        assert_true(b->len >= 46 && b->len < 46 + 68);
        torn_seen += b->len > 46;
        r.n = 0;
        size_t end = sim_rec_scan(&d, "log", &r, count_rec);
        assert_int_equal(end, 46);
        assert_int_equal(r.n, 2);
        assert_int_equal(sim_disk_truncate(&d, "log", end), 0);
        assert_int_equal(sim_disk_sync(&d, "log"), 0);
    }
    assert_true(torn_seen > 40);
    /* A replaced file is never torn: it falls back to its synced content. */
    assert_int_equal(sim_disk_replace(&d, "meta", data, 5), 0);
    assert_int_equal(sim_disk_sync(&d, "meta"), 0);
    assert_int_equal(sim_disk_replace(&d, "meta", data, 50), 0);
    sim_disk_crash(&d, &rng, 1.0);
    assert_int_equal(sim_disk_read(&d, "meta")->len, 5);
    /* Injected failures. */
    d.fail_sync = true;
    assert_int_equal(sim_disk_append(&d, "log", data, 1), 0);
    assert_int_equal(sim_disk_sync(&d, "log"), CAIRN_EIO);
    assert_int_equal(sim_disk_sync(&d, "log"), 0);
    d.size_bytes_max = 60;
    assert_int_equal(sim_disk_append(&d, "log", data, 100), CAIRN_ENOSPC);
    sim_disk_remove(&d, "meta");
    assert_null(sim_disk_read(&d, "meta"));
    sim_disk_close(&d);
}

int test_world_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(events_run_in_time_order),
        cmocka_unit_test(trace_hash_and_ring),
        cmocka_unit_test(net_partitions_and_fifo),
        cmocka_unit_test(net_pending_freed_at_close),
        cmocka_unit_test(disk_crash_semantics),
    };
    return cmocka_run_group_tests_name("world", tests, NULL, NULL);
}
