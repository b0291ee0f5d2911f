-- encdec.lua — an encoder-decoder learns the synthetic translation task (docs/encoder-decoder.md): BLEU
-- of greedy translations rises from near 0 to well above 50 in 200 steps; the save/load round trip
-- keeps the score; dropping a cross-attention head runs; errors name the problem.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("translate", {seed = 1, n_train = 3000, n_test = 100})
tap.ok(task.S == 10 and task.T == 13 and task.src_vocab == 40 and task.vocab == 41,
       string.format("translate: S=%d T=%d src_vocab=%d vocab=%d", task.S, task.T, task.src_vocab, task.vocab))
local m = pare.model{kind = "encdec", vocab = task.vocab, src_vocab = task.src_vocab, max_T = task.T, src_max_T = task.S,
                     d = 32, heads = 4, layers = 1, ffn = 64, seed = 1}
local before = m:translate(task, {n = 100})
local r = m:train(task, {steps = 300, batch = 32, lr = 3e-3, warmup = 30, seed = 3})
local after = m:translate(task, {n = 100})
local acc = m:evaluate(task).accuracy
tap.diag(string.format("BLEU %.2f untrained -> %.2f after %d steps (%.1fs; teacher-forced token accuracy %.3f)",
                       before.bleu, after.bleu, r.steps, r.seconds, acc))
tap.diag("  " .. (after.examples[2] or ""))
tap.ok(before.bleu < 10, string.format("an untrained model's BLEU is near 0 (%.2f)", before.bleu))
-- robust margin: 300 steps reach 99-100 on this machine (seeds 3 and 5); the assertion leaves room for other seeds and BLAS orders
tap.ok(after.bleu > 50 and after.bleu > before.bleu + 40,
       string.format("BLEU rises well above the untrained model's (%.2f -> %.2f)", before.bleu, after.bleu))
tap.ok(#after.precisions == 4 and after.bp > 0 and after.bp <= 1 and after.n == 100, "translate returns precisions, bp and n")

local path = os.tmpname()
m:save(path)
local back = pare.load(path)
os.remove(path)
tap.is(back:translate(task, {n = 100}).bleu, after.bleu, "save -> load: the same BLEU")

local p = m:drop_heads("dec.0.xattn", {0, 1})
local pb = p:translate(task, {n = 100})
tap.ok(pb.bleu >= 0 and pb.bleu <= 100, string.format("two of four cross-attention heads dropped: BLEU %.2f", pb.bleu))

local dec = pare.model{kind = "decoder", vocab = task.vocab, max_T = task.T, d = 16, heads = 2, layers = 1}
tap.raises(function() dec:translate(task) end, "kind=encdec", "translate with a decoder names the kind it needs")
tap.raises(function() dec:evaluate(task) end, "no source input", "a decoder refuses a task with sources")
local small = pare.model{kind = "encdec", vocab = task.vocab, src_vocab = task.src_vocab, max_T = task.T, src_max_T = 5,
                         d = 16, heads = 2, layers = 1}
tap.raises(function() small:translate(task) end, "src_max_T", "a source longer than src_max_T is named")
tap.raises(function() m:translate(task, {beam = 4}) end, "valid: split, first, n, batch, max_len", "unknown options list the valid ones")
tap.done()
