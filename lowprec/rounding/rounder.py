"""``lowprec.round``: round values onto a format, correctly, in any mode.

The public wrapper validates its arguments, derives the kernel's constants once per
(format, mode) and runs :func:`lowprec.rounding._kernel.round_kernel`.
"""

from __future__ import annotations

import builtins
import functools
import math
from typing import NamedTuple

import numpy as np

from lowprec import _ml_dtypes
from lowprec.formats import Format, as_format, fp16, fp32, fp64
from lowprec.modes import (
    STOCHASTIC,
    infinity_outcome,
    mode_id,
    overflow_outcome,
    rounds_to_infinity,
)
from lowprec.rounding._kernel import RoundPlan, round_kernel
from lowprec.rounding._storage import holds, storage_of, store
from lowprec.rounding.randomness import seed_from
from lowprec.rounding.stats import RoundingStats

__all__ = ["round", "as_float_array", "as_input", "prepare_rounding",
           "storage_format"]

_STORAGE = {np.dtype(np.float16): fp16, np.dtype(np.float32): fp32,
            np.dtype(np.float64): fp64}
_NO_WORDS = np.empty(0, dtype=np.uint64)
_DIRECT = (np.dtype(np.float32), np.dtype(np.float64))  # dtypes the kernel writes


def _bits(value: float) -> int:
    return int(np.float64(value).view(np.int64))


@functools.lru_cache(maxsize=512)
def make_plan(fmt: Format, rounding: str, saturate: bool,
              subnormals: bool) -> RoundPlan:
    """Derive the kernel's constants for one format and set of options."""
    tiny = smallest_value(fmt, subnormals)
    outcome_bits = {"inf": _bits(np.inf), "max": _bits(fmt.max), "nan": _bits(np.nan)}
    ovf = [overflow_outcome(fmt, rounding, saturate, neg) for neg in (False, True)]
    sat = [rounds_to_infinity(rounding, neg) and o == "max"
           for neg, o in zip((False, True), ovf, strict=True)]
    inf_outcome = infinity_outcome(fmt, saturate)
    return RoundPlan(
        d0=53 - fmt.precision,
        eminb=fmt.emin + 1023 if subnormals else 0,
        tiny=_bits(tiny),
        half_tiny=builtins.max(_bits(tiny / 2), 1),
        tiny_shift=1011 + _exponent_of(tiny),
        max=_bits(fmt.max),
        ovf_pos=outcome_bits[ovf[0]],
        ovf_neg=outcome_bits[ovf[1]],
        inf_res=outcome_bits[inf_outcome],
        sat_pos=int(sat[0]),
        sat_neg=int(sat[1]),
        sat_inf=int(inf_outcome == "max"),
        signed_zero=int(fmt.has_negative_zero),
        smallest_normal=_bits(fmt.smallest_normal),
    )


def _exponent_of(power_of_two: float) -> int:
    """The exponent of an exact power of two."""
    m, e = math.frexp(power_of_two)
    assert m == 0.5, power_of_two
    return e - 1


def storage_format(dtype: np.dtype) -> Format:
    """The lowprec format of a NumPy float dtype (float16, float32 or float64)."""
    return _STORAGE[np.dtype(dtype)]


def smallest_value(fmt: Format, subnormals: bool) -> float:
    """The smallest positive value of ``fmt`` with subnormals on or off."""
    return math.ldexp(1.0, fmt.emin - (fmt.nmant if subnormals else 0))


def fits(fmt: Format, storage: Format) -> bool:
    """Whether every value of ``fmt`` (subnormals included) is one of ``storage``."""
    return (fmt.precision <= storage.precision and fmt.emax <= storage.emax
            and smallest_value(fmt, True) >= storage.smallest_subnormal)


def check_fits(fmt: Format, dtype: np.dtype, arg: str) -> None:
    """ValueError unless ``dtype`` (float16/32/64 or an ml_dtypes float) holds every
    value of ``fmt``, its specials included."""
    storage = storage_of(np.dtype(dtype))
    if storage is None or not holds(fmt, storage):
        raise ValueError(
            f"{arg}: {np.dtype(dtype)} cannot hold every value of {fmt.name} "
            f"(precision {fmt.precision}, emax {fmt.emax}); use float64 data or "
            "pass a float64 out="
        )


def as_float_array(x: object, arg: str = "x") -> np.ndarray:
    """``np.asarray(x)`` for float16/32/64 data; other numbers converted exactly.

    Integers become float64 (ValueError for those float64 cannot hold); ml_dtypes
    floats (bfloat16, float8_*, float6_*, float4_e2m1fn, float8_e8m0fnu) become
    float32, which holds every value of each; ml_dtypes' int4 and friends become
    float64. Raises TypeError for any other dtype (bool, complex, object, strings,
    longdouble).
    """
    return as_input(x, arg)[0]


def as_input(x: object, arg: str = "x") -> tuple[np.ndarray, np.dtype]:
    """``(as_float_array(x, arg), keep)``: x's values, and the dtype of a result.

    ``keep`` is the NumPy convention extended to ml_dtypes: x's dtype for
    float16/32/64 and for the ml_dtypes floats that are lowprec formats, float64
    for integers, float32 for float8_e8m0fnu and float8_e5m3fnu (no lowprec
    format: they have no sign bit).
    """
    arr = np.asarray(x)
    if arr.dtype in _STORAGE:
        return arr, arr.dtype
    if arr.dtype.kind in "iu":
        return _exact_integers(arr, arg), np.dtype(np.float64)
    if _ml_dtypes.float_name(arr.dtype) is not None:
        # a widening cast: every ml_dtypes float value is a float32 value
        keep = arr.dtype if storage_of(arr.dtype) is not None else np.float32
        return _quiet(arr.astype(np.float32)), np.dtype(keep)
    if _ml_dtypes.is_ml_integer(arr.dtype):
        return arr.astype(np.float64), np.dtype(np.float64)  # at most 4 bits: exact
    hint = ""
    if arr.dtype.kind in "Vf":
        hint = " (convert it first, e.g. x.astype(np.float64))"
    raise TypeError(
        f"{arg} must hold float16, float32, float64, integer or ml_dtypes values, "
        f"got dtype {arr.dtype}{hint}"
    )


def _quiet(values: np.ndarray) -> np.ndarray:
    """Make the NaNs of float32 values quiet, keeping their signs, in place.

    A bfloat16 NaN code without the quiet bit becomes a signalling float32 NaN,
    which every later cast to float64 would report as an invalid operation.
    """
    nan = np.isnan(values)
    if nan.any():
        values[nan] = np.where(np.signbit(values[nan]), -np.nan, np.nan)
    return values


def _exact_integers(arr: np.ndarray, arg: str) -> np.ndarray:
    """Integers as float64, or ValueError when some are not float64 values."""
    conv = arr.astype(np.float64)
    # exact iff converting back gives the same integers (2**63 itself, the
    # float of int64 max, does not convert back)
    fits_back = np.abs(conv) < (2.0**64 if arr.dtype.kind == "u" else 2.0**63)
    back = np.zeros_like(arr)
    back[fits_back] = conv[fits_back].astype(arr.dtype)
    if not (fits_back.all() and np.array_equal(back, arr)):
        raise ValueError(
            f"{arg}: some integers (beyond 2**53 in magnitude) are not float64 "
            "values, so they cannot be converted exactly; pass them as floats "
            "if rounding them first is intended"
        )
    return conv


def _check_bool(arg: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{arg} must be True or False, got {value!r}")
    return bool(value)


def _random_source(rng, rounding, random_bits, shape, seed=None):
    """Check the stochastic options; return (seed, words, rshift, rmask)."""
    if rounding not in STOCHASTIC:
        if rng is not None:
            raise ValueError(
                f"rng: only the stochastic modes use random bits, not {rounding!r}")
        if random_bits is not None:
            raise ValueError(
                f"random_bits: only rounding='stochastic' uses it, not {rounding!r}")
        return np.uint64(0), _NO_WORDS, np.uint64(0), np.uint64(0)
    if random_bits is None:
        r = 64
    elif rounding != "stochastic":
        raise ValueError("random_bits: only rounding='stochastic' uses it")
    elif isinstance(random_bits, bool) or not isinstance(random_bits, int | np.integer):
        raise TypeError(f"random_bits must be an int, got {type(random_bits).__name__}")
    elif not 1 <= random_bits <= 64:
        raise ValueError(f"random_bits must be between 1 and 64, got {random_bits}")
    else:
        r = int(random_bits)
    rshift = np.uint64(64 - r)
    rmask = np.uint64((1 << r) - 1)
    if isinstance(rng, np.ndarray):
        if rng.dtype != np.uint64:
            raise TypeError(f"rng: an array of random words must be uint64, "
                            f"got {rng.dtype}")
        if rng.shape != shape:
            raise ValueError(f"rng: an array of random words must have x's shape "
                             f"{shape}, got {rng.shape}")
        return np.uint64(0), np.ascontiguousarray(rng).reshape(-1), rshift, rmask
    if seed is not None:
        return np.uint64(seed), _NO_WORDS, rshift, rmask
    return np.uint64(seed_from(rng)), _NO_WORDS, rshift, rmask


class Prepared(NamedTuple):
    """Validated rounding options, ready for a kernel call."""

    mode: int
    plan: RoundPlan
    seed: np.uint64
    words: np.ndarray
    rshift: np.uint64
    rmask: np.uint64


def prepare_rounding(fmt: Format, rounding: str, saturate: object,
                     subnormals: object, rng: object, random_bits: object,
                     stats: object, shape: tuple[int, ...],
                     seed: int | None = None) -> Prepared:
    """Check the options every rounding kernel shares; derive its constants.

    ``seed`` reuses an already drawn seed (for the several roundings of one call).
    """
    mode = mode_id(rounding if isinstance(rounding, str) else repr(rounding))
    saturate = _check_bool("saturate", saturate)
    sub = fmt.subnormals if subnormals is None else _check_bool("subnormals",
                                                                 subnormals)
    if stats is not None and not isinstance(stats, RoundingStats):
        raise TypeError(f"stats must be a lowprec.RoundingStats, got "
                        f"{type(stats).__name__}")
    seed_, words, rshift, rmask = _random_source(rng, rounding, random_bits, shape,
                                                 seed)
    return Prepared(mode, make_plan(fmt, rounding, saturate, sub), seed_, words,
                    rshift, rmask)





def round(
    x: object,
    fmt: Format | str,
    *,
    rounding: str = "ties_to_even",
    saturate: bool = False,
    subnormals: bool | None = None,
    rng: int | np.random.Generator | np.ndarray | None = None,
    random_bits: int | None = None,
    out: np.ndarray | None = None,
    stats: RoundingStats | None = None,
) -> np.ndarray:
    """Round values to the nearest values of a format, in the chosen mode.

    The result is the correctly rounded value of each exact input: a float64 input
    is rounded once, never through float32 on the way.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 values; integers and ml_dtypes arrays
        (bfloat16, float8_*, ...) are converted exactly.
    fmt : Format or str
        The target format, e.g. ``lowprec.bf16`` or ``"bf16"``.
    rounding : str, default "ties_to_even"
        ``"ties_to_even"``, ``"ties_to_away"``, ``"toward_zero"``,
        ``"toward_positive"``, ``"toward_negative"``, ``"to_odd"``,
        ``"stochastic"`` or ``"stochastic_equal"`` (see :mod:`lowprec.modes`).
    saturate : bool, default False
        Clamp everything beyond ±max to ±max, infinite inputs included (NaN stays
        NaN). Without it, overflow follows IEEE 754 for the mode: the ties modes
        give inf beyond the midpoint above max, toward_zero and to_odd give max,
        the directed modes give inf toward their own infinity only. A format
        without inf gives NaN where an IEEE format gives inf; one with neither
        (fp6, fp4) saturates. (ml_dtypes differs on purpose: its saturating
        conversion keeps ±inf, or gives NaN without inf, and its ``astype``
        never saturates.)
    subnormals : bool, optional
        None uses the format's own setting. False removes the subnormals from the
        value set: values below the smallest normal ``2**emin`` round between 0
        and ``2**emin`` in the mode (ties_to_even sends values above half of it
        up, those below and the exact half to 0; directed modes still bracket x).
    rng : int, numpy.random.Generator or ndarray of uint64, optional
        Stochastic modes only. A seed gives the same result whatever the number of
        Numba threads; a Generator is drawn from once per call (so it advances);
        an array gives each element its own 64-bit random word. None draws fresh
        entropy.
    random_bits : int, optional
        ``"stochastic"`` only: use the first r (1..64) bits of the fraction to be
        rounded off and r random bits, as hardware does; the default 64 makes the
        probability exact to 2**-64. Representable values never move.
    out : ndarray, optional
        Where to write the result: x's shape, a float dtype that holds the format
        (float16/32/64, or an ml_dtypes type such as ``ml_dtypes.bfloat16``,
        whose bits are then written as the codes, with no cast in between).
        May be x itself.
    stats : RoundingStats, optional
        Counts of inexact, underflowed, flushed, overflowed, saturated and NaN
        elements are added to it.

    Returns
    -------
    ndarray
        The rounded values, x's shape, in x's float dtype (float64 for integers);
        a NumPy scalar for a scalar input. ``out`` if given. An ml_dtypes x keeps
        its dtype, as ``jax.lax.reduce_precision`` does (a bfloat16 x rounded to
        fp8 gives bfloat16 values of fp8); pass ``out=`` of
        ``fmt.ml_dtype`` for the format's own storage.

    Raises
    ------
    TypeError
        For a non-float dtype, or options of the wrong type.
    ValueError
        For an unknown format or mode, a format that x's dtype cannot hold (an
        ml_dtypes dtype must also have the format's inf, NaN and -0), NaN into
        an ml_dtypes ``out`` without NaN (fp6, fp4), or options that do not apply
        to the mode.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> lowprec.round(np.array([0.1, 1e-8, 70000.0]), "fp16")
    array([0.09997559, 0.        ,        inf])
    >>> lowprec.round(np.float32(1.00390625), "bf16", rounding="toward_positive")
    np.float32(1.0078125)

    1 + 2**-9 lies a quarter of the way from 1 to the next bf16 value, so with two
    random bits exactly one of the four possible words rounds it up:

    >>> words = np.array([0, 1, 2, 3], dtype=np.uint64) << np.uint64(62)
    >>> lowprec.round(np.full(4, 1 + 2**-9), "bf16", rounding="stochastic",
    ...               random_bits=2, rng=words).tolist()
    [1.0, 1.0, 1.0, 1.0078125]
    """
    fmt = as_format(fmt)
    arr, keep = as_input(x)
    prep = prepare_rounding(fmt, rounding, saturate, subnormals, rng, random_bits,
                            stats, arr.shape)
    if out is not None:
        check_out(out, arr.shape, fmt)
        result = out
    else:
        check_fits(fmt, keep, "x")
        result = np.empty(arr.shape, dtype=keep)

    # The kernel sees 1-D contiguous float32/float64 arrays only. Like a NumPy
    # ufunc, it reads x as if copied first when out overlaps it (out=x is safe:
    # each element is read before it is written).
    if result is not arr and np.may_share_memory(arr, result):
        arr = arr.copy()
    src = np.ascontiguousarray(arr).reshape(-1)
    if src.dtype == np.float16:
        src = src.astype(np.float32)
    if src.dtype == np.float32 and not fits(fmt, fp32):
        src = src.astype(np.float64)  # (out is float64) the 32-bit kernel cannot
    direct = result.flags.c_contiguous and result.dtype in _DIRECT
    dst = result.reshape(-1) if direct else np.empty(arr.size, dtype=src.dtype)
    kernel = round_kernel(prep.mode, stats is not None)
    counts = kernel(src, dst, prep.plan, prep.seed, prep.words, prep.rshift,
                    prep.rmask)
    if not direct:
        store(dst, result)  # exact: result's dtype holds the format
    if stats is not None:
        stats.add_counts(counts, arr.size)
    if out is None and result.ndim == 0:
        return result[()]
    return result


def check_out(out: object, shape: tuple[int, ...], fmt: Format) -> None:
    """TypeError/ValueError unless ``out`` can receive a result of ``fmt``."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out: expected shape {shape}, got {out.shape}")
    storage = storage_of(out.dtype)
    if storage is None:
        raise TypeError(f"out must have dtype float16, float32, float64 or an "
                        f"ml_dtypes float type of a lowprec format, got {out.dtype}")
    if not holds(fmt, storage):
        raise ValueError(f"out: {out.dtype} cannot hold every value of {fmt.name}")
    if not out.flags.writeable:
        raise ValueError("out: the array is read-only")

