-- paper_pruning_tables.lua — seed 004's pruning tables at small scale, with the paper's numbers beside
-- ours: Table 1 (accuracy at 0%, 14% and 30% pruning), Table 3 (14% pruning + 16-bit quantization, and
-- + 8-bit), and the pruning rows of Tables 4 and 5 (inference time and model size at 22% pruning, alone
-- and with quantization).
--
-- Pruning is the paper's post-training pruning by SVD significance (the svd_prune pass, docs/pruning-svd.md):
-- in every layer, the given share of FFN neurons and of attention heads with the lowest reconstruction
-- error ||A_i − A_k,i|| is removed physically, then the model is fine-tuned briefly (finetune= steps, the
-- paper's "fine-tuning and adjustment post-pruning"; 0 turns it off). 8-bit is dynamic INT8 on the int8
-- kernel; 16-bit is 16-bit float weights and activations on the real kernel of the bf16 pass: bf16 by default
-- (Intel Neural Compressor's mixed precision on a CPU), or half=f16 (f16 storage, f32 arithmetic on CPUs
-- without f16 arithmetic). No row is simulated any more.
--
-- The paper's model is BERT-large fine-tuned on MRPC (their accuracy 89.25%); ours is the ListOps encoder by
-- default, or model= a zoo model or a Hugging Face directory (docs/zoo.md). Compare directions, not levels.
--
--   pare run experiments/paper_pruning_tables.lua [model=...] [finetune=200] [rank_ratio=0.25] [half=bf16|f16]
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp, base, task = zoo.experiment("paper_pruning_tables", a, function() return zoo.listops{d = 128} end)
local ft = tonumber(a.finetune) or 200
local rank_ratio = tonumber(a.rank_ratio) or 0.25

-- The paper's numbers (Intel Neural Compressor = B, the paper's method = O); NaN where the paper gives none.
local nan = 0 / 0
local paper = {
  ["1:0:none"] = {acc_b = 89.25, acc_o = 89.25},
  ["1:14:none"] = {acc_b = 88.5, acc_o = 87.7},
  ["1:30:none"] = {acc_b = 82.1, acc_o = 79.8},
  ["3:14:16-bit"] = {acc_b = 86.8, acc_o = 84.6},
  ["3:14:8-bit"] = {},
  ["4-5:22:none"] = {time_b = 93, time_o = 80, size_b = 290, size_o = 278},
  ["4-5:22:16-bit"] = {time_b = 105, time_o = 98, size_b = 155, size_o = 171},
  ["4-5:22:8-bit"] = {},
}
local points = {
  {"1", 0, "none"}, {"1", 14, "none"}, {"1", 30, "none"}, {"3", 14, "16-bit"}, {"3", 14, "8-bit"},
  {"4-5", 22, "none"}, {"4-5", 22, "16-bit"}, {"4-5", 22, "8-bit"},
}
local quantize = {
  none = function(m) return m end,
  ["8-bit"] = function(m) return m:apply("dynamic_int8", {}) end,
  ["16-bit"] = function(m) return m:apply("bf16", {dtype = a.half or "bf16"}) end,
}

local pruned = {} -- one pruned, fine-tuned model per level, shared by the tables
local function pruned_at(level)
  if level == 0 then return base end
  if not pruned[level] then
    local m = base:apply("svd_prune", {component = "neurons", level = level / 100, rank_ratio = rank_ratio})
    m = m:apply("svd_prune", {component = "heads", level = level / 100, rank_ratio = rank_ratio})
    if ft > 0 then m:train(task, {steps = ft, batch = 16, lr = 5e-4, warmup = 20, seed = 1}) end
    pruned[level] = m
  end
  return pruned[level]
end

exp:table("tables", measure.decl({"paper_table", "pruning_pct", "quantization", "params", "paper_acc_inc",
                                  "paper_acc_ours", "paper_time_inc_s", "paper_time_ours_s", "paper_size_inc_mb",
                                  "paper_size_ours_mb"}, nil,
                                 {pruning_pct = "share of neurons and heads removed per layer (%)",
                                  paper_acc_inc = "seed 004: Intel Neural Compressor accuracy (%)",
                                  paper_acc_ours = "seed 004: the paper's accuracy (%)"}))
for _, pt in ipairs(points) do
  local t, level, qz = pt[1], pt[2], pt[3]
  local key = {paper_table = t, pruning_pct = level, quantization = qz}
  if not exp:has("tables", key) then
    io.stderr:write(string.format("paper_pruning_tables: Table %s, %d%% pruning, quantization %s\n", t, level, qz))
    local m = quantize[qz](pruned_at(level))
    local p = paper[t .. ":" .. level .. ":" .. qz]
    local row = measure.row(m, base, task, {bench = {batch = 8, repeats = 20}})
    for k, v in pairs(key) do row[k] = v end
    row.params = m:info().params
    row.paper_acc_inc, row.paper_acc_ours = p.acc_b or nan, p.acc_o or nan
    row.paper_time_inc_s, row.paper_time_ours_s = p.time_b or nan, p.time_o or nan
    row.paper_size_inc_mb, row.paper_size_ours_mb = p.size_b or nan, p.size_o or nan
    exp:record("tables", row)
  end
end
print("Seed 004 Tables 1, 3 and the pruning rows of 4-5 (paper: BERT-large/MRPC; ours: " .. (a.model or "ListOps encoder") .. "):")
pare.print_table(exp, "tables", {columns = {"paper_table", "pruning_pct", "quantization", "accuracy", "paper_acc_inc",
                                            "paper_acc_ours", "latency_ms", "paper_time_ours_s", "size_mb",
                                            "paper_size_ours_mb", "params", "simulated"}})
exp:plot{table = "tables", name = "accuracy", x = "pruning_pct", y = "accuracy", by = "quantization",
         title = "Seed 004 Tables 1 and 3: accuracy against pruning (SVD significance)", xlabel = "pruning (%)"}
exp:plot{table = "tables", name = "latency", x = "pruning_pct", y = "latency_ms", by = "quantization",
         title = "Seed 004 Table 4: inference time (16-bit = " .. (a.half or "bf16") .. ")", xlabel = "pruning (%)"}
exp:plot{table = "tables", name = "size", x = "pruning_pct", y = "size_mb", by = "quantization",
         title = "Seed 004 Table 5: model size", xlabel = "pruning (%)"}
exp:close()
