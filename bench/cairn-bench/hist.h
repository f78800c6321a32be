/* hist: a fixed-size latency histogram (log2 buckets split 64 ways, so
 * about 1.6% resolution) for cairn-bench: bounded memory whatever the
 * duration of the run. */
#ifndef CAIRN_BENCH_HIST_H
#define CAIRN_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_EXP 42
struct hist {
    uint64_t b[HIST_EXP * HIST_SUB];
    uint64_t count;
    double sum_us;
    uint64_t max_us;
};

void hist_add(struct hist *h, uint64_t us);
/* The latency (µs, bucket's upper edge) at quantile q in [0, 1]. */
double hist_quantile(const struct hist *h, double q);

#endif
