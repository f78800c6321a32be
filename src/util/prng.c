/* xoshiro256** and splitmix64, after Blackman and Vigna's published algorithms.
 */
#include "util/prng.h"

#include "util/assert.h"

uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void prng_seed(struct prng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&st);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t prng_next(struct prng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t prng_below(struct prng *r, uint64_t n)
{
    CAIRN_ASSERT(n > 0);
    /* Rejection sampling: discard the top partial bucket. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;
    do {
        x = prng_next(r);
    } while (x >= limit);
    return x % n;
}

uint64_t prng_range(struct prng *r, uint64_t lo, uint64_t hi)
{
    CAIRN_ASSERT(lo <= hi);
    if (lo == 0 && hi == UINT64_MAX)
        return prng_next(r);
    return lo + prng_below(r, hi - lo + 1);
}

double prng_double(struct prng *r)
{
    return (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

bool prng_chance(struct prng *r, double p)
{
    return prng_double(r) < p;
}

uint64_t prng_fork_seed(struct prng *r)
{
    return prng_next(r);
}
