"""Ties-to-even rounding for the training engine's many small arrays.

:func:`round_rne` gives the bits of :func:`lowprec.round` ``(x, fmt)`` in the
default mode, with two things the engine needs that the general entry point does
not give cheaply: a serial, vectorized kernel on float32 bits costing about a
microsecond per call plus a third of a nanosecond per value on the small arrays
of a training step (the general kernel is parallel, and waking threads for a few
hundred values costs more than rounding them), and the exact ``x + plus``
rounded once (the weight update ``w + dw`` of a policy without master weights).
:func:`round_rne_into` writes the result into an existing array (the optimizer's
in-place updates). ``tests/autograd/test_rounding_fast_paths.py`` checks them against
:func:`lowprec.round` and :func:`lowprec.add` around every midpoint.

The engine calls these thousands of times per epoch, so the common case (float32
data, no ``plus``) is tested first, a format's constants are derived once, and
the kernels take Python ints and floats: Numba's dispatcher types those several
times faster than NumPy scalars, and the dispatch is most of a call's cost.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lowprec._jit import jit, jit_inline
from lowprec.formats import Format, fp32, fp64
from lowprec.rounding.rounder import fits
from lowprec.rounding.rounder import round as round_to

__all__ = ["round_rne"]

_ONE = np.uint32(1)
_U32 = np.uint32
_F32 = np.dtype(np.float32)
_SIGN = 0x80000000
_ABS = 0x7FFFFFFF
_INF = 0x7F800000


@jit_inline
def _rne_bits(b, half, mask, shift, tiny_bits, magic, big_bits):
    """The bits of the float32 with bits ``b`` rounded to nearest, ties to even,
    keeping the significand bits above ``shift``.

    Every case is computed and the right one selected at the end, without
    branches, so that the callers' loops vectorize; each step is a uint32
    operation (Numba would widen to 64 bits otherwise).

    1. Unpack: ``a = |b|`` and the sign bit ``s``.
    2. Round, normal range of the target: the carry trick on the bits; adding
       ``2**(shift-1) - 1`` plus the lowest kept bit carries into the kept bits
       exactly when the dropped bits are above the midpoint, or at it with an
       odd kept part; then clear them (inf stays inf).
    3. Overflow: a result beyond ``big_bits`` (the target's max) is inf.
    4. NaN stays NaN, payload kept.
    5. Round, below ``tiny_bits`` (the target's smallest normal), where its
       values are the multiples of ``q = magic * 2**-23``: ``|v| + magic`` lies
       in ``[magic, 2 magic)``, where float32's spacing is ``q``, so the float32
       addition rounds ``|v|`` to a multiple of ``q``, ties to even (``magic / q
       = 2**23`` is even), and subtracting ``magic`` is exact (Sterbenz); then
       the sign (a zero keeps it: -0.0).
    """
    a = _U32(b & _U32(_ABS))
    s = _U32(b & _U32(_SIGN))
    r = _U32(_U32(b + _U32(half + _U32(_U32(b >> shift) & _U32(1)))) & mask)
    r = _U32(s | _U32(_INF)) if _U32(r & _U32(_ABS)) > big_bits else r
    r = b if a > _U32(_INF) else r
    av = _U32(a).view(np.float32)
    sub = np.float32(np.float32(av + magic) - magic)
    sub_bits = _U32(np.float32(sub).view(np.uint32) | s)
    return sub_bits if a < tiny_bits else r


@jit
def _round_float32_kernel(x, out, drop, tiny_bits, magic, big_bits):
    """``out = round(x)`` to nearest, ties to even, keeping ``24 - drop``
    significand bits (1-D float32 arrays; see :func:`_rne_bits`)."""
    half = _U32((1 << (drop - 1)) - 1)
    mask = _U32(0xFFFFFFFF ^ ((1 << drop) - 1))
    shift = _U32(drop)
    tiny = _U32(tiny_bits)
    big = _U32(big_bits)
    m = np.float32(magic)  # a power of two: exact
    for i in range(x.size):
        b = np.float32(x[i]).view(np.uint32)
        r = _rne_bits(b, half, mask, shift, tiny, m, big)
        out[i] = _U32(r).view(np.float32)


@jit
def _round_float32_sum_kernel(x, y, out, drop, tiny_bits, magic, big_bits):
    """``out = round(x + y)``, the exact sum rounded once (as
    :func:`_round_float32_kernel`).

    The float32 sum is first rounded to odd: TwoSum gives the exact error; if it
    is not 0 and the last bit is even, step one unit toward the exact sum
    (neighbouring floats of one sign differ by 1 in their bits). It keeps at
    least two more bits than the target, so the second rounding is innocuous.
    """
    half = _U32((1 << (drop - 1)) - 1)
    mask = _U32(0xFFFFFFFF ^ ((1 << drop) - 1))
    shift = _U32(drop)
    tiny = _U32(tiny_bits)
    big = _U32(big_bits)
    m = np.float32(magic)
    for i in range(x.size):
        v = x[i]
        w = y[i]
        s = np.float32(v + w)
        bb = np.float32(s - v)
        err = np.float32((v - np.float32(s - bb)) + (w - bb))
        b = np.float32(s).view(np.uint32)
        if err != 0 and abs(s) < np.inf and (b & _U32(1)) == 0:
            b = _U32(b + _U32(1)) if (err > 0) == (s > 0) else _U32(b - _U32(1))
        r = _rne_bits(b, half, mask, shift, tiny, m, big)
        out[i] = _U32(r).view(np.float32)


class _RoundPlan(NamedTuple):
    fmt: Format
    float32_identity: bool  # fmt is fp32: rounding float32 data is the identity
    float64_identity: bool
    # the kernels' constants, as Python ints and floats (Numba's dispatcher types
    # those several times faster than NumPy scalars)
    kernel: tuple[int, int, float, int] | None


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
            int(np.float32(fmt.smallest_normal).view(np.uint32)),
            # 2**23 times the spacing of the subnormals (see _rne_bits)
            float(2.0 ** (fmt.emin - fmt.precision + 24)),
            int(np.float32(fmt.max).view(np.uint32)),
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
    >>> from lowprec.rounding._rne import round_rne
    >>> x = np.array([1 + 2**-11, 1 + 3 * 2**-11], np.float32)  # two ties
    >>> round_rne(x, lowprec.fp16).tolist()  # to the even neighbours
    [1.0, 1.001953125]
    >>> one = np.ones(1, np.float32)  # a bf16 tie plus a little: rounds up
    >>> round_rne(one, lowprec.bf16, plus=np.float32([2**-8 + 2**-30])).tolist()
    [1.0078125]
    """
    plan = _PLANS.get(id(fmt))
    if plan is None or plan.fmt is not fmt:
        plan = _round_plan(fmt)
    single = x.dtype is _F32 or x.dtype == np.float32
    if single and plus is None:  # the engine's common case, first
        if plan.float32_identity:
            return x
        if plan.kernel is not None:
            out = np.empty(x.shape, np.float32)
            # reshape(-1): a view of contiguous data, else a C-order copy
            _round_float32_kernel(x.reshape(-1), out.reshape(-1), *plan.kernel)
            return out
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
    # float32 x + plus, to a kernel format
    if plus.shape != x.shape or plus.dtype != x.dtype:
        raise ValueError(
            f"plus: expected {x.shape} {x.dtype}, got {plus.shape} {plus.dtype}"
        )
    out = np.empty(x.shape, np.float32)
    _round_float32_sum_kernel(
        x.reshape(-1), plus.reshape(-1), out.reshape(-1), *plan.kernel
    )
    return out


def round_rne_into(
    out: np.ndarray, x: np.ndarray, fmt: Format, *, plus: np.ndarray | None = None
) -> None:
    """``out[...] = round_rne(x, fmt, plus=plus)``, without the temporary array
    where it can (the optimizer's in-place weight updates).

    ``out`` is either ``x`` itself or an array that does not overlap ``x`` or
    ``plus``: the kernels go through the values once, element by element.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> from lowprec.rounding._rne import round_rne_into
    >>> w = np.ones(2, np.float32)
    >>> round_rne_into(w, w, lowprec.bf16, plus=np.float32([2**-8, 2**-7]))
    >>> w.tolist()  # a tie to the even 1.0, and one bf16 step
    [1.0, 1.0078125]
    """
    plan = _PLANS.get(id(fmt))
    if plan is None or plan.fmt is not fmt:
        plan = _round_plan(fmt)
    fast = (
        x.dtype is _F32
        and out.dtype is _F32
        and out.shape == x.shape
        and out.flags.c_contiguous
        and out.flags.writeable
        and x.flags.c_contiguous
        and (plus is None or (plus.dtype is _F32 and plus.shape == x.shape))
    )
    if fast and plan.float32_identity:
        if plus is None:
            np.copyto(out, x)
        else:
            np.add(x, plus, out=out)  # one IEEE operation, as round_rne
        return
    if fast and plan.kernel is not None:
        flat = out.reshape(-1)  # a view: the kernel writes into out
        if plus is None:
            _round_float32_kernel(x.reshape(-1), flat, *plan.kernel)
        else:
            _round_float32_sum_kernel(
                x.reshape(-1), plus.reshape(-1), flat, *plan.kernel
            )
        return
    out[...] = round_rne(x, fmt, plus=plus)


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
