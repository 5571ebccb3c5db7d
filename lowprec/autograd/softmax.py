"""Softmax and log-softmax along an axis, with max-subtraction.

The softmax takes an optional causal mask and rounds its intermediates to its
statistics format (see the package docstring); log-softmax evaluates its whole
expression in the storage dtype and rounds once.
"""

from __future__ import annotations

import numpy as np

from lowprec.autograd._operands import _axes, _rounder, _unary
from lowprec.autograd.tensor import Tensor, _result
from lowprec.rounding._rne import round_rne


def _log_softmax_values(v: np.ndarray, axis: int) -> np.ndarray:
    """``v - max - log(sum(exp(v - max)))`` in v's dtype."""
    z = v - v.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, evaluated stably in the storage dtype.

    Rounded once (kept in fp32 when ``"softmax"`` is one of the policy's fp32
    ops); backward ``g - softmax * sum(g)`` with the softmax from the output.
    """
    x = _unary(x, "log_softmax")
    (ax,) = _axes(x, axis, "log_softmax")
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt, op="softmax")
    with np.errstate(all="ignore"):
        out = round_rne(_log_softmax_values(x.data, ax), fmt)

    def backward(g):
        return (g - np.exp(out) * g.sum(axis=ax, keepdims=True),)

    return _result(out, fmt, ctx, (x,), backward)


def causal_mask(n_query: int, n_key: int) -> np.ndarray:
    """True where key position ``j`` is visible from query position ``i``
    (``j <= i``): :func:`numpy.tri` of shape ``(n_query, n_key)``.

    Examples
    --------
    >>> from lowprec.autograd import causal_mask
    >>> causal_mask(2, 3).tolist()
    [[True, False, False], [True, True, False]]
    """
    return np.tri(n_query, n_key, dtype=bool)


def softmax(
    x: Tensor, axis: int = -1, *, causal: bool = False, subtract_max: bool = True
) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``.

    The steps, each rounded to the statistics format (the result format: fp32 when
    ``"softmax"`` is one of the policy's fp32 ops, else the activations; with
    fp32 statistics every step but the last is exact in float32 storage):

    1. with ``causal``, the positions a query may not see (key ``j`` > query ``i``
       on the last two axes, :func:`causal_mask`) are set to -inf;
    2. ``z = x - max(x)`` along the axis (``z = x`` when ``subtract_max`` is
       False, which shows why the subtraction is there: in fp16, ``exp`` of
       anything above ln(65504) ~ 11.09 overflows);
    3. ``e = exp(z)``, exactly 0 at masked positions;
    4. ``s = sum(e)`` in the storage dtype, rounded once;
    5. ``e / s``, rounded once to the result format.

    Backward: ``y (g - sum(g y))`` from the rounded output ``y`` (0 wherever
    ``y`` is 0, so masked positions get no gradient).

    Parameters
    ----------
    x : Tensor
    axis : int
        With ``causal``, the last axis (the keys), and x at least 2-D.
    causal : bool
    subtract_max : bool

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, softmax
    >>> x = Tensor(np.zeros((2, 2)), policy="fp32")
    >>> softmax(x, causal=True).data.tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    >>> big = Tensor([[12.0, 0.0]], policy="fp16_naive")
    >>> softmax(big).data.tolist()  # max-subtraction: finite
    [[1.0, 6.139278411865234e-06]]
    >>> softmax(big, subtract_max=False).data.tolist()  # exp(12) overflows fp16
    [[nan, 0.0]]
    """
    x = _unary(x, "softmax")
    (ax,) = _axes(x, axis, "softmax")
    for name, flag in (("causal", causal), ("subtract_max", subtract_max)):
        if not isinstance(flag, bool):
            raise TypeError(f"softmax: {name} must be True or False, got {flag!r}")
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt, op="softmax")
    stat = _rounder(ctx, fmt)
    v = x.data
    if causal:
        if x.ndim < 2 or ax != x.ndim - 1:
            raise ValueError(
                "softmax: a causal mask needs the last axis (keys) of an at least "
                f"2-D tensor, got axis={axis} for shape {x.shape}"
            )
        visible = causal_mask(*x.shape[-2:])
        v = np.where(visible, v, v.dtype.type(-np.inf))
    with np.errstate(all="ignore"):
        z = stat(v - v.max(axis=ax, keepdims=True)) if subtract_max else v
        e = stat(np.exp(z))
        out = round_rne(e / stat(e.sum(axis=ax, keepdims=True)), fmt)

    def backward(g):
        return (out * (g - (g * out).sum(axis=ax, keepdims=True)),)

    return _result(out, fmt, ctx, (x,), backward)
