-- prune_tokens.lua — token pruning from Lua (issue 13; docs/pruning-tokens.md): m:prune_tokens{keep = ...}
-- (list or text) and m:apply("prune_tokens", ...) give the same model; keep = 1 gives the dense logits; a
-- pruned model has fewer FLOPs, trains (fine-tuning with the schedule in place), saves and loads with
-- identical logits; help and errors name the option. The numerics (the reference, the kept tokens, central
-- differences) are checked in tests/test_prune_tokens.c.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 4, n_train = 256, n_test = 64, min_length = 12, max_length = 16})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 32, heads = 4, layers = 3, ffn = 64, seed = 3}
m:train(task, {steps = 80, batch = 32, lr = 3e-3, warmup = 5})
local dense = m:evaluate(task)
local function flops(x) return x:bench{batch = 1, repeats = 1, warmup = 0, warmup_min_s = 0, warmup_max_s = 0}.flops end

local same = m:prune_tokens{keep = {1, 1, 1}}
tap.is(same:evaluate(task).loss, dense.loss, "keep = {1, 1, 1}: the dense model's loss")

local p = m:prune_tokens{keep = {1, 0.6, 0.4}}
local q = m:apply("prune_tokens", {keep = "1;0.6;0.4"})
local ep, eq = p:evaluate(task), q:evaluate(task)
tap.is(ep.loss, eq.loss, "m:prune_tokens{keep = {...}} and m:apply('prune_tokens', {keep = '...'}) agree")
tap.ok(flops(p) < flops(m), string.format("FLOPs fall: %d -> %d", flops(m), flops(p)))
tap.is(p:info().params, m:info().params, "no parameter removed (the rows are)")
tap.ok(ep.accuracy > 0.6, string.format("the pruned model still classifies (accuracy %.3f, dense %.3f)", ep.accuracy,
                                        dense.accuracy))
local names = {}
for _, n in ipairs(p:layers("*.tokens")) do names[#names + 1] = n end
tap.is(table.concat(names, ","), "enc.1.tokens,enc.2.tokens", "one select before each layer whose share falls")
local ids = {}
for i = 1, 16 do ids[i] = (i * 5) % task.vocab end
local out = p:forward{tokens = {ids}, lengths = {16}}
tap.ok(out.logits and out.logits.cols == 2, "m:forward on the pruned model")

-- fine-tuning with the schedule in place
local before = p:evaluate(task).loss
p:train(task, {steps = 30, batch = 32, lr = 1e-3, warmup = 3})
tap.ok(p:evaluate(task).loss < before, string.format("fine-tuning lowers the loss (%.4f -> %.4f)", before,
                                                     p:evaluate(task).loss))

-- checkpoint
local path = os.tmpname()
p:save(path)
local back = pare.load(path)
os.remove(path)
tap.is(back:evaluate(task).loss, p:evaluate(task).loss, "save -> load: identical loss")
local bn = {}
for _, n in ipairs(back:layers("*.tokens")) do bn[#bn + 1] = n end
tap.is(#bn, 2, "... with its selects")

-- errors
tap.like(err_of(m.prune_tokens, m, {keep = {1, 1.5}}), "keep", "a share above 1 refused, naming keep")
tap.like(err_of(m.prune_tokens, m, {keep = {1, 0.3, 0.6}}), "must not grow", "growing shares refused")
tap.like(err_of(m.prune_tokens, m, {keep = {0.5}}), "first share must be 1", "a first share below 1 refused")
tap.like(err_of(m.prune_tokens, m, {keep = {1, "x"}}), "keep%[2%]", "a share that is not a number refused")
tap.like(err_of(m.prune_tokens, m, {kep = {1}}), "unknown option 'kep'", "an unknown option refused")
tap.like(err_of(p.prune_tokens, p, {keep = {1, 0.5}}), "token%-pruned already", "pruning twice refused")
local dec = pare.model{kind = "decoder", vocab = 12, max_T = 8, d = 16, heads = 2, layers = 2, seed = 1}
tap.like(err_of(dec.prune_tokens, dec, {keep = {1, 0.5}}), "bidirectional encoders", "a decoder refused")
-- a BERT-shaped (post-LN, [CLS] + tanh pooler) model prunes too; Hugging Face configs cannot say it
local bert = pare.model{vocab = 30, max_T = 16, d = 16, heads = 2, layers = 2, ffn = 32, classes = 2, seed = 2,
                        norm = "post", emb_norm = true, pooler = "tanh", act = "gelu_erf", ln_eps = 1e-12, type_vocab = 2}
local pb = bert:prune_tokens{keep = {1, 0.5}}
tap.ok(pb:forward{tokens = {ids}, lengths = {16}}.logits.cols == 2, "a post-LN BERT-shaped encoder with a pooler prunes and runs")
local hfdir = os.tmpname()
os.remove(hfdir)
tap.like(err_of(pb.save_hf, pb, hfdir), "token%-pruned", "m:save_hf refuses a token-pruned model (use m:save)")
os.execute("rm -rf '" .. hfdir .. "'")
tap.done()
