/* test_core.c — core: dtype conversions against bit-exact references (exhaustive for 16-bit formats,
 * the CPU's own F16C / AVX512-BF16 conversions where present), the option validator, arenas, rng
 * determinism, the learning-rate schedule and gradient clipping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/cpu.h"
#include "core/options.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "tap.h"
#include "train/train.h"

static uint32_t bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float from_bits(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* Reference f32 -> bf16 RNE by exact arithmetic on doubles: pick the nearer of the two neighbours. */
static uint16_t bf16_ref(float x)
{
    if (isnan(x)) return 0x7fc0;
    uint32_t u = bits(x);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    if ((u & 0xffff) == 0) return lo;
    double a = pare_bf16_to_f32(lo), b = (lo & 0x7fff) == 0x7f7f ? (x < 0 ? -INFINITY : INFINITY) : pare_bf16_to_f32(hi);
    if ((lo & 0x7fff) == 0x7f7f) b = copysign(pow(2, 128), x); /* next step past the largest finite */
    double da = fabs((double)x - a), db = fabs((double)x - b);
    if (da < db) return lo;
    if (db < da) return hi;
    return (lo & 1) ? hi : lo;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t f16_hw(float x)
{
    return (uint16_t)_cvtss_sh(x, 0); /* 0 = round to nearest even */
}
#endif

int main(void)
{
    tap_plan_lazy();
    const pare_cpu *cpu = pare_cpu_get();

    /* f16: every half round-trips exactly through f32 */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = pare_f16_to_f32((uint16_t)h);
        uint16_t back = pare_f32_to_f16(f);
        if (isnan(f) ? (back & 0x7c00) != 0x7c00 || !(back & 0x3ff) : back != h) bad++;
    }
    ok(bad == 0, "f16 -> f32 -> f16 exact for all 65536 halves (%d bad)", bad);
    /* bf16: likewise */
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = pare_bf16_to_f32((uint16_t)h);
        uint16_t back = pare_f32_to_bf16(f);
        if (isnan(f) ? !isnan(pare_bf16_to_f32(back)) : back != h) bad++;
    }
    ok(bad == 0, "bf16 -> f32 -> bf16 exact for all 65536 values (%d bad)", bad);

    /* f32 -> bf16 RNE against the exact reference on 2^24 patterns (every 256th f32, plus ties) */
    bad = 0;
    uint32_t first_bad = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 251) {
        float x = from_bits((uint32_t)u);
        if (isnan(x)) continue;
        if (pare_f32_to_bf16(x) != bf16_ref(x) && !bad++) first_bad = (uint32_t)u;
    }
    for (uint32_t h = 0; h < 65535; h++) { /* exact ties: halfway between consecutive bf16 values */
        float x = from_bits(((uint32_t)h << 16) | 0x8000);
        if (isnan(x) || isinf(x)) continue;
        if (pare_f32_to_bf16(x) != bf16_ref(x) && !bad++) first_bad = bits(x);
    }
    ok(bad == 0, "f32 -> bf16 round-to-nearest-even matches the exact reference (%d bad, first 0x%08x)", bad, first_bad);
    ok(pare_f32_to_bf16(3.4e38f) == 0x7f80 || pare_f32_to_bf16(3.4e38f) == 0x7f7f, "bf16 overflow");
#if defined(__x86_64__)
    if (cpu->f16c) {
        bad = 0;
        for (uint64_t u = 0; u < (1ull << 32); u += 97) {
            float x = from_bits((uint32_t)u);
            if (isnan(x)) continue;
            if (pare_f32_to_f16(x) != f16_hw(x) && !bad++) first_bad = (uint32_t)u;
        }
        ok(bad == 0, "f32 -> f16 matches the CPU's F16C conversion on 44M patterns (%d bad, first 0x%08x)", bad, first_bad);
    } else {
        ok(1, "# SKIP no F16C on this CPU");
    }
#endif
    int8_t i8[4];
    float src[4] = {127.5f, -200.f, 2.5f, -2.5f};
    pare_convert(i8, PARE_I8, src, PARE_F32, 4);
    ok(i8[0] == 127 && i8[1] == -128 && i8[2] == 2 && i8[3] == -2, "f32 -> i8 saturates and rounds half to even");
    pare_dtype dt;
    ok(pare_dtype_parse("bf16", &dt) == PARE_OK && dt == PARE_BF16, "dtype by name");
    ok(pare_dtype_parse("fp64", &dt) == PARE_EINVAL && strstr(pare_errmsg(), "f32, bf16"), "unknown dtype lists valid ones");

    /* options */
    static const pare_opt_spec specs[] = {
        {"bits", PARE_OPT_INT, "8", 2, 8, NULL, "bit width"},
        {"alpha", PARE_OPT_FLOAT, "0.5", 0, 1, NULL, "migration strength"},
        {"mode", PARE_OPT_ENUM, "a", 0, 0, "a|bb|c", "mode"},
        {"flag", PARE_OPT_BOOL, "false", 0, 0, NULL, "a flag"},
        {"path", PARE_OPT_STRING, NULL, 0, 0, NULL, "a required path"},
    };
    static const pare_schema sch = {"demo", "test schema", specs, 5};
    pare_options o;
    pare_kv kv[] = {{"path", PARE_KV_STR, 0, "x.tsv"}, {"alpha", PARE_KV_STR, 0, "0.25"}, {"mode", PARE_KV_STR, 0, "bb"},
                    {"flag", PARE_KV_BOOL, 1, NULL}};
    ok(pare_opts_resolve(&o, &sch, kv, 4) == PARE_OK, "valid options resolve");
    ok(pare_opt_int(&o, "bits") == 8 && pare_opt_num(&o, "alpha") == 0.25 && !strcmp(pare_opt_str(&o, "mode"), "bb") &&
           pare_opt_num(&o, "mode") == 1 && pare_opt_bool(&o, "flag") && !pare_opt_given(&o, "bits"),
       "defaults, text numbers, enum index, bools");
    pare_kv k1[] = {{"path", PARE_KV_STR, 0, "p"}, {"bitz", PARE_KV_NUM, 4, NULL}};
    ok(pare_opts_resolve(&o, &sch, k1, 2) == PARE_EINVAL && strstr(pare_errmsg(), "unknown option 'bitz'") &&
           strstr(pare_errmsg(), "bits, alpha, mode, flag, path"),
       "unknown key: %s", pare_errmsg());
    pare_kv k2[] = {{"path", PARE_KV_STR, 0, "p"}, {"bits", PARE_KV_NUM, 9, NULL}};
    ok(pare_opts_resolve(&o, &sch, k2, 2) == PARE_EINVAL && strstr(pare_errmsg(), "[2, 8]"), "range: %s", pare_errmsg());
    pare_kv k3[] = {{"path", PARE_KV_STR, 0, "p"}, {"bits", PARE_KV_NUM, 4.5, NULL}};
    ok(pare_opts_resolve(&o, &sch, k3, 2) == PARE_EINVAL && strstr(pare_errmsg(), "integer"), "integer: %s", pare_errmsg());
    pare_kv k4[] = {{"path", PARE_KV_STR, 0, "p"}, {"mode", PARE_KV_STR, 0, "d"}};
    ok(pare_opts_resolve(&o, &sch, k4, 2) == PARE_EINVAL && strstr(pare_errmsg(), "a|bb|c"), "enum: %s", pare_errmsg());
    pare_kv k5[] = {{"path", PARE_KV_STR, 0, "p"}, {"alpha", PARE_KV_STR, 0, "lots"}};
    ok(pare_opts_resolve(&o, &sch, k5, 2) == PARE_EINVAL && strstr(pare_errmsg(), "expects a number"), "type: %s", pare_errmsg());
    pare_kv k6[] = {{"path", PARE_KV_STR, 0, "p"}, {"flag", PARE_KV_NUM, 1, NULL}};
    ok(pare_opts_resolve(&o, &sch, k6, 2) == PARE_EINVAL && strstr(pare_errmsg(), "'flag'"), "bool type: %s", pare_errmsg());
    ok(pare_opts_resolve(&o, &sch, NULL, 0) == PARE_EINVAL && strstr(pare_errmsg(), "'path' is required"), "required: %s",
       pare_errmsg());

    /* arena */
    pare_arena a;
    ok(pare_arena_init(&a, 1000) == PARE_OK, "arena init");
    void *p1 = pare_arena_alloc(&a, 10), *p2 = pare_arena_alloc(&a, 100);
    ok(p1 && p2 && ((uintptr_t)p1 % 64) == 0 && ((uintptr_t)p2 % 64) == 0 && (char *)p2 - (char *)p1 == 64, "aligned bumps");
    ok(pare_arena_alloc(&a, 5000) == NULL && strstr(pare_errmsg(), "arena full"), "full arena is an error, not a crash");
    pare_arena_reset(&a);
    ok(a.used == 0 && a.peak == 192, "reset keeps the peak (%zu)", a.peak);
    pare_arena_free(&a);
    pare_arena_free(&a);
    ok(a.base == NULL, "free twice is safe");

    /* rng */
    pare_rng r1, r2;
    pare_rng_seed(&r1, 42);
    pare_rng_seed(&r2, 42);
    int same = 1;
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        double x = pare_rng_normal(&r1);
        same &= x == pare_rng_normal(&r2);
        sum += x, sq += x * x;
    }
    ok(same, "same seed, same sequence");
    ok(fabs(sum / 1e5) < 0.02 && fabs(sq / 1e5 - 1) < 0.02, "normal: mean %.4f, variance %.4f", sum / 1e5, sq / 1e5);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) hist[pare_rng_below(&r1, 7)]++;
    int flat = 1;
    for (int i = 0; i < 7; i++) flat &= abs(hist[i] - 10000) < 500;
    ok(flat, "below(7) is uniform");

    /* schedule and clipping */
    is_close(pare_lr_at(0, 100, 10, 1.0f, 0.1f), 0.1, 1e-6, 0, "warm-up starts at lr/warmup");
    is_close(pare_lr_at(9, 100, 10, 1.0f, 0.1f), 1.0, 1e-6, 0, "warm-up reaches lr");
    is_close(pare_lr_at(55, 100, 10, 1.0f, 0.1f), 0.55, 1e-6, 0, "cosine midpoint = (1 + min)/2");
    is_close(pare_lr_at(100, 100, 10, 1.0f, 0.1f), 0.1, 1e-6, 0, "cosine ends at lr·min_ratio");

    char feat[256];
    diag("cpu: %s; features: %s", cpu->model, pare_cpu_features_str(feat, sizeof feat));
    return tap_done();
}
