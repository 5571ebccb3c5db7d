"""Losses: the mean cross-entropy of integer labels, with an optional z-loss."""

from __future__ import annotations

import numpy as np

from lowprec.autograd._operands import _unary
from lowprec.autograd.softmax import _log_softmax_values
from lowprec.autograd.tensor import Tensor, _result
from lowprec.rounding._rne import round_rne

# PaLM's coefficient (Chowdhery et al., "PaLM", 2022, section 5): z_loss=True
Z_LOSS = 1e-4


def _labels(labels: object, shape: tuple[int, ...], classes: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: labels must be integers, got dtype {arr.dtype}"
        )
    if arr.shape != shape:
        raise ValueError(
            f"cross_entropy: labels must have shape {shape} to match logits of "
            f"shape {(*shape, classes)}, got {arr.shape}"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= classes):
        raise ValueError(
            f"cross_entropy: labels must be in [0, {classes}) (no index is "
            f"ignored), got values in [{arr.min()}, {arr.max()}]"
        )
    return (arr if arr.ndim == 1 else arr.reshape(-1)).astype(np.intp, copy=False)


def _z_coefficient(z_loss: object) -> float:
    if z_loss is True:
        return Z_LOSS
    if z_loss is False:
        return 0.0
    if not isinstance(z_loss, int | float | np.floating) or not (
        np.isfinite(z_loss) and z_loss >= 0
    ):
        raise ValueError(
            f"cross_entropy: z_loss must be True, False or a finite coefficient "
            f">= 0, got {z_loss!r}"
        )
    return float(z_loss)


def cross_entropy(
    logits: Tensor, labels: object, *, z_loss: bool | float = False
) -> Tensor:
    """Mean negative log-likelihood of integer ``labels`` under softmax(logits).

    Log-softmax and the mean are one op, evaluated in the storage dtype and
    rounded once (kept in fp32 when ``"cross_entropy"`` is one of the policy's
    fp32 ops), as PyTorch's ``F.cross_entropy``. Logits of shape ``(..., V)``
    (``(n, V)``, or ``(B, T, V)`` for a language model) take labels of shape
    ``(...)``; the mean runs over every position, summed in C order. Backward:
    ``(softmax(logits) - onehot(labels)) * (g / n)``; with ``g`` a power of two
    (a loss scale) every step scales exactly.

    With ``z_loss`` (True for the coefficient 1e-4, or a number), each position
    adds ``z_loss * log(Z)**2``, where ``log Z = max + log(sum(exp(x - max)))``
    is the log of the softmax's normalizer (PaLM's auxiliary loss, which keeps
    log Z near 0); its gradient adds ``2 z_loss log(Z) softmax(logits)``.

    Parameters
    ----------
    logits : Tensor, shape (..., classes)
    labels : array_like of int, shape (...)
        Values in ``[0, classes)``; none is ignored, anything else raises.
    z_loss : bool or float

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, cross_entropy
    >>> logits = Tensor(np.zeros((2, 4)), policy="fp32", requires_grad=True)
    >>> loss = cross_entropy(logits, np.array([0, 3]))
    >>> round(loss.item(), 6)  # log 4
    1.386294
    >>> round(cross_entropy(logits, np.array([0, 3]), z_loss=True).item(), 6)
    1.386487
    """
    logits = _unary(logits, "cross_entropy")
    if logits.ndim < 2:
        raise ValueError(
            "cross_entropy: logits must be at least 2-D (n, classes) or "
            f"(..., classes), got shape {logits.shape}"
        )
    classes = logits.shape[-1]
    n = logits.size // classes if classes else int(np.prod(logits.shape[:-1]))
    if n == 0:
        raise ValueError("cross_entropy: logits have no rows")
    cols = _labels(labels, logits.shape[:-1], classes)
    coefficient = _z_coefficient(z_loss)
    rows = np.arange(n)
    ctx = logits._ctx
    count = ctx.dtype.type(n)
    fmt = ctx.result_fmt(logits.fmt, op="cross_entropy")
    v = logits.data if logits.ndim == 2 else logits.data.reshape(n, classes)
    with np.errstate(all="ignore"):
        if coefficient:
            c = ctx.dtype.type(coefficient)
            top = v.max(axis=1, keepdims=True)
            z = v - top
            lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
            logp = z - lse
            log_z = (top + lse)[:, 0]
            per_row = -logp[rows, cols] + c * (log_z * log_z)
            out = round_rne(np.asarray(per_row.sum() / count), fmt)
        else:
            logp = _log_softmax_values(v, 1)
            out = round_rne(np.asarray(-logp[rows, cols].sum() / count), fmt)

    def backward(g):
        p = np.exp(logp)
        if coefficient:
            two = ctx.dtype.type(2)
            p = p + (two * c) * log_z[:, None] * p
        p[rows, cols] -= ctx.dtype.type(1)
        grad = p * (g / count)
        return (grad if logits.ndim == 2 else grad.reshape(logits.shape),)

    return _result(out, fmt, ctx, (logits,), backward)
