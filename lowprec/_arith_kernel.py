"""Numba kernels for elementwise arithmetic: an error-free transformation, then
one rounding of the exact (hi, lo) pair by the rounding kernel's scalar routine.

Private; :mod:`lowprec.arithmetic` validates and calls :func:`arith_kernel`.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from lowprec._eft import div_pair, fma_pair, sqrt_pair, two_prod, two_sum
from lowprec._jit import jit_inline, jit_parallel
from lowprec._pair_round import count_one, round_bits
from lowprec.modes import RD

ADD, MUL, DIV, SQRT, FMA = range(5)


@jit_inline
def exact_pair(op, mode, x, y, z):
    """The float64 result of ``op`` and its error term."""
    if op == ADD:
        if mode == RD:
            # an exact zero sum is -0 when rounding down: negate, add, negate back
            hi, lo = two_sum(-x, -y)
            return -hi, -lo
        return two_sum(x, y)
    if op == MUL:
        return two_prod(x, y)
    if op == DIV:
        return div_pair(x, y)
    if op == SQRT:
        return sqrt_pair(x)
    if mode == RD:
        hi, lo = fma_pair(-x, y, -z)
        return -hi, -lo
    return fma_pair(x, y, z)


_KERNELS: dict[tuple[int, int, bool], object] = {}


def arith_kernel(op: int, mode: int, counting: bool):
    """The compiled loop for one operation and rounding mode (closure constants)."""
    key = (op, mode, counting)
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernel(op, mode, counting)
    return _KERNELS[key]


def _make_kernel(op: int, mode: int, counting: bool):
    @jit_parallel
    def kernel(x, y, z, out, plan, seed, words, rshift, rmask):
        n = out.size
        n_inexact = 0
        n_underflow = 0
        n_flushed = 0
        n_overflow = 0
        n_saturated = 0
        n_nan = 0
        for i in prange(n):
            hi, lo = exact_pair(op, mode, x[i], y[i], z[i])
            b = np.float64(hi).view(np.int64)
            rb, overflow = round_bits(b, lo, i, plan, mode, seed, words, rshift, rmask)
            out[i] = np.int64(rb).view(np.float64)
            if counting:
                c = count_one(b, lo, rb, overflow, plan)
                n_inexact += c[0]
                n_underflow += c[1]
                n_flushed += c[2]
                n_overflow += c[3]
                n_saturated += c[4]
                n_nan += c[5]
        return n_inexact, n_underflow, n_flushed, n_overflow, n_saturated, n_nan

    return kernel
