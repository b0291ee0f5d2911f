/* test_gguf.c — GGUF files (io/gguf.h): pare's reader against files built here byte by byte from the
 * published specification (ggml's docs/gguf.md, version 3), independent of pare's writer; the writer's
 * round trip of quantized models; and bad files.
 *
 * Checks:
 *   - a file made by hand (header, 13 metadata pairs of every value type including a nested array, a
 *     general.alignment of 64, tensors of types f32 / f16 / q8_0 / q4_K / q6_K with hand-placed offsets,
 *     padding) reads back field for field, and every tensor's bytes are the ones placed;
 *   - a model quantized with every block format pare has (q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k) and with
 *     the half pass (f16, bf16), saved with pare_gguf_save_model: each Linear weight's tensor has the ggml
 *     type id, dims (K, N), and exactly the bytes of pare_qb_to_ggml (themselves byte-identical to ggml's
 *     reference quantizers: test_qblock_k.c) or of the f16/bf16 weights; f32 tensors hold the f32 weights;
 *     offsets aligned to 32; the metadata (general.architecture "pare", general.alignment 32,
 *     general.quantization_version 2, general.file_type, pare.config); pare_qb_from_ggml on the read blocks
 *     gives a weight whose Linear equals the model's bit for bit; formats without a ggml type (int8 per
 *     channel) are written as F32 and listed in pare.f32_fallback;
 *   - bad files give PARE_EFORMAT naming the file and the field: every truncation of the hand-made file,
 *     wrong magic, version 1 and 4, a bad value type, a bool of 2, a duplicate key, a key longer than the
 *     file, general.alignment 12 or of type u64, a bad ggml type id, a misaligned offset, a tensor past the
 *     end, n_dims 0 and 5, a 65-byte name, a duplicate tensor name, counts too large for the file, arrays
 *     nested 9 deep; a missing file is PARE_EIO naming it.
 * The `gguf` Python package (another oracle) is not installed on this machine (/usr/bin/python3); not used.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/pass.h"
#include "core/status.h"
#include "core/tensor.h"
#include "graph/graph.h"
#include "io/gguf.h"
#include "kernels/qblock.h"
#include "tap.h"
#include "test_models.h"

static int errmsg_has(const char *s) { return strstr(pare_errmsg(), s) != NULL; }

/* ---- a byte builder, written from the spec ---- */

typedef struct buf { uint8_t p[1 << 16]; size_t n; } buf;

static void put(buf *b, const void *s, size_t k) { memcpy(b->p + b->n, s, k), b->n += k; }
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u32(buf *b, uint32_t v) { for (int i = 0; i < 4; i++) u8(b, (uint8_t)(v >> (8 * i))); }
static void u64(buf *b, uint64_t v) { for (int i = 0; i < 8; i++) u8(b, (uint8_t)(v >> (8 * i))); }
static void str(buf *b, const char *s) { u64(b, strlen(s)), put(b, s, strlen(s)); }
static void pad_to(buf *b, size_t a) { while (b->n % a) u8(b, 0); }

/* The hand-made file: see the header comment. Fills where each tensor's bytes begin (file offsets). */
#define NT 5
static const char *const T_NAMES[NT] = {"vec.f32", "mat.f16", "mat.q8_0", "mat.q4_K", "mat.q6_K"};
static const uint32_t T_TYPES[NT] = {0, 1, 8, 12, 14};
static const uint64_t T_DIMS[NT][2] = {{5, 1}, {3, 2}, {64, 3}, {256, 2}, {512, 1}};
static const int T_NDIMS[NT] = {1, 2, 2, 2, 2};
static const size_t T_BYTES[NT] = {20, 12, 3 * 2 * 34, 2 * 144, 2 * 210};

static size_t handmade(buf *b, size_t *data_at, uint64_t *offsets, int nested_depth)
{
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, NT);
    u64(b, 13);
    str(b, "general.architecture"), u32(b, 8), str(b, "llama");
    str(b, "general.alignment"), u32(b, 4), u32(b, 64);
    str(b, "t.u8"), u32(b, 0), u8(b, 200);
    str(b, "t.i8"), u32(b, 1), u8(b, 0x85); /* -123 */
    str(b, "t.u16"), u32(b, 2), u8(b, 0x34), u8(b, 0x12);
    str(b, "t.i16"), u32(b, 3), u8(b, 0xfe), u8(b, 0xff); /* -2 */
    str(b, "t.i32"), u32(b, 5), u32(b, (uint32_t)-70000);
    str(b, "t.f32"), u32(b, 6), u32(b, 0x3fc00000u); /* 1.5 */
    str(b, "t.bool"), u32(b, 7), u8(b, 1);
    str(b, "t.u64"), u32(b, 10), u64(b, 0x123456789abcdefULL);
    str(b, "t.i64"), u32(b, 11), u64(b, (uint64_t)-5);
    str(b, "t.f64"), u32(b, 12), u64(b, 0xc004000000000000ULL); /* -2.5 */
    /* an array of arrays of strings, or (nested_depth > 0) arrays nested that deep */
    str(b, "t.arr"), u32(b, 9);
    if (nested_depth) {
        for (int d = 0; d < nested_depth; d++) u32(b, 9), u64(b, 1);
        u32(b, 4), u64(b, 1), u32(b, 7);
    } else {
        u32(b, 9), u64(b, 2);
        u32(b, 8), u64(b, 2), str(b, "a"), str(b, "bc");
        u32(b, 8), u64(b, 0);
    }
    uint64_t off = 0;
    for (int i = 0; i < NT; i++) {
        offsets[i] = off;
        str(b, T_NAMES[i]);
        u32(b, (uint32_t)T_NDIMS[i]);
        for (int d = 0; d < T_NDIMS[i]; d++) u64(b, T_DIMS[i][d]);
        u32(b, T_TYPES[i]);
        u64(b, off);
        off += (T_BYTES[i] + 63) / 64 * 64;
    }
    pad_to(b, 64);
    *data_at = b->n;
    for (int i = 0; i < NT; i++) {
        for (size_t j = 0; j < T_BYTES[i]; j++) u8(b, (uint8_t)(i * 31 + j * 7));
        pad_to(b, 64);
    }
    return b->n;
}

static void test_handmade(void)
{
    static buf b;
    size_t data_at;
    uint64_t offs[NT];
    size_t n = handmade(&b, &data_at, offs, 0);
    pare_gguf *g = NULL;
    pare_status st = pare_gguf_parse(&g, b.p, n, "hand.gguf");
    if (!ok(st == PARE_OK, "hand-made file parses (%s)", st ? pare_errmsg() : "")) return;
    ok(g->version == 3 && g->n_kv == 13 && g->n_tensors == NT && g->alignment == 64 && g->data_offset == data_at,
       "header: version 3, 13 pairs, %d tensors, alignment 64, data at %zu", NT, data_at);
    const pare_gguf_value *v;
    ok((v = pare_gguf_find(g, "general.architecture")) && v->type == 8 && v->v.str.len == 5 &&
           !memcmp(v->v.str.s, "llama", 5),
       "string value");
    ok((v = pare_gguf_find(g, "t.u8")) && v->type == 0 && v->v.u == 200, "u8 200");
    ok((v = pare_gguf_find(g, "t.i8")) && v->type == 1 && v->v.i == -123, "i8 -123");
    ok((v = pare_gguf_find(g, "t.u16")) && v->type == 2 && v->v.u == 0x1234, "u16 0x1234");
    ok((v = pare_gguf_find(g, "t.i16")) && v->type == 3 && v->v.i == -2, "i16 -2");
    ok((v = pare_gguf_find(g, "t.i32")) && v->type == 5 && v->v.i == -70000, "i32 -70000");
    ok((v = pare_gguf_find(g, "t.f32")) && v->type == 6 && v->v.f == 1.5, "f32 1.5");
    ok((v = pare_gguf_find(g, "t.bool")) && v->type == 7 && v->v.u == 1, "bool true");
    ok((v = pare_gguf_find(g, "t.u64")) && v->type == 10 && v->v.u == 0x123456789abcdefULL, "u64");
    ok((v = pare_gguf_find(g, "t.i64")) && v->type == 11 && v->v.i == -5, "i64 -5");
    ok((v = pare_gguf_find(g, "t.f64")) && v->type == 12 && v->v.f == -2.5, "f64 -2.5");
    v = pare_gguf_find(g, "t.arr");
    ok(v && v->type == 9 && v->v.arr.type == 9 && v->v.arr.n == 2 && v->v.arr.items[0].v.arr.n == 2 &&
           v->v.arr.items[0].v.arr.items[1].v.str.len == 2 && !memcmp(v->v.arr.items[0].v.arr.items[1].v.str.s, "bc", 2) &&
           v->v.arr.items[1].v.arr.n == 0,
       "nested array [[\"a\", \"bc\"], []]");
    ok(pare_gguf_find(g, "missing") == NULL, "a missing key is NULL");
    for (int i = 0; i < NT; i++) {
        const pare_gguf_tensor *t = &g->tensors[i];
        int good = !strcmp(t->name, T_NAMES[i]) && t->type == T_TYPES[i] && t->n_dims == (uint32_t)T_NDIMS[i] &&
                   t->offset == offs[i] && t->nbytes == T_BYTES[i];
        for (int d = 0; d < T_NDIMS[i]; d++) good &= t->dims[d] == T_DIMS[i][d];
        const uint8_t *p = pare_gguf_tensor_data(g, i);
        good &= p == g->buf + data_at + offs[i];
        for (size_t j = 0; j < T_BYTES[i] && good; j++) good &= p[j] == (uint8_t)(i * 31 + j * 7);
        ok(good, "tensor %s: %s, dims, offset %llu, %zu bytes where placed", T_NAMES[i], pare_gguf_type_name(t->type),
           (unsigned long long)offs[i], T_BYTES[i]);
    }
    pare_gguf_close(g);

    /* the same through a file */
    char path[] = "/tmp/pare_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        ok(write(fd, b.p, n) == (ssize_t)n, "wrote the hand-made file");
        close(fd);
        ok(pare_gguf_open(&g, path) == PARE_OK && g->n_tensors == NT, "pare_gguf_open reads it");
        pare_gguf_close(g);
        unlink(path);
    }
    ok(pare_gguf_open(&g, "/nonexistent/x.gguf") == PARE_EIO && errmsg_has("/nonexistent/x.gguf") && g == NULL,
       "a missing file: EIO naming it (%s)", pare_errmsg());

    /* every truncation before the last tensor's last byte is an error naming the file, never a crash (the
     * padding after the last tensor is optional) */
    int all = 1;
    size_t bad_at = 0, end = data_at + offs[NT - 1] + T_BYTES[NT - 1];
    for (size_t k = 0; k < end; k++) {
        pare_status s = pare_gguf_parse(&g, b.p, k, "cut.gguf");
        if (s != PARE_EFORMAT || g || !errmsg_has("cut.gguf")) {
            if (all) bad_at = k;
            all = 0;
            pare_gguf_close(g);
        }
    }
    ok(all, "every one of the %zu truncations is PARE_EFORMAT naming the file%s", end, all ? "" : " (first failure below)");
    ok(pare_gguf_parse(&g, b.p, end, "cut.gguf") == PARE_OK, "without the optional padding after the last tensor: read");
    pare_gguf_close(g);
    if (!all) diag("truncation at %zu", bad_at);
    pare_gguf_parse(&g, b.p, data_at + 40, "cut.gguf");
    ok(errmsg_has("runs past the data section") && errmsg_has("mat.f16"), "a cut in the data names the tensor (%s)",
       pare_errmsg());
    pare_gguf_parse(&g, b.p, 200, "cut.gguf");
    ok(errmsg_has("metadata") && errmsg_has("truncated"), "a cut in the metadata names the key (%s)",
       pare_errmsg());

    /* arrays nested 9 deep are refused, 7 deep accepted */
    n = handmade(&b, &data_at, offs, 7);
    ok(pare_gguf_parse(&g, b.p, n, "deep.gguf") == PARE_OK, "arrays nested 8 deep are read");
    pare_gguf_close(g);
    n = handmade(&b, &data_at, offs, 9);
    ok(pare_gguf_parse(&g, b.p, n, "deep.gguf") == PARE_EFORMAT && errmsg_has("nested") && errmsg_has("t.arr"),
       "arrays nested 10 deep refused (%s)", pare_errmsg());
}

/* One corruption of the hand-made file: write v (k bytes, little-endian) at the byte position found by
 * locating `anchor` (a unique byte string) plus delta; expect PARE_EFORMAT with both needles in the message. */
static void corrupt(const char *what, const char *anchor, size_t alen, long delta, uint64_t v, int k, const char *n1,
                    const char *n2)
{
    static buf b;
    size_t data_at;
    uint64_t offs[NT];
    size_t n = handmade(&b, &data_at, offs, 0);
    uint8_t *at = memmem(b.p, n, anchor, alen);
    if (!at) {
        ok(0, "%s: anchor not found", what);
        return;
    }
    at += delta;
    for (int i = 0; i < k; i++) at[i] = (uint8_t)(v >> (8 * i));
    pare_gguf *g = NULL;
    pare_status st = pare_gguf_parse(&g, b.p, n, "bad.gguf");
    ok(st == PARE_EFORMAT && g == NULL && errmsg_has("bad.gguf") && errmsg_has(n1) && (!n2 || errmsg_has(n2)),
       "%s: %s", what, pare_errmsg());
    pare_gguf_close(g);
}

static void test_bad_files(void)
{
    corrupt("wrong magic", "GGUF", 4, 0, 0x46554747u ^ 0x20, 4, "magic", "not a GGUF file");
    corrupt("version 1", "GGUF", 4, 4, 1, 4, "version", "1");
    corrupt("version 4", "GGUF", 4, 4, 4, 4, "version", "4");
    corrupt("huge tensor_count", "GGUF", 4, 8, (uint64_t)1 << 40, 8, "tensor_count", NULL);
    corrupt("huge metadata_kv_count", "GGUF", 4, 16, (uint64_t)1 << 40, 8, "metadata_kv_count", NULL);
    corrupt("bad value type", "t.u8", 4, 4, 13, 4, "t.u8", "value type 13");
    corrupt("bool of 2", "t.bool", 6, 10, 2, 1, "t.bool", "bool");
    corrupt("duplicate key", "t.u16", 5, 2, 'i', 1, "duplicate key", "t.i16");
    corrupt("key longer than the file", "t.f32", 5, -8, 1u << 30, 8, "metadata key", "runs past the end");
    corrupt("alignment 12", "general.alignment", 17, 21, 12, 4, "general.alignment", "multiple of 8");
    corrupt("alignment of type u64", "general.alignment", 17, 17, 10, 4, "general.alignment", NULL);
    corrupt("bad ggml type id", "mat.q8_0", 8, 8 + 4 + 16, 5, 4, "mat.q8_0", "type id 5");
    corrupt("type id 40", "mat.q8_0", 8, 8 + 4 + 16, 40, 4, "mat.q8_0", "type id 40");
    corrupt("misaligned offset", "mat.q4_K", 8, 8 + 4 + 16 + 4, 128 + 32, 8, "mat.q4_K", "not a multiple of the alignment 64");
    corrupt("offset past the end", "mat.q6_K", 8, 8 + 4 + 16 + 4, 1u << 20, 8, "mat.q6_K", "runs past the data section");
    corrupt("n_dims 0", "vec.f32", 7, 7, 0, 4, "vec.f32", "n_dimensions 0");
    corrupt("n_dims 5", "vec.f32", 7, 7, 5, 4, "vec.f32", "n_dimensions 5");
    corrupt("row not a multiple of the block", "mat.q4_K", 8, 8 + 4, 255, 8, "mat.q4_K", "block of 256");
    corrupt("duplicate tensor name", "mat.q6_K", 8, 5, '4', 1, "duplicate tensor name", "mat.q4_K");
    corrupt("name of 65 bytes", "vec.f32", 7, -8, 65, 8, "tensor 0 name", "1..64");
}

/* ---- the writer: every block format, round trip ---- */

static void test_roundtrip(void)
{
    pare_model *m = tiny_encoder(8, 256, 512);
    if (!ok(m != NULL, "tiny encoder (C=256, F=512)")) return;
    static const char *const fmts[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"};
    static const uint32_t ftype[] = {7, 2, 3, 8, 9, 14, 16, 18};
    char path[] = "/tmp/pare_test_gguf_rt_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    close(fd);
    for (int fi = 0; fi < 8; fi++) {
        pare_kv kv[] = {{"format", PARE_KV_STR, 0, fmts[fi]}};
        pare_model *q = NULL;
        pare_status st = pare_apply(&q, m, "qblock", kv, 1);
        if (!ok(st == PARE_OK, "qblock format=%s (%s)", fmts[fi], st ? pare_errmsg() : "")) continue;
        st = pare_gguf_save_model(q, path);
        pare_gguf *g = NULL;
        if (!ok(st == PARE_OK && pare_gguf_open(&g, path) == PARE_OK, "%s: saved and read back (%s)", fmts[fi],
                st ? pare_errmsg() : "")) {
            pare_model_free(q);
            continue;
        }
        const pare_gguf_value *v = pare_gguf_find(g, "general.architecture"), *al = pare_gguf_find(g, "general.alignment"),
                              *qv = pare_gguf_find(g, "general.quantization_version"),
                              *ft = pare_gguf_find(g, "general.file_type"), *cfg = pare_gguf_find(g, "pare.config");
        ok(v && v->v.str.len == 4 && !memcmp(v->v.str.s, "pare", 4) && al && al->type == 4 && al->v.u == 32 && qv &&
               qv->v.u == 2 && ft && ft->v.u == ftype[fi] && cfg && cfg->v.str.len == strlen(q->config),
           "%s: metadata (architecture pare, alignment 32, quantization_version 2, file_type %u, config)", fmts[fi],
           ftype[fi]);
        int nq = 0, good = g->n_tensors == q->nparams, same_y = 1;
        for (int64_t i = 0; good && i < q->nparams; i++) {
            const pare_param *p = &q->params[i];
            const pare_gguf_tensor *t = &g->tensors[i];
            good &= !strcmp(t->name, p->name) && t->n_dims == (uint32_t)p->ndim && t->offset % 32 == 0;
            for (int d = 0; d < p->ndim; d++) good &= t->dims[d] == (uint64_t)p->shape[p->ndim - 1 - d];
            const uint8_t *data = pare_gguf_tensor_data(g, i);
            if (p->q) {
                nq++;
                const pare_qb_weight *w = &p->q->qb;
                size_t nb = pare_qb_bytes(w);
                uint8_t *want = malloc(nb);
                pare_qb_to_ggml(want, nb, w);
                good &= t->type == (uint32_t)pare_qb_ggml_type(w->kind) && t->nbytes == nb && !memcmp(data, want, nb);
                free(want);
                /* the blocks read back run the same Linear */
                pare_qb_weight w2;
                if (pare_qb_from_ggml(&w2, w->kind, data, (size_t)t->nbytes, w->N, w->K) == PARE_OK) {
                    const int64_t M = 3;
                    float *x = malloc((size_t)(M * w->K) * sizeof(float)), *y1 = malloc((size_t)(M * w->N) * 4),
                          *y2 = malloc((size_t)(M * w->N) * 4);
                    for (int64_t k = 0; k < M * w->K; k++) x[k] = sinf((float)k * 0.37f);
                    pare_linear_qb_ref(y1, x, w, NULL, M);
                    pare_linear_qb_ref(y2, x, &w2, NULL, M);
                    same_y &= !memcmp(y1, y2, (size_t)(M * w->N) * 4);
                    free(x), free(y1), free(y2);
                    pare_qb_free(&w2);
                } else same_y = 0;
            } else {
                good &= t->type == 0 && t->nbytes == (uint64_t)pare_param_numel(p) * 4 &&
                        !memcmp(data, p->blob->data, (size_t)t->nbytes);
            }
        }
        ok(good && nq > 0, "%s: %d quantized Linear weights with ggml type %s and pare_qb_to_ggml's bytes; f32 tensors "
           "exact; dims (K, N); offsets aligned", fmts[fi], nq, pare_gguf_type_name((uint32_t)pare_qb_ggml_type(
                                                                  q->params[4].q ? q->params[4].q->qb.kind : PARE_QB_Q8_0)));
        ok(same_y, "%s: blocks read back (pare_qb_from_ggml) compute the same Linear bit for bit", fmts[fi]);
        pare_gguf_close(g);
        pare_model_free(q);
    }
    /* half precision and a format without a ggml type */
    static const char *const halves[] = {"f16", "bf16"};
    for (int hi = 0; hi < 2; hi++) {
        pare_kv kv[] = {{"dtype", PARE_KV_STR, 0, halves[hi]}};
        pare_model *q = NULL;
        pare_status st = pare_apply(&q, m, "bf16", kv, 1);
        if (!ok(st == PARE_OK, "bf16 pass dtype=%s (%s)", halves[hi], st ? pare_errmsg() : "")) continue;
        pare_gguf *g = NULL;
        st = pare_gguf_save_model(q, path);
        int good = st == PARE_OK && pare_gguf_open(&g, path) == PARE_OK, nh = 0;
        for (int64_t i = 0; good && i < q->nparams; i++) {
            const pare_param *p = &q->params[i];
            if (!p->q || p->format != PARE_FMT_HALF) continue;
            nh++;
            good &= g->tensors[i].type == (hi ? 30u : 1u) && g->tensors[i].nbytes == (uint64_t)(p->q->hw.N * p->q->hw.K * 2) &&
                    !memcmp(pare_gguf_tensor_data(g, i), p->q->hw.w, (size_t)g->tensors[i].nbytes);
        }
        ok(good && nh > 0, "%s: %d Linear weights written as GGUF %s with their stored bytes", halves[hi], nh, halves[hi]);
        pare_gguf_close(g);
        pare_model_free(q);
    }
    pare_model *q = NULL;
    if (pare_apply(&q, m, "dynamic_int8", NULL, 0) == PARE_OK) {
        pare_gguf *g = NULL;
        int good = pare_gguf_save_model(q, path) == PARE_OK && pare_gguf_open(&g, path) == PARE_OK;
        const pare_gguf_value *fb = good ? pare_gguf_find(g, "pare.f32_fallback") : NULL;
        int nfall = 0;
        for (int64_t i = 0; good && i < q->nparams; i++)
            if (q->params[i].q) nfall++, good &= g->tensors[i].type == 0;
        ok(good && fb && fb->type == 9 && fb->v.arr.n == (uint64_t)nfall && nfall > 0 &&
               pare_gguf_find(g, "general.file_type") == NULL,
           "int8 per channel has no ggml type: %d weights written as F32 and listed in pare.f32_fallback", nfall);
        pare_gguf_close(g);
        pare_model_free(q);
    }
    unlink(path);
    pare_model_free(m);
}

int main(void)
{
    tap_plan_lazy();
    test_handmade();
    test_bad_files();
    test_roundtrip();
    return tap_done();
}
