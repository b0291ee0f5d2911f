-- quant_lm.lua — embedding and LM-head quantization on a small GPT-style LM (byte-level text_lm, tied and untied
-- heads): perplexity before and after each pass with embeddings = true, head = true, the size column counting the
-- tables, and the quantized LM's checkpoint loading with bit-identical logits.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("text_lm", {T = 64, n_train = 300, n_test = 30})
for _, tie in ipairs{false, true} do
  local m = pare.model{kind = "decoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4,
                       layers = 2, seed = 1, tie_head = tie}
  m:train(task, {steps = 80, batch = 16, lr = 3e-3, seed = 7})
  local ppl = m:evaluate(task).perplexity
  local size = m:info().size_bytes
  local cases = {
    {"dynamic_int8", {embeddings = true}, 0.01, 0.40},
    {"static_int8", {embeddings = true, calib = task, calib_samples = 16}, 0.01, 0.40},
    {"qblock", {format = "q8_0", embeddings = true, head = true}, 0.01, 0.40},
    {"qblock", {format = "q4_0", embeddings = true, head = true}, 0.03, 0.25},
    {"rtn", {bits = 4, group = 32, embeddings = true, head = true}, 0.03, 0.25},
  }
  for _, c in ipairs(cases) do
    local q = m:apply(c[1], c[2])
    local qp, qs = q:evaluate(task).perplexity, q:info().size_bytes
    tap.ok(math.abs(qp / ppl - 1) <= c[3] and qs <= c[4] * size,
           string.format("tie_head=%s %s %s embeddings+head: perplexity %.4f vs f32 %.4f (%.2f%%), size %d vs %d bytes (%.2f)",
                         tostring(tie), c[1], c[2].format or "", qp, ppl, 100 * (qp / ppl - 1), qs, size, qs / size))
  end
  -- the tables counted: quantizing the embeddings too makes the model smaller than the Linears alone
  local lin, all = m:apply("qblock", {format = "q8_0"}), m:apply("qblock", {format = "q8_0", embeddings = true, head = true})
  tap.ok(all:info().size_bytes < lin:info().size_bytes,
         string.format("tie_head=%s: q8_0 with the tables and head %d bytes < Linears only %d", tostring(tie),
                       all:info().size_bytes, lin:info().size_bytes))
  -- the tables alone: the lookup reads the dequantized rows, so m:apply("dequantize") computes the same logits
  -- (untied only: a tied table is the head's weight too, which runs the block kernel on quantized activations)
  for _, f in ipairs(tie and {} or {"q8_0", "q4_1"}) do
    local t = m:apply("qblock", {format = f, embeddings = true, layers = ""})
    local d = t:apply("dequantize")
    tap.ok(t:info().size_bytes < size and d:info().format == "f32" and d:fidelity(t, task).max_abs_err == 0,
           string.format("tie_head=%s: %s tables only (%d bytes): the dequantized f32 model gives the same logits, bit for bit",
                         tostring(tie), f, t:info().size_bytes))
  end
  local path = os.tmpname()
  all:save(path)
  local back = pare.load(path)
  tap.ok(back:fidelity(all, task).max_abs_err == 0 and back:info().size_bytes == all:info().size_bytes,
         string.format("tie_head=%s: the quantized LM saves and loads (bit-identical logits, %d bytes)", tostring(tie),
                       back:info().size_bytes))
  os.remove(path)
end
tap.like(tap.error_of(function() return pare.model{kind = "decoder", vocab = 40, max_T = 8, d = 32, heads = 2, layers = 1,
                                                    tie_head = true}:apply("dynamic_int8", {embeddings = true, exclude = "head"}) end),
         "tied to Linear head", "embeddings=true with the tied head excluded is refused")
tap.done()
