/* hf.h — Hugging Face model directories in and out: config.json + model.safetensors, mapped onto
 * pare's transformer builder (model/transformer.h) by architecture.
 *
 *     pare_model *m;  pare_hf_info info;
 *     PARE_TRY(pare_hf_load(&m, &info, "models/bert-base-uncased-sst2"));   // info.arch = "bert"
 *     ... compress, fine-tune ...
 *     PARE_TRY(pare_hf_save(m, "out/bert-sst2-pruned"));                     // the same layout back
 *
 * Architectures (config.json "model_type", head from "architectures"):
 *   bert   BertForSequenceClassification (pooler + classifier), BertForMaskedLM (the MLM head, its decoder
 *          tied to the word embeddings): post-LayerNorm blocks, exact GELU, token types, LayerNorm ε from
 *          the config (1e-12).
 *   roberta, distilbert  the BERT family's classifiers and masked LMs (positions after the padding id;
 *          no token types).
 *   gpt2   GPT2LMHeadModel / GPT2Model: pre-LayerNorm, tanh GELU, the LM head tied to wte; Conv1D weights
 *          are stored (in, out) and transposed on the way in and out.
 *   bart   BartForConditionalGeneration / BartModel: an encdec with post-LayerNorm blocks, embedding
 *          LayerNorms, √d embedding scale, positions at t + 2, one shared table tied to the LM head
 *          (+ final_logits_bias); cross-attention's k and v stacked into xattn.kv (docs/arch-bart.md).
 * Each HF layer maps onto pare's names: BERT's separate query/key/value become one qkv projection
 * (rows q, then k, then v: the same function), GPT-2's c_attn is that already. Tensors may be F32, F16 or
 * BF16 (widened exactly to f32). Buffers HF keeps in some files (position_ids, attn.bias,
 * attn.masked_bias) are ignored; any other tensor pare does not map, and any tensor it needs but does not
 * find, is an error naming the tensor and the architecture, as is an unsupported model_type, an
 * activation other than the architecture's, or a sharded / pytorch_model.bin-only directory.
 *
 * Saving writes config.json (the architecture's keys, from the model's shapes) and model.safetensors
 * (F32, HF names and layouts; the tied head is not written, as transformers does), for every
 * architecture above, picked from the model's options. Heads pruned per layer are written as
 * pruned_heads (not for BART, whose configs have no such key); other per-layer edits (FFN neurons) are
 * refused: HF's configs describe one width per model.
 * Quantized weights are written as their f32 masters; a pruning mask as what it computes, W ⊙ M (HF has no
 * masks); other weight transforms (fake quantization, head gates) are refused.
 */
#ifndef PARE_HF_H
#define PARE_HF_H

#include "graph/graph.h"

typedef struct pare_hf_info {
    char arch[16];       /* "bert", "roberta", "distilbert", "gpt2", "bart" */
    char head[48];       /* "BertForSequenceClassification", ... */
    int64_t tensors;     /* tensors read */
    char dtype[8];       /* the file's weight dtype: "F32", "F16", "BF16" (the first tensor's) */
} pare_hf_info;

pare_status pare_hf_load(pare_model **out, pare_hf_info *info, const char *dir);
pare_status pare_hf_save(const pare_model *m, const char *dir);

#endif
