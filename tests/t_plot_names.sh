#!/bin/sh
# t_plot_names.sh — names and text reach gnuplot as text, never as commands (issue 10, defects 2
# and 7): results file names, --out / out=, titles, labels, column labels and units, series and
# category values holding ' " \ ` $(...) system(...) @macros render exactly and run nothing (a
# canary file is never created); control characters are refused naming the option; a gnuplot
# failure is an error with gnuplot's message; any number of --y columns; an --out directory must
# exist while pare's default plots directory is created. TAP. Run from the repo root:
#   sh tests/t_plot_names.sh          (PARE=path/to/pare to test another binary)
PARE=${PARE:-./${PARE_BUILD:-build}/pare}
case "$PARE" in /*) ;; *) PARE="$(pwd)/$PARE" ;; esac
if [ ! -x "$PARE" ]; then echo "Bail out! $PARE is not built"; exit 1; fi
T=$(mktemp -d /tmp/pare-plotnames-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1 # every injected command would touch a pwned-* file here (gnuplot runs in this directory)
n=0
failed=0
ok() { # ok COND-STATUS DESCRIPTION; a failure shows the last command's stderr as TAP diagnostics
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then printf 'ok %s - %s\n' "$n" "$2"; else
    printf 'not ok %s - %s (exit %s)\n' "$n" "$2" "$rc"
    printf '%s\n' "$err" | sed 's/^/# /'
    failed=$((failed + 1))
  fi
}
skip() { n=$((n + 1)); printf 'ok %s # SKIP %s\n' "$n" "$1"; }
run() { # run CMD...: sets rc, out (stdout) and err (stderr)
  "$@" >"$T/out.txt" 2>"$T/err.txt"
  rc=$?
  out=$(cat "$T/out.txt")
  err=$(cat "$T/err.txt")
}
has() { printf '%s' "$1" | grep -qF -- "$2"; }
nopwn() { ! ls "$T" | grep -q '^pwned'; }
# svg_has FILE TEXT: the SVG shows TEXT (gnuplot escapes only & and < in SVG text; the strings here have neither)
svg_has() { grep -qF -- ">$2</text>" "$1" 2>/dev/null; }
GNUPLOT=$(command -v gnuplot)

# The hostile strings. A doubled '' cannot open a gnuplot string nor follow another one, hence Q3.
Q1="it's \"q\" back\\slash \`touch pwned-1\` \$(touch pwned-2)"
Q2="x' . system('touch pwned-3') . '"
Q3="'''lead and a''b and @data @ARG0 {}"
Q4='y" . system("touch pwned-4") . "'

cat >make.lua <<'LUA'
local cats = {"it's", 'say "hi"', "back\\slash\\", "tick `touch pwned-10`", "$(touch pwned-11)",
              "x' . system('touch pwned-12') . '", 'y" . system("touch pwned-13") . "', "@data", "''pair''",
              "new\nline", "tab\there", "<touch pwned-14", "|touch pwned-15", "# hash", "{brace}"}
local exp = pare.experiment("names", {dir = "results", plots = "plots"})
exp:table("t", {columns = {"cat", "grp", "v"},
                units = {v = "ms' `touch pwned-16`"}, labels = {v = "lat \"$(touch pwned-17)\" \\"}})
for i, s in ipairs(cats) do exp:record("t", {cat = s, grp = cats[(i % 5) + 5], v = i}) end
for i = 1, 3 do exp:record("neg", {x = i, y = -i}) end
local wide = {}
for i = 1, 40 do wide["y" .. i] = i end
wide.x = 1
exp:record("wide", wide)
wide.x = 2
exp:record("wide", wide)
exp:close()
local f = io.open("cats.txt", "w")
for _, s in ipairs(cats) do f:write(s, "\n") end
f:close()
LUA
run "$PARE" run make.lua
ok $([ $rc -eq 0 ] && [ -f results/names.h5 ]; echo $?) "a results table with hostile strings"
# a results file whose own name is hostile (no '/': it is one file name)
RF="results/q'\"\`touch pwned-5\`\$(touch pwned-6) @data.h5"
cp results/names.h5 "$RF"
mkdir out

# 1. CLI: hostile results file name, --title, --xlabel, --ylabel and --out, rendered exactly
run "$PARE" plot "$RF" --table t --x cat --y v --by grp --title "$Q1" --xlabel "$Q2" --ylabel "$Q3" --out "out/$Q4"
ok $([ $rc -eq 0 ] && [ -s "out/$Q4.png" ] && [ -s "out/$Q4.svg" ]; echo $?) "hostile --title/--xlabel/--ylabel/--out and file name: rendered, exit 0"
ok $(nopwn; echo $?) "... and no command ran"
if [ -n "$GNUPLOT" ]; then
  ok $(svg_has "out/$Q4.svg" "$Q1" && svg_has "out/$Q4.svg" "$Q2" && svg_has "out/$Q4.svg" "$Q3"; echo $?) "... title and labels appear exactly in the SVG"
  ok $(svg_has "out/$Q4.svg" "grp=''pair''" && svg_has "out/$Q4.svg" "grp=@data" && svg_has "out/$Q4.svg" "grp=\$(touch pwned-11)"; echo $?) "... and the series titles from string values"
  (cd / && "$GNUPLOT" "$T/out/$Q4.gp") >/dev/null 2>&1
  ok $(nopwn; echo $?) "rerunning the hostile .gp by hand from another directory runs nothing either"
else
  skip "gnuplot not installed"; skip "gnuplot not installed"; skip "gnuplot not installed"
fi

# 2. the default name comes from a hostile results file name; plots/ is pare's own, so it is created
run "$PARE" plot "$RF" --table t --x cat --y v
ok $([ $rc -eq 0 ] && [ -f "plots/q'\"\`touch pwned-5\`\$(touch pwned-6) @data-t-v.gp" ]; echo $?) "default plots/<file>-<table>-<y> from a hostile file name, plots/ created"
ok $(nopwn; echo $?) "... and no command ran"

# 3. bars: hostile categories as tick labels, and the .dat strings parse back exactly
run "$PARE" plot results/names.h5 --table t --x cat --y v --kind bars --out out/bars
ok $([ $rc -eq 0 ] && nopwn; echo $?) "bars with hostile category names: exit 0, no command ran"
if [ -n "$GNUPLOT" ]; then
  all=0
  for c in "it's" 'say "hi"' 'back\slash\' 'tick `touch pwned-10`' '$(touch pwned-11)' "x' . system('touch pwned-12') . '" \
           'y" . system("touch pwned-13") . "' '@data' "''pair''" 'new line' 'tab here' '|touch pwned-15' '# hash' '{brace}'; do
    svg_has out/bars.svg "$c" || { all=1; echo "# tick label missing: $c"; }
  done
  ok $all "every category shows as its tick label, exactly (control characters as spaces)"
  # gnuplot reads column 2 of the .dat back: the escapes decode to the table's strings, newline included
  cat >readback.gp <<'GP'
set print 'readback.txt'
do for [i = 0:14] { stats 'out/bars.dat' index 0 every ::i::i using (s = strcol(2), $3) nooutput; print s }
GP
  "$GNUPLOT" readback.gp >/dev/null 2>&1
  ok $(cmp -s readback.txt cats.txt; echo $?) ".dat category strings parse back exactly in gnuplot (\" \\ newline tab ' \` #)"
  ok $(grep -q '^13 "# hash" 14$' out/bars.dat && grep -q '^1 "say \\042hi\\042" 2$' out/bars.dat; echo $?) "... one token each, y in column 3"
else
  skip "gnuplot not installed"; skip "gnuplot not installed"; skip "gnuplot not installed"
fi

# 3b. 60 random strings over gnuplot's special characters (fixed seed), as tick labels and a title
cat >fuzz.lua <<'LUA'
math.randomseed(7)
local alpha = {"'", '"', "\\", "`", "@", "$", "(", ")", "{", "}", "#", "a", ";", "|", "<", "&"}
local exp = pare.experiment("fuzz", {dir = "results", plots = "fplots"})
local seen, list = {}, {}
while #list < 60 do
  local t = {}
  for i = 1, math.random(1, 8) do t[i] = alpha[math.random(#alpha)] end
  local s = table.concat(t)
  if not seen[s] then seen[s] = true; list[#list + 1] = s end
end
for i, s in ipairs(list) do exp:record("f", {s = s, v = i}) end
local f = io.open("fuzz.txt", "w")
for _, s in ipairs(list) do f:write(s, "\n") end
f:close()
exp:plot{table = "f", x = "s", y = "v", kind = "bars", title = list[1] .. list[2] .. list[3]}
exp:close()
LUA
run "$PARE" run fuzz.lua
ok $([ $rc -eq 0 ] && nopwn; echo $?) "60 random strings of ' \" \\ \` @ \$ ( ) { } # ; | < &: plotted, nothing run"
if [ -n "$GNUPLOT" ]; then
  miss=0
  while IFS= read -r s; do # the SVG escapes & and <
    svg_has fplots/fuzz-f-v.svg "$(printf '%s' "$s" | sed 's/&/\&amp;/g; s/</\&lt;/g')" || { miss=$((miss + 1)); echo "# missing: $s"; }
  done <fuzz.txt
  ok $miss "... every one of them is its own tick label, exactly"
else
  skip "gnuplot not installed"
fi

# 4. file names gnuplot would otherwise read as an option or a shell command
run "$PARE" plot results/names.h5 --table neg --x x --y x --out "<touch pwned-7;x"
ok $([ $rc -eq 0 ] && nopwn && [ -f "<touch pwned-7;x.gp" ]; echo $?) "--out starting with '<' is a file, not a command"
run "$PARE" plot results/names.h5 --table neg --x x --y x --out "-x"
ok $([ $rc -eq 0 ] && [ -f ./-x.gp ] && { [ -z "$GNUPLOT" ] || [ -s ./-x.png ]; }; echo $?) "--out starting with '-' is a file, not a gnuplot option"
run "$PARE" plot results/names.h5 --table neg --x x --y x --out "|touch pwned-8"
ok $([ $rc -eq 0 ] && nopwn; echo $?) "--out starting with '|' is a file, not an output pipe"

# 5. Lua: exp:plot / pare.plot with hostile title and out
cat >lua_plot.lua <<LUA
local exp = pare.experiment("names", {dir = "results", plots = "lplots"})
local files, rendered = exp:plot{table = "t", x = "cat", y = "v", by = "grp", name = "lua",
                                 title = [==[$Q1]==], xlabel = [==[$Q3]==]}
print("default " .. files[2] .. " " .. tostring(rendered))
files, rendered = pare.plot(exp, {table = "t", x = "cat", y = "v", out = [==[out/$Q2]==], ylabel = [==[$Q4]==]})
print("out " .. files[2] .. " " .. tostring(rendered))
exp:close()
LUA
run "$PARE" run lua_plot.lua
ok $([ $rc -eq 0 ] && [ -f lplots/names-lua.gp ] && [ -f "out/$Q2.gp" ] && nopwn; echo $?) "exp:plot / pare.plot with hostile title, labels and out: written, no command ran"
if [ -n "$GNUPLOT" ]; then
  ok $(has "$out" "default lplots/names-lua.gp true" && svg_has lplots/names-lua.svg "$Q1" && svg_has "out/$Q2.svg" "$Q4"; echo $?) "... rendered, the text exact in the SVG"
else
  skip "gnuplot not installed"
fi

# 6. control characters and NUL are refused, naming the option
run "$PARE" plot results/names.h5 --table t --x cat --y v --title "$(printf 'two\nlines')" --out out/ctl
ok $([ $rc -eq 2 ] && has "$err" "--title 'two\\nlines': control characters are refused" && [ ! -f out/ctl.gp ]; echo $?) "--title with a newline: refused, exit 2, shown escaped"
run "$PARE" plot results/names.h5 --table t --x cat --y v --out "$(printf 'out/a\tb')"
ok $([ $rc -eq 2 ] && has "$err" "--out 'out/a\\tb'"; echo $?) "--out with a tab: refused naming --out"
run "$PARE" plot results/names.h5 --table t --x cat --y v --ylabel "$(printf 'esc\033[31m')" --out out/ctl
ok $([ $rc -eq 2 ] && has "$err" "--ylabel 'esc\\x1b[31m'"; echo $?) "--ylabel with an escape: refused, the escape not echoed raw"
cat >ctl.lua <<'LUA'
local exp = pare.experiment("names", {dir = "results", plots = "lplots"})
print(pcall(exp.plot, exp, {table = "t", x = "cat", y = "v", title = "a\nb"}))
print(pcall(exp.plot, exp, {table = "t", x = "cat", y = "v", xlabel = "a\0b"}))
print(pcall(exp.plot, exp, {table = "t", x = "cat", y = "v", out = "out/a\rb"}))
exp:close()
LUA
run "$PARE" run ctl.lua
ok $(has "$out" "exp:plot: title 'a\\nb': control characters are refused" && has "$out" "exp:plot: xlabel holds a NUL byte" && has "$out" "exp:plot: out 'out/a\\rb'"; echo $?) "Lua: newline, NUL and CR refused naming title, xlabel, out"

# 7. a gnuplot failure is an error carrying gnuplot's message
if [ -n "$GNUPLOT" ]; then
  run "$PARE" plot results/names.h5 --table neg --x x --y y --logy --out out/neg
  ok $([ $rc -eq 1 ] && has "$err" "gnuplot failed on out/neg.gp (exit 1)" && has "$err" "all points y value undefined" && [ ! -f out/neg.png ]; echo $?) "log scale of negative values: gnuplot's message, exit 1, no half-written png"
  printf '#!/bin/sh\nprintf "set frobnicate\\n" >>"$1"\nexec "%s" "$@"\n' "$GNUPLOT" >badgnuplot
  chmod +x badgnuplot
  run env PARE_GNUPLOT="$T/badgnuplot" "$PARE" plot results/names.h5 --table neg --x x --y y --out out/syntax
  ok $([ $rc -eq 1 ] && has "$err" "gnuplot ($T/badgnuplot) failed on out/syntax.gp (exit 1)" && has "$err" "out/syntax.gp\" line " && has "$err" "set frobnicate" && has "$err" "unrecognized option"; echo $?) "a gnuplot syntax error: exit 1 with gnuplot's line and message"
  cat >fail.lua <<'LUA'
local exp = pare.experiment("names", {dir = "results", plots = "lplots"})
local okk, msg = pcall(exp.plot, exp, {table = "neg", x = "x", y = "y", logy = true})
print(okk, msg)
exp:close()
LUA
  run "$PARE" run fail.lua
  ok $(has "$out" "false" && has "$out" "exp:plot: gnuplot failed on lplots/names-neg-y.gp (exit 1), saying:" && has "$out" "all points y value undefined"; echo $?) "exp:plot raises a Lua error with gnuplot's message"
else
  skip "gnuplot not installed"; skip "gnuplot not installed"; skip "gnuplot not installed"
fi

# 8. without gnuplot the files are still written and the hint is a command that works as typed
run env PARE_GNUPLOT= "$PARE" plot results/names.h5 --table t --x cat --y v --out "out/$Q2"
ok $([ $rc -eq 0 ] && has "$err" "gnuplot not found: render with  gnuplot 'out/x'\\'' . system('\\''touch pwned-3'\\'') . '\\''.gp'  (apt-get install gnuplot-nox)"; echo $?) "without gnuplot: the hint shell-quotes a hostile name"
if [ -n "$GNUPLOT" ]; then
  hint=$(printf '%s' "$err" | sed -n 's/^gnuplot not found: render with  \(.*\)  (apt-get.*/\1/p')
  rm -f "out/$Q2.png"
  eval "$hint" >/dev/null 2>&1
  ok $([ -s "out/$Q2.png" ] && nopwn; echo $?) "... and pasting it into a shell renders the plot"
else
  skip "gnuplot not installed"
fi

# 9. defect 7: more than 32 --y columns are all plotted; an --out directory must exist
ys=$(seq -s, 1 40 | sed 's/\([0-9][0-9]*\)/y\1/g')
run "$PARE" plot results/names.h5 --table wide --x x --y "$ys" --out out/wide
ok $([ $rc -eq 0 ] && grep -q "data index 39 using 1:2 .* title 'y40'$" out/wide.gp && [ "$(grep -c '^        data index' out/wide.gp)" -eq 40 ]; echo $?) "40 --y columns: 40 series, none dropped"
cat >wide.lua <<LUA
local exp = pare.experiment("names", {dir = "results", plots = "lplots"})
local y = {}
for i = 1, 40 do y[i] = "y" .. i end
local files = exp:plot{table = "wide", x = "x", y = y, name = "wide"}
print(files[2])
exp:close()
LUA
run "$PARE" run wide.lua
ok $([ $rc -eq 0 ] && [ "$(grep -c '^        data index' lplots/names-wide.gp)" -eq 40 ]; echo $?) "exp:plot with 40 y columns"
run "$PARE" table results/names.h5 neg --columns "$(seq -s, 1 300 | sed 's/[0-9][0-9]*/x/g')"
ok $([ $rc -eq 2 ] && has "$err" "--columns lists more than 256 columns"; echo $?) "pare table --columns beyond a table's 256 columns: an error, not silently cut"
run "$PARE" plot results/names.h5 --table neg --x x --y y --out nodir/deeper/p
ok $([ $rc -eq 2 ] && has "$err" "--out 'nodir/deeper/p': directory 'nodir/deeper' does not exist; create it first:  mkdir -p nodir/deeper" && [ ! -e nodir ]; echo $?) "--out into a missing directory: refused naming it, mkdir -p suggested, nothing created"
: >afile
run "$PARE" plot results/names.h5 --table neg --x x --y y --out afile/p
ok $([ $rc -eq 2 ] && has "$err" "'afile' is not a directory"; echo $?) "--out under a file: refused"
run "$PARE" plot results/names.h5 --table neg --x x --y y --out out/
ok $([ $rc -eq 2 ] && has "$err" "names a directory"; echo $?) "--out naming a directory: refused"
cat >outdir.lua <<'LUA'
local exp = pare.experiment("names", {dir = "results", plots = "fresh/plots/dir"})
print(pcall(exp.plot, exp, {table = "neg", x = "x", y = "x", out = "nodir/p"}))
local files = exp:plot{table = "neg", x = "x", y = "x"}
print(files[2])
exp:close()
LUA
run "$PARE" run outdir.lua
ok $(has "$out" "exp:plot: out 'nodir/p': directory 'nodir' does not exist" && has "$out" "fresh/plots/dir/names-neg-x.gp" && [ -f fresh/plots/dir/names-neg-x.gp ] && [ ! -e nodir ]; echo $?) "Lua: out= into a missing directory refused; the experiment's plots directory is created"

ok $(nopwn; echo $?) "no injected command ran, anywhere in this test"
echo "1..$n"
[ $failed -eq 0 ]
