-- pare.json — decode one JSON text (RFC 8259) into Lua values: what a script needs to read the JSON lines another
-- program prints (bench/torch_ref.py's timings, experiments/bench.lua's PyTorch section).
--
--   local json = require "pare.json"          -- or pare.json
--   local v, err = json.decode('{"format": "bf16", "median_ms": 12.5, "ok": true, "samples_ms": [1, 2]}')
--   -- v.format == "bf16", v.median_ms == 12.5, v.samples_ms[2] == 2; on bad input v == nil and err says where
--   json.null                                 -- what JSON null decodes to (a unique sentinel, not nil)
--
-- Objects become tables with string keys, arrays sequences (1-based), numbers Lua numbers (integers when the text
-- has no fraction or exponent and fits), strings with their escapes resolved (\uXXXX, with surrogate pairs, as
-- UTF-8). NaN, Infinity and -Infinity are read too (not JSON, but Python's json.dumps writes them by default).
-- Deliberately not here: encoding, comments, trailing commas, depth beyond 200.
local json = {null = setmetatable({}, {__tostring = function() return "json.null" end})}

local escapes = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}

local function fail(s, i, what)
  error({json_error = string.format("json: %s at character %d (%q)", what, i, s:sub(i, i + 15))}, 0)
end

local function skip(s, i) return s:find("[^ \t\r\n]", i) or #s + 1 end

local value
-- NaN and Infinity are not JSON, but Python's json.dumps writes them (allow_nan=True, its default): read them
local words = {["true"] = true, ["false"] = false, null = json.null, NaN = 0 / 0, Infinity = math.huge,
               ["-Infinity"] = -math.huge}

local function str(s, i) -- s:sub(i, i) == '"'
  local out, j = {}, i + 1
  while true do
    local k = s:find('["\\%c]', j)
    if not k then fail(s, i, "unterminated string") end
    out[#out + 1] = s:sub(j, k - 1)
    local c = s:sub(k, k)
    if c == '"' then return table.concat(out), k + 1 end
    if c ~= "\\" then fail(s, k, "control character in a string") end
    local e = s:sub(k + 1, k + 1)
    if escapes[e] then
      out[#out + 1], j = escapes[e], k + 2
    elseif e == "u" then
      local hex = s:match("^%x%x%x%x", k + 2)
      if not hex then fail(s, k, "bad \\u escape") end
      local cp, nj = tonumber(hex, 16), k + 6
      if cp >= 0xD800 and cp <= 0xDBFF then -- a high surrogate: its low half follows
        local lo = s:match("^\\u(%x%x%x%x)", nj)
        lo = lo and tonumber(lo, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then fail(s, k, "unpaired surrogate") end
        cp, nj = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00), nj + 6
      end
      out[#out + 1], j = utf8.char(cp), nj
    else
      fail(s, k, "bad escape")
    end
  end
end

local function num(s, i)
  local int = s:match("^-?%d+", i)
  if not int or int:match("^-?0%d") then fail(s, i, "bad number") end
  local j = i + #int
  local frac = s:match("^%.%d+", j) or ""
  if frac == "" and s:sub(j, j) == "." then fail(s, j, "bad number") end
  j = j + #frac
  local exp = s:match("^[eE][-+]?%d+", j) or ""
  if exp == "" and s:sub(j, j):match("[eE]") then fail(s, j, "bad number") end
  local t = int .. frac .. exp
  local v = (frac == "" and exp == "") and math.tointeger(tonumber(t)) or tonumber(t)
  return v, j + #exp
end

local function seq(s, i, close, depth, item)
  i = skip(s, i + 1)
  if s:sub(i, i) == close then return i + 1 end
  while true do
    i = skip(s, item(i))
    local c = s:sub(i, i)
    if c == close then return i + 1 end
    if c ~= "," then fail(s, i, "expected ',' or '" .. close .. "'") end
    i = skip(s, i + 1)
  end
end

value = function(s, i, depth)
  if depth > 200 then fail(s, i, "nested too deeply") end
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local t = {}
    local j = seq(s, i, "}", depth, function(k)
      if s:sub(k, k) ~= '"' then fail(s, k, "expected a string key") end
      local key, n = str(s, k)
      n = skip(s, n)
      if s:sub(n, n) ~= ":" then fail(s, n, "expected ':'") end
      local v
      v, n = value(s, n + 1, depth + 1)
      t[key] = v
      return n
    end)
    return t, j
  elseif c == "[" then
    local t = {}
    local j = seq(s, i, "]", depth, function(k)
      local v, n = value(s, k, depth + 1)
      t[#t + 1] = v
      return n
    end)
    return t, j
  elseif c == '"' then
    return str(s, i)
  elseif (c == "-" and s:sub(i + 1, i + 1):match("%d")) or c:match("%d") then
    return num(s, i)
  end
  for word, v in pairs(words) do
    if s:sub(i, i + #word - 1) == word then return v, i + #word end
  end
  fail(s, i, c == "" and "unexpected end" or "unexpected character")
end

-- decode(text) -> value | nil, message
function json.decode(text)
  if type(text) ~= "string" then return nil, "json: decode takes a string, got a " .. type(text) end
  local ok, v, i = pcall(value, text, 1, 0)
  if not ok then
    if type(v) == "table" and v.json_error then return nil, v.json_error end
    error(v, 0)
  end
  i = skip(text, i)
  if i <= #text then return nil, string.format("json: trailing text at character %d (%q)", i, text:sub(i, i + 15)) end
  return v
end

return json
