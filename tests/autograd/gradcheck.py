"""Helpers of the autograd tests: fp64 policies, bit comparisons and a
central-difference gradient check (importable as ``gradcheck`` from the test files
of this folder)."""

from __future__ import annotations

import numpy as np

from lowprec.amp.policy import as_policy
from lowprec.autograd import Tensor

F = np.float32
FP64 = as_policy("fp64")
FP64_ALL = FP64.replace(
    name="fp64_all", fp32_ops={"softmax", "cross_entropy", "layer_norm", "reduction"}
)


def bits(x):
    x = np.asarray(x)
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(bits(a), bits(b))


def numeric_grad(f, arrays, r, h=1e-6):
    """Central differences of sum(f(arrays) * r) with respect to each array."""
    grads = []
    for arr in arrays:
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            plus = np.sum(f(arrays).data * r)
            arr[idx] = old - h
            minus = np.sum(f(arrays).data * r)
            arr[idx] = old
            g[idx] = (plus - minus) / (2 * h)
        grads.append(g)
    return grads


def check_grad(fn, *arrays, policy=FP64, rtol=1e-6, atol=1e-8, seed=0):
    arrays = [np.array(a, dtype=np.float64) for a in arrays]

    def f(arrs):
        return fn(*[Tensor(a, policy=policy, requires_grad=True) for a in arrs])

    tensors = [Tensor(a, policy=policy, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(r)
    expected = numeric_grad(f, arrays, r)
    for t, e in zip(tensors, expected, strict=True):
        assert t.grad is not None and t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad, e, rtol=rtol, atol=atol)
        np.testing.assert_array_equal(t.raw_grad, t.grad)  # fp64: no rounding


def away_from_zero(shape, seed):
    x = np.random.default_rng(seed).uniform(0.2, 2.0, shape)
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], shape)
    return x * signs
