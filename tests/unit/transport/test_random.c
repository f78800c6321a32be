/* Random runs: three members, a seeded mix of message bursts, snapshots,
 * peer removals, re-additions and URL updates, members closed and reopened
 * on their ports, with the loop turning in between. Whatever the order:
 * messages from one sender arrive in order and never twice, every
 * snapshot sent is reported exactly once, nothing crashes or leaks.
 * CAIRN_TEST_SEED picks the seed; CAIRN_TEST_LONG runs more steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "tests.h"

#define RN 3

struct rstate {
    uint64_t seq[RN][RN]; /* next message index from i to j */
    uint64_t snaps_started[RN];
    uint64_t snaps_reported[RN]; /* across reopenings */
    uint16_t port[RN];
    char body[PATH_MAX];
};

static size_t check_order(struct fixture *f, int i, size_t *checked,
                          raft_index *last, bool *seen)
{
    struct fx_member *mb = &f->m[i];
    size_t n = mb->n_got - *checked;
    for (size_t k = *checked; k < mb->n_got; k++) {
        struct fx_got *g = &mb->got[k];
        assert_true(g->from >= 1 && g->from <= RN);
        if (seen[g->from])
            assert_true(g->index > last[g->from]);
        seen[g->from] = true;
        last[g->from] = g->index;
    }
    *checked = mb->n_got;
    return n;
}

static void random_run(uint64_t seed, int steps)
{
    struct fixture f;
    fx_init(&f);
    f.cfg.snap_chunk_bytes = 16 << 10;
    struct rstate rs;
    memset(&rs, 0, sizeof(rs));
    struct prng r;
    prng_seed(&r, seed);
    snprintf(rs.body, sizeof(rs.body), "%s/body", f.root);
    FILE *fp = fopen(rs.body, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 300000; i++)
        fputc((int)prng_below(&r, 256), fp);
    fclose(fp);
    for (int i = 0; i < RN; i++) {
        fx_open(&f, i, 0);
        rs.port[i] = f.m[i].port;
    }
    fx_mesh(&f, RN);
    size_t checked[RN] = {0};
    size_t delivered = 0;
    raft_index last[RN][RN + 1];
    bool seen[RN][RN + 1];
    memset(last, 0, sizeof(last));
    memset(seen, 0, sizeof(seen));

    for (int step = 0; step < steps; step++) {
        int i = (int)prng_below(&r, RN);
        int j = (int)((i + 1 + prng_below(&r, RN - 1)) % RN);
        uint64_t what = prng_below(&r, 100);
        if (!f.m[i].open && !f.m[i].closed) {
            uv_run(&f.loop, UV_RUN_NOWAIT); /* its close is completing */
        } else if (!f.m[i].open) {
            /* Reopen on its port with fresh peers; the others still
             * know it. */
            rs.snaps_reported[i] += f.m[i].n_snap_status;
            f.m[i].n_snap_status = 0;
            f.m[i].n_got = 0;
            checked[i] = 0;
            memset(seen[i], 0, sizeof(seen[i]));
            fx_open(&f, i, rs.port[i]);
            for (int k = 0; k < RN; k++)
                if (k != i)
                    fx_peer(&f, i, k);
        } else if (what < 55) {
            int n = 1 + (int)prng_below(&r, 30);
            for (int k = 0; k < n; k++) {
                int rv = fx_send_app(&f, i, j, rs.seq[i][j], 20);
                rs.seq[i][j]++;
                assert_true(rv == 0 || rv == CAIRN_EFULL ||
                            rv == CAIRN_ENOTFOUND);
            }
        } else if (what < 65) {
            struct raft_snapshot snap = {
                .meta = {.index = (raft_index)step, .term = 1}};
            struct raft_message m = {.type = RAFT_MSG_SNAP,
                                     .from = f.m[i].id,
                                     .to = f.m[j].id,
                                     .term = 1,
                                     .snapshot = &snap};
            int rv = transport_send_snapshot(f.m[i].t, &m, rs.body, NULL);
            assert_true(rv == 0 || rv == CAIRN_EBUSY || rv == CAIRN_ENOTFOUND);
            if (rv == 0)
                rs.snaps_started[i]++;
        } else if (what < 72) {
            int rv = transport_remove_peer(f.m[i].t, f.m[j].id);
            assert_true(rv == 0 || rv == CAIRN_ENOTFOUND);
        } else if (what < 80) {
            char url[64];
            snprintf(url, sizeof(url), "http://127.0.0.1:%u",
                     (unsigned)rs.port[j]);
            const char *urls[1] = {url};
            int rv = transport_add_peer(f.m[i].t, f.m[j].id, urls, 1, NULL);
            assert_true(rv == 0 || rv == CAIRN_EEXISTS);
        } else if (what < 84) {
            char url[64];
            snprintf(url, sizeof(url), "http://127.0.0.1:%u",
                     (unsigned)rs.port[j]);
            const char *urls[1] = {url};
            int rv = transport_update_peer(f.m[i].t, f.m[j].id, urls, 1, NULL);
            assert_true(rv == 0 || rv == CAIRN_ENOTFOUND);
        } else if (what < 87) {
            fx_close(&f, i);
        } else {
            int turns = 1 + (int)prng_below(&r, 20);
            for (int k = 0; k < turns; k++)
                uv_run(&f.loop, UV_RUN_NOWAIT);
        }
        uv_run(&f.loop, UV_RUN_NOWAIT);
        for (int k = 0; k < RN; k++)
            if (f.m[k].open)
                delivered += check_order(&f, k, &checked[k], last[k], seen[k]);
    }
    for (int i = 0; i < RN; i++)
        if (f.m[i].open)
            fx_close(&f, i);
    fx_fini(&f);
    /* Every snapshot that started was reported, once. */
    uint64_t started = 0;
    for (int i = 0; i < RN; i++) {
        assert_int_equal(rs.snaps_reported[i] + f.m[i].n_snap_status,
                         rs.snaps_started[i]);
        started += rs.snaps_started[i];
    }
    /* The run did something. */
    assert_true(delivered > 10);
    assert_true(started > 0);
    if (getenv("CAIRN_TEST_LOG") != NULL)
        fprintf(stderr, "seed %llu: %zu delivered, %llu snapshots\n",
                (unsigned long long)seed, delivered,
                (unsigned long long)started);
}

static void random_operations(void **state)
{
    (void)state;
    const char *env = getenv("CAIRN_TEST_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : 20261129;
    int runs = getenv("CAIRN_TEST_LONG") != NULL ? 40 : 4;
    for (int k = 0; k < runs; k++) {
        uint64_t s = seed + (uint64_t)k;
        print_message("transport random run, seed %llu\n",
                      (unsigned long long)s);
        random_run(s, 400);
    }
}

int test_random_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_operations),
    };
    return cmocka_run_group_tests_name("transport_random", tests, NULL, NULL);
}
