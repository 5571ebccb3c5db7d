"""What the strategies share: the float dtypes they generate (NumPy's and
ml_dtypes'), and ``_mapped``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lowprec.formats import Format

# The float dtypes lowprec.round accepts, with (precision, emax, exponent of the
# smallest subnormal) to decide which formats each can hold.
_DTYPES = {
    np.dtype(np.float16): (11, 15, -24),
    np.dtype(np.float32): (24, 127, -149),
    np.dtype(np.float64): (53, 1023, -1074),
}


class _DtypeInfo(NamedTuple):
    """What a float dtype stores: its range and which special values it has."""

    precision: int
    emax: int
    min_exponent: int  # of the smallest subnormal
    max: float
    smallest_subnormal: float
    has_inf: bool
    has_nan: bool
    has_negative_zero: bool


def _dtype_info(dt: np.dtype) -> _DtypeInfo:
    """The :class:`_DtypeInfo` of a NumPy float dtype or an ml_dtypes float dtype."""
    if dt in _DTYPES:
        precision, emax, min_exponent = _DTYPES[dt]
        info = np.finfo(dt)
        return _DtypeInfo(
            precision,
            emax,
            min_exponent,
            float(info.max),
            float(info.smallest_subnormal),
            True,
            True,
            True,
        )
    import ml_dtypes  # only reached with an ml_dtypes dtype, so it is installed

    info = ml_dtypes.finfo(dt)
    # probe the specials: e4m3fn stores inf as NaN, fnuz formats -0 as +0, and
    # the fp6/fp4 formats have neither inf nor NaN (ml_dtypes' casts saturate)
    with np.errstate(invalid="ignore", over="ignore"):
        probe = np.array([math.inf, math.nan, -0.0]).astype(dt).astype(np.float64)
    return _DtypeInfo(
        info.nmant + 1,
        info.maxexp - 1,
        int(math.log2(float(info.smallest_subnormal))),
        float(info.max),
        float(info.smallest_subnormal),
        bool(np.isinf(probe[0])),
        bool(np.isnan(probe[1])),
        bool(np.signbit(probe[2])),
    )


def _is_ml_dtypes_float(dt: np.dtype) -> bool:
    """Whether ``dt`` is one of ml_dtypes' float types (bfloat16, float8_*, ...)."""
    if not dt.type.__module__.startswith("ml_dtypes"):
        return False
    import ml_dtypes

    try:
        ml_dtypes.finfo(dt)
    except (ValueError, TypeError):
        return False  # an ml_dtypes integer type (int4, uint4, ...)
    return True


def _mapped(strategy: st.SearchStrategy, fn: Callable) -> st.SearchStrategy:
    """``strategy.map(fn)``, except that a failing example prints as its value.

    Hypothesis prints a mapped value as the call that made it when that is
    shorter (``x=tie((1, False, 0))``); a user wants to see ``x=0.5``.
    """

    @st.composite
    def draw_mapped(draw: Callable) -> object:
        return fn(draw(strategy))

    return draw_mapped()


def _check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or (dt not in _DTYPES and not _is_ml_dtypes_float(dt)):
        raise InvalidArgument(
            "dtype must be float16, float32, float64 or an ml_dtypes float type "
            f"(ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ...), got {dtype!r}"
        )
    return dt


def _holds_midpoints(fmt: Format, dt: np.dtype) -> bool:
    precision, emax, min_exponent = _dtype_info(dt)[:3]
    # the largest midpoint, max + ulp/2, stays in the binade of max
    return (
        fmt.precision + 1 <= precision
        and fmt.emax <= emax
        and fmt.emin - fmt.precision >= min_exponent
    )


def _holds_values(fmt: Format, dt: np.dtype) -> bool:
    """Whether ``dt`` stores every finite value of ``fmt``, -0 included."""
    info = _dtype_info(dt)
    return (
        fmt.precision <= info.precision
        and fmt.emax <= info.emax
        and math.log2(fmt.smallest_subnormal) >= info.min_exponent
        and (info.has_negative_zero or not fmt.has_negative_zero)
    )


def _check_specials(dt: np.dtype, allow_nan: bool, allow_infinity: bool) -> None:
    """InvalidArgument if the draws would include a NaN or inf ``dt`` lacks."""
    info = _dtype_info(dt)
    for wanted, has, what, arg in (
        (allow_nan, info.has_nan, "NaN", "allow_nan"),
        (allow_infinity, info.has_inf, "inf", "allow_infinity"),
    ):
        if wanted and not has:
            raise InvalidArgument(
                f"{dt} has no {what}; pass {arg}=False to draw values it stores"
            )
