"""ckpt_q_ref.py — the Python reader of quantized pare checkpoints that docs/checkpoints.md shows ("Reading
quantized weights from Python"), run by tests/quant_ckpt.lua: numpy and the standard library only.

    python3 tests/ckpt_q_ref.py quantized.safetensors dequantized.safetensors

The first file is m:save of a quantized model; the second the same model after m:apply("dequantize"), saved
with {f32 = true}. Every weight the first stores in a form this reader knows (int8, q8_0, q4_0, q4_1,
int8_group) is dequantized here and must equal pare's dequantized weight bit for bit. Prints one line per
weight and "checked N" at the end; exits 1 on the first difference."""
import json, struct, sys
import numpy as np

# ---- the documented snippet ----
DT = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "U8": np.uint8}

def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        tensors[name] = np.frombuffer(data[b:e], dtype=np.dtype(DT[t["dtype"]]).newbyteorder("<")).reshape(t["shape"])
    return meta, tensors

def dequantize(name, form, t):
    """The f32 weight (N, K) of parameter `name` from its stored form (pare's dequantize pass, bit for bit)."""
    f32 = np.float32
    if form["format"] == "int8":                      # q (N,K) I8, scale (N) F32: w = q * scale per row
        return t[name + ".q"].astype(f32) * t[name + ".scale"][:, None]
    if form["format"] != "qblock":
        raise ValueError(f"{name}: format {form['format']} (simulated: its .sim tensor is the f32 weight)")
    kind, g = form["kind"], int(form["group"])
    qs, d = t[name + ".qs"], t[name + ".scale"].astype(f32)       # d: (N, K/group) fp16 scales
    N = qs.shape[0]
    if kind in ("q8_0", "int8_group"):                # qs (N,K) I8: w = d * q
        return np.repeat(d, g, axis=1) * qs.astype(f32)
    if kind in ("q4_0", "q4_1"):                      # qs (N,K/2) U8, llama.cpp's nibble order in each block of 32:
        b = qs.reshape(N, -1, 16)                     # byte j of a block: element j (low nibble), 16 + j (high)
        u = np.concatenate([b & 15, b >> 4], axis=2).reshape(N, -1).astype(f32)
        d = np.repeat(d, 32, axis=1)
        if kind == "q4_0":
            return d * (u - f32(8))
        return u * d + np.repeat(t[name + ".min"].astype(f32), 32, axis=1)
    raise ValueError(f"{name}: kind {kind}: int4_group interleaves its nibbles for the kernel (src/kernels/qblock.h)")

# ---- the check ----
if __name__ == "__main__":
    meta, t = read_safetensors(sys.argv[1])
    _, ref = read_safetensors(sys.argv[2])
    forms = json.loads(meta["quant"])
    n = 0
    for name, form in forms.items():
        w = dequantize(name, form, t)
        if w.dtype != np.float32 or w.shape != ref[name].shape or not np.array_equal(w.view(np.uint32), ref[name].view(np.uint32)):
            print(f"{name} ({form['format']} {form.get('kind', '')}): differs from pare's dequantize")
            sys.exit(1)
        print(f"{name}: {form['format']} {form.get('kind', '')} {w.shape} equal")
        n += 1
    print(f"checked {n}")
