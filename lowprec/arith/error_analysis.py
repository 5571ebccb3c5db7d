"""Error measures and the classical rounding-error bounds, for plotting error against n.

The bounds are those of Higham, *Accuracy and Stability of Numerical Algorithms*
(2nd ed., SIAM 2002), Lemma 3.1: a sum or dot product of length n computed with
round-to-nearest in a format with unit roundoff ``u = 2**-p`` has relative error at
most ``gamma_n = n u / (1 - n u)`` (for ``n u < 1``), and the probabilistic bound of
Higham and Mary, "A new approach to probabilistic rounding error analysis" (SIAM J.
Sci. Comput. 41(5), 2019), Theorem 3.1: with probability at least ``1 - lambda``
the error is at most ``sqrt(n) u`` times a modest constant
(``lambda_ * sqrt(n) * u + O(u**2)`` with ``P = 1 - 2 exp(-lambda_**2 (1-u)**2 / 2)``).
"""

from __future__ import annotations

import math

import numpy as np

from lowprec.formats import Format, as_format
from lowprec.rounding.rounder import as_float_array

__all__ = [
    "componentwise_error",
    "gamma",
    "normwise_error",
    "probabilistic_bound",
    "relative_error",
    "unit_roundoff",
]


def unit_roundoff(fmt: Format | str) -> float:
    """``u = 2**-p``: the relative error bound of round-to-nearest in ``fmt``.

    Examples
    --------
    >>> import lowprec.error_analysis as ea
    >>> ea.unit_roundoff("fp16")
    0.00048828125
    """
    return as_format(fmt).unit_roundoff


def gamma(n: int | np.ndarray, fmt: Format | str) -> np.ndarray:
    """The deterministic bound ``gamma_n = n u / (1 - n u)``; inf where ``n u >= 1``.

    Examples
    --------
    >>> import lowprec.error_analysis as ea
    >>> float(ea.gamma(100, "fp16"))
    0.0513347022587269
    """
    u = unit_roundoff(fmt)
    nu = np.asarray(n, dtype=np.float64) * u
    with np.errstate(divide="ignore"):
        return np.where(nu < 1, nu / (1 - nu), np.inf)


def probabilistic_bound(
    n: int | np.ndarray, fmt: Format | str, *, lambda_: float = 1.0
) -> np.ndarray:
    """The probabilistic bound ``lambda_ * sqrt(n) * u`` (Higham and Mary, 2019).

    It holds with probability at least ``1 - 2 exp(-lambda_**2 (1 - u)**2 / 2)``
    for independent rounding errors of mean zero; ``lambda_=1`` draws the typical
    size of the error.
    """
    if lambda_ <= 0:
        raise ValueError(f"lambda_ must be positive, got {lambda_}")
    u = unit_roundoff(fmt)
    return lambda_ * np.sqrt(np.asarray(n, dtype=np.float64)) * u


def bound_probability(lambda_: float, fmt: Format | str) -> float:
    """The probability with which :func:`probabilistic_bound` holds, ``>= 1 - P``."""
    u = unit_roundoff(fmt)
    return max(0.0, 1 - 2 * math.exp(-(lambda_**2) * (1 - u) ** 2 / 2))


def _values(x: object, arg: str) -> np.ndarray:
    """x as float64: float, integer and ml_dtypes arrays, converted exactly."""
    return as_float_array(x, arg).astype(np.float64, copy=False)


def relative_error(computed: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Elementwise ``|computed - exact| / |exact|`` (0 where both are 0, inf where
    only ``exact`` is 0).

    Every array argument of the error measures may be float16/32/64, integer or
    ml_dtypes (bfloat16, float8_*, ...), converted to float64 exactly; the
    results are float64.
    """
    c = _values(computed, "computed")
    e = _values(exact, "exact")
    if c.shape != e.shape:
        raise ValueError(f"computed has shape {c.shape}, exact has shape {e.shape}")
    diff = np.abs(c - e)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(diff == 0, 0.0, diff / np.abs(e))


def normwise_error(computed: np.ndarray, exact: np.ndarray) -> float:
    """``||computed - exact||_F / ||exact||_F``."""
    c = _values(computed, "computed")
    e = _values(exact, "exact")
    if c.shape != e.shape:
        raise ValueError(f"computed has shape {c.shape}, exact has shape {e.shape}")
    return float(np.linalg.norm(c - e) / np.linalg.norm(e))


def componentwise_error(
    computed: np.ndarray, a: np.ndarray, b: np.ndarray, exact: np.ndarray | None = None
) -> float:
    """``max |C - A B| / (|A| |B|)`` for a matrix product: the quantity gamma_n bounds.

    Higham (2002), eq. (3.13): ``|C - AB| <= gamma_n |A| |B|`` componentwise.
    ``exact`` defaults to ``A @ B`` in float64, which is exact enough to measure
    errors of formats with p <= 24 for moderate n.
    """
    a = _values(a, "a")
    b = _values(b, "b")
    ref = a @ b if exact is None else _values(exact, "exact")
    scale = np.abs(a) @ np.abs(b)
    diff = np.abs(_values(computed, "computed") - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / scale)
    return float(np.max(ratio)) if ratio.size else 0.0
