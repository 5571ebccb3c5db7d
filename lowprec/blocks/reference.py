"""The rules of block quantization, in readable NumPy: what the kernel must compute.

Every function works on a 2-D array of blocks, one block per row (the layout
:func:`lowprec.quantize_blocks` makes from any tensor). The Numba kernel in
``_quantize_kernel`` is tested bit for bit against :func:`quantize_rows`, and both
against an exact ``fractions`` statement in ``tests/blocks``.

MX (OCP Microscaling v1.0, section 6.3), amax the block's largest finite |x|:

- ``floor``: ``X = 2**(floor(log2 amax) - emax_elem)``;
- ``ceil``: ``X = 2**(ceil(log2 amax) - emax_elem)``;
- ``rceil`` (NVIDIA's ``cvt.rp.ue8m0``): ``X = 2**ceil(log2(d))`` with the fp32
  descale ``d = fp32(fp32(amax) * fp32(1 / elem_max))``;
- ``even``: amax rounded to the element's precision (ties to even), then floor;

each clamped to e8m0's ``[2**-127, 2**127]``. An all-zero block takes code 0.

NVFP4 (Transformer Engine's fp32 chain, each step an fp32 operation rounded to
nearest): ``S_enc = 2688 / global_amax`` (capped at FLT_MAX, 1 when global_amax
or S_enc is 0), ``s_block = e4m3(block_amax * (S_enc * (1/6)))`` for ``"te"``,
``e4m3(S_enc * (block_amax * (1/6)))`` for ``"cudnn"``, ``e4m3((block_amax / 6) *
S_enc)`` for ``"div6"``; ``encode = 1 / (s_block * (1 / S_enc))`` capped at
FLT_MAX; each element ``e2m1(x * encode)``, saturating.
"""

from __future__ import annotations

import numpy as np

from lowprec.blocks.formats import BlockFormat
from lowprec.formats import fp8_e4m3fn
from lowprec.rounding.encoding import encode
from lowprec.rounding.rounder import round as round_to

__all__ = ["mx_scale_exponents", "nvfp4_block_scales", "nvfp4_tensor_scale",
           "quantize_rows"]

_F32 = np.float32
_FLT_MAX = np.finfo(np.float32).max
# below every element format's half-smallest-subnormal by far: a scaled value
# that float64 underflows is replaced by this, which rounds the same in every mode
_TINY = 2.0**-1022


def mx_scale_exponents(amax: np.ndarray, fmt: BlockFormat, rule: str) -> np.ndarray:
    """The scale exponent E (``X = 2**E``) of each block, as int64, clamped.

    ``amax`` holds each block's largest finite magnitude (0 for an all-zero block).
    """
    amax = np.asarray(amax, dtype=np.float64)
    m, e = np.frexp(amax)  # amax = m * 2**e, 0.5 <= m < 1
    e = e.astype(np.int64)
    zero = amax == 0
    if rule == "floor":
        ex = e - 1 - fmt.emax_elem
    elif rule == "ceil":
        ex = np.where(m == 0.5, e - 1, e) - fmt.emax_elem
    elif rule == "even":
        p = fmt.element_precision
        carry = np.rint(np.ldexp(m, p)) == 2.0**p  # rounding up to the next binade
        ex = e - 1 + carry - fmt.emax_elem
    elif rule == "rceil":
        with np.errstate(over="ignore"):
            d = amax.astype(_F32) * _F32(1.0 / fmt.elem_max)  # fp32 ops, RNE
        dm, de = np.frexp(np.where(np.isinf(d), 0, d).astype(np.float64))
        ex = np.where(dm == 0.5, de - 1, de).astype(np.int64)  # ceil(log2 d)
        ex = np.where(np.isinf(d), fmt.scale.max_exponent, ex)
        zero = d == 0
    else:
        raise ValueError(f"scale_rule: unknown MX rule {rule!r}")
    lo, hi = fmt.scale.min_exponent, fmt.scale.max_exponent
    return np.where(zero, lo, np.clip(ex, lo, hi)).astype(np.int64)


def nvfp4_tensor_scale(global_amax: np.float32) -> np.float32:
    """``S_enc = fp32(448 * 6) / global_amax``, capped at FLT_MAX; 1 for 0."""
    g = _F32(global_amax)
    if g == 0:
        return _F32(1.0)
    with np.errstate(over="ignore", divide="ignore"):
        s = _F32(_F32(448.0 * 6.0) / g)
    s = min(s, _FLT_MAX)
    return _F32(1.0) if s == 0 else _F32(s)


def nvfp4_block_scales(block_amax: np.ndarray, s_enc: np.float32,
                       rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(s_block, encode) of each block, float32: the e4m3 block scale and the
    factor each element is multiplied by before rounding to e2m1."""
    a = np.asarray(block_amax, dtype=_F32)
    s_enc = _F32(s_enc)
    with np.errstate(over="ignore", divide="ignore"):
        if rule == "te":
            pre = a * _F32(s_enc * _F32(1.0 / 6.0))
        elif rule == "cudnn":
            pre = s_enc * (a * _F32(1.0 / 6.0))
        elif rule == "div6":
            pre = (a / _F32(6.0)) * s_enc
        else:
            raise ValueError(f"scale_rule: unknown NVFP4 rule {rule!r}")
        s_block = np.asarray(round_to(pre, fp8_e4m3fn, saturate=True), dtype=_F32)
        enc = _F32(1.0) / (s_block * (_F32(1.0) / s_enc))
    return s_block, np.minimum(enc, _FLT_MAX).astype(_F32)


def scaled_blocks(rows: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """``rows * 2**-E`` per block, exact, in float64 (nonfinite entries set to 0).

    float32 rows cannot underflow (2**-149 * 2**-127 is a float64 normal); a float64
    entry that would is replaced by ±2**-1022, which every rounding mode sends
    where the exact value goes (both lie far below half the element's smallest
    subnormal).
    """
    x = np.where(np.isfinite(rows), rows, 0.0).astype(np.float64)
    y = np.ldexp(x, -exps[:, None])
    lost = (np.abs(y) < _TINY) & (x != 0)
    return np.where(lost, np.copysign(_TINY, x), y)


def element_codes(y: np.ndarray, fmt: BlockFormat, rounding: str,
                  rng: object) -> tuple[np.ndarray, np.ndarray]:
    """(codes uint8, values float64) of scaled elements, rounded and saturated."""
    el = fmt.element
    if fmt.is_integer:
        v = np.asarray(round_to(y, el.grid_format(), rounding=rounding, rng=rng))
        v = np.clip(v, el.min, el.max)
        k = np.ldexp(v, el.frac_bits).astype(np.int64)
        return (k & (el.num_codes - 1)).astype(np.uint8), v
    v = np.asarray(round_to(y, el, rounding=rounding, saturate=True, rng=rng))
    return np.asarray(encode(v, el), dtype=np.uint8), v


def special_codes(rows: np.ndarray, codes: np.ndarray, fmt: BlockFormat) -> None:
    """Give NaN and ±inf elements their codes in place: the element's NaN code
    (with the sign), its inf code, or ±max where the element has neither."""
    el = fmt.element
    nan, inf = np.isnan(rows), np.isinf(rows)
    if not (nan.any() or inf.any()):
        return
    neg = np.signbit(rows)
    if fmt.is_integer:
        top, bottom = el.max_int, el.min_int & (el.num_codes - 1)
        codes[nan | inf] = np.where(neg, bottom, top)[nan | inf]
        return
    sign = np.where(neg, el.sign_mask, 0).astype(np.uint8)
    nan_c = el.nan_code if el.has_nan else el.max_code
    inf_c = el.inf_code if el.has_inf else nan_c
    codes[nan] = (nan_c | sign)[nan]
    codes[inf] = (inf_c | sign)[inf]


def quantize_rows(rows: np.ndarray, fmt: BlockFormat, rule: str,
                  rounding: str = "ties_to_even", rng: object = None,
                  global_amax: float | None = None) -> dict[str, object]:
    """Quantize blocks (one per row, float32 or float64) to a block format.

    Returns a dict: ``scales`` (uint8 per block), ``codes`` (uint8, rows' shape),
    ``tensor_scale`` (NVFP4's S_enc as float32, else None) and the counts
    ``saturated``, ``flushed`` and ``nan_blocks``.
    """
    finite = np.isfinite(rows)
    nan_block = ~finite.all(axis=1)
    mag = np.where(finite, np.abs(rows), 0)
    amax = mag.max(axis=1) if rows.shape[1] else np.zeros(rows.shape[0])
    tensor_scale = None
    if fmt.two_level:
        x = np.where(finite, rows, 0).astype(_F32)  # TE's chain is fp32 throughout
        g = float(mag.max()) if global_amax is None else global_amax
        tensor_scale = nvfp4_tensor_scale(_F32(g))
        s_block, enc = nvfp4_block_scales(amax.astype(_F32), tensor_scale, rule)
        with np.errstate(over="ignore"):  # FLT_MAX encode of a zero scale
            y = (x * enc[:, None]).astype(np.float64)
        scales = np.asarray(encode(s_block, fmt.scale), dtype=np.uint8)
    else:
        exps = mx_scale_exponents(amax, fmt, rule)
        y = scaled_blocks(rows, exps)
        scales = (exps + fmt.scale.bias).astype(np.uint8)
    codes, v = element_codes(y, fmt, rounding, rng)
    lim_hi = fmt.elem_max
    lim_lo = fmt.element.min if fmt.is_integer else -lim_hi
    saturated = finite & ((y > lim_hi) | (y < lim_lo))
    flushed = finite & (rows != 0) & (v == 0)
    special_codes(rows, codes, fmt)
    nan_scale = fmt.scale.nan_code
    scales[nan_block] = nan_scale
    return dict(scales=scales, codes=codes, tensor_scale=tensor_scale,
                saturated=int(saturated.sum()), flushed=int(flushed.sum()),
                nan_blocks=int(nan_block.sum()))
