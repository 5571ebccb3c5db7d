"""Readable NumPy reference for rounding: what the Numba kernel must compute.

The kernel in :mod:`lowprec.rounding._kernel` works on the integer bit patterns of its
inputs; this module states the same rounding with floating-point operations that
are exact, so the two algorithms check each other bit for bit in the tests (and
both are checked against external oracles).

The idea, for a finite ``x`` with binade exponent ``e`` (``2**e <= |x| < 2**(e+1)``):
the format's values near ``|x|`` are the integer multiples of the quantum
``2**s`` with ``s = max(e, emin) - (p - 1)``. Scaling ``|x|`` by ``2**-s`` is exact
(a power of two), so ``y = |x| * 2**-s`` is a float64 whose integer neighbours are
the two candidates; rounding ``y`` to an integer in the chosen mode and scaling back
gives the result, exactly. Overflow and the special values are then applied.
"""

from __future__ import annotations

import numpy as np

from lowprec.formats import Format
from lowprec.modes import (
    RD,
    RNA,
    RNE,
    RO,
    RU,
    RZ,
    SR,
    SRE,
    infinity_outcome,
    mode_id,
    overflow_outcome,
    rounds_to_infinity,
)

_SMALLEST_F64 = np.float64(5e-324)


def round_reference(
    x: np.ndarray,
    fmt: Format,
    rounding: str = "ties_to_even",
    *,
    saturate: bool = False,
    subnormals: bool | None = None,
    words: np.ndarray | None = None,
    random_bits: int = 64,
) -> tuple[np.ndarray, dict[str, int]]:
    """Round float64 values onto ``fmt``; return the values and the exception counts.

    Parameters
    ----------
    x : ndarray of float64
    fmt : Format
    rounding : str
        One of :data:`lowprec.modes.ROUNDING_MODES`.
    saturate, subnormals
        As in :func:`lowprec.round`.
    words : ndarray of uint64, optional
        One random word per element, needed by the stochastic modes.
    random_bits : int
        How many leading bits of each word the stochastic mode uses.

    Returns
    -------
    values : ndarray of float64
    counts : dict
        ``inexact``, ``underflow``, ``flushed``, ``overflow``, ``saturated``,
        ``nan`` and ``total``, as :class:`lowprec.RoundingStats` counts them.
    """
    x = np.asarray(x, dtype=np.float64)
    mode = mode_id(rounding)
    sub = fmt.subnormals if subnormals is None else subnormals
    p = fmt.precision
    neg = np.signbit(x)
    a = np.abs(x)
    finite = np.isfinite(x)
    af = np.where(finite, a, 0.0)

    # binade exponent e with 2**e <= a < 2**(e+1)
    _, ex = np.frexp(af)
    e = ex.astype(np.int64) - 1
    if sub:
        s = np.maximum(e, fmt.emin) - (p - 1)
    else:
        # no subnormals: below the smallest normal the only values are 0 and 2**emin
        s = np.where(e >= fmt.emin, e - (p - 1), fmt.emin)
    y = np.ldexp(af, -s)
    # A format whose quantum is above 1 can scale a tiny input below float64's
    # range; any positive y < 1 rounds the same way (to 0 or to one quantum).
    y = np.where((y == 0) & (af != 0), _SMALLEST_F64, y)

    t = np.floor(y)
    frac = y - t  # exact
    inexact_y = frac != 0
    odd = np.fmod(t, 2) == 1
    if mode == RNE:
        i = np.rint(y)
    elif mode == RNA:
        i = t + (frac >= 0.5)
    elif mode == RZ:
        i = t
    elif mode == RU:
        i = np.where(neg, t, np.ceil(y))
    elif mode == RD:
        i = np.where(neg, np.ceil(y), t)
    elif mode == RO:
        # truncate, then make the last bit 1 if anything was cut off
        i = np.where(inexact_y & ~odd, t + 1, t)
    else:
        if words is None:
            raise ValueError("words: stochastic rounding needs one random word each")
        w = np.broadcast_to(np.asarray(words, dtype=np.uint64), x.shape)
        if mode == SR:
            r = np.uint64(random_bits)
            m = np.floor(np.ldexp(frac, random_bits)).astype(np.uint64)
            k = w >> (np.uint64(64) - r)
            all_ones = np.uint64(0xFFFFFFFFFFFFFFFF) >> (np.uint64(64) - r)
            up = m > (all_ones - k)  # m + k >= 2**r: the carry of fraction + bits
        else:
            assert mode == SRE
            up = inexact_y & ((w >> np.uint64(63)) == 1)
        i = t + up
    with np.errstate(over="ignore"):
        v = np.ldexp(i, s)  # exact; inf past float64's range, which overflows too

    overflow = finite & (v > fmt.max)
    out = np.where(finite, v, a)
    # saturated: the result is max where an IEEE format would have given inf
    saturated = np.zeros(x.shape, dtype=bool)
    for negative in (False, True):
        side = overflow & (neg == negative)
        outcome = overflow_outcome(fmt, rounding, saturate, negative)
        out = np.where(side, _OUTCOME[outcome](fmt), out)
        if rounds_to_infinity(rounding, negative) and outcome == "max":
            saturated |= side
    inf_in = np.isinf(x)
    outcome = infinity_outcome(fmt, saturate)
    out = np.where(inf_in, _OUTCOME[outcome](fmt), out)
    if outcome == "max":
        saturated |= inf_in
    nan_in = np.isnan(x)
    out = np.where(nan_in, np.nan, out)
    signed = np.copysign(out, np.where(neg, -1.0, 1.0))
    if not fmt.has_negative_zero:
        signed = np.where(out == 0, 0.0, signed)  # fnuz: zero has no sign

    mag_out = np.abs(signed)
    inexact = ~nan_in & ~((mag_out == a) | (np.isnan(mag_out) & np.isnan(a)))
    counts = {
        "total": int(x.size),
        "inexact": int(np.count_nonzero(inexact)),
        "underflow": int(np.count_nonzero(inexact & (a < fmt.smallest_normal))),
        "flushed": int(np.count_nonzero((a != 0) & (mag_out == 0))),
        "overflow": int(np.count_nonzero(overflow)),
        "saturated": int(np.count_nonzero(saturated)),
        "nan": int(np.count_nonzero(np.isnan(signed))),
    }
    return signed, counts


_OUTCOME = {
    "inf": lambda fmt: np.inf,
    "max": lambda fmt: fmt.max,
    "nan": lambda fmt: np.nan,
}
