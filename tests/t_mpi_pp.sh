#!/bin/sh
# t_mpi_pp.sh — pipeline parallelism under mpirun -n 2 (issue 17, docs/distributed.md "Pipeline parallelism"):
# GPipe and 1F1B over 2 stages train an encoder, a decoder and an encoder-decoder as one process does with the
# same global batch (losses, logits, the encoder-decoder's test loss after 10 AdamW steps, to 1e-4), also with
# activation checkpointing and with a head tied to the embeddings (a parameter of both stages); 1F1B's first
# stage plans fewer bytes than GPipe's; more stages than layers is a clear error. Skipped, with the reason, when this build has no MPI or mpirun is missing.
# Run from the repo root:  sh tests/t_mpi_pp.sh          (PARE=path/to/pare to test another binary)
MPI_TEST_NAME=mpipp
. tests/mpi/lib.sh
MPIRUN3="$MPIRUN_BASE -n 3"
# cmp_files A B: "N values, max |diff| D at line L", status 0 when D <= 1e-4 over more than 400 values
cmp_files() {
  paste "$1" "$2" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) { m = d; at = NR } }
    END { printf "%d values, max |diff| %.3g at line %d", NR, m, at; exit !(NR > 400 && m <= 1e-4) }'
}

"$PARE" run tests/mpi/pp.lua out="$T/one.txt" >"$T/one.log" 2>&1
ok "$?" "pp.lua alone (one process, no pipeline)"
"$PARE" run tests/mpi/pp.lua out="$T/onetie.txt" tie=true >"$T/onetie.log" 2>&1
ok "$?" "pp.lua alone, tied head"

for sched in gpipe 1f1b; do
  $MPIRUN "$PARE" run tests/mpi/pp.lua out="$T/$sched.txt" pipeline=$sched mb=4 </dev/null >"$T/$sched.log" 2>&1
  ok "$?" "mpirun -n 2: pipeline=$sched, 4 micro-batches"
  c=$(cmp_files "$T/one.txt" "$T/$sched.txt")
  ok "$?" "$sched over 2 stages = one process with the same global batch, encoder, decoder and encoder-decoder, to 1e-4 ($c)"
  ok "$(grep -c "stage [01] of 2 schedule $sched m 4 bubble " "$T/$sched.log" | grep -qx 2; echo $?)" \
    "$sched: both ranks report their stage, the schedule and the bubbles ($(grep -m1 bubble "$T/$sched.log"))"
done
# stage 0's planned bytes: GPipe keeps 4 micro-batches in flight, 1F1B 2 (P - s)
g0=$(sed -n 's/.*schedule gpipe .* bytes \([0-9]*\),.*/\1/p' "$T/gpipe.log" | head -1)
f0=$(sed -n 's/.*schedule 1f1b .* bytes \([0-9]*\),.*/\1/p' "$T/1f1b.log" | head -1)
ok "$([ -n "$g0" ] && [ -n "$f0" ] && [ "$f0" -lt "$g0" ]; echo $?)" \
  "1F1B's stage 0 plans fewer activation bytes than GPipe's ($f0 < $g0: 2 micro-batches in flight instead of 4)"

$MPIRUN "$PARE" run tests/mpi/pp.lua out="$T/ck.txt" pipeline=1f1b mb=2 checkpoint=1 </dev/null >"$T/ck.log" 2>&1
ok "$?" "mpirun -n 2: 1f1b with activation checkpointing"
c=$(cmp_files "$T/one.txt" "$T/ck.txt")
ok "$?" "1f1b + checkpoint = one process, to 1e-4 ($c)"

$MPIRUN "$PARE" run tests/mpi/pp.lua out="$T/tie.txt" pipeline=gpipe mb=4 tie=true </dev/null >"$T/tie.log" 2>&1
ok "$?" "mpirun -n 2: gpipe, a decoder whose head is its embedding table (a parameter of both stages)"
c=$(cmp_files "$T/onetie.txt" "$T/tie.txt")
ok "$?" "tied head over 2 stages = one process, to 1e-4 ($c)"

$MPIRUN3 "$PARE" run tests/mpi/pp.lua out="$T/bad.txt" pipeline=gpipe layers=2 </dev/null >"$T/bad.log" 2>&1
rc=$?
ok "$([ "$rc" -ne 0 ] && grep -q "pipeline: 3 stages (ranks) for a model of 2 blocks (layers)" "$T/bad.log"; echo $?)" \
  "3 stages for 2 layers: exit $rc and '$(grep -m1 -o 'pipeline: 3 stages[^;]*' "$T/bad.log")'"

echo "1..$n"
[ "$failed" -eq 0 ]
