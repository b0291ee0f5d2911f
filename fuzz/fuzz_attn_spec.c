/* fuzz_attn_spec.c — attention spec strings as models store them ("kind:key=value,..."), parsed by
 * pare_attn_create_spec (src/attn/spec.c) and validated by the variant's init (src/attn/<kind>.c).
 *
 * Input: 4 bytes of shape — T = 1 + (b0 | b1 << 8) % 4096, H = 1 + b2 % 4, D = 1 + b3 % 16, causal =
 * b3 >= 128 — then the spec (up to the first NUL). An accepted spec's canonical text
 * (pare_attn_config_parse, spec) must read back as an equal configuration. A spec that is accepted must give a usable
 * instance: its cost and parameters, and at T <= 64 its mask, forward and backward, run inside the
 * buffers the instance asks for and produce finite numbers from finite inputs. */
#include <math.h>

#include "attn/attn.h"
#include "fuzz_util.h"

static void run(const pare_attn *a, int64_t T, int64_t H, int64_t D)
{
    int64_t B = 1, C = H * D, rows = B * T, np = pare_attn_param_count(a);
    size_t cache_b = pare_attn_cache_bytes(a, B), work_b = pare_attn_work_bytes(a, B);
    float *qkv = malloc(sizeof(float) * (size_t)(rows * 3 * C)), *out = malloc(sizeof(float) * (size_t)(rows * C));
    float *dout = malloc(sizeof(float) * (size_t)(rows * C)), *dqkv = calloc((size_t)(rows * 3 * C), sizeof(float));
    float *params = malloc(sizeof(float) * (size_t)(np ? np : 1)), *dparams = calloc((size_t)(np ? np : 1), sizeof(float));
    void *cache = malloc(cache_b ? cache_b : 1), *work = malloc(work_b ? work_b : 1);
    FUZZ_ASSERT(qkv && out && dout && dqkv && params && dparams && cache && work);
    for (int64_t i = 0; i < rows * 3 * C; i++) qkv[i] = sinf((float)i * 0.37f);
    for (int64_t i = 0; i < rows * C; i++) dout[i] = cosf((float)i * 0.11f);
    pare_rng r;
    pare_rng_seed(&r, 7);
    if (np) pare_attn_param_init(a, params, &r);
    int32_t len = (int32_t)(T > 1 ? T - 1 : 1);
    pare_attn_args x = {.out = out, .ldo = C, .cache = cache, .work = work, .work_bytes = work_b,
                        .q = qkv, .k = qkv + C, .v = qkv + 2 * C, .ld = 3 * C, .lengths = &len, .B = B,
                        .params = np ? params : NULL};
    int64_t pairs = 0;
    x.pairs = &pairs;
    FUZZ_ASSERT(pare_attn_forward(a, &x) == PARE_OK);
    for (int64_t i = 0; i < rows * C; i++) FUZZ_ASSERT(isfinite(out[i]));
    x.dout = dout, x.dq = dqkv, x.dk = dqkv + C, x.dv = dqkv + 2 * C, x.ldd = 3 * C, x.dparams = np ? dparams : NULL;
    pare_status st = pare_attn_backward(a, &x);
    FUZZ_ASSERT(st == PARE_OK || st == PARE_ENOTSUP);
    if (st == PARE_OK)
        for (int64_t i = 0; i < rows * 3 * C; i++) FUZZ_ASSERT(isfinite(dqkv[i]));
    free(qkv), free(out), free(dout), free(dqkv), free(params), free(dparams), free(cache), free(work);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned b0 = fuzz_byte(&in), b1 = fuzz_byte(&in), b2 = fuzz_byte(&in), b3 = fuzz_byte(&in);
    int64_t T = 1 + (int64_t)((b0 | b1 << 8) % 4096), H = 1 + b2 % 4, D = 1 + b3 % 16;
    int causal = b3 >= 128;
    char spec[512];
    size_t n = in.n < sizeof spec - 1 ? in.n : sizeof spec - 1;
    memcpy(spec, in.p, n);
    spec[n] = '\0';
    pare_attn *a = NULL;
    if (pare_attn_create_spec(&a, spec, T, H, D, causal) != PARE_OK) {
        FUZZ_ASSERT(a == NULL && pare_errmsg()[0]);
        return 0;
    }
    FUZZ_ASSERT(a && pare_attn_name(a));
    /* the canonical text of an accepted spec (what a model's config records) reads back as the same
     * configuration and the same text */
    pare_attn_config *c1 = NULL, *c2 = NULL;
    FUZZ_ASSERT(pare_attn_config_parse(&c1, spec) == PARE_OK);
    FUZZ_ASSERT(pare_attn_config_parse(&c2, c1->spec) == PARE_OK);
    FUZZ_ASSERT(pare_attn_config_equal(c1, c2) && !strcmp(c1->spec, c2->spec));
    pare_attn_config_release(c1);
    pare_attn_config_release(c2);
    pare_attn_cost c;
    pare_attn_cost_of(a, 2, &c);
    FUZZ_ASSERT(c.pairs >= 0 && c.flops_fwd >= 0 && c.flops_bwd >= 0);
    pare_attn_param p[PARE_ATTN_MAX_PARAMS];
    int np = pare_attn_param_shapes(a, p);
    FUZZ_ASSERT(np >= 0 && np <= PARE_ATTN_MAX_PARAMS);
    if (T <= 64) {
        uint8_t *mask = malloc((size_t)(T * T));
        FUZZ_ASSERT(mask);
        pare_attn_mask(a, H - 1, mask);
        free(mask);
        run(a, T, H, D);
    }
    pare_attn_free(a);
    return 0;
}
