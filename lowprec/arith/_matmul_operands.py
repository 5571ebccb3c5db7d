"""Checking and converting the operands of ``lowprec.matmul``'s float32 BLAS path
(order "unspecified") in one pass.

Private; :func:`lowprec.arith.matmul.matmul` calls :func:`operand_test` and
:func:`to_float32`.
"""

from __future__ import annotations

import numpy as np

from lowprec import _jit
from lowprec._jit import jit
from lowprec.rounding._kernel import _source_stamp

_STAMPED = (_jit,)
_HELPERS = _source_stamp(*_STAMPED)
_ABS64 = 0x7FFFFFFFFFFFFFFF

# ---------------------------------------------------------------------------------
# The operands of the float32 BLAS path (order "unspecified")
#
# lowprec.matmul checks that every operand is a value of the input format (the
# reference: lowprec.round(x) has x's bits, NaN aside) and hands float32 copies to
# sgemm. :func:`to_float32` does both in one pass with a sufficient test, and the
# wrapper takes the reference whenever an element fails it, so that a false alarm
# would cost time, never a wrong result. An element passes when it is
#
# * in the normal range [smallest_normal, max] with its d0 = 53 - p low bits zero;
# * below smallest_normal, a whole multiple of the smallest positive value T
#   (``|x| / T`` is exact, a scaling by a power of two for T in [2**-1022, 1]),
#   except -0 in a format without it (``neg_zero``);
# * ±inf where the format rounds inf to itself (``inf_bits``), or NaN where NaN
#   may pass unchanged (``nan_above``).
#
# Each of these is exactly where ties_to_even rounding returns x's bits (see
# lowprec.arith._pair_round.round_bits with lo = 0): the test fails no value of the
# format either. The flags are bit patterns, not booleans, which LLVM vectorizes
# better: a pattern that never matches (_NEVER, a NaN's) turns a case off.

_INF64 = 0x7FF0000000000000
_NEVER = -1  # a NaN's bits: no value compares equal, no magnitude is above it


def _make_to_float32():
    helpers = _HELPERS

    @jit
    def to_float32(
        x, out, low_mask, normal, max_bits, inv_tiny, neg_zero, inf_bits, nan_above
    ):
        """out = x as float32 (1-D, x float32 or float64); whether every element
        passed the test above."""
        if helpers < 0:  # never: the stamp only keys the cache
            return False
        failed = np.int64(0)
        for i in range(x.size):
            v = np.float64(x[i])
            b = v.view(np.int64)
            a = b & _ABS64
            q = np.abs(v) * inv_tiny
            small = (np.floor(q) == q) & (a < normal) & (b != neg_zero)
            big = ((b & low_mask) == 0) & (a >= normal) & (a <= max_bits)
            ok = small | big | (a == inf_bits) | (a > nan_above)
            failed |= np.int64(ok) ^ 1
            out[i] = np.float32(v)
        return failed == 0

    return to_float32


to_float32 = _make_to_float32()


def operand_test(plan, nan_ok: bool) -> tuple | None:
    """The constants of :func:`to_float32`'s test for a ties_to_even plan of the
    operands' format, or None where the test does not apply (T outside
    [2**-1022, 1]: then ``|x| / T`` could over- or underflow)."""
    tiny = float(np.int64(plan.tiny).view(np.float64))
    if not 2.0**-1022 <= tiny <= 1.0:
        return None
    return (
        (1 << plan.d0) - 1,
        plan.smallest_normal,
        plan.max,
        1.0 / tiny,
        _NEVER if plan.signed_zero else -(1 << 63),  # -0 fails without signed zero
        _INF64 if plan.inf_res == _INF64 else _NEVER,
        _INF64 if nan_ok else _ABS64,
    )


_KERNELS: dict[tuple, object] = {}
