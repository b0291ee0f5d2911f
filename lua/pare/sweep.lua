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
--
-- Under mpirun (pare.mpi.active(); docs/distributed.md) the points are spread over the ranks: rank 0
-- reads which rows the table has, hands out the missing points one at a time (a rank that finishes
-- asks for the next, so a slow point stalls nobody; rank 0 runs points too, its server thread answers
-- the others meanwhile), and records every row (the only writer of the results file). One progress line
-- per point handed out, on rank 0: "[3/6] alpha=0.5 bits=4  rank 1  ETA 12s". Each point runs on one
-- rank in local mode (training inside it is not data-parallel). Every rank must call pare.sweep with the
-- same arguments; it returns on all of them together, with the points run by all ranks and skipped.
-- A rank that dies ends the job (MPI does that): the rows recorded so far stay, a rerun runs the rest.

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

-- The point numbered k (1-based, the last parameter varying fastest): its values and its description.
local function point_at(list, k)
  local p, desc, rem = {}, {}, k - 1
  for i = #list, 1, -1 do
    local values = list[i][2]
    local j = rem % #values
    rem = rem // #values
    p[list[i][1]] = values[j + 1]
  end
  for i, pair in ipairs(list) do desc[i] = pair[1] .. "=" .. fmt_value(p[pair[1]]) end
  return p, table.concat(desc, " ")
end

-- The row fn returned for a point, merged with the point's values (nil when fn returned nil or false).
local function merged_row(row, p, desc, level)
  if not row then return nil end
  if type(row) ~= "table" then
    error(string.format("pare.sweep: the function returned a %s at %s; return a row table (or nil)", type(row), desc), level)
  end
  local merged = {}
  for c, v in pairs(row) do merged[c] = v end
  for n, v in pairs(p) do merged[n] = v end
  return merged
end

-- The points of the product whose rows the table lacks: their numbers and descriptions; and how many it has.
local function missing_points(exp, tname, list, names, total)
  local done = {}
  for _, row in ipairs(exp:rows(tname)) do
    local complete = true
    for _, n in ipairs(names) do if row[n] == nil then complete = false end end
    if complete then done[point_key(names, row)] = true end
  end
  local todo, descs, seen = {}, {}, {}
  for k = 1, total do
    local p, desc = point_at(list, k)
    local key = point_key(names, p)
    if not done[key] and not seen[key] then
      todo[#todo + 1], descs[#descs + 1] = k, desc
      seen[key] = true
    end
  end
  return todo, descs, total - #todo
end

-- A row as bytes for MPI (sweep workers to rank 0): per column, name, a type letter and the value.
local function pack_row(row, desc)
  local cols = {}
  for c in pairs(row) do
    if type(c) ~= "string" then
      error(string.format("pare.sweep: the row returned at %s has a %s key; columns are named by strings", desc, type(c)), 0)
    end
    cols[#cols + 1] = c
  end
  table.sort(cols)
  local parts = {}
  for _, c in ipairs(cols) do
    local v = row[c]
    local t = math.type(v) or type(v)
    if t == "integer" then parts[#parts + 1] = string.pack("<s4c1j", c, "i", v)
    elseif t == "float" then parts[#parts + 1] = string.pack("<s4c1n", c, "f", v)
    elseif t == "string" then parts[#parts + 1] = string.pack("<s4c1s4", c, "s", v)
    elseif t == "boolean" then parts[#parts + 1] = string.pack("<s4c1B", c, "b", v and 1 or 0)
    else
      error(string.format("pare.sweep: column '%s' of the row returned at %s holds a %s; use numbers, strings or booleans", c, desc, t), 0)
    end
  end
  return table.concat(parts)
end

local function unpack_row(text)
  local row, pos = {}, 1
  while pos <= #text do
    local c, t
    c, t, pos = string.unpack("<s4c1", text, pos)
    local v
    if t == "i" then v, pos = string.unpack("<j", text, pos)
    elseif t == "f" then v, pos = string.unpack("<n", text, pos)
    elseif t == "s" then v, pos = string.unpack("<s4", text, pos)
    else v, pos = string.unpack("<B", text, pos); v = v ~= 0 end
    row[c] = v
  end
  return row
end

-- Run point k in local mode (training inside is this rank's alone), returning fn's row.
local function run_local(mpi, fn, p)
  local point = {}
  for n, v in pairs(p) do point[n] = v end
  local was = mpi.local_mode(true)
  local row = fn(point)
  mpi.local_mode(was)
  return row
end

local function sweep_distributed(exp, tname, list, names, total, fn, opts)
  local mpi = pare.mpi
  local ran, skipped = 0, 0
  if mpi.rank() == 0 then
    if not exp:columns(tname) then exp:table(tname, names) end
    local todo, descs
    todo, descs, skipped = missing_points(exp, tname, list, names, total)
    if not opts.quiet and skipped > 0 then
      io.stderr:write(string.format("[%s] %d of %d points already in %s, skipping them\n", tname, skipped, total, exp.path))
    end
    mpi._queue_begin(todo, descs, total, opts.quiet and true or false)
    local function drain() -- the rows the other ranks sent meanwhile
      for _, r in ipairs(mpi._queue_rows()) do
        local p = point_at(list, r.k)
        exp:record(tname, merged_row(unpack_row(r.text), p, "", 0))
      end
    end
    while true do
      local k = mpi._queue_take()
      if not k then break end
      local p, desc = point_at(list, k)
      local row = merged_row(run_local(mpi, fn, p), p, desc, 3)
      ran = ran + 1
      if row then exp:record(tname, row) end
      drain()
    end
    while not mpi._queue_drained() do
      drain()
      mpi._sleep(0.005)
    end
    drain()
    mpi._queue_end()
  else
    local done_k, text = -1, nil
    while true do
      local k = mpi._queue_ask(done_k, text)
      if not k then break end
      local p, desc = point_at(list, k)
      local row = run_local(mpi, fn, p)
      ran = ran + 1
      if row and type(row) ~= "table" then merged_row(row, p, desc, 3) end -- raises, naming the point
      text = row and pack_row(row, desc) or nil
      done_k = k
    end
  end
  -- every rank leaves together, with the totals (the table is complete when any rank goes on)
  ran = math.tointeger(mpi.allreduce_sum(ran))
  skipped = mpi.bcast(skipped)
  return ran, skipped
end

local function sweep(exp, tname, params, fn, opts)
  if type(fn) ~= "function" then error("pare.sweep: the 4th argument must be a function(point) returning a row", 2) end
  opts = opts or {}
  local list = param_list(params)
  local names, total = {}, 1
  for i, pair in ipairs(list) do names[i] = pair[1]; total = total * #pair[2] end

  if pare.mpi.active() and not pare.mpi.local_mode() then
    return sweep_distributed(exp, tname, list, names, total, fn, opts)
  end
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
