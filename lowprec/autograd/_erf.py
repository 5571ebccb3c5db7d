"""The error function on float64 arrays (NumPy has none), for the exact GELU.

Two published expansions, each on the interval where it is accurate in float64:

- ``|x| <= 1``: the Maclaurin series (Abramowitz and Stegun, *Handbook of
  Mathematical Functions*, 1964, 7.1.5),
  ``erf(x) = 2/sqrt(pi) sum_n (-1)**n x**(2n+1) / (n! (2n+1))``, written as
  ``x + x T(x**2)`` so that the rounding errors of the Horner sum ``T`` (about
  a sixth of the result at most) weigh little against the exact leading ``x``;
  22 terms leave a truncation error below 1e-20 at ``|x| = 1``. The terms
  alternate, but their absolute sum stays within 2x of ``erf`` on this interval.
- ``|x| > 1``: ``erf = 1 - erfc``, with W. J. Cody's rational Chebyshev
  approximations of erfc ("Rational Chebyshev approximations for the error
  function", Mathematics of Computation 23(107), 631-637, 1969; the coefficients
  of his portable packet CALERF, netlib ``specfun/erf``, accurate to about 18
  digits): ``exp(-x**2) R(x)/S(x)``, degree 8 over 8, for ``1 < |x| <= 4``, and
  ``exp(-x**2)/|x| (1/sqrt(pi) + z P(z)/Q(z))`` with ``z = 1/x**2``, degree 5
  over 5, beyond. ``exp(-x**2)`` is evaluated as ``exp(-s**2) exp(-(x-s)(x+s))``
  with ``s`` = ``|x|`` truncated to a multiple of 1/16 (so ``s**2`` is exact), as
  CALERF does. (Evaluated in float64, Cody's rational erf for ``|x| <= 0.5``
  came out within 3 ulp of :func:`math.erf`, and 1 - erfc on (0.5, 1] within 4;
  the series is within 1 on both.) Beyond ``|x| = 6``, erfc < 2.2e-17 and
  ``1 - erfc`` rounds to exactly 1.

The tests compare :func:`erf` with :func:`math.erf` on a dense grid (within one
float64 ulp everywhere) and :func:`erfc` with :func:`math.erfc` (within 8 ulp:
the rational forms are evaluated in float64 with a few roundings each).
"""

from __future__ import annotations

import math

import numpy as np

# the series: T(y) = sum_n T_n y**n, T_0 = 2/sqrt(pi) - 1 and, for n >= 1,
# T_n = 2/sqrt(pi) (-1)**n / (n! (2n+1)) (one rounding each)
_TWO_OVER_SQRT_PI = 1.1283791670955126
_T = (_TWO_OVER_SQRT_PI - 1.0,) + tuple(
    _TWO_OVER_SQRT_PI * (-1) ** n / (math.factorial(n) * (2 * n + 1))
    for n in range(1, 22)
)
# 1 < |x| <= 4: numerator (C) and denominator (D) in |x|; C[8] leads
_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
# |x| > 4: numerator (P) and denominator (Q) in 1/x**2; P[5] leads
_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_INV_SQRT_PI = 5.6418958354775628695e-1
_SERIES_UP_TO = 1.0


def _series(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= 1."""
    # in place: the same operations as ``t = t * y + c``, half the memory traffic
    y = x * x
    t = np.full_like(y, _T[-1])
    for coefficient in _T[-2::-1]:
        t *= y
        t += coefficient
    t *= x
    t += x
    return t


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """exp(-y**2) without the rounding error of y**2 in the argument."""
    s = np.trunc(y * 16.0) / 16.0  # s**2 is exact: s has few significant bits
    return np.exp(-s * s) * np.exp(-(y - s) * (y + s))


def _erfc_middle(y: np.ndarray) -> np.ndarray:
    """erfc(y) for 1 < y <= 4."""
    num = _C[8] * y
    den = y.copy()
    for i in range(7):  # (num + c) * y, in place
        num += _C[i]
        num *= y
        den += _D[i]
        den *= y
    num += _C[7]
    den += _D[7]
    num /= den
    return _exp_minus_square(y) * num


def _erfc_large(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y > 4."""
    z = 1.0 / (y * y)
    num = _P[5] * z
    den = z
    for i in range(4):
        num = (num + _P[i]) * z
        den = (den + _Q[i]) * z
    r = z * (num + _P[4]) / (den + _Q[4])
    return _exp_minus_square(y) * ((_INV_SQRT_PI - r) / y)


def _erfc_outer(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y > 1 (inf and NaN allowed): Cody's two outer intervals."""
    out = np.empty_like(y)
    middle = y <= 4.0
    out[middle] = _erfc_middle(y[middle])
    large = (y > 4.0) & (y < np.inf)
    with np.errstate(under="ignore"):  # the tail underflows to 0 beyond 27
        out[large] = _erfc_large(y[large])
    out[y == np.inf] = 0.0
    out[np.isnan(y)] = np.nan
    return out


def erfc(x: np.ndarray) -> np.ndarray:
    """The complementary error function ``1 - erf(x)`` of a float64 array.

    Cody's approximations directly for ``x > 1`` (no cancellation, so the tiny
    values of the tail keep their digits), ``1 - erf(x)`` for ``|x| <= 1``, and
    ``2 - erfc(-x)`` below.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd._erf import erfc
    >>> float(erfc(np.array([10.0]))[0])  # 1 - erf(10) would be 0
    2.0884875837625446e-45
    """
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) <= _SERIES_UP_TO
    out = np.empty_like(x)
    out[small] = 1.0 - _series(x[small])
    outer = ~small  # NaN included
    tail = _erfc_outer(np.abs(x[outer]))
    out[outer] = np.where(x[outer] < 0, 2.0 - tail, tail)
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of a float64 array (NaN stays NaN, erf(-0) = -0).

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.autograd._erf import erf
    >>> erf(np.array([0.0, 0.5, 1.0, -2.0, np.inf])).round(12).tolist()
    [0.0, 0.520499877813, 0.84270079295, -0.995322265019, 1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) <= _SERIES_UP_TO
    if small.all():
        return _series(x)
    out = np.empty_like(x)
    out[small] = _series(x[small])
    outer = ~small  # NaN included: 1 - NaN is NaN
    # beyond |x| = 6, erfc < 2.2e-17 and 1 - erfc rounds to exactly 1
    out[outer] = 1.0 - _erfc_outer(np.abs(x[outer]))
    return np.copysign(out, x)  # the series has x's sign already (and -0's)
