#!/bin/sh
# t_durable.sh — results files survive a killed `pare run` and a full disk, end to end (issue 10;
# the library-level tests are in test_h5_durable.c). Run from the repo root:
#   sh tests/t_durable.sh          (PARE=path/to/pare to test another binary)
# The full-disk part mounts a small tmpfs and is skipped when that is not allowed (not root).
PARE=${PARE:-./${PARE_BUILD:-build}/pare}
if [ ! -x "$PARE" ]; then echo "Bail out! $PARE is not built"; exit 1; fi
T=$(mktemp -d /tmp/pare-durable-XXXXXX)
cleanup() {
  if [ -n "${MNT:-}" ]; then umount "$MNT" 2>/dev/null; fi
  rm -rf "$T"
}
trap cleanup EXIT
n=0
failed=0
ok() { # ok COND-STATUS DESCRIPTION
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
has() { printf '%s' "$1" | grep -q -- "$2"; }

# A script that "trains" before its first row (as experiments/int8_layers.lua does), then sweeps.
cat >"$T/train.lua" <<'EOF'
local pare = require "pare"
local exp = pare.experiment("train", {dir = pare.args.dir})
local function busy(s) local t = os.clock(); while os.clock() - t < s do end end
busy(pare.args.train or 0.15)
pare.sweep(exp, "t", {i = {1, 2, 3, 4, 5, 6}}, function(p)
  busy(pare.args.point or 0.03)
  return {s = string.rep("x", pare.args.bytes or 10)}
end, {quiet = true})
EOF

# Kill at many moments: before the file exists, right after, during training, during the sweep.
bad=0
absent=0
valid=0
for sig in KILL TERM INT; do
  for ms in 0 2 5 10 20 40 80 150 250; do
    "$PARE" run "$T/train.lua" dir="$T/k$sig" >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk "BEGIN{print $ms/1000}")"
    kill -s "$sig" $pid 2>/dev/null
    wait $pid 2>/dev/null
    f="$T/k$sig/train.h5"
    if [ ! -e "$f" ]; then
      absent=$((absent + 1))
    elif "$PARE" table "$f" >/dev/null 2>"$T/err" || grep -q "no tables" "$T/err"; then
      valid=$((valid + 1))
    else
      bad=$((bad + 1))
      echo "# SIG$sig after ${ms} ms: $(cat "$T/err")"
    fi
  done
done
ok $([ $bad -eq 0 ]; echo $?) "27 runs killed by SIGKILL/TERM/INT at 0-250 ms: none left a damaged file ($absent absent, $valid valid)"
ok $([ $valid -gt 0 ]; echo $?) "some were killed after the file existed ($valid)"
all=0
for sig in KILL TERM INT; do
  "$PARE" run "$T/train.lua" dir="$T/k$sig" train=0 point=0 >"$T/out" 2>"$T/err" || all=1
  rows=$("$PARE" table "$T/k$sig/train.h5" t --csv 2>/dev/null | tail -n +2 | cut -d, -f1 | sort -u | wc -l)
  total=$("$PARE" table "$T/k$sig/train.h5" t --csv 2>/dev/null | tail -n +2 | wc -l)
  [ "$rows" -eq 6 ] && [ "$total" -eq 6 ] || { all=1; echo "# SIG$sig: $rows distinct of $total rows"; }
done
ok $all "a rerun after each kill completes the sweep: 6 points, each recorded once"

# A results file on a disk that fills up mid-sweep.
MNT="$T/mnt"
mkdir -p "$MNT"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=512k tmpfs "$MNT" 2>/dev/null; then
  mkdir -p "$MNT/res"
  dd if=/dev/zero of="$MNT/filler" bs=1k count=420 2>/dev/null
  "$PARE" run "$T/train.lua" dir="$MNT/res" train=0 point=0 bytes=6000 >"$T/out" 2>"$T/err"
  rc=$?
  err=$(cat "$T/err")
  ok $([ $rc -eq 1 ] && has "$err" "No space left on device" && has "$err" "train.h5"; echo $?) \
    "disk full mid-sweep: exit 1 (not a crash: got $rc), the error names the file and the reason"
  "$PARE" table "$MNT/res/train.h5" t --csv >"$T/out" 2>"$T/err"
  rc=$?
  before=$(tail -n +2 "$T/out" | wc -l)
  ok $([ $rc -eq 0 ] && [ "$before" -ge 1 ] && [ "$before" -lt 6 ]; echo $?) \
    "the rows recorded before the disk filled are readable ($before of 6; exit $rc)"
  ok $(! ls "$MNT/res/"*.tmp-* >/dev/null 2>&1; echo $?) "no temporary file left on the full disk"
  rm -f "$MNT/filler"
  "$PARE" run "$T/train.lua" dir="$MNT/res" train=0 point=0 bytes=6000 >"$T/out" 2>"$T/err"
  rc=$?
  rows=$("$PARE" table "$MNT/res/train.h5" t --csv 2>/dev/null | tail -n +2 | cut -d, -f1 | sort -u | wc -l)
  total=$("$PARE" table "$MNT/res/train.h5" t --csv 2>/dev/null | tail -n +2 | wc -l)
  bytes_ok=$("$PARE" table "$MNT/res/train.h5" t --csv 2>/dev/null | tail -n +2 | awk -F, 'length($2) != 6000 { bad = 1 } END { print bad ? 1 : 0 }')
  ok $([ $rc -eq 0 ] && [ "$rows" -eq 6 ] && [ "$total" -eq 6 ] && [ "$bytes_ok" -eq 0 ]; echo $?) \
    "after space is freed the rerun records the failed point: 6 rows, each once, intact (exit $rc, $rows/$total)"
  umount "$MNT"
  MNT=
else
  for d in 1 2 3 4; do n=$((n + 1)); echo "ok $n - # skip cannot mount a tmpfs (needs root)"; done
  MNT=
fi

# Two writers of one file: the second is refused, naming the first.
cat >"$T/hold.lua" <<'EOF'
local pare = require "pare"
local exp = pare.experiment("held", {dir = pare.args.dir})
exp:record("t", {i = 1})
local t = os.time(); while os.time() - t < 3 do end
EOF
"$PARE" run "$T/hold.lua" dir="$T/lock" >/dev/null 2>&1 &
holder=$!
i=0
while [ ! -e "$T/lock/held.h5" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
"$PARE" run "$T/hold.lua" dir="$T/lock" >"$T/out" 2>"$T/err"
rc=$?
err=$(cat "$T/err")
ok $([ $rc -eq 1 ] && has "$err" "another pare run is writing" && has "$err" "pid $holder"; echo $?) \
  "a second run of the same experiment is refused, naming the first's pid (exit $rc)"
"$PARE" table "$T/lock/held.h5" >/dev/null 2>&1
ok $? "pare table reads the file while its writer runs"
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  env -u HDF5_USE_FILE_LOCKING /usr/bin/python3 -c "import h5py; f = h5py.File('$T/lock/held.h5', 'r'); assert len(f['t']) == 1" 2>"$T/err"
  ok $? "h5py reads it too, without HDF5_USE_FILE_LOCKING"
else
  n=$((n + 1)); echo "ok $n - # skip python3-h5py not installed"
fi
wait $holder

echo "1..$n"
[ $failed -eq 0 ]
