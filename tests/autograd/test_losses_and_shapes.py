"""cross_entropy over (B, T, V) with the optional z-loss, and concat / split: the
forward against references written here, the rules and the bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import F, same_bits

from lowprec import autograd as ag
from lowprec.autograd import Tensor


def _logits(shape, seed):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(F)


def test_btv_cross_entropy_is_the_mean_over_every_position():
    x = _logits((2, 3, 7), 0)
    labels = np.array([[0, 6, 2], [1, 1, 5]])
    loss = ag.cross_entropy(Tensor(x, policy="fp64"), labels).item()
    x64 = x.astype(np.float64)
    want = np.mean(
        [
            math.log(sum(math.exp(v) for v in x64[b, t])) - x64[b, t, labels[b, t]]
            for b in range(2)
            for t in range(3)
        ]
    )
    assert abs(loss - want) < 1e-14


def test_btv_equals_the_2d_loss_of_the_flattened_rows_bit_for_bit():
    x = _logits((4, 5, 9), 1)
    labels = np.random.default_rng(2).integers(0, 9, (4, 5))
    for name in ("fp32", "fp16_mixed", "fp16_naive", "bf16_pure"):
        t3 = Tensor(x, policy=name, requires_grad=True)
        t2 = Tensor(x.reshape(20, 9), policy=name, requires_grad=True)
        a = ag.cross_entropy(t3, labels)
        b = ag.cross_entropy(t2, labels.reshape(-1))
        same_bits(a.data, b.data)
        assert a.fmt is b.fmt
        a.backward()
        b.backward()
        same_bits(t3.grad.reshape(20, 9), t2.grad)


def test_z_loss_adds_the_coefficient_times_log_z_squared():
    x = _logits((3, 2, 5), 3).astype(np.float64)
    labels = np.array([[0, 1], [2, 3], [4, 0]])
    plain = ag.cross_entropy(Tensor(x, policy="fp64"), labels).item()
    log_z = np.log(np.exp(x).sum(axis=-1))
    for z_loss, c in ((True, 1e-4), (0.01, 0.01), (False, 0.0), (0.0, 0.0)):
        got = ag.cross_entropy(Tensor(x, policy="fp64"), labels, z_loss=z_loss).item()
        assert abs(got - (plain + c * np.mean(log_z**2))) < 1e-13


def test_z_loss_gradient_pulls_log_z_towards_zero():
    x = Tensor(np.full((1, 4), 3.0), policy="fp64", requires_grad=True)
    ag.cross_entropy(x, np.array([0]), z_loss=0.5).backward()
    log_z = 3.0 + math.log(4.0)
    want = np.full(4, 0.25 * (1 + 2 * 0.5 * log_z))
    want[0] -= 1.0
    np.testing.assert_allclose(x.grad[0], want, rtol=1e-14)


@pytest.mark.parametrize(
    ("labels", "z_loss", "error", "match"),
    [
        (np.zeros((2, 2), int), False, ValueError, r"shape \(2, 3\)"),
        (np.full((2, 3), -1), False, ValueError, "no index is ignored"),
        (np.full((2, 3), 4), False, ValueError, r"\[0, 4\)"),
        (np.zeros((2, 3)), False, TypeError, "integers"),
        (np.zeros((2, 3), int), -1.0, ValueError, "z_loss"),
        (np.zeros((2, 3), int), "yes", ValueError, "z_loss"),
    ],
)
def test_cross_entropy_bad_input(labels, z_loss, error, match):
    with pytest.raises(error, match=match):
        ag.cross_entropy(
            Tensor(np.ones((2, 3, 4)), policy="fp32"), labels, z_loss=z_loss
        )


def test_split_and_concat_are_exact_and_keep_or_widen_formats():
    x = Tensor(_logits((2, 3, 12), 4), policy="fp16_mixed", requires_grad=True)
    q, k, v = ag.split(x, 3, axis=-1)
    same_bits(q.data, x.data[..., :4])
    same_bits(v.data, x.data[..., 8:])
    assert q.fmt is x.fmt
    joined = ag.concat([v, q, k], axis=-1)
    same_bits(joined.data, np.concatenate([v.data, q.data, k.data], axis=-1))
    g = np.random.default_rng(5).standard_normal(joined.shape).astype(F)
    g = g.astype(np.float16).astype(F)
    joined.backward(g)
    same_bits(x.grad, np.concatenate([g[..., 4:8], g[..., 8:], g[..., :4]], axis=-1))
    b = Tensor([[1.0 + 2**-8]], "bf16", policy="fp32")
    h = Tensor([[1.0 + 2**-10]], "fp16", policy="fp32")
    assert ag.concat([b, h], axis=1).fmt.name == "fp32"  # neither holds the other
    assert ag.concat([h, Tensor([[1.5]], "fp8_e4m3", policy="fp32")], 1).fmt is h.fmt


def test_split_at_indices_and_unused_parts():
    x = Tensor(np.arange(10.0), policy="fp32", requires_grad=True)
    a, b, c = ag.split(x, [2, 7])
    assert [t.shape for t in (a, b, c)] == [(2,), (5,), (3,)]
    b.sum().backward()
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t: ag.split(t, 5, axis=1), ValueError, "equal parts"),
        (lambda t: ag.split(t, [3, 1], axis=1), ValueError, "increasing"),
        (lambda t: ag.split(t, 2, axis=2), ValueError, "out of range"),
        (
            lambda t: ag.concat([t, Tensor(np.ones((2, 5)), policy="fp32")]),
            ValueError,
            "outside axis",
        ),
        (lambda t: ag.concat(t), TypeError, "list"),
        (lambda t: ag.concat([]), ValueError, "empty"),
        (lambda t: ag.concat([t, np.ones((2, 4))]), TypeError, r"tensors\[1\]"),
    ],
)
def test_shape_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(Tensor(np.ones((2, 4)), policy="fp32"))
