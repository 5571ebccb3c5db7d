"""Where values live: which dtype holds which format, and codes from exact values.

A result is stored in a float dtype (float16/32/64, or an ml_dtypes type such as
bfloat16 or float8_e4m3fn) that *holds* its format: every value of the format,
its specials included, is a value of the dtype, so storing it rounds nothing.
Into an ml_dtypes array, lowprec writes the codes itself (:func:`store`, through
:func:`pack`): the array's bits are the encoded codes, with no cast by ml_dtypes
in between.
"""

from __future__ import annotations

import math

import numpy as np

from lowprec import _ml_dtypes
from lowprec.formats import Format, as_format, fp16, fp32, fp64
from lowprec.rounding._pack_kernel import pack_kernel

__all__ = ["holds", "ml_format", "pack", "pack_codes", "storage_of", "store"]

_NUMPY = {np.dtype(np.float16): fp16, np.dtype(np.float32): fp32,
          np.dtype(np.float64): fp64}


def ml_format(dtype: np.dtype) -> Format | None:
    """The format of an ml_dtypes float dtype lowprec has one for, else None."""
    if dtype in _NUMPY or _ml_dtypes.params_of(dtype) is None:
        return None
    return as_format(dtype)


def storage_of(dtype: np.dtype) -> Format | None:
    """The format of a float dtype a result can be stored in (NumPy or ml_dtypes)."""
    return _NUMPY.get(dtype) or ml_format(dtype)


def holds(fmt: Format, storage: Format) -> bool:
    """Whether every value of ``fmt``, specials included, is a value of ``storage``.

    The range and precision checks are those of ``rounder.fits``; the others
    matter only for the ml_dtypes storages (IEEE storage has every special and a
    max that follows from emax and precision).
    """
    # the subnormals count even in a format without them: round(subnormals=True)
    tiny = math.ldexp(1.0, fmt.emin - fmt.nmant)
    fits = (fmt.precision <= storage.precision and fmt.emax <= storage.emax
            and tiny >= storage.smallest_subnormal and fmt.max <= storage.max)
    return (fits and (storage.has_inf or not fmt.has_inf)
            and (storage.has_nan or not fmt.has_nan)
            and (storage.has_negative_zero or not fmt.has_negative_zero))


def pack_codes(v: np.ndarray, fmt: Format, arg: str = "x",
               out: np.ndarray | None = None) -> np.ndarray:
    """:func:`pack` by the Numba loop of :mod:`lowprec.rounding._pack_kernel`: the
    codes as a 1-D array of fmt's code dtype, or written into ``out`` (1-D,
    contiguous, that dtype). ``v``: float32 or float64 (others are converted)."""
    v = np.asarray(v)
    if v.dtype not in (np.float32, np.float64):
        v = v.astype(np.float64)
    v = np.ascontiguousarray(v).reshape(-1)
    if not fmt.has_nan and np.isnan(v).any():  # checked before anything is written
        raise ValueError(f"{arg}: NaN has no encoding in {fmt.name}, which has no NaN")
    codes = np.empty(v.size, dtype=fmt.code_dtype) if out is None else out
    pack_kernel(v, codes, fmt.nmant, fmt.bias, fmt.emin,
                np.uint64(fmt.bits - 1), np.uint64(fmt.inf_code or 0),
                np.uint64(fmt.nan_code or 0), fmt.specials == "fnuz")
    return codes


def pack(v: np.ndarray, fmt: Format, arg: str = "x") -> np.ndarray:
    """The codes of float64 values that are values of ``fmt``, in its code dtype.

    NaN becomes the canonical quiet NaN with the value's sign (fnuz formats have a
    single NaN code); ValueError for NaN in a format without NaN. The readable
    reference of :func:`pack_codes`.
    """
    nan = np.isnan(v)
    if not fmt.has_nan and nan.any():
        raise ValueError(f"{arg}: NaN has no encoding in {fmt.name}, which has no NaN")
    neg = np.signbit(v)
    a = np.where(nan | np.isinf(v), 0.0, np.abs(v))
    mant, ex = np.frexp(a)
    e = ex.astype(np.int64) - 1
    normal = a >= fmt.smallest_normal
    # normal: 2**e * (1 + M / 2**nmant); subnormal: 2**emin * M / 2**nmant
    big_m = np.where(normal, np.ldexp(2 * mant - 1, fmt.nmant),
                     np.ldexp(np.where(normal, 0.0, a), fmt.nmant - fmt.emin))
    code = (np.where(normal, e + fmt.bias, 0).astype(np.uint64) << np.uint64(fmt.nmant)
            | big_m.astype(np.uint64))
    if fmt.has_inf:
        code = np.where(np.isinf(v), np.uint64(fmt.inf_code), code)
    if fmt.has_nan:
        code = np.where(nan, np.uint64(fmt.nan_code), code)
    with_sign = neg & ~(nan & (fmt.specials == "fnuz"))
    code = code | np.where(with_sign, np.uint64(fmt.sign_mask), np.uint64(0))
    return code.astype(fmt.code_dtype)


def store(values: np.ndarray, out: np.ndarray, arg: str = "x") -> None:
    """Write values (of a format ``out``'s dtype holds) into ``out``, exactly.

    NumPy dtypes are written by a cast (exact, since the dtype holds the values);
    ml_dtypes ones by writing the codes into the array's bits.
    """
    storage = ml_format(out.dtype)
    if storage is None:
        np.copyto(out, values.reshape(out.shape), casting="unsafe")  # exact: holds
        return
    # ml_dtypes keeps a 4- or 6-bit code in the low bits of its byte
    assert storage.code_dtype.itemsize == out.dtype.itemsize, (storage, out.dtype)
    view = out.view(storage.code_dtype)
    if view.flags.c_contiguous:
        pack_codes(values, storage, arg, out=view.reshape(-1))
    else:
        np.copyto(view, pack_codes(values, storage, arg).reshape(out.shape))
