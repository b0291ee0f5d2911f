#!/usr/bin/python3
"""torch_quant_ref.py IN OUT — PyTorch's side of tests/test_torch_quant.c.

IN (little-endian): int32 ncases; per case int32 N, K, M, then float32 W (N,K), b (N), x (M,K).
For each case, an nn.Linear holding W and b goes through
torch.ao.quantization.quantize_dynamic(..., {nn.Linear}, dtype=torch.qint8) (the default engine of this torch)
and OUT gets, per case: float64 weight q_scale, int32 weight q_zero_point, int8 weight int_repr (N,K),
float64 activation scale and int32 zero point from torch._choose_qparams_per_tensor(x, reduce_range=True),
float32 y = the quantized Linear of x (M,N). Line 1 of stdout: the torch version and engine.
Exit 3 (and a line saying why) if torch cannot be imported.
"""
import struct
import sys

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001 - any import failure means "skip"
    print("skip: cannot import torch/numpy: %s" % e)
    sys.exit(3)


def main(inp, out):
    torch.manual_seed(0)
    data = open(inp, "rb").read()
    (n,) = struct.unpack_from("<i", data, 0)
    off = 4
    res = bytearray()
    for _ in range(n):
        N, K, M = struct.unpack_from("<iii", data, off)
        off += 12
        W = np.frombuffer(data, "<f4", N * K, off).reshape(N, K); off += 4 * N * K
        b = np.frombuffer(data, "<f4", N, off); off += 4 * N
        x = np.frombuffer(data, "<f4", M * K, off).reshape(M, K); off += 4 * M * K
        lin = torch.nn.Linear(K, N)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)[0]
        w, _ = q._packed_params._weight_bias()
        xt = torch.from_numpy(x.copy())
        ascale, azp = torch._choose_qparams_per_tensor(xt, True)
        with torch.no_grad():
            y = q(xt).numpy().astype("<f4")
        res += struct.pack("<di", w.q_scale(), w.q_zero_point())
        res += w.int_repr().numpy().astype("<i1").tobytes()
        res += struct.pack("<di", ascale, azp)
        res += y.tobytes()
    open(out, "wb").write(res)
    print("torch %s engine %s" % (torch.__version__, torch.backends.quantized.engine))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
