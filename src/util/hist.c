/* hist: exponential-bucket histograms counted with relaxed atomics. */
#include "util/hist.h"

#include <string.h>
#include <time.h>

#include "util/assert.h"

void cairn_hist_init(struct cairn_hist *h, uint64_t start_ns,
                     unsigned n_buckets)
{
    CAIRN_ASSERT(start_ns > 0);
    CAIRN_ASSERT(n_buckets >= 1 && n_buckets <= CAIRN_HIST_BUCKETS_MAX);
    h->start_ns = start_ns;
    h->n_buckets = n_buckets;
    for (unsigned i = 0; i <= CAIRN_HIST_BUCKETS_MAX; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum_ns, 0);
}

void cairn_hist_observe(struct cairn_hist *h, uint64_t ns)
{
    unsigned i = 0;
    uint64_t bound = h->start_ns;
    while (i < h->n_buckets && ns > bound) {
        bound <<= 1;
        i++;
    }
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void cairn_hist_read(const struct cairn_hist *h, struct cairn_hist_snap *out)
{
    memset(out, 0, sizeof *out);
    out->start_ns = h->start_ns;
    out->n_buckets = h->n_buckets;
    for (unsigned i = 0; i <= h->n_buckets; i++) {
        /* atomic_load on a const object is fine in practice, but C11's
         * generic takes a non-const pointer. */
        out->counts[i] = atomic_load_explicit((_Atomic uint64_t *)&h->counts[i],
                                              memory_order_relaxed);
        out->count += out->counts[i];
    }
    out->sum_ns = atomic_load_explicit((_Atomic uint64_t *)&h->sum_ns,
                                       memory_order_relaxed);
}

uint64_t cairn_hist_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
