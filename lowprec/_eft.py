"""Error-free transformations: float64 results with their exact error terms.

Each function returns ``(hi, lo)`` with ``hi`` the float64 result rounded to nearest
and ``hi + lo`` the exact result, ``|lo| <= ulp(hi) / 2``: the pair the rounding
kernel takes so that an emulated operation is rounded once, from the exact value,
even where float64 itself would have rounded (a bf16 or fp32 sum of values far apart
in magnitude, a product of two 53-bit significands). Division and square root have
no exact float64 error term; their ``lo`` is the remainder divided once, so its sign,
whether it is zero, and whether it is half an ulp (never, for a quotient or a root)
are exact, and its size is accurate to a relative 2**-53.

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


@jit_inline
def div_pair(x, y):
    """``x / y`` and the remainder divided by ``y`` (sign and zero-ness exact)."""
    q = x / y
    r = fma(-q, y, x)  # exact remainder x - q*y
    return q, _finite_or_zero(q, r / y)


@jit_inline
def sqrt_pair(x):
    """``sqrt(x)`` and ``(x - s*s) / (2 s)`` (sign and zero-ness exact)."""
    s = np.sqrt(x)
    r = fma(-s, s, x)
    return s, _finite_or_zero(s, r / (2.0 * s)) if s != 0 else 0.0


@jit_inline
def fma_pair(x, y, z):
    """``x * y + z`` as a pair whose sum is exact to 53 + 53 bits.

    ``x*y = p + e`` exactly; ``p + z = s + t`` exactly; the exact result is
    ``s + (t + e)``, and ``t + e`` is added with a round-to-odd so that its lost
    bits still mark the pair as inexact (Boldo and Melquiond, 2008).
    """
    p, e = two_prod(x, y)
    s, t = two_sum(p, z)
    u, v = two_sum(t, e)
    # round-to-odd of t + e: if anything was lost and u's last bit is 0, step u one
    # float64 toward t + e, onto its odd neighbour
    ub = np.float64(u).view(np.int64)
    step = 1 if (v > 0) == (u > 0) else -1  # +1 on the bits: away from zero
    u = np.int64(ub + step).view(np.float64) if v != 0 and (ub & 1) == 0 else u
    if u == 0:
        return s, 0.0  # s + 0 would turn an exact -0 result into +0
    return two_sum(s, u)
