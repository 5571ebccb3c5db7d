"""Looking rows up by integer index: the embedding, and its scatter-add backward.

(Not named ``embedding.py``: the package exports the function ``embedding``,
which would hide a submodule of that name.)
"""

from __future__ import annotations

import numpy as np

from lowprec.autograd.tensor import Tensor, _result
from lowprec.formats import Format
from lowprec.rounding._rne import round_rne


def _indices(idx: object, rows: int) -> np.ndarray:
    arr = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"embedding: idx must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= rows):
        raise ValueError(
            f"embedding: idx must be in [0, {rows}) for a table of {rows} rows, got "
            f"values in [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.intp, copy=False)


def scatter_add(
    rows: int, idx: np.ndarray, g: np.ndarray, fmt: Format, storage: Format
) -> np.ndarray:
    """``out[idx[k]] += g[k]`` for k = 0, 1, ... in order, each sum rounded to
    ``fmt`` (ties to even); ``out`` starts at +0.

    ``idx`` is flat, ``g`` has one row per index. When ``fmt`` is the storage
    format, :func:`numpy.add.at` does exactly this (it adds unbuffered, in index
    order). Otherwise the additions go in rounds: round r adds, for every row
    that appears more than r times, its (r+1)-th occurrence; rows within a
    round are distinct, and each row's occurrences are met in index order, so
    every row sees the same sequence of rounded sums as the loop would.
    """
    out = np.zeros((rows, g.shape[-1]), dtype=g.dtype)
    if fmt is storage:
        np.add.at(out, idx, g)
        return out
    order = np.argsort(idx, kind="stable")  # occurrences of each row, in order
    ranked = idx[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    run = np.diff(np.r_[starts, ranked.size])
    rank = np.arange(ranked.size) - np.repeat(starts, run)
    for r in range(int(run.max(initial=0))):
        k = order[rank == r]
        out[idx[k]] = round_rne(out[idx[k]], fmt, plus=g[k])
    return out


def embedding(weight: Tensor, idx: object) -> Tensor:
    """The rows ``weight[idx]``: shape ``idx.shape + (dim,)``, exact.

    The result keeps the weight's format (a lookup selects values). Backward:
    the gradient of the weight is a scatter-add of the output's gradient rows
    into a zero table, in the weight's gradient format, sequential in the
    flattened (C) order of ``idx``, each addition rounded once
    (:func:`scatter_add`). A row looked up twice gets ``round(g0 + g1)``; rows
    not looked up get +0.

    Parameters
    ----------
    weight : Tensor, shape (num, dim)
    idx : array_like of int, any shape
        Values in ``[0, num)``; anything else raises.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd import Tensor, embedding
    >>> w = Tensor(np.arange(6.0).reshape(3, 2), policy="fp32", requires_grad=True)
    >>> y = embedding(w, np.array([2, 0, 2]))
    >>> y.data.tolist()
    [[4.0, 5.0], [0.0, 1.0], [4.0, 5.0]]
    >>> y.sum().backward()
    >>> w.grad.tolist()
    [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
    """
    if not isinstance(weight, Tensor):
        raise TypeError(
            f"embedding: weight must be a Tensor, got {type(weight).__name__}"
        )
    if weight.ndim != 2:
        raise ValueError(
            f"embedding: weight must be 2-D (num, dim), got shape {weight.shape}"
        )
    rows, dim = weight.shape
    index = _indices(idx, rows)
    ctx = weight._ctx
    out = weight.data[index]
    gfmt = ctx.grad_fmt(weight.fmt)

    def backward(g):
        flat = g.reshape(-1, dim)
        return (scatter_add(rows, index.reshape(-1), flat, gfmt, ctx.storage),)

    backward.exact = True  # sums rounded to the weight's gradient format already
    return _result(out, weight.fmt, ctx, (weight,), backward)
