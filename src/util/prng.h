/* Seeded pseudo-random generator (xoshiro256**, seeded through splitmix64).
 * Each user owns one: a raft core's election timeouts, the simulator's every
 * choice. Same seed, same sequence, on every platform. Not for secrets. */
#ifndef CAIRN_UTIL_PRNG_H
#define CAIRN_UTIL_PRNG_H

#include <stdbool.h>
#include <stdint.h>

struct prng {
    uint64_t s[4];
};

void prng_seed(struct prng *r, uint64_t seed);
uint64_t prng_next(struct prng *r);
/* Uniform in [0, n), without modulo bias; n > 0. */
uint64_t prng_below(struct prng *r, uint64_t n);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t prng_range(struct prng *r, uint64_t lo, uint64_t hi);
/* Uniform in [0, 1). */
double prng_double(struct prng *r);
/* True with probability p (0 <= p <= 1). */
bool prng_chance(struct prng *r, double p);
/* A new independent seed from r, for seeding a child generator. */
uint64_t prng_fork_seed(struct prng *r);

/* splitmix64 step, also useful as a 64-bit mixing hash. */
uint64_t splitmix64(uint64_t *state);

#endif
