"""The transformer ops of lowprec.autograd (issue 16) against plain NumPy float32.

Run from the repository root, on one thread::

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        python benchmarks/bench_transformer_ops.py [--repeats 200]

Each row times one op's forward and backward on the shapes of a small GPT
(batch 8, 64 positions, 4 heads of 16 channels, vocabulary 65) under a policy,
and the same computation written in plain NumPy float32 (the baseline, no
rounding, no graph). The calls are interleaved, engine then baseline, and the
medians are compared: the ratio is engine / baseline in the same run. A ratio
near 1 means the engine's bookkeeping and rounding cost little next to the
arithmetic; the batched matmul's fp16_mixed row is the fast path (float32 BLAS
plus one rounding) that must stay close to fp32's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lowprec import autograd as ag  # noqa: E402
from lowprec.autograd import Tensor  # noqa: E402

B, T, H, D, V = 8, 64, 4, 16, 65
C = H * D
F = np.float32
RNG = np.random.default_rng(0)


def _t(shape, policy, scale=1.0):
    data = RNG.standard_normal(shape) * scale
    return Tensor(data, policy=policy, requires_grad=True)


def _ones(t):
    return np.ones(t.shape, dtype=t.dtype)


def linear_case(policy):
    x, w = _t((B, T, C), policy), _t((C, 3 * C), policy, 0.1)
    xa, wa = x.data.astype(F), w.data.astype(F)

    def engine():
        y = ag.matmul(x, w)
        y.backward(_ones(y))

    def numpy():
        y = xa @ wa
        g = np.ones_like(y)
        _ = g @ wa.T, xa.reshape(-1, C).T @ g.reshape(-1, 3 * C)

    return engine, numpy


def attention_case(policy):
    q, k = _t((B, H, T, D), policy), _t((B, H, T, D), policy)
    qa, ka = q.data.astype(F), k.data.astype(F)

    def engine():
        s = ag.matmul(q, k.transpose(0, 1, 3, 2))
        s.backward(_ones(s))

    def numpy():
        s = qa @ ka.transpose(0, 1, 3, 2)
        g = np.ones_like(s)
        _ = g @ ka, (qa.transpose(0, 1, 3, 2) @ g).transpose(0, 1, 3, 2)

    return engine, numpy


def softmax_case(policy):
    x = _t((B, H, T, T), policy)
    xa = x.data.astype(F)
    visible = np.tri(T, T, dtype=bool)

    def engine():
        y = ag.softmax(x, causal=True)
        y.backward(_ones(y))

    def numpy():
        z = np.where(visible, xa, F(-np.inf))
        e = np.exp(z - z.max(-1, keepdims=True))
        p = e / e.sum(-1, keepdims=True)
        g = np.ones_like(p)
        _ = p * (g - (g * p).sum(-1, keepdims=True))

    return engine, numpy


def embedding_case(policy):
    w = _t((V, C), policy)
    idx = RNG.integers(0, V, (B, T))
    wa = w.data.astype(F)

    def engine():
        y = ag.embedding(w, idx)
        y.backward(_ones(y))

    def numpy():
        y = wa[idx]
        out = np.zeros_like(wa)
        np.add.at(out, idx.reshape(-1), np.ones_like(y).reshape(-1, C))

    return engine, numpy


def gelu_case(policy, approximate):
    x = _t((B, T, 4 * C), policy)
    xa = x.data.astype(F)
    c, k = F(np.sqrt(2 / np.pi)), F(0.044715)

    def engine():
        y = ag.gelu(x, approximate)
        y.backward(_ones(y))

    def numpy():  # the tanh form in float32 is the baseline of both rows
        t = np.tanh(c * (xa + k * (xa * xa * xa)))
        _ = F(0.5) * xa * (F(1) + t), F(0.5) * (F(1) + t)

    return engine, numpy


def rms_norm_case(policy):
    x, w = _t((B, T, C), policy), Tensor(np.ones(C), policy=policy, requires_grad=True)
    xa = x.data.astype(F)

    def engine():
        y = ag.rms_norm(x, w)
        y.backward(_ones(y))

    def numpy():
        rstd = F(1) / np.sqrt((xa * xa).mean(-1, keepdims=True) + F(1e-6))
        xhat = xa * rstd
        g = np.ones_like(xhat)
        _ = (
            rstd * (g - xhat * (g * xhat).mean(-1, keepdims=True)),
            (g * xhat).sum((0, 1)),
        )

    return engine, numpy


CASES = [
    ("matmul (B,T,C)@(C,3C)", linear_case),
    ("matmul (B,H,T,D)@(B,H,D,T)", attention_case),
    ("softmax causal (B,H,T,T)", softmax_case),
    ("embedding (V,C)[B,T]", embedding_case),
    ("gelu erf (B,T,4C)", lambda p: gelu_case(p, "none")),
    ("gelu tanh (B,T,4C)", lambda p: gelu_case(p, "tanh")),
    ("rms_norm (B,T,C)", rms_norm_case),
]
POLICIES = ("fp32", "fp16_mixed", "bf16_mixed", "fp16_naive")


def _median_ratio(engine, numpy, repeats):
    engine(), numpy()  # first calls: JIT caches, allocations
    te, tn = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine()
        t1 = time.perf_counter()
        numpy()
        t2 = time.perf_counter()
        te.append(t1 - t0)
        tn.append(t2 - t1)
    return float(np.median(te)), float(np.median(tn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(
        f"shapes: B={B} T={T} heads={H} head_dim={D} vocab={V}; medians of "
        f"{args.repeats} interleaved calls; ratio = engine / NumPy float32\n"
    )
    print("| op (forward + backward) | " + " | ".join(POLICIES) + " |")
    print("|---|" + "---|" * len(POLICIES))
    for name, make in CASES:
        cells = []
        for policy in POLICIES:
            te, tn = _median_ratio(*make(policy), args.repeats)
            cells.append(f"{te * 1e6:.0f} us, {te / tn:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
