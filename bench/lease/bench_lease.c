/* bench-lease: the lessor's cost when a client fleet dies. N leases of one
 * TTL (N = 100,000 unless given as the first argument; K keys attached to
 * each, K = 0 unless given as the second) are granted in apply batches of
 * 1,000 and the member becomes primary; then every lease has expired and
 * the leader revokes them as node's lease_tick does: up to 100 expired ids
 * a tick, revoked in one apply batch, then the checkpoints due. Also the
 * cost of a tick with nothing to do, and of renewing every lease. Prints
 * RESULT lines `lease_grant`, `lease_expire`, `lease_tick_idle` and
 * `lease_renew` (CPU seconds: the machine is shared). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lease/lease.h"

#include "../bench_util.h"

#define BATCH 1000
#define PER_TICK 100
#define TTL_S 10

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench-lease: %s: %d\n", what, rc);
        exit(1);
    }
}

static void put_key(struct mvcc_store *s, struct mvcc_arena *a, uint64_t i,
                    int64_t lease)
{
    char k[32];
    int len = snprintf(k, sizeof(k), "fleet/%016" PRIx64, i);
    struct mvcc_put_req q = {.key = (const uint8_t *)k,
                             .key_len = (size_t)len,
                             .value = (const uint8_t *)"alive",
                             .value_len = 5,
                             .lease = lease};
    struct mvcc_put_resp r;
    check(mvcc_put(s, &q, a, &r), "put");
    mvcc_arena_reset(a);
}

static void grant_all(struct mvcc_store *s, struct lessor *l, uint64_t n,
                      uint64_t keys, uint64_t *ci)
{
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    for (uint64_t i = 0; i < n; i += BATCH) {
        check(mvcc_batch_begin(s), "begin");
        for (uint64_t j = i; j < i + BATCH && j < n; j++) {
            int64_t id, ttl;
            check(lease_grant(l, 0, TTL_S, 0, &id, &ttl), "grant");
            for (uint64_t k = 0; k < keys; k++)
                put_key(s, &a, j * keys + k, id);
        }
        check(mvcc_batch_commit(s, ++*ci), "commit");
    }
    printf("RESULT lease_grant n=%" PRIu64 " keys=%" PRIu64
           " wall_s=%.3f cpu_s=%.3f\n",
           n, keys, bench_now_s() - t0, bench_cpu_s() - c0);
    mvcc_arena_free(&a);
}

/* Every lease expired: revoke them tick by tick; the lessor's own calls
 * (lease_expired, lease_checkpoints_due) are timed apart too. */
static void expire_all(struct mvcc_store *s, struct lessor *l, uint64_t n,
                       uint64_t *ci)
{
    int64_t now = 1000000000; /* past every spread expiry */
    double t0 = bench_now_s(), c0 = bench_cpu_s(), pick_cpu = 0, worst_tick = 0;
    uint64_t revoked = 0, ticks = 0;
    for (;;) {
        double tt = bench_now_s(), pc = bench_cpu_s();
        int64_t ids[PER_TICK], cids[128], rem[128];
        size_t k = lease_expired(l, now, ids, PER_TICK);
        (void)lease_checkpoints_due(l, now, cids, rem, 128);
        pick_cpu += bench_cpu_s() - pc;
        if (k == 0)
            break;
        check(mvcc_batch_begin(s), "begin");
        for (size_t i = 0; i < k; i++)
            check(lease_revoke(l, ids[i]), "revoke");
        check(mvcc_batch_commit(s, ++*ci), "commit");
        revoked += k;
        ticks++;
        if (bench_now_s() - tt > worst_tick)
            worst_tick = bench_now_s() - tt;
        now += 100;
    }
    double wall = bench_now_s() - t0, cpu = bench_cpu_s() - c0;
    printf("RESULT lease_expire n=%" PRIu64 " revoked=%" PRIu64
           " ticks=%" PRIu64 " wall_s=%.3f cpu_s=%.3f cpu_us_per_lease=%.2f"
           " pick_cpu_s=%.3f worst_tick_ms=%.2f\n",
           n, revoked, ticks, wall, cpu, cpu * 1e6 / (double)(n ? n : 1),
           pick_cpu, worst_tick * 1e3);
}

/* A tick of a primary with nothing expired and no checkpoint due. */
static void idle_ticks(struct lessor *l, uint64_t n)
{
    enum { TICKS = 1000 };
    double c0 = bench_cpu_s();
    for (int t = 0; t < TICKS; t++) {
        int64_t ids[PER_TICK], cids[128], rem[128];
        (void)lease_expired(l, 1000 + t, ids, PER_TICK);
        (void)lease_checkpoints_due(l, 1000 + t, cids, rem, 128);
    }
    printf("RESULT lease_tick_idle n=%" PRIu64
           " ticks=%d cpu_us_per_tick=%.2f\n",
           n, TICKS, (bench_cpu_s() - c0) * 1e6 / TICKS);
}

static void renew_all(struct lessor *l, uint64_t n)
{
    double c0 = bench_cpu_s();
    uint64_t done = 0;
    /* lease_list gives the ids; renew each once at t = 2 s. */
    int64_t *all = malloc(n * sizeof(*all));
    if (all == NULL)
        exit(1);
    size_t got = lease_list(l, all, n);
    double list_cpu = bench_cpu_s() - c0;
    c0 = bench_cpu_s();
    for (size_t i = 0; i < got && i < n; i++) {
        int64_t ttl;
        bool clear;
        if (lease_renew(l, all[i], 2000, &ttl, &clear) == 0)
            done++;
    }
    printf("RESULT lease_renew n=%" PRIu64 " renewed=%" PRIu64
           " cpu_us_per_renew=%.3f list_cpu_ms=%.2f\n",
           n, done, (bench_cpu_s() - c0) * 1e6 / (double)(done ? done : 1),
           list_cpu * 1e3);
    free(all);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    uint64_t keys = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
    char dir[] = "/tmp/cairn-bench-lease-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    struct mvcc_options o = {.dir = dir, .quota_bytes = (size_t)8 << 30};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    if (mvcc_open(&o, &s, &em) != 0) {
        fprintf(stderr, "bench-lease: %s\n", em.text);
        return 1;
    }
    struct lessor *l;
    check(lease_open(s, NULL, &l), "lease_open");
    uint64_t ci = 0;
    grant_all(s, l, n, keys, &ci);
    lease_promote(l, 0, 0);
    idle_ticks(l, n);
    renew_all(l, n);
    expire_all(s, l, n, &ci);
    lease_close(l);
    mvcc_close(s);
    bench_rm_store(dir);
    return 0;
}
