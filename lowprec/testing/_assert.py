""":func:`assert_bits_equal`: equality of floats bit for bit, with a message that
shows the bit fields of what differs."""

from __future__ import annotations

import math

import numpy as np

from lowprec.formats import Format, as_format
from lowprec.rounding.encoding import describe
from lowprec.testing._support import _DTYPES, _is_ml_dtypes_float

# How many differing elements the failure message lists.
_SHOWN = 5


def assert_bits_equal(
    actual: object,
    desired: object,
    fmt: Format | str | None = None,
    *,
    nan_payload: bool = False,
) -> None:
    """Assert that two floats or float arrays are equal bit for bit.

    Unlike ``==`` and :func:`numpy.testing.assert_array_equal`, ``-0.0`` and
    ``+0.0`` differ here, so a converter that turns ``-tiny`` into ``+0`` fails.
    NaN equals NaN, whatever its sign and payload, unless ``nan_payload=True``.
    There is no broadcasting: the shapes must be equal.

    Parameters
    ----------
    actual, desired : float or array_like of floats
        Python floats, NumPy float16/32/64 scalars or arrays, or ml_dtypes
        float arrays (bfloat16, float8_e4m3fn, ...). When the two dtypes differ,
        the values are compared in float64, which holds every value of all of
        these exactly; a value is what is compared, not its storage.
    fmt : Format or str, optional
        The format the values belong to. It is used only for the message, which
        then shows each differing value's sign, exponent and significand fields
        in ``fmt`` (:func:`lowprec.describe`); without it, the fields of the
        value's own dtype.
    nan_payload : bool, default False
        Also compare the sign and payload bits of NaNs. This compares the stored
        bits, so ``actual`` and ``desired`` must then have the same dtype.

    Raises
    ------
    AssertionError
        If the shapes differ, or an element differs. The message gives the
        number of differing elements, the first few indices, and both values
        with their bit fields.
    TypeError
        If an input is not made of floats, or ``nan_payload=True`` is asked for
        two different dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.testing import assert_bits_equal
    >>> assert_bits_equal(np.array([1.0, np.nan]), np.array([1.0, -np.nan]))
    >>> assert_bits_equal(-0.0, 0.0, "fp16")
    Traceback (most recent call last):
    ...
    AssertionError: not equal bit for bit: 1 of 1 elements differ
    index  actual, then desired (bit fields in fp16)
    ()     1 00000 0000000000 = -0.0 (zero)
           0 00000 0000000000 = +0.0 (zero)
    """
    fmt = None if fmt is None else as_format(fmt)
    a, b = _float_array(actual, "actual"), _float_array(desired, "desired")
    if a.shape != b.shape:
        raise AssertionError(
            f"not equal bit for bit: the shapes differ, actual {a.shape} and "
            f"desired {b.shape}"
        )
    if nan_payload and a.dtype != b.dtype:
        raise TypeError(
            "nan_payload=True compares stored bits, so actual and desired must "
            f"have the same dtype, got {a.dtype} and {b.dtype}"
        )
    differ = _differing(a, b, nan_payload)
    count = int(np.count_nonzero(differ))
    if count:
        raise AssertionError(_message(a, b, differ, count, fmt))


def _float_array(x: object, name: str) -> np.ndarray:
    """``x`` as a NumPy array of floats (NumPy's or ml_dtypes'), or TypeError."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype not in _DTYPES and not _is_ml_dtypes_float(arr.dtype):
        raise TypeError(
            f"{name} must be floats (float16, float32, float64 or an ml_dtypes "
            f"float type), got dtype {arr.dtype}"
        )
    return arr


def _as_float64(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.float64:
        return x
    # exact for every float the inputs may be; ml_dtypes NaN codes warn on the way
    with np.errstate(invalid="ignore"):
        return x.astype(np.float64)


def _bits(x: np.ndarray) -> np.ndarray:
    """The stored bits of a float array, as unsigned ints of the same width."""
    # a copy, not ascontiguousarray, which would make a 0-d array 1-d
    contiguous = x if x.flags.c_contiguous else x.copy()
    return contiguous.view(f"u{x.dtype.itemsize}")


def _differing(a: np.ndarray, b: np.ndarray, nan_payload: bool) -> np.ndarray:
    """A boolean mask of the elements that differ."""
    nan_a, nan_b = np.isnan(_as_float64(a)), np.isnan(_as_float64(b))
    if a.dtype == b.dtype:
        differ = _bits(a) != _bits(b)
    else:
        differ = _bits(_as_float64(a)) != _bits(_as_float64(b))
    if not nan_payload:
        # any NaN equals any NaN, and a NaN differs from every number
        differ = np.where(nan_a | nan_b, nan_a != nan_b, differ)
    return differ


def _message(
    a: np.ndarray, b: np.ndarray, differ: np.ndarray, count: int, fmt: Format | None
) -> str:
    # argwhere reads a 0-d array as 1-d, so a scalar's one index is () by hand
    where = np.argwhere(differ)[:_SHOWN] if differ.ndim else [()]
    shown = "" if count <= _SHOWN else f", the first {_SHOWN} shown"
    name = fmt.name if fmt is not None else _dtype_names(a, b)
    indices = [str(tuple(int(i) for i in idx)) for idx in where]
    width = max(len("index"), *map(len, indices))
    lines = [
        f"not equal bit for bit: {count} of {differ.size} elements differ{shown}",
        f"{'index':<{width}}  actual, then desired (bit fields in {name})",
    ]
    for idx, index in zip(where, indices, strict=True):
        lines.append(f"{index:<{width}}  {_describe(a, tuple(idx), fmt)}")
        lines.append(f"{'':<{width}}  {_describe(b, tuple(idx), fmt)}")
    return "\n".join(lines)


def _dtype_names(a: np.ndarray, b: np.ndarray) -> str:
    return str(a.dtype) if a.dtype == b.dtype else f"{a.dtype} | {b.dtype}"


def _describe(x: np.ndarray, index: tuple[int, ...], fmt: Format | None) -> str:
    """One element's value and bit fields, in ``fmt`` or in its own dtype."""
    element = np.asarray(x[index])
    value = float(_as_float64(element))
    code = int(_bits(element)[()])
    stored = f"stored as 0x{code:0{2 * x.dtype.itemsize}x} in {x.dtype}"
    if math.isnan(value):
        # describe rounds, which keeps no payload: show the stored bits instead
        return f"NaN ({stored})"
    if fmt is None:
        try:  # the element's own storage format: fp16, fp32, fp64, bf16, fp8_*
            fmt = as_format(x.dtype.name)
        except ValueError:  # an ml_dtypes type lowprec lacks (float8_e8m0fnu)
            return f"{value!r} ({stored})"
    # decode warns "overflow in ldexp" on fp64's inf code (reported, not ours)
    with np.errstate(over="ignore"):
        return describe(value, fmt)
