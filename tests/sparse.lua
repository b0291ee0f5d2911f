-- sparse.lua — the sparsify pass through Lua's generic m:apply path (issue 13): its schema in pare.schema_help,
-- option errors from the shared validator, the refusal of a model with nothing pruned, and m:info() of a
-- model left f32. The layouts, kernels, checkpoints and int8 equality are tested in C (test_sparse.c,
-- test_sparsify.c: masks are a C API today).
local pare = require "pare"
local tap = pare.tap

local help = pare.schema_help("sparsify")
tap.like(help, "format%s+enum%s+auto%s+auto|csr|nm|block", "schema_help lists format=auto|csr|nm|block")
tap.like(help, "min_sparsity", "schema_help lists min_sparsity")
tap.like(help, "int8%s+bool", "schema_help lists int8")

local task = pare.task("recall", {seed = 3, n_train = 64, n_test = 64})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 16, heads = 2, layers = 1, ffn = 32,
                     seed = 1}
local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end
tap.like(err(function() return m:apply("sparsify") end), "no selected layer has min_sparsity=0%.5 zeros.*prune first",
         "an unpruned model is refused with the reason")
tap.like(err(function() return m:apply("sparsify", {format = "coo"}) end), "auto|csr|nm|block",
         "a bad format lists the valid ones")
tap.like(err(function() return m:apply("sparsify", {block = "8x8"}) end), "4x1|16x16", "a bad block lists the valid ones")
tap.like(err(function() return m:apply("sparsify", {min_sparsity = 1.5}) end), "min_sparsity",
         "min_sparsity out of range is named")
tap.like(err(function() return m:apply("sparsify", {format = "block", int8 = true}) end), "int8=true needs format=csr",
         "int8 with blocks is refused")
-- min_sparsity = 0 takes every layer: dense weights stored as CSR (all their values), and the model computes
-- the same function through the sparse kernels
local s = m:apply("sparsify", {format = "csr", min_sparsity = 0})
local rep = s:quant_report()
local all = #rep > 0
for _, r in ipairs(rep) do all = all and r.format == "csr" and r.method == "sparsify format=csr" and not r.simulated end
tap.ok(all, string.format("quant_report: %d layers stored csr by sparsify, not simulated", #rep))
tap.like(s:info().kernel, "sparse csr", "info().kernel names the sparse kernel")
tap.ok(s:info().size_bytes > m:info().size_bytes, string.format("dense weights in CSR are larger (%d > %d bytes): sizes are honest",
       s:info().size_bytes, m:info().size_bytes))
local f = s:fidelity(m, task)
tap.ok(f.agreement == 1 and f.cosine > 0.99999, string.format("CSR of the dense weights: the same function (cosine %.7f)", f.cosine))
tap.done()
