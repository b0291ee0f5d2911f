-- glue.lua — the text tasks from Lua (issue 12): a tiny encoder trains on fortune_topic for a few
-- steps and evaluates, deterministically by seed; fortune_pair builds; pare.baseline (majority class,
-- bag of words); pare.task("glue", ...) on a small SST-2 / RTE directory written here; and
-- pare.stats.metric against published values. No accuracy target: the pipeline and determinism are
-- what is checked (the corpus tasks are skipped when Debian's fortunes are not installed).
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

-- metrics (eval/metrics.h) from Lua
tap.is_close(pare.stats.metric("mcc", {1, 0, 1, 1}, {1, 1, 1, 0}), -1 / 3, 1e-12, 0, "metric mcc: sklearn's example -1/3")
tap.is_close(pare.stats.metric("spearman", {1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 0.8207826816681233, 1e-12, 0,
             "metric spearman: scipy's example with a tie")
tap.is(pare.stats.metric("accuracy", {0, 1, 1}, {0, 1, 0}), 2 / 3, "metric accuracy")
tap.is(pare.stats.metric("mcc", {1, 1, 1}, {0, 1, 0}), 0, "metric mcc: constant predictions give 0")
tap.raises(function() return pare.stats.metric("auc", {1}, {1}) end, "valid: accuracy|f1|macro_f1|mcc|pearson|spearman",
           "an unknown metric lists the valid ones")
tap.raises(function() return pare.stats.metric("f1", {0.5}, {1}) end, "pred[1] = 0.5 is not a class id",
           "a non-integer class id is named")

-- a GLUE directory written here: SST-2 (single sentences) and RTE (pairs, string labels)
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/SST-2' '" .. dir .. "/RTE'"))
local function write(path, text)
  local f = assert(io.open(dir .. "/" .. path, "wb"))
  f:write(text)
  f:close()
end
local sst = {"sentence\tlabel\n"}
local words = {good = 1, great = 1, fine = 1, bad = 0, awful = 0, dull = 0}
local i = 0
for w, y in pairs(words) do
  for k = 1, 5 do
    i = i + 1
    sst[#sst + 1] = string.format("a %s film , %d \"stars\" \t%d\n", w, k, y)
  end
end
table.sort(sst, function(a, b) return a == "sentence\tlabel\n" or (b ~= "sentence\tlabel\n" and a < b) end)
write("SST-2/train.tsv", table.concat(sst))
write("SST-2/dev.tsv", "sentence\tlabel\r\na good one \t1\r\nan awful one \t0\r\n")
write("RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA man sleeps.\tA man rests.\tentailment\n" ..
                       "1\tA man sleeps.\tA man runs.\tnot_entailment\n")
write("RTE/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA cat sleeps.\tA cat rests.\tentailment\n")

local g = pare.task("glue", {name = "sst2", dir = dir, min_count = 1})
tap.ok(g.n_train == 30 and g.n_test == 2 and g.classes == 2 and g.kind == "classify",
       string.format("glue sst2 from a directory: %d train, %d dev, T %d, vocab %d", g.n_train, g.n_test, g.T, g.vocab))
tap.is(pare.baseline(g, "bow"), 1.0, "bag-of-words baseline solves the written SST-2 (one word decides)")
local r = pare.task("glue", {name = "rte", dir = dir, max_len = 16})
tap.ok(r.n_train == 2 and r.T <= 16, "glue rte: pairs, truncated to max_len")
tap.raises(function() return pare.task("glue", {name = "sst2"}) end, "option dir", "glue without dir names the option")
tap.raises(function() return pare.task("glue", {name = "sst2", dir = dir, test_split = "test"}) end, "SST-2/test.tsv",
           "glue on a missing test file names it")
tap.raises(function() return pare.task("glue", {name = "squad", dir = dir}) end, "cola|sst2|mrpc",
           "glue name lists the nine tasks")
tap.raises(function() return pare.baseline(g, "svm") end, "valid: majority|bow", "an unknown baseline lists the valid ones")
os.execute("rm -rf '" .. dir .. "'")

local fh = io.open("/usr/share/games/fortunes/computers", "rb")
if not fh then
  tap.skip("fortune tasks: fortunes not installed (apt-get install fortunes)", 9)
  tap.done()
  return
end
fh:close()

local topic = pare.task("fortune_topic", {max_len = 48})
tap.ok(topic.classes == 5 and topic.T <= 48 and topic.n_test > 0,
       string.format("fortune_topic: %d classes, %d train, %d test, T %d, vocab %d", topic.classes, topic.n_train,
                     topic.n_test, topic.T, topic.vocab))
local maj, bow = pare.baseline(topic, "majority"), pare.baseline(topic, "bow")
tap.is_close(maj, 0.2, 1e-12, 0, "majority baseline on balanced 5 classes: 0.2")
tap.ok(bow > maj + 0.1, string.format("bag-of-words baseline %.3f beats the majority class %.3f", bow, maj))

local function run()
  local m = pare.model{vocab = topic.vocab, max_T = topic.T, classes = topic.classes, d = 32, heads = 2, layers = 1, seed = 3}
  local tr = m:train(topic, {steps = 40, batch = 32, lr = 3e-3, warmup = 5, seed = 5})
  return tr, m:evaluate(topic)
end
local tr1, ev1 = run()
tap.ok(ev1.n == topic.n_test and ev1.accuracy >= 0 and ev1.accuracy <= 1 and tr1.loss == tr1.loss,
       string.format("a tiny encoder trains on fortune_topic (40 steps: loss %.3f, test accuracy %.3f; bow %.3f)",
                     tr1.loss, ev1.accuracy, bow))
local tr2, ev2 = run()
tap.is(ev2.accuracy, ev1.accuracy, "same seeds: identical test accuracy")
tap.is(tr2.loss, tr1.loss, "same seeds: identical training loss")

local pair = pare.task("fortune_pair", {n_train = 400, n_test = 200})
tap.ok(pair.classes == 2 and pair.n_train == 400 and pair.n_test == 200,
       string.format("fortune_pair: T %d, vocab %d", pair.T, pair.vocab))
tap.is(pare.baseline(pair, "majority"), 0.5, "fortune_pair is exactly balanced: majority 0.5")
tap.raises(function() return pare.task("fortune_pair", {n_pairs = 3}) end, "n_train", "an unknown option lists the keys")

-- a trained WordPiece tokenizer instead of the fallback word encoder (tokenizer = ... is not an option)
local tok = pare.train_tokenizer{kind = "wordpiece", files = {"/usr/share/games/fortunes/computers",
                                                             "/usr/share/games/fortunes/science"}, vocab_size = 1500}
local tt = pare.task("fortune_topic", {max_len = 48, tokenizer = tok})
tap.ok(tt.vocab == tok.vocab_size and tt.n_train == topic.n_train and tt.T <= 48,
       string.format("fortune_topic through a WordPiece tokenizer: vocab %d, T %d", tt.vocab, tt.T))
local pt = pare.task("fortune_pair", {n_train = 200, n_test = 100, tokenizer = tok})
tap.ok(pt.vocab == tok.vocab_size and pt.classes == 2, "fortune_pair through it (pairs with token types)")
local mt = pare.model{vocab = tt.vocab, max_T = tt.T, classes = tt.classes, d = 32, heads = 2, layers = 1, seed = 3}
mt:train(tt, {steps = 20, batch = 32, lr = 3e-3, warmup = 5})
local et = mt:evaluate(tt)
tap.ok(et.accuracy >= 0 and et.accuracy <= 1, string.format("and a model trains on it (accuracy %.3f)", et.accuracy))
-- a BERT-style model (token types, post-LayerNorm) trains on the pairs: the loops bind the types
local bm = pare.model{vocab = pt.vocab, max_T = pt.T, classes = 2, d = 32, heads = 2, layers = 1, seed = 3,
                      type_vocab = 2, norm = "post", act = "gelu_erf", emb_norm = true, pooler = "tanh", ln_eps = 1e-12}
local btr = bm:train(pt, {steps = 20, batch = 16, lr = 3e-3, warmup = 5})
local bev = bm:evaluate(pt)
tap.ok(btr.loss == btr.loss and bev.accuracy >= 0, string.format("a BERT-style model trains on fortune_pair with token "
                                                                 .. "types (loss %.3f)", btr.loss))
-- distillation from the BERT-style teacher to a student without token types: the teacher gets the types
local student = pare.model{vocab = pt.vocab, max_T = pt.T, classes = 2, d = 16, heads = 2, layers = 1, seed = 4}
local dtr = student:train(pt, {steps = 5, batch = 16, lr = 3e-3, warmup = 1},
                          {teacher = bm, hard_weight = 0, losses = {{loss = "kl_div", student = "head", temperature = 2}}})
tap.ok(dtr.loss == dtr.loss, string.format("a student distils from a teacher with token types (loss %.4f)", dtr.loss))
local bpe = pare.train_tokenizer{kind = "bpe", files = {"/usr/share/games/fortunes/computers"}, vocab_size = 400,
                                 style = "roberta"}
tap.raises(function() return pare.task("fortune_topic", {tokenizer = bpe}) end, "pad id",
           "a tokenizer whose pad id is not 0 (RoBERTa's <pad> is 1) is refused, naming it")
-- GPT-2's vocabulary has no pad and <|endoftext|> at 0, which ordinary text never encodes to: accepted
local gpt = pare.train_tokenizer{kind = "bpe", files = {"/usr/share/games/fortunes/computers"}, vocab_size = 400}
local gt = pare.task("fortune_topic", {n_train = 50, n_test = 20, tokenizer = gpt})
tap.ok(gt.vocab == gpt.vocab_size, "a GPT-2-style BPE (no pad token, <|endoftext|> at 0) tokenizes a text task")
tap.raises(function() return pare.task("fortune_topic", {tokenizer = 3}) end, "must be a pare.tokenizer",
           "a tokenizer that is not one")
tap.done()
