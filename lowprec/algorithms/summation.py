"""Recursive, pairwise and compensated summation, and their error bounds.

The sums are ``x.sum()`` on emulated arrays whose ``order`` is the method, so each
addition is rounded to the format in that order (lowprec's accumulation kernels);
:func:`summation_errors` compares their errors with the classical bounds (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., §4):

- recursive: ``gamma_{n-1} sum |x_i|``;
- pairwise: ``gamma_{ceil(log2 n)} sum |x_i|``;
- compensated (Kahan): ``(2u + O(n u^2)) sum |x_i|``, taken here as
  ``2u + 4 n u^2`` (Higham, eq. 4.8, with the O term's constant written out);

and with the probabilistic ``lambda sqrt(n) u`` of Higham and Mary (SIAM J. Sci.
Comput. 41(5), 2019) that recursive sums of random data follow.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from lowprec.arith.error_analysis import gamma, unit_roundoff
from lowprec.emulation.array import emulate
from lowprec.formats import Format, as_format

__all__ = [
    "METHODS", "emulated_sum", "exact_sum", "summation_bound", "summation_errors",
]

METHODS = {"recursive": "sequential", "pairwise": "pairwise", "kahan": "kahan"}


def emulated_sum(x: np.ndarray, fmt: Format | str, method: str = "recursive") -> float:
    """The sum of values ``x`` (rounded to ``fmt`` first) by ``method``, every
    addition rounded to ``fmt``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.algorithms.summation import emulated_sum
    >>> x = np.full(10_000, 0.1)
    >>> emulated_sum(x, "fp16"), emulated_sum(x, "fp16", "kahan")
    (256.0, 1000.0)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return float(np.asarray(emulate(x, fmt, order=METHODS[method]).sum()))


def exact_sum(x: np.ndarray) -> Fraction:
    """The exact sum of float64 values (``math.fsum`` is correctly rounded; the
    exact value comes from Fractions)."""
    return sum((Fraction(float(v)) for v in np.asarray(x, np.float64).ravel()),
               Fraction(0))


def summation_bound(n: int, fmt: Format | str, method: str) -> float:
    """The bound on ``|computed - exact| / sum |x_i|`` of ``method`` for n terms."""
    fmt = as_format(fmt)
    u = unit_roundoff(fmt)
    if method == "recursive":
        return float(gamma(max(n - 1, 0), fmt))
    if method == "pairwise":
        return float(gamma(math.ceil(math.log2(max(n, 1))), fmt))
    if method == "kahan":
        return 2 * u + 4 * n * u * u
    raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")


def summation_errors(
    ns: list[int],
    fmt: Format | str,
    *,
    methods: tuple[str, ...] = ("recursive", "pairwise", "kahan"),
    seed: int = 0,
    distribution: str = "uniform",
) -> dict[str, np.ndarray]:
    """Relative errors ``|computed - exact| / sum |x_i|`` of each method for each n.

    The data are ``n`` values of ``fmt`` drawn from U[0, 1) (``distribution=
    "uniform"``) or N(0, 1) (``"normal"``), seeded; the exact sum is computed with
    ``math.fsum`` (correctly rounded to float64, whose error is far below every
    format's here) of the values. Returns ``{"n": ..., method: errors, method +
    "_bound": bounds, "sqrt_n_u": ...}``.
    """
    fmt = as_format(fmt)
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {"n": list(ns), "sqrt_n_u": []}
    for m in methods:
        out[m], out[m + "_bound"] = [], []
    for n in ns:
        if distribution == "uniform":
            raw = rng.random(n)
        elif distribution == "normal":
            raw = rng.standard_normal(n)
        else:
            raise ValueError(f"distribution must be 'uniform' or 'normal', got "
                             f"{distribution!r}")
        x = np.asarray(emulate(raw, fmt), np.float64)
        exact = math.fsum(x)
        scale = math.fsum(np.abs(x))
        for m in methods:
            out[m].append(abs(emulated_sum(x, fmt, m) - exact) / scale)
            out[m + "_bound"].append(summation_bound(n, fmt, m))
        out["sqrt_n_u"].append(math.sqrt(n) * unit_roundoff(fmt))
    return {k: np.asarray(v, float) for k, v in out.items()}
