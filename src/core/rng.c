/* rng.c — xoshiro256** (Blackman & Vigna) with splitmix64 seeding. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pare_rng_seed(pare_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pare_rng_u64(pare_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double pare_rng_uniform(pare_rng *r) { return (double)(pare_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t pare_rng_below(pare_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x; /* rejection: no modulo bias */
    do x = pare_rng_u64(r);
    while (x >= lim);
    return x % n;
}

double pare_rng_normal(pare_rng *r)
{
    double u1 = pare_rng_uniform(r), u2 = pare_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

pare_rng pare_rng_split(const pare_rng *r, uint64_t tag)
{
    pare_rng out;
    uint64_t seed = r->s[0] ^ rotl(r->s[1], 13) ^ rotl(r->s[2], 29) ^ rotl(r->s[3], 43) ^ (tag * 0xd1b54a32d192ed03ull);
    pare_rng_seed(&out, seed);
    return out;
}
