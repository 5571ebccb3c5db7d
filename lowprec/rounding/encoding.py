"""Bit patterns: values to codes and back, the fields of a code, a readable description.

A code is the unsigned integer a format stores: sign, biased exponent, significand
(without the hidden bit), from the top bit down. :func:`encode` rounds with
:func:`lowprec.round` first, so it takes the same rounding options.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lowprec.formats import Format, as_format
from lowprec.rounding._storage import holds, ml_format, pack_codes, storage_of
from lowprec.rounding.rounder import as_float_array
from lowprec.rounding.rounder import round as round_to

__all__ = ["Fields", "decode", "describe", "encode", "fields"]


class Fields(NamedTuple):
    """The three fields of codes, as unsigned integer arrays of the code dtype."""

    sign: np.ndarray
    exponent: np.ndarray
    significand: np.ndarray


def encode(
    x: object,
    fmt: Format | str,
    *,
    dtype: object = None,
    **rounding_options: object,
) -> np.ndarray:
    """Round values onto a format and return their codes.

    Parameters
    ----------
    x : array_like
        float16/32/64 values (integers and ml_dtypes arrays converted exactly).
    fmt : Format or str
        The target format.
    dtype : dtype, optional
        ``fmt``'s own float dtype (``fmt.ml_dtype``: ``ml_dtypes.float8_e4m3fn``,
        ``numpy.float16``...): return the codes viewed as that dtype, a typed
        array of the rounded values. Any other dtype is a ValueError.
    **rounding_options
        ``rounding``, ``saturate``, ``subnormals``, ``rng``, ``random_bits``,
        ``stats``: as in :func:`lowprec.round`.

    Returns
    -------
    ndarray
        Codes in the smallest unsigned dtype that holds them (uint8 up to 8 bits,
        uint16, uint32, then uint64), x's shape, or their ``dtype`` view. NaN
        becomes the format's canonical quiet NaN with the value's sign (fnuz
        formats have a single NaN code).

    Raises
    ------
    ValueError
        For NaN in a format that has no NaN (fp6, fp4), a ``dtype`` that is not
        ``fmt``'s, and as :func:`lowprec.round`.

    Examples
    --------
    >>> import lowprec
    >>> hex(lowprec.encode(1.0, "fp16")), hex(lowprec.encode(-2.0, "bf16"))
    ('0x3c00', '0xc000')
    >>> int(lowprec.encode(500.0, "fp8_e4m3fn", saturate=True))
    126
    >>> import ml_dtypes
    >>> e = lowprec.encode([0.3, 500.0], "fp8_e4m3fn", dtype=ml_dtypes.float8_e4m3fn)
    >>> e.dtype, e.view("uint8").tolist(), e.astype(float).tolist()
    (dtype(float8_e4m3fn), [42, 127], [0.3125, nan])
    """
    fmt = as_format(fmt)
    if "out" in rounding_options:
        raise TypeError("encode() does not take out=")
    view = None if dtype is None else _typed(dtype, fmt)
    arr = as_float_array(x)
    if not holds(fmt, storage_of(arr.dtype)):
        arr = arr.astype(np.float64)  # (else: rounded in its own dtype, as fast)
    v = np.asarray(round_to(arr, fmt, **rounding_options))
    out = pack_codes(v, fmt).reshape(v.shape)
    if view is not None:
        out = out.view(view)
    return out[()] if out.ndim == 0 else out


def _typed(dtype: object, fmt: Format) -> np.dtype:
    """``dtype`` as a NumPy dtype, after checking that it stores ``fmt``'s codes."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a NumPy or ml_dtypes dtype, got "
                        f"{dtype!r}") from None
    if dt != fmt.ml_dtype:
        raise ValueError(f"dtype: {fmt.name} is stored as {fmt.ml_dtype}, not {dt}")
    return dt


def _as_codes(codes: object, fmt: Format) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.dtype.kind in "fV" and arr.dtype == fmt.ml_dtype:
        # a typed array of fmt (encode(..., dtype=)): its bits are the codes
        arr = arr.view(fmt.code_dtype)
    elif arr.dtype.kind in "fV" and ml_format(arr.dtype) is not None:
        raise ValueError(f"codes: a {arr.dtype} array holds codes of "
                         f"{ml_format(arr.dtype).name}, not of {fmt.name}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"codes must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or int(arr.max()) >= fmt.num_codes):
        raise ValueError(
            f"codes: {fmt.name} has {fmt.bits}-bit codes, 0 to {fmt.num_codes - 1}; "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.uint64)


def fields_of_codes(codes: object, fmt: Format | str) -> Fields:
    """Split codes into sign, biased exponent and significand fields."""
    fmt = as_format(fmt)
    c = _as_codes(codes, fmt)
    dt = fmt.code_dtype
    sign = (c >> np.uint64(fmt.bits - 1)).astype(dt)
    exponent = ((c >> np.uint64(fmt.nmant)) & np.uint64((1 << fmt.exponent_bits) - 1))
    significand = c & np.uint64((1 << fmt.nmant) - 1)
    return Fields(sign, exponent.astype(dt), significand.astype(dt))


def decode(codes: object, fmt: Format | str) -> np.ndarray:
    """Return the float64 values of codes.

    Codes with a zero exponent field and a nonzero significand decode to ±0 in a
    format without subnormals (their bits are treated as zero, as flush-to-zero
    hardware does).

    Parameters
    ----------
    codes : array_like of int, or an array of fmt's own dtype
        Codes between 0 and ``2**fmt.bits - 1``; an array whose dtype is
        ``fmt.ml_dtype`` (``ml_dtypes.bfloat16`` for bf16...) gives its bits.
    fmt : Format or str

    Raises
    ------
    TypeError
        For non-integer codes (other than an array of fmt's own dtype).
    ValueError
        For codes outside the format's range.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> lowprec.decode(np.array([0x3C00, 0x7BFF, 0x0001]), "fp16")
    array([1.00000000e+00, 6.55040000e+04, 5.96046448e-08])
    """
    fmt = as_format(fmt)
    s, e, m = (f.astype(np.int64) for f in fields_of_codes(codes, fmt))
    top = (1 << fmt.exponent_bits) - 1
    mant_scale = fmt.nmant
    sub = np.ldexp(m.astype(np.float64), fmt.emin - mant_scale)
    if not fmt.subnormals:
        sub = np.zeros_like(sub)
    norm = np.ldexp((m + (1 << mant_scale)).astype(np.float64),
                    e - fmt.bias - mant_scale)
    v = np.where(e == 0, sub, norm)
    if fmt.specials == "ieee":
        v = np.where(e == top, np.where(m == 0, np.inf, np.nan), v)
    elif fmt.specials == "fn":
        v = np.where((e == top) & (m == (1 << mant_scale) - 1), np.nan, v)
    elif fmt.specials == "fnuz":
        v = np.where((s == 1) & (e == 0) & (m == 0), np.nan, v)
    v = np.where(s == 1, -v, v)
    return v[()] if v.ndim == 0 else v


def fields(x: object, fmt: Format | str, **rounding_options: object) -> Fields:
    """Round values onto a format and split their codes into fields.

    Examples
    --------
    >>> import lowprec
    >>> f = lowprec.fields(-1.5, "bf16")
    >>> int(f.sign), int(f.exponent), int(f.significand)
    (1, 127, 64)
    """
    return fields_of_codes(encode(x, fmt, **rounding_options), fmt)


def describe(value: float, fmt: Format | str, **rounding_options: object) -> str:
    """A one-line human description of a value's bits in a format.

    The value is rounded first (with ``rounding_options`` as in
    :func:`lowprec.round`); the description says so when that changed it.

    Examples
    --------
    >>> import lowprec
    >>> lowprec.describe(1.0, "fp16")
    '0 01111 0000000000 = +1.0 × 2^0 (normal)'
    >>> lowprec.describe(0.1, "bf16")
    '0 01111011 1001101 = +1.6015625 × 2^-4 = 0.10009765625 (normal; rounded from 0.1)'
    """
    fmt = as_format(fmt)
    arr = as_float_array(value, "value")
    if arr.size != 1:
        raise ValueError(f"value: describe takes one value, got shape {arr.shape}")
    x = float(arr.reshape(()))
    code = int(encode(x, fmt, **rounding_options))
    s, e, m = (int(f) for f in fields_of_codes(code, fmt))
    v = float(decode(code, fmt))
    bits = f"{s} {e:0{fmt.exponent_bits}b} {m:0{fmt.nmant}b}"
    sign = "-" if s else "+"
    if np.isnan(v):
        body = "NaN"
    elif np.isinf(v):
        body = f"{sign}inf"
    elif v == 0:
        body = f"{sign}0.0 (zero)"
    else:
        normal = e != 0
        exp = e - fmt.bias if normal else fmt.emin
        sig = (normal + m / 2.0**fmt.nmant)
        body = f"{sign}{sig!r} × 2^{exp}"
        if exp != 0:
            body += f" = {v!r}"
        body += " (normal" if normal else " (subnormal"
        body += ")" if _same(v, x) else f"; rounded from {x!r})"
    if (np.isnan(v) or np.isinf(v) or v == 0) and not _same(v, x):
        body += f" (rounded from {x!r})"
    return f"{bits} = {body}"


def _same(v: float, x: float) -> bool:
    return (np.isnan(v) and np.isnan(x)) or (v == x and np.signbit(v) == np.signbit(x))
