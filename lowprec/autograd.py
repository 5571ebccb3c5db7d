"""A small reverse-mode autograd on NumPy arrays that computes in emulated precision.

The shape is micrograd's: every op returns a :class:`Tensor` that remembers its
parents and a backward closure; :meth:`Tensor.backward` walks the graph in
topological order and the closures' results accumulate into the parents' ``.grad``.
Only a few primitives have hand-written derivatives (add, sub, mul, div, matmul,
sum, mean, relu, gelu, tanh, log_softmax, cross_entropy, layer_norm, reshape,
transpose); the rest (``-x``, ``x - 1``, ``Linear``) are compositions.

Precision rules
---------------
All arrays are stored in the policy's storage dtype (float32, or float64 when a
format is wider than fp32, :attr:`lowprec.amp.policy.Policy.dtype`) and hold values of
their tensor's format ``.fmt``.

*Forward.* Each op computes its exact-as-NumPy-gives result in the storage dtype
and rounds it **once** to its result format, ties to even:

- the result format is ``policy.activations``, or the widest operand format when
  an operand is in a strictly wider format (NumPy and PyTorch type promotion: an
  fp32 loss times a loss scale stays fp32 under fp16 activations). Python scalars
  and arrays given as operands are constants in the storage dtype and do not
  promote;
- an op named in ``policy.fp32_ops`` keeps its result in fp32 (or in the activation
  format if that is wider) instead: ``"softmax"`` (log_softmax),
  ``"cross_entropy"``, ``"layer_norm"``, ``"reduction"`` (sum, mean), as PyTorch
  autocast does;
- relu, reshape and transpose are exact and keep their input's format.

Why float32 compute plus one rounding is right: for one +, -, *, / or square root
of operands of a format with p significand bits, rounding the exact result first
to a format with p' >= 2p + 2 bits and then to p bits gives the correctly rounded
result (Figueroa, "When is double rounding innocuous?", SIGNUM Newsletter 30(3),
1995). float32 has p' = 24 >= 2*11 + 2, so for fp16 and bf16 operands a float32
operation followed by one rounding is exactly what an fp16 or bf16 unit returns.
Longer expressions (gelu, tanh, log_softmax, layer norm, the cross-entropy) are
evaluated in float32 and rounded once at the end, as mixed-precision hardware and
PyTorch's half-precision kernels do (they accumulate such expressions in float).

*Matmul.* With ``policy.matmul`` None, plain NumPy in the storage dtype, result
rounded to the activations. Otherwise the policy's :data:`lowprec.arith.matmul.PRESETS`
entry fixes the input format, the accumulator and the order of additions: operands
not already in the input format are first rounded to it (autocast's cast; the
cast's derivative is the identity), and the result is rounded to the activations.
``order="unspecified"`` is computed here as float32 BLAS on the operands (products
of <= 12-bit inputs are exact in float32) plus one rounding of the fp32 accumulator:
the same computation as :func:`lowprec.matmul`'s fast path, without its float64
round trips and input checks, which cost more than the product at these sizes
(tests check the two agree bit for bit). Other orders call :func:`lowprec.matmul`.

*Backward.* Each closure computes its parents' gradient contributions in the
storage dtype from the rounded forward values and the output's rounded gradient;
each contribution is rounded once, ties to even, to the parent's gradient format:
``policy.gradients``, or the tensor's own format when that is strictly wider (the
gradient of an fp32 loss is fp32, as in PyTorch). Contributions accumulate as
``grad = round(grad + contribution)`` in that format. The backward matmuls
``dA = dC @ B.T`` and ``dB = A.T @ dC`` use the same preset (accumulator and
order); when dC's format is not the preset's input format the inputs are taken in
a format that holds both (fp32, on the sequential order if that is wider than 12
bits), and the accumulator's value is rounded to the gradient format.

Leaves (tensors made by the user, such as parameters) also keep ``.raw_grad``: the
sum of their contributions before rounding to the gradient format, in the storage
dtype (for a matmul, the accumulator's value). Telemetry compares it with
``.grad`` to count flushed and overflowed gradients.

Rounding to fp16 and bf16 uses a small serial kernel on the float32 bits
(:func:`lowprec.rounding._rne.round_rne`; the tests check it against :func:`lowprec.round`
around every midpoint), which costs one to two microseconds on the small arrays
of a training step, most of it the call itself. Rounding to the storage format
itself is skipped: it is the identity. What an op decides from formats alone
(promotion, which format holds which, a backward matmul's input format) is derived
once per policy and pair of formats, since the engine asks thousands of times per
epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.arith.matmul import PRESETS
from lowprec.arith.matmul import matmul as emulated_matmul
from lowprec.formats import Format, as_format, fp32, fp64
from lowprec.rounding._rne import round_rne
from lowprec.rounding.rounder import as_float_array, fits

__all__ = [
    "Tensor",
    "add",
    "cross_entropy",
    "div",
    "gelu",
    "layer_norm",
    "log_softmax",
    "matmul",
    "mean",
    "mul",
    "relu",
    "reshape",
    "sub",
    "sum",
    "tanh",
    "transpose",
]

# -- what each op needs from the policy ----------------------------------------


def _contains(wide: Format, narrow: Format) -> bool:
    """Whether every value of ``narrow`` is a value of ``wide``."""
    return wide is narrow or wide == narrow or fits(narrow, wide)


class _Context:
    """A policy and what the ops derive from it, computed once per policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.dtype = policy.dtype
        self.storage = fp32 if self.dtype == np.float32 else fp64
        self.act = policy.activations
        self.grads = policy.gradients
        self.ops = policy.fp32_ops
        self.wide = self.act if _contains(self.act, fp32) else fp32
        self.preset = None if policy.matmul is None else PRESETS[policy.matmul]
        if self.preset is not None:
            self.mm_in = as_format(self.preset.inputs)
            self.mm_acc = as_format(self.preset.accumulate)
            self.mm_products = self.preset.products
        self.order = policy.matmul_order
        # float32 storage: the operands of the BLAS fast path need no conversion
        self.single = self.dtype == np.float32
        # keyed by the formats' ids (the values keep the formats alive and are
        # checked by identity): hashing or comparing Formats on every op costs too
        # much (a dataclass == compares every field)
        self._promote: dict[tuple[int, int], tuple[Format, Format, Format]] = {}
        self._contains: dict[tuple[int, int], tuple[Format, Format, bool]] = {}
        self._backward_mm: dict[tuple[int, int], tuple] = {}

    def contains(self, wide: Format, narrow: Format) -> bool:
        """:func:`_contains`, cached."""
        if wide is narrow:
            return True
        found = self._contains.get((id(wide), id(narrow)))
        if found is None or found[0] is not wide or found[1] is not narrow:
            found = (wide, narrow, _contains(wide, narrow))
            self._contains[id(wide), id(narrow)] = found
        return found[2]

    def promote(self, out: Format, fmt: Format | None) -> Format:
        """``fmt`` if it is strictly wider than ``out``, else ``out``."""
        if fmt is None or fmt is out:
            return out
        found = self._promote.get((id(out), id(fmt)))
        if found is None or found[0] is not out or found[1] is not fmt:
            wider = fmt if (fmt != out and _contains(fmt, out)) else out
            found = (out, fmt, wider)
            self._promote[id(out), id(fmt)] = found
        return found[2]

    def result_fmt(self, *fmts: Format | None, op: str | None = None) -> Format:
        """The format of an op's result (see the module docstring)."""
        out = self.wide if op is not None and op in self.ops else self.act
        for f in fmts:
            out = self.promote(out, f)
        return out

    def grad_fmt(self, fmt: Format) -> Format:
        """The gradient format of a tensor of format ``fmt``."""
        return self.promote(self.grads, fmt)

    def covering(self, *fmts: Format) -> Format:
        """The preset's input format if it holds all ``fmts``, else fp32 or fp64."""
        for wide in (self.mm_in, fp32, fp64):
            if all(self.contains(wide, f) for f in fmts):
                return wide
        raise ValueError(f"no matmul input format holds {[f.name for f in fmts]}")

    def backward_matmul(self, xfmt: Format, yfmt: Format) -> tuple:
        """How a backward matmul of operands in ``xfmt`` and ``yfmt`` runs:
        ``(input format, round x?, round y?, order)``, derived once per pair."""
        found = self._backward_mm.get((id(xfmt), id(yfmt)))
        if found is None or found[0] is not xfmt or found[1] is not yfmt:
            in_fmt = self.covering(xfmt, yfmt)
            order = self.order
            if order == "unspecified" and in_fmt.precision > 12:
                order = "sequential"  # products not exact in float32: no BLAS path
            plan = (
                in_fmt,
                not self.contains(in_fmt, xfmt),
                not self.contains(in_fmt, yfmt),
                order,
            )
            found = (xfmt, yfmt, plan)
            self._backward_mm[id(xfmt), id(yfmt)] = found
        return found[2]


@functools.cache  # unbounded: equal policies must share one context (ops check it)
def _context(policy: Policy) -> _Context:
    return _Context(policy)


# -- the tensor ----------------------------------------------------------------


class Tensor:
    """An array of values of one format, with an optional gradient.

    Parameters
    ----------
    data : array_like
        float16/32/64 or integer values; rounded (ties to even) to ``fmt`` and
        stored in ``policy.dtype``.
    fmt : Format or str, optional
        The format of the values; default ``policy.activations``.
    policy : Policy or str
        The precision policy (a :data:`lowprec.amp.policy.POLICIES` name or a Policy).
    requires_grad : bool
        Whether backward computes a gradient for this tensor.

    Attributes
    ----------
    data : ndarray
        The values, in ``policy.dtype``.
    fmt : Format
        The format the values belong to.
    grad : ndarray or None
        The accumulated gradient, values of the gradient format.
    raw_grad : ndarray or None
        Leaves only: the accumulated gradient before rounding to the gradient
        format (storage dtype).

    Examples
    --------
    >>> from lowprec.autograd import Tensor
    >>> x = Tensor([1.0, 2.0, 3.0], policy="fp16_mixed", requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    >>> y.fmt.name  # a sum is one of fp16_mixed's fp32 ops
    'fp32'
    """

    __slots__ = (
        "data",
        "fmt",
        "grad",
        "raw_grad",
        "requires_grad",
        "_ctx",
        "_parents",
        "_backward",
    )
    # make NumPy defer to Tensor's reflected operators (array * tensor)
    __array_ufunc__ = None

    def __init__(
        self,
        data: object,
        fmt: Format | str | None = None,
        *,
        policy: Policy | str,
        requires_grad: bool = False,
    ) -> None:
        ctx = _context(as_policy(policy))
        fmt = ctx.act if fmt is None else as_format(fmt)
        if not ctx.contains(ctx.storage, fmt):
            raise ValueError(
                f"fmt: {fmt.name} does not fit the policy's storage dtype "
                f"{ctx.dtype} (policy {ctx.policy.name!r})"
            )
        if not isinstance(requires_grad, bool):
            raise TypeError(
                f"requires_grad must be True or False, got {requires_grad!r}"
            )
        arr = as_float_array(data, "data")
        if arr.dtype == np.float16 or (
            arr.dtype == np.float32 and ctx.dtype == np.float64
        ):
            arr = arr.astype(ctx.dtype)  # exact: the wider dtype holds every value
        if arr.dtype == ctx.dtype:
            values = round_rne(arr, fmt)
            if values is arr:
                values = values.copy()  # a tensor never aliases the caller's array
        else:  # float64 data, float32 storage: round once, from float64
            values = round_rne(arr, fmt).astype(ctx.dtype)
        self.data = values
        self.fmt = fmt
        self.grad = None
        self.raw_grad = None
        self.requires_grad = requires_grad
        self._ctx = ctx
        self._parents: tuple[Tensor, ...] = ()
        self._backward = None

    # -- introspection
    @property
    def policy(self) -> Policy:
        """The tensor's precision policy."""
        return self._ctx.policy

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def T(self) -> Tensor:
        """The transpose (reversed axes)."""
        return transpose(self)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}, fmt={self.fmt.name}{grad})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only a one-element tensor has one value, shape is {self.shape}"
            )
        return float(self.data.reshape(-1)[0])

    def numpy(self) -> np.ndarray:
        """A copy of the values."""
        return self.data.copy()

    def detach(self) -> Tensor:
        """A leaf tensor with the same values (shared), outside any graph."""
        return _leaf(self.data, self.fmt, self._ctx)

    # -- methods that are ops
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        if len(shape) == 1 and not isinstance(shape[0], int | np.integer):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def transpose(self, *axes: int) -> Tensor:
        return transpose(self, axes or None)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        return sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        return mean(self, axis=axis, keepdims=keepdims)

    def relu(self) -> Tensor:
        return relu(self)

    def gelu(self) -> Tensor:
        return gelu(self)

    def tanh(self) -> Tensor:
        return tanh(self)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return log_softmax(self, axis=axis)

    # -- operators
    def __add__(self, other: object) -> Tensor:
        return add(self, other)

    def __radd__(self, other: object) -> Tensor:
        return add(other, self)

    def __sub__(self, other: object) -> Tensor:
        return sub(self, other)

    def __rsub__(self, other: object) -> Tensor:
        return sub(other, self)

    def __mul__(self, other: object) -> Tensor:
        return mul(self, other)

    def __rmul__(self, other: object) -> Tensor:
        return mul(other, self)

    def __truediv__(self, other: object) -> Tensor:
        return div(self, other)

    def __rtruediv__(self, other: object) -> Tensor:
        return div(other, self)

    def __neg__(self) -> Tensor:
        return mul(self, -1.0)  # exact

    def __matmul__(self, other: Tensor) -> Tensor:
        return matmul(self, other)

    def __rmatmul__(self, other: object) -> Tensor:
        return matmul(other, self)

    # -- backward
    def backward(self, grad: object = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires it.

        Parameters
        ----------
        grad : array_like, optional
            The gradient of some scalar with respect to this tensor (its shape);
            default 1 for a one-element tensor. Rounded to the gradient format.

        Gradients of intermediate tensors are recomputed on each call; those of
        leaves accumulate across calls until zeroed (gradient accumulation).
        """
        if not self.requires_grad:
            raise ValueError(
                "backward: this tensor does not depend on any tensor with "
                "requires_grad=True"
            )
        ctx = self._ctx
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: grad must be given for a tensor of shape {self.shape}"
                    " (only a one-element tensor defaults to 1)"
                )
            seed = np.ones(self.shape, dtype=ctx.dtype)
        else:
            seed = np.asarray(grad, dtype=ctx.dtype)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {seed.shape}, the tensor {self.shape}"
                )
        order = _topological_order(self)
        for node in order:
            if node._backward is not None:
                node.grad = None  # intermediate gradients: this pass only
        with np.errstate(all="ignore"):  # inf/NaN are results here, not errors
            _accumulate(self, seed)
            for node in reversed(order):
                if node._backward is None or node.grad is None:
                    continue
                contributions = node._backward(node.grad)
                # values taken from node.grad as they are (relu, reshape, transpose,
                # an add's pass-through) are already of node's gradient format
                exact = getattr(node._backward, "exact", False)
                node_gfmt = ctx.grad_fmt(node.fmt)
                for parent, raw in zip(node._parents, contributions, strict=True):
                    if raw is not None and parent.requires_grad:
                        known = exact or raw is node.grad
                        _accumulate(parent, raw, node_gfmt if known else None)


def _topological_order(root: Tensor) -> list[Tensor]:
    """The graph under ``root``, every tensor after its parents (iterative DFS)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if id(parent) not in seen:
                stack.append((parent, False))
    return order


def _accumulate(t: Tensor, raw: np.ndarray, raw_fmt: Format | None = None) -> None:
    """Add one gradient contribution to ``t``: round it, then round the sum.

    ``raw_fmt``: a format the contribution is known to be in (rounding to the
    same format is then skipped).
    """
    ctx = t._ctx
    gfmt = ctx.grad_fmt(t.fmt)
    raw = np.asarray(raw, dtype=ctx.dtype)
    if raw.shape != t.shape:  # a closure's bug, not the user's
        raise AssertionError(f"gradient of shape {raw.shape} for a {t.shape} tensor")
    rounded = raw if raw_fmt is gfmt else round_rne(raw, gfmt)
    if t._backward is None:  # a leaf: keep the raw sum for telemetry
        if t.raw_grad is None:
            t.raw_grad = np.array(raw, copy=True)
        else:
            t.raw_grad = t.raw_grad + raw
        if t.grad is None:
            # the optimizer may edit a leaf's grad in place: never share raw's memory
            # (rounding made a private array unless it was the identity)
            t.grad = rounded.copy() if rounded is raw else rounded
        else:
            t.grad = round_rne(t.grad + rounded, gfmt)
    elif t.grad is None:
        t.grad = rounded
    else:
        t.grad = round_rne(t.grad + rounded, gfmt)


def _leaf(data: np.ndarray, fmt: Format, ctx: _Context) -> Tensor:
    t = Tensor.__new__(Tensor)
    t.data, t.fmt, t._ctx = data, fmt, ctx
    t.grad = t.raw_grad = None
    t.requires_grad = False
    t._parents, t._backward = (), None
    return t


def _result(
    data: np.ndarray,
    fmt: Format,
    ctx: _Context,
    parents: tuple[Tensor, ...],
    backward: Callable[[np.ndarray], tuple[np.ndarray | None, ...]],
) -> Tensor:
    """A new op result; it joins the graph if a parent requires a gradient."""
    t = _leaf(np.asarray(data), fmt, ctx)
    if any(p.requires_grad for p in parents):
        t.requires_grad = True
        t._parents = parents
        t._backward = backward
    return t


# -- operands ------------------------------------------------------------------


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


# -- elementwise ---------------------------------------------------------------


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


def _unary(x: object, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: x must be a Tensor, got {type(x).__name__}")
    return x


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


def gelu(x: Tensor) -> Tensor:
    """GELU, tanh form: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``.

    Hendrycks and Gimpel, "Gaussian Error Linear Units", 2016 (the tanh
    approximation, PyTorch's ``approximate="tanh"``); evaluated in the storage
    dtype and rounded once.
    """
    x = _unary(x, "gelu")
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


# -- shapes --------------------------------------------------------------------


def reshape(x: Tensor, shape: int | tuple[int, ...]) -> Tensor:
    """The same values in a new shape (exact)."""
    x = _unary(x, "reshape")
    try:
        out = x.data.reshape(shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} into {shape}"
        ) from None

    def backward(g):
        return (g.reshape(x.shape),)

    backward.exact = True  # selects values of g
    return _result(out, x.fmt, x._ctx, (x,), backward)


def transpose(x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute the axes (reverse them by default); exact."""
    x = _unary(x, "transpose")
    try:
        out = np.transpose(x.data, axes)
    except ValueError:
        raise ValueError(
            f"transpose: axes {axes} do not fit a tensor of shape {x.shape}"
        ) from None
    inverse = None if axes is None else tuple(np.argsort(axes))

    def backward(g):
        return (np.transpose(g, inverse),)

    backward.exact = True  # selects values of g
    return _result(out, x.fmt, x._ctx, (x,), backward)


# -- reductions ----------------------------------------------------------------


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


# -- softmax and the loss ------------------------------------------------------


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


def _labels(labels: object, n: int, classes: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: labels must be integers, got dtype {arr.dtype}"
        )
    if arr.shape != (n,):
        raise ValueError(
            f"cross_entropy: labels must have shape ({n},) to match logits with "
            f"{n} rows, got {arr.shape}"
        )
    if n and (arr.min() < 0 or arr.max() >= classes):
        raise ValueError(
            f"cross_entropy: labels must be in [0, {classes}), got values in "
            f"[{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.intp, copy=False)


def cross_entropy(logits: Tensor, labels: object) -> Tensor:
    """Mean negative log-likelihood of integer ``labels`` under softmax(logits).

    Log-softmax and the mean are one op, evaluated in the storage dtype and
    rounded once (kept in fp32 when ``"cross_entropy"`` is one of the policy's
    fp32 ops), as PyTorch's ``F.cross_entropy``. Backward:
    ``(softmax(logits) - onehot(labels)) * (g / n)``; with ``g`` a power of two
    (a loss scale) every step scales exactly.

    Parameters
    ----------
    logits : Tensor, shape (n, classes)
    labels : array_like of int, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, cross_entropy
    >>> logits = Tensor(np.zeros((2, 4)), policy="fp32", requires_grad=True)
    >>> loss = cross_entropy(logits, np.array([0, 3]))
    >>> round(loss.item(), 6)  # log 4
    1.386294
    """
    logits = _unary(logits, "cross_entropy")
    if logits.ndim != 2:
        raise ValueError(
            f"cross_entropy: logits must be 2-D (n, classes), got shape {logits.shape}"
        )
    n, classes = logits.shape
    if n == 0:
        raise ValueError("cross_entropy: logits have no rows")
    rows = np.arange(n)
    cols = _labels(labels, n, classes)
    ctx = logits._ctx
    count = ctx.dtype.type(n)
    fmt = ctx.result_fmt(logits.fmt, op="cross_entropy")
    with np.errstate(all="ignore"):
        logp = _log_softmax_values(logits.data, 1)
        out = round_rne(np.asarray(-logp[rows, cols].sum() / count), fmt)

    def backward(g):
        p = np.exp(logp)
        p[rows, cols] -= ctx.dtype.type(1)
        return (p * (g / count),)

    return _result(out, fmt, ctx, (logits,), backward)


# -- layer norm ----------------------------------------------------------------


def layer_norm(
    x: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize the last axis to mean 0 and variance 1, then ``* weight + bias``.

    Ba, Kiros and Hinton, "Layer Normalization", 2016. The statistics (mean and
    biased variance) and the whole expression are evaluated in the storage dtype
    and rounded once (kept in fp32 when ``"layer_norm"`` is one of the policy's
    fp32 ops).

    Parameters
    ----------
    x : Tensor, shape (..., n)
    weight, bias : Tensor, shape (n,), optional
    eps : float
        Added to the variance.
    """
    x = _unary(x, "layer_norm")
    n = x.shape[-1] if x.ndim else 0
    if n == 0:
        raise ValueError(f"layer_norm: x must have a last axis, got shape {x.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"layer_norm: {name} must be a Tensor or None")
        if t.shape != (n,):
            raise ValueError(
                f"layer_norm: {name} must have shape ({n},) for x of shape "
                f"{x.shape}, got {t.shape}"
            )
        if t._ctx is not x._ctx:
            raise ValueError(f"layer_norm: {name} has a different policy from x")
    ctx = x._ctx
    dt = ctx.dtype.type
    count, one = dt(n), dt(1)
    fmt = ctx.result_fmt(
        x.fmt,
        None if weight is None else weight.fmt,
        None if bias is None else bias.fmt,
        op="layer_norm",
    )
    v = x.data
    with np.errstate(all="ignore"):
        mu = v.sum(axis=-1, keepdims=True) / count
        xc = v - mu
        var = (xc * xc).sum(axis=-1, keepdims=True) / count
        rstd = one / np.sqrt(var + dt(eps))
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


# -- matmul --------------------------------------------------------------------


def _product(
    ctx: _Context,
    a: np.ndarray,
    b: np.ndarray,
    in_fmt: Format,
    out_fmt: Format,
    order: str,
) -> np.ndarray:
    """``a @ b`` under the policy's matmul rules, rounded to ``out_fmt``.

    ``a`` and ``b`` hold values of ``in_fmt`` (ignored without a preset).
    """
    if ctx.preset is None:
        return round_rne(a @ b, out_fmt)
    if order == "unspecified":
        # lowprec.matmul's fast path: products of <= 12-bit values are exact in
        # float32, BLAS accumulates in float32; one rounding of the accumulator
        if ctx.single:
            return round_rne(a @ b, out_fmt)  # float32 operands already
        c = np.matmul(a.astype(np.float32), b.astype(np.float32))
        return round_rne(c.astype(ctx.dtype), out_fmt)
    c = emulated_matmul(
        a,
        b,
        inputs=in_fmt,
        products=ctx.mm_products,
        accumulate=ctx.mm_acc,
        output=out_fmt,
        order=order,
    )
    return c.astype(ctx.dtype)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product of two 2-D tensors under the policy's matmul preset.

    See the module docstring: operands are cast to the preset's input format if
    needed, accumulated as the preset says, and rounded once to the activations.
    Backward: ``dA = dC @ B.T`` and ``dB = A.T @ dC`` with the same preset.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, matmul
    >>> a = Tensor(np.ones((1, 4096)), policy="fp16_pure")
    >>> b = Tensor(np.ones((4096, 1)), policy="fp16_pure")
    >>> matmul(a, b).item()  # fp16 accumulator: the running sum stops at 2048
    2048.0
    """
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"matmul: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim != 2:
            raise ValueError(f"matmul: {name} must be 2-D, got shape {t.shape}")
    if a._ctx is not b._ctx:
        raise ValueError(
            f"matmul: operands have different policies ({a.policy.name!r} and "
            f"{b.policy.name!r})"
        )
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align "
            f"({a.shape[1]} != {b.shape[0]})"
        )
    ctx = a._ctx
    fmt = ctx.act
    av, bv = a.data, b.data
    afmt, bfmt = a.fmt, b.fmt
    if ctx.preset is None:
        in_fmt = ctx.storage
    else:
        in_fmt = ctx.mm_in
        # autocast's cast to the GEMM's input format; its derivative is 1
        if not ctx.contains(in_fmt, a.fmt):
            av = round_rne(av, in_fmt)
            afmt = in_fmt
        if not ctx.contains(in_fmt, b.fmt):
            bv = round_rne(bv, in_fmt)
            bfmt = in_fmt
    with np.errstate(all="ignore"):
        out = _product(ctx, av, bv, in_fmt, fmt, ctx.order)

    def backward(g):
        gfmt = ctx.grad_fmt(fmt)
        ga = gb = None
        with np.errstate(all="ignore"):
            if a.requires_grad:
                ga = _backward_product(ctx, g, bv.T, gfmt, bfmt)
            if b.requires_grad:
                gb = _backward_product(ctx, av.T, g, afmt, gfmt)
        return ga, gb

    return _result(out, fmt, ctx, (a, b), backward)


def _backward_product(
    ctx: _Context, x: np.ndarray, y: np.ndarray, xfmt: Format, yfmt: Format
) -> np.ndarray:
    """A backward matmul: the accumulator's value (rounding to the gradient format
    is done by the caller, so that leaves can keep it as ``raw_grad``)."""
    if ctx.preset is None:
        return x @ y
    in_fmt, round_x, round_y, order = ctx.backward_matmul(xfmt, yfmt)
    if round_x:
        x = round_rne(x, in_fmt)
    if round_y:
        y = round_rne(y, in_fmt)
    return _product(ctx, x, y, in_fmt, ctx.mm_acc, order)
