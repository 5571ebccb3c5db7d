"""Reductions: sum and mean, rounded once (fp32 when ``"reduction"`` is one of
the policy's fp32 ops).

``sum`` here is the op; this module does not use the builtin.
"""

from __future__ import annotations

import numpy as np

from lowprec.autograd._operands import _axes, _expand, _unary
from lowprec.autograd.tensor import Tensor, _result
from lowprec.rounding._rne import round_rne


def sum(
    x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False
) -> Tensor:
    """Sum over ``axis`` (all axes by default) in the storage dtype, rounded once.

    The result stays in fp32 when ``"reduction"`` is one of the policy's fp32 ops.
    """
    x = _unary(x, "sum")
    axes = _axes(x, axis, "sum")
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt, op="reduction")
    with np.errstate(all="ignore"):
        out = round_rne(np.asarray(x.data.sum(axis=axes, keepdims=keepdims)), fmt)

    def backward(g):
        return (_expand(g, x.shape, axes, keepdims),)

    return _result(out, fmt, ctx, (x,), backward)


def mean(
    x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False
) -> Tensor:
    """Mean over ``axis``: the storage-dtype sum divided by the count, rounded once."""
    x = _unary(x, "mean")
    axes = _axes(x, axis, "mean")
    ctx = x._ctx
    count = ctx.dtype.type(int(np.prod([x.shape[a] for a in axes], dtype=np.int64)))
    fmt = ctx.result_fmt(x.fmt, op="reduction")
    with np.errstate(all="ignore"):
        out = round_rne(
            np.asarray(x.data.sum(axis=axes, keepdims=keepdims) / count), fmt
        )

    def backward(g):
        return (_expand(g / count, x.shape, axes, keepdims),)

    return _result(out, fmt, ctx, (x,), backward)
