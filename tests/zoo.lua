-- zoo.lua — the pretrained zoo (issue 12) on tiny recipes: a few steps of masked-LM pretraining lower
-- the held-out MLM loss; a zoo entry built into a temporary directory is loaded, not rebuilt, by the
-- second call (same weights, same report), and built again when the recipe changes; m:transfer_from
-- copies exactly the parameters whose names and shapes match (the copied body computes what the
-- MLM body computes); a classifier fine-tunes from it; pare.corpus reads the Debian-text corpus.
-- Skipped when Debian's fortunes are not installed. The full-size models are `make zoo`'s, not here.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local f = io.open("/usr/share/games/fortunes/computers")
if not f then
  tap.skip_all("Debian's fortunes are not installed (apt-get install fortunes)")
  return
end
f:close()

local zoo = require "pare.zoo"
tap.ok(pare.zoo == zoo and getmetatable(zoo).__call ~= nil, "require 'pare.zoo' sets pare.zoo, callable as zoo(name)")

-- pare.corpus: the held-out split partitions the documents
local all = pare.corpus{sources = "fortunes", max_bytes = 100000}
local tr, te = pare.corpus{sources = "fortunes", max_bytes = 100000, split = "train"},
               pare.corpus{sources = "fortunes", max_bytes = 100000, split = "test"}
tap.ok(all.docs > 100 and tr.docs + te.docs == all.docs and tr.bytes + te.bytes == all.bytes and te.docs > 0,
       string.format("pare.corpus: %d documents, %d train + %d test", all.docs, tr.docs, te.docs))
tap.ok(all.sources.fortunes.docs == all.docs and all.sources.copyright.docs == 0, "pare.corpus: per-source counts")

-- a tiny MLM: pretraining lowers the held-out loss
local tok = pare.train_tokenizer{kind = "wordpiece", text = tr.text, vocab_size = 500}
local task = pare.task("mlm_corpus", {tokenizer = tok, sources = "fortunes", max_bytes = 100000, max_len = 32,
                                      test_frac = 0.05})
tap.ok(task.kind == "lm" and task.vocab == tok.vocab_size and task.T <= 32,
       string.format("mlm_corpus through a WordPiece tokenizer: %d rows, T %d", task.n_train, task.T))
local body = {d = 32, heads = 2, layers = 1, ffn = 64, norm = "post", act = "gelu_erf", emb_norm = true, type_vocab = 2,
              ln_eps = 1e-12, max_T = 32}
local mopts = {kind = "tagger", head = "mlm", tie_head = true, vocab = task.vocab, seed = 1}
for k, v in pairs(body) do mopts[k] = v end
local m = pare.model(mopts)
local before = m:evaluate(task)
m:train(task, {steps = 60, batch = 16, lr = 3e-3, warmup = 5})
local after = m:evaluate(task)
tap.ok(after.loss < before.loss - 0.3 and after.perplexity < before.perplexity and after.n > 0,
       string.format("60 steps lower the held-out MLM loss %.3f -> %.3f (perplexity %.0f -> %.0f, accuracy %.3f over %d "
                     .. "masked tokens)", before.loss, after.loss, before.perplexity, after.perplexity, after.accuracy, after.n))

-- transfer: the classifier takes the body, keeps its own pooler and head
local clf = pare.model{kind = "encoder", pooler = "tanh", classes = 3, vocab = task.vocab, seed = 2, d = 32, heads = 2,
                       layers = 1, ffn = 64, norm = "post", act = "gelu_erf", emb_norm = true, type_vocab = 2,
                       ln_eps = 1e-12, max_T = 32}
local rep = clf:transfer_from(m)
local p = rep.params
tap.ok(rep.copied == 17 and p["emb.tok.weight"] == "copied" and p["enc.0.ffn.up.weight"] == "copied" and
       p["pooler.weight"] == "missing" and p["head.weight"] == "missing" and p["head.bias"] == "shape" and
       p["head.transform.weight"] == "unused" and rep.missing == 3 and rep.shape_mismatch == 1 and rep.unused == 4,
       string.format("transfer_from: %d copied, %d missing, %d other shape, %d unused", rep.copied, rep.missing,
                     rep.shape_mismatch, rep.unused))
local ids = {{tok.cls, 7, 8, 9, 10, tok.sep}}
local a = m:forward{tokens = ids, types = {{0, 0, 0, 0, 0, 0}}, capture = {"enc.0.ln2"}}["enc.0.ln2"].values
local b = clf:forward{tokens = ids, types = {{0, 0, 0, 0, 0, 0}}, capture = {"enc.0.ln2"}}["enc.0.ln2"].values
local worst = 0
for i = 1, #a do worst = math.max(worst, math.abs(a[i] - b[i])) end
tap.ok(#a == 6 * 32 and worst == 0, string.format("the copied body computes what the MLM body computes (max |diff| %g)", worst))
tap.raises(function() return m:transfer_from(m) end, "itself", "a model cannot be initialised from itself")

-- the zoo's caching, on a tiny recipe in a temporary directory
local dir = os.tmpname()
os.remove(dir)
local tiny = {corpus = {sources = "fortunes", max_bytes = 60000}, tokenizer = {vocab_size = 400},
              model = {d = 32, heads = 2, layers = 1, ffn = 64}, pretrain = {max_len = 32, dupe = 1},
              train = {steps = 10, batch = 8, lr = 2e-3, warmup = 2}}
local m1, t1, i1 = zoo("bert-mini", {dir = dir, recipe = tiny})
tap.ok(i1.built and i1.report.perplexity > 0 and i1.report.accuracy >= 0, string.format(
       "first call builds bert-mini (tiny recipe) into %s: masked-token accuracy %.3f, perplexity %.1f", i1.dir,
       i1.report.accuracy, i1.report.perplexity))
local m2, t2, i2 = zoo("bert-mini", {dir = dir, recipe = tiny})
tap.ok(not i2.built and math.abs(i2.report.perplexity - i1.report.perplexity) < 1e-9 * i1.report.perplexity and t2.vocab_size == t1.vocab_size,
       "the second call loads it (no build), with its report and tokenizer")
tap.ok(m2:fidelity(m1, pare.task("mlm_corpus", {tokenizer = t2, sources = "fortunes", max_bytes = 60000, max_len = 32}))
         .agreement == 1, "the loaded model predicts what the built one did")
local hf = pare.load_hf(i1.dir)
tap.ok(hf ~= nil, "its directory is also a Hugging Face BERT directory (load_hf)")
local changed = {}
for k, v in pairs(tiny) do changed[k] = v end
changed.train = {steps = 12, batch = 8, lr = 2e-3, warmup = 2}
local _, _, i3 = zoo("bert-mini", {dir = dir, recipe = changed})
tap.ok(i3.built and i3.report.steps == 12, "another recipe builds again")
tap.raises(function() return zoo("bert-huge", {dir = dir}) end, "bert-mini", "an unknown name lists the zoo")
-- model= of the experiments: whatever build is cached, measured on its pretraining task
local small = {sources = "fortunes", max_bytes = 60000}
local sm, st = zoo.subject("bert-mini", {dir = dir, max_len = 32, corpus = small})
tap.ok(sm:info().kind == "tagger" and st.kind == "lm" and st.name == "mlm_corpus" and st.T <= 32,
       string.format("zoo.subject(\"bert-mini\") loads the cached build and measures it on mlm_corpus (%d rows)", st.n_test))
local hm, ht = zoo.subject(i1.dir, {max_len = 32, corpus = small})
tap.ok(hm:info().kind == "tagger" and ht.vocab == t1.vocab_size, "zoo.subject(<hf dir>) reads it with load_hf and its tokenizer")

-- fine-tuning from the cached model, against the baselines
local r = zoo.finetune("bert-mini", "fortune_topic", {dir = dir, recipe = changed, steps = 10, batch = 8, lr = 1e-3,
                                                      task = {max_len = 32, n_train = 200, n_test = 100}})
tap.ok(r.accuracy >= 0 and r.accuracy <= 1 and r.majority > 0 and r.bow > r.majority and r.transfer.copied == 17,
       string.format("zoo.finetune on fortune_topic: accuracy %.3f (majority %.3f, bag of words %.3f)", r.accuracy,
                     r.majority, r.bow))
-- a regression task (STS-B's format, word overlap as the score): head=regression, correlations returned
local rows = {"index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"}
local words = {"the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"}
for i = 1, 40 do
  local a, b, k = {}, {}, i % 5
  for j = 1, 4 do a[j] = words[(i * j) % #words + 1] end
  for j = 1, 4 do b[j] = j <= k and a[j] or words[(i + 3 * j) % #words + 1] end
  rows[#rows + 1] = string.format("%d\tg\tf\t2012\t%d\tn\tn\t%s\t%s\t%.2f\n", i, i, table.concat(a, " "),
                                  table.concat(b, " "), 5 * math.min(k, 4) / 4)
end
local f = assert(io.open(dir .. "/stsb.tsv", "w")); f:write(table.concat(rows)); f:close()
local rr = zoo.finetune("bert-mini", "glue", {dir = dir, recipe = changed, steps = 5, batch = 8, lr = 1e-3, scratch = true,
                                               task = {name = "stsb", train_path = dir .. "/stsb.tsv",
                                                       test_path = dir .. "/stsb.tsv", max_len = 32}})
tap.ok(rr.accuracy == nil and rr.pearson == rr.pearson and rr.mse >= 0 and rr.scratch == rr.scratch and rr.transfer.copied == 17
       and rr.model:info().config:find('"head": "regression"', 1, true) ~= nil,
       string.format("zoo.finetune on an STS-B file: head=regression, pearson %.3f (scratch %.3f), mse %.3f", rr.pearson,
                     rr.scratch, rr.mse))
os.execute("rm -rf '" .. dir .. "'")
tap.done()
