#!/usr/bin/python3
"""torch_ref.py — the PyTorch reference side of `make bench`: pare's bench encoder written in torch, timed.

The model is the one experiments/bench.lua times in pare, `pare.model{kind = "encoder", vocab = 30522,
max_T = 128, classes = 2, d = 768, heads = 12, layers = 12, ffn = 3072}` with the builder's defaults
(src/model/transformer.c), op for op:

    tokens (B, T) -> token embedding (V, C) + learned positions (max_T, C)        no embedding LayerNorm
    12 x pre-LN block:  x = x + out(attn(qkv(LN1(x))))                          qkv: one Linear C -> 3C,
                        x = x + down(gelu_tanh(up(LN2(x))))                      [q | k | v], heads of D = C/H
    final LayerNorm (ln_f) -> the first token of each sequence (pool = cls) -> head Linear C -> classes

LayerNorm eps 1e-5; GELU in its tanh form (pare's default `act = "gelu"`, section 2's encoder) or with --act
gelu_erf the exact one (BERT's, pare's `act = "gelu_erf"`, what bench.lua's PyTorch section uses by default);
attention softmax(q k^T / sqrt(D)) v with no mask (every sequence full length, as pare's bench), dropout 0. So the
Linear shapes are pare's (one fused 768 -> 2304 qkv GEMM, not BERT's three 768 -> 768), and the work is the same
FLOP for FLOP.

Why a module written here and not torch.nn.TransformerEncoder: (1) its attention keeps the q/k/v projection
as a bare `in_proj_weight` and its out projection is a `NonDynamicallyQuantizableLinear`, so
`quantize_dynamic(model, {nn.Linear})` would quantize only the two FFN Linears of each block, not the four
that pare's dynamic_int8 quantizes; (2) its inference fast path runs only some configurations (no tanh GELU),
so which kernels run would depend on the options. The module below is plain nn.Linear / nn.LayerNorm /
nn.Embedding, the way Hugging Face's BERT is built, and quantize_dynamic quantizes all its Linears.

Formats (each timed on its own copy of the model):
    fp32   the model as built
    bf16   model.to(torch.bfloat16): every weight and activation bf16 (embeddings, LayerNorm, softmax too);
           pare's `bf16` pass keeps all but the Linears in f32
    int8   torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8): weights int8 per tensor
           (max|w| scale), activations u8 per tensor with a zero point, computed at run time; pare's
           `dynamic_int8` uses per-channel weights and per-token symmetric activations
           (docs/quantization-dynamic.md). Attention, LayerNorm, GELU stay f32 in both.

Timing: forward under torch.inference_mode(); a warm-up as pare's (src/eval/warmup.c: at least `warmup` runs
and `warmup_min_s`, then until the median of the last 3 runs is within `warmup_tol` of the 3 before, at most
`warmup_max_s`), then `repeats` timed forwards; median, percentile-bootstrap interval of the median (`level`),
10th/90th percentiles. torch.set_num_threads(threads) and set_num_interop_threads(1); OMP_NUM_THREADS is set to
`threads` and OPENBLAS_NUM_THREADS to --blas-threads (default `threads`) before torch loads (Debian's torch runs f32
GEMMs on OpenBLAS), and OMP_WAIT_POLICY to --omp-wait if given. Debian's torch has two thread pools, libgomp's and
openblas-pthread's, and at 2 threads each spins while the other works: with the defaults its int8 forward took
108-160 ms against 37-46 ms with --blas-threads 1, and its fp32 one 490 ms against 165 ms with --omp-wait passive
(2 cores, 2026-12-07). bench.lua therefore times every configuration and keeps torch's fastest; glibc's
malloc is told to keep freed memory (tune_malloc: without it torch's b8 forwards page-fault ~1 s each here).

Output: JSON lines on stdout, one object each, flat (numbers, strings, booleans; `samples_ms` a list):
    {"line": "info", "torch": "1.13.0", "threads": 1, "mkldnn": true, "quantized_engine": "onednn", ...}
    {"line": "bench", "format": "bf16", "batch": 1, "T": 128, "threads": 1, "median_ms": ..., "ci_lo_ms": ...,
     "ci_hi_ms": ..., "p10_ms": ..., "p90_ms": ..., "repeats": ..., "warmup_runs": ..., "warmup_stable": ...,
     "samples_ms": [...]}
    {"line": "logits", "format": "fp32", "rows": B, "cols": classes, "values": [...]}   (--forward)
    {"line": "ready", "formats": [...]}   (--serve: the models are built; commands are read from stdin, see serve())
    {"line": "skip", "reason": "..."}   torch cannot be imported (exit status 3)
    {"line": "error", "reason": "..."}  anything else that went wrong (exit status 1)

Usage:
    /usr/bin/python3 bench/torch_ref.py [--formats fp32,bf16,int8] [--batch 1,8] [--T 128] [--threads 1]
        [--repeats 10] [--warmup 3] [--warmup-min-s 0.2] [--warmup-max-s 2] [--layers 12] [--d 768] ...
    /usr/bin/python3 bench/torch_ref.py --weights m.safetensors --forward "1,2,3;4,5,6" --layers 2 --d 64 ...
        loads a checkpoint pare wrote (m:save) and prints the logits of the given token rows: the check that
        this module computes pare's function (tests/torch_ref.lua).
    /usr/bin/python3 bench/torch_ref.py --serve [--threads n] ...  < commands
        builds the models once and times one format and batch per command line `bench <format> <batch> <repeats>
        <warmup> <seed>`: experiments/bench.lua interleaves these with pare's own measurements.

Deliberately not here: torch.compile / TorchScript / IPEX (not in Debian's torch 1.13), attention masks,
BERT's post-LN and token types (bench.lua's encoder has neither), any pare code (this is the independent side).
"""
import argparse
import json
import math
import os
import random
import sys
import time


def emit(obj):
    print(json.dumps(obj, separators=(",", ":")), flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch reference timings of pare's BERT-base-shaped bench encoder")
    p.add_argument("--formats", default="fp32,bf16,int8", help="comma list of fp32, bf16, int8")
    p.add_argument("--batch", default="1,8", help="comma list of batch sizes")
    p.add_argument("--T", type=int, default=128, help="tokens per sequence")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--blas-threads", type=int, default=0,
                   help="OPENBLAS_NUM_THREADS (0: --threads); Debian's openblas-pthread pool spins beside torch's OpenMP")
    p.add_argument("--omp-wait", choices=("default", "passive", "active"), default="default",
                   help="OMP_WAIT_POLICY for torch's libgomp (default: leave it unset)")
    p.add_argument("--repeats", type=int, default=10, help="timed forwards per format and batch")
    p.add_argument("--warmup", type=int, default=3, help="at least this many untimed forwards")
    p.add_argument("--warmup-min-s", type=float, default=0.2, help="warm up at least this long, then until stable")
    p.add_argument("--warmup-max-s", type=float, default=2.0, help="stop warming up after this long")
    p.add_argument("--warmup-tol", type=float, default=0.05, help="stable: last-3 median within this of the 3 before")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the bootstrap interval")
    p.add_argument("--vocab", type=int, default=30522)
    p.add_argument("--max-T", type=int, default=0, help="position table rows (0: T)")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--ffn", type=int, default=3072)
    p.add_argument("--eps", type=float, default=1e-5, help="LayerNorm epsilon")
    p.add_argument("--act", default="gelu", choices=("gelu", "gelu_erf"),
                   help="FFN activation as pare's act option: gelu (tanh form, pare's default) or gelu_erf (BERT's)")
    p.add_argument("--seed", type=int, default=1, help="weights, tokens and bootstrap seed")
    p.add_argument("--weights", default="", help="a pare checkpoint (safetensors, f32) to load instead of random")
    p.add_argument("--forward", default="", help="token rows 'a,b,c;d,e,f': print their logits, no timing")
    p.add_argument("--no-samples", action="store_true", help="leave samples_ms out of the bench lines")
    p.add_argument("--malloc", default="tuned", choices=("tuned", "default"),
                   help="tuned: glibc malloc keeps freed memory (no page faults in timed forwards; see tune_malloc)")
    p.add_argument("--info", action="store_true", help="print the info line (or the skip line) and stop")
    p.add_argument("--serve", action="store_true", help="keep the models; measure one 'bench ...' command per stdin line")
    a = p.parse_args(argv)
    a.formats = [f for f in a.formats.split(",") if f]
    a.batch = [int(b) for b in a.batch.split(",") if b]
    for f in a.formats:
        if f not in ("fp32", "bf16", "int8"):
            p.error("unknown format %r (fp32, bf16, int8)" % f)
    if a.d % a.heads:
        p.error("heads=%d does not divide d=%d" % (a.heads, a.d))
    if a.max_T == 0:
        a.max_T = a.T
    return a


def build(torch, a):
    nn, F = torch.nn, torch.nn.functional
    C, H, D = a.d, a.heads, a.d // a.heads
    scale = 1.0 / math.sqrt(D)
    approx = "tanh" if a.act == "gelu" else "none"

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(C, eps=a.eps)
            self.qkv = nn.Linear(C, 3 * C)
            self.out = nn.Linear(C, C)
            self.ln2 = nn.LayerNorm(C, eps=a.eps)
            self.up = nn.Linear(C, a.ffn)
            self.down = nn.Linear(a.ffn, C)

        def forward(self, x):  # x (B, T, C)
            B, T, _ = x.shape
            qkv = self.qkv(self.ln1(x)).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # (3, B, H, T, D)
            q, k, v = qkv[0], qkv[1], qkv[2]
            att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * scale, dim=-1)  # (B, H, T, T)
            y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, C)  # (B, T, C)
            x = x + self.out(y)
            return x + self.down(F.gelu(self.up(self.ln2(x)), approximate=approx))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(a.vocab, C)  # (V, C)
            self.pos = nn.Embedding(a.max_T, C)  # (max_T, C)
            self.blocks = nn.ModuleList([Block() for _ in range(a.layers)])
            self.ln_f = nn.LayerNorm(C, eps=a.eps)
            self.head = nn.Linear(C, a.classes)

        def forward(self, tokens):  # tokens (B, T) int64 -> logits (B, classes)
            T = tokens.shape[1]
            x = self.tok(tokens) + self.pos.weight[:T]  # (B, T, C)
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln_f(x)[:, 0])  # pool = cls: (B, C)

    torch.manual_seed(a.seed)
    m = Encoder()
    # pare's initialisation (normal 0.02, residual projections 0.02/sqrt(2L), zero biases), for realistic values
    with torch.no_grad():
        resid = 0.02 / math.sqrt(2.0 * max(a.layers, 1))
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln" in name or name.startswith("ln_f"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, resid if name.endswith(("out.weight", "down.weight")) else 0.02)
    return m.eval()


def load_pare(torch, m, path, a):
    """Copy a pare checkpoint's f32 tensors (safetensors) into the module, by pare's names."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        blob = f.read()
    names = {"emb.tok.weight": "tok.weight", "emb.pos.weight": "pos.weight", "ln_f.weight": "ln_f.weight",
             "ln_f.bias": "ln_f.bias", "head.weight": "head.weight", "head.bias": "head.bias"}
    sub = {"ln1": "ln1", "ln2": "ln2", "attn.qkv": "qkv", "attn.out": "out", "ffn.up": "up", "ffn.down": "down"}
    for l in range(a.layers):
        for pn, tn in sub.items():
            for s in ("weight", "bias"):
                names["enc.%d.%s.%s" % (l, pn, s)] = "blocks.%d.%s.%s" % (l, tn, s)
    params = dict(m.named_parameters())
    done = set()
    for key, meta in header.items():
        if key == "__metadata__" or key not in names:
            continue
        if meta["dtype"] != "F32":
            raise ValueError("%s: %s is %s, expected F32" % (path, key, meta["dtype"]))
        lo, hi = meta["data_offsets"]
        t = torch.frombuffer(bytearray(blob[lo:hi]), dtype=torch.float32).reshape(meta["shape"])
        p = params[names[key]]
        if tuple(p.shape) != tuple(t.shape):
            t = t.reshape(p.shape)  # pare stores biases and LayerNorm vectors as (N, 1)
        with torch.no_grad():
            p.copy_(t)
        done.add(names[key])
    missing = sorted(set(params) - done)
    if missing:
        raise ValueError("%s: no tensor for %s (is it a pre-LN encoder with %d layers?)" % (path, ", ".join(missing[:4]),
                                                                                            a.layers))


def as_format(torch, base, fmt):
    if fmt == "fp32":
        return base
    if fmt == "bf16":
        import copy
        return copy.deepcopy(base).to(torch.bfloat16)
    return torch.ao.quantization.quantize_dynamic(base, {torch.nn.Linear}, dtype=torch.qint8)


def tune_malloc():
    """glibc's malloc keeps what torch frees (mmap threshold 32 MB, the most it accepts on 64 bits; trim threshold
    1 GB) instead of handing it back to the kernel and faulting it in again. Why: with glibc's defaults every fp32 or
    int8 forward at batch 8 took 40,000-75,000 page faults (its 6-13 MB activations are mmapped, or the heap top is
    trimmed and regrown, on every call), ~1 s of a 2-3 s fp32 forward and of a 1.5-2 s int8 one on this machine;
    tuned, none in the steady state (fp32 b8 3.0 -> 2.0 s, int8 b8 1.7-2.0 -> 0.44 s at 1 thread; b1 and bf16 hardly
    move). Tuning the allocator (or preloading jemalloc / tcmalloc) is standard advice for PyTorch on CPUs, so the
    reference gets it. pare plans its activations once per executor and takes no page faults in its timed forwards.
    --malloc default keeps glibc's behaviour."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    except (OSError, AttributeError):
        ok = False
    return "mmap_threshold=32MB,trim_threshold=1GB" if ok else "default (mallopt failed)"


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def quantile(v, q):  # linear interpolation between order statistics (GSL's, numpy's default)
    s = sorted(v)
    h = (len(s) - 1) * q
    i = int(math.floor(h))
    return s[i] if i + 1 >= len(s) else s[i] + (h - i) * (s[i + 1] - s[i])


def bootstrap_ci(v, level, seed, resamples=2000):
    if len(v) == 1:
        return v[0], v[0]
    rng = random.Random(seed)
    meds = [median([rng.choice(v) for _ in v]) for _ in range(resamples)]
    return quantile(meds, (1 - level) / 2), quantile(meds, 1 - (1 - level) / 2)


def timed(torch, model, tokens):
    t0 = time.perf_counter_ns()
    model(tokens)
    return (time.perf_counter_ns() - t0) * 1e-6


def warmup(torch, model, tokens, a, min_runs):
    """pare's warm-up (src/eval/warmup.c) with window 3."""
    k, ms, t0, stable = 3, [], time.perf_counter(), False
    while True:
        spent = time.perf_counter() - t0
        if len(ms) >= min_runs:
            if spent >= a.warmup_min_s and len(ms) >= 2 * k:
                prev, last = median(ms[-2 * k:-k]), median(ms[-k:])
                if abs(last - prev) <= a.warmup_tol * prev:
                    stable = True
                    break
            if spent >= a.warmup_max_s:
                break
        ms.append(timed(torch, model, tokens))
    return len(ms), stable, (ms[0] if ms else float("nan"))


def main(argv):
    a = parse_args(argv)
    # the thread count is set before torch loads: its OpenMP pool and OpenBLAS (Debian's torch calls OpenBLAS
    # for f32 GEMMs; openblas-pthread sizes its own pool from these variables when it is loaded)
    env_before = os.environ.get("OMP_NUM_THREADS", "")
    malloc = tune_malloc() if a.malloc == "tuned" else "default"
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads or a.threads)
    if a.omp_wait != "default":
        os.environ["OMP_WAIT_POLICY"] = a.omp_wait
    else:
        os.environ.pop("OMP_WAIT_POLICY", None)
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install raising something else
        emit({"line": "skip", "reason": "cannot import torch with %s: %s" % (sys.executable, e)})
        return 3
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process
    info = {"line": "info", "torch": torch.__version__, "python": sys.executable, "threads": torch.get_num_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "quantized_engine": torch.backends.quantized.engine, "omp_num_threads_given": env_before,
            "blas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]), "omp_wait": a.omp_wait,
            "layers": a.layers, "d": a.d, "heads": a.heads, "ffn": a.ffn, "vocab": a.vocab, "T": a.T,
            "act": a.act, "attention": "matmul+softmax+matmul", "malloc": malloc}
    emit(info)
    if a.info:
        return 0
    base = build(torch, a)
    if a.weights:
        load_pare(torch, base, a.weights, a)
    if a.forward:
        rows = [[int(t) for t in r.split(",") if t] for r in a.forward.split(";") if r]
        tokens = torch.tensor(rows, dtype=torch.int64)
        for fmt in a.formats:
            m = as_format(torch, base, fmt)
            with torch.inference_mode():
                y = m(tokens).float()
            emit({"line": "logits", "format": fmt, "rows": y.shape[0], "cols": y.shape[1],
                  "values": [float(v) for v in y.reshape(-1)]})
        return 0
    if a.serve:
        return serve(torch, base, a)
    gen = torch.Generator().manual_seed(a.seed)
    for fmt in a.formats:
        m = as_format(torch, base, fmt)
        for b in a.batch:
            emit(measure(torch, m, fmt, b, a, a.warmup, a.seed, gen))
        del m
    return 0


def measure(torch, m, fmt, b, a, min_warmup, seed, gen):
    """One bench line: format fmt at batch b, after a warm-up of at least min_warmup runs."""
    tokens = torch.randint(1, a.vocab, (b, a.T), generator=gen, dtype=torch.int64)
    with torch.inference_mode():
        runs, stable, first = warmup(torch, m, tokens, a, min_warmup)
        ms = [timed(torch, m, tokens) for _ in range(a.repeats)]
    lo, hi = bootstrap_ci(ms, a.level, seed)
    r4 = lambda v: round(v, 4)
    row = {"line": "bench", "format": fmt, "batch": b, "T": a.T, "threads": torch.get_num_threads(),
           "median_ms": r4(median(ms)), "ci_lo_ms": r4(lo), "ci_hi_ms": r4(hi), "p10_ms": r4(quantile(ms, 0.1)),
           "p90_ms": r4(quantile(ms, 0.9)), "repeats": len(ms), "warmup_runs": runs, "warmup_stable": stable,
           "warmup_first_ms": r4(first), "torch": torch.__version__}
    if not a.no_samples:
        row["samples_ms"] = [r4(v) for v in ms]
    return row


def serve(torch, base, a):
    """--serve: every format of --formats built once and kept; then one command per stdin line, one JSON line back:
         bench <format> <batch> <repeats> <warmup> <seed>   -> a bench line (warm-up: at least <warmup> runs, and
                                                             --warmup-min-s / --warmup-max-s / --warmup-tol)
         quit (or end of input)                              -> exit 0
       so that a caller can interleave single measurements with its own (experiments/bench.lua)."""
    models = {fmt: as_format(torch, base, fmt) for fmt in a.formats}
    gens = {}
    emit({"line": "ready", "formats": a.formats})
    while True:
        cmd = sys.stdin.readline()
        w = cmd.split()
        if not cmd or w == ["quit"]:
            return 0
        try:
            if len(w) != 6 or w[0] != "bench" or w[1] not in models:
                raise ValueError("expected 'bench <%s> <batch> <repeats> <warmup> <seed>' or 'quit', got %r"
                                 % ("|".join(a.formats), cmd.strip()))
            b, reps, warm, seed = int(w[2]), int(w[3]), int(w[4]), int(w[5])
            if b < 1 or reps < 1 or warm < 0:
                raise ValueError("batch and repeats must be >= 1, warmup >= 0: %r" % cmd.strip())
        except ValueError as e:
            emit({"line": "error", "reason": str(e)})
            continue
        a.repeats = reps
        gen = gens.setdefault(seed, torch.Generator().manual_seed(seed))
        emit(measure(torch, models[w[1]], w[1], b, a, warm, seed, gen))

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SystemExit:
        raise
    except BaseException as e:  # one line the caller can parse, not a traceback in the table
        emit({"line": "error", "reason": "%s: %s" % (type(e).__name__, e)})
        sys.exit(1)
