/* format.h — storage formats of a Linear weight as one table of traits (in the manner of ggml's
 * type_traits): what a format is called, how its Linear runs forward, the scratch it needs, how it
 * is described in tables. The LINEAR op, the reports and the passes ask this table; nothing switches
 * on the format.
 *
 * Adding a format: a file src/graph/fmt_<name>.c exporting one `const pare_format_traits`, a
 * value appended to pare_format (graph.h), one row in format.c's table (guarded by a static assert on
 * PARE_FMT_COUNT). Worked example: docs/adding-a-technique.md.
 *
 * Training: a trainable format trains its f32 master (the optimizer updates param->blob). Its backward is the f32
 * Linear's on the master (backward NULL) or its own (the 16-bit formats: 16-bit operands, f32 sums, the master's
 * gradient); after each optimizer step the loop calls refresh to make what the format stores from the updated
 * master again (pare_model_refresh_formats). train_check lets a format refuse some of its parameters (f16).
 *
 * Deliberately not here: how a format is made (that is a pass's job, src/compress/).
 */
#ifndef PARE_FORMAT_H
#define PARE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

struct pare_exec;

/* ---- a format's checkpoint form (fmt_io.c; written and read by io/safetensors.c, docs/checkpoints.md) ----
 * A format that can be saved as it is stored lists its tensors (each saved as "<param>.<suffix>" with a real
 * dtype: int8 codes as I8, fp16 scales as F16) and its scalars and strings (saved in __metadata__ "quant"); loading
 * hands them back and the format rebuilds itself from them, the same bytes the pass made. */
#define PARE_FMT_IO_MAX_T 6
#define PARE_FMT_IO_MAX_A 20
typedef enum pare_fmt_io_dtype { PARE_FIO_I8 = 0, PARE_FIO_U8, PARE_FIO_F16, PARE_FIO_F32, PARE_FIO_COUNT } pare_fmt_io_dtype;
typedef struct pare_fmt_io_tensor {
    char suffix[16];         /* the file's tensor is "<param>.<suffix>" */
    pare_fmt_io_dtype dtype;
    int ndim;                /* 1 or 2 */
    int64_t shape[2];
    const void *data;        /* save: the format's own memory; load: the file's bytes in host order (the caller's) */
    int taken;               /* load: the format used it (a tensor no hook takes is an error) */
} pare_fmt_io_tensor;
typedef struct pare_fmt_io_attr {
    char key[24];
    int is_str;
    double num;              /* JSON number: every f32 and int32 exactly */
    char str[96];
} pare_fmt_io_attr;
typedef struct pare_fmt_io {
    const char *param;       /* the parameter's name, for messages */
    pare_fmt_io_tensor t[PARE_FMT_IO_MAX_T];
    int nt;
    pare_fmt_io_attr a[PARE_FMT_IO_MAX_A];
    int na;
} pare_fmt_io;

typedef struct pare_format_traits {
    const char *name;   /* "f32", "int8", "qblock", "simulated": pare_format_name */
    int simulated;      /* 1: no kernel of its own (fake quantization), labelled simulated in every table */
    int trainable;      /* 1: pare_train accepts it (backward through the f32 master) */
    /* y (M, N) = x (M, K) · W^T + bias through this format's kernel; bias may be NULL. */
    pare_status (*forward)(struct pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                           const float *bias, int64_t M);
    /* The same with the node's fused activation (n->a.epilogue, kernels/fuse_ops.h) applied inside the format's
     * kernel, as an epilogue of its GEMM; NULL: the Linear op applies it after forward, in a loop over y. */
    pare_status (*forward_act)(struct pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                               const float *bias, int64_t M);
    /* Scratch bytes the forward needs for M rows (NULL: none). */
    size_t (*workspace)(const pare_param *w, int64_t M);
    /* The format in one word for tables ("int8", "q4_0"); NULL: the traits' name. */
    const char *(*label)(const pare_param *w);
    /* What runs, for provenance ("int8 w/channel a/token (brgemm:avx512_core_vnni)"); writes buf. */
    const char *(*describe)(const pare_param *w, char *buf, size_t n);
    /* Bytes held in a packed layout beside the stored weights (NULL: none). */
    size_t (*packed_bytes)(const pare_param *w);
    /* The dtypes forward reads at the Linear's input, PARE_DTYPE_BIT mask (NULL: f32 only). The Linear op accepts
     * every float dtype (ops.c); pare_model_check_formats holds each node to its weight's format, and forward
     * finds the input's dtype in x->m->values[n->in[0]].dtype (its `in` then points at that dtype's elements). */
    unsigned (*in_dtypes)(const pare_param *w);
    /* Training (trainable formats). The Linear's backward through this format's kernels, adding into each gradient
     * that is not NULL: dx (M,K) the input's, dw (N,K) the f32 master's, dbias (N); dy (M,N) the output's gradient;
     * `in` (M,K) the Linear's input as forward read it (f32, or the dtype in_dtypes allowed:
     * x->m->values[n->in[0]].dtype). Cannot fail (an op's backward returns no status). NULL: the f32 Linear's
     * backward on the master (pare_linear_f32_backward). */
    void (*backward)(struct pare_exec *x, const pare_node *n, const pare_param *w, float *dx, float *dw, float *dbias,
                     const float *dy, const void *in, int64_t M);
    /* After the optimizer changed w's f32 master: make what the format stores from it again, the same bits as the
     * pass would make (reusing the memory; a form shared with a clone is replaced by w's own). NULL: nothing to do. */
    pare_status (*refresh)(pare_param *w);
    /* PARE_OK if w can be trained in this format, else PARE_EINVAL with the reason and the way out (f16 weights: no
     * loss scaling). NULL: `trainable` alone decides. */
    pare_status (*train_check)(const pare_param *w);
    /* Checkpoints (fmt_io.c). save: w's stored form into io (tensors pointing at w's memory, attributes); PARE_ENOTSUP
     * naming the parameter for a variant without one. load: w (its f32 master allocated) stored from io as save
     * described it, every tensor checked (dtype, shape, values) with PARE_EFORMAT naming the parameter; fill_master: the
     * file has no master, so write the dequantized weights into it. NULL: the format has no checkpoint form. */
    pare_status (*save)(const pare_param *w, pare_fmt_io *io);
    pare_status (*load)(pare_param *w, pare_fmt_io *io, int fill_master);
} pare_format_traits;

/* The traits of a format (NULL for an out-of-range value). */
const pare_format_traits *pare_format_get(pare_format f);
/* A describe entry for formats whose quantized weight says what runs: its desc ("q4_0", "sim int4 ..."). */
const char *pare_format_describe_q(const pare_param *w, char *buf, size_t n);
/* One word for a Linear weight's format: the traits' label. */
const char *pare_format_label(const pare_param *w);
/* The dtypes w's format reads at a Linear's input (in_dtypes, or f32). */
unsigned pare_format_in_dtypes(const pare_param *w);
/* Whether parameter w can be trained as it is stored: PARE_OK, or PARE_EINVAL "parameter <name> is stored as <label>; ..."
 * (a format that is not trainable, or its train_check's reason). `who` prefixes the message ("train", "mutual"). */
pare_status pare_format_check_trainable(const pare_param *w, const char *who);
/* After an optimizer step: every parameter of m whose format has a refresh hook made again from its master
 * (the loops call it; anything else that writes masters of a trainable format must too). The first failure is
 * returned, naming the parameter. */
pare_status pare_model_refresh_formats(pare_model *m);
/* Every Linear of m reads its input's dtype: PARE_OK, or PARE_EINVAL naming the node, the value, its dtype and the
 * weight's format (a bf16 value into f32 weights). Checked by pare_exec_new beside pare_model_check_dtypes; not by
 * pare_model_check, which a checkpoint's graph passes before its weights get their formats back. */
pare_status pare_model_check_formats(const pare_model *m);

/* The checkpoint forms (fmt_io.c): the hooks of the int8, qblock and simulated formats, and the helpers they share. */
pare_status pare_fmt_i8_save(const pare_param *w, pare_fmt_io *io);
pare_status pare_fmt_i8_load(pare_param *w, pare_fmt_io *io, int fill_master);
pare_status pare_fmt_qblock_save(const pare_param *w, pare_fmt_io *io);
pare_status pare_fmt_qblock_load(pare_param *w, pare_fmt_io *io, int fill_master);
pare_status pare_fmt_wq_save(const pare_param *w, pare_fmt_io *io);
pare_status pare_fmt_wq_load(pare_param *w, pare_fmt_io *io, int fill_master);
pare_status pare_fmt_pq_save(const pare_param *w, pare_fmt_io *io);
pare_status pare_fmt_pq_load(pare_param *w, pare_fmt_io *io, int fill_master);
pare_status pare_fmt_sim_save(const pare_param *w, pare_fmt_io *io);
pare_status pare_fmt_sim_load(pare_param *w, pare_fmt_io *io, int fill_master);
/* "I8", "U8", "F16", "F32" (the safetensors names) and their sizes. */
const char *pare_fmt_io_dtype_name(pare_fmt_io_dtype d);
size_t pare_fmt_io_dtype_size(pare_fmt_io_dtype d);
/* The format named `name` (pare_format_traits.name) that has a load hook, or -1; valid receives the names that do. */
int pare_format_find_loadable(const char *name, char *valid, size_t n);

/* The formats (one file each: src/graph/fmt_*.c). */
extern const pare_format_traits pare_format_f32, pare_format_i8_channel, pare_format_qblock, pare_format_simulated,
    pare_format_sparse, pare_format_half, pare_format_wq;
extern const pare_format_traits pare_format_pq; /* fmt_pq.c */

/* Store Linear weight p (N,K) in the sparse layout s, compressed from its f32 master (which must hold the
 * zeros: bake masks first), with `method` for tables ("sparsify", "checkpoint"). PARE_EINVAL naming the
 * parameter when the master's zeros do not fit s (not 2:4 ...), or p is not a 2-D weight. fmt_sparse.c. */
pare_status pare_param_set_sparse(pare_param *p, const pare_sparse_spec *s, const char *method);

/* Store Linear weight p (N,K) in 16-bit floats dt (PARE_BF16 or PARE_F16), rounded from its f32 master (which
 * stays as it is), packed for oneDNN where it has a kernel for dt; `method` for tables ("bf16", "checkpoint").
 * PARE_EINVAL when p is not a 2-D weight or dt not bf16/f16; PARE_ENUMERIC naming the weight and the element
 * when the master holds NaN/Inf or a value beyond dt's range (f16: 65504). fmt_half.c. */
pare_status pare_param_set_half(pare_param *p, pare_dtype dt, const char *method);
/* The same for an embedding table p (V, C) (EMBEDDING / POSADD): rounded rows only, no oneDNN packed copy; the ops
 * widen rows on the fly (kernels/nn_half.h). The same errors ("table" for "weight"). fmt_half.c. */
pare_status pare_param_set_half_table(pare_param *p, pare_dtype dt, const char *method);

#endif
