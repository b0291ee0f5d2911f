-- qblock_gguf.lua — the qblock pass on llama.cpp's Q5_0/Q5_1 and k-quants (Q4_K/Q5_K/Q6_K) from Lua, and GGUF
-- export and reading: exact bits per weight, the quantized model stays close to f32 (an untrained d=256
-- encoder: every Linear has K a multiple of 256), k-quants refuse layers whose K is not a multiple of 256
-- naming the layer, m:save_gguf writes every block type, pare.gguf_read returns the metadata, tensor infos
-- and (data = true) the blocks, and bad files and options get clear errors.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("recall", {seed = 3, n_train = 64, n_test = 64})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 256, heads = 4, layers = 1, ffn = 512, seed = 1}
local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end
local tmp = os.tmpname()

local bits = {q5_0 = 5.5, q5_1 = 6.0, q4_k = 4.5, q5_k = 5.5, q6_k = 6.5625, q4_0 = 4.5, q8_0 = 8.5}
local types = {q5_0 = "q5_0", q5_1 = "q5_1", q4_k = "q4_K", q5_k = "q5_K", q6_k = "q6_K", q4_0 = "q4_0", q8_0 = "q8_0"}
local cos = {}
for _, f in ipairs{"q8_0", "q6_k", "q5_1", "q5_k", "q5_0", "q4_k", "q4_0"} do
  local q = m:apply("qblock", {format = f})
  local r = q:quant_report()[1]
  cos[f] = q:fidelity(m, task).cosine
  tap.ok(r.format == f and r.bits_per_weight == bits[f] and not q:info().simulated,
         string.format("%s: %.4f bits per weight on its kernel, logit cosine to f32 %.6f", f, r.bits_per_weight, cos[f]))
  q:save_gguf(tmp)
  local g = pare.gguf_read(tmp, {data = true})
  local nq, good = 0, g.version == 3 and g.alignment == 32 and g.metadata["general.architecture"] == "pare"
      and g.metadata_types["general.alignment"] == "u32" and g.metadata["general.quantization_version"] == 2
  for _, t in ipairs(g.tensors) do
    if t.type == types[f] then
      nq = nq + 1
      good = good and #t.data == t.nbytes and t.offset % 32 == 0
    end
  end
  tap.ok(good and nq == 4, string.format("%s: save_gguf / gguf_read: %d %s tensors with their blocks", f, nq, types[f]))
  -- the checkpoint keeps the stored form (llama.cpp's blocks for the ggml-block kinds): bit-identical logits
  local ck = tmp .. ".safetensors"
  q:save(ck)
  local back = pare.load(ck)
  tap.ok(back:quant_report()[1].format == f and back:fidelity(q, task).max_abs_err == 0,
         string.format("%s: m:save / pare.load keep the blocks: the same format, bit-identical logits", f))
  os.remove(ck)
  -- a token-embedding table in the format: the lookup reads the blocks' rows, equal to dequantize-then-lookup
  local t = m:apply("qblock", {format = f, layers = "", embeddings = true})
  tap.ok(t:fidelity(t:apply("dequantize"), task).max_abs_err == 0,
         string.format("%s: an embedding table in %s, looked up = dequantized then looked up, bit for bit", f, f))
end
tap.ok(cos.q6_k > cos.q5_k and cos.q5_k > cos.q4_k and cos.q5_0 > cos.q4_0 and cos.q4_k > 0.99,
       string.format("more bits, closer to f32: q6_k %.6f > q5_k %.6f > q4_k %.6f; q5_0 %.6f > q4_0 %.6f", cos.q6_k, cos.q5_k, cos.q4_k, cos.q5_0, cos.q4_0))

local small = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 1, seed = 1}
tap.like(err(function() small:apply("qblock", {format = "q4_k"}) end), "multiple of 256.*enc%.0", "q4_k on K = 64 names the layer")
tap.ok(small:apply("qblock", {format = "q5_1"}):quant_report()[1].format == "q5_1", "q5_1 runs on K = 64")
tap.like(err(function() pare.gguf_read(tmp, {dta = true}) end), "unknown option 'dta'", "gguf_read: unknown option named")
local f = io.open(tmp, "wb"); f:write("GGUF\3\0\0\0"); f:close()
tap.like(err(function() pare.gguf_read(tmp) end), "tensor_count: truncated", "gguf_read: a truncated file names the field")
f = io.open(tmp, "wb"); f:write("NOPE"); f:close()
tap.like(err(function() pare.gguf_read(tmp) end), "not a GGUF file", "gguf_read: wrong magic")
os.remove(tmp)
tap.done()
