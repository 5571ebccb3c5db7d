"""Numba kernels for elementwise arithmetic: an error-free transformation, then
one rounding of the exact (hi, lo) pair by the rounding kernel's scalar routine.

Formats with 11 exponent bits (fp64, and custom ones such as 40 bits of precision
with fp64's range) reach float64's own limits: an error term below float64's
subnormals is lost, and a float64 result can overflow where the exact one is
finite. Such elements (operands or result outside ``[2**-900, 2**900]``) take a
slower path: the operands are scaled by powers of two (exactly) so that the EFT
works near 1, and the pair is rounded to the format scaled by the same power
(:func:`_scaled_plan`), then scaled back (exact: the result is a format value).

Private; :mod:`lowprec.arithmetic` validates and calls :func:`arith_kernel`.
"""

from __future__ import annotations

import numpy as np

from lowprec import _eft, _jit, _pair_round, modes, randomness
from lowprec._eft import div_pair, fma_pair, sqrt_pair, two_prod, two_sum
from lowprec._jit import jit, jit_inline
from lowprec._pair_round import count_one, round_bits
from lowprec._round_kernel import RoundPlan, _source_stamp
from lowprec.modes import RD

ADD, MUL, DIV, SQRT, FMA = range(5)

# Numba's cache checks only this file; the kernels keep a stamp of the helpers they
# inline in their closure, which the cache key includes (see _round_kernel).
_HELPERS = _source_stamp(_eft, _pair_round, _jit, modes, randomness)

_BAND_LO = 2.0**-900  # inside [2**-900, 2**900] every EFT below is exact
_BAND_HI = 2.0**900
_FAR = 300  # a term 2**-300 below the other only counts by its sign (a sticky bit)
_F64_MAX_BITS = 0x7FEFFFFFFFFFFFFF


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
    if np.isinf(z) and np.isfinite(x) and np.isfinite(y):
        return z, 0.0  # a finite product (even one float64 overflows) plus inf
    if mode == RD:
        hi, lo = fma_pair(-x, y, -z)
        return -hi, -lo
    return fma_pair(x, y, z)


@jit_inline
def _outside(v):
    """Whether a finite v is nonzero and outside the band where EFTs are exact."""
    a = abs(v)
    return a != 0 and (a < _BAND_LO or a > _BAND_HI)


@jit_inline
def _risky(op, x, y, z, hi):
    """Whether the float64 EFT may have over- or underflowed for these operands."""
    bad_hi = not np.isfinite(hi) or _outside(hi)
    if op == ADD:  # TwoSum is exact down to float64's subnormals; only overflow
        return np.isfinite(x) and np.isfinite(y) and not np.isfinite(hi)
    if op == SQRT:
        return np.isfinite(x) and x > 0 and _outside(x)
    if not (np.isfinite(x) and np.isfinite(y) and x != 0 and y != 0):
        return False  # zeros and specials: the fast path is exact
    if op == MUL or op == DIV:
        return _outside(x) or _outside(y) or bad_hi or hi == 0
    # FMA
    if not np.isfinite(z):
        return False
    p = x * y
    return _outside(x) or _outside(y) or _outside(z) or _outside(p) or p == 0 or bad_hi


@jit_inline
def _split(v):
    """(m, e) with v = m * 2**e, 1 <= |m| < 2, for a finite nonzero v."""
    shift = 0
    if abs(v) < 2.0**-1022:
        v = v * 2.0**64  # a subnormal: normalize first (exact)
        shift = 64
    b = np.float64(v).view(np.int64)
    e = ((b >> 52) & 0x7FF) - 1023
    m = np.int64((b & ~np.int64(0x7FF0000000000000)) | (np.int64(1023) << 52))
    return m.view(np.float64), e - shift


@jit_inline
def _pow2(k):
    """2**k for -1022 <= k <= 1023."""
    return np.int64((k + 1023) << 52).view(np.float64)


@jit_inline
def _ldexp(v, k):
    """v * 2**k, exact whenever the result is a float64 (steps that move toward
    the result, so no intermediate loses bits)."""
    while k != 0:
        step = min(max(k, -1022), 1023)
        v = v * _pow2(step)
        k -= step
    return v


@jit_inline
def _scaled_operands(op, x, y, z):
    """Operands near 1 and E with op(x, y, z) = op(xs, ys, zs) * 2**E, exactly but
    for a term far below the other in an fma, kept as a same-signed 2**-300."""
    if op == ADD:  # overflow: both operands are above 2**969, so halving is exact
        return x * 0.5, y * 0.5, z, 1
    if op == SQRT:
        m, e = _split(x)
        if e % 2 != 0:
            m, e = m * 2.0, e - 1
        return m, y, z, e // 2
    mx, ex = _split(x)
    my, ey = _split(y)
    if op == MUL:
        return mx, my, z, ex + ey
    if op == DIV:
        return mx, my, z, ex - ey
    p_e = ex + ey
    if z == 0:
        return mx, my, z, p_e
    mz, ez = _split(z)
    e = max(p_e, ez)
    xs = _ldexp(mx, p_e - e) if p_e - e > -_FAR else np.copysign(2.0**-_FAR, mx)
    zs = _ldexp(mz, ez - e) if ez - e > -_FAR else np.copysign(2.0**-_FAR, mz)
    return xs, my, zs, e


@jit_inline
def _scaled_plan(plan, e):
    """The plan of the format scaled by 2**-e (values of the format times 2**-e).

    Exponent limits that fall outside float64 are clamped where the clamping
    cannot matter for a value in [2**-70 T, 8 max] scaled: T (the smallest value)
    stays at least 2**-1000 and max at most float64's.
    """
    t_log = plan.tiny_shift - 1011
    n_log = (plan.smallest_normal >> 52) - 1023
    c = max(0, -1000 - (t_log - e))
    t_s = t_log - e + c
    n_s = n_log - e + c
    max_exp = (plan.max >> 52) - e
    max_s = plan.max - (e << 52) if max_exp <= 2046 else _F64_MAX_BITS
    return RoundPlan(
        plan.d0,
        (n_s + 1023) if plan.eminb > 0 else 0,
        np.int64(t_s + 1023) << 52,
        np.int64(t_s + 1022) << 52,
        1011 + t_s,
        max_s,
        plan.ovf_pos,
        plan.ovf_neg,
        plan.inf_res,
        plan.sat_pos,
        plan.sat_neg,
        plan.sat_inf,
        plan.signed_zero,
        np.int64(n_s + 1023) << 52,
    )


@jit_inline
def scaled_pair(op, mode, x, y, z, plan):
    """``(hi, lo, e)``: the exact result is ``(hi + lo) * 2**e`` with ``1 <= |hi| <
    2`` (or ``hi`` = 0, e = 0), computed on operands scaled near 1. A result far
    below the smallest value T or far above max is replaced by one (2**-70 T or
    8 * 2**floor(log2 max), same sign) that rounds the same in every mode, with the
    same flags, stochastic rounding included (its fraction is below 2**-64)."""
    xs, ys, zs, e = _scaled_operands(op, x, y, z)
    hi, lo = exact_pair(op, mode, xs, ys, zs)
    if hi == 0:
        return hi, lo, 0
    m, k = _split(hi)
    lo = _ldexp(lo, -k)
    e = e + k
    t_log = plan.tiny_shift - 1011
    max_log = (plan.max >> 52) - 1023
    if e < t_log - 70:
        return np.copysign(1.0, hi), 0.0, t_log - 70
    if e > max_log + 3:
        return np.copysign(1.0, hi), 0.0, max_log + 3
    return m, lo, e


_KERNELS: dict[int, object] = {}


def arith_kernel(op: int):
    """The compiled loop for one operation (a closure constant).

    The rounding mode and whether to count are run-time arguments: one kernel
    per operation compiles in seconds, where one per (operation, mode, counting)
    made a first use of every mode cost minutes of compilation. The per-element
    branches on them are predictable, so the loop runs at nearly the same speed.
    """
    if op not in _KERNELS:
        _KERNELS[op] = _make_kernel(op)
    return _KERNELS[op]


def _make_kernel(op: int):
    helpers = _HELPERS

    @jit
    def kernel(x, y, z, out, plan, mode, counting, seed, words, rshift, rmask):
        n = out.size
        n_inexact = 0
        n_underflow = 0
        n_flushed = 0
        n_overflow = 0
        n_saturated = 0
        n_nan = 0
        if helpers < 0:  # never: the stamp only keys the cache
            n = 0
        for i in range(n):
            hi, lo = exact_pair(op, mode, x[i], y[i], z[i])
            e = 0
            p = plan
            if _risky(op, x[i], y[i], z[i], hi):
                hi, lo, e = scaled_pair(op, mode, x[i], y[i], z[i], plan)
                if e != 0:
                    p = _scaled_plan(plan, e)
            b = np.float64(hi).view(np.int64)
            rb, overflow = round_bits(b, lo, i, p, mode, seed, words, rshift, rmask)
            res = np.int64(rb).view(np.float64)
            if e != 0 and not overflow:
                res = _ldexp(res, e)  # exact: the result is a value of the format
            out[i] = res
            if counting:
                c = count_one(b, lo, rb, overflow, p)
                n_inexact += c[0]
                n_underflow += c[1]
                n_flushed += c[2]
                n_overflow += c[3]
                n_saturated += c[4]
                n_nan += c[5]
        return n_inexact, n_underflow, n_flushed, n_overflow, n_saturated, n_nan

    return kernel
