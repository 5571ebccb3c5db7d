"""What the strategies share: the float dtypes they generate, and ``_mapped``."""

from __future__ import annotations

import math
from collections.abc import Callable

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
