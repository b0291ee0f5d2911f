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

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  return not ok and tostring(e) or nil
end

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

-- written back in Hugging Face's layout: the same tensors, bit for bit, and the same logits on reload
for _, name in ipairs({"bert", "gpt2", "bert_stsb"}) do
  local m = pare.load_hf(dir .. "/" .. name)
  local out = dir .. "/" .. name .. ".saved"
  m:save_hf(out)
  local again, info = pare.load_hf(out)
  local ids2, types2, lengths2 = inputs(dir .. "/" .. name .. "/inputs.txt")
  local x = m:forward{tokens = ids2, types = info.arch == "bert" and types2 or nil, lengths = lengths2}
  local y = again:forward{tokens = ids2, types = info.arch == "bert" and types2 or nil, lengths = lengths2}
  tap.is(table.concat(y.logits.values, ","), table.concat(x.logits.values, ","),
         name .. ": save_hf -> load_hf gives identical logits")
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
