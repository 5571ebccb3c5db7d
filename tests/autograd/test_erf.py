"""The float64 erf and erfc behind the exact GELU, against :func:`math.erf` and
:func:`math.erfc` (the C library's) on a dense grid, in float64 ulps."""

from __future__ import annotations

import math

import numpy as np

from lowprec.autograd._erf import erf, erfc


def _ulps(got, want):
    """Distance in float64 ulps of ``want`` (its spacing), elementwise."""
    return np.abs(got - want) / np.spacing(np.abs(want))


def _grid():
    dense = np.linspace(-7.0, 7.0, 280_001)
    tiny = np.geomspace(1e-300, 1.0, 2_001)
    edges = np.array([1.0, 4.0, 6.0])  # where the approximations meet
    edges = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 9)])
    return np.concatenate([dense, tiny, -tiny, edges, -edges])


def test_erf_is_within_one_ulp_of_math_erf():
    x = _grid()
    want = np.array([math.erf(v) for v in x])
    got = erf(x)
    nonzero = want != 0
    assert _ulps(got[nonzero], want[nonzero]).max() <= 1.0
    assert (got[~nonzero] == 0).all()


def test_erfc_is_within_eight_ulps_of_math_erfc_down_the_tail():
    x = np.concatenate([_grid(), np.linspace(7.0, 27.0, 20_001)])
    want = np.array([math.erfc(v) for v in x])
    got = erfc(x)
    nonzero = want != 0
    assert _ulps(got[nonzero], want[nonzero]).max() <= 8.0
    assert (got[~nonzero] == 0).all()  # underflow beyond about 27.2


def test_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 30.0, -30.0])
    e = erf(x)
    assert np.signbit(e[1]) and e[1] == 0 and not np.signbit(e[0])
    assert e[2:4].tolist() == [1.0, -1.0] and np.isnan(e[4])
    assert e[5:].tolist() == [1.0, -1.0]
    c = erfc(x)
    assert c[[0, 1, 2, 3]].tolist() == [1.0, 1.0, 0.0, 2.0] and np.isnan(c[4])
    assert c[5:].tolist() == [0.0, 2.0]
