#!/usr/bin/python3
"""hf_ref.py OUT_DIR -- Hugging Face model directories made by hand, with reference outputs.

For each architecture pare loads (issue 12), writes OUT_DIR/<arch>/ holding config.json and
model.safetensors with exactly the tensor names, shapes and layouts Hugging Face's transformers
library uses (BertForSequenceClassification, GPT2LMHeadModel: Conv1D weights stored (in, out), the tied
LM head left out of the file as transformers does), random weights, a batch of inputs, and the
outputs of a reference forward written here in numpy (float64) from the architectures' definitions --
not from pare, and without the transformers library:

    inputs.txt     B T, then B rows of T token ids, B rows of T token types, the B lengths
    logits.txt     rows cols, then the values (BERT: (B, classes); GPT-2: (B*T, vocab), padded rows too)
    hidden.txt     rows cols, then the last hidden state (B*T, d)

An F16 copy of the BERT weights (bert_f16/) checks reading half-precision tensors; its reference is
computed from the rounded weights. Deterministic (seeded).
"""
import json
import os
import struct
import sys

import numpy as np


def bf16_bits(a):
    """float64 -> bfloat16 bit patterns (uint16), rounded to nearest even from float32"""
    u = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")


def bf16_round(a):
    return (bf16_bits(a).astype("<u4") << 16).view("<f4").astype(np.float64)


def write_safetensors(path, tensors, dtype="F32"):
    np_dtype = {"F32": "<f4", "F16": "<f2", "BF16": None}[dtype]
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors.items():
        b = bf16_bits(arr).tobytes() if dtype == "BF16" else np.ascontiguousarray(arr, dtype=np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_matrix(path, a):
    a = np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)
    with open(path, "w") as f:
        f.write("%d %d\n" % a.shape)
        for row in a:
            f.write(" ".join("%.9g" % v for v in row) + "\n")


def write_inputs(path, ids, types, lengths):
    B, T = ids.shape
    with open(path, "w") as f:
        f.write("%d %d\n" % (B, T))
        for r in ids:
            f.write(" ".join(str(int(v)) for v in r) + "\n")
        for r in types:
            f.write(" ".join(str(int(v)) for v in r) + "\n")
        f.write(" ".join(str(int(v)) for v in lengths) + "\n")


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def erf(x):
    # numpy has no erf: Abramowitz-Stegun would not do (1e-7); use math.erf elementwise
    import math
    return np.vectorize(math.erf)(x)


def gelu_erf(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def attention(q, k, v, H, key_mask):
    """q, k, v (T, C); key_mask (T_q, T_k) of bools (True: may attend)."""
    T, C = q.shape
    D = C // H
    out = np.zeros((T, C))
    for h in range(H):
        s = slice(h * D, (h + 1) * D)
        sc = q[:, s] @ k[:, s].T / np.sqrt(D)
        sc = np.where(key_mask, sc, -np.inf)
        out[:, s] = softmax(sc) @ v[:, s]
    return out


def bert(out, rng, dtype="F32", NL=3):
    """NL = 1: a regression head (transformers' STS-B: num_labels 1, problem_type "regression")."""
    V, C, H, L, F, P, NT, eps = 50, 32, 4, 2, 48, 16, 2, 1e-12
    cfg = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": V,
           "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": H, "intermediate_size": F,
           "hidden_act": "gelu", "max_position_embeddings": P, "type_vocab_size": NT, "layer_norm_eps": eps,
           "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
           "id2label": {str(i): "L%d" % i for i in range(NL)}, "label2id": {"L%d" % i: i for i in range(NL)},
           "torch_dtype": "float32" if dtype == "F32" else "float16"}
    if NL == 1:
        cfg["problem_type"] = "regression"
    t = {}
    def lin(name, n_out, n_in, scale=0.2):
        t[name + ".weight"] = rng.normal(0, scale, (n_out, n_in))
        t[name + ".bias"] = rng.normal(0, 0.1, (n_out,))
    def ln(name, n):
        t[name + ".weight"] = 1.0 + rng.normal(0, 0.1, (n,))
        t[name + ".bias"] = rng.normal(0, 0.1, (n,))
    t["bert.embeddings.word_embeddings.weight"] = rng.normal(0, 0.5, (V, C))
    t["bert.embeddings.position_embeddings.weight"] = rng.normal(0, 0.5, (P, C))
    t["bert.embeddings.token_type_embeddings.weight"] = rng.normal(0, 0.5, (NT, C))
    ln("bert.embeddings.LayerNorm", C)
    for i in range(L):
        p = "bert.encoder.layer.%d." % i
        for n in ("query", "key", "value"):
            lin(p + "attention.self." + n, C, C)
        lin(p + "attention.output.dense", C, C)
        ln(p + "attention.output.LayerNorm", C)
        lin(p + "intermediate.dense", F, C)
        lin(p + "output.dense", C, F)
        ln(p + "output.LayerNorm", C)
    lin("bert.pooler.dense", C, C)
    lin("classifier", NL, C)
    if dtype == "F16":
        t = {k: v.astype(np.float16).astype(np.float64) for k, v in t.items()}
    else:
        t = {k: v.astype(np.float32).astype(np.float64) for k, v in t.items()}

    B, T = 3, 11
    ids = rng.integers(1, V, (B, T))
    lengths = np.array([11, 7, 4])
    types = np.zeros((B, T), dtype=np.int64)
    types[0, 6:] = 1  # a pair: [CLS] a [SEP] b [SEP]
    types[1, 4:7] = 1
    for b in range(B):
        ids[b, lengths[b]:] = 0
        types[b, lengths[b]:] = 0
    logits, hidden = np.zeros((B, NL)), np.zeros((B, T, C))
    for b in range(B):
        x = t["bert.embeddings.word_embeddings.weight"][ids[b]] + t["bert.embeddings.position_embeddings.weight"][:T] \
            + t["bert.embeddings.token_type_embeddings.weight"][types[b]]
        x = layernorm(x, t["bert.embeddings.LayerNorm.weight"], t["bert.embeddings.LayerNorm.bias"], eps)
        mask = np.broadcast_to(np.arange(T)[None, :] < lengths[b], (T, T))
        for i in range(L):
            p = "bert.encoder.layer.%d." % i
            f = lambda n, h: h @ t[p + n + ".weight"].T + t[p + n + ".bias"]
            a = attention(f("attention.self.query", x), f("attention.self.key", x), f("attention.self.value", x), H, mask)
            x = layernorm(x + f("attention.output.dense", a), t[p + "attention.output.LayerNorm.weight"],
                          t[p + "attention.output.LayerNorm.bias"], eps)
            m = f("output.dense", gelu_erf(f("intermediate.dense", x)))
            x = layernorm(x + m, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], eps)
        hidden[b] = x
        pooled = np.tanh(t["bert.pooler.dense.weight"] @ x[0] + t["bert.pooler.dense.bias"])
        logits[b] = t["classifier.weight"] @ pooled + t["classifier.bias"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), t, dtype)
    write_inputs(os.path.join(out, "inputs.txt"), ids, types, lengths)
    write_matrix(os.path.join(out, "logits.txt"), logits)
    write_matrix(os.path.join(out, "hidden.txt"), hidden.reshape(B * T, C))


def encoder_family(out, rng, family, NL=2):
    """RobertaForSequenceClassification or DistilBertForSequenceClassification (post-LN, exact GELU); NL = 1 is
    a regression head, as transformers infers it from num_labels 1 alone (RoBERTa: num_labels, DistilBERT:
    id2label of one entry)."""
    V, C, H, L, F = 40, 32, 4, 2, 48
    t = {}
    def lin(name, n_out, n_in, scale=0.2):
        t[name + ".weight"] = rng.normal(0, scale, (n_out, n_in))
        t[name + ".bias"] = rng.normal(0, 0.1, (n_out,))
    def ln(name, n):
        t[name + ".weight"] = 1.0 + rng.normal(0, 0.1, (n,))
        t[name + ".bias"] = rng.normal(0, 0.1, (n,))
    if family == "roberta":
        pad, P, eps, pre = 1, 18, 1e-5, "roberta."
        cfg = {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta", "vocab_size": V,
               "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": H, "intermediate_size": F,
               "hidden_act": "gelu", "max_position_embeddings": P, "type_vocab_size": 1, "layer_norm_eps": eps,
               "pad_token_id": pad, "bos_token_id": 0, "eos_token_id": 2, "num_labels": NL}
        t[pre + "embeddings.word_embeddings.weight"] = rng.normal(0, 0.5, (V, C))
        t[pre + "embeddings.position_embeddings.weight"] = rng.normal(0, 0.5, (P, C))
        t[pre + "embeddings.token_type_embeddings.weight"] = rng.normal(0, 0.5, (1, C))
        ln(pre + "embeddings.LayerNorm", C)
        names = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")
        layer = pre + "encoder.layer.%d."
    else:
        P, eps, pre = 16, 1e-12, "distilbert."
        cfg = {"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert", "vocab_size": V,
               "dim": C, "n_layers": L, "n_heads": H, "hidden_dim": F, "activation": "gelu",
               "max_position_embeddings": P, "sinusoidal_pos_embds": False, "pad_token_id": 0,
               "id2label": {"0": "NEG", "1": "POS"} if NL == 2 else {str(i): "LABEL_%d" % i for i in range(NL)}}
        t[pre + "embeddings.word_embeddings.weight"] = rng.normal(0, 0.5, (V, C))
        t[pre + "embeddings.position_embeddings.weight"] = rng.normal(0, 0.5, (P, C))
        ln(pre + "embeddings.LayerNorm", C)
        names = ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm",
                 "ffn.lin1", "ffn.lin2", "output_layer_norm")
        layer = pre + "transformer.layer.%d."
    q, k, v, o, ln1, up, down, ln2 = names
    for i in range(L):
        p = layer % i
        for n in (q, k, v, o):
            lin(p + n, C, C)
        ln(p + ln1, C)
        lin(p + up, F, C)
        lin(p + down, C, F)
        ln(p + ln2, C)
    if family == "roberta":
        lin("classifier.dense", C, C)
        lin("classifier.out_proj", NL, C)
    else:
        lin("pre_classifier", C, C)
        lin("classifier", NL, C)
    t = {kk: vv.astype(np.float32).astype(np.float64) for kk, vv in t.items()}

    B, T = 2, 10
    lengths = np.array([10, 6])
    ids = rng.integers(3, V, (B, T))  # no pad (1) or special ids inside the rows
    for b in range(B):
        ids[b, lengths[b]:] = cfg["pad_token_id"]
    offset = 2 if family == "roberta" else 0  # RoBERTa numbers positions from pad_token_id + 1
    logits, hidden = np.zeros((B, NL)), np.zeros((B, T, C))
    for b in range(B):
        x = t[pre + "embeddings.word_embeddings.weight"][ids[b]] + t[pre + "embeddings.position_embeddings.weight"][offset:offset + T]
        if family == "roberta":
            x = x + t[pre + "embeddings.token_type_embeddings.weight"][0]
        x = layernorm(x, t[pre + "embeddings.LayerNorm.weight"], t[pre + "embeddings.LayerNorm.bias"], eps)
        mask = np.broadcast_to(np.arange(T)[None, :] < lengths[b], (T, T))
        for i in range(L):
            p = layer % i
            f = lambda n, h: h @ t[p + n + ".weight"].T + t[p + n + ".bias"]
            a = attention(f(q, x), f(k, x), f(v, x), H, mask)
            x = layernorm(x + f(o, a), t[p + ln1 + ".weight"], t[p + ln1 + ".bias"], eps)
            x = layernorm(x + f(down, gelu_erf(f(up, x))), t[p + ln2 + ".weight"], t[p + ln2 + ".bias"], eps)
        hidden[b] = x
        if family == "roberta":
            h = np.tanh(t["classifier.dense.weight"] @ x[0] + t["classifier.dense.bias"])
            logits[b] = t["classifier.out_proj.weight"] @ h + t["classifier.out_proj.bias"]
        else:
            h = np.maximum(t["pre_classifier.weight"] @ x[0] + t["pre_classifier.bias"], 0)
            logits[b] = t["classifier.weight"] @ h + t["classifier.bias"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), t)
    write_inputs(os.path.join(out, "inputs.txt"), ids, np.zeros((B, T), dtype=np.int64), lengths)
    write_matrix(os.path.join(out, "logits.txt"), logits)
    write_matrix(os.path.join(out, "hidden.txt"), hidden.reshape(B * T, C))


def gpt2(out, rng):
    V, C, H, L, P, eps = 50, 32, 4, 2, 16, 1e-5
    F = 4 * C
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_embd": C, "n_layer": L,
           "n_head": H, "n_positions": P, "n_ctx": P, "n_inner": None, "activation_function": "gelu_new",
           "layer_norm_epsilon": eps, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
           "bos_token_id": V - 1, "eos_token_id": V - 1, "tie_word_embeddings": True}
    t = {}
    def conv(name, n_in, n_out, scale=0.2):  # transformers' Conv1D: weight (in, out), y = x W + b
        t[name + ".weight"] = rng.normal(0, scale, (n_in, n_out))
        t[name + ".bias"] = rng.normal(0, 0.1, (n_out,))
    def ln(name, n):
        t[name + ".weight"] = 1.0 + rng.normal(0, 0.1, (n,))
        t[name + ".bias"] = rng.normal(0, 0.1, (n,))
    t["transformer.wte.weight"] = rng.normal(0, 0.5, (V, C))
    t["transformer.wpe.weight"] = rng.normal(0, 0.5, (P, C))
    for i in range(L):
        p = "transformer.h.%d." % i
        ln(p + "ln_1", C)
        conv(p + "attn.c_attn", C, 3 * C)
        conv(p + "attn.c_proj", C, C)
        ln(p + "ln_2", C)
        conv(p + "mlp.c_fc", C, F)
        conv(p + "mlp.c_proj", F, C)
    ln("transformer.ln_f", C)
    t = {k: v.astype(np.float32).astype(np.float64) for k, v in t.items()}

    B, T = 2, 9
    ids = rng.integers(0, V, (B, T))
    lengths = np.array([9, 5])
    logits, hidden = np.zeros((B, T, V)), np.zeros((B, T, C))
    causal = np.tril(np.ones((T, T), dtype=bool))
    for b in range(B):
        x = t["transformer.wte.weight"][ids[b]] + t["transformer.wpe.weight"][:T]
        for i in range(L):
            p = "transformer.h.%d." % i
            f = lambda n, h: h @ t[p + n + ".weight"] + t[p + n + ".bias"]
            h = layernorm(x, t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps)
            qkv = f("attn.c_attn", h)
            a = attention(qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:], H, causal)
            x = x + f("attn.c_proj", a)
            h = layernorm(x, t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps)
            x = x + f("mlp.c_proj", gelu_tanh(f("mlp.c_fc", h)))
        x = layernorm(x, t["transformer.ln_f.weight"], t["transformer.ln_f.bias"], eps)
        hidden[b] = x
        logits[b] = x @ t["transformer.wte.weight"].T
    # greedy generation from the first row's first 4 tokens: 6 new tokens, each the argmax of the
    # reference forward over everything so far (no cache: the definition a KV cache must reproduce)
    def forward_last(seq):
        T_ = len(seq)
        x = t["transformer.wte.weight"][seq] + t["transformer.wpe.weight"][:T_]
        causal_ = np.tril(np.ones((T_, T_), dtype=bool))
        for i in range(L):
            p = "transformer.h.%d." % i
            f = lambda n, h: h @ t[p + n + ".weight"] + t[p + n + ".bias"]
            h = layernorm(x, t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps)
            qkv = f("attn.c_attn", h)
            x = x + f("attn.c_proj", attention(qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:], H, causal_))
            h = layernorm(x, t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps)
            x = x + f("mlp.c_proj", gelu_tanh(f("mlp.c_fc", h)))
        x = layernorm(x, t["transformer.ln_f.weight"], t["transformer.ln_f.bias"], eps)
        return x[-1] @ t["transformer.wte.weight"].T
    seq = [int(v) for v in ids[0, :4]]
    for _ in range(6):
        seq.append(int(np.argmax(forward_last(seq))))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "generated.txt"), "w") as f:
        f.write(" ".join(str(v) for v in seq) + "\n")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), t)  # lm_head.weight is tied: not in the file
    write_inputs(os.path.join(out, "inputs.txt"), ids, np.zeros((B, T), dtype=np.int64), lengths)
    write_matrix(os.path.join(out, "logits.txt"), logits.reshape(B * T, V))
    write_matrix(os.path.join(out, "hidden.txt"), hidden.reshape(B * T, C))


def bart(out, rng, dtype="F32"):
    """BartForConditionalGeneration (transformers' modeling_bart): post-LN encoder and decoder layers,
    learned positions read at row t + 2 (embed_positions has max_position_embeddings + 2 rows),
    layernorm_embedding on both sides, token embeddings times sqrt(d_model) (scale_embedding), exact GELU,
    q/k/v/out projections with biases (q scaled by head_dim^-0.5), the LM head tied to model.shared plus
    final_logits_bias (1, V). Encoder and decoder layer counts differ on purpose. Besides the files of
    bert(): source.txt (the encoder's ids, same format as inputs.txt), memory.txt (the encoder's output,
    (B*S, d)) and generated.txt (per source row: decoder_start_token_id, then 6 greedy tokens), margin.txt
    (the smallest gap between the two best logits over those steps)."""
    V, C, H, EL, DL, F, P, eps = 40, 32, 4, 3, 2, 48, 20, 1e-5
    pad, start = 1, 2
    cfg = {"architectures": ["BartForConditionalGeneration"], "model_type": "bart", "vocab_size": V, "d_model": C,
           "encoder_layers": EL, "decoder_layers": DL, "encoder_attention_heads": H, "decoder_attention_heads": H,
           "encoder_ffn_dim": F, "decoder_ffn_dim": F, "max_position_embeddings": P, "activation_function": "gelu",
           "scale_embedding": True, "dropout": 0.1, "attention_dropout": 0.0, "activation_dropout": 0.0,
           "init_std": 0.02, "pad_token_id": pad, "bos_token_id": 0, "eos_token_id": 2,
           "decoder_start_token_id": start, "forced_eos_token_id": 2, "is_encoder_decoder": True,
           "tie_word_embeddings": True, "use_cache": True,
           "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]}
    t = {}
    def lin(name, n_out, n_in, scale=0.3):
        t[name + ".weight"] = rng.normal(0, scale, (n_out, n_in))
        t[name + ".bias"] = rng.normal(0, 0.1, (n_out,))
    def ln(name, n):
        t[name + ".weight"] = 1.0 + rng.normal(0, 0.1, (n,))
        t[name + ".bias"] = rng.normal(0, 0.1, (n,))
    t["model.shared.weight"] = rng.normal(0, 0.5, (V, C))
    for side, L in (("encoder", EL), ("decoder", DL)):
        t["model.%s.embed_positions.weight" % side] = rng.normal(0, 0.5, (P + 2, C))
        ln("model.%s.layernorm_embedding" % side, C)
        for i in range(L):
            p = "model.%s.layers.%d." % (side, i)
            for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                lin(p + "self_attn." + n, C, C)
            ln(p + "self_attn_layer_norm", C)
            if side == "decoder":
                for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    lin(p + "encoder_attn." + n, C, C)
                ln(p + "encoder_attn_layer_norm", C)
            lin(p + "fc1", F, C)
            lin(p + "fc2", C, F)
            ln(p + "final_layer_norm", C)
    t["final_logits_bias"] = rng.normal(0, 0.02, (1, V))
    rnd = {"F32": lambda a: a.astype(np.float32).astype(np.float64),
           "F16": lambda a: a.astype(np.float16).astype(np.float64), "BF16": bf16_round}[dtype]
    t = {k: rnd(v) for k, v in t.items()}
    scale = np.sqrt(C)

    def mha(p, xq, xkv, mask):
        f = lambda n, h: h @ t[p + n + ".weight"].T + t[p + n + ".bias"]
        return f("out_proj", attention(f("q_proj", xq), f("k_proj", xkv), f("v_proj", xkv), H, mask))

    def encode(src, slen):
        S = len(src)
        x = t["model.shared.weight"][src] * scale + t["model.encoder.embed_positions.weight"][2:2 + S]
        x = layernorm(x, t["model.encoder.layernorm_embedding.weight"], t["model.encoder.layernorm_embedding.bias"], eps)
        mask = np.broadcast_to(np.arange(S)[None, :] < slen, (S, S))
        for i in range(EL):
            p = "model.encoder.layers.%d." % i
            x = layernorm(x + mha(p + "self_attn.", x, x, mask), t[p + "self_attn_layer_norm.weight"],
                          t[p + "self_attn_layer_norm.bias"], eps)
            m = gelu_erf(x @ t[p + "fc1.weight"].T + t[p + "fc1.bias"]) @ t[p + "fc2.weight"].T + t[p + "fc2.bias"]
            x = layernorm(x + m, t[p + "final_layer_norm.weight"], t[p + "final_layer_norm.bias"], eps)
        return x

    def decode(tgt, mem, slen):
        T_ = len(tgt)
        y = t["model.shared.weight"][tgt] * scale + t["model.decoder.embed_positions.weight"][2:2 + T_]
        y = layernorm(y, t["model.decoder.layernorm_embedding.weight"], t["model.decoder.layernorm_embedding.bias"], eps)
        causal = np.tril(np.ones((T_, T_), dtype=bool))
        xmask = np.broadcast_to(np.arange(mem.shape[0])[None, :] < slen, (T_, mem.shape[0]))
        for i in range(DL):
            p = "model.decoder.layers.%d." % i
            y = layernorm(y + mha(p + "self_attn.", y, y, causal), t[p + "self_attn_layer_norm.weight"],
                          t[p + "self_attn_layer_norm.bias"], eps)
            y = layernorm(y + mha(p + "encoder_attn.", y, mem, xmask), t[p + "encoder_attn_layer_norm.weight"],
                          t[p + "encoder_attn_layer_norm.bias"], eps)
            m = gelu_erf(y @ t[p + "fc1.weight"].T + t[p + "fc1.bias"]) @ t[p + "fc2.weight"].T + t[p + "fc2.bias"]
            y = layernorm(y + m, t[p + "final_layer_norm.weight"], t[p + "final_layer_norm.bias"], eps)
        return y, y @ t["model.shared.weight"].T + t["final_logits_bias"][0]

    B, S, T = 2, 11, 9
    src = rng.integers(3, V, (B, S))
    slen = np.array([11, 6])
    tgt = rng.integers(3, V, (B, T))
    tgt[:, 0] = start
    tlen = np.array([9, 5])
    for b in range(B):
        src[b, slen[b]:] = pad
        tgt[b, tlen[b]:] = pad
    logits, hidden, memory = np.zeros((B, T, V)), np.zeros((B, T, C)), np.zeros((B, S, C))
    for b in range(B):
        memory[b] = encode(src[b], slen[b])
        hidden[b], logits[b] = decode(tgt[b], memory[b], slen[b])
    # greedy decoding of each source row from decoder_start_token_id: each step the argmax of the last row
    # of a whole forward over the prefix (no cache: the definition a KV cache must reproduce); the margin
    # between the best two logits is kept so that a test can see it is not a near tie
    gen, margin = [], np.inf
    for b in range(B):
        mem_b = encode(src[b, :slen[b]], slen[b])
        seq = [start]
        for _ in range(6):
            last = np.sort(decode(np.array(seq), mem_b, slen[b])[1][-1])
            margin = min(margin, last[-1] - last[-2])
            seq.append(int(np.argmax(decode(np.array(seq), mem_b, slen[b])[1][-1])))
        gen.append(seq)
    if dtype == "BF16":  # older files keep the tied copies of model.shared: they must be accepted
        t["model.encoder.embed_tokens.weight"] = t["model.shared.weight"]
        t["model.decoder.embed_tokens.weight"] = t["model.shared.weight"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), t, dtype)  # lm_head.weight is tied: not written
    write_inputs(os.path.join(out, "inputs.txt"), tgt, np.zeros((B, T), dtype=np.int64), tlen)
    write_inputs(os.path.join(out, "source.txt"), src, np.zeros((B, S), dtype=np.int64), slen)
    write_matrix(os.path.join(out, "logits.txt"), logits.reshape(B * T, V))
    write_matrix(os.path.join(out, "hidden.txt"), hidden.reshape(B * T, C))
    write_matrix(os.path.join(out, "memory.txt"), memory.reshape(B * S, C))
    with open(os.path.join(out, "generated.txt"), "w") as f:
        for seq in gen:
            f.write(" ".join(str(v) for v in seq) + "\n")
    with open(os.path.join(out, "margin.txt"), "w") as f:
        f.write("%.9g\n" % margin)


if __name__ == "__main__":
    out = sys.argv[1]
    bert(os.path.join(out, "bert"), np.random.default_rng(1))
    bert(os.path.join(out, "bert_f16"), np.random.default_rng(1), "F16")
    gpt2(os.path.join(out, "gpt2"), np.random.default_rng(2))
    encoder_family(os.path.join(out, "roberta"), np.random.default_rng(3), "roberta")
    encoder_family(os.path.join(out, "distilbert"), np.random.default_rng(4), "distilbert")
    bart(os.path.join(out, "bart"), np.random.default_rng(5))
    bart(os.path.join(out, "bart_bf16"), np.random.default_rng(5), "BF16")
    bert(os.path.join(out, "bert_stsb"), np.random.default_rng(5), NL=1)
    encoder_family(os.path.join(out, "roberta_stsb"), np.random.default_rng(6), "roberta", NL=1)
    encoder_family(os.path.join(out, "distilbert_stsb"), np.random.default_rng(7), "distilbert", NL=1)
