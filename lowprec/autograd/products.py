"""Matrix products under the policy's matmul preset, forward and backward.

(Not named ``matmul.py``: the package exports the function ``matmul``, which
would hide a submodule of that name.)
"""

from __future__ import annotations

import numpy as np

from lowprec.arith.matmul import matmul as emulated_matmul
from lowprec.autograd._context import _Context
from lowprec.autograd.tensor import Tensor, _result
from lowprec.formats import Format
from lowprec.rounding._rne import round_rne


def _product(
    ctx: _Context,
    a: np.ndarray,
    b: np.ndarray,
    in_fmt: Format,
    out_fmt: Format,
    order: str,
) -> np.ndarray:
    """``a @ b`` under the policy's matmul rules, rounded to ``out_fmt``.

    ``a`` and ``b`` hold values of ``in_fmt`` (ignored without a preset); they
    are 2-D, or stacks of matrices with equal leading shapes, multiplied one
    pair at a time.
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
    if a.ndim > 2:  # a stack: the 2-D product of each pair
        c = np.empty(a.shape[:-1] + b.shape[-1:], dtype=ctx.dtype)
        for i in np.ndindex(a.shape[:-2]):
            c[i] = _product(ctx, a[i], b[i], in_fmt, out_fmt, order)
        return c
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


def _transposed(x: np.ndarray) -> np.ndarray:
    # .T is several times cheaper than swapaxes on the 2-D arrays of most calls
    return x.T if x.ndim == 2 else np.swapaxes(x, -1, -2)


def _check(a: object, b: object) -> bool:
    """Validate matmul's operands; True when ``a`` is flattened to 2-D."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"matmul: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(
                f"matmul: {name} must be at least 2-D, got shape {t.shape}"
            )
    if a._ctx is not b._ctx:
        raise ValueError(
            f"matmul: operands have different policies ({a.policy.name!r} and "
            f"{b.policy.name!r})"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align "
            f"({a.shape[-1]} != {b.shape[-2]})"
        )
    if b.ndim == 2:
        return a.ndim > 2
    if a.shape[:-2] != b.shape[:-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape}: a stack of matrices needs "
            "the same leading dimensions in both operands (or a 2-D b); "
            "broadcasting is not supported"
        )
    return False


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product under the policy's matmul preset, 2-D or batched.

    See the package docstring: operands are cast to the preset's input format if
    needed, accumulated as the preset says, and rounded once to the activations.
    Backward: ``dA = dC @ B.T`` and ``dB = A.T @ dC`` with the same preset.

    Shapes: ``(m, k) @ (k, n)``; ``(..., m, k) @ (k, n)`` (a linear layer on a
    batch of sequences), computed as the 2-D product of ``a`` flattened to
    ``(-1, k)``, so ``dB`` accumulates over every row of the batch in one
    accumulator, as PyTorch's linear backward does; and
    ``(..., m, k) @ (..., k, n)`` with equal leading dimensions (attention's
    ``q @ k.T``), each pair of matrices under the 2-D rules.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, matmul
    >>> a = Tensor(np.ones((1, 4096)), policy="fp16_pure")
    >>> b = Tensor(np.ones((4096, 1)), policy="fp16_pure")
    >>> matmul(a, b).item()  # fp16 accumulator: the running sum stops at 2048
    2048.0
    >>> q = Tensor(np.ones((2, 4, 3, 8)), policy="fp32")  # (B, heads, T, head_dim)
    >>> matmul(q, q.transpose(0, 1, 3, 2)).shape
    (2, 4, 3, 3)
    """
    flat = _check(a, b)
    ctx = a._ctx
    fmt = ctx.act
    av, bv = a.data, b.data
    if flat:
        av = av.reshape(-1, av.shape[-1])
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
    if flat:
        out = out.reshape(a.shape[:-1] + out.shape[-1:])

    def backward(g):
        gfmt = ctx.grad_fmt(fmt)
        ga = gb = None
        if flat:
            g = g.reshape(-1, g.shape[-1])
        with np.errstate(all="ignore"):
            if a.requires_grad:
                ga = _backward_product(ctx, g, _transposed(bv), gfmt, bfmt)
                if flat:
                    ga = ga.reshape(a.shape)
            if b.requires_grad:
                gb = _backward_product(ctx, _transposed(av), g, afmt, gfmt)
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
