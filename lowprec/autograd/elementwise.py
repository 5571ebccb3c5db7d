"""Elementwise ops: arithmetic with broadcasting, exp and log, the activations,
masked fill and dropout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lowprec.autograd._erf import erf, erfc
from lowprec.autograd._operands import (
    _broadcast_shape,
    _for_parents,
    _operands,
    _parents,
    _unary,
    _unbroadcast,
)
from lowprec.autograd.tensor import Tensor, _result
from lowprec.rounding._rne import round_rne


def add(a: Tensor | object, b: Tensor | object) -> Tensor:
    """``a + b`` with broadcasting, rounded once."""
    ctx, x, y = _operands(a, b, "add")
    _broadcast_shape(x.data, y.data, "add")
    with np.errstate(all="ignore"):
        out = round_rne(np.asarray(x.data + y.data), ctx.result_fmt(x.fmt, y.fmt))

    def backward(g):
        return _for_parents(
            (x, y), (_unbroadcast(g, x.data.shape), _unbroadcast(g, y.data.shape))
        )

    return _result(out, ctx.result_fmt(x.fmt, y.fmt), ctx, _parents(x, y), backward)


def sub(a: Tensor | object, b: Tensor | object) -> Tensor:
    """``a - b`` with broadcasting, rounded once."""
    ctx, x, y = _operands(a, b, "sub")
    _broadcast_shape(x.data, y.data, "sub")
    fmt = ctx.result_fmt(x.fmt, y.fmt)
    with np.errstate(all="ignore"):
        out = round_rne(np.asarray(x.data - y.data), fmt)

    def backward(g):
        return _for_parents(
            (x, y), (_unbroadcast(g, x.data.shape), _unbroadcast(-g, y.data.shape))
        )

    return _result(out, fmt, ctx, _parents(x, y), backward)


def mul(a: Tensor | object, b: Tensor | object) -> Tensor:
    """``a * b`` with broadcasting, rounded once."""
    ctx, x, y = _operands(a, b, "mul")
    _broadcast_shape(x.data, y.data, "mul")
    fmt = ctx.result_fmt(x.fmt, y.fmt)
    with np.errstate(all="ignore"):
        out = round_rne(np.asarray(x.data * y.data), fmt)

    def backward(g):
        ga = _unbroadcast(g * y.data, x.data.shape) if x.tensor is not None else None
        gb = _unbroadcast(g * x.data, y.data.shape) if y.tensor is not None else None
        return _for_parents((x, y), (ga, gb))

    return _result(out, fmt, ctx, _parents(x, y), backward)


def div(a: Tensor | object, b: Tensor | object) -> Tensor:
    """``a / b`` with broadcasting, rounded once."""
    ctx, x, y = _operands(a, b, "div")
    _broadcast_shape(x.data, y.data, "div")
    fmt = ctx.result_fmt(x.fmt, y.fmt)
    with np.errstate(all="ignore"):
        out = round_rne(np.asarray(x.data / y.data), fmt)

    def backward(g):
        ga = _unbroadcast(g / y.data, x.data.shape) if x.tensor is not None else None
        gb = None
        if y.tensor is not None:
            gb = _unbroadcast(-g * x.data / (y.data * y.data), y.data.shape)
        return _for_parents((x, y), (ga, gb))

    return _result(out, fmt, ctx, _parents(x, y), backward)


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``; exact, so it keeps x's format."""
    x = _unary(x, "relu")
    zero = x.data.dtype.type(0)
    positive = x.data > zero
    out = np.where(positive, x.data, zero)

    def backward(g):
        return (np.where(positive, g, zero),)

    backward.exact = True  # selects values of g
    return _result(out, x.fmt, x._ctx, (x,), backward)


_GELU_C = np.sqrt(2.0 / np.pi)
_GELU_K = 0.044715
_SQRT_HALF = np.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
GELU_FORMS = ("none", "tanh")


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, ``x Phi(x)``: exact (erf) form by default, or the tanh approximation.

    Hendrycks and Gimpel, "Gaussian Error Linear Units", 2016; the two forms are
    PyTorch's ``approximate="none"`` (its default) and ``approximate="tanh"``.

    - ``"none"``: ``0.5 x (1 + erf(x / sqrt(2)))``, evaluated in float64 (where
      :mod:`lowprec.autograd._erf` computes erf) from the stored values and
      rounded once to the result format. Below ``x = -sqrt(2)``, ``1 + erf`` is
      taken as ``erfc(-x / sqrt(2))``, so the tiny negative tail keeps its
      digits (PyTorch's float kernel returns 0 there from x < -5.9 or so, where
      ``1 + erf`` cancels). Backward: ``g (Phi(x) + x phi(x))``, the derivative
      evaluated in float64 and stored in the storage dtype, times ``g`` there.
    - ``"tanh"``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``,
      evaluated in the storage dtype and rounded once.

    Parameters
    ----------
    x : Tensor
    approximate : {"none", "tanh"}

    Examples
    --------
    >>> from lowprec.autograd import Tensor, gelu
    >>> x = Tensor([-1.0, 0.0, 1.0], policy="fp64")
    >>> gelu(x).data.round(10).tolist()
    [-0.1586552539, 0.0, 0.8413447461]
    >>> gelu(x, approximate="tanh").data.round(10).tolist()
    [-0.1588080094, 0.0, 0.8411919906]
    """
    x = _unary(x, "gelu")
    if approximate not in GELU_FORMS:
        raise ValueError(
            f"gelu: approximate must be one of {GELU_FORMS}, got {approximate!r}"
        )
    if approximate == "tanh":
        return _gelu_tanh(x)
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt)
    v = x.data.astype(np.float64)
    with np.errstate(all="ignore"):
        u = v * _SQRT_HALF
        cdf2 = 1.0 + erf(u)  # 2 Phi(x); where 1 + erf cancels, erfc(-u) instead
        tail = u < -1.0
        cdf2[tail] = erfc(-u[tail])
        y = 0.5 * v * cdf2
        if fmt is ctx.storage:  # NumPy's cast rounds float64 to float32 once, RNE
            out = y.astype(ctx.dtype, copy=False)
        else:
            out = round_rne(y, fmt).astype(ctx.dtype, copy=False)

    def backward(g):
        with np.errstate(all="ignore"):
            d = 0.5 * cdf2 + v * (_INV_SQRT_2PI * np.exp(-0.5 * v * v))
        return (g * d.astype(ctx.dtype, copy=False),)

    return _result(out, fmt, ctx, (x,), backward)


def _gelu_tanh(x: Tensor) -> Tensor:
    ctx = x._ctx
    t_ = ctx.dtype.type
    c, k, half, one = t_(_GELU_C), t_(_GELU_K), t_(0.5), t_(1.0)
    v = x.data
    with np.errstate(all="ignore"):
        t = np.tanh(c * (v + k * (v * v * v)))
        out = round_rne(half * v * (one + t), ctx.result_fmt(x.fmt))

    def backward(g):
        three = t_(3.0)
        d = half * (one + t) + half * v * (one - t * t) * c * (
            one + three * k * (v * v)
        )
        return (g * d,)

    return _result(out, ctx.result_fmt(x.fmt), ctx, (x,), backward)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent, rounded once; backward ``g (1 - y**2)`` from the output."""
    x = _unary(x, "tanh")
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt)
    out = round_rne(np.tanh(x.data), fmt)
    one = ctx.dtype.type(1.0)

    def backward(g):
        return (g * (one - out * out),)

    return _result(out, fmt, ctx, (x,), backward)


# the policy op name under which exp and log would stay in fp32 (autocast keeps
# them there); a policy whose fp32_ops lacks it rounds them to the activations
EXP_LOG_OP = "exp_log"


def exp(x: Tensor) -> Tensor:
    """``e**x``, evaluated in the storage dtype and rounded once.

    The result is in the activation format (fp32 when ``"exp_log"`` is one of the
    policy's fp32 ops), so in fp16 it overflows to inf above ln(65504) ~ 11.09:
    ``exp(11.0859375)`` is 65248 and ``exp(11.09375)`` is inf. A softmax that
    needs no such care is :func:`lowprec.autograd.softmax`. Backward:
    ``g * y`` from the rounded output.

    Examples
    --------
    >>> from lowprec.autograd import Tensor, exp
    >>> exp(Tensor([11.0859375, 11.09375], policy="fp16_pure")).data.tolist()
    [65248.0, inf]
    """
    x = _unary(x, "exp")
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt, op=EXP_LOG_OP)
    with np.errstate(all="ignore"):
        out = round_rne(np.exp(x.data), fmt)

    def backward(g):
        return (g * out,)

    return _result(out, fmt, ctx, (x,), backward)


def log(x: Tensor) -> Tensor:
    """Natural logarithm, evaluated in the storage dtype and rounded once.

    ``log(0)`` is -inf and the log of a negative number NaN, as in NumPy (no
    error: they are results). Precision as :func:`exp`. Backward: ``g / x``.

    Examples
    --------
    >>> from lowprec.autograd import Tensor, log
    >>> log(Tensor([1.0, 0.0], policy="fp32")).data.tolist()
    [0.0, -inf]
    """
    x = _unary(x, "log")
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt, op=EXP_LOG_OP)
    with np.errstate(all="ignore"):
        out = round_rne(np.log(x.data), fmt)

    def backward(g):
        return (g / x.data,)

    return _result(out, fmt, ctx, (x,), backward)


def _bool_mask(mask: object, shape: tuple[int, ...], op: str) -> np.ndarray:
    """``mask`` as a boolean array that broadcasts to ``shape`` (not beyond it)."""
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be a boolean array, got dtype {arr.dtype}")
    try:
        wide = np.broadcast_shapes(arr.shape, shape)
    except ValueError:
        wide = None
    if wide != shape:
        raise ValueError(
            f"{op}: a mask of shape {arr.shape} does not broadcast to the tensor's "
            f"shape {shape}"
        )
    return arr


def masked_fill(x: Tensor, mask: object, value: float) -> Tensor:
    """``x`` with ``value`` where ``mask`` is True (PyTorch's ``masked_fill``).

    ``value`` is rounded to x's format (ties to even; -1e9 becomes -inf in
    fp16), and the result keeps that format: the op only selects values. Its
    gradient is ``g`` where the mask is False and 0 where it is True.

    Parameters
    ----------
    x : Tensor
    mask : array_like of bool
        Broadcasts to ``x.shape``.
    value : float

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, masked_fill
    >>> x = Tensor([1.0, 2.0, 3.0], policy="fp16_mixed")
    >>> masked_fill(x, np.array([False, True, False]), -1e9).data.tolist()
    [1.0, -inf, 3.0]
    """
    x = _unary(x, "masked_fill")
    keep_out = _bool_mask(mask, x.shape, "masked_fill")
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(
            f"masked_fill: value must be a number, got {type(value).__name__}"
        )
    ctx = x._ctx
    with np.errstate(all="ignore"):
        fill = round_rne(np.full(1, value, dtype=np.float64), x.fmt)
    fill = fill.astype(ctx.dtype)[0]
    out = np.where(keep_out, fill, x.data)
    zero = ctx.dtype.type(0)

    def backward(g):
        return (np.where(keep_out, zero, g),)

    backward.exact = True  # selects values of g
    return _result(out, x.fmt, ctx, (x,), backward)


def _check_probability(p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float | np.floating):
        raise TypeError(f"dropout: p must be a number, got {type(p).__name__}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p!r}")
    return float(p)


def dropout_mask(
    shape: tuple[int, ...], p: float, seed: int | Sequence[int]
) -> np.ndarray:
    """The keep-mask of :func:`dropout`: True where a value is kept.

    ``numpy.random.default_rng(seed).random(shape) >= p``: each position keeps its
    value with probability 1 - p, and the same seed always gives the same mask
    (a seed is an int or a sequence of ints, such as ``[seed, step]``).

    Examples
    --------
    >>> from lowprec.autograd import dropout_mask
    >>> dropout_mask((2, 3), 0.5, [0, 1]).tolist()
    [[True, True, True], [True, False, False]]
    """
    return np.random.default_rng(seed).random(shape) >= p


def dropout(
    x: Tensor, p: float, *, seed: int | Sequence[int], training: bool = True
) -> Tensor:
    """Inverted dropout: zero each value with probability ``p``, scale the rest.

    Srivastava et al., "Dropout", JMLR 15, 2014 (the scaling at training time, as
    PyTorch does). Kept values become ``x * (1 / (1 - p))``, the scale and the
    product in the storage dtype, rounded once to the result format. The mask
    is :func:`dropout_mask` of ``(x.shape, p, seed)``. With ``training=False``
    or ``p = 0`` the op is the identity (x itself is returned). Backward: ``g``
    times the same scale where kept, 0 where dropped.

    Examples
    --------
    >>> from lowprec.autograd import Tensor, dropout
    >>> x = Tensor([1.0, 1.0, 1.0, 1.0], policy="fp32")
    >>> dropout(x, 0.5, seed=0).data.tolist()
    [2.0, 0.0, 0.0, 0.0]
    >>> dropout(x, 0.5, seed=0, training=False) is x
    True
    """
    x = _unary(x, "dropout")
    p = _check_probability(p)
    if not isinstance(training, bool):
        raise TypeError(f"dropout: training must be True or False, got {training!r}")
    if not training or p == 0.0:
        return x
    keep = dropout_mask(x.shape, p, seed)
    ctx = x._ctx
    fmt = ctx.result_fmt(x.fmt)
    scale = ctx.dtype.type(1.0) / ctx.dtype.type(1.0 - p)
    zero = ctx.dtype.type(0)
    with np.errstate(all="ignore"):
        out = round_rne(np.where(keep, x.data * scale, zero), fmt)

    def backward(g):
        return (np.where(keep, g * scale, zero),)

    return _result(out, fmt, ctx, (x,), backward)
