/* gemm_onednn.c — the oneDNN plumbing shared by the packed-weight Linears: one CPU engine per process,
 * and a "packed inner product": weights W(N,K) reordered once into the layout oneDNN's inner-product
 * primitive prefers, with a per-handle cache of primitives.
 *
 *   dst(M,N) = post(src(M,K) · W(N,K)^T + bias(N))      oneDNN inner product, forward_inference
 *
 * Users: gemm_f32_packed.c (f32 src / weights / dst, f32 bias, optional eltwise post-op: GELU tanh, GELU
 * erf or ReLU) and the int8
 * Linear's VNNI u8s8 path (gemm_i8_products.c) (u8 src, s8 weights, s32 dst, no bias, no post-op). They differ only in data types,
 * bias and post-op; docs/kernels.md has the measurements behind the inner product on reordered weights
 * (it does not repack W per call as dnnl_sgemm / dnnl_gemm_u8s8s32 do).
 *
 * Layout. Pack asks oneDNN for its preferred weight layout (format_tag_any) with a probe M: in oneDNN
 * 2.6 the layout does not depend on M (checked by the tests for M = 1…4096), so one packed copy serves
 * every M. The blocked layout pads N and K; the padding is zeroed.
 *
 * Cache. One primitive per (M, thread count, bias?, post-op), created on first use (JIT, tens of µs to
 * ms) under the handle's mutex, at most ONEDNN_IP_CACHE_MAX keys; past that a call builds and drops its
 * own primitive (correct, slow). oneDNN plans a primitive's work split for the OpenMP thread count it
 * sees at creation, so the count is part of the key; inside an OpenMP parallel region (where oneDNN runs
 * sequentially) the key uses 1. The cache holds primitives only, never a caller's pointer.
 *
 * Execution. Primitives are created with a user scratchpad, supplied per call (the caller's spare
 * memory, the stack up to ONEDNN_IP_STACK_SCRATCH, else the heap): that, with the mutex on the cache, is
 * what lets several threads run one handle at once.
 *
 * Errors. Each entry takes `what`, the caller's name for messages: with what != NULL a failure is kept
 * through pare_fail("<what>: ..."); with NULL nothing is reported, only the status returned (the int8
 * path then falls back to dnnl_gemm_u8s8s32 and must not leave a message behind).
 *
 * Deliberately not here: the public API's argument checks (the users do them), scales, other post-ops
 * (binary, sums),
 * backward. Entry points: pare_onednn_engine, pare_onednn_ip_pack / _repack / _free / _bytes / _shape / _impl,
 * pare_onednn_ip_run (declared in gemm_internal.h).
 */
#include "kernels/gemm_internal.h"

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distinct (M, threads, bias, post-op) keys a handle keeps primitives for; past that, calls create and
 * destroy a primitive each time. A model sees a handful of M values (B·T per batch shape). */
#define ONEDNN_IP_CACHE_MAX 32
/* Scratchpads up to this size live on the caller's stack (the brgemm kernels ask for ~4 KB). */
#define ONEDNN_IP_STACK_SCRATCH 16384
/* The M used to ask oneDNN for its preferred weight layout (the layout does not depend on M in 2.6). */
#define ONEDNN_IP_PROBE_M 128

/* pare_fail when the caller gave a name (the first of the arguments), silence otherwise. */
#define IP_FAIL(code, what, ...) ((what) ? pare_fail((code), __VA_ARGS__) : (code))

typedef struct ip_prim {
    int64_t M;
    int threads, has_bias;
    pare_onednn_post post;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src_md, dst_md, bias_md, scratch_md; /* src (M,K), dst (M,N), bias (N) */
    size_t scratch_bytes;
} ip_prim;

struct pare_onednn_ip {
    int64_t N, K;
    pare_onednn_ip_types types;
    void *data;             /* W in the layout wmd (64-byte aligned, padding zeroed) */
    size_t bytes;           /* size of data */
    dnnl_memory_desc_t wmd; /* (N, K) in oneDNN's preferred blocked layout */
    char impl[64];          /* oneDNN implementation chosen at pack time, e.g. "brgemm:avx512_core" */
    pthread_mutex_t lock;   /* guards cache and n */
    ip_prim cache[ONEDNN_IP_CACHE_MAX];
    int n;
};

/* ---- one engine per process ---- */

static dnnl_engine_t g_engine;
static dnnl_status_t g_engine_status = dnnl_runtime_error;
static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void) { g_engine_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0); }

dnnl_engine_t pare_onednn_engine(void)
{
    pthread_once(&g_engine_once, engine_init);
    return g_engine_status == dnnl_success ? g_engine : NULL;
}

/* ---- primitive descriptors ---- */

/* Inner-product forward-inference pd for (M, N, K) with weights in layout wmd (NULL: format_tag_any),
 * planned for the OpenMP thread count the caller has set. NULL on failure. */
static dnnl_primitive_desc_t make_pd(const pare_onednn_ip_types *t, int64_t M, int64_t N, int64_t K,
                                     const dnnl_memory_desc_t *wmd, int has_bias, pare_onednn_post post)
{
    dnnl_engine_t eng = pare_onednn_engine();
    if (!eng) return NULL;
    dnnl_memory_desc_t src, wt, bias, dst;
    dnnl_dims_t sd = {M, K}, wd = {N, K}, bd = {N}, dd = {M, N};
    if (dnnl_memory_desc_init_by_tag(&src, 2, sd, t->src, dnnl_nc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst, 2, dd, t->dst, dnnl_nc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x) != dnnl_success)
        return NULL;
    if (wmd) wt = *wmd;
    else if (dnnl_memory_desc_init_by_tag(&wt, 2, wd, t->wei, dnnl_format_tag_any) != dnnl_success)
        return NULL;
    dnnl_inner_product_desc_t d;
    if (dnnl_inner_product_forward_desc_init(&d, dnnl_forward_inference, &src, &wt, has_bias ? &bias : NULL, &dst) !=
        dnnl_success)
        return NULL;

    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    /* the scratchpad comes with each call (see the top of this file) */
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) goto done;
    if (post != PARE_ONEDNN_POST_NONE) {
        dnnl_alg_kind_t alg = post == PARE_ONEDNN_POST_GELU       ? dnnl_eltwise_gelu_tanh
                              : post == PARE_ONEDNN_POST_GELU_ERF ? dnnl_eltwise_gelu_erf
                                                                  : dnnl_eltwise_relu;
        if (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_eltwise(po, 1.0f, alg, 0.0f, 0.0f) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success)
            goto done;
    }
    if (dnnl_primitive_desc_create(&pd, &d, attr, eng, NULL) != dnnl_success) pd = NULL;
done:
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

/* Fill e for key (M, threads, has_bias, post) on packed weights p. */
static pare_status prim_create(ip_prim *e, const pare_onednn_ip *p, int64_t M, int threads, int has_bias,
                               pare_onednn_post post, const char *what)
{
    memset(e, 0, sizeof *e);
    e->M = M, e->threads = threads, e->has_bias = has_bias, e->post = post;
    /* oneDNN reads omp_get_max_threads() when it plans the work; inside a parallel region that is the
     * nested team's nominal size, but execution there is sequential: plan for what will run. */
    int saved = omp_get_max_threads();
    if (saved != threads) omp_set_num_threads(threads);
    dnnl_primitive_desc_t pd = make_pd(&p->types, M, p->N, p->K, &p->wmd, has_bias, post);
    dnnl_status_t st = pd ? dnnl_primitive_create(&e->prim, pd) : dnnl_runtime_error;
    if (saved != threads) omp_set_num_threads(saved);
    if (st != dnnl_success) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        e->prim = NULL;
        return IP_FAIL(PARE_EINTERNAL, what, "%s: oneDNN could not create an inner product for M=%lld N=%lld K=%lld",
                       what, (long long)M, (long long)p->N, (long long)p->K);
    }
    e->src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    e->dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if (has_bias) e->bias_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (sp) e->scratch_md = *sp;
    e->scratch_bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    dnnl_primitive_desc_destroy(pd); /* the primitive keeps its own copy */
    return PARE_OK;
}

static void prim_destroy(ip_prim *e)
{
    if (e->prim) dnnl_primitive_destroy(e->prim);
    e->prim = NULL;
}

/* ---- packing ---- */

/* W (N,K) row-major of p's weight type reordered into p->data (layout p->wmd); the padding is left as it is
 * (zero). oneDNN's primitive cache makes the reorder's creation cheap after the first. PARE_EINTERNAL, no
 * message, on failure. */
static pare_status reorder_in(pare_onednn_ip *p, const void *W)
{
    dnnl_engine_t eng = pare_onednn_engine();
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_stream_t stream = NULL;
    pare_status st = PARE_EINTERNAL;
    dnnl_memory_desc_t umd; /* W as given: (N, K) row-major */
    dnnl_dims_t wd = {p->N, p->K};
    if (!eng || dnnl_memory_desc_init_by_tag(&umd, 2, wd, p->types.wei, dnnl_oi) != dnnl_success) goto done;
    if (dnnl_memory_create(&from, &umd, eng, (void *)W) != dnnl_success) goto done;
    if (dnnl_memory_create(&to, &p->wmd, eng, p->data) != dnnl_success) goto done;
    if (dnnl_reorder_primitive_desc_create(&rpd, &umd, eng, &p->wmd, eng, NULL) != dnnl_success) goto done;
    if (dnnl_primitive_create(&reorder, rpd) != dnnl_success) goto done;
    if (dnnl_stream_create(&stream, eng, dnnl_stream_default_flags) != dnnl_success) goto done;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    if (dnnl_primitive_execute(reorder, stream, 2, args) != dnnl_success || dnnl_stream_wait(stream) != dnnl_success)
        goto done;
    st = PARE_OK;
done:
    if (stream) dnnl_stream_destroy(stream);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    return st;
}

pare_status pare_onednn_ip_repack(pare_onednn_ip *p, const void *W, const char *what)
{
    if (reorder_in(p, W) == PARE_OK) return PARE_OK;
    return IP_FAIL(PARE_EINTERNAL, what, "%s: oneDNN could not repack N=%lld K=%lld", what, (long long)p->N, (long long)p->K);
}

pare_status pare_onednn_ip_pack(pare_onednn_ip **out, pare_onednn_ip_types types, const void *W, int64_t N, int64_t K,
                                int bias_hint, const char *what)
{
    *out = NULL;
    dnnl_engine_t eng = pare_onednn_engine();
    if (!eng) return IP_FAIL(PARE_EINTERNAL, what, "%s: oneDNN CPU engine unavailable", what);

    pare_onednn_ip *p = calloc(1, sizeof *p);
    dnnl_primitive_desc_t pd = NULL;
    pare_status st = PARE_EINTERNAL;
    if (!p) return IP_FAIL(PARE_ENOMEM, what, "%s: out of memory", what);
    p->N = N, p->K = K, p->types = types;
    if (pthread_mutex_init(&p->lock, NULL)) {
        free(p);
        return IP_FAIL(PARE_EINTERNAL, what, "%s: mutex init failed", what);
    }

    /* the probe runs with the current thread count: the layout does not depend on it either */
    pd = make_pd(&types, ONEDNN_IP_PROBE_M, N, K, NULL, bias_hint, PARE_ONEDNN_POST_NONE);
    if (!pd) goto fail;
    p->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(p->impl, sizeof p->impl, "%s", impl);
    p->bytes = dnnl_memory_desc_get_size(&p->wmd);
    if (posix_memalign(&p->data, 64, p->bytes ? p->bytes : 64)) {
        p->data = NULL;
        st = IP_FAIL(PARE_ENOMEM, what, "%s: out of memory for %zu bytes (N=%lld K=%lld)", what, p->bytes,
                     (long long)N, (long long)K);
        goto fail;
    }
    memset(p->data, 0, p->bytes); /* the blocked layout pads N and K: padding must read as zero */
    st = reorder_in(p, W);
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != PARE_OK) {
        if (st == PARE_EINTERNAL && what)
            pare_fail(PARE_EINTERNAL, "%s: oneDNN could not pack N=%lld K=%lld", what, (long long)N, (long long)K);
        pare_onednn_ip_free(p);
        return st;
    }
    *out = p;
    return PARE_OK;
}

const char *pare_onednn_ip_impl_for(pare_onednn_ip_types types, int64_t N, int64_t K, char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    dnnl_primitive_desc_t pd = make_pd(&types, ONEDNN_IP_PROBE_M, N, K, NULL, 1, PARE_ONEDNN_POST_NONE);
    const char *impl = NULL;
    if (pd && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl && impl[0])
        snprintf(buf, n, "%s", impl);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return buf;
}

void pare_onednn_ip_free(pare_onednn_ip *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) prim_destroy(&p->cache[i]);
    pthread_mutex_destroy(&p->lock);
    free(p->data);
    free(p);
}

size_t pare_onednn_ip_bytes(const pare_onednn_ip *p) { return p ? p->bytes : 0; }

void pare_onednn_ip_shape(const pare_onednn_ip *p, int64_t *N, int64_t *K)
{
    if (N) *N = p ? p->N : 0;
    if (K) *K = p ? p->K : 0;
}

const char *pare_onednn_ip_impl(const pare_onednn_ip *p) { return p ? p->impl : ""; }

/* ---- execution ---- */

static pare_status run_prim(const ip_prim *e, const pare_onednn_ip *p, void *dst, const void *src, const float *bias,
                            void *spare, size_t spare_bytes, const char *what)
{
    dnnl_engine_t eng = pare_onednn_engine();
    _Alignas(64) unsigned char stack_scratch[ONEDNN_IP_STACK_SCRATCH];
    void *scratch = NULL;
    dnnl_memory_t m[5] = {NULL};
    dnnl_stream_t stream = NULL;
    dnnl_exec_arg_t args[5];
    int n = 0;
    pare_status st = PARE_EINTERNAL;

    /* a scratchpad per call: the caller's spare memory first, then the stack, then the heap */
    if (e->scratch_bytes > spare_bytes && e->scratch_bytes > ONEDNN_IP_STACK_SCRATCH) {
        if (posix_memalign(&scratch, 64, e->scratch_bytes))
            return IP_FAIL(PARE_ENOMEM, what, "%s: out of memory for a %zu-byte scratchpad", what, e->scratch_bytes);
    } else if (e->scratch_bytes) {
        scratch = e->scratch_bytes <= spare_bytes ? spare : (void *)stack_scratch;
    }
    if (dnnl_memory_create(&m[0], &e->src_md, eng, (void *)src) != dnnl_success) goto done;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m[0]};
    if (dnnl_memory_create(&m[1], &p->wmd, eng, p->data) != dnnl_success) goto done;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, m[1]};
    if (dnnl_memory_create(&m[2], &e->dst_md, eng, dst) != dnnl_success) goto done;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, m[2]};
    if (e->has_bias) {
        if (dnnl_memory_create(&m[3], &e->bias_md, eng, (void *)bias) != dnnl_success) goto done;
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m[3]};
    }
    if (scratch) {
        if (dnnl_memory_create(&m[4], &e->scratch_md, eng, scratch) != dnnl_success) goto done;
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m[4]};
    }
    if (dnnl_stream_create(&stream, eng, dnnl_stream_default_flags) != dnnl_success) goto done;
    if (dnnl_primitive_execute(e->prim, stream, n, args) != dnnl_success) goto done;
    st = PARE_OK;
done:
    if (stream) dnnl_stream_destroy(stream);
    for (int i = 0; i < 5; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    if (scratch && scratch != spare && scratch != (void *)stack_scratch) free(scratch);
    if (st != PARE_OK)
        return IP_FAIL(PARE_EINTERNAL, what, "%s: oneDNN execution failed (M=%lld N=%lld K=%lld)", what,
                       (long long)e->M, (long long)p->N, (long long)p->K);
    return PARE_OK;
}

pare_status pare_onednn_ip_run(const pare_onednn_ip *pc, void *dst, const void *src, const float *bias, int64_t M,
                               pare_onednn_post post, void *spare, size_t spare_bytes, const char *what)
{
    /* the cache is the handle's private memo: logically const, hence the cast */
    pare_onednn_ip *p = (pare_onednn_ip *)pc;
    int has_bias = bias != NULL, threads = omp_in_parallel() ? 1 : omp_get_max_threads();

    const ip_prim *e = NULL;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->n; i++) {
        const ip_prim *c = &p->cache[i];
        if (c->M == M && c->threads == threads && c->has_bias == has_bias && c->post == post) {
            e = c;
            break;
        }
    }
    pare_status st = PARE_OK;
    if (!e && p->n < ONEDNN_IP_CACHE_MAX) {
        /* created under the lock: one creation per key even when threads race for it; entries are
         * never moved or removed before pare_onednn_ip_free, so e stays valid after unlocking */
        st = prim_create(&p->cache[p->n], p, M, threads, has_bias, post, what);
        if (st == PARE_OK) e = &p->cache[p->n++];
    }
    pthread_mutex_unlock(&p->lock);
    if (st != PARE_OK) return st;
    if (e) return run_prim(e, p, dst, src, bias, spare, spare_bytes, what);

    ip_prim tmp; /* cache full: a primitive for this call only */
    PARE_TRY(prim_create(&tmp, p, M, threads, has_bias, post, what));
    st = run_prim(&tmp, p, dst, src, bias, spare, spare_bytes, what);
    prim_destroy(&tmp);
    return st;
}
