"""Inputs for code under test: :func:`floats` (across and beyond a format's range)
and :func:`arrays` (NumPy arrays of a format's values).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from lowprec.formats import Format, as_format
from lowprec.testing._support import (
    _check_dtype,
    _check_specials,
    _dtype_info,
    _holds_midpoints,
    _holds_values,
    _mapped,
)
from lowprec.testing._values import near_ties, values

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
    dtype : numpy.float64, float32, float16 or an ml_dtypes float type
        The float type of the inputs, default float64. It must hold every value
        of ``fmt`` (:func:`lowprec.round` refuses a narrower one): float32
        serves bf16, tf32, fp16, the fp8, fp6 and fp4 formats and fp32; float16
        serves fp16 and the narrower fp8 formats; ``ml_dtypes.bfloat16`` serves
        bf16 and every fp8, fp6 and fp4 format.
    allow_nan : bool, default True
        Include NaN (of either sign, whether or not the format has NaN). An
        ml_dtypes type without NaN (the fp6 and fp4 ones) needs False.
    allow_infinity : bool, default True
        Include ±inf (whether or not the format has inf). An ml_dtypes type
        without inf (``float8_e4m3fn``, the fnuz, fp6 and fp4 ones) needs False.

    Returns
    -------
    SearchStrategy[numpy.floating]
        NumPy scalars of ``dtype`` (a ``numpy.float64`` is a Python float).

    Raises
    ------
    hypothesis.errors.InvalidArgument
        If ``dtype`` cannot hold every value of ``fmt``, or the inf or NaN
        asked for.

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
    _check_specials(dt, allow_nan, allow_infinity)
    info = _dtype_info(dt)
    nmant = info.precision - 1
    # exponents from 3 binades below the smallest subnormal to 3 above max,
    # with extra draws at both ends so underflow and overflow are common
    tiniest = int(math.log2(fmt.smallest_subnormal))
    lowest = max(tiniest - 3, info.min_exponent)
    highest = min(fmt.emax + 3, info.emax)
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
    edges = [info.smallest_subnormal, info.max]
    if fmt.max < info.max:
        # max + its ulp in the dtype: exact, and at most the dtype's max
        edges.append(fmt.max + math.ldexp(1.0, math.frexp(fmt.max)[1] - 1 - nmant))
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
    dtype : numpy.float64, float32, float16 or an ml_dtypes float type
        The array dtype, default float64; it must hold every value of ``fmt``
        that is drawn (e.g. ``ml_dtypes.float8_e4m3fn`` for fp8_e4m3fn, or
        ``ml_dtypes.bfloat16`` for any fp8 format).
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

    The same values stored as ml_dtypes' bfloat16:

    >>> import ml_dtypes
    >>> @given(lowprec.testing.arrays(lowprec.fp8_e4m3fn, 4, dtype=ml_dtypes.bfloat16))
    ... def test_stored_in_bf16(a):
    ...     assert a.dtype == ml_dtypes.bfloat16
    >>> test_stored_in_bf16()
    """
    fmt = as_format(fmt)
    dt = _check_dtype(dtype)
    if not _holds_values(fmt, dt):
        raise InvalidArgument(
            f"{dt} cannot hold every value of {fmt.name}; use a wider dtype"
        )
    _check_specials(dt, *_drawn_specials(fmt, value_options))
    return hnp.arrays(dt, shape, elements=values(fmt, **value_options), unique=unique)


def _drawn_specials(fmt: Format, value_options: dict) -> tuple[bool, bool]:
    """Whether :func:`values` with these options draws NaN, and inf."""
    bounded = any(value_options.get(k) is not None for k in ("min_value", "max_value"))
    allow_nan = value_options.get("allow_nan")
    nan = fmt.has_nan and (allow_nan if allow_nan is not None else not bounded)
    inf = fmt.has_inf and value_options.get("allow_infinity") is not False
    return bool(nan), bool(inf)
