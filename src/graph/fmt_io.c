/* fmt_io.c — the checkpoint forms of the quantized formats: what m:save writes for a weight stored as int8
 * (fmt_i8.c), in blocks or groups (fmt_qblock.c) or simulated (fmt_simulated.c), and how loading rebuilds the
 * same stored form from it. io/safetensors.c turns a pare_fmt_io into file tensors "<param>.<suffix>" and a
 * JSON object in __metadata__ "quant", and back; the formats' traits point here (save, load).
 *
 *   int8       q I8 (N,K), scale F32 (N); the activation scheme (act_mode, act_symmetric, act_scale, act_zero,
 *              outlier_threshold, torch_qparams, outlier_f16) as attributes. Rebuilt by pare_i8_weight_from_int, which packs
 *              and sums exactly as the quantizer did.
 *   qblock     qs (N, row bytes: K/2 for 4-bit kinds as U8, K for 8-bit kinds as I8), scale F16 (N, K/group),
 *              min F16 (N, K/32: q4_1), zero U8 (N, K/group: asymmetric int4_group); kind, group, symmetric.
 *              The bytes are the kernel's own (llama.cpp's block fields, not interleaved; qblock.h). The ggml-block
 *              kinds (q5_0, q5_1, q4_k, q5_k, q6_k) are llama.cpp's blocks themselves: qs U8 (N, row bytes) alone,
 *              their fp16 scales checked finite.
 *   wq         qs U8 (N, row bytes), scale F16 (N, K/group), zero U8 (N, K/group: asymmetric int8/int3/int2); kind
 *              (int8_wo, int3, int2, binary, ternary, w4a8), group, symmetric. The bytes are the kernels' own layout
 *              (kernels/wq.h); a ternary element never has both its + and − bits.
 *   pq         codes U8 (N, K/block), codebook F32 or F16 (k, block); block, k, f16. Every code is checked < k.
 *   simulated  sim F32 (N,K): the dequantized weights the f32 GEMM runs on; the weight and activation specs and
 *              the static activation grid. A simulated format has no storage of its own, so its checkpoint is
 *              not smaller than the f32 one (its size column is the exact storage a kernel would have).
 * Every format also keeps desc and method (the tables' words) and the exact storage bits are recomputed.
 *
 * Deliberately not here: the 16-bit and sparse formats (a lossless function of their f32 master: the checkpoint
 * lists them in "half" / "sparse" and rebuilds them from the master, safetensors.c), file I/O and JSON
 * (safetensors.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/tensor.h"
#include "format.h"

static const struct {
    const char *name;
    size_t size;
} io_dtypes[] = {[PARE_FIO_I8] = {"I8", 1}, [PARE_FIO_U8] = {"U8", 1}, [PARE_FIO_F16] = {"F16", 2}, [PARE_FIO_F32] = {"F32", 4}};
_Static_assert(sizeof io_dtypes / sizeof io_dtypes[0] == PARE_FIO_COUNT, "checkpoint dtypes out of date");

const char *pare_fmt_io_dtype_name(pare_fmt_io_dtype d) { return (unsigned)d < PARE_FIO_COUNT ? io_dtypes[d].name : "?"; }
size_t pare_fmt_io_dtype_size(pare_fmt_io_dtype d) { return (unsigned)d < PARE_FIO_COUNT ? io_dtypes[d].size : 0; }

int pare_format_find_loadable(const char *name, char *valid, size_t n)
{
    int found = -1;
    size_t used = 0;
    if (n) valid[0] = '\0';
    for (int f = 0; f < PARE_FMT_COUNT; f++) {
        const pare_format_traits *t = pare_format_get((pare_format)f);
        if (!t || !t->load) continue;
        if (!strcmp(t->name, name)) found = f;
        if (used < n) used += (size_t)snprintf(valid + used, n - used, used ? ", %s" : "%s", t->name);
    }
    return found;
}

/* ---- building and reading a pare_fmt_io ---- */

static void add_tensor(pare_fmt_io *io, const char *suffix, pare_fmt_io_dtype dt, int64_t d0, int64_t d1, const void *data)
{
    pare_fmt_io_tensor *t = &io->t[io->nt++]; /* the hooks below add at most PARE_FMT_IO_MAX_T */
    snprintf(t->suffix, sizeof t->suffix, "%s", suffix);
    t->dtype = dt, t->ndim = d1 ? 2 : 1, t->shape[0] = d0, t->shape[1] = d1, t->data = data, t->taken = 0;
}

static void add_num(pare_fmt_io *io, const char *key, double v)
{
    pare_fmt_io_attr *a = &io->a[io->na++];
    snprintf(a->key, sizeof a->key, "%s", key);
    a->is_str = 0, a->num = v;
}

static void add_str(pare_fmt_io *io, const char *key, const char *v)
{
    pare_fmt_io_attr *a = &io->a[io->na++];
    snprintf(a->key, sizeof a->key, "%s", key);
    a->is_str = 1;
    snprintf(a->str, sizeof a->str, "%s", v);
}

static const pare_fmt_io_attr *find_attr(const pare_fmt_io *io, const char *key)
{
    for (int i = 0; i < io->na; i++)
        if (!strcmp(io->a[i].key, key)) return &io->a[i];
    return NULL;
}

/* A number attribute in [lo, hi] (integral when integer); missing: def, unless def is NAN (required). */
static pare_status get_num(const pare_fmt_io *io, const char *fmt, const char *key, double lo, double hi, int integer,
                           double def, double *out)
{
    const pare_fmt_io_attr *a = find_attr(io, key);
    if (!a) {
        if (!isnan(def)) return *out = def, PARE_OK;
        return pare_fail(PARE_EFORMAT, "%s weight '%s': its checkpoint form has no \"%s\"", fmt, io->param, key);
    }
    if (a->is_str || !isfinite(a->num) || a->num < lo || a->num > hi || (integer && a->num != floor(a->num)))
        return pare_fail(PARE_EFORMAT, "%s weight '%s': \"%s\" must be a%s number in [%g, %g]", fmt, io->param, key,
                         integer ? "n integer" : "", lo, hi);
    *out = a->num;
    return PARE_OK;
}

static const char *get_str(const pare_fmt_io *io, const char *key, const char *def)
{
    const pare_fmt_io_attr *a = find_attr(io, key);
    return a && a->is_str ? a->str : def;
}

/* The tensor "<param>.<suffix>" of dtype dt and shape (d0[, d1]); PARE_EFORMAT naming it otherwise. */
static pare_status take(pare_fmt_io *io, const char *fmt, const char *suffix, pare_fmt_io_dtype dt, int64_t d0, int64_t d1,
                        const void **out)
{
    for (int i = 0; i < io->nt; i++) {
        pare_fmt_io_tensor *t = &io->t[i];
        if (strcmp(t->suffix, suffix)) continue;
        int nd = d1 ? 2 : 1;
        if (t->dtype != dt || t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) {
            char want[64];
            if (nd == 2) snprintf(want, sizeof want, "%s [%lld, %lld]", io_dtypes[dt].name, (long long)d0, (long long)d1);
            else snprintf(want, sizeof want, "%s [%lld]", io_dtypes[dt].name, (long long)d0);
            return pare_fail(PARE_EFORMAT, "tensor '%s.%s' (%s weight '%s'): expected %s", io->param, suffix, fmt, io->param,
                             want);
        }
        t->taken = 1;
        *out = t->data;
        return PARE_OK;
    }
    return pare_fail(PARE_EFORMAT, "tensor '%s.%s' is missing: the %s form of weight '%s' needs it", io->param, suffix, fmt,
                     io->param);
}

static void keep_words(pare_qlinear *q, const pare_fmt_io *io, const char *desc)
{
    snprintf(q->desc, sizeof q->desc, "%s", get_str(io, "desc", desc));
    snprintf(q->method, sizeof q->method, "%.*s", (int)sizeof q->method - 1, get_str(io, "method", "checkpoint"));
}

static void save_words(pare_fmt_io *io, const pare_qlinear *q)
{
    add_str(io, "desc", q->desc);
    add_str(io, "method", q->method);
}

/* A 2-D weight whose shape fits the checks below. */
static pare_status check_2d(const pare_param *w, const char *fmt)
{
    if (w->ndim != 2 || w->shape[0] < 1 || w->shape[1] < 1)
        return pare_fail(PARE_EFORMAT, "%s weight '%s': the parameter is not a 2-D weight", fmt, w->name);
    return PARE_OK;
}

/* ---- int8 (fmt_i8.c) ---- */

pare_status pare_fmt_i8_save(const pare_param *w, pare_fmt_io *io)
{
    const pare_qlinear *q = w->q;
    const pare_i8_act *a = &q->act;
    add_tensor(io, "q", PARE_FIO_I8, q->i8.N, q->i8.K, q->i8.q);
    add_tensor(io, "scale", PARE_FIO_F32, q->i8.N, 0, q->i8.scale);
    add_str(io, "act_mode", pare_act_mode_name(a->mode));
    add_num(io, "act_symmetric", a->symmetric != 0);
    add_num(io, "act_scale", a->scale);
    add_num(io, "act_zero", a->zero);
    add_num(io, "outlier_threshold", a->outlier_threshold);
    add_num(io, "torch_qparams", a->torch_qparams != 0);
    add_num(io, "outlier_f16", a->outlier_f16 != 0);
    save_words(io, q);
    return PARE_OK;
}

pare_status pare_fmt_i8_load(pare_param *w, pare_fmt_io *io, int fill_master)
{
    const char *F = "int8";
    PARE_TRY(check_2d(w, F));
    int64_t N = w->shape[0], K = w->shape[1];
    const void *qv, *sv;
    PARE_TRY(take(io, F, "q", PARE_FIO_I8, N, K, &qv));
    PARE_TRY(take(io, F, "scale", PARE_FIO_F32, N, 0, &sv));
    const char *mode = get_str(io, "act_mode", NULL);
    int mi = -1;
    for (int i = 0; mode && i < PARE_ACT_MODE_COUNT; i++)
        if (!strcmp(pare_act_mode_name((pare_act_mode)i), mode)) mi = i;
    if (mi < 0)
        return pare_fail(PARE_EFORMAT, "int8 weight '%s': act_mode '%s' is not one of dynamic_token, dynamic_tensor, static",
                         io->param, mode ? mode : "(missing)");
    double sym, sc, z, thr, tq;
    PARE_TRY(get_num(io, F, "act_symmetric", 0, 1, 1, NAN, &sym));
    PARE_TRY(get_num(io, F, "act_scale", 0, 3.4e38, 0, 0, &sc));
    PARE_TRY(get_num(io, F, "act_zero", -255, 255, 1, 0, &z));
    PARE_TRY(get_num(io, F, "outlier_threshold", 0, 3.4e38, 0, 0, &thr));
    PARE_TRY(get_num(io, F, "torch_qparams", 0, 1, 1, 0, &tq));
    double of16; /* absent in files from before the f16 outlier part: their outliers ran in f32 */
    PARE_TRY(get_num(io, F, "outlier_f16", 0, 1, 1, 0, &of16));
    if (mi == PARE_ACT_STATIC && !(sc > 0))
        return pare_fail(PARE_EFORMAT, "int8 weight '%s': a static activation scheme needs act_scale > 0", io->param);
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_I8_CHANNEL);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_i8_weight_from_int(&q->i8, qv, sv, N, K);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st == PARE_ENOMEM ? st : PARE_EFORMAT, "int8 weight '%s'", io->param);
    }
    q->act = (pare_i8_act){.mode = (pare_act_mode)mi, .symmetric = (int)sym, .scale = (float)sc, .zero = (int32_t)z,
                           .outlier_threshold = (float)thr, .torch_qparams = (int)tq, .outlier_f16 = (int)of16};
    q->bits = 8.0 * (double)pare_i8_weight_bytes(&q->i8);
    keep_words(q, io, "int8 w/channel");
    if (fill_master) /* the dequantize pass's values: q·scale per row */
        for (int64_t r = 0; r < N; r++)
            for (int64_t k = 0; k < K; k++) w->blob->data[r * K + k] = (float)q->i8.q[r * K + k] * q->i8.scale[r];
    pare_param_set_q(w, q);
    return PARE_OK;
}

/* ---- qblock (fmt_qblock.c) ---- */

/* Bytes of one row of qs, or 0 for a kind without a checkpoint form here. */
static int64_t qb_row_bytes(pare_qb_kind k, int64_t K)
{
    switch (k) {
    case PARE_QB_I4G: case PARE_QB_Q4_0: case PARE_QB_Q4_1: return K / 2;
    case PARE_QB_I8G: case PARE_QB_Q8_0: return K;
    default: return 0;
    }
}

static int qb_8bit(pare_qb_kind k) { return k == PARE_QB_I8G || k == PARE_QB_Q8_0; }

/* The ggml-block kinds (Q5_0, Q5_1, Q4_K, Q5_K, Q6_K: qblock.h) keep llama.cpp's blocks as they are: qs is the
 * whole form. Their fp16 fields: where in a block, how many (d; d and m / dmin). */
static int qb_ggml_kind(pare_qb_kind k)
{
    return k == PARE_QB_Q5_0 || k == PARE_QB_Q5_1 || k == PARE_QB_Q4_K || k == PARE_QB_Q5_K || k == PARE_QB_Q6_K;
}

static void qb_ggml_halves(pare_qb_kind k, int *at, int *n)
{
    *at = k == PARE_QB_Q6_K ? 208 : 0; /* block_q6_K ends with d; the others start with d (, m / dmin) */
    *n = k == PARE_QB_Q5_0 || k == PARE_QB_Q6_K ? 1 : 2;
}

static pare_status qb_ggml_save(const pare_qb_weight *b, pare_fmt_io *io)
{
    add_tensor(io, "qs", PARE_FIO_U8, b->N, (int64_t)pare_qb_ggml_row_bytes(b->kind, b->K), b->qs);
    add_str(io, "kind", pare_qb_kind_name(b->kind));
    add_num(io, "group", (double)b->group);
    add_num(io, "symmetric", b->symmetric != 0);
    return PARE_OK;
}

static pare_status qb_ggml_load(pare_param *w, pare_fmt_io *io, pare_qb_kind kind, int fill_master)
{
    int64_t N = w->shape[0], K = w->shape[1];
    int bbytes = 0, belems = pare_qb_ggml_block(kind, &bbytes);
    int64_t rb = (int64_t)pare_qb_ggml_row_bytes(kind, K);
    if (!rb)
        return pare_fail(PARE_EFORMAT, "qblock weight '%s' (%s): K = %lld is not a multiple of the block (%d)", io->param,
                         pare_qb_kind_name(kind), (long long)K, belems);
    const void *qs;
    PARE_TRY(take(io, "qblock", "qs", PARE_FIO_U8, N, rb, &qs));
    int at, nh;
    qb_ggml_halves(kind, &at, &nh);
    for (int64_t blk = 0; blk < N * (rb / bbytes); blk++) /* a NaN or Inf scale computes garbage that looks fine */
        for (int h = 0; h < nh; h++) {
            uint16_t v;
            memcpy(&v, (const uint8_t *)qs + blk * bbytes + at + 2 * h, 2);
            if ((v & 0x7c00) == 0x7c00)
                return pare_fail(PARE_EFORMAT, "tensor '%s.qs': block %lld of row %lld has a %s scale: %s scales must be finite",
                                 io->param, (long long)(blk % (rb / bbytes)), (long long)(blk / (rb / bbytes)),
                                 v & 0x3ff ? "NaN" : "Inf", pare_qb_kind_name(kind));
        }
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_QBLOCK);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_qb_from_ggml(&q->qb, kind, qs, (size_t)(N * rb), N, K);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st == PARE_ENOMEM ? st : PARE_EFORMAT, "qblock weight '%s'", io->param);
    }
    q->bits = 8.0 * (double)pare_qb_bytes(&q->qb);
    keep_words(q, io, pare_qb_kind_name(kind));
    if (fill_master) pare_qb_dequantize(w->blob->data, &q->qb);
    pare_param_set_q(w, q);
    return PARE_OK;
}

pare_status pare_fmt_qblock_save(const pare_param *w, pare_fmt_io *io)
{
    const pare_qb_weight *b = &w->q->qb;
    if (qb_ggml_kind(b->kind)) {
        PARE_TRY(qb_ggml_save(b, io));
        save_words(io, w->q);
        return PARE_OK;
    }
    int64_t rb = qb_row_bytes(b->kind, b->K), ng = b->K / b->group;
    if (!rb)
        return pare_fail(PARE_ENOTSUP, "weight %s is stored as %s, which has no checkpoint form yet (int4_group, int8_group, "
                         "q8_0, q4_0, q4_1 have)", w->name, pare_qb_kind_name(b->kind));
    add_tensor(io, "qs", qb_8bit(b->kind) ? PARE_FIO_I8 : PARE_FIO_U8, b->N, rb, b->qs);
    add_tensor(io, "scale", PARE_FIO_F16, b->N, ng, b->scale);
    if (b->min) add_tensor(io, "min", PARE_FIO_F16, b->N, b->K / PARE_QB_QK, b->min);
    if (b->zero) add_tensor(io, "zero", PARE_FIO_U8, b->N, ng, b->zero);
    add_str(io, "kind", pare_qb_kind_name(b->kind));
    add_num(io, "group", (double)b->group);
    add_num(io, "symmetric", b->symmetric != 0);
    save_words(io, w->q);
    return PARE_OK;
}

/* A copy of n bytes in 64-byte aligned memory, as qblock.c allocates (freed by pare_qb_free). */
static void *copy64(const void *src, size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) / 64 * 64 : 64)) return NULL;
    memcpy(p, src, n);
    return p;
}

/* fp16 scales: finite (a NaN or Inf scale computes garbage that looks fine) */
static pare_status check_f16(const pare_fmt_io *io, const char *suffix, const uint16_t *h, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if ((h[i] & 0x7c00) == 0x7c00)
            return pare_fail(PARE_EFORMAT, "tensor '%s.%s': element %lld is %s: qblock scales must be finite", io->param, suffix,
                             (long long)i, h[i] & 0x3ff ? "NaN" : "Inf");
    return PARE_OK;
}

pare_status pare_fmt_qblock_load(pare_param *w, pare_fmt_io *io, int fill_master)
{
    const char *F = "qblock";
    PARE_TRY(check_2d(w, F));
    int64_t N = w->shape[0], K = w->shape[1];
    pare_qb_kind kind;
    const char *kname = get_str(io, "kind", "(missing)");
    if (pare_qb_kind_parse(kname, &kind) == PARE_OK && qb_ggml_kind(kind)) return qb_ggml_load(w, io, kind, fill_master);
    if (pare_qb_kind_parse(kname, &kind) != PARE_OK || !qb_row_bytes(kind, K))
        return pare_fail(PARE_EFORMAT, "qblock weight '%s': kind '%s' is not one of int4_group, int8_group, q8_0, q4_0, q4_1, "
                         "q5_0, q5_1, q4_k, q5_k, q6_k", io->param, kname);
    double g, sym;
    PARE_TRY(get_num(io, F, "group", 1, (double)K, 1, NAN, &g));
    PARE_TRY(get_num(io, F, "symmetric", 0, 1, 1, NAN, &sym));
    int64_t group = (int64_t)g;
    int qkind = kind != PARE_QB_I4G && kind != PARE_QB_I8G;
    if ((qkind && group != PARE_QB_QK) || group % PARE_QB_QK || K % group)
        return pare_fail(PARE_EFORMAT, "qblock weight '%s' (%s): group %lld must be a multiple of 32 dividing K = %lld%s",
                         io->param, kname, (long long)group, (long long)K, qkind ? " (32 for the llama.cpp kinds)" : "");
    int want_sym = kind == PARE_QB_Q4_1 ? 0 : kind == PARE_QB_I4G ? (int)sym : 1;
    if ((int)sym != want_sym)
        return pare_fail(PARE_EFORMAT, "qblock weight '%s' (%s): symmetric = %d is not possible for this kind", io->param, kname,
                         (int)sym);
    int64_t rb = qb_row_bytes(kind, K), ng = K / group;
    const void *qs, *sc, *mn = NULL, *zr = NULL;
    PARE_TRY(take(io, F, "qs", qb_8bit(kind) ? PARE_FIO_I8 : PARE_FIO_U8, N, rb, &qs));
    PARE_TRY(take(io, F, "scale", PARE_FIO_F16, N, ng, &sc));
    PARE_TRY(check_f16(io, "scale", sc, N * ng));
    if (kind == PARE_QB_Q4_1) {
        PARE_TRY(take(io, F, "min", PARE_FIO_F16, N, K / PARE_QB_QK, &mn));
        PARE_TRY(check_f16(io, "min", mn, N * (K / PARE_QB_QK)));
    }
    if (kind == PARE_QB_I4G && !sym) PARE_TRY(take(io, F, "zero", PARE_FIO_U8, N, ng, &zr));
    if (qb_8bit(kind)) /* the quantizers give [-127, 127]; the kernels' +128 offsets assume it */
        for (int64_t i = 0; i < N * rb; i++)
            if (((const int8_t *)qs)[i] == -128)
                return pare_fail(PARE_EFORMAT, "tensor '%s.qs': element (%lld, %lld) is -128: %s codes lie in [-127, 127]",
                                 io->param, (long long)(i / rb), (long long)(i % rb), kname);
    if (zr)
        for (int64_t i = 0; i < N * ng; i++)
            if (((const uint8_t *)zr)[i] > 15)
                return pare_fail(PARE_EFORMAT, "tensor '%s.zero': element (%lld, %lld) is %d: int4 zero points lie in [0, 15]",
                                 io->param, (long long)(i / ng), (long long)(i % ng), ((const uint8_t *)zr)[i]);
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_QBLOCK);
    if (!q) return PARE_ENOMEM;
    pare_qb_weight *b = &q->qb;
    *b = (pare_qb_weight){.kind = kind, .N = N, .K = K, .group = group, .symmetric = (int)sym};
    b->qs = copy64(qs, (size_t)(N * rb));
    b->scale = copy64(sc, (size_t)(N * ng) * 2);
    if (mn) b->min = copy64(mn, (size_t)(N * (K / PARE_QB_QK)) * 2);
    if (zr) b->zero = copy64(zr, (size_t)(N * ng));
    if (!b->qs || !b->scale || (mn && !b->min) || (zr && !b->zero)) {
        pare_qlinear_release(q);
        return pare_fail(PARE_ENOMEM, "out of memory (qblock weight '%s')", io->param);
    }
    q->bits = 8.0 * (double)pare_qb_bytes(b);
    keep_words(q, io, pare_qb_kind_name(kind));
    if (fill_master) pare_qb_dequantize(w->blob->data, b);
    pare_param_set_q(w, q);
    return PARE_OK;
}

/* ---- wq: weight-only int8 / int3 / int2, binary, ternary, W4A8 (fmt_wq.c) ---- */

pare_status pare_fmt_wq_save(const pare_param *w, pare_fmt_io *io)
{
    const pare_wq_weight *b = &w->q->wq;
    int64_t ng = b->K / b->group;
    add_tensor(io, "qs", PARE_FIO_U8, b->N, pare_wq_row_bytes(b), b->qs);
    add_tensor(io, "scale", PARE_FIO_F16, b->N, ng, b->scale);
    if (b->zero) add_tensor(io, "zero", PARE_FIO_U8, b->N, ng, b->zero);
    add_str(io, "kind", pare_wq_kind_name(b->kind));
    add_num(io, "group", (double)b->group);
    add_num(io, "symmetric", b->symmetric != 0);
    save_words(io, w->q);
    return PARE_OK;
}

/* n bytes in 64-byte aligned memory with 64 bytes to spare, as wq.c allocates (the kernels read whole vectors) */
static void *copy64_pad(const void *src, size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n + 63) / 64 * 64 + 64)) return NULL;
    memset(p, 0, (n + 63) / 64 * 64 + 64);
    memcpy(p, src, n);
    return p;
}

pare_status pare_fmt_wq_load(pare_param *w, pare_fmt_io *io, int fill_master)
{
    const char *F = "wq";
    PARE_TRY(check_2d(w, F));
    int64_t N = w->shape[0], K = w->shape[1];
    const char *kname = get_str(io, "kind", "(missing)");
    int kind = -1;
    for (int k = 0; k < PARE_WQ_COUNT; k++)
        if (!strcmp(kname, pare_wq_kind_name((pare_wq_kind)k))) kind = k;
    if (kind < 0)
        return pare_fail(PARE_EFORMAT, "wq weight '%s': kind '%s' is not one of int8_wo, int3, int2, binary, ternary, w4a8",
                         io->param, kname);
    double g, sym;
    PARE_TRY(get_num(io, F, "group", 1, (double)K, 1, NAN, &g));
    PARE_TRY(get_num(io, F, "symmetric", 0, 1, 1, NAN, &sym));
    if (pare_wq_check((pare_wq_kind)kind, N, K, (int64_t)g, (int)sym) != PARE_OK)
        return pare_fail(PARE_EFORMAT, "wq weight '%s' (%s): %s", io->param, kname, pare_errmsg());
    pare_wq_weight shape = {.kind = (pare_wq_kind)kind, .N = N, .K = K, .group = (int64_t)g, .symmetric = (int)sym};
    int64_t rb = pare_wq_row_bytes(&shape), ng = K / shape.group;
    const void *qs, *sc, *zr = NULL;
    PARE_TRY(take(io, F, "qs", PARE_FIO_U8, N, rb, &qs));
    PARE_TRY(take(io, F, "scale", PARE_FIO_F16, N, ng, &sc));
    PARE_TRY(check_f16(io, "scale", sc, N * ng));
    if (!shape.symmetric) {
        PARE_TRY(take(io, F, "zero", PARE_FIO_U8, N, ng, &zr));
        int zmax = (1 << pare_wq_kind_bits((pare_wq_kind)kind)) - 1;
        for (int64_t i = 0; i < N * ng; i++)
            if (((const uint8_t *)zr)[i] > zmax)
                return pare_fail(PARE_EFORMAT, "tensor '%s.zero': element (%lld, %lld) is %d: %s zero points lie in [0, %d]",
                                 io->param, (long long)(i / ng), (long long)(i % ng), ((const uint8_t *)zr)[i], kname, zmax);
    }
    if (kind == PARE_WQ_TER) /* per 16 elements a + word then a − word: an element in both is no ternary value */
        for (int64_t i = 0; i + 3 < N * rb; i += 4) {
            const uint8_t *b = (const uint8_t *)qs + i;
            if ((b[0] & b[2]) | (b[1] & b[3]))
                return pare_fail(PARE_EFORMAT, "tensor '%s.qs': row %lld has an element marked both +alpha and -alpha",
                                 io->param, (long long)(i / rb));
        }
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_WQ);
    if (!q) return PARE_ENOMEM;
    pare_wq_weight *b = &q->wq;
    *b = shape;
    b->qs = copy64_pad(qs, (size_t)(N * rb));
    b->scale = copy64_pad(sc, (size_t)(N * ng) * 2);
    if (zr) b->zero = copy64_pad(zr, (size_t)(N * ng));
    if (!b->qs || !b->scale || (zr && !b->zero)) {
        pare_qlinear_release(q);
        return pare_fail(PARE_ENOMEM, "out of memory (wq weight '%s')", io->param);
    }
    q->bits = 8.0 * (double)pare_wq_bytes(b);
    keep_words(q, io, pare_wq_kind_name(b->kind));
    if (fill_master) pare_wq_dequantize(w->blob->data, b);
    pare_param_set_q(w, q);
    return PARE_OK;
}

/* ---- pq: product quantization (fmt_pq.c) ---- */

pare_status pare_fmt_pq_save(const pare_param *w, pare_fmt_io *io)
{
    const pare_pq_weight *b = &w->q->pq;
    add_tensor(io, "codes", PARE_FIO_U8, b->N, b->K / b->d, b->codes);
    if (b->f16) add_tensor(io, "codebook", PARE_FIO_F16, b->k, b->d, b->cb16);
    else add_tensor(io, "codebook", PARE_FIO_F32, b->k, b->d, b->cb);
    add_num(io, "block", (double)b->d);
    add_num(io, "k", (double)b->k);
    add_num(io, "f16", b->f16 != 0);
    save_words(io, w->q);
    return PARE_OK;
}

pare_status pare_fmt_pq_load(pare_param *w, pare_fmt_io *io, int fill_master)
{
    const char *F = "pq";
    PARE_TRY(check_2d(w, F));
    int64_t N = w->shape[0], K = w->shape[1];
    double dd, kk, f16;
    PARE_TRY(get_num(io, F, "block", 1, (double)K, 1, NAN, &dd));
    PARE_TRY(get_num(io, F, "k", 1, PARE_PQ_MAX_K, 1, NAN, &kk));
    PARE_TRY(get_num(io, F, "f16", 0, 1, 1, NAN, &f16));
    int64_t d = (int64_t)dd, k = (int64_t)kk;
    if (K % d)
        return pare_fail(PARE_EFORMAT, "pq weight '%s': block %lld does not divide K = %lld", io->param, (long long)d,
                         (long long)K);
    const void *codes, *cb;
    PARE_TRY(take(io, F, "codes", PARE_FIO_U8, N, K / d, &codes));
    PARE_TRY(take(io, F, "codebook", f16 ? PARE_FIO_F16 : PARE_FIO_F32, k, d, &cb));
    if (f16) PARE_TRY(check_f16(io, "codebook", cb, k * d));
    else
        for (int64_t i = 0; i < k * d; i++)
            if (!isfinite(((const float *)cb)[i]))
                return pare_fail(PARE_EFORMAT, "tensor '%s.codebook': element %lld is not finite", io->param, (long long)i);
    for (int64_t i = 0; i < N * (K / d); i++)
        if (((const uint8_t *)codes)[i] >= k)
            return pare_fail(PARE_EFORMAT, "tensor '%s.codes': element (%lld, %lld) is %d: codes index k = %lld centroids",
                             io->param, (long long)(i / (K / d)), (long long)(i % (K / d)), ((const uint8_t *)codes)[i],
                             (long long)k);
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_PQ);
    if (!q) return PARE_ENOMEM;
    pare_pq_weight *b = &q->pq;
    *b = (pare_pq_weight){.N = N, .K = K, .d = d, .k = k, .f16 = (int)f16};
    size_t nc = (size_t)(N * (K / d)), ncb = (size_t)(k * d) * (f16 ? 2 : 4);
    b->codes = pare_alloc(nc);
    void *c = pare_alloc(ncb);
    if (f16) b->cb16 = c;
    else b->cb = c;
    if (!b->codes || !c) {
        pare_qlinear_release(q);
        return pare_fail(PARE_ENOMEM, "out of memory (pq weight '%s')", io->param);
    }
    memcpy(b->codes, codes, nc);
    memcpy(c, cb, ncb);
    q->bits = 8.0 * (double)pare_pq_bytes(b);
    keep_words(q, io, "pq");
    if (fill_master) pare_pq_dequantize(w->blob->data, b);
    pare_param_set_q(w, q);
    return PARE_OK;
}

/* ---- simulated (fmt_simulated.c) ---- */

pare_status pare_fmt_sim_save(const pare_param *w, pare_fmt_io *io)
{
    const pare_qlinear *q = w->q;
    char spec[64];
    add_tensor(io, "sim", PARE_FIO_F32, w->shape[0], w->shape[1], q->w_sim);
    add_str(io, "w_spec", pare_qspec_str(&q->w_spec, spec, sizeof spec));
    add_num(io, "a_sim", q->a_sim);
    if (q->a_sim) add_str(io, "a_spec", pare_qspec_str(&q->a_spec, spec, sizeof spec));
    if (q->a_sim == 2) {
        add_num(io, "a_scale", q->a_qp.scale);
        add_num(io, "a_zero", q->a_qp.zero);
        add_num(io, "a_qmin", q->a_qp.qmin);
        add_num(io, "a_qmax", q->a_qp.qmax);
    }
    add_num(io, "bits", q->bits);
    save_words(io, q);
    return PARE_OK;
}

pare_status pare_fmt_sim_load(pare_param *w, pare_fmt_io *io, int fill_master)
{
    const char *F = "simulated";
    PARE_TRY(check_2d(w, F));
    int64_t N = w->shape[0], K = w->shape[1];
    const void *sim;
    PARE_TRY(take(io, F, "sim", PARE_FIO_F32, N, K, &sim));
    int64_t bad = pare_first_nonfinite(sim, N * K);
    if (bad >= 0)
        return pare_fail(PARE_EFORMAT, "tensor '%s.sim' holds a non-finite value at (%lld, %lld)", io->param,
                         (long long)(bad / K), (long long)(bad % K));
    double a_sim, bits, sc = 0, z = 0, lo = 0, hi = 0;
    PARE_TRY(get_num(io, F, "a_sim", 0, 2, 1, NAN, &a_sim));
    PARE_TRY(get_num(io, F, "bits", 0, 64.0 * (double)N * (double)K, 0, NAN, &bits));
    pare_qspec ws, as = {0};
    const char *wt = get_str(io, "w_spec", ""), *at = get_str(io, "a_spec", "");
    if (pare_qspec_parse(&ws, wt) != PARE_OK || pare_qspec_check(&ws, N, K) != PARE_OK)
        return pare_fail_ctx(PARE_EFORMAT, "simulated weight '%s': w_spec '%s'", io->param, wt);
    if (a_sim && (pare_qspec_parse(&as, at) != PARE_OK || pare_qspec_check(&as, 1, K) != PARE_OK))
        return pare_fail_ctx(PARE_EFORMAT, "simulated weight '%s': a_spec '%s'", io->param, at);
    if (a_sim == 2) {
        PARE_TRY(get_num(io, F, "a_scale", 1e-38, 3.4e38, 0, NAN, &sc));
        PARE_TRY(get_num(io, F, "a_qmin", -65536, 65536, 1, NAN, &lo));
        PARE_TRY(get_num(io, F, "a_qmax", lo, 65536, 1, NAN, &hi));
        PARE_TRY(get_num(io, F, "a_zero", lo, hi, 1, NAN, &z));
    }
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_SIMULATED);
    if (!q) return PARE_ENOMEM;
    if (!(q->w_sim = pare_alloc(sizeof(float) * (size_t)(N * K)))) {
        pare_qlinear_release(q);
        return pare_fail(PARE_ENOMEM, "out of memory (simulated weight '%s')", io->param);
    }
    memcpy(q->w_sim, sim, sizeof(float) * (size_t)(N * K));
    q->w_spec = ws, q->a_spec = as, q->a_sim = (int)a_sim, q->bits = bits;
    q->a_qp = (pare_qparams){(float)sc, (int32_t)z, (int32_t)lo, (int32_t)hi};
    keep_words(q, io, "simulated");
    if (fill_master) memcpy(w->blob->data, sim, sizeof(float) * (size_t)(N * K));
    pare_param_set_q(w, q);
    return PARE_OK;
}
