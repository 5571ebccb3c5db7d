"""softmax: bit for bit against references written here, the causal mask, and
the precision rule (fp32 softmax vs fp16 statistics, max-subtraction)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from gradcheck import F, same_bits
from hypothesis import given, settings
from hypothesis import strategies as st

from lowprec import autograd as ag
from lowprec.autograd import Tensor

H = np.float16


def _ref_fp32(x, causal):
    """The float32 expression: -inf where masked, exp(x - max) / sum."""
    x = np.asarray(x, F)
    if causal:
        t_q, t_k = x.shape[-2:]
        visible = np.arange(t_k)[None, :] <= np.arange(t_q)[:, None]
        x = np.where(visible, x, F(-np.inf))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _ref_fp16_steps(x):
    """fp16 statistics: each step in float32, rounded to fp16 by NumPy."""
    x = np.asarray(x, F)
    z = (x - x.max(axis=-1, keepdims=True)).astype(H).astype(F)
    e = np.exp(z).astype(H).astype(F)
    s = e.sum(axis=-1, keepdims=True).astype(H).astype(F)
    return (e / s).astype(H).astype(F)


def _logits(shape, seed, scale=4.0):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    return x.astype(H).astype(F)  # fp16 values, so every policy takes them as is


@pytest.mark.parametrize("causal", [False, True])
def test_fp32_policy_is_the_float32_expression(causal):
    x = _logits((2, 3, 5, 5), 0)
    got = ag.softmax(Tensor(x, policy="fp32"), causal=causal)
    same_bits(got.data, _ref_fp32(x, causal))


@pytest.mark.parametrize("causal", [False, True])
def test_fp32_softmax_under_fp16_mixed_rounds_once_to_fp32(causal):
    x = _logits((4, 6, 6), 1)
    y = ag.softmax(Tensor(x, policy="fp16_mixed"), causal=causal)
    assert y.fmt.name == "fp32"  # "softmax" is one of fp16_mixed's fp32 ops
    same_bits(y.data, _ref_fp32(x, causal))
    xb = Tensor(x, policy="bf16_mixed")  # rounds the fp16 values to bf16
    b = ag.softmax(xb, causal=causal)
    assert b.fmt.name == "fp32"
    same_bits(b.data, _ref_fp32(xb.data, causal))


def test_fp16_statistics_round_every_step():
    x = _logits((64, 7), 2, scale=6.0)
    y = ag.softmax(Tensor(x, policy="fp16_naive"))
    assert y.fmt.name == "fp16"
    same_bits(y.data, _ref_fp16_steps(x))


def test_bf16_pure_keeps_softmax_in_fp32_and_fp16_pure_does_not():
    x = Tensor(_logits((8, 9), 3), policy="bf16_pure")
    y = ag.softmax(x)
    assert y.fmt.name == "fp32"  # bf16_pure keeps all four fp32 ops
    same_bits(y.data, _ref_fp32(x.data, False))
    pure16 = ag.softmax(Tensor(x, policy="fp16_pure"))
    assert pure16.fmt.name == "fp16"


@pytest.mark.parametrize("policy", ["fp32", "fp16_naive", "bf16_mixed"])
def test_causal_mask_zeroes_future_positions_exactly(policy):
    x = Tensor(_logits((2, 5, 5), 4), policy=policy, requires_grad=True)
    y = ag.softmax(x, causal=True)
    future = np.triu(np.ones((5, 5), bool), k=1)
    assert (y.data.view(np.uint32)[:, future] == 0).all()  # +0.0, bit for bit
    y.backward(np.random.default_rng(5).standard_normal(y.shape))
    assert (x.grad[:, future] == 0).all()
    assert y.data[:, 0, 0].tolist() == [1.0, 1.0]  # the first query sees itself only


def test_max_subtraction_keeps_fp16_softmax_finite_where_exp_overflows():
    x = Tensor([[12.0, 11.5, 0.0]], policy="fp16_naive")
    assert math.isinf(ag.exp(x).data[0, 0])  # e**12 > 65504
    y = ag.softmax(x)
    assert np.isfinite(y.data).all()
    same_bits(y.data, _ref_fp16_steps(x.data))
    naive = ag.softmax(x, subtract_max=False)
    assert np.isnan(naive.data[0, :2]).all()  # inf / inf
    # the fp32 softmax of fp16_mixed needs no subtraction at these sizes
    mixed = ag.softmax(Tensor(x.data, policy="fp16_mixed"), subtract_max=False)
    assert np.isfinite(mixed.data).all()


def test_bf16_statistics_with_ml_dtypes():
    bf = ml_dtypes.bfloat16
    policy = ag.Tensor([0.0], policy="bf16_pure").policy.replace(
        name="bf16_no_fp32_ops", fp32_ops=frozenset()
    )
    x = _logits((16, 5), 6).astype(bf).astype(F)
    y = ag.softmax(Tensor(x, policy=policy))
    z = (x - x.max(axis=-1, keepdims=True)).astype(bf).astype(F)
    e = np.exp(z).astype(bf).astype(F)
    s = e.sum(axis=-1, keepdims=True).astype(bf).astype(F)
    same_bits(y.data, (e / s).astype(bf).astype(F))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t: ag.softmax(t, axis=0, causal=True), ValueError, "causal"),
        (lambda t: ag.softmax(ag.reshape(t, (6,)), causal=True), ValueError, "2-D"),
        (lambda t: ag.softmax(t, causal=1), TypeError, "causal"),
        (lambda t: ag.softmax(t, axis=3), ValueError, "axis"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(Tensor(np.ones((2, 3)), policy="fp32"))


@settings(max_examples=60)
@given(
    st.integers(1, 5),
    st.integers(1, 9),
    st.floats(-30, 30, width=16),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_hypothesis_fp32_and_fp16_statistics(rows, cols, shift, seed, causal):
    x = _logits((rows, cols), seed, scale=8.0) + F(shift)
    x = x.astype(H).astype(F)
    if causal:
        x = np.broadcast_to(x[:, :1], (rows, rows)).copy() + _logits((rows, rows), seed)
        x = x.astype(H).astype(F)
    same_bits(
        ag.softmax(Tensor(x, policy="fp32"), causal=causal).data, _ref_fp32(x, causal)
    )
    if not causal:
        same_bits(ag.softmax(Tensor(x, policy="fp16_naive")).data, _ref_fp16_steps(x))
