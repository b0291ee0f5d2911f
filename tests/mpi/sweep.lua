-- sweep.lua — run by tests/t_mpi.sh, alone and under mpirun: a 16-point sweep whose rows depend only on the
-- point (plus `who`, the rank that ran it). Arguments: dir= (results), fresh=true, slow= seconds the first
-- point rank 0 runs takes (the others take 0.02 s), die=true (rank 1 exits with 7 when it starts its third
-- point, the way a crashed rank would; rank 0's points take 0.1 s then, so rank 1 surely gets three).
-- Prints "rank R ran N skipped S rows K" on every rank.
local pare = require "pare"
local exp = pare.experiment("sw", {dir = pare.args.dir, fresh = pare.args.fresh or false})
local mine = 0 -- points this rank has started
local ran, skipped = pare.sweep(exp, "t", {a = {1, 2, 3, 4}, b = {"x", "y"}, c = {0, 0.5}}, function(p)
  mine = mine + 1
  if pare.args.die and pare.mpi.rank() == 1 and mine == 3 then os.exit(7) end
  local wait = 0.02
  if pare.args.die and pare.mpi.rank() == 0 then wait = 0.1 end
  if mine == 1 and pare.mpi.rank() == 0 and pare.args.slow then wait = pare.args.slow end
  pare.mpi._sleep(wait)
  return {v = p.a * 10 + p.c, s = p.b .. "!", ok = p.a % 2 == 0, who = pare.mpi.rank(), i = p.a * 100}
end, {quiet = pare.args.quiet or false})
print(string.format("rank %d ran %d skipped %d rows %d", pare.mpi.rank(), ran, skipped, #exp:rows("t")))
