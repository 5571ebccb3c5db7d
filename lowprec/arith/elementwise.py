"""Correctly rounded elementwise arithmetic in any format.

``lowprec.add(x, y, "bf16")`` is the exact sum of two bf16 arrays rounded once to
bf16, in the chosen mode: what an IEEE 754 bf16 adder returns. The float64 result
alone would not do: a float64 sum of two values far apart in magnitude is itself
rounded, which silently breaks the directed, to-odd and stochastic modes (and
rounding twice can break round-to-nearest). Each kernel carries the float64 result
with its exact error term (:mod:`lowprec.arith._eft`) into the rounding, which sees the
exact value.

IEEE 754 special cases follow float64: inf - inf, 0 * inf, 0 / 0 and the square root
of a negative number are NaN; an exact zero sum of operands of opposite signs is
+0, or -0 when rounding toward negative.
"""

from __future__ import annotations

import numpy as np

from lowprec.arith._elementwise_kernel import ADD, DIV, FMA, MUL, SQRT, arith_kernel
from lowprec.formats import Format, as_format
from lowprec.rounding._storage import store
from lowprec.rounding.rounder import (
    as_input,
    check_fits,
    check_out,
    prepare_rounding,
)
from lowprec.rounding.rounder import round as round_to
from lowprec.rounding.stats import RoundingStats

__all__ = ["add", "divide", "fma", "multiply", "sqrt", "subtract"]

_OPTIONS_DOC = """
    fmt : Format or str
        The format of the operands and of the result.
    rounding, saturate, subnormals, rng, random_bits, stats
        As in :func:`lowprec.round`; applied to the one rounding of the result.
    round_inputs : bool, default False
        Operands must be values of ``fmt``; with True they are first rounded to
        it (ties_to_even) instead of raising ValueError.
    out : ndarray, optional
        Where to write the result (the broadcast shape, a float dtype that holds
        ``fmt``: float16/32/64 or an ml_dtypes type, written as codes).

    Returns
    -------
    ndarray
        The broadcast shape, in the operands' common float dtype (float64 for
        integers and Python numbers; ml_dtypes arrays promote as ml_dtypes does:
        bfloat16 with bfloat16 gives bfloat16, bfloat16 with float32 gives
        float32); a NumPy scalar for scalar operands.
"""


def _operands(arrays, names, fmt, round_inputs, subnormals):
    """Broadcast, check (or round) operands; return 1-D float64 arrays and shape."""
    pairs = [as_input(a, name) for a, name in zip(arrays, names, strict=True)]
    arrs = [arr for arr, _ in pairs]
    dtype = _result_dtype([keep for _, keep in pairs])
    try:
        # each operand broadcast and copied on its own: a view from broadcast_arrays
        # of a size-1 operand stays "contiguous", and Numba warns on reading it
        shape = np.broadcast_shapes(*(a.shape for a in arrs))
        shaped = [a if a.shape == shape else np.array(np.broadcast_to(a, shape))
                  for a in arrs]
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrs, strict=True))
        raise ValueError(
            f"operands could not be broadcast together: {shapes}"
        ) from None
    flat = []
    for arr, name in zip(shaped, names, strict=True):
        v = np.ascontiguousarray(arr, dtype=np.float64).reshape(-1)
        rounded = round_to(v, fmt, subnormals=subnormals)
        if round_inputs:
            v = rounded
        else:
            bad = (rounded.view(np.int64) != v.view(np.int64)) & ~np.isnan(v)
            if bad.any():
                raise ValueError(
                    f"{name}: {np.count_nonzero(bad)} of {v.size} values are not "
                    f"values of {fmt.name} (e.g. {v[bad][0]!r}); round them first "
                    "with lowprec.round or pass round_inputs=True"
                )
        flat.append(v)
    return flat, shaped[0].shape, dtype


def _result_dtype(dtypes: list[np.dtype]) -> np.dtype:
    """The operands' common dtype, ml_dtypes' promotion rules included."""
    try:
        return np.result_type(*dtypes)
    except TypeError:  # two ml_dtypes types without a promotion: their float32
        return np.result_type(*(np.float32 if d.kind == "V" else d for d in dtypes))


def _elementwise(
    op,
    operands,
    names,
    fmt,
    rounding,
    saturate,
    subnormals,
    rng,
    random_bits,
    round_inputs,
    out,
    stats,
):
    fmt = as_format(fmt)
    sub = fmt.subnormals if subnormals is None else subnormals
    flat, shape, dtype = _operands(operands, names, fmt, round_inputs, subnormals)
    if out is None:
        check_fits(fmt, dtype, "result")
    else:
        check_out(out, shape, fmt)
    prep = prepare_rounding(
        fmt, rounding, saturate, sub, rng, random_bits, stats, shape
    )
    while len(flat) < 3:
        flat.append(flat[0])  # unused operand slots
    result = np.empty(shape, dtype=np.float64)
    kernel = arith_kernel(op)
    counts = kernel(
        flat[0],
        flat[1],
        flat[2],
        result.reshape(-1),
        prep.plan,
        prep.mode,
        stats is not None,
        prep.seed,
        prep.words,
        prep.rshift,
        prep.rmask,
    )
    if stats is not None:
        stats.add_counts(counts, result.size)
    return _finish(result, dtype, out, fmt, shape)


def _finish(result, dtype, out, fmt, shape):
    if out is not None:
        store(result, out, "result")  # exact: out's dtype holds the format
        return out
    if dtype != result.dtype:
        typed = np.empty(shape, dtype=dtype)
        store(result, typed, "result")  # exact: check_fits
        result = typed
    return result[()] if result.ndim == 0 else result


def add(
    x: object,
    y: object,
    fmt: Format | str,
    *,
    rounding: str = "ties_to_even",
    saturate: bool = False,
    subnormals: bool | None = None,
    rng=None,
    random_bits: int | None = None,
    round_inputs: bool = False,
    out: np.ndarray | None = None,
    stats: RoundingStats | None = None,
) -> np.ndarray:
    """``x + y`` rounded once to ``fmt`` (exact sum, one rounding).

    Parameters
    ----------
    x, y : array_like
        Values of ``fmt``, broadcast together.
    """
    return _elementwise(
        ADD,
        (x, y),
        ("x", "y"),
        fmt,
        rounding,
        saturate,
        subnormals,
        rng,
        random_bits,
        round_inputs,
        out,
        stats,
    )


def subtract(x: object, y: object, fmt: Format | str, **options: object) -> np.ndarray:
    """``x - y`` rounded once to ``fmt`` (exact difference, one rounding).

    Takes the options of :func:`add`.
    """
    arr, keep = as_input(y, "y")
    y_neg = np.negative(arr)
    if keep != arr.dtype:  # an ml_dtypes y: negate it in its own dtype (exact)
        y_neg = np.negative(np.asarray(y))
    return add(x, y_neg, fmt, **options)


def multiply(
    x: object,
    y: object,
    fmt: Format | str,
    *,
    rounding: str = "ties_to_even",
    saturate: bool = False,
    subnormals: bool | None = None,
    rng=None,
    random_bits: int | None = None,
    round_inputs: bool = False,
    out: np.ndarray | None = None,
    stats: RoundingStats | None = None,
) -> np.ndarray:
    """``x * y`` rounded once to ``fmt`` (exact product, one rounding)."""
    return _elementwise(
        MUL,
        (x, y),
        ("x", "y"),
        fmt,
        rounding,
        saturate,
        subnormals,
        rng,
        random_bits,
        round_inputs,
        out,
        stats,
    )


def divide(
    x: object,
    y: object,
    fmt: Format | str,
    *,
    rounding: str = "ties_to_even",
    saturate: bool = False,
    subnormals: bool | None = None,
    rng=None,
    random_bits: int | None = None,
    round_inputs: bool = False,
    out: np.ndarray | None = None,
    stats: RoundingStats | None = None,
) -> np.ndarray:
    """``x / y`` rounded once to ``fmt`` (the exact quotient, rounded once).

    Division by zero gives ±inf (NaN for 0/0), as IEEE 754 without traps.
    """
    return _elementwise(
        DIV,
        (x, y),
        ("x", "y"),
        fmt,
        rounding,
        saturate,
        subnormals,
        rng,
        random_bits,
        round_inputs,
        out,
        stats,
    )


def sqrt(
    x: object,
    fmt: Format | str,
    *,
    rounding: str = "ties_to_even",
    saturate: bool = False,
    subnormals: bool | None = None,
    rng=None,
    random_bits: int | None = None,
    round_inputs: bool = False,
    out: np.ndarray | None = None,
    stats: RoundingStats | None = None,
) -> np.ndarray:
    """The square root of ``x`` rounded once to ``fmt``; NaN for negative x
    (``sqrt(-0) = -0``)."""
    return _elementwise(
        SQRT,
        (x,),
        ("x",),
        fmt,
        rounding,
        saturate,
        subnormals,
        rng,
        random_bits,
        round_inputs,
        out,
        stats,
    )


def fma(
    x: object,
    y: object,
    z: object,
    fmt: Format | str,
    *,
    rounding: str = "ties_to_even",
    saturate: bool = False,
    subnormals: bool | None = None,
    rng=None,
    random_bits: int | None = None,
    round_inputs: bool = False,
    out: np.ndarray | None = None,
    stats: RoundingStats | None = None,
) -> np.ndarray:
    """``x * y + z`` with one rounding to ``fmt`` (fused multiply-add)."""
    return _elementwise(
        FMA,
        (x, y, z),
        ("x", "y", "z"),
        fmt,
        rounding,
        saturate,
        subnormals,
        rng,
        random_bits,
        round_inputs,
        out,
        stats,
    )


for _f in (add, multiply, divide, sqrt, fma):
    _f.__doc__ += _OPTIONS_DOC
_EXAMPLES = {
    add: """
    Examples
    --------
    >>> import lowprec
    >>> float(lowprec.add(256.0, 1.0, "bf16"))  # a tie: back to the even 256
    256.0
    >>> float(lowprec.add(256.0, 1.0, "bf16", rounding="toward_positive"))
    258.0
    >>> up = lowprec.add(2.0**100, 2.0**-100, "bf16", rounding="toward_positive")
    >>> bool(up == 2.0**100 * (1 + 2**-7))  # float64 alone would have lost 2**-100
    True
""",
    multiply: """
    Examples
    --------
    >>> import lowprec
    >>> float(lowprec.multiply(1e-5, 1e-5, "fp16", round_inputs=True))
    0.0
""",
    fma: """
    Examples
    --------
    >>> import lowprec
    >>> x = 1 + 2**-6  # x*x - 1 = 2**-5 + 2**-12: fused keeps the 2**-12
    >>> float(lowprec.fma(x, x, -1.0, "fp16"))
    0.031494140625
    >>> float(lowprec.add(lowprec.multiply(x, x, "fp16"), -1.0, "fp16"))
    0.03125
""",
}
for _f, _ex in _EXAMPLES.items():
    _f.__doc__ += _ex
