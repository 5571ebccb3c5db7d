"""The NumPy functions of an emulated array (NEP 18): the exact ones that keep the
format, the reductions through lowprec's accumulation models, and nothing else."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from lowprec.arith import elementwise
from lowprec.arith.matmul import sum as _sum
from lowprec.emulation.array import (
    EmulatedArray,
    common_settings,
    emulated_matmul,
    matmul_options,
    values_in,
)
from lowprec.emulation.context import Settings
from lowprec.rounding.rounder import round as _round

FUNCTIONS: dict = {}


def _implements(*funcs):
    def register(impl):
        for f in funcs:
            FUNCTIONS[f] = impl
        return impl

    return register


def _wrap(values: np.ndarray, settings: Settings) -> EmulatedArray:
    return EmulatedArray._wrap(np.asarray(values, np.float64), settings)


# Functions that move or select values: exact, the format is kept.
def _same_format(func):
    def impl(a, *args, **kwargs):
        return _wrap(func(a._data, *args, **kwargs), a.settings)

    impl.__name__ = func.__name__
    return impl


for _f in (np.reshape, np.transpose, np.ravel, np.squeeze, np.expand_dims,
           np.swapaxes, np.moveaxis, np.broadcast_to, np.flip, np.fliplr, np.flipud,
           np.roll, np.copy, np.diagonal, np.diag, np.tril, np.triu, np.take,
           np.repeat, np.tile, np.sort, np.atleast_1d, np.atleast_2d, np.amax, np.max,
           np.amin, np.min, np.nanmax, np.nanmin, np.rot90):
    FUNCTIONS[_f] = _same_format(_f)

# Functions whose result is not a value of the format (shapes, indices, booleans).
for _f in (np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.nonzero,
           np.count_nonzero, np.any, np.all, np.isnan, np.isinf, np.isfinite,
           np.signbit, np.argwhere, np.flatnonzero):
    FUNCTIONS[_f] = (lambda f: lambda a, *args, **kw: f(a._data, *args, **kw))(_f)


def _exact_compare(func):
    def impl(a, b, *args, **kwargs):
        va = a._data if isinstance(a, EmulatedArray) else np.asarray(a)
        vb = b._data if isinstance(b, EmulatedArray) else np.asarray(b)
        return func(va, vb, *args, **kwargs)

    return impl


for _f in (np.array_equal, np.allclose, np.isclose):
    FUNCTIONS[_f] = _exact_compare(_f)


def _joiner(func):
    def impl(arrays, *args, **kwargs):
        arrays = list(arrays)
        settings = common_settings(tuple(arrays))
        return _wrap(func([values_in(x, settings) for x in arrays], *args, **kwargs),
                     settings)

    return impl


for _f in (np.concatenate, np.stack, np.vstack, np.hstack, np.column_stack):
    FUNCTIONS[_f] = _joiner(_f)


@_implements(np.where)
def where(condition, x=None, y=None):
    if x is None and y is None:
        cond = condition._data if isinstance(condition, EmulatedArray) else condition
        return np.nonzero(cond)
    settings = common_settings((x, y))
    cond = condition._data if isinstance(condition, EmulatedArray) else condition
    return _wrap(np.where(cond, values_in(x, settings), values_in(y, settings)),
                 settings)


@_implements(np.clip)
def clip(a, a_min=None, a_max=None, **kwargs):
    if kwargs:
        raise TypeError(f"numpy.clip: {', '.join(kwargs)} not supported on lowprec "
                        "emulated arrays")
    s = a.settings
    lo = None if a_min is None else values_in(a_min, s)
    hi = None if a_max is None else values_in(a_max, s)
    return _wrap(np.clip(a._data, lo, hi), s)


for _f, _fill in ((np.zeros_like, 0.0), (np.ones_like, 1.0), (np.empty_like, 0.0)):
    FUNCTIONS[_f] = (lambda fill: lambda a, dtype=None, shape=None, **kw: _wrap(
        np.full(a.shape if shape is None else shape, fill), a.settings))(_fill)


@_implements(np.full_like)
def full_like(a, fill_value, dtype=None, shape=None, **kwargs):
    shape = a.shape if shape is None else shape
    return _wrap(np.broadcast_to(values_in(fill_value, a.settings), shape).copy(),
                 a.settings)


# Reductions: every addition rounded to the accumulator, in the array's order.
def _axis_first(x: np.ndarray, axis) -> tuple[np.ndarray, tuple[int, ...]]:
    """Move the reduced axes to the front (in C order) and flatten them there."""
    if axis is None:
        return x.reshape(-1, 1), ()
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, int | np.integer):
            raise TypeError(
                f"axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -x.ndim <= ax < x.ndim:
            raise ValueError(f"axis {ax} is out of bounds for a {x.ndim}-D array")
    axes = tuple(sorted(ax % x.ndim for ax in axes))
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis: repeated axes in {axis!r}")
    moved = np.moveaxis(x, axes, tuple(range(len(axes))))
    rest = moved.shape[len(axes):]
    return moved.reshape(math.prod(moved.shape[:len(axes)]), -1), rest


def _keep(result: np.ndarray, shape: tuple, axis, keepdims: bool) -> np.ndarray:
    if not keepdims:
        return result
    if axis is None:
        return result.reshape((1,) * len(shape))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    return np.expand_dims(result, tuple(ax % len(shape) for ax in axes))


def _no_dtype_out(name: str, dtype, out) -> None:
    if dtype is not None or out is not None:
        raise TypeError(f"numpy.{name}: dtype= and out= are not supported on lowprec "
                        "emulated arrays (the format decides)")


def _reduce_sum(a: EmulatedArray, axis) -> np.ndarray:
    """Sum along ``axis`` into the accumulator, each sum rounded to the format."""
    terms, rest = _axis_first(a._data, axis)
    opts = matmul_options(a.settings)
    opts.pop("inputs")
    if terms.shape[0] == 0:
        return np.zeros(rest)
    total = np.asarray(_sum(terms, a.fmt, axis=0, **opts), np.float64)
    return total.reshape(rest)


@_implements(np.sum)
def sum(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_dtype_out("sum", dtype, out)
    return _wrap(_keep(_reduce_sum(a, axis), a.shape, axis, keepdims), a.settings)


def _round_quotient(s: np.ndarray, n: int, settings: Settings) -> np.ndarray:
    """``s / n`` rounded once to the format.

    The float64 quotient rounds to the same value as the exact one unless it lands
    exactly on a value or a midpoint of the format (only there can rounding to
    float64 first cross a boundary); those elements are moved one float64 ulp
    toward the exact quotient, found with Fractions, before the one rounding.
    """
    s = np.asarray(s, np.float64)
    q = s / n
    flat_s = s.reshape(-1)
    fmt = settings.fmt
    down = np.asarray(_round(q, fmt, rounding="toward_negative"), np.float64)
    up = np.asarray(_round(q, fmt, rounding="toward_positive"), np.float64)
    on_edge = np.isfinite(q) & ((q == down) | (q - down == up - q))
    q = q.reshape(-1)
    for i in np.flatnonzero(on_edge):
        exact = Fraction(float(flat_s[i])) / n
        if exact != Fraction(float(q[i])):
            q[i] = np.nextafter(q[i], np.inf if exact > Fraction(float(q[i]))
                                else -np.inf)
    return np.asarray(_round(q.reshape(s.shape), fmt, **settings.options()), np.float64)


@_implements(np.mean)
def mean(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_dtype_out("mean", dtype, out)
    terms, _ = _axis_first(a._data, axis)
    n = terms.shape[0]
    if n == 0:
        raise ValueError("mean of an empty selection")
    total = _reduce_sum(EmulatedArray._wrap(a._data, _sum_into(a.settings)), axis)
    result = _round_quotient(total, n, a.settings)
    return _wrap(_keep(result, a.shape, axis, keepdims), a.settings)


def _sum_into(settings: Settings) -> Settings:
    """Settings whose sums stop in the accumulator (mean divides it, then rounds)."""
    from dataclasses import replace

    return replace(settings, fmt=settings.accumulate, accumulate=settings.accumulate,
                   rng=settings.rng, stats=settings.stats)


@_implements(np.cumsum)
def cumsum(a, axis=None, dtype=None, out=None):
    """Running sums: ``acc = round_acc(acc + x_i)``, each output ``round(acc)``."""
    _no_dtype_out("cumsum", dtype, out)
    s = a.settings
    if s.order != "sequential" or s.model is not None:
        raise ValueError(f"cumsum: only the sequential order has running sums, the "
                         f"array's order is {s.order!r}")
    x = a._data.reshape(-1) if axis is None else np.moveaxis(a._data, axis, 0)
    result = np.empty_like(x)
    opts = s.options()
    acc = None
    for i in range(x.shape[0]):
        if acc is None:
            acc = np.asarray(_round(x[0], s.accumulate), np.float64)
        else:
            acc = np.asarray(elementwise.add(acc, x[i], s.accumulate,
                                             round_inputs=True, **opts), np.float64)
        result[i] = acc if s.accumulate == s.fmt else _round(acc, s.fmt, **opts)
    if axis is not None:
        result = np.moveaxis(result, 0, axis)
    return _wrap(result, s)


def ufunc_reduction(ufunc, method, a, axis=0, keepdims=False):
    """``np.add.reduce``/``accumulate`` and the exact max/min reductions."""
    if ufunc is np.add and method == "reduce":
        return sum(a, axis=axis, keepdims=keepdims)
    if ufunc is np.add and method == "accumulate":
        return cumsum(a, axis=axis)
    if ufunc in (np.maximum, np.minimum, np.fmax, np.fmin) and method == "reduce":
        return _wrap(ufunc.reduce(a._data, axis=axis, keepdims=keepdims), a.settings)
    raise TypeError(f"numpy.{ufunc.__name__}.{method} is not supported on lowprec "
                    "emulated arrays")


@_implements(np.matmul)
def matmul(a, b, **kwargs):
    if kwargs:
        raise TypeError(f"numpy.matmul: {', '.join(kwargs)} not supported on lowprec "
                        "emulated arrays")
    settings = common_settings((a, b))
    x, y = values_in(a, settings), values_in(b, settings)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("matmul: operands must be at least 1-D")
    vec_a, vec_b = x.ndim == 1, y.ndim == 1
    x = x[None, :] if vec_a else x
    y = y[:, None] if vec_b else y
    if x.shape[-1] != y.shape[-2]:
        raise ValueError(f"matmul: shapes {x.shape} and {y.shape} do not align")
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    xb = np.broadcast_to(x, batch + x.shape[-2:])
    yb = np.broadcast_to(y, batch + y.shape[-2:])
    result = np.empty(batch + (x.shape[-2], y.shape[-1]))
    for i in np.ndindex(*batch):
        # copies: a broadcast view is read-only, and the kernels take owned arrays
        result[i] = emulated_matmul(np.array(xb[i], order="C"),
                                    np.array(yb[i], order="C"), settings)
    if vec_a:
        result = result[..., 0, :]
    if vec_b:
        result = result[..., 0]
    return _wrap(result, settings)


@_implements(np.dot)
def dot(a, b, out=None):
    _no_dtype_out("dot", None, out)
    nd = [np.ndim(x._data if isinstance(x, EmulatedArray) else x) for x in (a, b)]
    if max(nd) > 2:
        raise ValueError("dot: only 1-D and 2-D operands are supported (use matmul)")
    if 0 in nd:
        return np.multiply(a, b)
    return matmul(a, b)


@_implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    """2-norm (Frobenius for matrices): the sum of squares in the accumulator, its
    square root there, then rounded to the format."""
    if ord is not None or axis is not None or keepdims:
        raise TypeError("numpy.linalg.norm: only the default 2-norm of the whole "
                        "array is supported on lowprec emulated arrays")
    s = x.settings
    v = x._data.reshape(-1)
    opts = matmul_options(s)
    opts["output"] = s.accumulate
    ss = np.asarray(_matmul_sq(v, opts), np.float64)
    root = elementwise.sqrt(ss, s.accumulate, **s.options())
    return _wrap(_round(np.asarray(root, np.float64), s.fmt, **s.options()), s)


def _matmul_sq(v: np.ndarray, opts: dict) -> np.ndarray:
    from lowprec.arith.matmul import matmul as _mm

    if v.size == 0:
        return np.zeros(())
    return _mm(v[None, :], v[:, None], **opts)[0, 0]
