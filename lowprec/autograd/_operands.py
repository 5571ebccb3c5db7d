"""How an op's arguments become arrays, formats and parents, and how gradients
go back to the shapes of the arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from lowprec.autograd._context import _Context
from lowprec.autograd.tensor import Tensor
from lowprec.formats import Format
from lowprec.rounding._rne import round_rne
from lowprec.rounding.rounder import as_float_array


class _Operand(NamedTuple):
    data: np.ndarray
    fmt: Format | None  # None: a constant, which does not promote
    tensor: Tensor | None


def _operands(a: object, b: object, op: str) -> tuple[_Context, _Operand, _Operand]:
    ta = a if isinstance(a, Tensor) else None
    tb = b if isinstance(b, Tensor) else None
    if ta is None and tb is None:
        raise TypeError(f"{op}: at least one operand must be a Tensor")
    ctx = (ta if ta is not None else tb)._ctx
    if ta is not None and tb is not None and ta._ctx is not tb._ctx:
        raise ValueError(
            f"{op}: operands have different policies ({ta.policy.name!r} and "
            f"{tb.policy.name!r})"
        )
    return ctx, _operand(a, ctx, op), _operand(b, ctx, op)


def _operand(x: object, ctx: _Context, op: str) -> _Operand:
    if isinstance(x, Tensor):
        return _Operand(x.data, x.fmt, x)
    if type(x) is float:  # a loss scale or weight: the same rounding, fewer checks
        return _Operand(np.array(x, dtype=ctx.dtype), None, None)
    try:
        arr = np.asarray(as_float_array(x, "operand"), dtype=ctx.dtype)
    except TypeError:
        raise TypeError(
            f"{op}: operands must be Tensors, numbers or float arrays, got "
            f"{type(x).__name__}"
        ) from None
    return _Operand(arr, None, None)


def _broadcast_shape(a: np.ndarray, b: np.ndarray, op: str) -> None:
    if not a.ndim or not b.ndim or a.shape == b.shape:
        return  # a scalar (a loss scale) or equal shapes: nothing to check
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched to reach it."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def _parents(*operands: _Operand) -> tuple[Tensor, ...]:
    return tuple(o.tensor for o in operands if o.tensor is not None)


def _for_parents(operands: Sequence[_Operand], grads: Sequence[np.ndarray | None]):
    """Keep the gradients of the operands that are tensors, in order."""
    return tuple(
        g for o, g in zip(operands, grads, strict=True) if o.tensor is not None
    )


def _unary(x: object, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: x must be a Tensor, got {type(x).__name__}")
    return x


def _axes(x: Tensor, axis: int | tuple[int, ...] | None, op: str) -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes of ``x``."""
    if axis is None:
        return tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int | np.integer):
            raise TypeError(
                f"{op}: axis must be an int, a tuple of ints or None, got {axis!r}"
            )
        if not -x.ndim <= a < x.ndim:
            raise ValueError(
                f"{op}: axis {axis!r} is out of range for a tensor of shape {x.shape}"
            )
        out.append(int(a) % x.ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _expand(
    g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool
) -> np.ndarray:
    """Broadcast a reduction's gradient back to the input's shape."""
    if not keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _rounder(ctx: _Context, fmt: Format):
    """Rounding to ``fmt``, or the identity when ``fmt`` is the storage format
    (an op's statistics under fp32 statistics: no call at all)."""
    if fmt is ctx.storage:
        return lambda a: a
    return lambda a: round_rne(a, fmt)
