/* gguf.h — GGUF files (version 3, ggml's docs/gguf.md): a writer for pare's models, quantized or not, and
 * a reader of pare's own for any spec-conformant file.
 *
 * The format, little-endian, fields packed:
 *     "GGUF"  uint32 version (3)  uint64 tensor_count  uint64 metadata_kv_count
 *     metadata_kv × count: string key, uint32 value_type, value    (string = uint64 length + bytes;
 *         value types 0..12: u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64; an array is
 *         uint32 element type + uint64 count + the elements, nestable)
 *     tensor_info × count: string name (<= 64 bytes), uint32 n_dims, uint64 dims[n_dims] (innermost first:
 *         ggml's ne[0] is the row length), uint32 ggml type, uint64 offset (relative to the data section, a
 *         multiple of the alignment)
 *     zero padding to general.alignment (default 32), then the data section.
 *
 * Writing a model (pare_gguf_save_model): every parameter under its pare name ("enc.0.attn.qkv.weight",
 * "tok_emb.weight" ...; docs/gguf.md lists them), dims reversed from pare's (N, K) to (K, N):
 *   f32 parameters and Linear weights in f32                      F32  (0)
 *   half-precision Linear weights (the amp / half passes)         F16  (1) or BF16 (30)
 *   qblock Linear weights q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k  Q8_0 (8) Q4_0 (2) Q4_1 (3) Q5_0 (6)
 *                                                                  Q5_1 (7) Q4_K (12) Q5_K (13) Q6_K (14),
 *                                                                  the bytes of pare_qb_to_ggml
 *   any other stored format (int8 per channel, int4/int8 groups, sparse, simulated): no ggml type holds
 *   it, so its f32 master is written as F32 and its name listed in the string array "pare.f32_fallback".
 * Metadata: general.architecture = "pare" (llama.cpp has no loader for pare's graphs: the file carries
 * pare's weights, not a llama.cpp model), general.name, general.alignment = 32, general.quantization_version
 * = 2 (ggml's GGML_QNT_VERSION) when any tensor is quantized, general.file_type when every Linear weight
 * has one ggml block type, pare.kind, pare.config (the builder's options, JSON), pare.applied,
 * pare.version, pare.commit, and pare.context_length / embedding_length / block_count /
 * feed_forward_length / attention.head_count (uint32).
 *
 * Reading (pare_gguf_open / pare_gguf_parse) checks everything the spec states, and fails with PARE_EFORMAT
 * naming the file and the field: the magic, the version (2 and 3: the same layout), counts that cannot fit
 * the file, value types, string lengths, key length <= 65535, duplicate keys, general.alignment (uint32, a
 * non-zero multiple of 8), tensor names <= 64 bytes and unique, n_dims in 1..4, the type id (a type whose
 * block size this reader knows: every one pare writes, plus Q8_1, Q2_K, Q3_K, Q8_K, I8..I64, F64), the
 * row length a multiple of the type's block, offsets aligned and inside the file. Nesting of arrays is
 * limited to 8 levels. Nothing is memory-mapped: the file is read whole.
 *
 *     pare_gguf *g;
 *     PARE_TRY(pare_gguf_open(&g, "model.gguf"));
 *     for (int64_t i = 0; i < g->n_tensors; i++) printf("%s %s\n", g->tensors[i].name, pare_gguf_type_name(g->tensors[i].type));
 *     const pare_gguf_value *v = pare_gguf_find(g, "general.architecture");
 *     pare_gguf_close(g);
 *
 * Not here: big-endian files, loading a GGUF back into a pare model (the reader returns blocks; rebuilding
 * needs pare.config and pare_qb_from_ggml), writing llama.cpp-loadable architectures.
 */
#ifndef PARE_GGUF_H
#define PARE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

struct pare_model;

enum pare_gguf_vtype { /* the spec's gguf_metadata_value_type */
    PARE_GGUF_U8 = 0, PARE_GGUF_I8, PARE_GGUF_U16, PARE_GGUF_I16, PARE_GGUF_U32, PARE_GGUF_I32, PARE_GGUF_F32,
    PARE_GGUF_BOOL, PARE_GGUF_STRING, PARE_GGUF_ARRAY, PARE_GGUF_U64, PARE_GGUF_I64, PARE_GGUF_F64,
    PARE_GGUF_VTYPE_COUNT
};

typedef struct pare_gguf_value {
    uint32_t type;                 /* enum pare_gguf_vtype */
    union {
        uint64_t u;                /* U8, U16, U32, U64, BOOL (0 / 1) */
        int64_t i;                 /* I8, I16, I32, I64 */
        double f;                  /* F32, F64 */
        struct { const char *s; uint64_t len; } str;   /* STRING: points into the file buffer, not NUL-terminated */
        struct { uint32_t type; uint64_t n; struct pare_gguf_value *items; } arr; /* ARRAY */
    } v;
} pare_gguf_value;

typedef struct pare_gguf_kv {
    char *key;                     /* NUL-terminated copy */
    pare_gguf_value value;
} pare_gguf_kv;

typedef struct pare_gguf_tensor {
    char name[65];
    uint32_t n_dims;
    uint64_t dims[4];              /* innermost first */
    uint32_t type;                 /* ggml type id */
    uint64_t offset;               /* relative to the data section */
    uint64_t nbytes;               /* from dims and the type's block size */
} pare_gguf_tensor;

typedef struct pare_gguf {
    char *path;
    uint32_t version;
    uint32_t alignment;
    int64_t n_kv, n_tensors;
    pare_gguf_kv *kv;
    pare_gguf_tensor *tensors;
    uint64_t data_offset;          /* of the data section, in the file */
    uint8_t *buf;                  /* the whole file */
    size_t size;
} pare_gguf;

/* Reads and checks path. *out NULL on failure. */
pare_status pare_gguf_open(pare_gguf **out, const char *path);
/* The same on n bytes in memory (copied); name is used in messages. */
pare_status pare_gguf_parse(pare_gguf **out, const void *data, size_t n, const char *name);
void pare_gguf_close(pare_gguf *g); /* NULL ok */

/* The value of key, or NULL. */
const pare_gguf_value *pare_gguf_find(const pare_gguf *g, const char *key);
/* Tensor i's bytes (g->tensors[i].nbytes of them). */
const uint8_t *pare_gguf_tensor_data(const pare_gguf *g, int64_t i);

/* ggml's name of type id t ("f32", "q4_K", ...), "?" if this reader does not know it. */
const char *pare_gguf_type_name(uint32_t t);
/* Elements per block and bytes per block of ggml type t; 0 if unknown. */
int pare_gguf_type_block(uint32_t t, int *bytes);
/* "u8" ... "f64" for a metadata value type. */
const char *pare_gguf_vtype_name(uint32_t t);

/* Writes m as described above (a temporary file renamed over path). PARE_EINVAL for a parameter name
 * longer than 64 bytes; PARE_EIO naming the path. */
pare_status pare_gguf_save_model(const struct pare_model *m, const char *path);

#endif
