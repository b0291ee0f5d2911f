-- pare.sweep — run a function over the cartesian product of parameter values, one table row per
-- point, resuming where a previous run stopped.
--
--   pare.sweep(exp, "table", {alpha = {0, 0.5, 1}, bits = {4, 8}}, function(p)
--       return {acc = evaluate(p.alpha, p.bits)}        -- recorded merged with p
--   end [, {quiet = false}])
--
-- Order: parameters sorted by name, the last one varying fastest (alpha=0 bits=4, alpha=0 bits=8,
-- alpha=0.5 bits=4, ...). For another order give a list of pairs: {{"bits", {4, 8}}, {"alpha", {...}}}.
-- A point is skipped when the table already has a row with the same parameter values, so rerunning
-- an interrupted script only runs what is missing. Progress goes to stderr:
--   [3/6] alpha=0.5 bits=4  ETA 12s
-- A parameter whose values mix integers and floats (0, 0.5, 1) is recorded as float throughout.
-- Returning nil (or false) from the function records nothing for that point (it runs again next
-- time). Errors in the function propagate (after the progress line that names the point).
-- Returns the number of points run and skipped.

local pare = require("pare")

local function fmt_value(v)
  if math.type(v) == "float" then return string.format("%g", v) end
  return tostring(v)
end

-- A key identifying a point's values: numbers compared by value (4 == 4.0).
local function point_key(names, p)
  local parts = {}
  for i, n in ipairs(names) do
    local v = p[n]
    if type(v) == "number" then parts[i] = string.format("n%.17g", v)
    else parts[i] = type(v):sub(1, 1) .. tostring(v) end
  end
  return table.concat(parts, "\0")
end

local function fmt_eta(s)
  if s ~= s or s == math.huge then return "?" end
  if s < 90 then return string.format("%ds", math.floor(s + 0.5)) end
  if s < 5400 then return string.format("%dm%02ds", math.floor(s / 60), math.floor(s % 60)) end
  return string.format("%dh%02dm", math.floor(s / 3600), math.floor(s % 3600 / 60))
end

-- Normalise params into ordered {name, values} pairs, validating them.
local function param_list(params)
  if type(params) ~= "table" then error("pare.sweep: params must be a table {name = {values...}}", 3) end
  local list = {}
  if #params > 0 then
    for i, pair in ipairs(params) do
      if type(pair) ~= "table" or type(pair[1]) ~= "string" or type(pair[2]) ~= "table" then
        error(string.format("pare.sweep: params[%d] must be {\"name\", {values...}}", i), 3)
      end
      list[#list + 1] = {pair[1], pair[2]}
    end
  else
    local names = {}
    for k in pairs(params) do
      if type(k) ~= "string" then error("pare.sweep: parameter names must be strings", 3) end
      names[#names + 1] = k
    end
    table.sort(names)
    for _, n in ipairs(names) do list[#list + 1] = {n, params[n]} end
  end
  for _, pair in ipairs(list) do
    local name, values = pair[1], pair[2]
    if type(values) ~= "table" or #values == 0 then
      error(string.format("pare.sweep: parameter '%s' needs a non-empty list of values", name), 3)
    end
    local has_float = false
    for _, v in ipairs(values) do
      local t = type(v)
      if t ~= "number" and t ~= "string" and t ~= "boolean" then
        error(string.format("pare.sweep: parameter '%s' has a %s value; use numbers, strings or booleans", name, t), 3)
      end
      if math.type(v) == "float" then has_float = true end
    end
    if has_float then -- one column type for all points
      local fv = {}
      for i, v in ipairs(values) do fv[i] = math.type(v) == "integer" and v + 0.0 or v end
      pair[2] = fv
    end
  end
  return list
end

local function sweep(exp, tname, params, fn, opts)
  if type(fn) ~= "function" then error("pare.sweep: the 4th argument must be a function(point) returning a row", 2) end
  opts = opts or {}
  local list = param_list(params)
  local names, total = {}, 1
  for i, pair in ipairs(list) do names[i] = pair[1]; total = total * #pair[2] end

  -- Parameter columns first when this sweep creates the table.
  if not exp:columns(tname) then exp:table(tname, names) end

  local done = {}
  local have = exp:rows(tname)
  for _, row in ipairs(have) do
    local complete = true
    for _, n in ipairs(names) do if row[n] == nil then complete = false end end
    if complete then done[point_key(names, row)] = true end
  end

  local idx, ran, skipped, spent = {}, 0, 0, 0
  for i = 1, #list do idx[i] = 1 end
  local remaining = 0
  -- count points still to run, for the ETA
  do
    local j = {}
    for i = 1, #list do j[i] = 1 end
    for _ = 1, total do
      local p = {}
      for i, pair in ipairs(list) do p[pair[1]] = pair[2][j[i]] end
      if not done[point_key(names, p)] then remaining = remaining + 1 end
      for i = #list, 1, -1 do
        j[i] = j[i] + 1
        if j[i] <= #list[i][2] then break end
        j[i] = 1
      end
    end
  end
  if not opts.quiet and remaining < total then
    io.stderr:write(string.format("[%s] %d of %d points already in %s, skipping them\n", tname, total - remaining, total, exp.path))
  end

  for k = 1, total do
    local p, desc = {}, {}
    for i, pair in ipairs(list) do
      p[pair[1]] = pair[2][idx[i]]
      desc[i] = pair[1] .. "=" .. fmt_value(p[pair[1]])
    end
    if done[point_key(names, p)] then
      skipped = skipped + 1
    else
      if not opts.quiet then
        local eta = ran > 0 and fmt_eta(spent / ran * (remaining - ran)) or "?"
        io.stderr:write(string.format("[%d/%d] %s  ETA %s\n", k, total, table.concat(desc, " "), eta))
      end
      local t0 = pare.clock()
      local point = {}
      for n, v in pairs(p) do point[n] = v end
      local row = fn(point)
      spent = spent + (pare.clock() - t0)
      ran = ran + 1
      if row then
        if type(row) ~= "table" then
          error(string.format("pare.sweep: the function returned a %s at %s; return a row table (or nil)", type(row), table.concat(desc, " ")), 2)
        end
        local merged = {}
        for c, v in pairs(row) do merged[c] = v end
        for n, v in pairs(p) do merged[n] = v end
        exp:record(tname, merged)
        done[point_key(names, p)] = true
      end
    end
    for i = #list, 1, -1 do
      idx[i] = idx[i] + 1
      if idx[i] <= #list[i][2] then break end
      idx[i] = 1
    end
  end
  return ran, skipped
end

return sweep
