"""The precision rules of the low-precision policies: result and gradient formats,
the matmul presets forward and backward, raw gradients, loss scaling and the
rounded accumulation of gradients."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import F, bits, same_bits

import lowprec
from lowprec import autograd as ag
from lowprec.amp.policy import as_policy
from lowprec.autograd import Tensor
from lowprec.nn import MLP
from lowprec.rounding._rne import round_rne


def representable(x, fmt):
    x = np.asarray(x)
    return np.array_equal(bits(lowprec.round(x, fmt)), bits(x))


@pytest.mark.parametrize("name", ["fp16_mixed", "fp16_pure", "bf16_mixed"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_forward_values_and_gradients_are_in_their_formats(name, layer_norm):
    policy = as_policy(name)
    fmt = policy.activations
    model = MLP(
        [10, 8, 4], policy=policy, activation="gelu", layer_norm=layer_norm, seed=2
    )
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 10))
    h = model.layers[0](x)
    seen = [h]
    for m in model.layers.modules[1:]:
        h = m(h)
        seen.append(h)
    loss = ag.cross_entropy(h, rng.integers(0, 4, 6))
    loss.backward()
    for t in seen:
        expected = fmt
        if layer_norm and "layer_norm" in policy.fp32_ops and t is seen[1]:
            expected = lowprec.fp32  # kept in fp32 as autocast does
        elif layer_norm and "layer_norm" in policy.fp32_ops and t is seen[2]:
            expected = lowprec.fp32  # gelu of an fp32 tensor: promotion
        assert t.fmt == expected
        assert representable(t.data, fmt) == (expected == fmt)
        # the gradient of an fp32 tensor is fp32, as in PyTorch
        gfmt = policy.gradients if expected == fmt else lowprec.fp32
        assert t.grad is not None and representable(t.grad, gfmt)
        assert representable(t.grad, policy.gradients) == (gfmt == fmt)
    assert loss.fmt == (lowprec.fp32 if "cross_entropy" in policy.fp32_ops else fmt)
    for _, p in model.named_parameters():
        assert p.fmt == policy.params and representable(p.data, policy.params)
        assert representable(p.grad, policy.gradients)
        same_bits(p.grad, round_rne(p.raw_grad, policy.gradients))


@pytest.mark.parametrize("name", ["fp16_mixed", "bf16_pure"])
def test_blas_path_equals_lowprec_matmul_unspecified(name):
    rng = np.random.default_rng(4)
    a = Tensor(rng.standard_normal((13, 40)), policy=name)
    b = Tensor(rng.standard_normal((40, 7)), policy=name, requires_grad=True)
    c = a @ b
    preset = as_policy(name).matmul
    expected = lowprec.matmul(a.data, b.data, preset, order="unspecified")
    same_bits(c.data, expected.astype(np.float32))
    g = round_rne(rng.standard_normal((13, 7)).astype(F), as_policy(name).gradients)
    c.backward(g)
    raw = lowprec.matmul(a.data.T, g, preset, order="unspecified", output="fp32")
    same_bits(b.raw_grad, raw.astype(np.float32))


def test_fp16_pure_matmul_accumulates_in_fp16():
    a = Tensor(np.ones((1, 4096)), policy="fp16_pure")
    b = Tensor(np.ones((4096, 2)), policy="fp16_pure")
    assert (a @ b).data.tolist() == [[2048.0, 2048.0]]  # the fp16 running sum stalls
    a = Tensor(np.ones((1, 4096)), policy="fp16_mixed")
    b = Tensor(np.ones((4096, 2)), policy="fp16_mixed")
    assert (a @ b).data.tolist() == [[4096.0, 4096.0]]


def test_fp16_pure_backward_matches_lowprec_matmul():
    rng = np.random.default_rng(6)
    a = Tensor(rng.standard_normal((5, 30)), policy="fp16_pure", requires_grad=True)
    b = Tensor(rng.standard_normal((30, 4)), policy="fp16_pure", requires_grad=True)
    c = a @ b
    same_bits(c.data, lowprec.matmul(a.data, b.data, "fp16_fp16acc").astype(F))
    g = round_rne(rng.standard_normal((5, 4)).astype(F), lowprec.fp16)
    c.backward(g)
    same_bits(a.grad, lowprec.matmul(g, b.data.T, "fp16_fp16acc").astype(F))
    same_bits(b.grad, lowprec.matmul(a.data.T, g, "fp16_fp16acc").astype(F))


def test_raw_grad_keeps_what_the_gradient_format_flushes():
    w = Tensor(np.full((3, 2), 0.5), policy="fp16_mixed", requires_grad=True)
    x = Tensor(np.full((4, 3), 1e-3), policy="fp16_mixed")
    y = x @ w
    y.backward(np.full((4, 2), 2e-6))  # 4 * 1e-3 * 2e-6 = 8e-9 per entry
    assert np.all(w.raw_grad > 0) and np.all(w.raw_grad < 2**-25)
    assert np.all(w.grad == 0)  # below half the smallest fp16 subnormal


@pytest.mark.parametrize("name", ["bf16_mixed", "bf16_pure"])
def test_loss_scale_by_power_of_two_scales_gradients_exactly(name):
    # bf16 has fp32's exponent range, so neither run underflows or overflows
    model = MLP([8, 16, 4], policy=name, layer_norm=True, seed=1)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((10, 8)), rng.integers(0, 4, 10)
    ag.cross_entropy(model(x), y).backward()
    plain = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    loss = ag.cross_entropy(model(x), y)
    assert loss.fmt == lowprec.fp32
    scaled = loss * 65536.0
    assert scaled.fmt == lowprec.fp32
    scaled.backward()
    for g, p in zip(plain, model.parameters(), strict=True):
        same_bits(p.grad / F(65536), g)


def test_fp32_loss_times_scale_stays_fp32_under_fp16():
    model = MLP([8, 16, 4], policy="fp16_mixed", seed=1)
    loss = ag.cross_entropy(model(np.ones((3, 8))), np.array([0, 1, 2]))
    scaled = loss * 2.0**17  # beyond fp16's max, fine in fp32
    assert scaled.fmt == lowprec.fp32 and np.isfinite(scaled.data)
    scaled.backward()
    assert loss.grad.tolist() == 2.0**17  # the gradient of an fp32 tensor is fp32
    assert all(np.isfinite(p.grad).all() for p in model.parameters())


def test_gradients_accumulate_rounded():
    policy = "bf16_pure"
    x = Tensor([1.0], policy=policy, requires_grad=True)
    # d/dx (x*a + x*b) = a + b with a, b bf16 values whose sum needs rounding
    a, b = 1.0, 2.0**-8 + 2.0**-15
    z = x * Tensor([a], policy=policy) + x * Tensor([b], policy=policy)
    z.backward(np.ones(1))
    b_rounded = float(lowprec.round(np.float32(b), "bf16"))
    expected = float(lowprec.round(np.float32(a + b_rounded), "bf16"))
    assert x.grad.tolist() == [expected]
    assert x.raw_grad.tolist() == [np.float32(a) + np.float32(b_rounded)]
    # a second backward accumulates into the leaf, not into intermediates
    z.backward(np.ones(1))

    def rnd(v):
        return float(lowprec.round(np.float32(v), "bf16"))

    # each contribution is added and rounded in turn (in graph order)
    either = {rnd(rnd(expected + a) + b_rounded), rnd(rnd(expected + b_rounded) + a)}
    assert either == {2.0, 2.015625}
    assert x.grad.tolist()[0] in either
    assert x.raw_grad.tolist() == [2 * (np.float32(a) + np.float32(b_rounded))]
