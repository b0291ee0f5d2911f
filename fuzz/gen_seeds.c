/* gen_seeds.c — writes the binary seed files of the fuzz corpus with the engine itself:
 *     fuzz/corpus/checkpoint/   tiny models saved by pare_model_save (an encoder; a tagger with a
 *                               Linformer layer, so attention parameters are in the file; an encoder with
 *                               q4_0 FFN and int8 attention weights in their stored form, __metadata__ "quant")
 *     fuzz/corpus/safetensors/  files of several dtypes, a scalar, an empty tensor, metadata
 *     fuzz/corpus/h5table/      results files written through h5table.h (every column type, units,
 *                               labels, root attributes; an empty table beside a full one)
 * The text seeds (ListOps, LRA, options, attention specs) are plain files kept in the repository.
 * Run by `make fuzz-seeds` from the repository root; the outputs are committed, so this only needs
 * rerunning when a format changes. Deterministic: the same engine writes the same bytes, except the
 * HDF5 files (HDF5 stores no timestamps by default, but its layout may change between versions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "io/h5table.h"
#include "io/safetensors.h"
#include "model/transformer.h"

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s: %s\n", what, pare_errmsg());
    exit(1);
}

static void model(const char *path, const pare_kv *kv, int n)
{
    pare_options o;
    pare_model *m;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, n) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK)
        die(path);
    if (pare_model_save(m, path) != PARE_OK) die(path);
    pare_model_free(m);
}

/* An encoder whose FFN weights are q4_0 blocks and attention weights int8, saved in their stored form. */
static void model_quantized(const char *path, const pare_kv *kv, int n)
{
    pare_options o;
    pare_model *m, *a = NULL, *b = NULL;
    pare_kv q4[] = {{"format", PARE_KV_STR, 0, "q4_0"}, {"layers", PARE_KV_STR, 0, "enc.*.ffn.*"}};
    pare_kv i8[] = {{"layers", PARE_KV_STR, 0, "enc.*.attn.*"}};
    if (pare_opts_resolve(&o, &pare_model_schema, kv, n) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK ||
        pare_apply(&a, m, "qblock", q4, 2) != PARE_OK || pare_apply(&b, a, "dynamic_int8", i8, 1) != PARE_OK ||
        pare_model_save(b, path) != PARE_OK)
        die(path);
    pare_model_free(m), pare_model_free(a), pare_model_free(b);
}

/* A safetensors file from a header text and a data block. */
static void raw(const char *path, const char *header, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) die(path);
    uint64_t len = strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(len >> (8 * i));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, len, f) != len || (n && fwrite(data, 1, n, f) != n)) die(path);
    fclose(f);
}

static void h5(const char *path, int variant)
{
    remove(path);
    pare_h5_file *f;
    if (pare_h5_open(&f, path, PARE_H5_APPEND) != PARE_OK) die(path);
    pare_col cols[4] = {{"bits", PARE_COL_INT, "", "weight bits"}, {"acc", PARE_COL_FLOAT, "%", "accuracy"},
                        {"method", PARE_COL_STR, "", ""}, {"ok", PARE_COL_BOOL, "", ""}};
    if (pare_h5_table_create(f, "sweep", cols, variant ? 2 : 4) != PARE_OK) die(path);
    int rows = variant ? 1 : 2;
    for (int r = 0; r < rows; r++) {
        pare_cell row[4] = {{.i = 4 + 4 * r}, {.f = 0.5 + 0.25 * r}, {.s = r ? "gptq" : "rtn"}, {.b = (int8_t)r}};
        if (pare_h5_append(f, "sweep", row) != PARE_OK) die(path);
    }
    if (variant) {
        pare_col one = {"x", PARE_COL_FLOAT, "", ""};
        if (pare_h5_table_create(f, "empty", &one, 1) != PARE_OK) die(path);
        if (pare_h5_attr_set_f64(f, "empty", "note", 1.5) != PARE_OK) die(path);
    }
    if (pare_h5_attr_set_str(f, "/", "pare_version", "0.1.0") != PARE_OK ||
        pare_h5_attr_set_i64(f, "/", "seed", 42) != PARE_OK || pare_h5_attr_set_f64(f, "/", "budget", 0.25) != PARE_OK)
        die(path);
    if (pare_h5_close(f) != PARE_OK) die(path);
}

int main(void)
{
    pare_kv enc[] = {{"vocab", PARE_KV_NUM, 5, NULL}, {"max_T", PARE_KV_NUM, 4, NULL}, {"d", PARE_KV_NUM, 4, NULL},
                     {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 1, NULL}, {"ffn", PARE_KV_NUM, 4, NULL}};
    model("fuzz/corpus/checkpoint/encoder.safetensors", enc, 6);
    pare_kv dec[] = {{"kind", PARE_KV_STR, 0, "tagger"},  {"vocab", PARE_KV_NUM, 4, NULL},
                     {"max_T", PARE_KV_NUM, 4, NULL},      {"d", PARE_KV_NUM, 2, NULL},
                     {"heads", PARE_KV_NUM, 1, NULL},      {"layers", PARE_KV_NUM, 2, NULL},
                     {"ffn", PARE_KV_NUM, 2, NULL},        {"pos", PARE_KV_STR, 0, "sinusoidal"},
                     {"attention", PARE_KV_STR, 0, "linformer:k=2;longformer:window=2,global=1"}};
    model("fuzz/corpus/checkpoint/tagger_linformer.safetensors", dec, 9);
    pare_kv qenc[] = {{"vocab", PARE_KV_NUM, 5, NULL}, {"max_T", PARE_KV_NUM, 4, NULL}, {"d", PARE_KV_NUM, 32, NULL},
                      {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 1, NULL}, {"ffn", PARE_KV_NUM, 32, NULL}};
    model_quantized("fuzz/corpus/checkpoint/encoder_quantized.safetensors", qenc, 6);

    const float w[6] = {1, -2, 0.5f, 3, 0, -0.25f};
    const int64_t s23[2] = {2, 3}, s6[1] = {6};
    pare_st_out t[2] = {{"a.weight", 2, s23, w}, {"b", 1, s6, w}};
    const char *meta[4] = {"format", "pt", "note", "two tensors"};
    if (pare_safetensors_write_f32("fuzz/corpus/safetensors/f32.safetensors", t, 2, meta, 2) != PARE_OK) die("f32");
    const unsigned char bytes[16] = {0x3f, 0x80, 0x40, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 0, 0};
    raw("fuzz/corpus/safetensors/dtypes.safetensors",
        "{\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
        "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,12]},"
        "\"u\":{\"dtype\":\"U8\",\"shape\":[2,1],\"data_offsets\":[12,14]},"
        "\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[14,15]},"
        "\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[15,16]}}",
        bytes, 16);
    raw("fuzz/corpus/safetensors/scalar_empty.safetensors",
        "{\"__metadata__\":{\"k\":\"v\"},\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
        "\"z\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[4,4]}}    ",
        w, 4);
    raw("fuzz/corpus/safetensors/empty.safetensors", "{}", NULL, 0);

    h5("fuzz/corpus/h5table/sweep.h5", 0);
    h5("fuzz/corpus/h5table/two_tables.h5", 1);
    return 0;
}
