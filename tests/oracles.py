"""Rounding oracles for the lowprec tests, written independently of lowprec's code.

Two oracles state what rounding onto a binary floating-point format must give:

* :func:`round_exact` works on :class:`fractions.Fraction`: it finds the two grid
  points around the exact input and chooses between them, in every rounding mode
  (the stochastic ones take the random word as an argument). It is slow and
  obviously correct, and is the oracle of record.
* :func:`round_mpfr` lets MPFR (through gmpy2) do the rounding for the four IEEE
  modes that MPFR has, and is fast enough for sweeps over every fp16 and bf16 code.

Neither imports ``lowprec.rounding.reference`` or ``lowprec.rounding._kernel``, nor any of
lowprec's rounding helpers: from a :class:`lowprec.Format` they read only the five
defining parameters (precision, exponent bits, bias, subnormals, specials) and
derive everything else here (:class:`Grid`).

The semantics (the spec the tests hold lowprec to): the finite values of a format
are 0, ``k * 2**(emin - p + 1)`` for ``0 < k < 2**(p - 1)`` when it has
subnormals, and ``m * 2**(e - p + 1)`` for ``2**(p - 1) <= m < 2**p``,
``emin <= e <= emax``, up to the format's max. ``|x|`` is rounded onto that grid
continued above max with the quantum of the top binade; then a rounded magnitude
above max overflows to inf, max or NaN by mode and format (:func:`overflow_value`).
Without subnormals the grid below ``2**emin`` has just the points 0 and ``2**emin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import gmpy2
import numpy as np

DETERMINISTIC_MODES = (
    "ties_to_even",
    "ties_to_away",
    "toward_zero",
    "toward_positive",
    "toward_negative",
    "to_odd",
)
STOCHASTIC_MODES = ("stochastic", "stochastic_equal")
NEAREST_MODES = ("ties_to_even", "ties_to_away")
# the mode that rounds -x the way `mode` rounds x, up to the sign
MIRROR_MODE = {
    "ties_to_even": "ties_to_even",
    "ties_to_away": "ties_to_away",
    "toward_zero": "toward_zero",
    "toward_positive": "toward_negative",
    "toward_negative": "toward_positive",
    "to_odd": "to_odd",
}

# --------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class Grid:
    """A format's set of values, derived from its defining parameters only."""

    precision: int
    emin: int
    emax: int
    max: Fraction
    subnormals: bool
    has_inf: bool
    has_nan: bool
    signed_zero: bool

    @property
    def smallest_positive(self) -> Fraction:
        """The smallest positive value: a subnormal, or ``2**emin`` without them."""
        if self.subnormals:
            return _pow2(self.emin - self.precision + 1)
        return _pow2(self.emin)

    def quantum_exponent(self, a: Fraction) -> int:
        """log2 of the grid spacing around ``a > 0`` (continued above max)."""
        e = floor_log2(a)
        if e >= self.emin:
            return min(e, self.emax) - self.precision + 1
        if self.subnormals:
            return self.emin - self.precision + 1
        return self.emin  # only 0 and 2**emin below the normal range

    def quantum(self, a: Fraction) -> Fraction:
        """The grid spacing around ``a > 0``."""
        return _pow2(self.quantum_exponent(a))


def grid_of(fmt, subnormals: bool | None = None) -> Grid:
    """The :class:`Grid` of a lowprec Format, from its five parameters.

    ``subnormals=None`` keeps the format's own setting, as ``lowprec.round`` does.
    """
    p = fmt.precision
    all_ones = (1 << fmt.exponent_bits) - 1
    specials = fmt.specials
    assert specials in ("ieee", "fn", "fnuz", "none"), specials
    emin = 1 - fmt.bias
    # IEEE keeps the all-ones exponent for inf/NaN; the others use it for numbers
    emax = all_ones - 1 - fmt.bias if specials == "ieee" else all_ones - fmt.bias
    # fn: the all-ones code of the top binade is NaN, so max is one code lower
    top_significand = (1 << p) - 2 if specials == "fn" else (1 << p) - 1
    return Grid(
        precision=p,
        emin=emin,
        emax=emax,
        max=top_significand * _pow2(emax - p + 1),
        subnormals=fmt.subnormals if subnormals is None else bool(subnormals),
        has_inf=specials == "ieee",
        has_nan=specials != "none",
        signed_zero=specials != "fnuz",
    )


def decode(code: int, fmt) -> float:
    """The float64 value of one code of a format, from its bit fields.

    Codes with a zero exponent field decode as subnormals (every built-in format
    has them).
    """
    p = fmt.precision
    nmant = p - 1
    all_ones = (1 << fmt.exponent_bits) - 1
    bits = 1 + fmt.exponent_bits + nmant
    assert 0 <= code < 1 << bits
    negative = bool(code >> (bits - 1))
    exp_field = (code >> nmant) & all_ones
    mant = code & ((1 << nmant) - 1)
    sign = -1.0 if negative else 1.0
    if fmt.specials == "ieee" and exp_field == all_ones:
        return sign * math.inf if mant == 0 else math.copysign(math.nan, sign)
    if fmt.specials == "fn" and exp_field == all_ones and mant == (1 << nmant) - 1:
        return math.copysign(math.nan, sign)
    if fmt.specials == "fnuz" and negative and exp_field == 0 and mant == 0:
        return -math.nan  # the negative-zero code (sign bit set, as ml_dtypes)
    if exp_field == 0:
        value = mant * _pow2(1 - fmt.bias - nmant)
    else:
        value = ((1 << nmant) + mant) * _pow2(exp_field - fmt.bias - nmant)
    return math.copysign(float(value), sign)


def all_code_values(fmt) -> np.ndarray:
    """The values of every code of an (at most 16-bit) format, in code order."""
    bits = fmt.precision + fmt.exponent_bits
    assert bits <= 16
    return np.array([decode(c, fmt) for c in range(1 << bits)], dtype=np.float64)


# ------------------------------------------------------------------ exact oracle


@dataclass(frozen=True)
class Flags:
    """What :class:`lowprec.RoundingStats` counts for one element (see stats.py)."""

    inexact: bool = False
    underflow: bool = False
    flushed: bool = False
    overflow: bool = False
    saturated: bool = False
    nan: bool = False


def round_exact(
    value: Fraction | float,
    fmt,
    rounding: str = "ties_to_even",
    *,
    saturate: bool = False,
    subnormals: bool | None = None,
    random_fraction_bits: int = 64,
    random_word: int | None = None,
) -> float:
    """Round one exact value onto ``fmt``; return the result as a float64.

    Parameters
    ----------
    value : Fraction or float
        The exact input. A float keeps its sign of zero, NaN and infinities.
    fmt : lowprec.Format
        Only its five defining parameters are read.
    rounding : str
        A deterministic mode, ``"stochastic"`` or ``"stochastic_equal"``.
    saturate, subnormals
        As in ``lowprec.round``.
    random_fraction_bits : int
        Stochastic mode: how many leading bits ``r`` of the fraction and of the
        random word count. The magnitude rounds up when
        ``floor(frac * 2**r) + (word >> (64 - r)) >= 2**r``.
    random_word : int
        The 64-bit random word of this element (stochastic modes only);
        ``stochastic_equal`` rounds up an inexact value when its top bit is 1.
    """
    return round_exact_flags(
        value,
        fmt,
        rounding,
        saturate=saturate,
        subnormals=subnormals,
        random_fraction_bits=random_fraction_bits,
        random_word=random_word,
    )[0]


def round_exact_flags(
    value: Fraction | float,
    fmt,
    rounding: str = "ties_to_even",
    *,
    saturate: bool = False,
    subnormals: bool | None = None,
    random_fraction_bits: int = 64,
    random_word: int | None = None,
) -> tuple[float, Flags]:
    """:func:`round_exact`, and the exception :class:`Flags` of the element."""
    g = grid_of(fmt, subnormals)
    smallest_normal = _pow2(g.emin)
    if isinstance(value, Fraction):
        negative = value < 0
        a = abs(value)
    else:
        v = float(value)
        negative = math.copysign(1.0, v) < 0
        if math.isnan(v):
            return math.copysign(math.nan, -1.0 if negative else 1.0), Flags(nan=True)
        if math.isinf(v):
            # inf: itself in IEEE formats, NaN without inf, max without NaN
            res = _infinity_value(g, saturate)
            out = _signed(res, negative, g)
            return out, Flags(
                inexact=res != math.inf,
                saturated=res != math.inf and not math.isnan(res),
                nan=math.isnan(res),
            )
        a = abs(Fraction(v))

    if a == 0:
        return _signed(0.0, negative, g), Flags()

    q = g.quantum(a)
    k = math.floor(a / q)  # lower candidate k*q, upper (k+1)*q
    frac = a / q - k  # in [0, 1): where a lies between them
    up = _rounds_up(rounding, k, frac, negative, random_fraction_bits, random_word)
    rounded = (k + up) * q

    overflow = rounded > g.max
    saturated = False
    if overflow:
        magnitude = overflow_value(g, rounding, saturate, negative)
        saturated = magnitude == float(g.max) and _toward_infinity(rounding, negative)
    else:
        magnitude = float(rounded)  # exact: every format value is a float64
    out = _signed(magnitude, negative, g)
    inexact = not math.isfinite(magnitude) or Fraction(magnitude) != a
    return out, Flags(
        inexact=inexact,
        underflow=inexact and a < smallest_normal,
        flushed=magnitude == 0,
        overflow=overflow,
        saturated=saturated,
        nan=math.isnan(magnitude),
    )


def _rounds_up(
    rounding: str,
    k: int,
    frac: Fraction,
    negative: bool,
    r: int,
    word: int | None,
) -> bool:
    """Whether the magnitude goes to the upper candidate ``(k + 1) * q``."""
    inexact = frac != 0
    half = Fraction(1, 2)
    if rounding == "ties_to_even":
        return frac > half or (frac == half and k % 2 == 1)  # tie: to even
    if rounding == "ties_to_away":
        return frac >= half
    if rounding == "toward_zero":
        return False
    if rounding == "toward_positive":
        return inexact and not negative
    if rounding == "toward_negative":
        return inexact and negative
    if rounding == "to_odd":
        return inexact and k % 2 == 0  # the odd one of the two candidates
    if rounding in STOCHASTIC_MODES:
        if word is None:
            raise ValueError("stochastic rounding needs random_word")
        assert 0 <= word < 1 << 64 and 1 <= r <= 64
        if rounding == "stochastic_equal":
            return inexact and word >> 63 == 1
        kept = math.floor(frac * (1 << r))  # the first r bits of the fraction
        return kept + (word >> (64 - r)) >= 1 << r
    raise ValueError(f"unknown rounding {rounding!r}")


def _toward_infinity(rounding: str, negative: bool) -> bool:
    """Whether IEEE 754 sends an overflow in this mode and direction to inf."""
    if rounding in ("toward_zero", "to_odd"):
        return False
    if rounding == "toward_positive":
        return not negative
    if rounding == "toward_negative":
        return negative
    return True  # ties and stochastic modes


def _infinity_value(g: Grid, saturate: bool) -> float:
    """The magnitude where IEEE gives inf: inf, else NaN, else max."""
    if saturate:
        return float(g.max)
    if g.has_inf:
        return math.inf
    if g.has_nan:
        return math.nan
    return float(g.max)


def overflow_value(g: Grid, rounding: str, saturate: bool, negative: bool) -> float:
    """The magnitude an element whose rounded magnitude exceeds max becomes."""
    if not _toward_infinity(rounding, negative):
        return float(g.max)
    return _infinity_value(g, saturate)


def _signed(magnitude: float, negative: bool, g: Grid) -> float:
    if magnitude == 0 and not g.signed_zero:
        return 0.0  # fnuz: zero has no sign
    return -magnitude if negative else magnitude  # also flips the sign of NaN


def _pow2(n: int) -> Fraction:
    return Fraction(1 << n) if n >= 0 else Fraction(1, 1 << -n)


def floor_log2(a: Fraction) -> int:
    """``e`` with ``2**e <= a < 2**(e + 1)``, for ``a > 0``, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < _pow2(e):
        e -= 1
    assert _pow2(e) <= a < _pow2(e + 1)
    return e


def round_exact_array(
    values: np.ndarray, fmt, rounding: str = "ties_to_even", **kw
) -> np.ndarray:
    """:func:`round_exact` of each element of a float array, as float64."""
    return round_exact_counts(values, fmt, rounding, **kw)[0]


def round_exact_counts(
    values: np.ndarray, fmt, rounding: str = "ties_to_even", **kw
) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`round_exact` of each element, and the RoundingStats counts expected."""
    x = np.asarray(values, dtype=np.float64)
    counts = dict.fromkeys(Flags.__dataclass_fields__, 0)
    out = []
    for v in x.reshape(-1).tolist():
        value, flags = round_exact_flags(v, fmt, rounding, **kw)
        out.append(value)
        for name in counts:
            counts[name] += int(getattr(flags, name))
    counts["total"] = x.size
    return np.array(out, dtype=np.float64).reshape(x.shape), counts


# ------------------------------------------------------------------- MPFR oracle

MPFR_ROUNDING = {
    "ties_to_even": gmpy2.RoundToNearest,
    "toward_zero": gmpy2.RoundToZero,
    "toward_positive": gmpy2.RoundUp,
    "toward_negative": gmpy2.RoundDown,
}


def mpfr_context(fmt, rounding: str, subnormals: bool | None = None):
    """A gmpy2 context that rounds onto ``fmt``'s grid, continued above max.

    MPFR writes ``x = m * 2**E`` with ``1/2 <= m < 1``, one more than the IEEE
    exponent. With subnormals, ``emin`` is the MPFR exponent of the smallest
    subnormal and ``subnormalize=True`` gives gradual underflow; without, ``emin``
    is that of ``2**emin`` and MPFR rounds tiny values to 0 or ``2**emin``.
    ``emax`` is far above the format's so that MPFR never overflows: the overflow
    conventions are applied afterwards (:func:`round_mpfr`).
    """
    g = grid_of(fmt, subnormals)
    p = g.precision
    return gmpy2.context(
        precision=p,
        round=MPFR_ROUNDING[rounding],
        emin=(g.emin - p + 2) if g.subnormals else g.emin + 1,
        emax=1 << 20,
        subnormalize=g.subnormals,
    )


def round_mpfr(
    values: np.ndarray,
    fmt,
    rounding: str = "ties_to_even",
    *,
    saturate: bool = False,
    subnormals: bool | None = None,
) -> np.ndarray:
    """Round float64 values onto ``fmt`` with MPFR, in one of :data:`MPFR_ROUNDING`.

    MPFR rounds the magnitude; the specials, the overflow convention of the
    mode and format, the sign of zero and of NaN are then applied as in
    :func:`round_exact`.
    """
    g = grid_of(fmt, subnormals)
    ctx = mpfr_context(fmt, rounding, subnormals)
    x = np.asarray(values, dtype=np.float64)
    flat = x.reshape(-1)
    finite = np.isfinite(flat)
    mpfr = gmpy2.mpfr
    rounded = np.zeros(flat.size, dtype=np.float64)
    rounded[finite] = [float(mpfr(v, 0, ctx)) for v in flat[finite].tolist()]
    negative = np.signbit(flat)
    magnitude = np.abs(rounded)
    big = finite & (magnitude > float(g.max))
    for side in (False, True):
        mask = big & (negative == side)
        magnitude[mask] = overflow_value(g, rounding, saturate, side)
    magnitude[np.isinf(flat)] = _infinity_value(g, saturate)
    magnitude[np.isnan(flat)] = np.nan
    out = np.where(negative, -magnitude, magnitude)
    if not g.signed_zero:
        out[out == 0] = 0.0
    return out.reshape(x.shape)


# ---------------------------------------------------------------- test inputs

# every built-in format of 8 bits or fewer
SMALL_FORMATS = (
    "fp8_e5m2",
    "fp8_e4m3fn",
    "fp8_e4m3",
    "fp8_e4m3fnuz",
    "fp8_e5m2fnuz",
    "fp6_e2m3fn",
    "fp6_e3m2fn",
    "fp4_e2m1fn",
)


def boundary_inputs(fmt, dtype=np.float64) -> np.ndarray:
    """Every value of ``fmt`` and the points where rounding onto it changes.

    For each nonnegative value ``v`` of the format (decoded from its codes) and
    ``w``, the next one up (``max`` + one top quantum after max): ``v``, the exact
    midpoint ``(v + w) / 2``, and both ``dtype`` neighbours of each; then all of
    them negated, and the specials (zeros, infinities, NaNs, the extremes of
    float64 and the overflow region). Returned as ``dtype``; every element is exact.
    """
    dtype = np.dtype(dtype)
    g = grid_of(fmt)
    values = all_code_values(fmt)
    mags = np.unique(np.abs(values[np.isfinite(values)])).astype(np.float64)
    top_quantum = float(_pow2(g.emax - g.precision + 1))
    upper = np.append(mags[1:], float(g.max) + top_quantum)
    mids = (mags + upper) / 2
    assert np.array_equal(mids - mags, upper - mids)  # the midpoints are exact
    base = np.concatenate([mags, mids]).astype(dtype)
    assert np.array_equal(base.astype(np.float64), np.concatenate([mags, mids]))
    inf = np.array(np.inf, dtype=dtype)
    pts = np.concatenate([base, np.nextafter(base, -inf), np.nextafter(base, inf)])
    pts = pts[pts >= 0]
    fi = np.finfo(dtype)
    extremes = [fi.max, fi.smallest_subnormal, fi.smallest_normal, np.inf]
    overflow = [2 * float(g.max), float(g.max) + top_quantum, 2.0 ** (g.emax + 1)]
    extra = np.array(extremes + overflow, dtype=np.float64)
    extra = extra[extra <= fi.max].astype(dtype)  # too big for dtype: left out
    pos = np.unique(np.concatenate([pts, extra, np.array([np.inf], dtype=dtype)]))
    nans = np.array([np.nan, -np.nan], dtype=dtype)
    return np.concatenate([pos, -pos, nans]).astype(dtype)


# ------------------------------------------------------------- comparing results


def same_bits(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Elementwise: identical float64 bit patterns, or both NaN with one sign."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(e) & (np.signbit(a) == np.signbit(e))
    return (a.view(np.uint64) == e.view(np.uint64)) | both_nan


def assert_same_bits(actual, expected, inputs=None, what: str = "") -> None:
    """Assert bit-for-bit equality (NaN: both NaN, sign included); show mismatches."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    ok = same_bits(a, e)
    if ok.all():
        return
    bad = np.flatnonzero(~ok.reshape(-1))
    lines = [f"{what}: {bad.size} of {ok.size} differ; first ones:"]
    xs = None if inputs is None else np.asarray(inputs, dtype=np.float64).reshape(-1)
    for i in bad[:12]:
        got, want = a.reshape(-1)[i], e.reshape(-1)[i]
        src = "" if xs is None else f"x={float(xs[i]).hex()} ({xs[i]!r}): "
        lines.append(
            f"  {src}got {float(got).hex()} ({got!r}), "
            f"want {float(want).hex()} ({want!r})"
        )
    raise AssertionError("\n".join(lines))
