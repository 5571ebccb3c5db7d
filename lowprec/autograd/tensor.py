"""The :class:`Tensor`, the graph it builds and the backward pass that walks it.

A tensor remembers its parents and a backward closure (micrograd's shape, on
arrays); :meth:`Tensor.backward` walks the graph in topological order and
:func:`_accumulate` rounds each contribution into the parents' ``.grad``. The ops
live in the family modules beside this one; :func:`_leaf` and :func:`_result` are
how they make their results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Tensor's methods call the ops and the ops make Tensors. The op modules import
# Tensor by name; this module takes the package itself (in sys.modules, maybe
# half-initialized, while this module runs) and looks each op up on it when a
# method is called, so neither side needs the other complete at import time.
import lowprec.autograd as _ops
from lowprec.amp.policy import Policy, as_policy
from lowprec.autograd._context import _Context, _context
from lowprec.formats import Format, as_format
from lowprec.rounding._rne import round_rne
from lowprec.rounding.rounder import as_float_array


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
        return _ops.transpose(self)

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
        return _ops.reshape(self, shape)

    def transpose(self, *axes: int) -> Tensor:
        return _ops.transpose(self, axes or None)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        return _ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def gelu(self, approximate: str = "none") -> Tensor:
        return _ops.gelu(self, approximate)

    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def softmax(self, axis: int = -1, *, causal: bool = False) -> Tensor:
        return _ops.softmax(self, axis, causal=causal)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return _ops.log_softmax(self, axis=axis)

    # -- operators
    def __add__(self, other: object) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: object) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: object) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: object) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: object) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: object) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: object) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: object) -> Tensor:
        return _ops.div(other, self)

    def __neg__(self) -> Tensor:
        return _ops.mul(self, -1.0)  # exact

    def __matmul__(self, other: Tensor) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: object) -> Tensor:
        return _ops.matmul(other, self)

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
