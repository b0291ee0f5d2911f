-- generate.lua — m:generate and m:generate_bench (issue 12, docs/generation.md): greedy generation
-- equals the argmax of m:forward over the sequence so far, token by token (f32, dynamic_int8, without
-- the cache, a longformer decoder, a GPT-2 directory);
-- sampling is deterministic per seed; eos stops a row; the timing fields are there (never asserted as
-- speeds); bad arguments raise errors naming the problem.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local V = 31
local m = pare.model{kind = "decoder", vocab = V, max_T = 24, d = 16, heads = 2, layers = 2, seed = 3}

-- the greedy continuation of prompt by full forwards (m:forward at each length)
local function greedy_by_forward(model, prompt, n, V)
  V = V or 31
  local seq, out = {table.unpack(prompt)}, {}
  for _ = 1, n do
    local lg = model:forward{tokens = {seq}}.logits
    local base, best = (#seq - 1) * V, 0
    for i = 1, V - 1 do
      if lg.values[base + i + 1] > lg.values[base + best + 1] then best = i end
    end
    out[#out + 1], seq[#seq + 1] = best, best
  end
  return out
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local prompts = {{1, 2, 3, 4}, {7}, {9, 8, 7, 6, 5, 4, 3}}
local r = m:generate(prompts, {max_new_tokens = 6})
tap.is(#r.tokens, 3, "one list of new tokens per prompt")
for b, p in ipairs(prompts) do
  tap.ok(same(r.tokens[b], greedy_by_forward(m, p, 6)),
         string.format("prompt %d (length %d): greedy tokens equal the argmax of m:forward, token by token", b, #p))
end
tap.ok(r.stop[1] == "max_new_tokens" and r.generated == 18 and r.prompt_tokens == 12 and r.steps == 5,
       "stop reasons and counts")
tap.ok(type(r.prefill_ms) == "number" and #r.step_ms == 5 and r.step_median_ms >= 0 and r.tokens_per_s > 0 and
       r.decode_tokens_per_s > 0 and r.cache_bytes > 0 and r.note == "", "timing fields: prefill, per step, tokens/s")
tap.ok(same(m:generate({1, 2, 3, 4}, {max_new_tokens = 6}).tokens[1], r.tokens[1]), "a flat list is one prompt")

local q = m:apply("dynamic_int8")
tap.ok(same(q:generate({prompts[3]}, {max_new_tokens = 6}).tokens[1], greedy_by_forward(q, prompts[3], 6)),
       "dynamic_int8: greedy tokens equal the argmax of its own m:forward")

local s1 = m:generate(prompts, {max_new_tokens = 8, temperature = 1.2, top_k = 10, top_p = 0.9, seed = 5})
local s2 = m:generate(prompts, {max_new_tokens = 8, temperature = 1.2, top_k = 10, top_p = 0.9, seed = 5})
tap.ok(same(s1.tokens[1], s2.tokens[1]) and same(s1.tokens[3], s2.tokens[3]), "sampling: the same seed, the same tokens")
local k1 = m:generate(prompts, {max_new_tokens = 6, temperature = 1, top_k = 1, seed = 9})
tap.ok(same(k1.tokens[2], r.tokens[2]), "top_k = 1 samples the greedy tokens")

local nc = m:generate(prompts, {max_new_tokens = 6, cache = false})
tap.ok(same(nc.tokens[1], r.tokens[1]) and same(nc.tokens[3], r.tokens[3]) and nc.note:find("cache=false", 1, true),
       "cache = false recomputes every prefix: the same greedy tokens, and the note says so")
local lf = pare.model{kind = "decoder", vocab = V, max_T = 24, d = 16, heads = 2, layers = 2, seed = 3,
                      attention = "longformer:window=3"}
local lr = lf:generate({prompts[3]}, {max_new_tokens = 4})
tap.ok(same(lr.tokens[1], greedy_by_forward(lf, prompts[3], 4)) and lr.note:find("longformer", 1, true),
       "a longformer decoder generates by recomputing prefixes (its note says so): " .. lr.note)

local eos = r.tokens[1][2]
local e = m:generate({prompts[1]}, {max_new_tokens = 6, eos = eos})
local first = 1
while r.tokens[1][first] ~= eos do first = first + 1 end
tap.ok(#e.tokens[1] == first and e.tokens[1][first] == eos and e.stop[1] == "eos",
       string.format("eos = %d stops the row after %d tokens (eos kept)", eos, first))

local b = m:generate_bench{prompt_len = 5, new_tokens = 4, batch = 2, repeats = 2, warmup = 0}
tap.ok(#b.step_ms == 6 and b.prefill_ms >= 0 and b.step_median_ms >= 0 and b.tokens_per_s > 0 and b.batch == 2,
       "generate_bench: 3 steps × 2 repeats pooled, prefill and tokens/s")

tap.raises(function() m:generate(prompts, {temprature = 1}) end, "temprature", "an unknown option is named")
tap.raises(function() m:generate(prompts, {top_p = 0}) end, "top_p=0", "top_p = 0 refused, naming it")
tap.raises(function() m:generate({{1, "x"}}) end, "prompt 1, position 2", "a non-integer token named by position")
tap.raises(function() m:generate({{1, 99}}) end, "vocabulary", "a token outside the vocabulary")
local long = {}
for i = 1, 25 do long[i] = 1 end
tap.raises(function() m:generate({long}) end, "max_T", "a prompt longer than max_T")
tap.raises(function() m:generate_bench{prompt_len = 20, new_tokens = 10} end, "max_T", "generate_bench past max_T")
local enc = pare.model{kind = "encoder", vocab = V, max_T = 8, d = 8, heads = 2, layers = 1}
tap.raises(function() enc:generate({{1, 2}}) end, "encoder", "an encoder cannot generate")

-- a GPT-2 checkpoint loaded through pare.load_hf (tests/hf_ref.py writes one with random weights; its
-- forward is checked against numpy by hf_load.lua) generates what its full forwards say
local py = "/usr/bin/python3"
if os.execute(py .. " -c 'import numpy' 2>/dev/null") then
  local dir = string.format("%s/pare-gen-%d-%d", os.getenv("TMPDIR") or "/tmp", os.time(), math.random(1 << 30))
  assert(os.execute(string.format("mkdir -p '%s' && %s tests/hf_ref.py '%s'", dir, py, dir)), "hf_ref.py failed")
  local g = pare.load_hf(dir .. "/gpt2")
  local gv = g:forward{tokens = {{0}}}.logits.cols
  local gp = {{3, 1, 4, 1, 5}, {2, 7}}
  local gr = g:generate(gp, {max_new_tokens = 4})
  tap.ok(same(gr.tokens[1], greedy_by_forward(g, gp[1], 4, gv)) and same(gr.tokens[2], greedy_by_forward(g, gp[2], 4, gv)),
         "a GPT-2 loaded by pare.load_hf: greedy tokens of 2 prompts equal the argmax of its m:forward")
  os.execute(string.format("rm -rf '%s'", dir))
else
  tap.skip("needs Debian's python3-numpy for tests/hf_ref.py's GPT-2 directory")
end

tap.done()
