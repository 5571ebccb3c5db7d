"""LU factorization with partial pivoting, and triangular solves, on emulated arrays.

Written as the textbook right-looking algorithm (Golub and Van Loan, *Matrix
Computations*, 4th ed., Alg. 3.4.1) in ordinary NumPy: run on an array made by
:func:`lowprec.emulate`, every division, product and update is rounded to its format
(no fused multiply-add: ``a - l*u`` is two roundings, as on hardware without FMA);
run on a plain float64 array, it is double-precision LU.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lowprec.emulation.array import EmulatedArray

__all__ = ["LUResult", "growth_factor", "lu", "lu_backward_error", "lu_solve"]


class LUResult(NamedTuple):
    """``P A = L U``: the row order ``perm`` (``A[perm] = L @ U``) and the factors.

    ``L`` is unit lower triangular, ``U`` upper triangular, both of the input's kind
    (emulated arrays stay emulated).
    """

    perm: np.ndarray
    L: object
    U: object


def _check_square(a: object) -> int:
    shape = np.shape(a)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"a must be a square matrix, got shape {shape}")
    return shape[0]


def lu(a: object) -> LUResult:
    """LU factorization with partial pivoting, in the arithmetic of ``a``.

    Parameters
    ----------
    a : EmulatedArray or ndarray, shape (n, n)

    Returns
    -------
    LUResult

    Raises
    ------
    ValueError
        For a non-square ``a``, or a zero pivot (singular in this arithmetic).

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> from lowprec.algorithms import lu
    >>> A = lowprec.emulate(np.array([[1.0, 2.0], [3.0, 4.0]]), "fp16")
    >>> perm, L, U = lu(A)
    >>> perm.tolist(), np.asarray(U).tolist()  # 2 - fp16(fp16(1/3) * 4)
    ([1, 0], [[3.0, 4.0], [0.0, 0.6669921875]])
    """
    n = _check_square(a)
    work = a.copy() if isinstance(a, EmulatedArray) else np.array(a, np.float64)
    perm = np.arange(n)
    for k in range(n - 1):
        p = k + int(np.argmax(np.abs(work[k:, k])))
        if float(np.asarray(work[p, k])) == 0.0:
            raise ValueError(
                f"a is singular in this arithmetic: zero pivot at column {k}")
        if p != k:
            work[[k, p]] = work[[p, k]]
            perm[[k, p]] = perm[[p, k]]
        work[k + 1:, k] = work[k + 1:, k] / work[k, k]
        # the Schur complement update: one rounded product, one rounded subtraction
        work[k + 1:, k + 1:] = work[k + 1:, k + 1:] - (
            work[k + 1:, k:k + 1] * work[k:k + 1, k + 1:])
    if float(np.asarray(work[n - 1, n - 1])) == 0.0:
        raise ValueError(
            f"a is singular in this arithmetic: zero pivot at column {n - 1}")
    lower = np.tril(work, -1) + np.eye(n)
    upper = np.triu(work)
    return LUResult(perm, lower, upper)


def lu_solve(factors: LUResult, b: object) -> object:
    """Solve ``A x = b`` with the factors, by forward and back substitution.

    The substitutions run in the arithmetic of ``b`` (an emulated ``b`` rounds each
    dot product by its accumulation model and each division once); the factors'
    values are used exactly. Returns an array of ``b``'s kind.
    """
    perm, lower, upper = factors
    n = len(perm)
    emulated = isinstance(b, EmulatedArray)
    rhs = b[perm] if emulated else np.asarray(b, np.float64)[perm]
    if np.shape(rhs) != (n,):
        raise ValueError(f"b must have shape ({n},), got {np.shape(b)}")
    lo = _like(lower, b)
    up = _like(upper, b)
    y = rhs.copy()
    for i in range(1, n):
        y[i] = rhs[i] - lo[i, :i] @ y[:i]
    x = y.copy()
    x[n - 1] = y[n - 1] / up[n - 1, n - 1]
    for i in range(n - 2, -1, -1):
        x[i] = (y[i] - up[i, i + 1:] @ x[i + 1:]) / up[i, i]
    return x


def _like(factor: object, b: object) -> object:
    """The factor's values in ``b``'s arithmetic (exact: they are values of a format
    the solve's format holds, or the solve is in float64)."""
    values = np.asarray(factor, np.float64)
    if isinstance(b, EmulatedArray):
        from lowprec.emulation.array import emulate

        s = b.settings
        return emulate(values, s.fmt, rounding=s.rounding, accumulate=s.accumulate,
                       order=s.order, rng=s.rng, stats=s.stats)
    return values


def growth_factor(a: object, factors: LUResult) -> float:
    """``max |U_ij| / max |A_ij|``: how much elimination let the entries grow
    (the max over intermediate steps is at least this)."""
    return float(np.abs(np.asarray(factors.U)).max() / np.abs(np.asarray(a)).max())


def lu_backward_error(a: object, factors: LUResult) -> tuple[float, float]:
    """The componentwise backward error of the factors and its bound's constant.

    Returns ``(max_ij |PA - LU|_ij / (|L||U|)_ij, n)``: the first must be at most
    ``gamma_n`` of the format (Higham, *Accuracy and Stability of Numerical
    Algorithms*, 2nd ed., Thm. 9.3), computed here in float64.
    """
    A = np.asarray(a, np.float64)[factors.perm]
    L = np.asarray(factors.L, np.float64)
    U = np.asarray(factors.U, np.float64)
    resid = np.abs(A - L @ U)
    scale = np.abs(L) @ np.abs(U)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(scale > 0, resid / scale, 0.0)
    return float(ratio.max()), A.shape[0]
