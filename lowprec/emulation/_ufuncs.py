"""The ufuncs of an emulated array (NEP 13): which are rounded once by lowprec's
arithmetic, which are exact, which go through float64 and are counted."""

from __future__ import annotations

import numpy as np

from lowprec.arith import elementwise
from lowprec.emulation.array import (
    ELEMENTWISE,
    EmulatedArray,
    common_settings,
    count_transcendental,
    rounded,
    values_in,
)
from lowprec.formats import fp64
from lowprec.rounding.rounder import fits
from lowprec.rounding.rounder import round as _round

# exact on values of any format: the result is a value of the operands' format
EXACT = {
    np.negative, np.positive, np.absolute, np.fabs, np.sign, np.floor, np.ceil,
    np.trunc, np.rint, np.maximum, np.minimum, np.fmax, np.fmin, np.copysign,
}
# comparisons and predicates: exact, give plain bool arrays
BOOLEAN = {
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.isnan, np.isinf, np.isfinite, np.signbit, np.logical_and, np.logical_or,
    np.logical_not, np.logical_xor,
}
# float64, then one rounding: not correctly rounded in general, so counted
TRANSCENDENTAL = {
    np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10, np.log1p, np.sin, np.cos,
    np.tan, np.arcsin, np.arccos, np.arctan, np.sinh, np.cosh, np.tanh, np.arcsinh,
    np.arccosh, np.arctanh, np.power, np.float_power, np.arctan2, np.hypot, np.cbrt,
    np.deg2rad, np.rad2deg,
}


def apply_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict):
    """Compute ``ufunc`` (called as ``method``) on emulated operands."""
    out = kwargs.pop("out", None)
    if kwargs.get("where", True) is not True:
        raise TypeError(f"numpy.{ufunc.__name__}: where= is not supported on lowprec "
                        "emulated arrays")
    kwargs.pop("where", None)
    extra = set(kwargs) - {"axis", "keepdims"}
    if extra:
        raise TypeError(f"numpy.{ufunc.__name__}: {', '.join(sorted(extra))} not "
                        "supported on lowprec emulated arrays")
    if method == "__call__":
        result = _call(ufunc, inputs)
    elif method in ("reduce", "accumulate"):
        from lowprec.emulation import _functions

        result = _functions.ufunc_reduction(ufunc, method, inputs[0], **kwargs)
    else:
        raise TypeError(f"numpy.{ufunc.__name__}.{method} is not supported on lowprec "
                        "emulated arrays")
    return result if out is None else _store(result, out, ufunc)


def _call(ufunc: np.ufunc, inputs: tuple):
    name = ufunc.__name__
    settings = common_settings(inputs)
    if ufunc in BOOLEAN:
        # exact comparisons of the exact values (a plain operand is not rounded)
        vals = [x._data if isinstance(x, EmulatedArray) else np.asarray(x)
                for x in inputs]
        return ufunc(*vals)
    if ufunc is np.matmul:
        from lowprec.emulation._functions import matmul

        return matmul(*inputs)
    vals = [values_in(x, settings) for x in inputs]
    if ufunc in ELEMENTWISE:
        return _arith(ELEMENTWISE[ufunc], vals, settings)
    if ufunc is np.sqrt:
        return _arith(elementwise.sqrt, vals, settings)
    if ufunc is np.square:
        return _arith(elementwise.multiply, [vals[0], vals[0]], settings)
    if ufunc is np.reciprocal:
        return _arith(elementwise.divide, [np.ones_like(vals[0]), vals[0]], settings)
    if ufunc in EXACT:
        return EmulatedArray._wrap(np.asarray(ufunc(*vals), np.float64), settings)
    if ufunc in TRANSCENDENTAL:
        with np.errstate(all="ignore"):  # inf and NaN are results here, not errors
            values = np.asarray(ufunc(*vals), np.float64)
        count_transcendental(settings, values.size)
        return rounded(values, settings)
    raise TypeError(f"numpy.{name} is not supported on lowprec emulated arrays (it "
                    "would compute in float64)")


def _arith(fn, vals: list, settings) -> EmulatedArray:
    shape = np.broadcast_shapes(*(v.shape for v in vals))
    result = fn(*vals, settings.fmt, **settings.options())
    return EmulatedArray._wrap(np.asarray(result, np.float64).reshape(shape), settings)


def _store(result: object, out: tuple, ufunc: np.ufunc) -> object:
    """Write into ``out=`` (in-place operators): the result is converted to the
    target's format as NumPy casts, rounded once more if that format is narrower."""
    if len(out) != 1 or not isinstance(out[0], EmulatedArray | np.ndarray):
        raise TypeError(f"numpy.{ufunc.__name__}: out= must be one array")
    target = out[0]
    if isinstance(target, np.ndarray):
        values = result._data if isinstance(result, EmulatedArray) else result
        target[...] = values
        return target
    if not isinstance(result, EmulatedArray):
        raise TypeError(f"numpy.{ufunc.__name__}: a boolean result cannot be stored "
                        "in an emulated array")
    values = result._data
    if not fits(result.fmt, target.fmt) and target.fmt != fp64:
        s = target.settings
        values = np.asarray(_round(values, target.fmt, **s.options()), np.float64)
    target._data[...] = values
    return target
