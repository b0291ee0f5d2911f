#!/bin/sh
# t_cli.sh — the pare command line: exit codes and messages (TAP). Run from the repo root:
#   sh tests/t_cli.sh          (PARE=path/to/pare to test another binary; PARE_BUILD=dir for dir/pare)
PARE=${PARE:-./${PARE_BUILD:-build}/pare}
if [ ! -x "$PARE" ]; then echo "Bail out! $PARE is not built"; exit 1; fi
T=$(mktemp -d /tmp/pare-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
failed=0

ok() { # ok COND-STATUS DESCRIPTION
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
# run CMD...: sets rc, out (stdout) and err (stderr)
run() {
  "$@" >"$T/out" 2>"$T/err"
  rc=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}
has() { printf '%s' "$1" | grep -q -- "$2"; }

run "$PARE"
ok $([ $rc -eq 2 ] && has "$err" "usage: pare"; echo $?) "no command: usage on stderr, exit 2"
run "$PARE" frobnicate
ok $([ $rc -eq 2 ] && has "$err" "unknown command 'frobnicate'" && has "$err" "usage:"; echo $?) "unknown command: named, usage, exit 2 (got $rc)"
run "$PARE" help
ok $([ $rc -eq 0 ] && has "$out" "usage: pare" && has "$out" "run FILE.lua"; echo $?) "pare help prints the usage"
run "$PARE" help no_such_pass
ok $([ $rc -eq 2 ] && has "$err" "unknown pass, task or model 'no_such_pass'" && has "$err" "valid:"; echo $?) "pare help with an unknown name lists the valid ones"
run "$PARE" info
ok $([ $rc -eq 0 ] && has "$out" "^cpu: " && has "$out" "^features:" && has "$out" "^hdf5:" && has "$out" "^lua: *Lua 5.4"; echo $?) "pare info: cpu, features, hdf5, lua lines"
ok $(has "$out" "^pare [0-9]*\.[0-9]*\.[0-9]*" && has "$out" "^commit:" && has "$out" "^gsl:" && has "$out" "^kernels:"; echo $?) "pare info: version, commit, gsl, kernels"

# run: missing file, syntax error, runtime error, arguments
run "$PARE" run "$T/nope.lua"
ok $([ $rc -eq 2 ] && has "$err" "nope.lua"; echo $?) "missing script: named, exit 2 (got $rc)"
run "$PARE" run
ok $([ $rc -eq 2 ]; echo $?) "run without a script: exit 2"
printf 'local x = 1\nlocal y = = 2\n' >"$T/syntax.lua"
run "$PARE" run "$T/syntax.lua"
ok $([ $rc -eq 3 ] && has "$err" "syntax.lua:2:"; echo $?) "syntax error: file:line, exit 3 (got $rc)"
printf 'local function f()\n  error("kaboom")\nend\nf()\n' >"$T/boom.lua"
run "$PARE" run "$T/boom.lua"
ok $([ $rc -eq 1 ] && has "$err" "boom.lua:2: kaboom" && has "$err" "stack traceback"; echo $?) "runtime error: message and traceback, exit 1 (got $rc)"
printf 'error({})\n' >"$T/obj.lua"
run "$PARE" run "$T/obj.lua"
ok $([ $rc -eq 1 ] && has "$err" "error object is a table"; echo $?) "a non-string error object is reported, exit 1"
cat >"$T/args.lua" <<'LUA'
print(pare.args.alpha, math.type(pare.args.alpha), pare.args.name, pare.args.n, math.type(pare.args.n),
      pare.args.flag, pare.args[1], arg[0] ~= nil, arg[1])
LUA
run "$PARE" run "$T/args.lua" alpha=0.5 name=tiny n=3 flag=true extra
ok $([ $rc -eq 0 ] && has "$out" "0.5	float	tiny	3	integer	true	extra	true	alpha=0.5"; echo $?) "args: pare.args (numbers converted, positional) and arg"
printf 'os.exit(7)\n' >"$T/exit.lua"
run "$PARE" run "$T/exit.lua"
ok $([ $rc -eq 7 ]; echo $?) "os.exit(n) sets the exit code"

# results files: make one, then table / plot it
cat >"$T/make.lua" <<LUA
local exp = pare.experiment("cli", {dir = "$T/results", plots = "$T/plots"})
for _, b in ipairs({4, 8}) do
  for _, m in ipairs({"rtn", "gptq"}) do exp:record("q", {bits = b, method = m, acc = b / 10 + (m == "gptq" and 0.05 or 0)}) end
end
exp:close()
LUA
run "$PARE" run "$T/make.lua"
ok $([ $rc -eq 0 ] && [ -f "$T/results/cli.h5" ]; echo $?) "a script writes results/cli.h5"
run "$PARE" table "$T/results/cli.h5"
ok $([ $rc -eq 0 ] && has "$out" "| acc  | bits | method |" && has "$out" "| 0.85 |    8 | gptq   |"; echo $?) "pare table prints the only table as markdown"
run "$PARE" table "$T/results/cli.h5" q --csv
ok $([ $rc -eq 0 ] && has "$out" "^acc,bits,method$" && has "$out" "^0.45,4,gptq$"; echo $?) "pare table --csv"
run "$PARE" table "$T/results/cli.h5" q --provenance
commit=$("$PARE" info | sed -n 's/^commit: *//p' | cut -d' ' -f1)
ok $([ $rc -eq 0 ] && has "$out" "^\*$T/results/cli.h5: commit [0-9a-f]" && has "$out" "commit ${commit:-x}" && has "$out" ", host "; echo $?) \
  "pare table --provenance: the file, its commit ($commit), date, CPU and host under the table"
run "$PARE" table "$T/results/cli.h5" nope
ok $([ $rc -eq 1 ] && has "$err" "no table 'nope'"; echo $?) "an unknown table: named, exit 1"
mkdir -p "$T/plots" # an --out directory must exist (only the default plots/ is created)
PARE_GNUPLOT= "$PARE" plot "$T/results/cli.h5" --table q --x bits --y acc --by method --out "$T/plots/nognuplot" >"$T/out" 2>"$T/err"
rc=$?
ok $([ $rc -eq 0 ] && [ -f "$T/plots/nognuplot.gp" ] && [ -f "$T/plots/nognuplot.dat" ] && grep -q "gnuplot not found: render with  gnuplot $T/plots/nognuplot.gp  (apt-get install gnuplot-nox)" "$T/err"; echo $?) "without gnuplot: .gp and .dat written, message says how to render"
if command -v gnuplot >/dev/null 2>&1; then
  run "$PARE" plot "$T/results/cli.h5" --table q --x bits --y acc --by method --logy --out "$T/plots/acc"
  ok $([ $rc -eq 0 ] && [ -s "$T/plots/acc.png" ] && [ -s "$T/plots/acc.svg" ]; echo $?) "pare plot renders png and svg"
  (cd "$T" && gnuplot plots/acc.gp) && [ -s "$T/plots/acc.png" ]
  ok $? "the .gp script reruns from another directory"
else
  n=$((n + 1)); echo "ok $n # SKIP gnuplot not installed"
  n=$((n + 1)); echo "ok $n # SKIP gnuplot not installed"
fi
run "$PARE" plot "$T/results/cli.h5" --table q --x bits --y nope
ok $([ $rc -eq 1 ] && has "$err" "y column 'nope' does not exist"; echo $?) "plot with a bad column: named, exit 1"
run "$PARE" plot "$T/results/cli.h5" --x bits --y acc --frobs
ok $([ $rc -eq 2 ] && has "$err" "frobs"; echo $?) "plot with a bad option: exit 2"

# bad files
head -c 3000 /dev/urandom >"$T/garbage.h5"
run "$PARE" table "$T/garbage.h5"
ok $([ $rc -eq 1 ] && has "$err" "garbage.h5" && has "$err" "not an HDF5 file"; echo $?) "a corrupt .h5: named, exit 1 (got $rc)"
ok $(! has "$err" "HDF5-DIAG"; echo $?) "... without HDF5's own error stack"
run "$PARE" table "$T/missing.h5"
ok $([ $rc -eq 1 ] && has "$err" "missing.h5"; echo $?) "a missing .h5: named, exit 1"
run "$PARE" plot "$T/garbage.h5" --x a --y b
ok $([ $rc -eq 1 ] && has "$err" "garbage.h5"; echo $?) "plot of a corrupt .h5: named, exit 1"

echo "1..$n"
[ $failed -eq 0 ]
