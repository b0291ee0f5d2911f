-- hf_load.lua — Hugging Face model directories (issue 12): tests/hf_ref.py writes BERT
-- (BertForSequenceClassification, F32 and F16) and GPT-2 (GPT2LMHeadModel, Conv1D layout, tied head left
-- out of the file) directories with random weights and the outputs of a float64 numpy forward written
-- from the architectures' definitions; pare.load_hf must reproduce the logits and last hidden states to
-- 1e-4 of their largest magnitude. Broken directories give errors naming the tensor or the key.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local py = "/usr/bin/python3"
local probe = io.open(py, "r")
if not probe or not os.execute(py .. " -c 'import numpy' 2>/dev/null") then
  if probe then probe:close() end
  tap.skip_all("needs Debian's python3-numpy (/usr/bin/python3) for the reference forward")
end
probe:close()

local dir = string.format("%s/pare-hf-%d-%d", os.getenv("TMPDIR") or "/tmp", os.time(), math.random(1 << 30))
assert(os.execute(string.format("mkdir -p '%s' && %s tests/hf_ref.py '%s'", dir, py, dir)), "hf_ref.py failed")

local err_of = tap.error_of

local function numbers(path)
  local f = assert(io.open(path))
  local t = {}
  for x in f:read("a"):gmatch("%S+") do t[#t + 1] = tonumber(x) end
  f:close()
  return t
end

local function matrix(path) -- {rows, cols, values}
  local t = numbers(path)
  local m = {rows = t[1], cols = t[2], values = {}}
  for i = 3, #t do m.values[#m.values + 1] = t[i] end
  return m
end

local function inputs(path)
  local t = numbers(path)
  local B, T, k = t[1], t[2], 3
  local ids, types, lengths = {}, {}, {}
  for b = 1, B do
    ids[b] = {}
    for j = 1, T do ids[b][j] = t[k]; k = k + 1 end
  end
  for b = 1, B do
    types[b] = {}
    for j = 1, T do types[b][j] = t[k]; k = k + 1 end
  end
  for b = 1, B do lengths[b] = t[k]; k = k + 1 end
  return ids, types, lengths, B, T
end

-- max |got - want| over the rows kept (keep(row) true) relative to the largest |want|
local function rel_err(got, want, keep)
  local worst, scale = 0, 1e-30
  for r = 0, want.rows - 1 do
    if not keep or keep(r) then
      for c = 1, want.cols do
        local w = want.values[r * want.cols + c]
        scale = math.max(scale, math.abs(w))
        worst = math.max(worst, math.abs(got.values[r * want.cols + c] - w))
      end
    end
  end
  return worst / scale
end

local function check(name, hidden_value, per_token_logits)
  local d = dir .. "/" .. name
  local m, info = pare.load_hf(d)
  local ids, types, lengths, B, T = inputs(d .. "/inputs.txt")
  local out = m:forward{tokens = ids, types = info.arch == "bert" and types or nil, lengths = lengths,
                        capture = {hidden_value}}
  local valid = function(r) return (r % T) < lengths[r // T + 1] end -- padded positions are not compared
  local want_logits, want_hidden = matrix(d .. "/logits.txt"), matrix(d .. "/hidden.txt")
  tap.ok(out.logits.rows == want_logits.rows and out.logits.cols == want_logits.cols,
         string.format("%s: logits %dx%d", name, out.logits.rows, out.logits.cols))
  local el = rel_err(out.logits, want_logits, per_token_logits and valid or nil)
  tap.ok(el <= 1e-4, string.format("%s (%s, %s %s): logits match the reference (rel. err %.2e)", name, info.head,
                                   info.dtype, info.arch, el))
  local eh = rel_err(out[hidden_value], want_hidden, valid)
  tap.ok(eh <= 1e-4, string.format("%s: last hidden state '%s' matches (rel. err %.2e)", name, hidden_value, eh))
  return m, info
end

local bert, bi = check("bert", "enc.1.ln2", false)
tap.is(bi.tensors, 3 + 2 + 2 * 16 + 2 + 2, "bert: every tensor of the file read (q, k, v counted apart)")
tap.is(bert:info().classes, 3, "bert: 3 classes from id2label")
check("bert_f16", "enc.1.ln2", false)
check("roberta", "enc.1.ln2", false)
check("distilbert", "enc.1.ln2", false)
-- regression heads (STS-B): num_labels 1 with problem_type "regression" (bert), or num_labels 1 alone (roberta,
-- distilbert's id2label of one entry): one score per sequence, an MSE loss
for _, name in ipairs({"bert_stsb", "roberta_stsb", "distilbert_stsb"}) do
  local m = check(name, "enc.1.ln2", false)
  tap.ok(m:info().classes == 1 and m:info().config:find('"head": "regression"', 1, true) ~= nil,
         name .. ": loaded as head=regression, one output")
end
local gpt, gi = check("gpt2", "ln_f", true)
tap.ok(gpt:info().kind == "decoder" and gi.head == "GPT2LMHeadModel", "gpt2: a decoder")
-- greedy generation with pare's KV cache against the reference's argmax over the whole sequence each step
local want = numbers(dir .. "/gpt2/generated.txt")
local prompt = {want[1], want[2], want[3], want[4]}
local g = gpt:generate({prompt}, {max_new_tokens = 6})
tap.is(table.concat(g.tokens[1], " "), table.concat(want, " ", 5), "gpt2: 6 greedy tokens equal the reference's")

-- BART (BartForConditionalGeneration, F32 and BF16): an encoder-decoder; the decoder's logits, its last
-- hidden state and the encoder's output against the reference, the source given as src_tokens
local function bart_inputs(d)
  local tgt, _, tl = inputs(d .. "/inputs.txt")
  local src, _, sl = inputs(d .. "/source.txt")
  return {tokens = tgt, lengths = tl, src_tokens = src, src_lengths = sl}, tl, sl
end
local function check_bart(name)
  local d = dir .. "/" .. name
  local m, info = pare.load_hf(d)
  local batch, tl, sl = bart_inputs(d)
  local EL = 3
  batch.capture = {"dec.1.ln2", "enc." .. (EL - 1) .. ".ln2"}
  local out = m:forward(batch)
  local T, S = #batch.tokens[1], #batch.src_tokens[1]
  local tvalid = function(r) return (r % T) < tl[r // T + 1] end
  local svalid = function(r) return (r % S) < sl[r // S + 1] end
  local el = rel_err(out.logits, matrix(d .. "/logits.txt"), tvalid)
  tap.ok(el <= 1e-4, string.format("%s (%s, %s): decoder logits match the reference (rel. err %.2e)", name, info.head,
                                   info.dtype, el))
  local eh = rel_err(out["dec.1.ln2"], matrix(d .. "/hidden.txt"), tvalid)
  tap.ok(eh <= 1e-4, string.format("%s: last decoder hidden state matches (rel. err %.2e)", name, eh))
  local em = rel_err(out["enc.2.ln2"], matrix(d .. "/memory.txt"), svalid)
  tap.ok(em <= 1e-4, string.format("%s: the encoder's output (3 layers; the decoder has 2) matches (rel. err %.2e)",
                                   name, em))
  return m, info
end
local bart, bai = check_bart("bart")
tap.is(bai.tensors, 1 + 2 * 3 + 3 * 16 + 2 * (16 + 10) + 1,
       "bart: every tensor of the file read (q, k, v counted apart; the LM head is model.shared)")
tap.ok(bart:info().kind == "encdec" and bai.arch == "bart", "bart: an encoder-decoder")
local _, bbi = check_bart("bart_bf16")
tap.is(bbi.dtype, "BF16", "bart_bf16: BF16 tensors (and the tied embed_tokens copies some files keep)")

-- the loaded models are pare models: they save, load and compress like any other
local p = dir .. "/bert.pare.safetensors"
bert:save(p)
local back = pare.load(p)
local ids, types, lengths = inputs(dir .. "/bert/inputs.txt")
local a = bert:forward{tokens = ids, types = types, lengths = lengths}
local b = back:forward{tokens = ids, types = types, lengths = lengths}
tap.is(table.concat(a.logits.values, ","), table.concat(b.logits.values, ","), "bert: pare checkpoint round trip, identical logits")
local q = bert:apply("dynamic_int8")
local ql = q:forward{tokens = ids, types = types, lengths = lengths}
tap.ok(rel_err(ql.logits, a.logits) < 0.1, "bert: int8 runs on the loaded model")

-- BART generates with pare's KV cache given each source: the reference's greedy argmax over whole
-- forwards, 6 steps for both source rows (lengths 11 and 6, batched), and the same without a cache
do
  local want, margin = {}, numbers(dir .. "/bart/margin.txt")[1]
  for line in io.lines(dir .. "/bart/generated.txt") do
    local t = {}
    for x in line:gmatch("%S+") do t[#t + 1] = tonumber(x) end
    want[#want + 1] = t
  end
  local batch, _, sl = bart_inputs(dir .. "/bart")
  local sources = {}
  for b = 1, #batch.src_tokens do sources[b] = {table.unpack(batch.src_tokens[b], 1, sl[b])} end
  local starts = {{want[1][1]}, {want[2][1]}}
  local g = bart:generate(starts, {max_new_tokens = 6, source = sources})
  local gc = bart:generate(starts, {max_new_tokens = 6, source = sources, cache = false})
  for b = 1, 2 do
    tap.is(table.concat(g.tokens[b], " "), table.concat(want[b], " ", 2),
           string.format("bart: 6 greedy tokens for source %d (length %d) equal the reference's, with the KV cache " ..
                         "(smallest margin between the best two logits %.3f)", b, sl[b], margin))
    tap.is(table.concat(gc.tokens[b], " "), table.concat(want[b], " ", 2),
           string.format("bart: the same without a cache (source %d)", b))
  end
  tap.ok(g.note == "" and g.cache_bytes > 0, "bart: generation ran with the cache (" .. g.cache_bytes .. " bytes)")
  tap.like(err_of(bart.generate, bart, starts, {max_new_tokens = 2}), "encoder%-decoder.*source",
           "bart: generation without a source is refused, saying why")
  tap.like(err_of(bart.generate, bart, starts, {max_new_tokens = 2, source = {sources[1]}}),
           "1 sources for 2 prompts", "bart: one source per prompt")
  tap.like(err_of(bart.generate, gpt, {{1}}, {max_new_tokens = 2, source = {{1, 2}}}), "takes none",
           "a source given to a decoder-only model is refused")
end
-- BartModel (no LM head in the file, no final_logits_bias): the same body
do
  local bm = dir .. "/bart_model"
  os.execute(string.format("mkdir -p '%s' && %s - '%s/bart' '%s' <<'EOF'\n%s\nEOF", bm, py, dir, bm, [==[
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
c = json.load(open(src + "/config.json")); c["architectures"] = ["BartModel"]
json.dump(c, open(out + "/config.json", "w"))
b = open(src + "/model.safetensors", "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
d = b[8 + n:]; hh, blobs, off = {}, [], 0
for k, v in h.items():
    if k in ("__metadata__", "final_logits_bias"): continue
    x = d[v["data_offsets"][0]:v["data_offsets"][1]]
    hh[k[len("model."):]] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [off, off + len(x)]}
    blobs.append(x); off += len(x)
hb = json.dumps(hh).encode(); hb += b" " * ((8 - len(hb) % 8) % 8)
open(out + "/model.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))]==]))
  local m, info = pare.load_hf(bm)
  local batch = bart_inputs(dir .. "/bart")
  batch.capture = {"dec.1.ln2"}
  local _, _, tl = inputs(dir .. "/bart/inputs.txt")
  local T = #batch.tokens[1]
  local eh = rel_err(m:forward(batch)["dec.1.ln2"], matrix(dir .. "/bart/hidden.txt"),
                     function(r) return (r % T) < tl[r // T + 1] end)
  tap.ok(info.head == "BartModel" and eh <= 1e-4,
         string.format("BartModel (no prefix, no final_logits_bias): the same last hidden state (rel. err %.2e)", eh))
end

-- written back in Hugging Face's layout: the same tensors, bit for bit, and the same logits on reload
for _, name in ipairs({"bert", "gpt2", "roberta", "distilbert", "bart", "bert_stsb", "roberta_stsb", "distilbert_stsb"}) do
  local m = pare.load_hf(dir .. "/" .. name)
  local out = dir .. "/" .. name .. ".saved"
  m:save_hf(out)
  local again, info = pare.load_hf(out)
  local batch
  if name == "bart" then batch = bart_inputs(dir .. "/bart")
  else
    local ids2, types2, lengths2 = inputs(dir .. "/" .. name .. "/inputs.txt")
    batch = {tokens = ids2, types = info.arch == "bert" and types2 or nil, lengths = lengths2}
  end
  local x, y = m:forward(batch), again:forward(batch)
  tap.is(table.concat(y.logits.values, ","), table.concat(x.logits.values, ","),
         name .. ": save_hf -> load_hf gives identical logits (" .. info.head .. ")")
  local same = os.execute(string.format("%s - '%s/%s/model.safetensors' '%s/model.safetensors' <<'EOF'\n%s\nEOF", py, dir,
    name, out, [==[
import json, struct, sys
def read(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: (v["shape"], d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items() if k != "__metadata__"}
a, b = read(sys.argv[1]), read(sys.argv[2])
sys.exit(0 if a == b else 1)]==]))
  tap.ok(same, name .. ": the written tensors equal the original file's (names, shapes, bytes)")
end
tap.like(err_of(pare.model{vocab = 10, max_T = 8}.save_hf, pare.model{vocab = 10, max_T = 8}, dir .. "/x"),
         "not shaped as a Hugging Face architecture", "a model of no HF architecture is refused")
-- heads pruned in pare are HF's pruned_heads: written and read back
local full = pare.load_hf(dir .. "/bert")
local pruned = full:drop_heads("enc.0.attn", {1}):drop_heads("enc.1.attn", {0, 3})
pruned:save_hf(dir .. "/pruned")
local pcfg = assert(io.open(dir .. "/pruned/config.json")):read("a")
tap.ok(pcfg:find('"pruned_heads"') ~= nil, "save_hf writes pruned_heads for a model with heads removed")
local pback = pare.load_hf(dir .. "/pruned")
local pi1, pt1, pl1 = inputs(dir .. "/bert/inputs.txt")
local px = pruned:forward{tokens = pi1, types = pt1, lengths = pl1}
local py_ = pback:forward{tokens = pi1, types = pt1, lengths = pl1}
tap.is(table.concat(py_.logits.values, ","), table.concat(px.logits.values, ","),
       "a head-pruned BERT round-trips through HF form (identical logits)")
tap.is(table.concat(pback:info().heads_per_layer, ","), "3,2", "with 3 and 2 heads")
-- RoBERTa and DistilBERT have pruned_heads too
for _, name in ipairs({"roberta", "distilbert"}) do
  local pm = pare.load_hf(dir .. "/" .. name):drop_heads("enc.1.attn", {2})
  pm:save_hf(dir .. "/" .. name .. ".pruned")
  local txt = assert(io.open(dir .. "/" .. name .. ".pruned/config.json")):read("a")
  local back2 = pare.load_hf(dir .. "/" .. name .. ".pruned")
  local ids3, _, len3 = inputs(dir .. "/" .. name .. "/inputs.txt")
  local a3 = pm:forward{tokens = ids3, lengths = len3}
  local b3 = back2:forward{tokens = ids3, lengths = len3}
  tap.ok(txt:find('"pruned_heads"') and table.concat(a3.logits.values, ",") == table.concat(b3.logits.values, ",") and
         table.concat(back2:info().heads_per_layer, ",") == "4,3",
         name .. ": a head-pruned model writes pruned_heads and reloads to identical logits (4 and 3 heads)")
end
local bp = bart:drop_heads("dec.0.attn", {1})
tap.like(err_of(bp.save_hf, bp, dir .. "/bp"), "no pruned_heads", "bart: a head-pruned BART is refused (HF has no key)")
local nn = full:drop_neurons("enc.0.ffn.up", {1, 2})
tap.like(err_of(nn.save_hf, nn, dir .. "/p"), "beyond removing heads", "FFN neurons removed: refused, naming why")

-- errors
local function write(path, text)
  local f = assert(io.open(path, "w")); f:write(text); f:close()
end
local bad = dir .. "/bad"
os.execute(string.format("mkdir -p '%s' && cp '%s/bert/model.safetensors' '%s/'", bad, dir, bad))
write(bad .. "/config.json", '{"model_type": "t5"}')
tap.like(err_of(pare.load_hf, bad), "model_type 't5' is not one pare loads", "an unknown model_type is named")
write(bad .. "/config.json", '{"model_type": "mbart"}')
tap.like(err_of(pare.load_hf, bad), "model_type 'mbart' is not one pare loads %(bert, roberta, distilbert, gpt2, bart%)",
         "another unknown model_type, with the list of known ones")
-- BART: a tensor missing, a tensor unknown, keys pare's encdec cannot express
local bbad = dir .. "/bbad"
os.execute(string.format("mkdir -p '%s' && cp '%s/bart/model.safetensors' '%s/'", bbad, dir, bbad))
local bcfg = assert(io.open(dir .. "/bart/config.json")):read("a")
write(bbad .. "/config.json", (bcfg:gsub('"encoder_layers": 3', '"encoder_layers": 4')))
tap.like(err_of(pare.load_hf, bbad), "tensor 'model.encoder.layers.3.self_attn.q_proj.weight' is missing %(pare's bart",
         "bart: a missing encoder tensor is named")
write(bbad .. "/config.json", (bcfg:gsub('"decoder_layers": 2', '"decoder_layers": 1')))
tap.like(err_of(pare.load_hf, bbad), "tensor 'model.decoder.layers.1.[%w_.]+' is not part of pare's bart %(BartForConditionalGeneration%)",
         "bart: a tensor pare does not use is named, with the architecture")
write(bbad .. "/config.json", (bcfg:gsub('"BartForConditionalGeneration"', '"BartForSequenceClassification"')))
tap.like(err_of(pare.load_hf, bbad), "'BartForSequenceClassification' %(bart%)", "bart: an unsupported head is named")
write(bbad .. "/config.json", (bcfg:gsub('"decoder_ffn_dim": 48', '"decoder_ffn_dim": 64')))
tap.like(err_of(pare.load_hf, bbad), "encoder_ffn_dim 48 and decoder_ffn_dim 64", "bart: differing FFN widths named")
write(bbad .. "/config.json", (bcfg:gsub('"d_model": 32', '"d_model": 3.2e+40')))
tap.like(err_of(pare.load_hf, bbad), "d_model", "bart: a width of 3.2e40 is refused, naming the key")
write(bbad .. "/config.json", (bcfg:gsub('"tie_word_embeddings": true', '"tie_word_embeddings": false')))
tap.like(err_of(pare.load_hf, bbad), "tie_word_embeddings = false", "bart: an untied LM head is refused")
local cfg = assert(io.open(dir .. "/bert/config.json")):read("a")
write(bad .. "/config.json", (cfg:gsub('"num_hidden_layers": 2', '"num_hidden_layers": 3')))
tap.like(err_of(pare.load_hf, bad), "tensor 'bert.encoder.layer.2.attention.self.query.weight' is missing",
         "a missing tensor is named")
write(bad .. "/config.json", (cfg:gsub('"num_hidden_layers": 2', '"num_hidden_layers": 1')))
tap.like(err_of(pare.load_hf, bad), "tensor 'bert.encoder.layer.1.[%w.]+' is not part of pare's bert",
         "a tensor pare does not use is named")
write(bad .. "/config.json", (cfg:gsub('"hidden_size": 32', '"hidden_size": 16')))
tap.like(err_of(pare.load_hf, bad), "needs %[50, 16%]", "a shape that does not match the config")
local scfg = assert(io.open(dir .. "/bert_stsb.saved/config.json")):read("a")
tap.ok(scfg:find('"problem_type":%s*"regression"') ~= nil, "save_hf of a regression BERT writes problem_type regression")
write(bad .. "/config.json", (cfg:gsub('"pad_token_id": 0', '"pad_token_id": 0, "problem_type": "regression"')))
tap.like(err_of(pare.load_hf, bad), "problem_type 'regression' and 3 labels",
         "problem_type regression with 3 labels: refused, naming both")
write(bad .. "/config.json", (cfg:gsub('"pad_token_id": 0', '"pad_token_id": 0, "problem_type": "multi_label_classification"')))
tap.like(err_of(pare.load_hf, bad), "problem_type 'multi_label_classification'", "multi-label heads are refused")
write(bad .. "/config.json", (cfg:gsub('"BertForSequenceClassification"', '"BertForTokenClassification"')))
tap.like(err_of(pare.load_hf, bad), "BertForTokenClassification", "an unsupported head is named")
tap.like(err_of(pare.load_hf, dir .. "/nothing"), "config.json: cannot open", "a missing directory")
-- numbers no integer can hold (fuzzing found 7.8e78 converted to an integer: undefined behaviour)
write(bad .. "/config.json", (cfg:gsub('"vocab_size": %d+', '"vocab_size": 7.77778e+78')))
tap.like(err_of(pare.load_hf, bad), "vocab_size", "a vocabulary size of 7.8e78 is refused, naming the key")
write(bad .. "/config.json", (cfg:gsub('"num_hidden_layers": 2', '"num_hidden_layers": 2, "pruned_heads": {"0": [1e30]}')))
tap.like(err_of(pare.load_hf, bad), "pruned_heads%['0'%] must list head numbers", "a head number of 1e30 is refused")

os.execute(string.format("rm -rf '%s'", dir))
tap.done()
