#!/bin/sh
# t_demo.sh — the demo script runs end to end on a tiny budget and writes its table and plots.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PARE=${PARE:-./${PARE_BUILD:-build}/pare} # PARE_BUILD: the build directory (make check: build-san)
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
"$PARE" run experiments/quickstart.lua steps=40 bert=0 repeats=3 results_dir="$tmp/r" plots_dir="$tmp/p" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "quickstart exits 0 (rc=$rc)" '[ $rc -eq 0 ]'
check "prints the table header" 'grep -q "latency ms (median, 95% CI)" "$tmp/out"'
check "fp32 and int8 rows" 'grep -q "| fp32 " "$tmp/out" && grep -q "| int8 " "$tmp/out"'
check "results file written" '[ -s "$tmp/r/quickstart.h5" ]'
check "table readable by pare table" '"$PARE" table "$tmp/r/quickstart.h5" formats --csv | grep -q "^model,format"'
check "gnuplot script and data beside the plot" '[ -s "$tmp/p/quickstart-accuracy.gp" ] && [ -s "$tmp/p/quickstart-accuracy.dat" ]'
if command -v gnuplot >/dev/null 2>&1; then
  check "png and svg rendered" '[ -s "$tmp/p/quickstart-latency.png" ] && [ -s "$tmp/p/quickstart-latency.svg" ]'
else
  n=$((n + 1)); echo "ok $n # SKIP gnuplot not installed"
fi
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
echo "1..$n"
