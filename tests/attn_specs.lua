-- attn_specs.lua — pare.attn_specs: its kinds are the engine's registry in the registry's order, every
-- default budget builds a model at several lengths, and a kind the engine registers without a default
-- here (simulated by extending pare.attention_kinds) or a kind it does not register is an error naming it.
local pare = require "pare"
local tap = pare.tap
local specs = require "pare.attn_specs"
pare.set_threads(2)

local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end

local reg, kinds = pare.attention_kinds(), specs.kinds()
local swept = {}
for _, k in ipairs(reg) do if not specs.not_swept[k] then swept[#swept + 1] = k end end
tap.is(table.concat(kinds, ","), table.concat(swept, ","),
       "specs.kinds() is the engine's registry, in its order, without the kinds sweeps leave out")
tap.ok(specs.not_swept.token_prune and #kinds == #reg - 1, "token_prune (a pruning technique, simulated) is the one left out")
kinds[1] = "changed"
tap.is(specs.kinds()[1], reg[1], "specs.kinds() returns a fresh table each call")

for _, T in ipairs{64, 256} do
  for _, k in ipairs(reg) do
    local att = specs.default(k, T)
    local ok, e = pcall(pare.model, {vocab = 16, max_T = T, classes = 2, d = 32, layers = 1, seed = 1, attention = att})
    tap.ok(ok and att.kind == k, string.format("T = %d: the default %s builds a model%s", T, specs.string(att),
                                               ok and "" or ": " .. tostring(e)))
  end
end
tap.is(specs.default("longformer", 512, {window = 64}).window, 64, "a key passed in overrides the default")

tap.like(err(function() specs.default("nope", 64) end),
         "no attention kind 'nope' (registered: " .. table.concat(reg, ", ") .. ")",
         "an unknown kind is an error listing the registered ones", true)

-- a new variant in the registry without a default budget here
local real = pare.attention_kinds
pare.attention_kinds = function()
  local t = real()
  t[#t + 1] = "newvariant"
  return t
end
local e_kinds = err(function() specs.kinds() end)
local e_default = err(function() specs.default("newvariant", 64) end)
pare.attention_kinds = real
local want = "attention kind 'newvariant' is registered in the engine but has no default budget"
tap.like(e_kinds, want, "specs.kinds(): a registered kind without a default is an error naming it", true)
tap.like(e_default, want, "specs.default(): the same error", true)
tap.ok(e_kinds:find("attn_specs.lua:%d+: pare.attn_specs") and not e_kinds:find("pare/attn_specs.lua:", 1, true),
       "the error points at the caller's line, not at the module's: " .. e_kinds)
tap.is(table.concat(specs.kinds(), ","), table.concat(swept, ","), "back to the real registry")

tap.done()
