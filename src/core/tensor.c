/* tensor.c — dtype tables, shape printing and scalar/array conversions. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The dtypes' traits; alias: the long name scripts and other libraries use (numfmt says "fp32"). */
static const struct { const char *name, *alias; size_t size; int is_float; } dtypes[] = {
    [PARE_F32] = {"f32", "fp32", 4, 1}, [PARE_BF16] = {"bf16", "bfloat16", 2, 1}, [PARE_F16] = {"f16", "fp16", 2, 1},
    [PARE_I8] = {"i8", "int8", 1, 0},   [PARE_U8] = {"u8", "uint8", 1, 0},        [PARE_I32] = {"i32", "int32", 4, 0},
};
_Static_assert(sizeof dtypes / sizeof dtypes[0] == PARE_DTYPE_COUNT, "dtype table out of date");
_Static_assert(PARE_DTYPE_COUNT <= 32, "dtype masks (PARE_DTYPE_BIT) are unsigned int");

size_t pare_dtype_size(pare_dtype t) { return (unsigned)t < PARE_DTYPE_COUNT ? dtypes[t].size : 0; }
const char *pare_dtype_name(pare_dtype t) { return (unsigned)t < PARE_DTYPE_COUNT ? dtypes[t].name : "?"; }
int pare_dtype_is_float(pare_dtype t) { return (unsigned)t < PARE_DTYPE_COUNT && dtypes[t].is_float; }

pare_status pare_dtype_parse(const char *name, pare_dtype *out)
{
    for (int i = 0; i < PARE_DTYPE_COUNT; i++)
        if (strcmp(name, dtypes[i].name) == 0 || strcmp(name, dtypes[i].alias) == 0) {
            *out = (pare_dtype)i;
            return PARE_OK;
        }
    return pare_fail(PARE_EINVAL, "unknown dtype '%s' (valid: f32, bf16, f16, i8, u8, i32)", name);
}

const char *pare_dtype_mask_str(unsigned mask, char *buf, size_t n)
{
    int total = 0, k = 0;
    for (int i = 0; i < PARE_DTYPE_COUNT; i++) total += (mask >> i) & 1;
    size_t used = 0;
    if (n) buf[0] = 0;
    for (int i = 0; i < PARE_DTYPE_COUNT && used < n; i++) {
        if (!((mask >> i) & 1)) continue;
        const char *sep = k == 0 ? "" : k == total - 1 ? " or " : ", ";
        used += (size_t)snprintf(buf + used, n - used, "%s%s", sep, dtypes[i].name);
        k++;
    }
    if (!total && n) snprintf(buf, n, "none");
    return buf;
}

int64_t pare_tensor_numel(const pare_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t pare_tensor_bytes(const pare_tensor *t) { return (size_t)pare_tensor_numel(t) * pare_dtype_size(t->dtype); }

const char *pare_shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
    return buf;
}

static uint32_t f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

uint16_t pare_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even; overflow carries into Inf */
    return (uint16_t)(u >> 16);
}

float pare_bf16_to_f32(uint16_t x) { return bits_f32((uint32_t)x << 16); }

uint16_t pare_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);            /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);           /* rounds to >= 65520: Inf */
    if (a < 0x38800000u) {                                             /* subnormal or zero in f16 */
        /* value = a as float; f16 subnormal unit is 2^-24: round(value * 2^24) with RNE */
        float v = bits_f32(a) * 16777216.0f;                           /* exact: power-of-two scale */
        return (uint16_t)(sign | (uint32_t)lrintf(v));                 /* lrintf rounds to nearest even */
    }
    uint32_t mant = a & 0x7fffffu, exp = (a >> 23) - 127 + 15;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* carry may roll into exponent: correct */
    return (uint16_t)(sign | h);
}

float pare_f16_to_f32(uint16_t x)
{
    uint32_t sign = (uint32_t)(x & 0x8000u) << 16;
    uint32_t exp = (x >> 10) & 0x1fu, mant = x & 0x3ffu;
    if (exp == 0) {
        float v = (float)mant / 16777216.0f; /* mant * 2^-24 */
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

static double load(const void *p, pare_dtype t, int64_t i)
{
    switch (t) {
    case PARE_F32: return ((const float *)p)[i];
    case PARE_BF16: return pare_bf16_to_f32(((const uint16_t *)p)[i]);
    case PARE_F16: return pare_f16_to_f32(((const uint16_t *)p)[i]);
    case PARE_I8: return ((const int8_t *)p)[i];
    case PARE_U8: return ((const uint8_t *)p)[i];
    case PARE_I32: return ((const int32_t *)p)[i];
    default: return 0;
    }
}

static double sat(double v, double lo, double hi) { return isnan(v) ? 0 : v < lo ? lo : v > hi ? hi : v; }

static void store(void *p, pare_dtype t, int64_t i, double v)
{
    switch (t) {
    case PARE_F32: ((float *)p)[i] = (float)v; break;
    case PARE_BF16: ((uint16_t *)p)[i] = pare_f32_to_bf16((float)v); break;
    case PARE_F16: ((uint16_t *)p)[i] = pare_f32_to_f16((float)v); break;
    case PARE_I8: ((int8_t *)p)[i] = (int8_t)sat(nearbyint(v), -128, 127); break;
    case PARE_U8: ((uint8_t *)p)[i] = (uint8_t)sat(nearbyint(v), 0, 255); break;
    case PARE_I32: ((int32_t *)p)[i] = (int32_t)sat(nearbyint(v), -2147483648.0, 2147483647.0); break;
    default: break;
    }
}

pare_status pare_convert(void *dst, pare_dtype dt, const void *src, pare_dtype st, int64_t n)
{
    if ((unsigned)dt >= PARE_DTYPE_COUNT || (unsigned)st >= PARE_DTYPE_COUNT)
        return pare_fail(PARE_EINVAL, "pare_convert: unknown dtype %d -> %d", (int)st, (int)dt);
    if (dt == st) {
        memmove(dst, src, (size_t)n * pare_dtype_size(dt));
        return PARE_OK;
    }
    if (st == PARE_F32 && dt == PARE_BF16) {
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = pare_f32_to_bf16(((const float *)src)[i]);
        return PARE_OK;
    }
    for (int64_t i = 0; i < n; i++) store(dst, dt, i, load(src, st, i));
    return PARE_OK;
}

int64_t pare_first_nonfinite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}
