/* hist: the latency histogram of cairn-bench (see hist.h). */
#include "hist.h"

static unsigned bucket(uint64_t us)
{
    if (us < HIST_SUB)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 6 */
    unsigned sub = (unsigned)((us >> (e - 6)) & (HIST_SUB - 1));
    unsigned i = (e - 5) * HIST_SUB + sub;
    return i < HIST_EXP * HIST_SUB ? i : HIST_EXP * HIST_SUB - 1;
}

static double upper(unsigned i)
{
    if (i < HIST_SUB)
        return (double)i;
    unsigned e = i / HIST_SUB + 5, sub = i % HIST_SUB;
    uint64_t lo = ((uint64_t)1 << e) | ((uint64_t)sub << (e - 6));
    return (double)(lo + ((uint64_t)1 << (e - 6)) - 1);
}

void hist_add(struct hist *h, uint64_t us)
{
    h->b[bucket(us)]++;
    h->count++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
}

double hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.5);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_EXP * HIST_SUB; i++) {
        seen += h->b[i];
        if (seen >= want) {
            double u = upper(i);
            return u > (double)h->max_us ? (double)h->max_us : u;
        }
    }
    return (double)h->max_us;
}
