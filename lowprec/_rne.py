"""Ties-to-even rounding for the training engine's many small arrays.

:func:`round_rne` gives the bits of :func:`lowprec.round` ``(x, fmt)`` in the
default mode, with two things the engine needs that the general entry point does
not give cheaply: a serial kernel on float32 bits costing a few microseconds on
the small arrays of a training step (the general kernel is parallel, and waking
threads for a few hundred values costs more than rounding them), and the exact
``x + plus`` rounded once (the weight update ``w + dw`` of a policy without master
weights). ``tests/test_autograd.py`` checks it against :func:`lowprec.round` and
:func:`lowprec.add` around every midpoint.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lowprec._jit import jit
from lowprec.formats import Format, fp32, fp64
from lowprec.rounding import fits
from lowprec.rounding import round as round_to

__all__ = ["round_rne"]

_ONE = np.uint32(1)


@jit
def _round_float32_kernel(x, y, add, out, outbits, drop, tiny, scale, big):
    """``out = round(x)``, or ``round(x + y)`` with ``add``, to nearest, ties to
    even, keeping ``24 - drop`` significand bits (float32 arrays; ``outbits`` is a
    uint32 view of ``out``).

    0. With ``add``: the float32 sum rounded to odd (TwoSum gives the exact error;
       if it is not 0 and the last bit is even, step one unit toward the exact
       sum; neighbouring floats of one sign differ by 1 in their bits).
    1. NaN stays NaN.
    2. Below ``tiny`` (the target's smallest normal) the target's values are the
       multiples of ``1/scale``: round ``v * scale`` to an integer (exact scalings
       in float64; np.rint ties to even).
    3. Otherwise the carry trick on the bits: adding ``2**(drop-1) - 1`` plus the
       lowest kept bit carries into the kept bits exactly when the dropped bits are
       above the midpoint, or at it with an odd kept part; then clear them.
    4. Overflow: a result beyond ``big`` (the target's max) is inf.
    """
    half = np.uint32((1 << (drop - 1)) - 1)
    mask = np.uint32(0xFFFFFFFF ^ ((1 << drop) - 1))
    shift = np.uint32(drop)
    one = np.uint32(1)
    for i in range(out.size):
        v = x[i]
        out[i] = v
        if add:
            w = y[i]
            s = v + w
            out[i] = s
            bb = s - v
            err = (v - (s - bb)) + (w - bb)
            if err != 0 and abs(s) < np.inf and (outbits[i] & one) == 0:
                if (err > 0) == (s > 0):
                    outbits[i] = np.uint32(outbits[i] + one)
                else:
                    outbits[i] = np.uint32(outbits[i] - one)
            v = out[i]
        if v != v:
            continue
        if abs(v) < tiny:
            out[i] = np.float32(np.rint(np.float64(v) * scale) / scale)
        else:
            b = outbits[i]
            outbits[i] = np.uint32((b + np.uint32(half + ((b >> shift) & one))) & mask)
            if abs(out[i]) > big:
                out[i] = np.float32(np.inf) if v > 0 else np.float32(-np.inf)


class _RoundPlan(NamedTuple):
    fmt: Format
    float32_identity: bool  # fmt is fp32: rounding float32 data is the identity
    float64_identity: bool
    kernel: tuple[int, np.float32, float, np.float32] | None


_PLANS: dict[int, _RoundPlan] = {}


def _round_plan(fmt: Format) -> _RoundPlan:
    """What :func:`round_rne` does for ``fmt``, derived once per Format object
    (looked up by identity: hashing a Format on every call would cost more than
    rounding a small array)."""
    plan = _PLANS.get(id(fmt))
    if plan is not None and plan.fmt is fmt:
        return plan
    kernel = None
    # the kernel needs IEEE specials, subnormals and a format inside float32 with
    # two spare bits (for float64 data rounded to float32 to odd first)
    if (
        fmt.specials == "ieee"
        and fmt.subnormals
        and fmt.precision <= 22
        and fits(fmt, fp32)
    ):
        kernel = (
            24 - fmt.precision,
            np.float32(fmt.smallest_normal),
            float(2.0 ** (fmt.precision - 1 - fmt.emin)),
            np.float32(fmt.max),
        )
    plan = _RoundPlan(fmt, fmt == fp32, fmt == fp64, kernel)
    _PLANS[id(fmt)] = plan
    return plan


def round_rne(
    x: np.ndarray, fmt: Format, *, plus: np.ndarray | None = None
) -> np.ndarray:
    """Round a float32/float64 array to ``fmt``, ties to even, in the same dtype.

    With ``plus`` (same shape and dtype), the exact ``x + plus`` is rounded once.

    Bit for bit :func:`lowprec.round` ``(x, fmt)`` (NaN payloads aside), with fast
    paths for the engine's many small arrays: the identity when ``fmt`` is the
    storage format (x itself is returned); a serial kernel on the float32 bits for
    IEEE formats inside float32 (fp16, bf16, tf32, fp8_e5m2, ...). Sums and
    float64 data are first rounded to float32 *to odd*, which keeps at least two
    more bits than those formats, so the second rounding is innocuous (Boldo and
    Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
    using rounding to odd", IEEE Trans. Computers 57(4), 2008). Other formats use
    :func:`lowprec.round` (on a float64 sum rounded to odd).

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> from lowprec._rne import round_rne
    >>> x = np.array([1 + 2**-11, 1 + 3 * 2**-11], np.float32)  # two ties
    >>> round_rne(x, lowprec.fp16).tolist()  # to the even neighbours
    [1.0, 1.001953125]
    >>> one = np.ones(1, np.float32)  # a bf16 tie plus a little: rounds up
    >>> round_rne(one, lowprec.bf16, plus=np.float32([2**-8 + 2**-30])).tolist()
    [1.0078125]
    """
    plan = _round_plan(fmt)
    single = x.dtype == np.float32
    if plan.float32_identity if single else plan.float64_identity:
        return x if plus is None else x + plus  # one IEEE operation
    if plan.float32_identity and plus is None:  # float64 data to fp32
        with np.errstate(over="ignore"):
            return x.astype(np.float32).astype(np.float64)  # an IEEE conversion
    if plan.kernel is None or not single:
        if plus is not None:
            x = _sum_to_odd(x.astype(np.float64), plus.astype(np.float64))
            plus = None
        if plan.kernel is None:
            r = np.asarray(round_to(x, fmt))
        else:
            r = round_rne(_float32_to_odd(x), fmt)
        return r.astype(np.float32 if single else np.float64)
    flat = np.ascontiguousarray(x).reshape(-1)
    other = flat if plus is None else np.ascontiguousarray(plus).reshape(-1)
    if other.shape != flat.shape or other.dtype != flat.dtype:
        raise ValueError(
            f"plus: expected {x.shape} {x.dtype}, got {plus.shape} {plus.dtype}"
        )
    out = np.empty_like(flat)
    _round_float32_kernel(
        flat, other, plus is not None, out, out.view(np.uint32), *plan.kernel
    )
    return out.reshape(x.shape)


def _sum_to_odd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` rounded to odd in a's dtype: the nearest value if exact, else the
    neighbour of the exact sum whose last significand bit is 1."""
    with np.errstate(all="ignore"):
        s = a + b
        # TwoSum (Knuth): err = (a + b) - s exactly, barring overflow
        bb = s - a
        err = (a - (s - bb)) + (b - bb)
        inexact = (err != 0) & np.isfinite(s)
    if inexact.any():
        uint = np.uint32 if s.dtype == np.float32 else np.uint64
        fix = inexact & ((s.view(uint) & uint(1)) == 0)
        toward = np.where(err > 0, np.inf, -np.inf).astype(s.dtype)
        s = np.where(fix, np.nextafter(s, toward), s)
    return s


def _float32_to_odd(x: np.ndarray) -> np.ndarray:
    """float64 → float32 rounded to odd: x if exact, else its float32 neighbour
    with an odd last bit (neighbouring floats of one sign differ by 1 in bits)."""
    with np.errstate(over="ignore"):
        y = x.astype(np.float32)
    inexact = (y != x) & np.isfinite(y)
    if inexact.any():
        even = (y.view(np.uint32) & _ONE) == 0
        toward = np.where(x > y, np.float32(np.inf), np.float32(-np.inf))
        y = np.where(inexact & even, np.nextafter(y, toward), y)
    return y
