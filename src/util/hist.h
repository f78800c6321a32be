/* A latency histogram with exponential bucket bounds, as Prometheus'
 * ExponentialBuckets(start, 2, n) that etcd's metrics use, observed from any
 * thread with relaxed atomics (an fsync on the WAL thread, a commit on the
 * apply thread) and read by another (/metrics on the loop thread).
 *
 * Times are nanoseconds, so that bounds and sums stay exact integers; the
 * API renders them as seconds. A reader may see an observation's bucket
 * before its sum (or the reverse): each figure is exact, their pairing is
 * only as good as Prometheus' own client gives. */
#ifndef CAIRN_UTIL_HIST_H
#define CAIRN_UTIL_HIST_H

#include <stdatomic.h>
#include <stdint.h>

/* Most finite buckets (etcd's largest set: peer RTT, 16). */
#define CAIRN_HIST_BUCKETS_MAX 16

struct cairn_hist {
    uint64_t start_ns;  /* upper bound ("le") of the first bucket */
    unsigned n_buckets; /* finite buckets: bound i is start_ns << i */
    /* Per bucket (not cumulative); [n_buckets] counts what is above the
     * last bound (+Inf). */
    _Atomic uint64_t counts[CAIRN_HIST_BUCKETS_MAX + 1];
    _Atomic uint64_t sum_ns;
};

/* A plain copy for rendering; counts as in struct cairn_hist. */
struct cairn_hist_snap {
    uint64_t start_ns;
    unsigned n_buckets;
    uint64_t counts[CAIRN_HIST_BUCKETS_MAX + 1];
    uint64_t sum_ns;
    uint64_t count; /* sum of counts */
};

/* Zeroes h with bounds start_ns * 2^i, i < n_buckets (1..16, start > 0).
 * Not atomic: before any other thread sees h. */
void cairn_hist_init(struct cairn_hist *h, uint64_t start_ns,
                     unsigned n_buckets);
/* Counts one observation of ns in the first bucket whose bound is >= ns
 * (Prometheus' "le"). Any thread. */
void cairn_hist_observe(struct cairn_hist *h, uint64_t ns);
/* Copies h into out. Any thread. */
void cairn_hist_read(const struct cairn_hist *h, struct cairn_hist_snap *out);
/* Monotonic clock for timing what is observed. */
uint64_t cairn_hist_now_ns(void);

#endif
