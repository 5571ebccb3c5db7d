"""Shape ops: exact, so they keep their input's format."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lowprec.autograd._operands import _unary
from lowprec.autograd.tensor import Tensor, _result


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


def _axis(axis: object, ndim: int, op: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for {ndim} dimensions")
    return int(axis) % ndim


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (exact).

    The result's format is the first of the operands' formats (or fp32, fp64)
    that holds every operand's values, so no value changes. Backward: the slices
    of ``g`` that fall on each operand.

    Examples
    --------
    >>> from lowprec.autograd import Tensor, concat
    >>> a = Tensor([[1.0, 2.0]], policy="fp32")
    >>> concat([a, a], axis=0).shape
    (2, 2)
    """
    if isinstance(tensors, Tensor) or not isinstance(tensors, Sequence):
        raise TypeError("concat: tensors must be a list or tuple of Tensors")
    if not tensors:
        raise ValueError("concat: tensors must not be empty")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"concat: tensors[{i}] must be a Tensor, got {type(t).__name__}"
            )
        if t._ctx is not tensors[0]._ctx:
            raise ValueError(f"concat: tensors[{i}] has a different policy")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be joined")
    ax = _axis(axis, first.ndim, "concat")
    for i, t in enumerate(tensors):
        rest = t.shape[:ax] + t.shape[ax + 1 :]
        if t.ndim != first.ndim or rest != first.shape[:ax] + first.shape[ax + 1 :]:
            raise ValueError(
                f"concat: tensors[{i}] has shape {t.shape}, which does not match "
                f"{first.shape} outside axis {ax}"
            )
    ctx = first._ctx
    fmts = [t.fmt for t in tensors]
    fmt = next(f for f in (*fmts, ctx.storage) if all(ctx.contains(f, g) for g in fmts))
    out = np.concatenate([t.data for t in tensors], axis=ax)
    edges = np.cumsum([t.shape[ax] for t in tensors])[:-1]

    def backward(g):
        return tuple(np.split(g, edges, axis=ax))

    backward.exact = True  # selects values of g
    return _result(out, fmt, ctx, tuple(tensors), backward)


def split(x: Tensor, sections: int | Sequence[int], axis: int = 0) -> tuple:
    """Split along an axis into equal parts or at given indices (exact).

    As :func:`numpy.split`: an int ``n`` gives ``n`` equal parts (the axis must
    divide), a sequence gives the indices where new parts begin. Each part keeps
    x's format; the gradient of x is the parts' gradients side by side (zeros
    for parts that receive none).

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, split
    >>> qkv = Tensor(np.zeros((2, 5, 12)), policy="fp32")
    >>> [t.shape for t in split(qkv, 3, axis=-1)]
    [(2, 5, 4), (2, 5, 4), (2, 5, 4)]
    """
    x = _unary(x, "split")
    if x.ndim == 0:
        raise ValueError("split: a zero-dimensional tensor has no axis to split")
    ax = _axis(axis, x.ndim, "split")
    n = x.shape[ax]
    if isinstance(sections, bool):
        raise TypeError("split: sections must be an int or a sequence of ints")
    if isinstance(sections, int | np.integer):
        if sections < 1 or n % sections:
            raise ValueError(
                f"split: axis {ax} of length {n} does not divide into {sections} "
                "equal parts"
            )
        edges = [n // int(sections) * i for i in range(1, int(sections))]
    else:
        edges = list(sections)
        if not all(isinstance(e, int | np.integer) for e in edges) or any(
            b < a for a, b in zip([0, *edges], [*edges, n], strict=True)
        ):
            raise ValueError(
                f"split: sections must be increasing ints in [0, {n}], got {sections!r}"
            )
    bounds = list(zip([0, *edges], [*edges, n], strict=True))
    parts = []
    for start, stop in bounds:
        index = (slice(None),) * ax + (slice(start, stop),)

        def backward(g, index=index):
            full = np.zeros(x.shape, dtype=g.dtype)
            full[index] = g
            return (full,)

        backward.exact = True  # values of g and zeros
        parts.append(_result(x.data[index], x.fmt, x._ctx, (x,), backward))
    return tuple(parts)
