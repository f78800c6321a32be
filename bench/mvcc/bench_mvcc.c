/* bench-mvcc: puts in apply batches of 1,000, point gets, 1,000-key ranges,
 * open time, memory beyond LMDB's mapped pages and file size of an mvcc
 * store with N keys (16-byte keys, 256-byte values; N = 1,000,000 unless
 * given as the first argument), then the cost of matching events against
 * many range watchers (one watch hub, W prefix watchers, W = 10,000 unless
 * given as the second argument, against 1 watcher in the same run). Prints
 * RESULT lines `mvcc` and `mvcc_watch`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mvcc/mvcc.h"

#include "../bench_util.h"

#define BATCH 1000
#define VALUE_BYTES 256
#define RANGE_KEYS 1000

/* The i-th key: 16 hex digits of a 64-bit mix of i, so inserts land all
 * over the tree as real keys do. Formatted by hand: snprintf cost about
 * 900 instructions a key, a tenth of a put, which is not the store's. */
static void key_of(uint64_t i, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t st = i, v = splitmix64(&st);
    for (int d = 15; d >= 0; d--) {
        out[d] = hex[v & 15];
        v >>= 4;
    }
    out[16] = 0;
}

/* Resident anonymous memory (heap, stacks): what is not LMDB's map. */
static long rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static struct mvcc_store *open_store(const char *dir)
{
    struct mvcc_options o = {.dir = dir, .quota_bytes = (size_t)8 << 30};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    if (mvcc_open(&o, &s, &em) != 0) {
        fprintf(stderr, "bench-mvcc: %s\n", em.text);
        exit(1);
    }
    return s;
}

struct watch_count {
    uint64_t events;
};

static int watch_cb(void *arg, const struct mvcc_watch_resp *resp)
{
    ((struct watch_count *)arg)->events += resp->n_events;
    return 0;
}

/* Events per CPU second delivered by a hub with `watchers` prefix watchers
 * ("w%06u/" each), for `events` puts each under one random prefix: every
 * event matches exactly one watcher, so the rate shows what matching costs
 * per event as the watcher count grows. */
static double watch_rate(unsigned watchers, unsigned events)
{
    char dir[] = "/tmp/cairn-bench-mvcc-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    struct mvcc_store *s = open_store(dir);
    struct watch_count wc = {0};
    struct mvcc_watch_hub_options ho = {.max_watchers = watchers + 1};
    struct mvcc_watch_hub *h;
    if (mvcc_watch_hub_init(s, &ho, &wc, watch_cb, &h) != 0)
        exit(1);
    for (unsigned i = 0; i < watchers; i++) {
        char k[16], e[16];
        snprintf(k, sizeof(k), "w%06u/", i);
        snprintf(e, sizeof(e), "w%06u0", i); /* '0' follows '/' */
        struct mvcc_watch_req q = {.key = (const uint8_t *)k,
                                   .key_len = strlen(k),
                                   .end = (const uint8_t *)e,
                                   .end_len = strlen(e)};
        int64_t id = -1;
        if (mvcc_watch_create(h, &q, &id) != 0)
            exit(1);
    }
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    struct prng p;
    prng_seed(&p, 7);
    uint64_t ci = 0;
    for (unsigned i = 0; i < events; i += BATCH) {
        if (mvcc_batch_begin(s) != 0)
            exit(1);
        for (unsigned j = i; j < i + BATCH && j < events; j++) {
            char k[24];
            snprintf(k, sizeof(k), "w%06u/%u",
                     (unsigned)prng_below(&p, watchers), j);
            struct mvcc_put_req q = {.key = (const uint8_t *)k,
                                     .key_len = strlen(k),
                                     .value = (const uint8_t *)"v",
                                     .value_len = 1};
            struct mvcc_put_resp r;
            if (mvcc_put(s, &q, &a, &r) != 0)
                exit(1);
            mvcc_arena_reset(&a);
        }
        if (mvcc_batch_commit(s, ++ci) != 0)
            exit(1);
    }
    double c0 = bench_cpu_s();
    bool more = true;
    while (more)
        if (mvcc_watch_hub_poll(h, &more) != 0)
            exit(1);
    double cpu = bench_cpu_s() - c0;
    if (wc.events != events) {
        fprintf(stderr, "bench-mvcc: watch: %" PRIu64 " events of %u\n",
                wc.events, events);
        exit(1);
    }
    mvcc_watch_hub_close(h);
    mvcc_arena_free(&a);
    mvcc_close(s);
    bench_rm_store(dir);
    return (double)events / cpu;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    if (n < BATCH)
        n = BATCH;
    char dir[] = "/tmp/cairn-bench-mvcc-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    long rss0 = rss_anon_kb();
    struct mvcc_store *s = open_store(dir);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    uint8_t value[VALUE_BYTES];
    memset(value, 'v', sizeof(value));
    char key[17];
    int rc = 0;

    double t0 = bench_now_s(), c0 = bench_cpu_s();
    uint64_t ci = 0;
    for (uint64_t i = 0; i < n && rc == 0; i += BATCH) {
        rc = mvcc_batch_begin(s);
        for (uint64_t j = i; j < i + BATCH && j < n && rc == 0; j++) {
            key_of(j, key);
            struct mvcc_put_req q = {.key = (const uint8_t *)key,
                                     .key_len = 16,
                                     .value = value,
                                     .value_len = sizeof(value)};
            struct mvcc_put_resp r;
            rc = mvcc_put(s, &q, &a, &r);
            mvcc_arena_reset(&a);
        }
        if (rc == 0)
            rc = mvcc_batch_commit(s, ++ci);
    }
    if (rc == 0)
        rc = mvcc_sync(s);
    double put_s = bench_now_s() - t0, put_cpu = bench_cpu_s() - c0;
    if (rc != 0) {
        fprintf(stderr, "bench-mvcc: put: %s\n", cairn_strerror(rc));
        return 1;
    }

    /* Reopen: the open time of a populated store. */
    mvcc_close(s);
    t0 = bench_now_s();
    s = open_store(dir);
    double open_ms = (bench_now_s() - t0) * 1000;

    struct prng p;
    prng_seed(&p, 42);
    uint64_t gets = n;
    t0 = bench_now_s();
    c0 = bench_cpu_s();
    for (uint64_t i = 0; i < gets; i++) {
        key_of(prng_below(&p, n), key);
        struct mvcc_range_req q = {.key = (const uint8_t *)key, .key_len = 16};
        struct mvcc_range_resp r;
        rc = mvcc_range(s, &q, &a, &r);
        if (rc != 0 || r.n_kvs != 1) {
            fprintf(stderr, "bench-mvcc: get %s: %s\n", key,
                    cairn_strerror(rc));
            return 1;
        }
        mvcc_arena_reset(&a);
    }
    double get_s = bench_now_s() - t0, get_cpu = bench_cpu_s() - c0;

    /* The same gets, 64 to a reader (one snapshot per loop turn). */
    t0 = bench_now_s();
    c0 = bench_cpu_s();
    for (uint64_t i = 0; i < gets; i += 64) {
        struct mvcc_reader *rdr;
        rc = mvcc_reader_begin(s, &rdr);
        for (uint64_t j = i; rc == 0 && j < i + 64 && j < gets; j++) {
            key_of(prng_below(&p, n), key);
            struct mvcc_range_req q = {.key = (const uint8_t *)key,
                                       .key_len = 16};
            struct mvcc_range_resp r;
            rc = mvcc_reader_range(rdr, &q, &a, &r);
            if (rc == 0 && r.n_kvs != 1)
                rc = CAIRN_ENOTFOUND;
            mvcc_arena_reset(&a);
        }
        if (rc == 0)
            mvcc_reader_end(rdr);
        if (rc != 0) {
            fprintf(stderr, "bench-mvcc: reader get: %s\n", cairn_strerror(rc));
            return 1;
        }
    }
    double batched_get_s = bench_now_s() - t0,
           batched_get_cpu = bench_cpu_s() - c0;

    /* Ranges over key intervals holding about RANGE_KEYS keys. */
    uint64_t ranges = 2000;
    uint64_t width = (UINT64_MAX / n) * RANGE_KEYS;
    uint64_t got = 0;
    t0 = bench_now_s();
    c0 = bench_cpu_s();
    for (uint64_t i = 0; i < ranges; i++) {
        uint64_t lo = prng_next(&p) % (UINT64_MAX - width);
        char k1[17], k2[17];
        snprintf(k1, sizeof(k1), "%016" PRIx64, lo);
        snprintf(k2, sizeof(k2), "%016" PRIx64, lo + width);
        struct mvcc_range_req q = {.key = (const uint8_t *)k1,
                                   .key_len = 16,
                                   .end = (const uint8_t *)k2,
                                   .end_len = 16};
        struct mvcc_range_resp r;
        rc = mvcc_range(s, &q, &a, &r);
        if (rc != 0) {
            fprintf(stderr, "bench-mvcc: range: %s\n", cairn_strerror(rc));
            return 1;
        }
        got += r.n_kvs;
        mvcc_arena_reset(&a);
    }
    double range_s = bench_now_s() - t0, range_cpu = bench_cpu_s() - c0;

    struct mvcc_status st;
    mvcc_status_get(s, &st);
    long rss1 = rss_anon_kb();
    double anon_mb = (double)(rss1 - rss0) / 1024.0;
    printf("# %" PRIu64 " keys; %" PRIu64 " ranges of %.0f keys on average; "
           "anonymous memory %.1f bytes/key\n",
           n, ranges, (double)got / (double)ranges,
           (double)(rss1 - rss0) * 1024.0 / (double)n);
    printf("# gets 64 to a reader: %.0f per second, %.0f per CPU second\n",
           (double)gets / batched_get_s, (double)gets / batched_get_cpu);
    printf("# per CPU second: puts %.0f, gets %.0f, ranges %.0f\n",
           (double)n / put_cpu, (double)gets / get_cpu,
           (double)ranges / range_cpu);
    printf("RESULT mvcc puts_per_s=%.0f gets_per_s=%.0f ranges_per_s=%.0f "
           "open_ms=%.2f rss_mb=%.1f db_mb=%.1f\n",
           (double)n / put_s, (double)gets / get_s, (double)ranges / range_s,
           open_ms, anon_mb, (double)st.db_bytes / (1024.0 * 1024.0));
    mvcc_arena_free(&a);
    mvcc_close(s);
    bench_rm_store(dir);

    unsigned watchers = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 10000;
    if (watchers < 1)
        watchers = 1;
    double one = watch_rate(1, 20000), many = watch_rate(watchers, 20000);
    printf("RESULT mvcc_watch range_watchers=%u events_per_cpu_s=%.0f "
           "events_per_cpu_s_1_watcher=%.0f ratio=%.3f\n",
           watchers, many, one, many / one);
    return 0;
}
