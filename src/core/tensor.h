/* tensor.h — dtypes, conversions and non-owning tensor views.
 *
 * Dimension letters, used in every shape comment of pare:
 *   B batch · T tokens (sequence) · C channels (model width) · H heads · D head size (C = H·D)
 *   V vocabulary · F feed-forward width · N output features of a Linear · K its input features
 *   M rows of a GEMM (B·T for a Linear)
 *
 * A pare_tensor is a view: it never owns data. Memory comes from arenas (arena.h) or from the
 * owner of a model's weights. Shapes are int64_t; element counts are int64_t.
 *
 * Conversions to bf16/f16 round to nearest even and saturate to ±Inf like IEEE 754; NaN stays NaN.
 */
#ifndef PARE_TENSOR_H
#define PARE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Element types. Their traits (name, size, float or integer) are one table in tensor.c guarded by a
 * static assert on the count; graph values carry one (graph.h) and the planner sizes buffers from it
 * (docs/dtypes.md). */
typedef enum pare_dtype { /* append-only */
    PARE_F32 = 0,
    PARE_BF16,
    PARE_F16,
    PARE_I8,
    PARE_U8,
    PARE_I32,
    PARE_DTYPE_COUNT
} pare_dtype;

/* A set of dtypes as a bit mask: what an op accepts at one input (graph/ops.c). A dtype out of range (a
 * corrupt value, a bad argument) is in no set rather than an undefined shift. */
#define PARE_DTYPE_BIT(t) ((unsigned)(t) < PARE_DTYPE_COUNT ? 1u << (unsigned)(t) : 0u)
#define PARE_DTYPES_FLOAT (PARE_DTYPE_BIT(PARE_F32) | PARE_DTYPE_BIT(PARE_BF16) | PARE_DTYPE_BIT(PARE_F16))

/* Bytes per element (0 for a dtype out of range). */
size_t pare_dtype_size(pare_dtype t);
/* "f32", "bf16", "f16", "i8", "u8", "i32" ("?" out of range). */
const char *pare_dtype_name(pare_dtype t);
/* 1 for the floating-point dtypes (f32, bf16, f16), 0 for the integers and out of range. */
int pare_dtype_is_float(pare_dtype t);
/* Look a dtype up by name ("f32", "bf16", ...; also "fp32", "fp16", "int8", "uint8", "int32"); PARE_EINVAL
 * naming the valid ones otherwise. */
pare_status pare_dtype_parse(const char *name, pare_dtype *out);
/* The dtypes of a mask in enum order, "f32", "f32 or bf16", "f32, bf16 or f16" ("none" for 0); returns buf. */
const char *pare_dtype_mask_str(unsigned mask, char *buf, size_t n);

#define PARE_MAX_DIMS 4

typedef struct pare_tensor {
    pare_dtype dtype;
    int ndim;
    int64_t shape[PARE_MAX_DIMS]; /* row-major, last dim contiguous */
    void *data;                   /* not owned */
} pare_tensor;

int64_t pare_tensor_numel(const pare_tensor *t);
size_t pare_tensor_bytes(const pare_tensor *t);
/* "(2, 128, 768)" into buf; returns buf. */
const char *pare_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

/* Scalar conversions. */
uint16_t pare_f32_to_bf16(float x);
float pare_bf16_to_f32(uint16_t x);
uint16_t pare_f32_to_f16(float x);
float pare_f16_to_f32(uint16_t x);

/* Array conversions between any two dtypes (integers saturate and round to nearest even). */
pare_status pare_convert(void *dst, pare_dtype dt, const void *src, pare_dtype st, int64_t n);

/* The index of the first NaN or ±Inf of x (n), or -1 if every element is finite. */
int64_t pare_first_nonfinite(const float *x, int64_t n);

#endif
