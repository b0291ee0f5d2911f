-- pare.numbers — a comma-separated list of numbers from a script argument, the way sweeps take them:
--
--   local temps = pare.numbers(pare.args.temps, {1, 2, 4, 8})   -- temps=1,2,4 → {1, 2, 4}; absent → default
--
-- Whole numbers come back as integers (2, not 2.0), so they print and record as the user wrote them. An
-- item that is not a number is an error naming it and the whole argument.
return function(s, default)
  if s == nil then return default end
  local out = {}
  for w in tostring(s):gmatch("[^,]+") do
    local v = tonumber(w)
    if v == nil then error(string.format("'%s' in '%s' is not a number (give a comma-separated list such as 1,2,4)", w, s), 2) end
    out[#out + 1] = math.tointeger(v) or v
  end
  return out
end
