"""The random Hadamard transform NVFP4 training applies before quantizing.

``hadamard(x)`` computes ``(1/sqrt(d)) x S H_d`` on each tile of ``d`` elements
along an axis, with ``H_d`` Sylvester's Hadamard matrix (``H_1 = [1]``,
``H_2n = [[H, H], [H, -H]]``) and ``S = diag(signs)``. It spreads an outlier over
its tile, so the tile's amax, and hence its block scale, shrinks.

The products are computed with the fast Walsh-Hadamard butterflies in float64,
in a fixed order (each butterfly's sum rounded once), so the result does not
depend on a BLAS.
"""

from __future__ import annotations

import math

import numpy as np

from lowprec.formats import Format, as_format
from lowprec.rounding.rounder import as_float_array
from lowprec.rounding.rounder import round as round_to

__all__ = ["NVFP4_SIGNS", "hadamard", "sylvester"]

# NVIDIA's fixed sign vector for the 16-point transform (Transformer Engine's
# NVFP4 recipe; the sequence issue 17 quotes).
NVFP4_SIGNS = (1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1)


def sylvester(d: int) -> np.ndarray:
    """Sylvester's d x d Hadamard matrix of ±1 (d a power of two), float64."""
    h = np.ones((1, 1))
    while h.shape[0] < d:
        h = np.block([[h, h], [h, -h]])
    return h


def hadamard(x: object, d: int = 16, *, signs: object = None, axis: int = -1,
             round_output: Format | str | None = None) -> np.ndarray:
    """The random Hadamard transform ``(1/sqrt(d)) x S H_d``, tile-wise along axis.

    Parameters
    ----------
    x : array_like
        float values; the length along ``axis`` must be a multiple of ``d``.
    d : int, default 16
        The tile size, a power of two.
    signs : sequence of ±1, optional
        The diagonal of S; default NVFP4's vector for d = 16, all ones otherwise.
    axis : int, default -1
    round_output : Format or str, optional
        Round the result to this format, to nearest even (NVFP4 uses bf16).

    Returns
    -------
    ndarray of float64, x's shape

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> lowprec.hadamard(np.array([4.0, 0, 0, 0]), d=4).tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    arr = as_float_array(x).astype(np.float64)
    if isinstance(d, bool) or not isinstance(d, int | np.integer):
        raise TypeError(f"d must be an int, got {type(d).__name__}")
    if d < 1 or d & (d - 1):
        raise ValueError(f"d must be a power of two, got {d}")
    if arr.ndim == 0 or not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis: {axis} is out of range for shape {arr.shape}")
    if arr.shape[axis] % d:
        raise ValueError(f"x: the length {arr.shape[axis]} along axis {axis} is not "
                         f"a multiple of d={d}")
    if signs is None:
        signs = NVFP4_SIGNS if d == 16 else (1,) * d
    s = np.asarray(signs, dtype=np.float64)
    if s.shape != (d,) or not np.all(np.abs(s) == 1):
        raise ValueError(f"signs must be {d} values of +1 or -1")
    t = np.moveaxis(arr, axis, -1)
    tiles = (t.reshape(t.shape[:-1] + (-1, d)) * s).copy()
    h = 1
    while h < d:  # butterflies: (a, b) -> (a + b, a - b) on pairs h apart
        v = tiles.reshape(tiles.shape[:-1] + (d // (2 * h), 2, h))
        a, b = v[..., 0, :].copy(), v[..., 1, :].copy()
        v[..., 0, :], v[..., 1, :] = a + b, a - b
        h *= 2
    out = np.moveaxis((tiles / math.sqrt(d)).reshape(t.shape), -1, axis)
    if round_output is not None:
        out = np.asarray(round_to(out, as_format(round_output, "round_output")))
    return np.ascontiguousarray(out)
