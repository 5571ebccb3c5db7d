"""Hypothesis strategies for property-testing code that uses low-precision formats.

Hypothesis cannot generate bf16 or fp8 values itself (its issue #3959), so this
module does it for every lowprec format, built-in or custom:

:func:`formats`
    Built-in formats and valid custom ones.
:func:`codes`
    The stored bit patterns of a format, as ints.
:func:`values`
    The float64 values a format holds, exactly.
:func:`near_ties`
    Floats at, just below and just above the midpoints between neighbouring
    values, where round-to-nearest has to break a tie.
:func:`floats`
    Inputs for a rounding function: everything from below the smallest subnormal
    to beyond the overflow bound, in float16, float32 or float64.
:func:`arrays`
    NumPy arrays of a format's values.

Each strategy mixes uniform draws with the points where bugs live (zeros, the
subnormal/normal boundary, max, the overflow midpoint, inf, NaN), so a hundred
examples reach them. The values are computed here from the format's parameters,
independently of :func:`lowprec.decode`, so tests of lowprec itself can use them.

``import lowprec`` does not import this module: hypothesis is a test extra
(``pip install "lowprec[test]"``), not a dependency.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'lowprec.testing needs hypothesis; install it with pip install "lowprec[test]"'
    ) from exc

from lowprec.formats import SPECIALS, Format, as_format, builtin_formats, custom_format

__all__ = ["arrays", "codes", "floats", "formats", "near_ties", "values"]

# The float dtypes lowprec.round accepts, with (precision, emax, exponent of the
# smallest subnormal) to decide which formats each can hold.
_DTYPES = {
    np.dtype(np.float16): (11, 15, -24),
    np.dtype(np.float32): (24, 127, -149),
    np.dtype(np.float64): (53, 1023, -1074),
}


# -- formats -------------------------------------------------------------------


def formats(
    *,
    builtin: bool = True,
    custom: bool = True,
    specials: Sequence[str] = SPECIALS,
    min_precision: int = 2,
    max_precision: int = 53,
    max_exponent_bits: int = 11,
    subnormals: bool | None = None,
) -> st.SearchStrategy[Format]:
    """Generate floating-point formats: the built-ins and valid custom ones.

    Custom formats are made with :func:`lowprec.custom_format`. Half the time
    the bias is the IEEE default; otherwise it is drawn from the whole range the
    factory accepts (every value a float64, smallest normal at least
    ``2**-1022``), negative biases included, whose formats do not hold 1.0.

    Parameters
    ----------
    builtin : bool, default True
        Include the built-in formats (``lowprec.builtin_formats()``).
    custom : bool, default True
        Include custom formats.
    specials : sequence of {"ieee", "fn", "fnuz", "none"}
        The special-value conventions allowed (all by default).
    min_precision, max_precision : int, default 2 and 53
        Bounds on the precision ``p``, the hidden bit included. Use
        ``max_precision=52`` with :func:`near_ties`, which needs a float64 to
        hold each midpoint.
    max_exponent_bits : int, default 11
        Upper bound on the exponent width (at least 2).
    subnormals : bool, optional
        Only formats with (True) or without (False) subnormals; None allows both.

    Returns
    -------
    SearchStrategy[Format]

    Examples
    --------
    >>> from hypothesis import given
    >>> import lowprec.testing
    >>> @given(lowprec.testing.formats(max_precision=24))
    ... def test_eps(fmt):
    ...     assert fmt.eps == 2.0 ** (1 - fmt.precision)
    >>> test_eps()
    """
    specials = tuple(specials)
    bad = [s for s in specials if s not in SPECIALS]
    if bad or not specials:
        raise InvalidArgument(
            f"specials must be a non-empty selection of {SPECIALS}, got {specials!r}"
        )
    if not 2 <= min_precision <= max_precision <= 53:
        raise InvalidArgument(
            "need 2 <= min_precision <= max_precision <= 53, got "
            f"min_precision={min_precision}, max_precision={max_precision}"
        )
    if not 2 <= max_exponent_bits <= 11:
        raise InvalidArgument(
            f"max_exponent_bits must be between 2 and 11, got {max_exponent_bits}"
        )

    def wanted(fmt: Format) -> bool:
        return (
            fmt.specials in specials
            and min_precision <= fmt.precision <= max_precision
            and fmt.exponent_bits <= max_exponent_bits
            and (subnormals is None or fmt.subnormals == subnormals)
        )

    choices = []
    if builtin:
        fixed = [f for f in builtin_formats() if wanted(f)]
        if fixed:
            choices.append(st.sampled_from(fixed))
    if custom:
        choices.append(
            _custom_formats(
                specials, min_precision, max_precision, max_exponent_bits, subnormals
            )
        )
    if not choices:
        raise InvalidArgument("no format satisfies these arguments")
    return st.one_of(choices)


def _bias_range(exponent_bits: int, specials: str) -> tuple[int, int]:
    """The biases custom_format accepts: emax <= 1023 and emin >= -1022."""
    top = (1 << exponent_bits) - 1
    emax_at_zero_bias = top - 1 if specials == "ieee" else top
    return emax_at_zero_bias - 1023, 1023


def _custom_formats(
    specials: tuple[str, ...],
    min_precision: int,
    max_precision: int,
    max_exponent_bits: int,
    subnormals: bool | None,
) -> st.SearchStrategy[Format]:
    @st.composite
    def draw_format(draw: Callable) -> Format:
        spec = draw(st.sampled_from(specials))
        # With 11 exponent bits only IEEE keeps emax <= 1023 (bias 1023): the
        # other conventions put numbers in the all-ones exponent too.
        widest = max_exponent_bits if spec == "ieee" else min(max_exponent_bits, 10)
        exponent_bits = draw(st.integers(2, widest))
        precision = draw(st.integers(min_precision, max_precision))
        lo, hi = _bias_range(exponent_bits, spec)
        default = (1 << (exponent_bits - 1)) - 1
        bias = draw(st.one_of(st.just(min(max(default, lo), hi)), st.integers(lo, hi)))
        sub = draw(st.booleans()) if subnormals is None else subnormals
        return custom_format(
            precision, exponent_bits, bias=bias, subnormals=sub, specials=spec
        )

    return draw_format()


def _mapped(strategy: st.SearchStrategy, fn: Callable) -> st.SearchStrategy:
    """``strategy.map(fn)``, except that a failing example prints as its value.

    Hypothesis prints a mapped value as the call that made it when that is
    shorter (``x=tie((1, False, 0))``); a user wants to see ``x=0.5``.
    """

    @st.composite
    def draw_mapped(draw: Callable) -> object:
        return fn(draw(strategy))

    return draw_mapped()


# -- decoding, independent of lowprec.encoding ------------------------------------


def _kind(fmt: Format, code: int) -> str:
    """Whether a code is "nan", "inf" or "finite", from the format's parameters."""
    magnitude = code & (fmt.sign_mask - 1)
    exponent = magnitude >> fmt.nmant
    top = (1 << fmt.exponent_bits) - 1
    mant_mask = (1 << fmt.nmant) - 1
    if fmt.specials == "ieee" and exponent == top:
        # all-ones exponent: zero significand is inf, any other is NaN
        return "inf" if magnitude & mant_mask == 0 else "nan"
    if fmt.specials == "fn" and magnitude == (top << fmt.nmant) | mant_mask:
        return "nan"
    if fmt.specials == "fnuz" and code == fmt.sign_mask:
        # fnuz: the negative-zero code is the only NaN
        return "nan"
    return "finite"


def _magnitude(fmt: Format, code: int) -> float:
    """The value of a positive finite code, computed exactly in float64."""
    exponent = code >> fmt.nmant
    significand = code & ((1 << fmt.nmant) - 1)
    if exponent == 0:
        # subnormal: 2**emin * M / 2**(p-1); the ints are < 2**53, so exact
        return math.ldexp(significand, fmt.emin - fmt.nmant)
    return math.ldexp((1 << fmt.nmant) | significand, exponent - fmt.bias - fmt.nmant)


class _Magnitudes:
    """The positive finite values of a format, numbered 1..n in increasing order.

    Positive codes order like their values, so value ``k`` is a code plus an
    offset; without subnormals the codes ``1 .. 2**(p-1) - 1`` are skipped.
    Index 0 is zero.
    """

    def __init__(self, fmt: Format, subnormals: bool) -> None:
        self.fmt = fmt
        self.subnormals = subnormals and fmt.subnormals
        # index k is code k + skip
        self.skip = 0 if self.subnormals else (1 << fmt.nmant) - 1
        self.n = fmt.max_code - self.skip
        self.first_normal = (1 << fmt.nmant) - self.skip

    def __getitem__(self, k: int) -> float:
        return 0.0 if k == 0 else _magnitude(self.fmt, k + self.skip)

    def count_below(self, x: float, *, inclusive: bool) -> int:
        """How many positive values are < x (or <= x), by bisection."""
        if self._passes(self.n, x, inclusive):
            return self.n
        lo, hi = 0, self.n - 1  # invariant: self[lo] passes, self[hi + 1] fails
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._passes(mid, x, inclusive):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _passes(self, k: int, x: float, inclusive: bool) -> bool:
        return k == 0 or (self[k] <= x if inclusive else self[k] < x)

    def by_binade(self, a: int, b: int) -> st.SearchStrategy[int]:
        """Indices in [a, b], with the exponent field drawn apart from the rest.

        Hypothesis draws a wide integer range mostly from its small end; drawing
        the exponent on its own gives every binade of fp64 its share.
        """
        lo, hi = a + self.skip, b + self.skip  # as codes
        nmant = self.fmt.nmant

        def index(drawn: tuple[int, int]) -> int:
            code = (drawn[0] << nmant) | drawn[1]
            # the end binades are cut at the bounds (which also weights them)
            return min(max(code, lo), hi) - self.skip

        fields = st.tuples(
            st.integers(lo >> nmant, hi >> nmant), st.integers(0, (1 << nmant) - 1)
        )
        return fields.map(index)

    def interesting(self) -> list[int]:
        """Indices of the boundary values: smallest, subnormal edge, 1.0, max."""
        fmt = self.fmt
        picks = [1, 2, self.first_normal - 1, self.first_normal]
        picks += [self.first_normal + 1, self.n - 1, self.n]
        if fmt.emin <= 0 <= fmt.emax:
            picks.append((fmt.bias << fmt.nmant) - self.skip)  # 1.0
        return sorted({k for k in picks if 1 <= k <= self.n})

    def gap_above(self, k: int) -> float:
        """The distance from value k to the next, exactly (a power of two).

        Above max it is the ulp of max, as if the exponent range went on: the
        midpoint there is the overflow bound of round-to-nearest, and for
        ``fn`` formats ``max + ulp`` is the value the NaN code would have.
        """
        if k == self.n:
            return math.ldexp(1.0, self.fmt.emax - self.fmt.nmant)
        return self[k + 1] - self[k]


# -- codes -----------------------------------------------------------------------


def codes(
    fmt: Format | str, *, allow_nan: bool = True, allow_infinity: bool = True
) -> st.SearchStrategy[int]:
    """Generate codes (bit patterns) of a format, as Python ints.

    Every code from 0 to ``2**fmt.bits - 1`` can appear (each fits
    ``fmt.code_dtype``), spread over the whole range and over the exponent
    field, with extra weight on ±0, the smallest and largest subnormal, the
    smallest normal, ±max, the infinities and the NaNs. Codes with a zero
    exponent and a nonzero significand are included for a format without
    subnormals too (they are codes; :func:`lowprec.decode` reads them as
    zeros).

    Parameters
    ----------
    fmt : Format or str
        A format or its name.
    allow_nan : bool, default True
        Include the NaN codes (ieee: every all-ones exponent with a nonzero
        significand, both signs; fn: ``S.1..1.1..1``; fnuz: ``1000...0``).
    allow_infinity : bool, default True
        Include the codes of ±inf (ieee formats only).

    Returns
    -------
    SearchStrategy[int]

    Examples
    --------
    >>> from hypothesis import given
    >>> import lowprec, lowprec.testing
    >>> @given(lowprec.testing.codes(lowprec.fp8_e4m3fn, allow_nan=False))
    ... def test_finite(code):
    ...     assert 0 <= code < 256 and code & 0x7F != 0x7F
    >>> test_finite()
    """
    fmt = as_format(fmt)
    sign = fmt.sign_mask
    max_code = fmt.max_code
    # Finite codes: 0..max_code, then the same magnitudes negated. fnuz has no
    # -0 (its code is the NaN), so its negative run starts at magnitude 1.
    first_negative = 1 if fmt.specials == "fnuz" else 0

    def finite_code(j: int) -> int:
        if j <= max_code:
            return j
        return sign | (j - max_code - 1 + first_negative)

    parts = [
        _mapped(st.integers(0, 2 * max_code + 1 - first_negative), finite_code),
    ]
    top_field = (1 << fmt.exponent_bits) - 1
    mant_mask = (1 << fmt.nmant) - 1
    if allow_nan and fmt.specials == "ieee":
        # every all-ones exponent with a nonzero significand is a NaN
        parts.append(
            _mapped(
                st.tuples(st.booleans(), st.integers(1, mant_mask)),
                lambda sm: (sign if sm[0] else 0) | (top_field << fmt.nmant) | sm[1],
            )
        )
    wanted = {"finite", "nan"} if allow_nan else {"finite"}
    if allow_infinity:
        wanted.add("inf")
    # sign, exponent and significand apart, so every binade of a wide format
    # gets its share; the filter rejects at most a quarter (specials of e2 formats)
    by_fields = _mapped(
        st.tuples(st.booleans(), st.integers(0, top_field), st.integers(0, mant_mask)),
        lambda f: (sign if f[0] else 0) | (f[1] << fmt.nmant) | f[2],
    )
    parts.append(by_fields.filter(lambda c: _kind(fmt, c) in wanted))
    first_normal = 1 << fmt.nmant
    picks = [0, 1, first_normal - 1, first_normal, max_code, max_code + 1]
    picks += [mant_mask, fmt.inf_code or 0, fmt.nan_code or 0, fmt.num_codes - 1]
    picks += [c | sign for c in picks]
    special = sorted({c for c in picks if _kind(fmt, c) in wanted})
    return st.one_of(st.sampled_from(special), *parts)


# -- values ----------------------------------------------------------------------


def values(
    fmt: Format | str,
    *,
    allow_nan: bool | None = None,
    allow_infinity: bool | None = None,
    allow_subnormal: bool = True,
    min_value: float | None = None,
    max_value: float | None = None,
) -> st.SearchStrategy[float]:
    """Generate the values a format holds, exactly, as Python floats.

    A quarter of the draws are the points where bugs live: ±0 (only +0 in
    ``fnuz`` formats), the two smallest subnormals, the largest subnormal, the
    smallest normal and its neighbour, ±1.0, ±max and the value below it, ±inf
    and NaN. The rest are spread over the codes, two thirds of them binade by
    binade (exponent field first), so every binade of fp64 is reached and not
    only the small codes hypothesis favours. Shrinking moves towards 0.0.

    The values are computed here from the format's parameters, not by
    :func:`lowprec.decode`, so they can test lowprec itself.

    Parameters
    ----------
    fmt : Format or str
        A format or its name.
    allow_nan : bool, optional
        Include NaN (both signs where the format has signed NaN codes). The
        default, like :func:`hypothesis.strategies.floats`, is to include it
        unless a bound is given. Ignored for a format without NaN.
    allow_infinity : bool, optional
        Include the infinities the bounds allow (default) or none of them.
        Ignored for a format without inf.
    allow_subnormal : bool, default True
        Include the format's subnormal values (if it has any).
    min_value, max_value : float, optional
        Only values in ``[min_value, max_value]``; the bounds need not be values
        of the format. As in hypothesis, ``-0.0 < 0.0`` here: ``min_value=0.0``
        excludes -0.0 and ``max_value=-0.0`` excludes +0.0.

    Returns
    -------
    SearchStrategy[float]

    Raises
    ------
    hypothesis.errors.InvalidArgument
        If ``min_value > max_value``, a bound is NaN, ``allow_nan=True`` is given
        with a bound, or no value of the format satisfies the arguments.

    Examples
    --------
    >>> import math
    >>> from hypothesis import given, settings
    >>> import lowprec, lowprec.testing
    >>> @settings(deadline=None)  # the first lowprec.round call compiles
    ... @given(lowprec.testing.values(lowprec.bf16))
    ... def test_bf16_values_round_to_themselves(x):
    ...     assert math.isnan(x) or lowprec.round(x, lowprec.bf16) == x
    >>> test_bf16_values_round_to_themselves()
    """
    fmt = as_format(fmt)
    bounded = min_value is not None or max_value is not None
    for arg, bound in (("min_value", min_value), ("max_value", max_value)):
        if bound is not None and math.isnan(bound):
            raise InvalidArgument(f"{arg} must not be NaN")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise InvalidArgument(f"min_value={min_value} > max_value={max_value}")
    if allow_nan and bounded:
        raise InvalidArgument("allow_nan=True contradicts min_value/max_value")
    if allow_nan is None:
        allow_nan = not bounded

    mags = _Magnitudes(fmt, allow_subnormal)
    lo, hi = _ordinal_bounds(mags, min_value, max_value)

    def value(ordinal: int) -> float:
        # ordinal k > 0 is the k-th positive value, -k its negative
        return math.copysign(mags[abs(ordinal)], ordinal) if ordinal else 0.0

    points = [value(k) for k in (0, *mags.interesting()) if lo <= k <= hi]
    points += [-value(k) for k in mags.interesting() if lo <= -k <= hi]
    points.sort(key=abs)  # shrink towards 0, then the small boundary values
    if fmt.has_negative_zero and _has_negative_zero(min_value, max_value):
        points.insert(1 if points and points[0] == 0 else 0, -0.0)
    if fmt.has_inf and allow_infinity is not False:
        if max_value is None or max_value == math.inf:
            points.append(math.inf)
        if min_value is None or min_value == -math.inf:
            points.append(-math.inf)
    if fmt.has_nan and allow_nan:
        points.append(math.nan)
        if fmt.specials != "fnuz":
            points.append(-math.nan)
    parts = [st.sampled_from(points)] if points else []
    if lo <= hi:
        parts.append(_mapped(st.integers(lo, hi), value))
        if hi >= 1:  # positive values, binade by binade
            parts.append(_mapped(mags.by_binade(max(lo, 1), hi), value))
        if lo <= -1:
            negated = _mapped(mags.by_binade(max(-hi, 1), -lo), lambda k: -value(k))
            parts.append(negated)
    if not parts:
        raise InvalidArgument(
            f"no value of {fmt.name} lies in [{min_value}, {max_value}] with "
            f"allow_subnormal={allow_subnormal}, allow_infinity={allow_infinity}"
        )
    return st.one_of(parts)


def _has_negative_zero(min_value: float | None, max_value: float | None) -> bool:
    low_ok = min_value is None or min_value < 0 or math.copysign(1, min_value) < 0
    return low_ok and (max_value is None or max_value >= 0)


def _ordinal_bounds(
    mags: _Magnitudes, min_value: float | None, max_value: float | None
) -> tuple[int, int]:
    """The range of ordinals (value k is k, -value k is -k) within the bounds."""
    if min_value is None:
        lo = -mags.n
    elif min_value <= 0:
        lo = -mags.count_below(-min_value, inclusive=True)
    else:
        lo = mags.count_below(min_value, inclusive=False) + 1
    if max_value is None:
        hi = mags.n
    elif max_value == 0 and math.copysign(1, max_value) < 0:
        hi = -1  # max_value=-0.0 excludes +0.0
    elif max_value >= 0:
        hi = mags.count_below(max_value, inclusive=True)
    else:
        hi = -(mags.count_below(-max_value, inclusive=False) + 1)
    return lo, hi


# -- near ties -------------------------------------------------------------------


def near_ties(
    fmt: Format | str, *, dtype: np.dtype | type = np.float64
) -> st.SearchStrategy[np.floating]:
    """Generate floats at, just below and just above the midpoints of a format.

    A midpoint is the exact average of two neighbouring values of the format,
    of either sign; the float is the midpoint itself or its neighbour in
    ``dtype`` on either side (``np.nextafter``). The pairs cover the whole
    range with extra weight on the edges:

    - 0 and the smallest positive value (half the smallest subnormal, where
      underflow to zero is decided; half the smallest normal without subnormals);
    - the subnormal/normal boundary, 1.0 and the top binade;
    - max and the value the format would have next if its exponent range went
      on, ``max + ulp(max)``: their midpoint is the overflow bound of
      round-to-nearest (fp16: 65520; e4m3fn: 464, below the NaN code's 480).

    Parameters
    ----------
    fmt : Format or str
        A format or its name.
    dtype : {numpy.float64, numpy.float32, numpy.float16}, default float64
        The float type of the results. It must hold every midpoint exactly:
        ``precision + 1`` significand bits and ``emin - precision`` as an
        exponent (so float64 serves every format with ``precision <= 52``,
        float32 serves bf16, fp16 and the fp8 formats).

    Returns
    -------
    SearchStrategy[numpy.floating]
        NumPy scalars of ``dtype`` (a ``numpy.float64`` is a Python float).

    Raises
    ------
    hypothesis.errors.InvalidArgument
        If ``dtype`` cannot hold the midpoints of ``fmt`` exactly (e.g. fp64,
        whose midpoints need 54 bits).

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> import lowprec, lowprec.testing
    >>> @settings(deadline=None)  # the first lowprec.round call compiles
    ... @given(lowprec.testing.near_ties(lowprec.fp16))
    ... def test_ties_to_away_never_rounds_below_ties_to_even(x):
    ...     even = lowprec.round(x, lowprec.fp16)
    ...     away = lowprec.round(x, lowprec.fp16, rounding="ties_to_away")
    ...     assert even == away or abs(away) > abs(even)
    >>> test_ties_to_away_never_rounds_below_ties_to_even()
    """
    fmt = as_format(fmt)
    dt = _check_dtype(dtype)
    if not _holds_midpoints(fmt, dt):
        raise InvalidArgument(
            f"{dt} cannot hold the midpoints of {fmt.name} exactly (they need "
            f"{fmt.precision + 1} significand bits and exponents down to "
            f"{fmt.emin - fmt.precision}); use a wider dtype or a narrower format"
        )
    mags = _Magnitudes(fmt, fmt.subnormals)

    def tie(drawn: tuple[int, bool, int]) -> np.floating:
        k, negative, step = drawn
        # exact: half the gap is a power of two the dtype holds, and the sum
        # needs p + 1 bits; (a + b) / 2 could overflow above max
        mid = mags[k] + mags.gap_above(k) / 2
        x = dt.type(-mid if negative else mid)
        if step:
            x = np.nextafter(x, dt.type(step * math.inf))
        return x

    # pair k is (value k, value k + 1); take both pairs around each edge value
    edges = mags.interesting()
    pairs = sorted({0, mags.n} | {j for k in edges for j in (k - 1, k)})
    pair = st.one_of(
        st.sampled_from(pairs), st.integers(0, mags.n), mags.by_binade(0, mags.n)
    )
    return _mapped(st.tuples(pair, st.booleans(), st.sampled_from((0, -1, 1))), tie)


def _check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _DTYPES:
        raise InvalidArgument(
            f"dtype must be float16, float32 or float64, got {dtype!r}"
        )
    return dt


def _holds_midpoints(fmt: Format, dt: np.dtype) -> bool:
    precision, emax, min_exponent = _DTYPES[dt]
    # the largest midpoint, max + ulp/2, stays in the binade of max
    return (
        fmt.precision + 1 <= precision
        and fmt.emax <= emax
        and fmt.emin - fmt.precision >= min_exponent
    )


def _holds_values(fmt: Format, dt: np.dtype) -> bool:
    precision, emax, min_exponent = _DTYPES[dt]
    return (
        fmt.precision <= precision
        and fmt.emax <= emax
        and math.log2(fmt.smallest_subnormal) >= min_exponent
    )


# -- floats ----------------------------------------------------------------------


def floats(
    fmt: Format | str,
    *,
    dtype: np.dtype | type = np.float64,
    allow_nan: bool = True,
    allow_infinity: bool = True,
) -> st.SearchStrategy[np.floating]:
    """Generate inputs for rounding onto a format, across and beyond its range.

    A quarter of the draws are log-uniform: a random exponent from three
    binades below the smallest subnormal (underflow to zero) to three above max
    (overflow), clipped to what ``dtype`` holds, with a random significand and
    sign; a third of those are from the binades at either end. The rest are
    :func:`values` of the format (which must round to themselves),
    :func:`near_ties` (where the tie rule decides) when ``dtype`` holds the
    midpoints exactly, and fixed points: the dtype's smallest subnormal and
    largest value, its first value above the format's max, ±inf and NaN.

    Parameters
    ----------
    fmt : Format or str
        A format or its name.
    dtype : {numpy.float64, numpy.float32, numpy.float16}, default float64
        The float type of the inputs. It must hold every value of ``fmt``
        (:func:`lowprec.round` refuses a narrower one): float32 serves bf16,
        tf32, fp16, the fp8, fp6 and fp4 formats and fp32; float16 serves fp16
        and the narrower fp8 formats.
    allow_nan : bool, default True
        Include NaN (of either sign, whether or not the format has NaN).
    allow_infinity : bool, default True
        Include ±inf (whether or not the format has inf).

    Returns
    -------
    SearchStrategy[numpy.floating]
        NumPy scalars of ``dtype`` (a ``numpy.float64`` is a Python float).

    Raises
    ------
    hypothesis.errors.InvalidArgument
        If ``dtype`` cannot hold every value of ``fmt``.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> import lowprec, lowprec.testing
    >>> @settings(deadline=None)  # the first lowprec.round call compiles
    ... @given(lowprec.testing.floats(lowprec.bf16, dtype=np.float32))
    ... def test_rounding_is_idempotent(x):
    ...     once = lowprec.round(x, lowprec.bf16)
    ...     twice = lowprec.round(once, lowprec.bf16)
    ...     assert np.array_equal(once, twice, equal_nan=True)
    >>> test_rounding_is_idempotent()
    """
    fmt = as_format(fmt)
    dt = _check_dtype(dtype)
    if not _holds_values(fmt, dt):
        raise InvalidArgument(
            f"{dt} cannot hold every value of {fmt.name}; use a wider dtype"
        )
    precision, emax, min_exponent = _DTYPES[dt]
    nmant = precision - 1
    # exponents from 3 binades below the smallest subnormal to 3 above max,
    # with extra draws at both ends so underflow and overflow are common
    tiniest = int(math.log2(fmt.smallest_subnormal))
    lowest, highest = max(tiniest - 3, min_exponent), min(fmt.emax + 3, emax)
    exponents = st.one_of(
        st.integers(lowest, highest),
        st.integers(lowest, max(tiniest - 1, lowest)),
        st.integers(min(fmt.emax, highest), highest),
    )

    def log_uniform(drawn: tuple[int, int, bool]) -> np.floating:
        e, significand, negative = drawn
        # (1 + m / 2**nmant) * 2**e; ldexp rounds once below the normal range
        x = math.ldexp((1 << nmant) | significand, e - nmant)
        return dt.type(-x if negative else x)

    spread = st.tuples(exponents, st.integers(0, (1 << nmant) - 1), st.booleans())
    parts = [
        _mapped(values(fmt, allow_nan=False, allow_infinity=False), dt.type),
        _mapped(spread, log_uniform),
    ]
    if _holds_midpoints(fmt, dt):
        parts.append(near_ties(fmt, dtype=dt))
    # the dtype's own extremes, and its first value past max: overflow inputs
    # even where max is in the dtype's top binade (bf16 in float32)
    info = np.finfo(dt)
    with np.errstate(over="ignore"):  # inf when max is the dtype's max
        above_max = np.nextafter(dt.type(fmt.max), dt.type(math.inf))
    edges = [info.smallest_subnormal, above_max, info.max]
    edges = [e for e in edges if np.isfinite(e)]
    specials = edges + [-e for e in edges]
    specials += [math.inf, -math.inf] if allow_infinity else []
    specials += [math.nan, -math.nan] if allow_nan else []
    parts.append(st.sampled_from([dt.type(s) for s in specials]))
    return st.one_of(parts)


# -- arrays ----------------------------------------------------------------------


def arrays(
    fmt: Format | str,
    shape: int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]],
    *,
    dtype: np.dtype | type = np.float64,
    unique: bool = False,
    **value_options: object,
) -> st.SearchStrategy[np.ndarray]:
    """Generate NumPy arrays whose elements are values of a format.

    A thin wrapper of :func:`hypothesis.extra.numpy.arrays` with
    ``elements=values(fmt, **value_options)``.

    Parameters
    ----------
    fmt : Format or str
        A format or its name.
    shape : int, tuple of int or strategy
        The shape, or a strategy for it such as
        ``hypothesis.extra.numpy.array_shapes()``.
    dtype : {numpy.float64, numpy.float32, numpy.float16}, default float64
        The array dtype; it must hold every value of ``fmt``.
    unique : bool, default False
        Whether the elements must be distinct.
    **value_options
        ``allow_nan``, ``allow_infinity``, ``allow_subnormal``, ``min_value``,
        ``max_value``: as in :func:`values`.

    Returns
    -------
    SearchStrategy[numpy.ndarray]

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given
    >>> import lowprec, lowprec.testing
    >>> @given(lowprec.testing.arrays(lowprec.fp8_e4m3fn, 16, allow_nan=False))
    ... def test_no_nan(a):
    ...     assert a.shape == (16,) and not np.isnan(a).any()
    >>> test_no_nan()
    """
    fmt = as_format(fmt)
    dt = _check_dtype(dtype)
    if not _holds_values(fmt, dt):
        raise InvalidArgument(
            f"{dt} cannot hold every value of {fmt.name}; use a wider dtype"
        )
    return hnp.arrays(dt, shape, elements=values(fmt, **value_options), unique=unique)
