"""Modules (lowprec.nn) and optimizers (lowprec.optim) against hand-computed
NumPy references and the update-rounding effects they exist to show."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

import lowprec
from lowprec import autograd as ag
from lowprec.amp.policy import as_policy
from lowprec.nn import MLP, LayerNorm, Linear, Parameter, ReLU, Sequential
from lowprec.optim import SGD, Adam, clip_grad_norm_, rounded_sum

F = np.float32


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


# -- modules ----------------------------------------------------------------------


def test_mlp_structure_names_and_init():
    model = MLP([6, 5, 4, 3], policy="bf16_mixed", layer_norm=True, seed=9)
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "layers.3.weight",
        "layers.3.bias",
        "layers.4.weight",
        "layers.4.bias",
        "layers.6.weight",
        "layers.6.bias",
    ]
    shapes = [p.shape for p in model.parameters()]
    assert shapes == [(6, 5), (5,), (5,), (5,), (5, 4), (4,), (4,), (4,), (4, 3), (3,)]
    # weights: uniform(+-1/sqrt(n_in)) from seed [9, i], rounded once to bf16
    rng = np.random.default_rng([9, 1])
    w = rng.uniform(-(5**-0.5), 5**-0.5, (5, 4))
    expected = np.asarray(lowprec.round(w, "bf16"), dtype=F)
    same_bits(model.layers[3].weight.data, expected)
    assert np.all(model.layers[1].weight.data == 1)
    assert np.all(model.layers[1].bias.data == 0)
    same32 = MLP([6, 5, 4, 3], policy="fp32", layer_norm=True, seed=9)
    assert np.allclose(same32.layers[3].weight.data, expected, rtol=2**-8)
    other = MLP([6, 5, 4, 3], policy="bf16_mixed", layer_norm=True, seed=10)
    assert not np.array_equal(other.layers[0].weight.data, model.layers[0].weight.data)


def test_linear_and_sequential_forward():
    lin = Linear(3, 2, policy="fp32", seed=0)
    x = np.arange(6, dtype=F).reshape(2, 3)
    out = Sequential(lin, ReLU(policy="fp32"))(x)
    ref = np.maximum(x @ lin.weight.data + lin.bias.data, F(0))
    same_bits(out.data, ref)
    assert [n for n, _ in Sequential(lin).named_parameters()] == ["0.weight", "0.bias"]


def test_zero_grad_and_state_dict():
    model = MLP([4, 3, 2], policy="fp16_mixed", seed=0)
    ag.cross_entropy(model(np.ones((2, 4))), np.array([0, 1])).backward()
    assert all(
        p.grad is not None and p.raw_grad is not None for p in model.parameters()
    )
    model.zero_grad()
    assert all(p.grad is None and p.raw_grad is None for p in model.parameters())
    state = model.state_dict()
    fp32_model = MLP([4, 3, 2], policy="fp32", seed=1)
    fp32_model.load_state_dict(state)
    for (_, a), (_, b) in zip(
        model.named_parameters(), fp32_model.named_parameters(), strict=True
    ):
        same_bits(a.data, b.data)  # fp16 values are fp32 values
    with pytest.raises(ValueError, match="expected shape"):
        fp32_model.load_state_dict({**state, "layers.0.bias": np.zeros(5)})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: Linear(3, 2, policy="fp32", seed=0)(np.ones((4, 5))),
            r"Linear\(3, 2\).*\(batch, 3\).*\(4, 5\)",
        ),
        (
            lambda: MLP([3, 2], policy="fp32")(np.ones((4, 2))),
            r"\(batch, 3\).*\(4, 2\)",
        ),
        (lambda: LayerNorm(4, policy="fp32")(np.ones((2, 3))), r"LayerNorm\(4\)"),
        (
            lambda: MLP([3, 2], policy="fp32")(np.array([[1.0, np.nan, 0.0]])),
            "NaN or inf",
        ),
        (
            lambda: MLP([3, 2], policy="fp16_mixed")(np.array([[1.0, np.inf, 0.0]])),
            "NaN or inf",
        ),
        (lambda: MLP([3, 2], policy="fp16_halfway"), "unknown name"),
        (lambda: MLP([3], policy="fp32"), "at least two"),
        (lambda: MLP([3, 2], policy="fp32", activation="sigmoid"), "activation"),
        (
            lambda: Sequential(
                Linear(2, 2, policy="fp32", seed=0),
                Linear(2, 2, policy="fp16_mixed", seed=0),
            ),
            "different policies",
        ),
    ],
)
def test_module_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- optimizers: hand-computed updates ---------------------------------------------


def param(values, policy="fp32"):
    return Parameter(np.asarray(values, dtype=np.float64), policy=policy)


def test_sgd_plain_momentum_weight_decay_by_hand():
    w0 = np.array([1.0, -2.0, 0.5], dtype=F)
    grads = [
        np.array(g, dtype=F)
        for g in ([0.1, 0.2, -0.3], [0.3, -0.1, 0.2], [-0.2, 0.05, 0.1])
    ]
    lr, mu, wd = F(0.1), F(0.9), F(0.01)
    p = param(w0)
    opt = SGD([p], policy="fp32", lr=0.1, momentum=0.9, weight_decay=0.01)
    w, buf = w0.copy(), None
    for g in grads:
        p.grad = g.copy()
        opt.step()
        d = g + wd * w
        buf = d if buf is None else mu * buf + d
        w = w + (-lr * buf)
        same_bits(p.data, w)
    assert opt.step_count == 3
    q = param(w0)
    SGD([q], policy="fp32", lr=0.5).step()  # no gradient: zeros, no change
    same_bits(q.data, w0)


def test_adam_by_hand():
    w0 = np.array([0.3, -0.7], dtype=F)
    grads = [np.array(g, dtype=F) for g in ([0.5, -0.1], [0.2, 0.4], [-0.3, 0.1])]
    p = param(w0)
    opt = Adam(
        [p], policy="fp32", lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1
    )
    w, m, v = w0.copy(), np.zeros(2, F), np.zeros(2, F)
    for t, g in enumerate(grads, start=1):
        p.grad = g.copy()
        opt.step()
        g = g + F(0.1) * w
        m = F(0.8) * m + F(1 - 0.8) * g
        v = F(0.99) * v + F(1 - 0.99) * (g * g)
        step = F(0.01 / (1 - 0.8**t))
        denom = np.sqrt(v) / F(math.sqrt(1 - 0.99**t)) + F(1e-6)
        w = w + (-step * (m / denom))
        same_bits(p.data, w)


def test_optimizer_state_is_rounded_to_its_format():
    p = param([1.0, 2.0], "bf16_pure")
    opt = Adam([p], policy="bf16_pure", lr=1e-3)
    p.grad = np.asarray(lowprec.round(np.array([0.1, 0.3], F), "bf16"))
    opt.step()
    for state in (opt._m[0], opt._v[0]):
        same_bits(state, np.asarray(lowprec.round(state, "bf16")))
    assert opt._m[0][0] == np.asarray(lowprec.round(F(0.1) * F(0.1), "bf16"))


# -- master weights and update rounding ---------------------------------------------


def test_master_weights_keep_updates_that_fp16_swallows():
    # lr * g = 1e-4 is below half an fp16 ulp at 1 (2**-11 ~ 4.9e-4)
    g = np.full(4, 1.0, F)
    pure = param(np.ones(4), "fp16_pure")
    mixed = param(np.ones(4), "fp16_mixed")
    opt_pure = SGD([pure], policy="fp16_pure", lr=1e-4)
    opt_mixed = SGD([mixed], policy="fp16_mixed", lr=1e-4)
    for _ in range(20):
        pure.grad = g.copy()
        mixed.grad = g.copy()
        opt_pure.step()
        opt_mixed.step()
    assert np.all(pure.data == 1.0)  # w + dw == w every time
    master = opt_mixed.master_weights[0]
    ref = np.ones(4, F)
    for _ in range(20):
        ref = ref + (-F(1e-4) * g)
    same_bits(master, ref)
    same_bits(mixed.data, np.asarray(lowprec.round(ref, "fp16")))
    assert np.all(mixed.data < 1.0)


def _many_tiny_updates(policy, steps=400, n=32):
    p = param(np.ones(n), policy)
    opt = SGD([p], policy=policy, lr=1e-3)
    for _ in range(steps):
        p.grad = np.ones(n, F)  # dw = -1e-3, below half a bf16 ulp near 1
        opt.step()
    return p.data


def test_bf16_ties_to_even_stalls_where_kahan_and_stochastic_move(
    restore_num_threads,
):
    # the random bits do not depend on the thread count; one thread avoids the
    # cost of waking threads for 400 small roundings on a loaded machine
    numba.set_num_threads(1)
    exact = 1.0 - 400 * 1e-3
    assert np.all(_many_tiny_updates("bf16_pure") == 1.0)
    kahan = _many_tiny_updates("bf16_pure_kahan")
    assert np.all(np.abs(kahan - exact) <= 2**-8)  # one bf16 ulp at 0.6
    # stochastic rounding is unbiased: each step adds an independent zero-mean
    # error of variance <= ulp**2 / 4 <= 2**-16, so after 400 steps a weight's
    # standard deviation is <= 20 * 2**-8 ~ 0.078 and the mean of 256 weights is
    # within 4 sigma / 16 ~ 0.02 of the exact value
    sr = _many_tiny_updates("bf16_pure_sr", n=256)
    assert abs(sr.mean() - exact) < 0.02
    assert np.all(sr < 0.8)  # every weight moved (the exact move is 0.4)
    again = _many_tiny_updates("bf16_pure_sr", steps=20, n=256)
    same_bits(again, _many_tiny_updates("bf16_pure_sr", steps=20, n=256))
    other = as_policy("bf16_pure_sr").replace(seed=1)
    assert not np.array_equal(again, _many_tiny_updates(other, steps=20, n=256))


def test_rounded_sum_is_correctly_rounded():
    rng = np.random.default_rng(0)
    for fmt in (lowprec.fp16, lowprec.bf16):
        w = np.asarray(lowprec.round(rng.standard_normal(5000).astype(F), fmt))
        dw = (rng.standard_normal(5000) * 10.0 ** rng.integers(-9, 1, 5000)).astype(F)
        # a bf16 midpoint plus a tiny remainder: float32 alone would make a tie
        w = np.concatenate([w, np.array([1.0], F)])
        dw = np.concatenate([dw, np.array([2**-8 + 2**-30], F)])
        exact = w.astype(np.float64) + dw.astype(np.float64)  # exact for these
        expected = np.asarray(lowprec.round(exact, fmt)).astype(F)
        same_bits(rounded_sum(w, dw, fmt), expected)
    assert (
        rounded_sum(np.array([1.0], F), np.array([2**-8 + 2**-30], F), lowprec.bf16)[0]
        == 1 + 2**-7
    )


# -- gradients(), clipping, non-finite gradients --------------------------------------


def test_gradients_with_and_without_master():
    model = MLP([4, 3, 2], policy="fp16_mixed", seed=0)
    opt = SGD(model.parameters(), policy="fp16_mixed", lr=0.1)
    assert opt.grad_format == lowprec.fp32
    x, y = np.ones((2, 4)), np.array([0, 1])
    ag.cross_entropy(model(x), y).backward()
    grads = opt.gradients()
    assert opt.gradients() is grads  # cached until step/zero_grad
    for g, p in zip(grads, model.parameters(), strict=True):
        assert g is not p.grad and g.dtype == F
        same_bits(g, p.grad)
    ag.cross_entropy(model(x), y).backward()  # accumulation: new grads, new copies
    assert opt.gradients() is not grads
    opt.zero_grad()
    assert all(np.all(g == 0) for g in opt.gradients())

    pure = MLP([4, 3, 2], policy="fp16_pure", seed=0)
    opt = SGD(pure.parameters(), policy="fp16_pure", lr=0.1)
    assert opt.grad_format == lowprec.fp16
    ag.cross_entropy(pure(x), y).backward()
    assert all(
        g is p.grad for g, p in zip(opt.gradients(), pure.parameters(), strict=True)
    )


def test_clip_grad_norm_by_hand():
    a, b = param([0.0, 0.0]), param([0.0])
    opt = SGD([a, b], policy="fp32", lr=1.0)
    a.grad, b.grad = np.array([3.0, 4.0], F), np.array([12.0], F)
    assert clip_grad_norm_(opt, 26.0) == 13.0
    same_bits(a.grad, np.array([3.0, 4.0], F))  # below max_norm: untouched
    assert clip_grad_norm_(opt, 6.5) == 13.0
    coef = F(6.5 / (13.0 + 1e-6))
    same_bits(a.grad, np.array([3.0, 4.0], F) * coef)
    same_bits(b.grad, np.array([12.0], F) * coef)
    b.grad[0] = np.inf
    assert clip_grad_norm_(opt, 1.0) == math.inf
    same_bits(a.grad, np.array([3.0, 4.0], F) * coef)  # not scaled
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(opt, 0.0)


def test_clip_grad_norm_scales_master_gradients():
    p = param([1.0, 1.0], "fp16_mixed")
    opt = SGD([p], policy="fp16_mixed", lr=1.0)
    p.grad = np.array([3.0, 4.0], F)
    assert clip_grad_norm_(opt, 1.0) == 5.0
    same_bits(p.grad, np.array([3.0, 4.0], F))  # the fp16 grads are left alone
    opt.step()  # applies the clipped fp32 copies
    coef = F(1.0 / (5.0 + 1e-6))
    master = np.array([1.0, 1.0], F) + (-F(1.0) * (np.array([3.0, 4.0], F) * coef))
    same_bits(opt.master_weights[0], master)


@pytest.mark.parametrize("policy", ["fp16_mixed", "fp16_pure", "bf16_pure_kahan"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_never_reaches_the_weights(policy, bad):
    a, b = param([1.0, 2.0], policy), param([3.0], policy)
    opt = Adam([a, b], policy=policy, lr=0.1)
    a.grad = np.array([0.5, 0.5], F)
    b.grad = np.array([bad], F)
    before = [a.data.copy(), b.data.copy()]
    with pytest.raises(ValueError, match=r"params\[1\].*NaN or inf"):
        opt.step()
    same_bits(a.data, before[0])
    same_bits(b.data, before[1])
    assert opt.step_count == 0


def test_optimizer_bad_arguments():
    p = param([1.0], "fp16_mixed")
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], policy="fp32", lr=0.1)
    with pytest.raises(ValueError, match="expects fp32"):
        SGD([p], policy="fp32", lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        SGD([p], policy="fp16_mixed", lr=-1.0)
    with pytest.raises(ValueError, match="unknown name"):
        Adam([p], policy="fp16_mix")
    with pytest.raises(ValueError, match="betas"):
        Adam([p], policy="fp16_mixed", betas=(0.9, 1.0))
    opt = SGD([p], policy="fp16_mixed", lr=0.1)
    opt.lr = 0.5
    assert opt.lr == 0.5


@pytest.mark.parametrize("name", ["fp32", "fp16_mixed", "bf16_pure_kahan"])
def test_training_reduces_the_loss(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = MLP([5, 16, 2], policy=name, activation="gelu", layer_norm=True, seed=0)
    opt = Adam(model.parameters(), policy=name, lr=0.01)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ag.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
