"""``quantize_blocks``: a tensor to block-scaled codes, and :class:`BlockArray` back.

The layout, which a block-scaled matmul over K reads directly:

- ``codes`` has x's shape (padded along the blocked axes when ``pad=True``), one
  uint8 code per element, in x's own index order. Block ``b`` along ``axis``
  holds the codes at indices ``b*B .. b*B + B - 1`` of that axis.
- ``scales`` has x's shape with the blocked axis's length replaced by the number
  of blocks. So for ``A`` (M, K) quantized with ``axis=-1`` and ``B`` (K, N) with
  ``axis=0``, ``A.scales[i, b]`` and ``B.scales[b, j]`` scale the ``b``-th
  32-element slice of row i and column j: what the MX dot product
  ``X(A) X(B) sum_k P_k(A) P_k(B)`` takes per block.
- With ``block_shape=(r, c)`` the blocks are r x c tiles of the last two axes and
  ``scales`` has shape ``(..., M/r, K/c)``.

The random bits of the stochastic modes are indexed by an element's position in
the blocked order (block number times block size plus position in the block), so
a seed gives the same codes whatever the thread count.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lowprec.blocks import reference
from lowprec.blocks._quantize_kernel import (
    ElementPlan,
    ElementPlan32,
    ScalePlan,
    finite_amax32_kernel,
    quantize_rows32_kernel,
    quantize_rows_kernel,
)
from lowprec.blocks.formats import BlockFormat, as_block_format, check_scale_rule
from lowprec.blocks.stats import BlockStats
from lowprec.formats import Format, IntegerFormat
from lowprec.modes import STOCHASTIC, mode_id
from lowprec.rounding.encoding import decode
from lowprec.rounding.rounder import as_float_array

__all__ = ["BlockArray", "quantize_blocks"]

_NO_VALUES = np.zeros(1, dtype=np.float64)


class BlockArray:
    """A tensor stored in a block format: scale codes and element codes.

    Made by :func:`quantize_blocks`; see :mod:`lowprec.blocks.quantize` for the
    layout of ``codes`` and ``scales``.

    Attributes
    ----------
    format : BlockFormat
    shape : tuple of int
        The shape of the quantized tensor (before any padding).
    axis : int
        The (non-negative) axis the blocks run along; for 2-D tiles the last one.
    block_shape : tuple of int
        The extent of a block along its axis, ``(B,)``, or of a tile, ``(r, c)``.
    scale_rule : str
    scales : ndarray of uint8
        One scale code per block (e8m0, or NVFP4's e4m3 used unsigned).
    codes : ndarray of uint8
        One element code per element, x's (padded) shape.
    tensor_scale : numpy.float32 or None
        NVFP4's per-tensor ``S_enc``; values are ``code * s_block / S_enc``.
    """

    def __init__(self, fmt: BlockFormat, shape: tuple[int, ...], axis: int,
                 block_shape: tuple[int, ...], scale_rule: str, scales: np.ndarray,
                 codes: np.ndarray, tensor_scale: np.float32 | None) -> None:
        self.format = fmt
        self.shape = tuple(shape)
        self.axis = axis
        self.block_shape = tuple(block_shape)
        self.scale_rule = scale_rule
        self.scales = scales
        self.codes = codes
        self.tensor_scale = tensor_scale

    def __repr__(self) -> str:
        return (f"BlockArray({self.format.name}, shape={self.shape}, "
                f"block_shape={self.block_shape}, axis={self.axis}, "
                f"scale_rule={self.scale_rule!r})")

    @property
    def nbytes(self) -> int:
        """Storage bytes: the element codes packed at their bit width, the scale
        codes, and 4 for a per-tensor fp32 scale."""
        elem = math.ceil(self.codes.size * self.format.element_bits / 8)
        return elem + self.scales.size + (4 if self.tensor_scale is not None else 0)

    def pack(self) -> np.ndarray:
        """The 4-bit codes two per byte, the first element in the low nibble.

        Elements are taken in the C order of ``codes``; an odd count ends with a
        zero high nibble. ValueError for elements that are not 4 bits wide.
        """
        if self.format.element_bits != 4:
            raise ValueError(f"pack: only 4-bit elements pack two per byte; "
                             f"{self.format.name} has {self.format.element_bits}-bit "
                             "elements (use .codes)")
        flat = self.codes.reshape(-1)
        if flat.size % 2:
            flat = np.concatenate([flat, np.zeros(1, np.uint8)])
        return (flat[0::2] | (flat[1::2] << np.uint8(4))).astype(np.uint8)

    def _expand(self, per_block: np.ndarray) -> np.ndarray:
        """A per-block array repeated onto the (padded) element layout."""
        if len(self.block_shape) == 2:
            r, c = self.block_shape
            return np.repeat(np.repeat(per_block, r, axis=-2), c, axis=-1)
        return np.repeat(per_block, self.block_shape[0], axis=self.axis)

    def dequantize(self, dtype: type | np.dtype = np.float32) -> np.ndarray:
        """The values the codes stand for, in float32 or float64, x's shape.

        MX: ``element * 2**(scale - 127)``, computed exactly and rounded once to
        ``dtype``; a block with the NaN scale code is all NaN. NVFP4: ``code *
        s_block / S_enc``, each step in ``dtype``.

        Examples
        --------
        >>> import numpy as np, lowprec
        >>> q = lowprec.quantize_blocks(np.array([1.0, -0.3, 6.5, 0.0]), "nvfp4",
        ...                             block_shape=(4,))
        >>> q.dequantize().tolist()
        [1.0833333730697632, -0.5416666865348816, 6.5, 0.0]
        """
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        vals = self.format.element_values()[self.codes]
        fmt = self.format
        if fmt.two_level:
            s_vals = np.asarray(self._expand(_scale_values(fmt)[self.scales]), dt)
            out = (vals.astype(dt) * s_vals) / dt.type(self.tensor_scale)
        else:
            exps = self._expand(self.scales.astype(np.int64) - fmt.scale.bias)
            with np.errstate(over="ignore"):
                out = np.ldexp(vals, exps).astype(dt)
        nan = self._expand(self.scales == fmt.scale.nan_code)
        out = np.where(nan, dt.type(np.nan), out)
        return np.ascontiguousarray(out[tuple(slice(0, n) for n in self.shape)])


@functools.lru_cache(maxsize=16)
def _scale_values(fmt: BlockFormat) -> np.ndarray:
    """The float64 value of every code of a Format scale (NVFP4's e4m3)."""
    return np.asarray(decode(np.arange(256), fmt.scale), dtype=np.float64)


def _block_geometry(x: np.ndarray, fmt: BlockFormat, axis: object,
                    block_shape: object) -> tuple[int, tuple[int, ...]]:
    """Validated (axis, block_shape)."""
    if x.ndim == 0:
        raise ValueError("x: quantize_blocks needs at least a 1-D array")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis: {axis} is out of range for a {x.ndim}-D array")
    axis = int(axis) % x.ndim
    if block_shape is None:
        return axis, (fmt.block_size,)
    if isinstance(block_shape, int | np.integer) and not isinstance(block_shape, bool):
        block_shape = (block_shape,)
    if (not isinstance(block_shape, tuple | list) or not 1 <= len(block_shape) <= 2
            or any(isinstance(b, bool) or not isinstance(b, int | np.integer)
                   or b < 1 for b in block_shape)):
        raise ValueError(f"block_shape must be a positive int or a tuple of one or "
                         f"two positive ints, got {block_shape!r}")
    if len(block_shape) == 2:
        if x.ndim < 2:
            raise ValueError("block_shape: 2-D tiles need an array of 2 or more "
                             "dimensions")
        if axis != x.ndim - 1:
            raise ValueError("axis: 2-D tiles run over the last two axes; leave "
                             "axis at -1")
    return axis, tuple(int(b) for b in block_shape)


def _pad_to(x: np.ndarray, axes: tuple[int, ...], sizes: tuple[int, ...],
            pad: bool) -> np.ndarray:
    """x padded with zeros to multiples of ``sizes`` along ``axes``, or ValueError."""
    widths = [(0, 0)] * x.ndim
    for ax, b in zip(axes, sizes, strict=True):
        extra = -x.shape[ax] % b
        if extra and not pad:
            raise ValueError(f"x: axis {ax} has length {x.shape[ax]}, not a multiple "
                             f"of the block size {b}; pass pad=True to pad the last "
                             "block with zeros")
        widths[ax] = (0, extra)
    return np.pad(x, widths) if any(w[1] for w in widths) else x


def _to_rows(x: np.ndarray, axis: int, bshape: tuple[int, ...]) -> np.ndarray:
    """The blocks of a padded x, one per row."""
    if len(bshape) == 1:
        return np.ascontiguousarray(np.moveaxis(x, axis, -1)).reshape(-1, bshape[0])
    (r, c), (m, k) = bshape, x.shape[-2:]
    t = x.reshape(x.shape[:-2] + (m // r, r, k // c, c)).swapaxes(-3, -2)
    return np.ascontiguousarray(t).reshape(-1, r * c)


def _from_rows(rows: np.ndarray, per_block: np.ndarray, padded: tuple[int, ...],
               axis: int, bshape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(codes in x's padded layout, scales in x's layout with blocks on axis)."""
    if len(bshape) == 1:
        moved = padded[:axis] + padded[axis + 1:] + (padded[axis],)
        codes = np.moveaxis(rows.reshape(moved), -1, axis)
        nb = moved[:-1] + (padded[axis] // bshape[0],)
        scales = np.moveaxis(per_block.reshape(nb), -1, axis)
        return np.ascontiguousarray(codes), np.ascontiguousarray(scales)
    (r, c), (m, k) = bshape, padded[-2:]
    lead = padded[:-2]
    codes = rows.reshape(lead + (m // r, k // c, r, c)).swapaxes(-3, -2)
    return (np.ascontiguousarray(codes).reshape(padded),
            per_block.reshape(lead + (m // r, k // c)))


def quantize_blocks(
    x: object,
    fmt: BlockFormat | str,
    *,
    axis: int = -1,
    block_shape: int | tuple[int, ...] | None = None,
    scale_rule: str | None = None,
    rounding: str = "ties_to_even",
    rng: int | np.random.Generator | None = None,
    pad: bool = False,
    stats: BlockStats | None = None,
) -> BlockArray:
    """Quantize a tensor to a block-scaled format (OCP MX, NVFP4).

    Each block shares one scale ``X`` chosen from its largest magnitude by the scale
    rule, and each element is stored as ``round(x / X)`` in the element format,
    saturating at ±max (see :mod:`lowprec.blocks.reference` for the exact rules).
    A block holding a NaN or ±inf gets the NaN scale code (255 for e8m0) and
    dequantizes to NaN; its NaN elements keep the element's NaN code (0x7F in
    e4m3). An all-zero block gets scale code 0. The sign of zero is kept.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 values (integers converted exactly), 1-D or
        more. NVFP4 works in fp32 (Transformer Engine's chain): float64 values are
        first rounded to float32.
    fmt : BlockFormat or str
        ``"mxfp8_e4m3"``, ``"mxfp8_e5m2"``, ``"mxfp6_e2m3"``, ``"mxfp6_e3m2"``,
        ``"mxfp4_e2m1"``, ``"mxint8"``, ``"nvfp4"`` or a :class:`BlockFormat`.
    axis : int, default -1
        The axis the blocks run along (for a matmul: K).
    block_shape : int or tuple, optional
        ``(B,)`` overrides the block size; ``(r, c)`` makes r x c tiles of the last
        two axes (as NVFP4 uses for weights). Default: the format's block size.
    scale_rule : str, optional
        MX: ``"floor"`` (the spec's, default), ``"ceil"``, ``"rceil"`` (NVIDIA's,
        never saturates), ``"even"``. NVFP4: the association of the fp32 chain,
        ``"te"`` (default), ``"cudnn"`` or ``"div6"``.
    rounding : str, default "ties_to_even"
        Any mode of :func:`lowprec.round` for the element cast.
    rng : int or numpy.random.Generator, optional
        Seed or generator for the stochastic modes.
    pad : bool, default False
        Pad a ragged last block with zeros instead of raising ValueError.
    stats : BlockStats, optional
        Counts of saturated and flushed elements and of NaN blocks are added.

    Returns
    -------
    BlockArray

    Raises
    ------
    TypeError
        For a non-float x or options of the wrong type.
    ValueError
        For an unknown format, rule or mode, a bad axis, or a ragged last block
        without ``pad=True``.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> v = np.arange(32) / 2 - 5  # -5.0 .. 10.5
    >>> q = lowprec.quantize_blocks(v, "mxfp4_e2m1")
    >>> int(q.scales[0]), q.codes[:6].tolist()
    (128, [12, 12, 12, 12, 11, 10])
    >>> q.dequantize()[:6].tolist()
    [-4.0, -4.0, -4.0, -4.0, -3.0, -2.0]
    """
    fmt = as_block_format(fmt)
    arr = as_float_array(x)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if fmt.two_level and arr.dtype == np.float64:
        with np.errstate(over="ignore"):  # beyond fp32 is inf: a NaN block
            arr = arr.astype(np.float32)
    rule = check_scale_rule(fmt, scale_rule)
    mode_id(rounding if isinstance(rounding, str) else repr(rounding))
    if rng is not None and rounding not in STOCHASTIC:
        raise ValueError(f"rng: only the stochastic modes use random bits, "
                         f"not {rounding!r}")
    if not isinstance(pad, bool | np.bool_):
        raise TypeError(f"pad must be True or False, got {pad!r}")
    if stats is not None and not isinstance(stats, BlockStats):
        raise TypeError(f"stats must be a lowprec.BlockStats, got "
                        f"{type(stats).__name__}")
    axis, bshape = _block_geometry(arr, fmt, axis, block_shape)
    axes = (arr.ndim - 2, arr.ndim - 1) if len(bshape) == 2 else (axis,)
    padded = _pad_to(arr, axes, bshape, bool(pad))
    rows = _to_rows(padded, axis, bshape)
    res = _quantize_rows(rows, fmt, rule, rounding, rng)
    codes, scales = _from_rows(res["codes"], res["scales"], padded.shape, axis, bshape)
    if stats is not None:
        stats.add(dict(elements=rows.size, blocks=rows.shape[0],
                       saturated=res["saturated"], flushed=res["flushed"],
                       nan_blocks=res["nan_blocks"]))
    return BlockArray(fmt, arr.shape, axis, bshape, rule, scales, codes,
                      res["tensor_scale"])


_SCALE_RULE_IDS = {"floor": 0, "ceil": 1, "rceil": 2, "even": 3, "te": 4,
                   "cudnn": 5, "div6": 6}


def _element_plan(el: Format | IntegerFormat) -> ElementPlan:
    if isinstance(el, IntegerFormat):
        lo = el.min_int & (el.num_codes - 1)
        return ElementPlan(1, el.frac_bits, 0, 0, float(el.max_int), el.min_int, 0,
                           0, el.num_codes - 1, el.max_int, lo, el.max_int, lo)
    nan_c = el.nan_code if el.has_nan else el.max_code
    inf_c = el.inf_code if el.has_inf else nan_c
    return ElementPlan(0, el.nmant, el.emin, el.bias, el.max, 0, el.max_code,
                       el.sign_mask, el.num_codes - 1, nan_c, nan_c | el.sign_mask,
                       inf_c, inf_c | el.sign_mask)


def _element_plan32(e: ElementPlan, max_value: float) -> ElementPlan32:
    i32 = np.int32
    return ElementPlan32(i32(e.nmant), i32(e.emin), i32(e.max_code), i32(e.sign_mask),
                         i32(e.nan_pos), i32(e.nan_neg), i32(e.inf_pos),
                         i32(e.inf_neg), np.float32(max_value))


def _kernel_applies(fmt: BlockFormat, rounding: str) -> bool:
    """The kernel does round-to-nearest-even onto elements with subnormals and -0
    whose values lie well inside float64 (every built-in); other cases run the
    NumPy reference."""
    el = fmt.element
    return rounding == "ties_to_even" and (fmt.is_integer or (
        el.subnormals and el.has_negative_zero and el.emax <= 500
        and el.emin - el.nmant >= -500))


def _float32_path(fmt: BlockFormat, rows: np.ndarray) -> bool:
    """Whether the float32 kernel applies: float32 rows, a float element whose
    values are float32 normals far from float32's ends (every built-in: half the
    smallest element value must lie above 2**-126, below which float32 products
    are not exact)."""
    el = fmt.element
    return (rows.dtype == np.float32 and not fmt.is_integer and el.emax <= 64
            and el.emin - el.nmant >= -100)


def _quantize_rows(rows: np.ndarray, fmt: BlockFormat, rule: str, rounding: str,
                   rng: object) -> dict[str, object]:
    """The kernel for round-to-nearest-even, the reference for the other modes."""
    if not _kernel_applies(fmt, rounding):
        return reference.quantize_rows(rows, fmt, rule, rounding, rng)
    if rows.dtype == np.float32:
        bits, absmask, infbits = rows.view(np.int32), np.int32(2**31 - 1), np.int32(
            0x7F800000)
    else:
        bits, absmask, infbits = rows.view(np.int64), np.int64(2**63 - 1), np.int64(
            0x7FF0000000000000)
    tensor_scale = None
    scale_e = _element_plan(fmt.element)  # (unused for MX)
    s_enc = 1.0
    if fmt.two_level:  # (rows are float32 here)
        g = np.int32(finite_amax32_kernel(bits.reshape(-1)))
        tensor_scale = reference.nvfp4_tensor_scale(g.view(np.float32))
        s_enc = float(tensor_scale)
        scale_e = _element_plan(fmt.scale)
        lo = hi = bias = 0
    else:
        lo, hi, bias = fmt.scale.min_exponent, fmt.scale.max_exponent, fmt.scale.bias
    s = ScalePlan(_SCALE_RULE_IDS[rule], fmt.emax_elem, fmt.element_precision,
                  float(np.float32(1.0 / fmt.elem_max)), lo, hi, bias,
                  fmt.scale.nan_code, s_enc, float(np.float32(1.0) / np.float32(s_enc)))
    codes = np.empty(rows.shape, dtype=np.uint8)
    scales = np.empty(rows.shape[0], dtype=np.uint8)
    counts = np.empty((3, rows.shape[0]), dtype=np.int64)
    values = _scale_values(fmt) if fmt.two_level else _NO_VALUES
    e = _element_plan(fmt.element)
    if _float32_path(fmt, rows):
        quantize_rows32_kernel(rows, bits, codes, scales, counts, e,
                               _element_plan32(e, fmt.element.max), s, scale_e,
                               values)
    else:
        quantize_rows_kernel(rows, bits, codes, scales, counts, e, s, scale_e, values,
                             absmask, infbits)
    sat, flushed, nan_blocks = counts.sum(axis=1)
    return dict(scales=scales, codes=codes, tensor_scale=tensor_scale,
                saturated=int(sat), flushed=int(flushed), nan_blocks=int(nan_blocks))
