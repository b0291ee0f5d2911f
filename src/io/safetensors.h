/* safetensors.h — the safetensors file format, and model checkpoints stored in it.
 *
 * The format (https://github.com/huggingface/safetensors):
 *     8 bytes   N, the header length, unsigned 64-bit little-endian
 *     N bytes   UTF-8 JSON: {"__metadata__": {"key": "value", ...},
 *                            "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...],
 *                                              "data_offsets": [begin, end]}, ...}
 *               (padded with spaces so the data block starts on an 8-byte boundary)
 *     rest      the data block: raw little-endian, row-major tensors; offsets are relative to its
 *               start, and the tensors cover it exactly (no overlaps, no holes, nothing after).
 * Everything a reader checks is checked on open (pare_safetensors_open): the header length against
 * the file, the JSON, dtypes, shapes, offsets against dtype × shape and the data block, duplicates,
 * overlaps and holes. A malformed file is PARE_EFORMAT with a message naming the file and the tensor.
 *
 * Checkpoints (the model layer, below): every parameter of a model — trainable weights and fixed
 * tables — saved as F32 under its stable name ("enc.0.attn.qkv.weight"), with __metadata__
 *     format "pare", pare_version, pare_commit, config (the builder's options as a JSON string,
 *     pare_model.config), applied (the passes applied so far, "" for none).
 * Loading rebuilds the model from "config" (pare_model_schema + pare_transformer_build) and copies
 * the tensors in by name; a missing or extra tensor, or a shape that differs from the rebuilt model,
 * is an error, and so is a NaN or Inf in any weight (PARE_ENUMERIC naming the tensor and the element;
 * saving refuses such a model the same way). What is not saved: optimizer state and gradients, packed inference layouts.
 * Quantized weights (int8, qblock's groups and blocks, simulated) are saved in their stored form: "<param>.<suffix>"
 * tensors of real dtypes (I8 codes, F16 block scales, F32 channel scales) and __metadata__ "quant" {"<param>":
 * {"format": "int8", ...attributes}}; their f32 masters only with pare_save_opts.masters (else loading fills each
 * master with the dequantized weights), and loading rebuilds the same bytes: logits bit-identical (graph/fmt_io.c).
 * 16-bit and sparse weights are a lossless function of their master and a spec, so __metadata__ "half" / "sparse"
 * list them and loading rebuilds them from the f32 master. A loaded model with stored forms keeps "applied".
 * pare_save_opts.f32 writes the older form: f32 masters only, loaded as the f32 model (applied = "").
 *
 *     PARE_TRY(pare_model_save(m, "runs/enc.safetensors"));     // written to a temp file, renamed
 *     pare_model *back;  pare_checkpoint_meta meta;
 *     PARE_TRY(pare_model_load_meta(&back, &meta, "runs/enc.safetensors"));
 *     // back runs on the kernels m ran on; back->applied is m's
 *
 * What this does not do: read non-F32 parameters into an f32 model (the format reader knows every dtype's
 * size, so such files open and can be listed), load Hugging Face checkpoints (their names and layout
 * differ), or memory-map the data.
 */
#ifndef PARE_SAFETENSORS_H
#define PARE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "graph/graph.h"

#define PARE_ST_MAX_DIM 8
#define PARE_ST_MAX_HEADER 100000000u /* larger headers are refused, as the reference reader does */

typedef enum pare_st_dtype { /* append-only; names and sizes in safetensors.c */
    PARE_ST_BOOL = 0, PARE_ST_U8, PARE_ST_I8, PARE_ST_F8_E5M2, PARE_ST_F8_E4M3, PARE_ST_I16, PARE_ST_U16,
    PARE_ST_F16, PARE_ST_BF16, PARE_ST_I32, PARE_ST_U32, PARE_ST_F32, PARE_ST_F64, PARE_ST_I64, PARE_ST_U64,
    PARE_ST_DTYPE_COUNT
} pare_st_dtype;

const char *pare_st_dtype_name(pare_st_dtype d); /* "F32" */
size_t pare_st_dtype_size(pare_st_dtype d);      /* bytes per element */

typedef struct pare_st_tensor {
    char *name;                      /* owned by the file handle */
    pare_st_dtype dtype;
    int ndim;                        /* 0 for a scalar */
    int64_t shape[PARE_ST_MAX_DIM];
    uint64_t begin, end;             /* byte offsets into the data block */
} pare_st_tensor;

typedef struct pare_st_file {
    char *path;
    int fd;
    uint64_t data_start, data_bytes; /* the data block: file offset 8 + N, and its length */
    pare_st_tensor *tensors;         /* in header order */
    int64_t ntensors;
    char **meta;                     /* key, value, key, value ... (2·nmeta strings) */
    int64_t nmeta;
} pare_st_file;

/* Open and validate a file (the header and every tensor's entry; the data is read on demand). */
pare_status pare_safetensors_open(pare_st_file **out, const char *path);
void pare_safetensors_close(pare_st_file *f); /* safe with NULL */
const pare_st_tensor *pare_safetensors_find(const pare_st_file *f, const char *name); /* NULL if absent */
const char *pare_safetensors_meta(const pare_st_file *f, const char *key);            /* NULL if absent */
/* Read an F32 tensor of n elements into dst (host order). PARE_EFORMAT if t is not F32 or n differs. */
pare_status pare_safetensors_read_f32(const pare_st_file *f, const pare_st_tensor *t, float *dst, size_t n);
/* The same for an F32, F16 or BF16 tensor, widened to f32 (exactly). */
pare_status pare_safetensors_read_as_f32(const pare_st_file *f, const pare_st_tensor *t, float *dst, size_t n);

/* One tensor to write: F32, row-major. */
typedef struct pare_st_out {
    const char *name;
    int ndim;
    const int64_t *shape; /* (ndim) */
    const float *data;    /* (prod shape) */
} pare_st_out;

/* Write tensors t[0..n) and metadata meta[0..2·nmeta) (key, value pairs) to path. The file is
 * written beside the target as "<path>.tmp-<pid>-<k>", synced and renamed over path, so path is
 * either its old content or the complete new file. The directory must exist (PARE_EIO naming it). */
pare_status pare_safetensors_write_f32(const char *path, const pare_st_out *t, int64_t n, const char *const *meta,
                                       int64_t nmeta);

/* One tensor of any dtype to write: data holds prod(shape) elements of dtype in host order (written little-endian). */
typedef struct pare_st_out_any {
    const char *name;
    pare_st_dtype dtype;
    int ndim;
    const int64_t *shape; /* (ndim) */
    const void *data;
} pare_st_out_any;
/* pare_safetensors_write_f32 for tensors of any dtype. */
pare_status pare_safetensors_write(const char *path, const pare_st_out_any *t, int64_t n, const char *const *meta,
                                   int64_t nmeta);
/* Read tensor t's bytes into dst (dst_bytes must equal its span), element bytes put in host order. */
pare_status pare_safetensors_read_raw(const pare_st_file *f, const pare_st_tensor *t, void *dst, size_t dst_bytes);

/* ---- checkpoints of pare models ---- */

typedef struct pare_checkpoint_meta {
    char format[16];        /* "pare" */
    char pare_version[32];  /* of the writer */
    char applied[256];      /* passes that had been applied when saved ("" for none); not re-applied */
    char config[2048];      /* the builder's options, JSON */
} pare_checkpoint_meta;

/* How a checkpoint stores quantized weights (docs/checkpoints.md "Quantized weights"). */
typedef struct pare_save_opts {
    int masters; /* 1: beside each quantized weight's stored form, its f32 master too (continued QAT, re-quantizing) */
    int f32;     /* 1: f32 masters only, no stored forms (the files of pare before quantized checkpoints; loads as f32) */
} pare_save_opts;
/* Save every parameter and the metadata: f32 tensors, and each weight stored as int8 / in blocks / simulated in that
 * form ("<param>.q", "<param>.scale", ... with __metadata__ "quant"), so loading gives the same model back (o NULL:
 * masters 0, f32 0). PARE_ENOTSUP naming the weight for a format without a checkpoint form (fmt_io.c). */
pare_status pare_model_save_opts(const pare_model *m, const char *path, const pare_save_opts *o);
/* pare_model_save_opts with the defaults. */
pare_status pare_model_save(const pare_model *m, const char *path);
/* Rebuild the model from the file's graph (or config) and copy its tensors in by name; quantized, 16-bit and sparse
 * weights come back in their stored form (see above). */
pare_status pare_model_load(pare_model **out, const char *path);
/* The same, also filling *meta (may be NULL) with the file's metadata. */
pare_status pare_model_load_meta(pare_model **out, pare_checkpoint_meta *meta, const char *path);

#endif
