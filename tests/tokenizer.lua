-- tokenizer.lua — pare.tokenizer and pare.train_tokenizer: WordPiece and byte-level BPE from Lua.
local tap = require("pare.tap")

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return dir .. "/" .. name
end
local function tokens(tok, ids)
  local t = {}
  for i, id in ipairs(ids) do t[i] = tok:token(id) end
  return table.concat(t, " ")
end

-- WordPiece
local vocab = write("vocab.txt", table.concat({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able",
                                               "hello", ",", "world", "!", "the", "cat", "sat", "."}, "\n") .. "\n")
local wp = pare.tokenizer{vocab = vocab}
tap.is(wp.kind, "wordpiece", "kind")
tap.is(wp.style, "bert", "style")
tap.is(wp.vocab_size, 16, "vocab_size")
tap.ok(wp.cls == 2 and wp.sep == 3 and wp.pad == 0 and wp.unk == 1 and wp.mask == 4, "special ids")
tap.is(wp.bos, nil, "no bos in BERT")
tap.is(tokens(wp, wp:tokenize("unaffable")), "un ##aff ##able", "unaffable")
tap.is(tokens(wp, wp:tokenize("H\u{e9}llo, WORLD!")), "hello , world !", "lower case and accents")
local e = wp:encode("the cat", "sat.", {max_length = 10, padding = true, truncation = true})
tap.is(tokens(wp, e.ids), "[CLS] the cat [SEP] sat . [SEP] [PAD] [PAD] [PAD]", "pair, padded")
tap.is(table.concat(e.types, ","), "0,0,0,0,1,1,1,0,0,0", "token types")
tap.is(table.concat(e.mask, ","), "1,1,1,1,1,1,1,0,0,0", "attention mask")
tap.is(e.length, 7, "length before padding")
e = wp:encode("the cat sat the cat", nil, {max_length = 4, truncation = true})
tap.is(tokens(wp, e.ids), "[CLS] the cat [SEP]", "truncation of a single text")
tap.is(wp:decode(e.ids, {skip_special = true}), "the cat", "decode skipping specials")
tap.is(wp:decode(wp:tokenize("unaffable hello, world!")), "unaffable hello, world!", "decode")
tap.is(wp:id("##aff"), 6, "id")
tap.is(wp:token(6), "##aff", "token")
tap.is(wp:id("nope"), nil, "unknown token: nil")
tap.is(wp:token(999), nil, "unknown id: nil")
tap.raises(function() wp:encode("a", {max_len = 3}) end, "unknown option 'max_len'", "encode names a misspelt option")
tap.raises(function() wp:decode({1, 999}) end, "id 999", "decode names the unknown id")
tap.raises(function() wp:encode("a", "b", {max_length = 2, truncation = true}) end, "max_length=2", "max_length too small")
wp:save(dir .. "/bert")
local wp2 = pare.tokenizer(dir .. "/bert")
tap.is(tokens(wp2, wp2:tokenize("unaffable")), "un ##aff ##able", "saved directory loads back")
local cased = pare.tokenizer{vocab = vocab, lower_case = false}
tap.is(tokens(cased, cased:tokenize("Hello hello")), "[UNK] hello", "lower_case = false")

-- errors
tap.raises(function() pare.tokenizer(dir .. "/none") end, "no tokenizer files", "a directory without files")
tap.raises(function() pare.tokenizer{vocab = dir .. "/missing.txt"} end, "missing.txt", "a missing vocab names the file")
tap.raises(function() pare.tokenizer{vocab = write("dup.txt", "a\nb\na\n")} end, "dup.txt:3: duplicate token 'a'",
           "duplicates name file and line")
tap.raises(function() pare.tokenizer{vocab = vocab, casing = true} end, "unknown option 'casing'", "unknown option")
local ok, err = pcall(function() return pare.tokenizer{vocab = dir .. "/missing.txt"} end)
tap.like(err, "tokenizer.lua:%d+:", "errors name the script line")

-- training: BPE and WordPiece
local lines = {}
local words = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "caf\u{e9}", "r\u{e9}sum\u{e9}", "don't", "42",
               "\u{4e2d}\u{6587}", "\u{3b1}\u{3b2}\u{3b3}"}
local seed = 1
for l = 1, 2000 do
  local w = {}
  for i = 1, 3 + l % 8 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    w[i] = words[seed % #words + 1]
  end
  lines[l] = table.concat(w, l % 3 == 0 and "  " or " ") .. (l % 5 == 0 and "!" or ".")
end
local text = table.concat(lines, "\n") .. "\n"
local corpus = write("corpus.txt", text)
local bpe = pare.train_tokenizer{kind = "bpe", files = {corpus}, vocab_size = 300, out = dir .. "/bpe"}
tap.is(bpe.vocab_size, 300, "trained BPE has the requested size")
tap.is(bpe.style, "gpt2", "GPT-2 style")
tap.is(bpe:decode(bpe:tokenize(text)), text, "trained BPE re-encodes its corpus losslessly")
local bpe2 = pare.tokenizer(dir .. "/bpe")
tap.is(table.concat(bpe2:tokenize(text), ","), table.concat(bpe:tokenize(text), ","), "the saved files give the same ids")
local bin = "\0\1\255\254 caf\u{e9}\r\n\t<|endoftext|>x"
tap.is(bpe:decode(bpe:tokenize(bin)), bin, "bytes round trip exactly")
local again = pare.train_tokenizer{kind = "bpe", text = text, vocab_size = 300}
tap.is(table.concat(again:tokenize(text), ","), table.concat(bpe:tokenize(text), ","), "deterministic")
local rob = pare.train_tokenizer{kind = "bpe", text = text, vocab_size = 300, style = "roberta"}
e = rob:encode("the fox", "the dog")
tap.is(rob:token(e.ids[1]) .. rob:token(e.ids[#e.ids]), "<s></s>", "RoBERTa pair starts with <s>, ends with </s>")
local seps = 0
for _, id in ipairs(e.ids) do seps = seps + (id == rob.sep and 1 or 0) end
tap.is(seps, 3, "RoBERTa pair: <s> a </s></s> b </s>")
local w = pare.train_tokenizer{kind = "wordpiece", files = corpus, vocab_size = 80, out = dir .. "/wp"}
tap.is(w.vocab_size, 80, "trained WordPiece has the requested size")
tap.is(w:token(0) .. w:token(1) .. w:token(2) .. w:token(3) .. w:token(4), "[PAD][UNK][CLS][SEP][MASK]", "BERT specials first")
tap.is(w:decode(w:tokenize("The quick FOX. r\u{e9}sum\u{e9}!")), "the quick fox. resume!", "WordPiece round trip (normalised)")
tap.raises(function() pare.train_tokenizer{kind = "unigram", text = text} end, "valid: wordpiece, bpe", "unknown kind")
tap.raises(function() pare.train_tokenizer{kind = "bpe", text = text, vocab_size = 10} end, "256", "BPE size below the bytes")
tap.raises(function() pare.train_tokenizer{kind = "bpe"} end, "files", "no corpus")

os.execute("rm -rf '" .. dir .. "'")
tap.done()
