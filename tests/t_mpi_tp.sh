#!/bin/sh
# t_mpi_tp.sh — tensor parallelism under mpirun (issue 17; docs/distributed.md "Tensor parallelism"): with 2 ranks
# the shards' forward logits, loss and every parameter gradient (gathered from the shards) equal one process's
# replicated model, for a pre-norm encoder, a post-norm encoder with a pooler and dropout, and a causal decoder, and
# so do a few AdamW steps (clipping by the global norm over the shards); sizes that do not divide are errors naming them.
# Skipped, with the reason, when this build has no MPI or mpirun is missing. Run from the repo root:
#   sh tests/t_mpi_tp.sh          (PARE=path/to/pare to test another binary)
MPI_TEST_NAME=mpi-tp
. tests/mpi/lib.sh

# ---- without mpirun: the slicing's errors and a shard of one rank ----
err() { "$PARE" run /dev/stdin 2>&1 <<EOF
local m = pare.model{$1}
print(select(2, pcall(function() $2 end)))
EOF
}
out=$(err "vocab = 12, max_T = 8, d = 24, heads = 3, layers = 1" "return m:tensor_parallel{ranks = 2, rank = 0}")
ok "$(has "$out" 'enc.0.attn: heads=3 is not divisible by ranks=2'; echo $?)" "heads not divisible by the ranks: an error naming both ($out)"
out=$(err "vocab = 12, max_T = 8, d = 16, heads = 4, ffn = 30, layers = 1" "return m:tensor_parallel{ranks = 4, rank = 1}")
ok "$(has "$out" 'enc.0.ffn.up: ffn=30 is not divisible by ranks=4'; echo $?)" "ffn not divisible by the ranks: an error naming both ($out)"
out=$(err "vocab = 12, max_T = 8, d = 16, heads = 2, layers = 1, fused = false" "return m:tensor_parallel{ranks = 2, rank = 0}")
ok "$(has "$out" 'fused=true'; echo $?)" "the unfused attention graph is refused, naming fused=true ($out)"
out=$(err "vocab = 12, max_T = 8, d = 16, heads = 2, layers = 1" "return m:tensor_parallel{ranks = 2, rank = 2}")
ok "$(has "$out" 'rank=2 of ranks=2'; echo $?)" "a rank outside [0, ranks) is refused ($out)"
out=$(err "vocab = 12, max_T = 8, d = 16, heads = 2, layers = 1" \
  "local s = m:tensor_parallel{ranks = 2, rank = 1}; print(s, s:tp_info().split['enc.0.attn.qkv.weight'], s:tp_info().split['enc.0.attn.out.bias']); return s:forward{tokens = {{1, 2, 3}}}")
ok "$(has "$out" 'heads=1' && has "$out" 'rows	replicated' && has "$out" 'sliced for 2 ranks (m:tensor_parallel) but this run has 1'; echo $?)" \
  "a shard of 2 made alone: 1 head of 2, qkv split by rows, out's bias replicated; running it alone is an error naming both sizes ($(echo "$out" | tr '\n' ';'))"
out=$(err "vocab = 12, max_T = 8, d = 16, heads = 2, layers = 1" \
  "local s = m:tensor_parallel{ranks = 1}; local a, b = m:forward{tokens = {{1, 2, 3}}}.logits.values, s:forward{tokens = {{1, 2, 3}}}.logits.values; for i = 1, #a do assert(a[i] == b[i]) end; print('same', #a); return s:save('$T/x.safetensors')")
ok "$(has "$out" 'same	2' && has "$out" 'tensor-parallel shard; gather it' && [ ! -e "$T/x.safetensors" ]; echo $?)" \
  "a shard of one rank computes the model's logits bit for bit; saving a shard is refused ($(echo "$out" | tr '\n' ';'))"

# ---- 2 ranks against one process ----
"$PARE" run tests/mpi/tp_check.lua out="$T/one.txt" >"$T/one.log" 2>&1
ok "$?" "tp_check.lua alone (the replicated models)"
$MPIRUN "$PARE" run tests/mpi/tp_check.lua out="$T/tp.txt" mode=tp </dev/null >"$T/tp.log" 2>&1
rc=$?
ok "$rc" "tp_check.lua under mpirun -n 2 (the shards; exit $rc$([ "$rc" -ne 0 ] && tail -3 "$T/tp.log" | tr '\n' ';'))"
# per tensor (tag): the largest |difference| relative to the tensor's largest |value| in one process
cmp() { # cmp TAG-REGEX TOLERANCE MIN-TAGS -> prints the summary, status: all within
  paste -d' ' "$T/one.txt" "$T/tp.txt" | awk -v re="$1" -v tol="$2" -v want="$3" '
    $1 != $3 { bad = bad + 1; next }
    $1 ~ re { d = $2 - $4; if (d < 0) d = -d; a = $2; if (a < 0) a = -a
              if (!($1 in n)) tags++; n[$1]++; vals++; if (d > md[$1]) md[$1] = d; if (a > ma[$1]) ma[$1] = a }
    END { worst = 0; for (t in n) { r = md[t] / (ma[t] > 0 ? ma[t] : 1); if (r >= worst) { worst = r; at = t } }
          printf "%d tensors, %d values, worst relative difference %.3g (%s)%s", tags, vals, worst, at,
                 bad ? sprintf(", %d lines misaligned", bad) : ""
          exit !(bad == 0 && tags >= want && worst <= tol) }'
}
s=$(cmp '\.logits$' 1e-5 3); ok "$?" "forward logits of the shards = one process, to 1e-5 relative: $s"
s=$(cmp '\.loss$' 1e-5 3); ok "$?" "the loss on 8 examples = one process, to 1e-5 relative: $s"
# trainable tensors: encoder (2 layers) 26, post-norm encoder (1 layer, pooler) 16, decoder (2 layers) 26 ... at least 60
s=$(cmp '\.grad\.' 1e-5 60); ok "$?" "every parameter gradient, gathered from the shards, = one process, to 1e-5 relative: $s"
s=$(cmp '\.grad\..*(qkv|ffn\.up|attn\.out\.weight|ffn\.down\.weight)' 1e-5 24); ok "$?" "of which the split ones (qkv, up rows; out, down columns): $s"
# AdamW's normalisation turns gradients that are 0 up to rounding (the key bias's: softmax ignores it) into
# lr-sized steps, so after training the bound is absolute: max |difference| 1e-5 with lr 3e-3
trained=$(paste -d' ' "$T/one.txt" "$T/tp.txt" | awk '$1 ~ /trained/ { d = $2 - $4; if (d < 0) d = -d; v++; if (d > m) { m = d; at = $1 } }
  END { printf "%d values, max |difference| %.3g (%s)", v, m, at; exit !(v > 60000 && m <= 1e-5) }')
ok "$?" "6 AdamW steps with clipping (and dropout in one model): losses, logits and every weight (gathered with m:tp_gather) = one process, to 1e-5 absolute: $trained"

echo "1..$n"
[ "$failed" -eq 0 ]
