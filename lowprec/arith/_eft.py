"""Error-free transformations: float64 results with their exact error terms.

Each function returns ``(hi, lo)`` with ``hi`` the float64 result rounded to nearest
and ``hi + lo`` the exact result, ``|lo| <= ulp(hi) / 2``: the pair the rounding
kernel takes so that an emulated operation is rounded once, from the exact value,
even where float64 itself would have rounded (a bf16 or fp32 sum of values far apart
in magnitude, a product of two 53-bit significands). Division and square root have
no exact float64 error term; their ``lo`` is the remainder divided once, so its sign
and whether it is zero are exact, it is never half the gap to the next float64 (the
exact error never is: a quotient or root of float64 values is never a midpoint of
two), and its size is accurate to about a relative 2**-52. fma's ``lo`` is exact to
53 + 53 bits, rounded to odd below.

The ``*_radius`` forms add ``rad``, a bound on ``|exact - (hi + lo)|`` that is 0
exactly when ``hi + lo`` is exact (for error terms above 2**-1022, as in the
kernels' range of exact EFTs). The deterministic modes only need the sign,
zero-ness and half-ness of the error, which the pair has; stochastic rounding at
53 bits of precision needs its first 64 bits, which the pair alone does not carry:
the kernels use the radius to bracket the exact value (:mod:`lowprec.arith._elementwise_kernel`).

References: Knuth's TwoSum (TAOCP vol. 2, 4.2.2), the FMA-based TwoProduct, and the
remainders of Boldo and Muller, "Exact and approximated error of the FMA" (IEEE TC
2011). ``fma`` is LLVM's fused multiply-add intrinsic, one rounding.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

from lowprec._jit import jit_inline


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma.f64``), inside Numba code."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        dbl = ir.DoubleType()
        fnty = ir.FunctionType(dbl, [dbl, dbl, dbl])
        fn = builder.module.declare_intrinsic("llvm.fma", [dbl], fnty)
        return builder.call(fn, args)

    return sig, codegen


_ABS = 0x7FFFFFFFFFFFFFFF
_EXP = 0x7FF0000000000000
_MANT = 0x000FFFFFFFFFFFFF


@jit_inline
def _finite_or_zero(hi, lo):
    # an overflowing or NaN hi has no error term (the rounding handles inf/NaN)
    return lo if np.isfinite(hi) and np.isfinite(lo) else 0.0


@jit_inline
def two_sum(x, y):
    """``x + y`` and its exact error (Knuth; six operations, no branch)."""
    s = x + y
    bb = s - x
    err = (x - (s - bb)) + (y - bb)
    return s, _finite_or_zero(s, err)


@jit_inline
def two_prod(x, y):
    """``x * y`` and its exact error, through one FMA."""
    p = x * y
    return p, _finite_or_zero(p, fma(x, y, -p))


# The *_radius forms hold the code and the plain pairs call them: the kernels
# inline the radius forms, one level of Numba inlining less (each level costs
# compile time).


@jit_inline
def div_pair_radius(x, y):
    """:func:`div_pair` and a bound on its error: ``r / y`` is rounded once, so
    ``lo`` is within half a float64 gap, ``|lo| 2**-53``, of the exact ``x / y -
    q``; the bound is twice that."""
    q = x / y
    r = fma(-q, y, x)  # exact remainder x - q*y
    lo = _finite_or_zero(q, r / y)
    return q, lo, abs(lo) * 2.0**-52


@jit_inline
def div_pair(x, y):
    """``x / y`` and the remainder divided by ``y`` (sign and zero-ness exact)."""
    q, lo, _ = div_pair_radius(x, y)
    return q, lo


@jit_inline
def sqrt_pair_radius(x):
    """:func:`sqrt_pair` and a bound on its error: ``r / (2 s)`` differs from the
    exact ``sqrt(x) - s`` by a relative ``2**-54`` before its one rounding, and a
    false tie moves it one more float64: less than ``|lo| 2**-51`` in all; the
    bound is twice that."""
    s = np.sqrt(x)
    r = fma(-s, s, x)  # exact: s*s is within an ulp of x
    lo = r / (2.0 * s)
    # A false tie. The root is never the midpoint m between s and its neighbour (m
    # has 54 significant bits and an odd last one, so m*m has 107: not a float64),
    # and s is the nearest float64, so the exact error is strictly less than half
    # the gap on its side. lo, rounded, can still land on that half exactly when
    # the root is within about 2**-107 s of m; the exact error is then just below
    # it in magnitude: step lo one float64 toward zero. (Only 53-bit formats see
    # it; in narrower ones the float64 half-gap is not a rounding boundary.)
    # In bits: half the gap above s is 2**-53 times s's binade; below a power of
    # two, half of that (s is normal, far from float64's limits, for any x).
    sb = np.float64(s).view(np.int64)
    lb = np.float64(lo).view(np.int64)
    half = (sb & _EXP) - (53 << 52) - (1 << 52 if lo < 0 and (sb & _MANT) == 0 else 0)
    lo = np.int64(lb - 1).view(np.float64) if (lb & _ABS) == half else lo  # to 0
    lo = _finite_or_zero(s, lo) if s != 0 else 0.0
    return s, lo, abs(lo) * 2.0**-50


@jit_inline
def sqrt_pair(x):
    """``sqrt(x)`` and ``(x - s*s) / (2 s)`` (sign and zero-ness exact; never
    exactly half the gap to s's neighbour, see :func:`sqrt_pair_radius`)."""
    s, lo, _ = sqrt_pair_radius(x)
    return s, lo


@jit_inline
def fma_pair_radius(x, y, z):
    """:func:`fma_pair` and a bound ``rad`` on its error: the exact ``x * y + z``
    lies strictly within ``rad`` of ``hi + lo`` (``rad`` = 0: it is ``hi + lo``).

    The bits that the round-to-odd of ``t + e`` drops are below its last place:
    less than ``|t + e| 2**-52`` (or v = 0: sums that underflow are exact); the
    bound is twice that.
    """
    p, e = two_prod(x, y)
    s, t = two_sum(p, z)
    u, v = two_sum(t, e)
    rad = abs(u) * 2.0**-51 if v != 0 else 0.0
    # round-to-odd of t + e: if anything was lost and u's last bit is 0, step u one
    # float64 toward t + e, onto its odd neighbour
    ub = np.float64(u).view(np.int64)
    step = 1 if (v > 0) == (u > 0) else -1  # +1 on the bits: away from zero
    u = np.int64(ub + step).view(np.float64) if v != 0 and (ub & 1) == 0 else u
    if u == 0:
        return s, 0.0, 0.0  # s + 0 would turn an exact -0 result into +0
    hi, lo = two_sum(s, u)
    return hi, lo, rad


@jit_inline
def fma_pair(x, y, z):
    """``x * y + z`` as a pair whose sum is exact to 53 + 53 bits.

    ``x*y = p + e`` exactly; ``p + z = s + t`` exactly; the exact result is
    ``s + (t + e)``, and ``t + e`` is added with a round-to-odd so that its lost
    bits still mark the pair as inexact (Boldo and Melquiond, 2008).
    """
    hi, lo, _ = fma_pair_radius(x, y, z)
    return hi, lo
