-- lua_stats.lua — pare.stats: median, mean, stddev, quantile, bootstrap_ci (GSL).
local tap = require("pare.tap")
local s = pare.stats

tap.is(s.median({5, 1, 4, 2, 3}), 3.0, "median, odd count")
tap.is(s.median({4, 1, 3, 2}), 2.5, "median, even count")
tap.ok(s.median({}) ~= s.median({}), "median of nothing is NaN")
tap.is_close(s.mean({1, 2, 3, 4}), 2.5, 1e-12, 0, "mean")
tap.is_close(s.stddev({1, 2, 3, 4, 5}), math.sqrt(2.5), 1e-12, 0, "sample stddev")
tap.is_close(s.quantile({1, 2, 3, 4, 5}, 0.25), 2, 1e-12, 0, "quantile")

local x = {}
for i = 1, 200 do x[i] = (i * 37) % 101 end
local lo, hi = s.bootstrap_ci(x, {level = 0.95, resamples = 2000, seed = 1})
local med = s.median(x)
tap.ok(lo <= med and med <= hi, string.format("the 95%% CI [%g, %g] contains the median %g", lo, hi, med))
local lo2, hi2 = s.bootstrap_ci(x, {level = 0.95, resamples = 2000, seed = 1})
tap.ok(lo == lo2 and hi == hi2, "same seed, same interval")
local lo3, hi3 = s.bootstrap_ci(x)
tap.ok(lo3 <= med and med <= hi3, "defaults work")
local mlo, mhi = s.bootstrap_ci(x, {stat = "mean", level = 0.9})
local mean = s.mean(x)
tap.ok(mlo <= mean and mean <= mhi, "CI of the mean contains the mean")
local wlo, whi = s.bootstrap_ci(x, {level = 0.99, seed = 1})
tap.ok(whi - wlo >= hi - lo, "a 99% interval is no narrower than a 95% one")
tap.raises(function() s.bootstrap_ci(x, {levle = 0.9}) end, "unknown option 'levle' (valid: level, resamples, seed, stat)",
           "a misspelt option names the valid ones")
tap.raises(function() s.bootstrap_ci(x, {level = 2}) end, "out of range", "a level out of range is refused")
tap.raises(function() s.bootstrap_ci({}) end, "no values", "no values is an error")
tap.raises(function() s.median({1, "x"}) end, "element 2", "a non-number names its index")
local ok, err = pcall(function() s.bootstrap_ci(x, {stat = "mode"}) end)
tap.like(err, "lua_stats.lua:%d+:", "option errors name the script line")
tap.done()
