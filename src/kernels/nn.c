/* nn.c — the token-wise f32 layer kernels of nn.h: embedding, positions, LayerNorm, GELU/ReLU,
 * dropout, pooling, softmax and softmax cross-entropy. Attention lives in nn_attention.c.
 *
 * Every kernel is a forward / backward pair of plain functions in the style of llm.c
 * (train_gpt2.c): outputs first, inputs const, sizes last; backward ADDS into gradients.
 * Parallelism is OpenMP over rows (or over column slices where rows would race on a shared
 * gradient); no reduction depends on the number of threads, so results are bit-identical for any
 * OMP_NUM_THREADS. Heavy products are not here: these kernels are memory-bound.
 *
 * Deliberately not here: mixed precision, fused ops (Add+LayerNorm...), error statuses (shapes are
 * the caller's invariants; callers validate user input before reaching a kernel).
 */
#include "kernels/nn.h"
#include "core/cpu.h"
#include "kernels/nn_internal.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define LN_EPS 1e-5f
/* Column slice width for the embedding gradient's reduction over rows. */
#define COL_CHUNK 64

/* ---- embedding ---- */

/* out (M,C) = table (V,C) [ids (M)] */
void pare_embedding_forward(float *out, const int32_t *ids, const float *table, int64_t M, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) memcpy(out + m * C, table + (int64_t)ids[m] * C, (size_t)C * sizeof(float));
}

void pare_scale_inplace(float *x, float s, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

/* dtable (V,C) += scatter of dout (M,C) by ids. Rows may repeat, so threads split the columns. */
PARE_HOT void pare_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t M, int64_t C)
{
    int64_t nchunk = (C + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for schedule(static) if (M * C > 32768)
    for (int64_t k = 0; k < nchunk; k++) {
        int64_t c0 = k * COL_CHUNK, c1 = c0 + COL_CHUNK < C ? c0 + COL_CHUNK : C;
        for (int64_t m = 0; m < M; m++) {
            float *d = dtable + (int64_t)ids[m] * C;
            const float *g = dout + m * C;
#pragma omp simd
            for (int64_t c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

/* ---- positions ---- */

/* out (B,T,C) = inp (B,T,C) + pos (T,C) */
PARE_HOT void pare_posadd_forward(float *out, const float *inp, const float *pos, int64_t B, int64_t T, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < B * T; bt++) {
        const float *x = inp + bt * C, *p = pos + (bt % T) * C;
        float *o = out + bt * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] = x[c] + p[c];
    }
}

/* dinp (B,T,C) += dout; dpos (T,C) += Σ_b dout[b]. Either may be NULL. */
PARE_HOT void pare_posadd_backward(float *dinp, float *dpos, const float *dout, int64_t B, int64_t T, int64_t C)
{
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int64_t bt = 0; bt < B * T; bt++)
#pragma omp simd
            for (int64_t c = 0; c < C; c++) dinp[bt * C + c] += dout[bt * C + c];
    }
    if (dpos) {
#pragma omp parallel for schedule(static)
        for (int64_t t = 0; t < T; t++)
            for (int64_t b = 0; b < B; b++) {
                const float *g = dout + (b * T + t) * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++) dpos[t * C + c] += g[c];
            }
    }
}

/* pos (T,C): pos[t][2i] = sin(t / 10000^(2i/C)), pos[t][2i+1] = cos(t / 10000^(2i/C)) (Vaswani et al.
 * 2017, §3.5). An odd C ends on a sine. Computed in double, rounded once. */
void pare_sinusoid_table(float *pos, int64_t T, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; 2 * i < C; i++) {
            double a = (double)t / pow(10000.0, (double)(2 * i) / (double)C);
            pos[t * C + 2 * i] = (float)sin(a);
            if (2 * i + 1 < C) pos[t * C + 2 * i + 1] = (float)cos(a);
        }
}

/* ---- LayerNorm (Ba et al. 2016), biased variance, eps 1e-5 ---- */

/* out (M,C) = (inp - mean) * rstd * weight (C) + bias (C); mean, rstd (M) cached (may be NULL). */
PARE_HOT void pare_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                            const float *bias, int64_t M, int64_t C)
{
    pare_layernorm_forward_eps(out, mean, rstd, inp, weight, bias, M, C, LN_EPS);
}

/* The same with the ε of a checkpoint (BERT 1e-12, GPT-2 1e-5). Backward needs no ε: it reads rstd. */
PARE_HOT void pare_layernorm_forward_eps(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                         const float *bias, int64_t M, int64_t C, float eps)
{
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) {
        const float *x = inp + m * C;
        float *o = out + m * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < C; c++) s += x[c];
        float mu = s / (float)C, v = 0.0f; /* two passes: no cancellation for large means */
#pragma omp simd reduction(+ : v)
        for (int64_t c = 0; c < C; c++) v += (x[c] - mu) * (x[c] - mu);
        float rs = 1.0f / sqrtf(v / (float)C + eps);
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] = (x[c] - mu) * rs * weight[c] + bias[c];
        if (mean) mean[m] = mu;
        if (rstd) rstd[m] = rs;
    }
}

/* Differentiates out = norm * weight + bias, norm = (inp - mean) * rstd (llm.c layernorm_backward):
 *   dinp += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)),  dnorm = dout * weight
 *   dweight += Σ_m dout * norm,  dbias += Σ_m dout.
 * dinp rows are independent (parallel over rows); the weight sums run over column slices so that
 * no two threads touch one gradient entry and the summation order is fixed. Any gradient may be NULL.
 * Note the weight sums accumulate straight into dweight/dbias, row after row. */
PARE_HOT void pare_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, const float *mean, const float *rstd, int64_t M, int64_t C)
{
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int64_t m = 0; m < M; m++) {
            const float *x = inp + m * C, *g = dout + m * C;
            float *dx = dinp + m * C, mu = mean[m], rs = rstd[m];
            float sd = 0.0f, sdn = 0.0f;
#pragma omp simd reduction(+ : sd, sdn)
            for (int64_t c = 0; c < C; c++) {
                float dn = weight[c] * g[c];
                sd += dn;
                sdn += dn * (x[c] - mu) * rs;
            }
            sd /= (float)C;
            sdn /= (float)C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                float norm = (x[c] - mu) * rs;
                dx[c] += rs * (weight[c] * g[c] - sd - norm * sdn);
            }
        }
    }
    if (dweight || dbias) {
        /* one column slice per thread; every column still sums its rows in order 0..M-1, so the
         * bits do not depend on the slicing or the thread count */
        const int64_t nt = omp_get_max_threads(), width = ((C + nt - 1) / nt + 15) / 16 * 16;
        const int64_t nchunk = (C + width - 1) / width;
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < nchunk; k++) {
            const int64_t c0 = k * width, c1 = c0 + width < C ? c0 + width : C;
            for (int64_t m = 0; m < M; m++) {
                const float *x = inp + m * C, *g = dout + m * C, mu = mean[m], rs = rstd[m];
                if (dweight) {
#pragma omp simd
                    for (int64_t c = c0; c < c1; c++) dweight[c] += g[c] * (x[c] - mu) * rs;
                }
                if (dbias) {
#pragma omp simd
                    for (int64_t c = c0; c < c1; c++) dbias[c] += g[c];
                }
            }
        }
    }
}

/* ---- activations ----
 *
 * Element-wise loops run serially below their threshold, with no OpenMP region at all: kernels call them on one
 * row or one register tile from inside their own parallel regions (a Linear's fused GELU epilogue, per 48-column
 * tile of the int8 GEMM), where even an `if (0)` parallel region costs a team start per call (~4 µs; 98k calls per
 * BERT-base forward made the fused int8 model 10x slower). */
#define NN_EACH(n, thresh, i, ...)                                                        \
    do {                                                                                  \
        if ((n) > (thresh)) {                                                             \
            _Pragma("omp parallel for simd schedule(static)")                             \
            for (int64_t i = 0; i < (n); i++) { __VA_ARGS__ }                             \
        } else {                                                                          \
            _Pragma("omp simd")                                                           \
            for (int64_t i = 0; i < (n); i++) { __VA_ARGS__ }                             \
        }                                                                                 \
    } while (0)

/* The instruction set of the activations with a hand-written kernel (today the exact GELU's forward): this CPU's
 * best tier, capped by pare_nn_set_isa (tests run both paths) */
static int g_act_cap = PARE_TIER_AVX512;

static int nn_act_isa(void)
{
    int best = pare_cpu_tier(0), cap = __atomic_load_n(&g_act_cap, __ATOMIC_RELAXED);
    return best < cap ? best : cap;
}

int pare_gelu_erf_avx512_active_(void) { return nn_act_isa() >= PARE_TIER_AVX512; }

pare_status pare_nn_set_isa(const char *isa) { return pare_cpu_tier_cap(&g_act_cap, isa, "activation"); }

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (Hendrycks & Gimpel 2016, tanh form) */
PARE_HOT void pare_gelu_forward(float *out, const float *inp, int64_t n)
{
    NN_EACH(n, 16384, i, float x = inp[i];
        out[i] = 0.5f * x * (1.0f + nn_tanhf(GELU_K * (x + GELU_A * x * x * x)));
    );
}

/* out = 0.5 x (1 + erf(x / √2)) = x Φ(x), the exact GELU (BERT, RoBERTa, DistilBERT; PyTorch's default); Φ from
 * nn_normcdf, vectorised (nn_internal.h), within 4e-7 relative of the exact value */
PARE_HOT void pare_gelu_erf_forward(float *out, const float *inp, int64_t n)
{
    if (nn_act_isa() >= PARE_TIER_AVX512) { /* act_avx512.c: the same fit with FMAs and one exponential, ~6x faster */
        enum { CHUNK = 4096 };
        if (n <= 16384) {
            pare_gelu_erf_span_avx512_(out, inp, n);
            return;
        }
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < (n + CHUNK - 1) / CHUNK; c++)
            pare_gelu_erf_span_avx512_(out + c * CHUNK, inp + c * CHUNK, c * CHUNK + CHUNK <= n ? CHUNK : n - c * CHUNK);
        return;
    }
    NN_EACH(n, 16384, i, out[i] = inp[i] * nn_normcdf(inp[i]););
}

/* dinp += dout * [0.5 (1 + erf(x/√2)) + x φ(x)],  φ(x) = exp(−x²/2) / √(2π) */
PARE_HOT void pare_gelu_erf_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
    NN_EACH(n, 16384, i, float x = inp[i];
        dinp[i] += (nn_normcdf(x) + x * nn_normpdf(x)) * dout[i];
    );
}

/* out = tanh(x) (BERT's pooler) */
PARE_HOT void pare_tanh_forward(float *out, const float *inp, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

/* dinp += dout * (1 − tanh² x) */
PARE_HOT void pare_tanh_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        float t = tanhf(inp[i]);
        dinp[i] += (1.0f - t * t) * dout[i];
    }
}

/* dinp += dout * d/dx [0.5 x (1 + tanh u)], u = k (x + a x^3):
 *   = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) k (1 + 3 a x^2) */
PARE_HOT void pare_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
    NN_EACH(n, 16384, i, float x = inp[i], t = nn_tanhf(GELU_K * (x + GELU_A * x * x * x));
        float local = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] += local * dout[i];
    );
}

PARE_HOT void pare_relu_forward(float *out, const float *inp, int64_t n)
{
    NN_EACH(n, 65536, i, out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;);
}

/* dinp += dout where inp > 0 (the subgradient at 0 is 0). */
PARE_HOT void pare_relu_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
    /* inp > 0 as an integer test on the bits (x > +0 <=> bits > 0 as int32), and dout masked by bits rather than
     * multiplied by 0/1 (inf · 0 would be NaN): no FP compare keeps it vectorized */
    NN_EACH(n, 65536, i,
        union { float f; int32_t i; } x = {inp[i]}, g = {dout[i]};
        g.i &= -(int32_t)(x.i > 0);
        dinp[i] += g.f;
    );
}

/* ---- dropout (Srivastava et al. 2014), inverted ---- */

/* The mask is drawn in fixed chunks, chunk k from pare_rng_split(rng, k), so it is the same for any
 * thread count; rng then advances by one draw so the next call gets a fresh mask. */
#define DROPOUT_CHUNK 16384

void pare_dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n, float p, pare_rng *rng)
{
    if (p <= 0.0f || p >= 1.0f) { /* identity, or everything dropped (no 1/(1-p) blow-up) */
        int keep = p <= 0.0f;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            out[i] = keep ? inp[i] : 0.0f;
            mask[i] = (uint8_t)keep;
        }
        return;
    }
    const float scale = 1.0f / (1.0f - p);
    /* drop iff a uniform 32-bit draw < p·2^32: two draws per pare_rng_u64 call */
    const uint64_t thr = (uint64_t)((double)p * 4294967296.0);
    int64_t nchunk = (n + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t k = 0; k < nchunk; k++) {
        pare_rng r = pare_rng_split(rng, (uint64_t)k);
        int64_t i0 = k * DROPOUT_CHUNK, i1 = i0 + DROPOUT_CHUNK < n ? i0 + DROPOUT_CHUNK : n;
        uint64_t bits = 0;
        for (int64_t i = i0; i < i1; i++) {
            if ((i - i0) % 2 == 0) bits = pare_rng_u64(&r);
            uint32_t keep = (bits & 0xFFFFFFFFu) >= thr;
            bits >>= 32;
            union { float f; uint32_t u; } v = {inp[i] * scale};
            v.u &= 0u - keep; /* a mask, not a branch: the draw is unpredictable by design */
            mask[i] = (uint8_t)keep;
            out[i] = v.f;
        }
    }
    (void)pare_rng_u64(rng);
}

/* dinp += dout * mask / (1 - p) */
PARE_HOT void pare_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p)
{
    const float scale = p <= 0.0f ? 1.0f : p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * (scale * (float)mask[i]);
}

/* ---- pooling ---- */

static int64_t valid_len(const int32_t *lengths, int64_t b, int64_t T)
{
    if (!lengths) return T;
    int64_t L = lengths[b];
    return L < 0 ? 0 : L > T ? T : L;
}

/* out (B,C) = inp[b,0] (CLS) or mean_{t < lengths[b]} inp[b,t] (MEAN; 0 for an empty sequence). */
void pare_pool_forward(float *out, const float *inp, const int32_t *lengths, pare_pool_mode mode, int64_t B,
                       int64_t T, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < B; b++) {
        float *o = out + b * C;
        if (mode == PARE_POOL_CLS) {
            memcpy(o, inp + b * T * C, (size_t)C * sizeof(float));
            continue;
        }
        int64_t L = valid_len(lengths, b, T);
        for (int64_t c = 0; c < C; c++) o[c] = 0.0f;
        for (int64_t t = 0; t < L; t++)
#pragma omp simd
            for (int64_t c = 0; c < C; c++) o[c] += inp[(b * T + t) * C + c];
        float inv = L > 0 ? 1.0f / (float)L : 0.0f;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] *= inv;
    }
}

/* dinp (B,T,C) += dout routed back: to token 0 (CLS) or dout/L to each valid token (MEAN). */
void pare_pool_backward(float *dinp, const float *dout, const int32_t *lengths, pare_pool_mode mode, int64_t B,
                        int64_t T, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < B; b++) {
        const float *g = dout + b * C;
        if (mode == PARE_POOL_CLS) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) dinp[b * T * C + c] += g[c];
            continue;
        }
        int64_t L = valid_len(lengths, b, T);
        float inv = L > 0 ? 1.0f / (float)L : 0.0f;
        for (int64_t t = 0; t < L; t++)
#pragma omp simd
            for (int64_t c = 0; c < C; c++) dinp[(b * T + t) * C + c] += g[c] * inv;
    }
}

/* ---- softmax and cross-entropy ---- */

/* out (M,N) = softmax(inp (M,N)) along N */
PARE_HOT void pare_softmax_rows(float *out, const float *inp, int64_t M, int64_t N)
{
    for (int64_t m = 0; m < M; m++) nn_softmax(out + m * N, inp + m * N, N);
}

void pare_softmax_forward(float *out, const float *inp, int64_t M, int64_t N)
{
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) pare_softmax_rows(out + m * N, inp + m * N, 1, N);
}

/* dinp (M,N) += out * (dout - Σ_j dout_j out_j), from out = softmax(inp). */
PARE_HOT void pare_softmax_backward(float *dinp, const float *out, const float *dout, int64_t M, int64_t N)
{
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) {
        const float *y = out + m * N, *g = dout + m * N;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < N; j++) s += y[j] * g[j];
#pragma omp simd
        for (int64_t j = 0; j < N; j++) dinp[m * N + j] += y[j] * (g[j] - s);
    }
}

/* losses (M) = logsumexp(logits[m]) - logits[m, target] (0 if target < 0); probs (M,V) cached.
 * The loss comes from the log-sum-exp, not -log(prob), so it stays finite when the prob underflows.
 * The mean is summed serially in double: the same bits for any thread count. */
PARE_HOT float pare_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                                int64_t M, int64_t V)
{
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) {
        double lse = nn_softmax(probs + m * V, logits + m * V, V);
        int32_t t = targets[m];
        losses[m] = t >= 0 ? (float)(lse - (double)logits[m * V + t]) : 0.0f;
    }
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t m = 0; m < M; m++)
        if (targets[m] >= 0) sum += losses[m], count++;
    return count ? (float)(sum / (double)count) : 0.0f;
}

/* dlogits (M,V) += dloss * (probs - onehot(target)) for rows with target >= 0. For the gradient of the
 * returned mean, pass dloss = 1 / (number of non-ignored rows). */
PARE_HOT void pare_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, float dloss,
                                int64_t M, int64_t V)
{
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) {
        int32_t t = targets[m];
        if (t < 0) continue;
        float *d = dlogits + m * V;
        const float *p = probs + m * V;
#pragma omp simd
        for (int64_t v = 0; v < V; v++) d[v] += dloss * p[v];
        d[t] -= dloss;
    }
}
