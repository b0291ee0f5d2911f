#!/usr/bin/python3
"""lrp_ref.py — an independent numpy reference for LRP head relevance (tests/test_head_lrp.c).

Reads the dump test_head_lrp.c writes (the graph's nodes with their attributes, every parameter, the
examples' tokens and lengths, eps), runs the forward itself in float64 and propagates the top-1 logit's
relevance with the epsilon-rule written from the explicit contributions z_ij = w_ji x_i of every affine map
(Bach et al. 2015): R_i = sum_j z_ij / (z_j + eps sign z_j) R_j, with LayerNorm's 1/std and attention's
probabilities held constant, activations passing relevance unchanged. Prints the logits of every example
(one line each), then one line per attention layer: the mean relevance of each head (not normalised).

Usage: lrp_ref.py DUMP
"""
import math
import sys

import numpy as np


def read(path):
    nodes, params, ex, eps = [], {}, [], 1e-6
    with open(path) as f:
        lines = iter(f.read().splitlines())
        for line in lines:
            w = line.split()
            if not w:
                continue
            if w[0] == "eps":
                eps = float(w[1])
            elif w[0] == "node":  # node op name out nin in... attrs k=v
                op, name, out, nin = w[1], w[2], int(w[3]), int(w[4])
                ins = [int(x) for x in w[5:5 + nin]]
                rest = w[5 + nin:]
                np_ = int(rest[0])
                ps = rest[1:1 + np_]
                attrs = dict(kv.split("=") for kv in rest[1 + np_:])
                nodes.append(dict(op=op, name=name, out=out, ins=ins, params=ps, a=attrs))
            elif w[0] == "param":  # param name rows cols, then one line of values
                shape = (int(w[2]), int(w[3]))
                vals = np.array([float(x) for x in next(lines).split()], dtype=np.float64)
                params[w[1]] = vals.reshape(shape) if shape[0] > 1 else vals
            elif w[0] == "example":  # example T length tokens...
                ex.append((int(w[2]), [int(x) for x in w[3:]]))
            elif w[0] == "inputs":  # inputs tokens_value lengths_value logits_value
                inputs = [int(x) for x in w[1:]]
    return nodes, params, ex, eps, inputs


def stab(z, eps):
    return np.where(z >= 0, z + eps, z - eps)


def forward(nodes, params, tokens, length, inputs):
    T = len(tokens)
    val = {}
    for n in nodes:
        a, op, x = n["a"], n["op"], [val.get(i) for i in n["ins"]]
        if op == "embedding":
            y = params[n["params"][0]][np.array(tokens)] * (float(a.get("scale", 0)) or 1.0)
        elif op == "posadd":
            off = int(a.get("pos_offset", 0))
            y = x[0] + params[n["params"][0]][off:off + T]
        elif op == "layernorm":
            e = float(a["eps"]) or 1e-5
            mu = x[0].mean(axis=1, keepdims=True)
            var = ((x[0] - mu) ** 2).mean(axis=1, keepdims=True)
            y = (x[0] - mu) / np.sqrt(var + e) * params[n["params"][0]] + params[n["params"][1]]
        elif op == "linear":
            W = params[n["params"][0]]
            y = x[0] @ W.T + (params[n["params"][1]] if len(n["params"]) > 1 else 0)
        elif op == "gelu":
            if int(a["gelu_erf"]):
                y = 0.5 * x[0] * (1 + np.vectorize(math.erf)(x[0] / math.sqrt(2)))
            else:
                y = 0.5 * x[0] * (1 + np.tanh(math.sqrt(2 / math.pi) * (x[0] + 0.044715 * x[0] ** 3)))
        elif op in ("dropout",):
            y = x[0]
        elif op == "add":
            y = x[0] + x[1]
        elif op == "attention":
            H = int(a["heads"])
            C = x[0].shape[1] // 3
            D = C // H
            q, k, v = x[0][:, :C], x[0][:, C:2 * C], x[0][:, 2 * C:]
            P = np.zeros((H, T, T))
            y = np.zeros((T, C))
            for h in range(H):
                s = q[:, h * D:(h + 1) * D] @ k[:, h * D:(h + 1) * D].T / math.sqrt(D)
                s[:, length:] = -np.inf
                if int(a["causal"]):
                    s[np.triu_indices(T, 1)] = -np.inf
                s = np.exp(s - s.max(axis=1, keepdims=True))
                P[h] = s / s.sum(axis=1, keepdims=True)
                y[:, h * D:(h + 1) * D] = P[h] @ v[:, h * D:(h + 1) * D]
            val[("att", n["out"])] = P
        elif op == "pool":
            y = x[0][:1] if int(a["pool"]) == 0 else x[0][:length].mean(axis=0, keepdims=True)
        elif op == "cross_entropy":
            continue
        else:
            raise SystemExit("lrp_ref.py: no forward for op " + op)
        val[n["out"]] = y
    return val


def relevance(nodes, params, val, length, inputs, eps):
    logits = val[inputs[2]]
    R = {inputs[2]: np.zeros_like(logits)}
    top = int(np.argmax(logits[0]))
    R[inputs[2]][0, top] = logits[0, top]
    heads = []

    def add(v, r):
        R[v] = R.get(v, 0) + r

    for n in reversed(nodes):
        if n["out"] not in R:
            continue
        Ro, y, op, a = R[n["out"]], val[n["out"]], n["op"], n["a"]
        x = [val.get(i) for i in n["ins"]]
        if op == "attention":
            H = int(a["heads"])
            C = y.shape[1]
            D = C // H
            heads.append([Ro[:, h * D:(h + 1) * D].sum() for h in range(H)])
            P = val[("att", n["out"])]
            v = x[0][:, 2 * C:]
            Rv = np.zeros_like(v)
            for h in range(H):
                for d in range(D):
                    c = h * D + d
                    # contributions z[t, k] = P[h, t, k] v[k, c] to out[t, c]
                    zc = P[h] * v[None, :, c]
                    Rv[:, c] += (zc / stab(y[:, c], eps)[:, None] * Ro[:, c][:, None]).sum(axis=0)
            Rq = np.zeros_like(x[0])
            Rq[:, 2 * C:] = Rv
            add(n["ins"][0], Rq)
        elif op == "linear":
            W = params[n["params"][0]]
            Rx = np.zeros_like(x[0])
            for t in range(x[0].shape[0]):
                z = W * x[0][t][None, :]  # z[j, i] = w_ji x_i
                Rx[t] = (z / stab(y[t], eps)[:, None] * Ro[t][:, None]).sum(axis=0)
            add(n["ins"][0], Rx)
        elif op == "layernorm":
            e = float(a["eps"]) or 1e-5
            g = params[n["params"][0]]
            X = x[0]
            C = X.shape[1]
            Rx = np.zeros_like(X)
            for t in range(X.shape[0]):
                r = 1 / math.sqrt(((X[t] - X[t].mean()) ** 2).mean() + e)
                Wm = (g[:, None] * r) * (np.eye(C) - 1.0 / C)  # Wm[j, i]
                z = Wm * X[t][None, :]
                Rx[t] = (z / stab(y[t], eps)[:, None] * Ro[t][:, None]).sum(axis=0)
            add(n["ins"][0], Rx)
        elif op == "add":
            add(n["ins"][0], x[0] / stab(y, eps) * Ro)
            add(n["ins"][1], x[1] / stab(y, eps) * Ro)
        elif op == "posadd":
            add(n["ins"][0], x[0] / stab(y, eps) * Ro)
        elif op in ("gelu", "dropout"):
            add(n["ins"][0], Ro)
        elif op == "pool":
            Rx = np.zeros_like(x[0])
            if int(a["pool"]) == 0:
                Rx[0] = Ro[0]
            else:
                Rx[:length] = x[0][:length] / length / stab(y[0], eps) * Ro[0]
            add(n["ins"][0], Rx)
        elif op == "embedding":
            pass
        else:
            raise SystemExit("lrp_ref.py: no rule for op " + op)
    return logits[0], heads[::-1]


def main():
    nodes, params, ex, eps, inputs = read(sys.argv[1])
    total = None
    for length, tokens in ex:
        val = forward(nodes, params, tokens, length, inputs)
        logits, heads = relevance(nodes, params, val, length, inputs, eps)
        print(" ".join("%.10g" % v for v in logits))
        h = np.array(heads)
        total = h if total is None else total + h
    for layer in total / len(ex):
        print(" ".join("%.12g" % v for v in layer))


main()
