"""Mixed-precision iterative refinement: LU-IR and GMRES-IR in three precisions.

Carson and Higham, "Accelerating the solution of linear systems by iterative
refinement in three precisions", SIAM J. Sci. Comput. 40(2), A817-A847, 2018. The
matrix is factorized in a low precision ``u_f``, the solution is kept in the working
precision ``u``, and residuals are computed in a higher precision ``u_r``:

- **LU-IR** (their Algorithm 1.1 with LU solves): each correction solves
  ``A d = r`` with the low-precision factors, by substitution in the working
  precision. It converges while ``kappa(A) u_f`` is well below 1 (about 10^4 for
  fp16 factors).
- **GMRES-IR** (their Algorithm 3.1): each correction solves the preconditioned
  system ``U^-1 L^-1 A d = U^-1 L^-1 r`` by GMRES in the working precision, with
  the preconditioned matrix applied in ``u_r``; this converges for
  ``kappa(A) u_f``-sized preconditioned conditioning up to about ``kappa(A) <=
  10^8`` for (fp16, fp32, fp64).

Both stop when the normwise backward error
``||b - A x||_inf / (||A||_inf ||x||_inf + ||b||_inf)`` is at most the working
precision's unit roundoff, and report failure when it has not got there within
``max_iter`` corrections (or the iterate stops being finite). The residual precision
is float64 here (NumPy float64 arithmetic, ``u_r = 2^-53``); the factorization and
working precisions are any lowprec formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lowprec.algorithms.lu import LUResult, lu, lu_solve
from lowprec.arith.error_analysis import unit_roundoff
from lowprec.emulation.array import emulate
from lowprec.formats import Format, as_format

__all__ = ["RefinementResult", "backward_error", "gmres_ir", "lu_ir", "randsvd"]


def randsvd(n: int, kappa: float, *, seed: int = 0) -> np.ndarray:
    """A random n x n matrix with 2-norm condition number ``kappa``.

    ``A = U diag(sigma) V^T`` with Haar-random orthogonal U, V (QR of a Gaussian
    matrix, signs fixed so the distribution is Haar) and geometrically distributed
    singular values ``sigma_i = kappa^(-(i-1)/(n-1))``, so ``||A||_2 = 1``: the
    "mode 3" of Higham's ``gallery('randsvd')``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.algorithms import randsvd
    >>> A = randsvd(20, 1e6, seed=1)
    >>> s = np.linalg.svd(A, compute_uv=False)
    >>> round(float(s[0]), 12), round(float(s[0] / s[-1]) / 1e6, 6)
    (1.0, 1.0)
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    if not (isinstance(kappa, int | float) and kappa >= 1):
        raise ValueError(f"kappa must be a number >= 1, got {kappa!r}")
    rng = np.random.default_rng(seed)

    def haar() -> np.ndarray:
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        return q * np.sign(np.diag(r))

    sigma = float(kappa) ** (-np.arange(n) / (n - 1))
    return (haar() * sigma) @ haar().T


def backward_error(a: np.ndarray, x: np.ndarray, b: np.ndarray) -> float:
    """Normwise backward error ``||b - Ax||_inf / (||A||_inf ||x||_inf + ||b||_inf)``,
    in float64."""
    a, x, b = (np.asarray(v, np.float64) for v in (a, x, b))
    r = b - a @ x
    denom = np.abs(a).sum(1).max() * np.abs(x).max() + np.abs(b).max()
    return float(np.abs(r).max() / denom)


@dataclass
class RefinementResult:
    """What a refinement did.

    Attributes
    ----------
    x : ndarray of float64
        The last iterate (values of the working format).
    converged : bool
        The backward error reached the working precision's unit roundoff.
    iterations : int
        Corrections applied.
    gmres_iterations : list of int
        GMRES iterations of each correction (empty for LU-IR).
    backward_errors : list of float
        The backward error of the initial solve and after each correction.
    """

    x: np.ndarray
    converged: bool
    iterations: int
    backward_errors: list[float] = field(default_factory=list)
    gmres_iterations: list[int] = field(default_factory=list)


def _setup(a, b, factorization, working):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a must be a square matrix, got shape {a.shape}")
    if b.shape != (a.shape[0],):
        raise ValueError(f"b must have shape ({a.shape[0]},), got {b.shape}")
    f_fmt: Format = as_format(factorization, "factorization")
    w_fmt: Format = as_format(working, "working")
    factors = lu(emulate(a, f_fmt))
    return a, b, w_fmt, factors


def _lu_solve_working(factors, r, w_fmt):
    """Solve with the low-precision factors, substituting in the working format
    (the right side scaled to its max first, so that small residuals stay normal)."""
    scale = float(np.abs(r).max()) or 1.0
    return np.asarray(lu_solve(factors, emulate(r / scale, w_fmt)), np.float64) * scale


def _refine(a, b, w_fmt, factors, solve, max_iter) -> RefinementResult:
    """The refinement loop shared by LU-IR and GMRES-IR: x0 from the factors, then
    corrections; ``solve(r)`` returns the correction (float64 values of the working
    format) and its GMRES count (None for LU-IR)."""
    tol = unit_roundoff(w_fmt)
    x = np.asarray(emulate(_lu_solve_working(factors, b, w_fmt), w_fmt), np.float64)
    result = RefinementResult(x, False, 0, [backward_error(a, x, b)])
    for it in range(1, max_iter + 1):
        if result.backward_errors[-1] <= tol:
            result.converged = True
            break
        if not np.isfinite(x).all():
            break
        r = b - a @ x  # the residual in u_r = float64
        d, inner = solve(r)
        if inner is not None:
            result.gmres_iterations.append(inner)
        x = np.asarray(emulate(x, w_fmt) + emulate(d, w_fmt), np.float64)
        result.x, result.iterations = x, it
        result.backward_errors.append(backward_error(a, x, b))
    else:
        result.converged = result.backward_errors[-1] <= tol
    return result


def lu_ir(
    a: np.ndarray,
    b: np.ndarray,
    *,
    factorization: Format | str = "fp16",
    working: Format | str = "fp32",
    max_iter: int = 20,
) -> RefinementResult:
    """Solve ``A x = b`` by LU-based iterative refinement in three precisions.

    The LU factors are computed in ``factorization`` (on the matrix rounded to it);
    each solve with them (the first, and each correction's) substitutes in
    ``working``; residuals are float64.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.algorithms import lu_ir, randsvd
    >>> A = randsvd(30, 1e2, seed=0)
    >>> res = lu_ir(A, A @ np.ones(30))
    >>> res.converged, res.iterations <= 5
    (True, True)
    """
    a, b, w_fmt, factors = _setup(a, b, factorization, working)

    def solve(r):
        return _lu_solve_working(factors, r, w_fmt), None

    return _refine(a, b, w_fmt, factors, solve, max_iter)


def gmres_ir(
    a: np.ndarray,
    b: np.ndarray,
    *,
    factorization: Format | str = "fp16",
    working: Format | str = "fp32",
    max_iter: int = 20,
    gmres_tol: float = 1e-6,
    max_gmres: int | None = None,
) -> RefinementResult:
    """Solve ``A x = b`` by GMRES-based iterative refinement in three precisions.

    Each correction runs GMRES (modified Gram-Schmidt Arnoldi, from a zero start) on
    ``M^-1 A d = M^-1 r`` with ``M = L U`` the ``factorization``-precision factors,
    until the preconditioned residual falls by ``gmres_tol``. The Arnoldi vectors
    and their dot products are in ``working`` (emulated arrays); the preconditioned
    matrix is applied in float64. The small Hessenberg least-squares problem is
    solved in float64 (its size is the iteration count).

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.algorithms import gmres_ir, randsvd
    >>> A = randsvd(30, 1e6, seed=0)
    >>> res = gmres_ir(A, A @ np.ones(30))
    >>> res.converged
    True
    """
    a, b, w_fmt, factors = _setup(a, b, factorization, working)
    n = a.shape[0]
    m = n if max_gmres is None else int(max_gmres)
    f64 = LUResult(factors.perm, np.asarray(factors.L, np.float64),
                   np.asarray(factors.U, np.float64))

    def precondition(v):
        return lu_solve(f64, a @ v)  # M^-1 A v, in float64

    def solve(r):
        rhs = lu_solve(f64, r)
        scale = float(np.abs(rhs).max()) or 1.0
        d, its = _gmres(precondition, rhs / scale, w_fmt, gmres_tol, m)
        return d * scale, its

    return _refine(a, b, w_fmt, factors, solve, max_iter)


def _gmres(apply, rhs, fmt, tol, max_iter):
    """GMRES from x0 = 0: the Krylov basis in ``fmt``; returns (x, iterations)."""
    beta_vec = emulate(rhs, fmt)
    beta = float(np.asarray(np.linalg.norm(beta_vec)))
    if beta == 0.0:
        return np.zeros_like(rhs), 0
    basis = [beta_vec / beta]
    h = np.zeros((max_iter + 1, max_iter))
    k = 0
    for k in range(1, max_iter + 1):
        w = emulate(apply(np.asarray(basis[-1], np.float64)), fmt)
        for i, v in enumerate(basis):
            h[i, k - 1] = float(np.asarray(np.dot(w, v)))
            w = w - v * h[i, k - 1]
        h[k, k - 1] = float(np.asarray(np.linalg.norm(w)))
        e1 = np.zeros(k + 1)
        e1[0] = beta
        y, *_ = np.linalg.lstsq(h[:k + 1, :k], e1, rcond=None)
        resid = np.linalg.norm(h[:k + 1, :k] @ y - e1)
        if resid <= tol * beta or h[k, k - 1] == 0.0:
            break
        basis.append(w / h[k, k - 1])
    vs = np.stack([np.asarray(v, np.float64) for v in basis[:k]], 1)
    return np.asarray(emulate(vs, fmt) @ emulate(y[:k], fmt), np.float64), k
