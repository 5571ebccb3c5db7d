"""Strategies for block quantization: :func:`block_formats` and :func:`blocks`.

A block draw is a float array of whole blocks where the bugs of block scaling
live: a spread of magnitudes inside a block (elements that flush to zero beside
its amax), the amax at or just past a power of two (where the floor and ceil rules
part), elements on the element grid's midpoints times the block's scale (ties),
signed zeros, all-zero blocks, and, if asked, NaN and ±inf.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from lowprec.blocks.formats import BlockFormat, as_block_format
from lowprec.blocks.formats import block_formats as _builtin_block_formats

__all__ = ["block_formats", "blocks"]


def block_formats() -> st.SearchStrategy[BlockFormat]:
    """The built-in block formats (MX and NVFP4).

    Examples
    --------
    >>> from lowprec.testing import block_formats
    >>> block_formats().example().name in ("mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3",
    ...     "mxfp6_e3m2", "mxfp4_e2m1", "mxint8", "nvfp4")
    True
    """
    return st.sampled_from(_builtin_block_formats())


@st.composite
def _block(draw, fmt: BlockFormat, allow_nan: bool, allow_infinity: bool,
           min_exp: int, max_exp: int) -> list[float]:
    n = fmt.block_size
    kind = draw(st.sampled_from(("spread", "grid", "zero", "pow2")))
    scale_exp = draw(st.integers(min_exp, max_exp))
    if kind == "zero":
        return [draw(st.sampled_from((0.0, -0.0))) for _ in range(n)]
    if kind == "grid":  # element values and their midpoints times a power of two
        vals = np.unique(np.abs(fmt.element_values()[np.isfinite(
            fmt.element_values())]))
        mids = (vals[:-1] + vals[1:]) / 2
        pool = np.concatenate([vals, mids])
        out = [math.ldexp(float(draw(st.sampled_from(list(pool)))), scale_exp)
               * draw(st.sampled_from((1.0, -1.0))) for _ in range(n)]
        out[draw(st.integers(0, n - 1))] = math.ldexp(fmt.elem_max, scale_exp)
    else:
        spread = draw(st.integers(0, 40))
        out = [draw(st.floats(0.5, 1.0, exclude_max=True))
               * math.ldexp(1.0, scale_exp - draw(st.integers(0, spread)))
               * draw(st.sampled_from((1.0, -1.0))) for _ in range(n)]
        if kind == "pow2":  # amax exactly a power of two, or its neighbours
            amax = math.ldexp(1.0, scale_exp)
            out[draw(st.integers(0, n - 1))] = draw(st.sampled_from(
                (amax, math.nextafter(amax, 0), math.nextafter(amax, math.inf))))
    for _ in range(draw(st.integers(0, 2))):
        special = [0.0, -0.0]
        special += [math.nan] if allow_nan else []
        special += [math.inf, -math.inf] if allow_infinity else []
        out[draw(st.integers(0, n - 1))] = draw(st.sampled_from(special))
    return out


def blocks(
    fmt: BlockFormat | str,
    *,
    max_blocks: int = 4,
    dtype: np.dtype | type = np.float32,
    allow_nan: bool = True,
    allow_infinity: bool = True,
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of 1 to ``max_blocks`` whole blocks of ``fmt``, shape (n, block_size).

    Parameters
    ----------
    fmt : BlockFormat or str
    max_blocks : int, default 4
    dtype : numpy.float32 or numpy.float64
        float32 draws keep their magnitudes within float32's normal range.
    allow_nan, allow_infinity : bool, default True
        Whether a block may hold NaN or ±inf.

    Examples
    --------
    >>> from lowprec.testing import blocks
    >>> blocks("mxfp4_e2m1").example().shape[1]
    32
    """
    fmt = as_block_format(fmt)
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    lo, hi = (-100, 100) if dt == np.float32 else (-160, 160)
    one = _block(fmt, allow_nan, allow_infinity, lo, hi)
    return st.lists(one, min_size=1, max_size=max_blocks).map(
        lambda bs: np.array(bs, dtype=dt))
