"""The strategies for what a format holds: :func:`codes`, :func:`values` and
:func:`near_ties` (at and beside the midpoints between neighbouring values).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lowprec.formats import Format, as_format
from lowprec.testing._decode import _kind, _Magnitudes
from lowprec.testing._support import (
    _check_dtype,
    _dtype_info,
    _holds_midpoints,
    _mapped,
)

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
    dtype : numpy.float64, float32, float16 or an ml_dtypes float type
        The float type of the results, default float64. It must hold every
        midpoint exactly: ``precision + 1`` significand bits and
        ``emin - precision`` as an exponent (so float64 serves every format with
        ``precision <= 52``, float32 serves bf16, fp16 and the fp8 formats, and
        ``ml_dtypes.bfloat16`` the fp8, fp6 and fp4 formats).

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
    top = _dtype_info(dt).max

    def tie(drawn: tuple[int, bool, int]) -> np.floating:
        k, negative, step = drawn
        # exact: half the gap is a power of two the dtype holds, and the sum
        # needs p + 1 bits; (a + b) / 2 could overflow above max
        mid = mags[k] + mags.gap_above(k) / 2
        x = dt.type(-mid if negative else mid)
        if step:
            # towards ±max, not ±inf: some ml_dtypes types have no inf
            x = np.nextafter(x, dt.type(step * top))
        return x

    # pair k is (value k, value k + 1); take both pairs around each edge value
    edges = mags.interesting()
    pairs = sorted({0, mags.n} | {j for k in edges for j in (k - 1, k)})
    pair = st.one_of(
        st.sampled_from(pairs), st.integers(0, mags.n), mags.by_binade(0, mags.n)
    )
    return _mapped(st.tuples(pair, st.booleans(), st.sampled_from((0, -1, 1))), tie)
