"""gp_ref.py — the independent reference of tests/gp.lua: Gaussian-process posterior, log marginal likelihood,
the hyperparameter grid's choice and expected improvement, written from Rasmussen & Williams (eq. 2.25-2.26, 2.30)
in numpy with a direct solve and slogdet (not a Cholesky: a different route to the same numbers).

usage: gp_ref.py FILE — FILE holds lines "kernel ell noise" (ell/noise 0: choose on the grid), "X n d" + n rows,
"y n" + values, "Xs m" + m rows, "ei mean sd best xi" lines. Prints "mean ...", "var ...", "lml v", "ell v",
"noise v", "ei v" lines.
"""
import math
import sys

import numpy as np


def kern(kind, A, B, ell):
    r2 = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    if kind == "rbf":
        return np.exp(-0.5 * r2 / ell**2)
    s = np.sqrt(5.0 * r2) / ell
    return (1 + s + s * s / 3) * np.exp(-s)


def lml(kind, X, ys, ell, noise):
    K = kern(kind, X, X, ell) + noise * np.eye(len(X))
    sign, logdet = np.linalg.slogdet(K)
    if sign <= 0:
        return None
    return -0.5 * ys @ np.linalg.solve(K, ys) - 0.5 * logdet - 0.5 * len(X) * math.log(2 * math.pi)


def main():
    tok = open(sys.argv[1]).read().split()
    kind, ell, noise = tok[0], float(tok[1]), float(tok[2])
    i = 3
    assert tok[i] == "X"; n, d = int(tok[i + 1]), int(tok[i + 2]); i += 3
    X = np.array([float(v) for v in tok[i:i + n * d]]).reshape(n, d); i += n * d
    assert tok[i] == "y"; i += 2
    y = np.array([float(v) for v in tok[i:i + n]]); i += n
    assert tok[i] == "Xs"; m = int(tok[i + 1]); i += 2
    Xs = np.array([float(v) for v in tok[i:i + m * d]]).reshape(m, d); i += m * d
    mu, sd = y.mean(), y.std()
    sd = sd if sd > 1e-300 else 1.0
    ys = (y - mu) / sd
    ells = [ell] if ell > 0 else [0.03 * 100 ** (b / 23) for b in range(24)]
    noises = [noise] if noise > 0 else [1e-6, 1e-4, 1e-3, 1e-2, 0.1]
    best = None
    for nz in noises:
        for e in ells:
            v = lml(kind, X, ys, e, nz)
            if v is not None and (best is None or v > best[0]):
                best = (v, e, nz)
    v, e, nz = best
    K = kern(kind, X, X, e) + nz * np.eye(n)
    Ks = kern(kind, Xs, X, e)
    mean = mu + sd * Ks @ np.linalg.solve(K, ys)
    var = sd * sd * (1 - np.einsum("ij,ji->i", Ks, np.linalg.solve(K, Ks.T)))
    print("mean", " ".join("%.17g" % x for x in mean))
    print("var", " ".join("%.17g" % x for x in var))
    print("lml %.17g" % v)
    print("ell %.17g" % e)
    print("noise %.17g" % nz)
    while i < len(tok):
        assert tok[i] == "ei"
        mean_, sd_, best_, xi = (float(t) for t in tok[i + 1:i + 5]); i += 5
        imp = best_ - xi - mean_
        if sd_ > 0:
            z = imp / sd_
            val = imp * 0.5 * math.erfc(-z / math.sqrt(2)) + sd_ * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        else:
            val = max(imp, 0.0)
        print("ei %.17g" % val)


main()
