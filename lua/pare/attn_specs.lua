-- pare.attn_specs — default budgets of every attention variant for a sequence length, so sweeps over
-- variants and lengths compare like with like.
--
--   local specs = require "pare.attn_specs"
--   local att = specs.default("bigbird", 512)      -- {kind = "bigbird", block = 32, window = 3, random = 2, global = 1}
--   specs.string(att)                              -- "bigbird:block=32,global=1,random=2,window=3"
--   specs.kinds()                                  -- every registered kind, in registry order
--                                                     (pare.attention_kinds(); each must have a default here)
--   specs.pad(T)                                   -- T rounded up to a multiple of 64 (every default divides it)
--
-- The budgets follow the papers' ratios scaled down: windows, blocks and strides about sqrt(T) or T/8,
-- Linformer's k = T/8 (at least 16), Performer 64 features, Reformer buckets of 32 (one hash round),
-- LongNet segments T/4, T/2, T with rates 1, 2, 4, BlockBERT n = 2. Override any key by passing
-- a table: specs.default("longformer", 512, {window = 64}).
--
-- Which kinds exist, and in what order, is the engine's registry (pare.attention_kinds()); this module
-- only holds a default budget per kind, by name. A kind registered in the engine without a default here
-- is an error naming it (specs.kinds(), specs.default()), so a new variant is not silently left out of
-- the sweeps that iterate over specs.kinds().
local pare = require "pare"

local specs = {}

local function pow2_at_most(x)
  local p = 1
  while p * 2 <= x do p = p * 2 end
  return p
end

-- The largest divisor of T that is at most x (>= 1).
local function divisor_at_most(T, x)
  for d = math.max(1, math.floor(x)), 1, -1 do
    if T % d == 0 then return d end
  end
  return 1
end

function specs.pad(T, multiple)
  multiple = multiple or 64
  return math.ceil(T / multiple) * multiple
end

-- The default budget of each kind at length T, by name (the order is the registry's, not this table's).
local builders = {
  full = function() return {} end,
  flash = function() return {} end,
  block = function() return {blocks = 2} end,
  fixed = function(T)
    local l = divisor_at_most(T, math.max(8, pow2_at_most(math.sqrt(T) * 2)))
    return {pattern = "fixed", stride = l, summary = math.max(1, l // 8)}
  end,
  longformer = function(T) return {window = math.min(T, math.max(8, T // 8)), global = 1} end,
  bigbird = function(T)
    local b = divisor_at_most(T, math.max(4, T // 16))
    local nb = T // b
    return {block = b, window = math.min(3, nb % 2 == 1 and nb or nb - 1), random = math.min(2, math.max(0, nb - 4)),
            global = 1}
  end,
  longnet = function(T)
    local s = {}
    local r = {}
    for i, div in ipairs{4, 2, 1} do
      if T % div == 0 and T // div >= 4 then
        s[#s + 1] = tostring(T // div)
        r[#r + 1] = tostring(1 << (i - 1))
      end
    end
    return {segments = table.concat(s, ","), rates = table.concat(r, ",")}
  end,
  linear = function() return {} end,
  linformer = function(T) return {k = math.min(T, math.max(16, T // 8))} end,
  performer = function() return {features = 64} end,
  reformer = function(T)
    local b = divisor_at_most(T, 32)
    if (T // b) % 2 == 1 and T // b > 1 then b = T end -- the bucket count must be 1 or even
    return {bucket = b, hashes = 1}
  end,
  axial = function() return {} end,
  lsra = function() return {} end,
  token_prune = function() return {keep = 0.5} end, -- simulated (a key mask; slower than full): issue 13
}

local function no_default(kind, level)
  error(string.format("pare.attn_specs: attention kind '%s' is registered in the engine but has no default budget: "
                      .. "add one to the builders of lua/pare/attn_specs.lua", kind), level + 1)
end

-- Kinds the attention sweeps leave out unless named: token_prune is a pruning technique (issue 13) whose
-- speed is simulated (it masks tokens; sequences do not get shorter), not an efficient-attention variant.
specs.not_swept = {token_prune = true}

-- Every registered kind that the attention sweeps cover, in the engine's registry order (a fresh table;
-- specs.not_swept are left out). Errors if one has no default.
function specs.kinds()
  local kinds = {}
  for _, k in ipairs(pare.attention_kinds()) do
    if not builders[k] then no_default(k, 2) end
    if not specs.not_swept[k] then kinds[#kinds + 1] = k end
  end
  return kinds
end

-- The default attention table of `kind` at length T, with `over` merged on top. Errors for a kind the
-- engine does not register (listing those it does) and for a registered kind without a default.
function specs.default(kind, T, over)
  local registered = false
  local kinds = pare.attention_kinds()
  for _, k in ipairs(kinds) do registered = registered or k == kind end
  if not registered then
    error(string.format("pare.attn_specs: no attention kind '%s' (registered: %s)", tostring(kind),
                        table.concat(kinds, ", ")), 2)
  end
  local b = builders[kind]
  if not b then no_default(kind, 2) end
  local t = b(T)
  t.kind = kind
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

-- "kind:key=value,..." with keys sorted (lists keep their commas, as the engine's spec parser expects).
function specs.string(t)
  local keys = {}
  for k in pairs(t) do if k ~= "kind" then keys[#keys + 1] = k end end
  table.sort(keys)
  if #keys == 0 then return t.kind end
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(t[k]) end
  return t.kind .. ":" .. table.concat(parts, ",")
end

return specs
