"""The classic algorithms on emulated arrays: LU, iterative refinement, summation.

LU is checked bit for bit against the same elimination written here with direct
calls of lowprec.divide/multiply/subtract on float64 arrays (no emulated arrays);
the refinement against Carson and Higham's headline (SIAM J. Sci. Comput. 2018,
Table 7.1 and §8: LU-IR in (half, single, double) converges for kappa up to about
1e4, GMRES-IR far beyond); the sums against their error bounds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracles import assert_same_bits

import lowprec
from lowprec.algorithms import (
    backward_error,
    emulated_sum,
    gmres_ir,
    growth_factor,
    lu,
    lu_backward_error,
    lu_ir,
    randsvd,
    summation_bound,
    summation_errors,
)
from lowprec.arith.error_analysis import gamma, unit_roundoff


def _reference_lu(a, fmt):
    """Right-looking LU with partial pivoting, one lowprec call per rounding."""
    w = np.asarray(lowprec.round(a, fmt), np.float64).copy()
    n = len(w)
    perm = np.arange(n)
    for k in range(n - 1):
        p = k + int(np.argmax(np.abs(w[k:, k])))
        w[[k, p]] = w[[p, k]]
        perm[[k, p]] = perm[[p, k]]
        w[k + 1:, k] = lowprec.divide(w[k + 1:, k], np.full(n - k - 1, w[k, k]), fmt)
        prod = lowprec.multiply(w[k + 1:, k:k + 1] * np.ones((1, n - k - 1)),
                                np.ones((n - k - 1, 1)) * w[k:k + 1, k + 1:], fmt)
        w[k + 1:, k + 1:] = lowprec.subtract(w[k + 1:, k + 1:], prod, fmt)
    return perm, np.tril(w, -1) + np.eye(n), np.triu(w)


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp8_e4m3fn"])
def test_lu_matches_the_elimination_written_with_lowprec_calls(fmt):
    a = np.random.default_rng(0).normal(size=(12, 12))
    f = lu(lowprec.emulate(a, fmt))
    perm, lower, upper = _reference_lu(a, fmt)
    assert (f.perm == perm).all()
    assert_same_bits(np.asarray(f.L), lower)
    assert_same_bits(np.asarray(f.U), upper)


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_lu_backward_error_is_within_gamma_n(fmt):
    a = lowprec.emulate(np.random.default_rng(1).normal(size=(30, 30)), fmt)
    f = lu(a)
    err, n = lu_backward_error(a, f)
    assert 0 < err <= float(gamma(n, fmt))
    assert growth_factor(a, f) >= 1.0


def test_lu_of_a_singular_matrix_is_an_error():
    with pytest.raises(ValueError, match="zero pivot at column 1"):
        lu(lowprec.emulate(np.ones((3, 3)), "fp16"))
    with pytest.raises(ValueError, match="a must be a square matrix"):
        lu(np.ones((2, 3)))


def test_randsvd_has_the_asked_condition_number():
    a = randsvd(25, 1e7, seed=3)
    s = np.linalg.svd(a, compute_uv=False)
    assert abs(s[0] - 1) < 1e-12 and abs(s[0] / s[-1] / 1e7 - 1) < 1e-6
    expected = 1e7 ** (-np.arange(25) / 24)
    assert np.allclose(s, expected, rtol=1e-9)


N = 40  # small enough for seconds; the notebook runs n = 100


def _system(kappa):
    a = randsvd(N, kappa, seed=1)
    x = np.random.default_rng(2).normal(size=N)
    return a, a @ x, x


@pytest.mark.parametrize("kappa", [1e1, 1e2, 1e3])
def test_lu_ir_reaches_single_accuracy_while_kappa_is_small(kappa):
    a, b, x = _system(kappa)
    res = lu_ir(a, b)
    assert res.converged and res.iterations <= 5
    assert res.backward_errors[-1] <= unit_roundoff("fp32")
    assert np.abs(res.x - x).max() / np.abs(x).max() <= 1e-4


@pytest.mark.parametrize("kappa", [1e6, 1e8])
def test_lu_ir_fails_and_gmres_ir_converges_when_kappa_is_large(kappa):
    a, b, x = _system(kappa)
    assert not lu_ir(a, b).converged
    res = gmres_ir(a, b)
    assert res.converged
    assert res.backward_errors[-1] <= unit_roundoff("fp32")
    assert len(res.gmres_iterations) == res.iterations >= 1


def test_gmres_ir_needs_few_gmres_iterations_for_moderate_kappa():
    a, b, x = _system(1e4)
    res = gmres_ir(a, b)
    assert res.converged and max(res.gmres_iterations) < N // 2
    assert np.abs(res.x - x).max() / np.abs(x).max() <= 1e-5
    assert backward_error(a, res.x, b) == res.backward_errors[-1]


def test_recursive_sum_is_the_loop_of_lowprec_adds():
    x = np.asarray(lowprec.round(np.random.default_rng(4).random(300), "fp16"))
    acc = np.float64(x[0])
    for v in x[1:]:
        acc = lowprec.add(acc, v, "fp16")
    assert_same_bits(emulated_sum(x, "fp16"), acc)
    assert emulated_sum(np.full(10_000, 0.1), "fp16") == 256.0


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_summation_errors_lie_within_their_bounds(fmt):
    r = summation_errors([10, 100, 1000, 5000], fmt, seed=5)
    for method in ("recursive", "pairwise", "kahan"):
        assert (r[method] <= r[method + "_bound"]).all(), method
    assert summation_bound(1024, fmt, "pairwise") == pytest.approx(
        float(gamma(10, fmt)))
    assert r["sqrt_n_u"][-1] == pytest.approx(math.sqrt(5000) * unit_roundoff(fmt))
    with pytest.raises(ValueError, match="method must be one of"):
        emulated_sum(np.ones(3), fmt, "blocked")
