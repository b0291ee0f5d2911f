/* rng.h — the engine's deterministic random numbers (xoshiro256**, seeded by splitmix64).
 *
 * Same seed, same sequence on every machine: this is what makes "same script, same seed, same
 * accuracy" hold. Statistics that need a library generator (bootstrap intervals) use GSL in eval/.
 */
#ifndef PARE_RNG_H
#define PARE_RNG_H

#include <stdint.h>

typedef struct pare_rng { uint64_t s[4]; } pare_rng;

void pare_rng_seed(pare_rng *r, uint64_t seed);
uint64_t pare_rng_u64(pare_rng *r);
/* Uniform in [0, 1). */
double pare_rng_uniform(pare_rng *r);
/* Uniform integer in [0, n). */
uint64_t pare_rng_below(pare_rng *r, uint64_t n);
/* Standard normal (Box–Muller). */
double pare_rng_normal(pare_rng *r);
/* An independent stream derived from r and a tag (for per-layer or per-thread streams). */
pare_rng pare_rng_split(const pare_rng *r, uint64_t tag);

#endif
