-- pare.zoo — the embedded default models, trained once and cached as checkpoints.
--
--   local zoo = require "pare.zoo"
--   local model, task = zoo.listops{steps = 3000}          -- trains, or loads results/models/<key>.safetensors
--
-- The default is the demo's: a 2-layer, d=64 pre-LN encoder trained on generated ListOps (20 000
-- examples, T = 64) for 3000 steps. A checkpoint is keyed by every option, so changing one trains
-- again; delete results/models/ to retrain everything. Nothing is downloaded.
local pare = require "pare"
local zoo = {}

local function key_of(name, o)
  local ks = {}
  for k in pairs(o) do ks[#ks + 1] = k end
  table.sort(ks)
  local parts = {name}
  for _, k in ipairs(ks) do parts[#parts + 1] = k .. "=" .. tostring(o[k]) end
  return (table.concat(parts, "-"):gsub("[^%w%.=_-]", "_"))
end

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Train (or load) an encoder on a task. o: task options in o.task, model options d, layers, heads,
-- steps, lr, batch, seed; o.dir (default "results/models").
function zoo.encoder(task_name, o)
  o = o or {}
  local topts = o.task or {}
  local task = pare.task(task_name, topts)
  local spec = {d = o.d or 64, layers = o.layers or 2, heads = o.heads or 4, steps = o.steps or 3000,
                lr = o.lr or 2e-3, batch = o.batch or 32, seed = o.seed or 1}
  local kt = {}
  for k, v in pairs(spec) do kt[k] = v end
  for k, v in pairs(topts) do kt["task_" .. k] = v end
  local dir = o.dir or "results/models"
  local path = string.format("%s/%s.safetensors", dir, key_of(task_name, kt))
  if file_exists(path) then
    local m = pare.load(path)
    io.stderr:write(string.format("zoo: loaded %s\n", path))
    return m, task, path
  end
  local m = pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = spec.d,
                       heads = spec.heads, layers = spec.layers, seed = spec.seed}
  io.stderr:write(string.format("zoo: training %s on %s for %d steps (cached afterwards in %s)\n", tostring(m), task_name,
                                spec.steps, path))
  m:train(task, {steps = spec.steps, batch = spec.batch, lr = spec.lr, warmup = 100, seed = spec.seed})
  os.execute(string.format("mkdir -p '%s'", dir))
  m:save(path)
  return m, task, path
end

-- The embedded default: the demo's ListOps encoder.
function zoo.listops(o)
  o = o or {}
  o.task = o.task or {seed = 1, n_train = 20000, n_test = 1000, max_depth = 3, max_args = 4, max_length = 64}
  return zoo.encoder("listops", o)
end

return zoo
