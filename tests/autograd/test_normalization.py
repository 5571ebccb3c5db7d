"""layer_norm and rms_norm: bit for bit against float32 references written here,
and the statistics rule (fp32 statistics vs statistics in fp16, where a square
overflows and a small eps rounds to 0)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import F, same_bits

from lowprec import autograd as ag
from lowprec.autograd import Tensor

H = np.float16


def _h(a):
    """Round float32 values to fp16 with NumPy (an independent RNE), as float32."""
    return np.asarray(a, F).astype(H).astype(F)


def _ident(a):
    return np.asarray(a, F)


def _rms_ref(x, w, eps, r):
    """RMS norm with each statistic passed through ``r`` (identity or fp16)."""
    n = F(x.shape[-1])
    ms = r(r(x * x).sum(axis=-1, keepdims=True) / n)
    rstd = r(F(1) / np.sqrt(r(ms + r(F(eps)))))
    return x * rstd * w


def _ln_ref(x, w, b, eps, r):
    n = F(x.shape[-1])
    mu = r(x.sum(axis=-1, keepdims=True) / n)
    d = r(x - mu)
    var = r(r(d * d).sum(axis=-1, keepdims=True) / n)
    rstd = r(F(1) / np.sqrt(r(var + r(F(eps)))))
    return d * rstd * w + b


def _data(shape, seed):
    rng = np.random.default_rng(seed)
    return _h(rng.standard_normal(shape) * 3), _h(rng.uniform(0.5, 2, shape[-1]))


def test_rms_norm_fp32_is_the_float32_expression():
    x, w = _data((3, 5, 16), 0)
    got = ag.rms_norm(Tensor(x, policy="fp32"), Tensor(w, policy="fp32"), eps=1e-6)
    same_bits(got.data, _rms_ref(x, w, 1e-6, _ident))


def test_rms_norm_under_fp16_mixed_keeps_fp32_statistics_and_result():
    x, w = _data((4, 16), 1)
    got = ag.rms_norm(
        Tensor(x, policy="fp16_mixed"), Tensor(w, policy="fp16_mixed"), eps=1e-6
    )
    assert got.fmt.name == "fp32"
    same_bits(got.data, _rms_ref(x, w, 1e-6, _ident))


@pytest.mark.parametrize("op", ["rms_norm", "layer_norm"])
def test_fp16_statistics_round_every_named_step(op):
    x, w = _data((32, 16), 2)
    b = _h(np.linspace(-1, 1, 16))
    t = Tensor(x, policy="fp16_naive")
    tw = Tensor(w, policy="fp16_naive")
    if op == "rms_norm":
        got = ag.rms_norm(t, tw, eps=1e-3)
        want = _rms_ref(x, w, 1e-3, _h)
    else:
        got = ag.layer_norm(t, tw, Tensor(b, policy="fp16_naive"), eps=1e-3)
        want = _ln_ref(x, w, b, 1e-3, _h)
    assert got.fmt.name == "fp16"
    same_bits(got.data, _h(want))


def test_layer_norm_fp16_statistics_overflow_on_a_row_holding_300():
    row = np.array([[300.0] + [0.0] * 7, [3.0] + [0.0] * 7])
    # (300 - 37.5)**2 = 68906.25 > 65504: the fp16 variance is inf, rstd 0
    naive = ag.layer_norm(Tensor(row, policy="fp16_naive"))
    assert naive.data[0].tolist() == [0.0] * 8 and not np.signbit(naive.data[0, 0])
    assert np.isfinite(naive.data[1]).all() and naive.data[1, 0] > 2
    mixed = ag.layer_norm(Tensor(row, policy="fp16_mixed"))  # fp32 statistics
    same_bits(mixed.data, _ln_ref(row.astype(F), F(1), F(0), 1e-5, _ident))
    assert abs(mixed.data[0, 0] - np.sqrt(7.0)) < 1e-5


@pytest.mark.parametrize("op", ["rms_norm", "layer_norm"])
def test_eps_1e_12_is_zero_in_fp16_statistics(op):
    zeros = np.zeros((1, 4))
    fn = getattr(ag, op)
    naive = fn(Tensor(zeros, policy="fp16_naive"), eps=1e-12)
    assert np.isnan(naive.data).all()  # 0 * (1 / sqrt(0 + 0)) = 0 * inf
    mixed = fn(Tensor(zeros, policy="fp16_mixed"), eps=1e-12)
    assert mixed.data.tolist() == [[0.0] * 4]  # fp32: eps survives, rstd = 1e6
    assert H(1e-12) == 0 and F(1e-12) > 0


def test_rms_norm_weight_gradient_by_hand():
    x = Tensor([[3.0, 4.0]], policy="fp64", requires_grad=True)
    w = Tensor([1.0, 2.0], policy="fp64", requires_grad=True)
    ag.rms_norm(x, w, eps=0.0).sum().backward()
    rstd = 1 / np.sqrt(12.5)
    np.testing.assert_allclose(w.grad, [3 * rstd, 4 * rstd], rtol=1e-15)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t: ag.rms_norm(t, eps=-1.0), ValueError, "eps"),
        (lambda t: ag.rms_norm(t, eps="1"), TypeError, "eps"),
        (
            lambda t: ag.rms_norm(t, Tensor(np.ones(2), policy="fp32")),
            ValueError,
            r"shape \(3,\)",
        ),
        (lambda t: ag.rms_norm(t, np.ones(3)), TypeError, "weight"),
        (lambda t: ag.layer_norm(t, eps=float("nan")), ValueError, "eps"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(Tensor(np.ones((2, 3)), policy="fp32"))
