/* fuzz_hf.c — the Hugging Face directory reader behind pare.load_hf (src/io/hf.c): config.json read
 * into the transformer builder's options (architecture, head, activation, sizes, pruned_heads), then
 * model.safetensors mapped onto the model by name and layout (q/k/v stacking, Conv1D transposes,
 * F16/BF16 widening).
 *
 * The input is both files: two bytes (little-endian) giving the length of config.json, its bytes, and
 * the rest is model.safetensors. Any input may be refused with a status; a loaded model passes
 * pare_model_check and every parameter came from the file (at least 2 bytes of it per float: F16).
 * The seeds (fuzz/corpus/hf/) are the small BERT F16, DistilBERT, GPT-2 and BART BF16 (encoder-decoder
 * keys, cross-attention k/v, final_logits_bias, tied embed_tokens copies) directories that
 * tests/hf_ref.py writes, packed this way (tools/hf_seed.py). */
#include "fuzz_util.h"
#include "graph/graph.h"
#include "graph/rewrite.h"
#include "io/hf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t n = (size_t)data[0] | (size_t)data[1] << 8;
    if (n > size - 2) n = size - 2;
    char path[512], dir[512];
    fuzz_path(dir, sizeof dir, "hf");
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/config.json", dir);
    fuzz_write(path, data + 2, n);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    fuzz_write(path, data + 2 + n, size - 2 - n);
    pare_model *m = NULL;
    pare_hf_info info;
    if (pare_hf_load(&m, &info, dir) != PARE_OK) {
        FUZZ_ASSERT(m == NULL && pare_errmsg()[0]);
        return 0;
    }
    FUZZ_ASSERT(m != NULL && pare_model_check(m) == PARE_OK);
    size_t floats = 0;
    for (int64_t i = 0; i < m->nparams; i++) floats += m->params[i].blob->n;
    FUZZ_ASSERT(floats * 2 <= size);
    pare_model_free(m);
    return 0;
}
