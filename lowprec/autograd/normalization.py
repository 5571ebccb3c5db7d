"""Normalization over the last axis: layer norm and RMS norm.

Both round their statistics to the statistics format (the result format: fp32
when ``"layer_norm"`` is one of the policy's fp32 ops, else the activations),
one named step at a time, so that fp16 statistics overflow where an fp16 kernel
would (a squared deviation above 65504, from |x - mean| > 255.9) and an ``eps``
below fp16's smallest subnormal rounds to 0. With fp32 statistics every such
rounding is the identity in float32 storage and the op is its float32 expression
rounded once.
"""

from __future__ import annotations

import math

import numpy as np

from lowprec.autograd._operands import _rounder, _unary
from lowprec.autograd.tensor import Tensor, _result
from lowprec.rounding._rne import round_rne


def _last_axis(x: object, op: str) -> int:
    x = _unary(x, op)
    n = x.shape[-1] if x.ndim else 0
    if n == 0:
        raise ValueError(f"{op}: x must have a last axis, got shape {x.shape}")
    return n


def _affine(x: Tensor, n: int, op: str, **params: Tensor | None) -> None:
    for name, t in params.items():
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor or None")
        if t.shape != (n,):
            raise ValueError(
                f"{op}: {name} must have shape ({n},) for x of shape "
                f"{x.shape}, got {t.shape}"
            )
        if t._ctx is not x._ctx:
            raise ValueError(f"{op}: {name} has a different policy from x")


def _check_eps(eps: object, op: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating):
        raise TypeError(f"{op}: eps must be a number, got {type(eps).__name__}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{op}: eps must be finite and >= 0, got {eps!r}")
    return float(eps)


def layer_norm(
    x: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize the last axis to mean 0 and variance 1, then ``* weight + bias``.

    Ba, Kiros and Hinton, "Layer Normalization", 2016. The statistics, each
    rounded to the statistics format (module docstring): ``mean = sum(x) / n``,
    ``d = x - mean``, ``var = sum(d * d) / n`` (each square rounded, then the
    biased variance), ``rstd = 1 / sqrt(var + eps)`` (eps rounded, the sum
    rounded, then rstd). Then ``d * rstd * weight + bias`` in the storage dtype,
    rounded once to the result format (fp32 when ``"layer_norm"`` is one of the
    policy's fp32 ops). Backward from the rounded statistics.

    Parameters
    ----------
    x : Tensor, shape (..., n)
    weight, bias : Tensor, shape (n,), optional
    eps : float
        Added to the variance.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, layer_norm
    >>> row = np.array([[300.0] + [0.0] * 7])  # (300 - 37.5)**2 > 65504
    >>> y = layer_norm(Tensor(row, policy="fp16_mixed"))  # fp32 statistics
    >>> y.fmt.name, y.data[0, :2].astype(float).round(4).tolist()
    ('fp32', [2.6458, -0.378])
    >>> layer_norm(Tensor(row, policy="fp16_naive")).data[0, :2].tolist()
    [0.0, -0.0]
    """
    n = _last_axis(x, "layer_norm")
    _affine(x, n, "layer_norm", weight=weight, bias=bias)
    eps = _check_eps(eps, "layer_norm")
    ctx = x._ctx
    dt = ctx.dtype.type
    count, one = dt(n), dt(1)
    fmt = ctx.result_fmt(
        x.fmt,
        None if weight is None else weight.fmt,
        None if bias is None else bias.fmt,
        op="layer_norm",
    )
    sfmt = ctx.result_fmt(x.fmt, op="layer_norm")
    v = x.data
    with np.errstate(all="ignore"):
        if sfmt is ctx.storage:  # fp32 statistics: no rounding step to call
            mu = v.sum(axis=-1, keepdims=True) / count
            xc = v - mu
            var = (xc * xc).sum(axis=-1, keepdims=True) / count
            rstd = one / np.sqrt(var + dt(eps))
        else:
            stat = _rounder(ctx, sfmt)
            mu = stat(v.sum(axis=-1, keepdims=True) / count)
            xc = stat(v - mu)
            var = stat(stat(xc * xc).sum(axis=-1, keepdims=True) / count)
            rstd = stat(one / np.sqrt(stat(var + stat(np.asarray(dt(eps))))))
        xhat = xc * rstd
        y = xhat
        if weight is not None:
            y = y * weight.data
        if bias is not None:
            y = y + bias.data
        out = round_rne(y, fmt)

    def backward(g):
        gx = g if weight is None else g * weight.data
        mean_g = gx.sum(axis=-1, keepdims=True) / count
        mean_gx = (gx * xhat).sum(axis=-1, keepdims=True) / count
        dx = rstd * (gx - mean_g - xhat * mean_gx)
        grads = [dx]
        if weight is not None:
            grads.append((g * xhat).reshape(-1, n).sum(axis=0))
        if bias is not None:
            grads.append(g.reshape(-1, n).sum(axis=0))
        return tuple(grads)

    parents = tuple(t for t in (x, weight, bias) if t is not None)
    return _result(out, fmt, ctx, parents, backward)


def rms_norm(x: Tensor, weight: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """Divide the last axis by its root mean square, then ``* weight``.

    Zhang and Sennrich, "Root Mean Square Layer Normalization", NeurIPS 2019:
    ``x / sqrt(mean(x**2) + eps) * weight``. The statistics, each rounded to the
    statistics format (module docstring): the squares, ``ms = sum(x * x) / n``,
    eps, ``ms + eps`` and ``rstd = 1 / sqrt(ms + eps)``. Then
    ``x * rstd * weight`` in the storage dtype, rounded once to the result format
    (fp32 when ``"layer_norm"`` is one of the policy's fp32 ops). Backward:
    ``rstd (gw - xhat mean(gw xhat))`` with ``gw = g * weight`` and
    ``xhat = x * rstd``; ``sum(g * xhat)`` over the rows for the weight.

    Parameters
    ----------
    x : Tensor, shape (..., n)
    weight : Tensor, shape (n,), optional
    eps : float
        Added to the mean square (1e-6 by default, as in T5 and LLaMA).

    Examples
    --------
    >>> from lowprec.autograd import Tensor, rms_norm
    >>> rms_norm(Tensor([[3.0, 4.0]], policy="fp32"), eps=0.0).data.tolist()
    [[0.8485281467437744, 1.1313709020614624]]
    """
    n = _last_axis(x, "rms_norm")
    _affine(x, n, "rms_norm", weight=weight)
    eps = _check_eps(eps, "rms_norm")
    ctx = x._ctx
    dt = ctx.dtype.type
    count, one = dt(n), dt(1)
    fmt = ctx.result_fmt(x.fmt, None if weight is None else weight.fmt, op="layer_norm")
    stat = _rounder(ctx, ctx.result_fmt(x.fmt, op="layer_norm"))
    v = x.data
    with np.errstate(all="ignore"):
        ms = stat(stat(v * v).sum(axis=-1, keepdims=True) / count)
        rstd = stat(one / np.sqrt(stat(ms + stat(np.asarray(dt(eps))))))
        xhat = v * rstd
        y = xhat if weight is None else xhat * weight.data
        out = round_rne(y, fmt)

    def backward(g):
        gw = g if weight is None else g * weight.data
        mean_gx = (gw * xhat).sum(axis=-1, keepdims=True) / count
        grads = [rstd * (gw - xhat * mean_gx)]
        if weight is not None:
            grads.append((g * xhat).reshape(-1, n).sum(axis=0))
        return tuple(grads)

    parents = (x,) if weight is None else (x, weight)
    return _result(out, fmt, ctx, parents, backward)
