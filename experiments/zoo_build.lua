-- zoo_build.lua — `make zoo`: build the pretrained zoo models (pare.zoo) and report what they are worth.
-- bert-mini (4 × 256 BERT, masked LM) and gpt-mini (4 × 256 GPT, causal LM) are pretrained on the
-- English text of the installed Debian packages (docs/zoo.md) and cached in results/models/<name>/; a
-- second run loads them. Then the BERT is fine-tuned on the local text tasks (fortune_topic,
-- fortune_pair) from its checkpoint and from random weights, against the majority class and a
-- bag-of-words baseline. Rows go to results/zoo.h5: table "pretrain" (one row per model) and table
-- "finetune" (one row per task).
--
--   pare run experiments/zoo_build.lua [models=bert-mini,gpt-mini] [steps=N] [ft_steps=N] [finetune=1] [scratch=1]
--                                      [models_dir=results/models]
-- steps= overrides the pretraining steps of both recipes (a shorter build: the cache then holds that
-- recipe), ft_steps= the fine-tuning steps; finetune=0 skips fine-tuning.
local pare = require "pare"
local zoo = require "pare.zoo"
local a = pare.args
local exp = pare.experiment("zoo", {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local override = {}
if a.steps then override.train = {steps = tonumber(a.steps)} end
if a.ft_steps then override.finetune = {steps = tonumber(a.ft_steps)} end
local t0 = os.time()
exp:table("pretrain", {"model", types = {accuracy = "float", perplexity = "float", loss = "float", train_seconds = "float",
                                         steps_per_second = "float", build_seconds = "float"},
                       labels = {accuracy = "held-out accuracy (masked or next token)"}})
local names = {}
for n in (a.models or "bert-mini,gpt-mini"):gmatch("[^,]+") do names[#names + 1] = n end
for _, name in ipairs(names) do
  local _, _, info = zoo(name, {recipe = override, dir = a.models_dir})
  local r = info.report
  -- rows are keyed by the recipe's step count: a changed recipe rebuilds the model and records a new row
  if not exp:has("pretrain", {model = name, steps = math.tointeger(r.steps) or 0}) then
    exp:record("pretrain", {model = name, objective = r.objective, steps = math.tointeger(r.steps) or 0,
                            accuracy = r.accuracy, perplexity = r.perplexity, loss = r.loss,
                            train_seconds = r.train_seconds, steps_per_second = r.steps_per_second,
                            build_seconds = r.build_seconds, params = math.tointeger(r.params) or 0})
  end
end
local finetune = tostring(a.finetune or "1") ~= "0" and names[1] == "bert-mini"
if finetune then
  exp:table("finetune", {"task", types = {accuracy = "float", scratch = "float", majority = "float", bow = "float"},
                         labels = {accuracy = "fine-tuned from bert-mini", scratch = "same model from random weights"}})
  local bert_steps = math.tointeger(zoo.recipe_of("bert-mini", override).train.steps)
  pare.sweep(exp, "finetune", {task = {"fortune_topic", "fortune_pair"}, pretrain_steps = {bert_steps}}, function(p)
    local r = zoo.finetune("bert-mini", p.task, {recipe = override, dir = a.models_dir,
                                                 scratch = tostring(a.scratch or "1") ~= "0"})
    return {accuracy = r.accuracy, scratch = r.scratch or 0 / 0, majority = r.majority, bow = r.bow,
            n_train = r.task.n_train, n_test = r.task.n_test, copied = r.transfer.copied}
  end)
end
pare.print_table(exp, "pretrain", {columns = {"model", "steps", "accuracy", "perplexity", "train_seconds", "build_seconds"}})
if finetune then
  pare.print_table(exp, "finetune", {columns = {"task", "pretrain_steps", "accuracy", "scratch", "bow", "majority"}})
end
io.stderr:write(string.format("zoo: done in %dm%02ds\n", os.difftime(os.time(), t0) // 60, os.difftime(os.time(), t0) % 60))
exp:close()
