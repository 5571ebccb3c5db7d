"""The mixed-precision literature, reproduced on the bundled digits in seconds.

Each test states its margins. The effects are made visible the way the papers
describe them: a small loss (here a loss weight of 2**-20, with the SGD learning
rate raised by 2**20 so that fp32 trains exactly as with weight 1) for gradient
underflow, and small learning rates for swallowed weight updates.

- Micikevicius et al., "Mixed Precision Training", ICLR 2018: fp16 gradients
  underflow without loss scaling (section 3.2), fp16 weight updates are lost
  without fp32 master weights (section 3.1).
- Zamirai et al., "Revisiting BFloat16 Training", 2020: bf16 weights updated with
  round-to-nearest stagnate; stochastic rounding or Kahan summation recover.
- Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019: bf16
  keeps fp32's exponent range and needs no loss scaling.
- PyTorch ``GradScaler``: a dynamic scale backs off and skips the overflowing
  steps.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from lowprec import nn, optim
from lowprec.amp.scaler import LossScaler
from lowprec.autograd import cross_entropy
from lowprec.data.datasets import Dataset, load_digits
from lowprec.training import telemetry
from lowprec.training.compare import compare
from lowprec.training.loop import TrainConfig, train

DIGITS = load_digits()
TINY = 2.0**-20  # the loss weight that stands for a tiny loss


@functools.cache
def run(**kw):
    """One training run on digits (cached: tests share their fp32 baselines)."""
    return train(TrainConfig(**kw), dataset=DIGITS)


def tiny_loss(policy, **kw):
    """SGD at an effective learning rate of 0.5 with the loss times 2**-20."""
    return run(
        policy=policy, loss_weight=TINY, lr=0.5 / TINY, momentum=0.0, epochs=3, **kw
    )


def loss_drop(result):
    """How much the test loss of the weights, evaluated in fp32, went down."""
    return result.evals[0]["test_loss_fp32"] - result.evals[-1]["test_loss_fp32"]


def initial_weights(policy):
    model = nn.MLP([64, 64, 10], policy=policy, seed=0)
    return [p.data.copy() for p in model.parameters()]


# -- (1) fp16 gradients underflow without loss scaling -----------------------------


def test_fp16_without_loss_scaling_loses_its_gradients_and_accuracy():
    fp32 = tiny_loss("fp32")
    plain = tiny_loss("fp16_mixed")
    assert fp32.summary["test_accuracy"] > 0.9
    # (softmax - onehot) / 32 * 2**-20 lies below half of fp16's smallest
    # subnormal 2**-24 for almost every value: at least 90% flush to zero, and
    # the model learns nothing (accuracy at least 50 points below fp32)
    assert plain.summary["output_flushed_fraction"] >= 0.9
    assert plain.summary["test_accuracy"] <= fp32.summary["test_accuracy"] - 0.5
    for scaling in (
        {"loss_scale": "static", "init_scale": 2.0**16},
        {"loss_scale": "dynamic"},
    ):
        scaled = tiny_loss("fp16_mixed", **scaling)
        # times 2**16 the logit gradients fit fp16, but for those of the very
        # unlikely classes (softmax below 2**-15): under 10% flush, and the
        # accuracy is fp32's within 2 points
        assert scaled.summary["output_flushed_fraction"] <= 0.1, scaling
        assert scaled.summary["flushed_fraction"] <= 0.01, scaling
        assert (
            abs(scaled.summary["test_accuracy"] - fp32.summary["test_accuracy"]) <= 0.02
        ), scaling
        assert scaled.summary["skipped_steps"] == 0


# -- (2) fp16 weights updated in fp16 stall at small learning rates -------------------


def test_fp16_weights_stall_at_small_lr_while_master_weights_train_like_fp32():
    """lr 2e-4 without momentum: lr * g is below half an fp16 ulp of almost every
    weight (2**-12 |w|), so fp16_pure's updates vanish; fp32 master weights add
    them up until they move the fp16 copy."""
    kw = {"lr": 2e-4, "momentum": 0.0, "epochs": 3}
    fp32 = run(policy="fp32", **kw)
    pure = run(policy="fp16_pure", **kw)
    mixed = run(policy="fp16_mixed", **kw)
    assert loss_drop(fp32) > 1e-3  # fp32 makes measurable progress
    assert pure.summary["swallowed_fraction"] >= 0.9
    assert loss_drop(pure) <= 0.2 * loss_drop(fp32)
    assert mixed.summary["swallowed_fraction"] <= 0.01  # fp32 masters keep them
    assert loss_drop(mixed) == pytest.approx(loss_drop(fp32), rel=0.05)
    # the fp16 weights used by fp16_mixed did move: the masters carried them
    start = initial_weights("fp16_mixed")
    moved = sum(
        int(np.count_nonzero(p.data != w0))
        for p, w0 in zip(mixed.model.parameters(), start, strict=True)
    )
    assert moved > 0.5 * sum(w0.size for w0 in start)


# -- (3) bf16 weights: round to nearest stagnates, SR and Kahan recover ----------------


def test_bf16_round_to_nearest_stagnates_stochastic_rounding_and_kahan_recover():
    """lr 1e-3 with momentum 0.9: most updates are below half a bf16 ulp of their
    weight (2**-9 |w|)."""
    kw = {"lr": 1e-3, "momentum": 0.9, "epochs": 6}
    fp32 = run(policy="fp32", **kw)
    rne = run(policy="bf16_pure", **kw)
    assert fp32.summary["test_accuracy"] > 0.6
    assert rne.summary["swallowed_fraction"] >= 0.8
    # stagnation: at least 20 accuracy points and half the loss drop lost
    assert rne.summary["test_accuracy"] <= fp32.summary["test_accuracy"] - 0.2
    assert loss_drop(rne) <= 0.5 * loss_drop(fp32)
    for policy in ("bf16_pure_sr", "bf16_pure_kahan"):
        fixed = run(policy=policy, **kw)
        # the same stored weights often do not move in one step (the update
        # stays in expectation, or in the Kahan buffer), yet fp32 is recovered:
        # within 2 accuracy points and 3% of its loss drop
        assert (
            abs(fixed.summary["test_accuracy"] - fp32.summary["test_accuracy"]) <= 0.02
        ), policy
        assert loss_drop(fixed) == pytest.approx(loss_drop(fp32), rel=0.03), policy


# -- (4) bf16 needs no loss scaling ----------------------------------------------------


def test_bf16_mixed_trains_without_loss_scaling():
    fp32 = tiny_loss("fp32")
    bf16 = tiny_loss("bf16_mixed")
    # bf16's smallest normal is 2**-126, as fp32's: nothing flushes
    assert bf16.summary["output_flushed_fraction"] == 0.0
    assert bf16.summary["flushed_fraction"] == 0.0
    assert bf16.summary["subnormal_fraction"] == 0.0
    assert abs(bf16.summary["test_accuracy"] - fp32.summary["test_accuracy"]) <= 0.02


# -- (5) a too-large scale overflows; the dynamic scaler backs off ---------------------


def test_too_large_static_scale_overflows_and_dynamic_scaling_recovers():
    kw = {"lr": 0.5, "momentum": 0.0, "epochs": 3, "init_scale": 2.0**40}
    fp32 = run(policy="fp32", lr=0.5, momentum=0.0, epochs=3)
    static = run(policy="fp16_mixed", loss_scale="static", **kw)
    # every step overflows (the fp16 gradients are inf) and is skipped: the
    # weights never change
    assert static.summary["skipped_steps"] == static.summary["steps"]
    for p, w0 in zip(
        static.model.parameters(), initial_weights("fp16_mixed"), strict=True
    ):
        assert np.array_equal(p.data, w0)
    dynamic = run(policy="fp16_mixed", loss_scale="dynamic", **kw)
    skipped = [s["skipped"] for s in dynamic.steps]
    k = sum(skipped)
    # it halves the scale at each overflow: the first k steps are skipped (2**40
    # down to a scale at which the gradients fit fp16's 65504, between 2**10 and
    # 2**30), then every step is applied and the scale stays (growth needs 2000)
    k0 = skipped.index(False)
    assert 10 <= k0 <= 30 and skipped[:k0] == [True] * k0
    # later, as the gradients grow, an occasional step overflows again and the
    # scale halves once more; no more than 5 such steps
    assert k - k0 <= 5
    scales = [s["scale"] for s in dynamic.steps] + [dynamic.summary["final_scale"]]
    for i, skip in enumerate(skipped):
        assert scales[i + 1] == scales[i] / 2 if skip else scales[i], i
    assert dynamic.summary["final_scale"] == 2.0 ** (40 - k)
    # it recovers: within 2 accuracy points of fp32, which had k steps more
    assert dynamic.summary["test_accuracy"] >= fp32.summary["test_accuracy"] - 0.02


# -- loss scaling by 2**k is exact when nothing under- or overflows --------------------


def scaled_gradients(scale, loss_weight=1.0):
    """The unscaled fp32 master gradients of one batch under fp16_mixed, and
    whether any parameter gradient was flushed, subnormal or overflowed."""
    model = nn.MLP([64, 64, 10], policy="fp16_mixed", seed=0)
    opt = optim.SGD(model.parameters(), policy="fp16_mixed", lr=0.1)
    scaler = LossScaler("static", init_scale=scale)
    loss = cross_entropy(model(DIGITS.x_train[:32]), DIGITS.y_train[:32])
    scaler.scale(loss * loss_weight).backward()
    clean = True
    for p in model.parameters():
        s = telemetry.gradient_summary(p.raw_grad, p.grad, "fp16")
        clean &= s["flushed"] == s["subnormal"] == s["overflow"] == 0
    scaler.unscale_(opt)
    return [g.copy() for g in opt.gradients()], clean


def test_power_of_two_loss_scaling_gives_bit_identical_gradients():
    a, clean_a = scaled_gradients(2.0**10)
    for k in (14, 20):
        b, clean_b = scaled_gradients(2.0**k)
        assert clean_a and clean_b  # telemetry: no flush, subnormal or overflow
        for ga, gb in zip(a, b, strict=True):
            assert np.array_equal(ga.view(np.uint32), gb.view(np.uint32)), k
    # the control: unscaled, some weight gradients are subnormal in fp16 (they
    # keep fewer bits) and the unscaled results differ
    c, clean_c = scaled_gradients(1.0)
    assert not clean_c
    assert any(not np.array_equal(gc, ga) for gc, ga in zip(c, a, strict=True))


# -- bad input ------------------------------------------------------------------------


def test_inf_gradient_never_reaches_the_weights_without_a_scaler():
    # loss weight 2**24: the fp16 logit gradients overflow to inf in every step;
    # with no scaler the loop still skips those steps
    r = run(policy="fp16_mixed", loss_weight=2.0**24, epochs=1)
    assert r.summary["skipped_steps"] == r.summary["steps"] > 0
    assert r.summary["overflow_fraction"] > 0
    for p, w0 in zip(r.model.parameters(), initial_weights("fp16_mixed"), strict=True):
        assert np.array_equal(p.data, w0)


def test_nan_or_inf_in_the_data_raises():
    for part, value in (("x_train", np.nan), ("x_test", np.inf)):
        fields = DIGITS._asdict()
        x = fields[part].copy()
        x[3, 5] = value
        fields[part] = x
        with pytest.raises(ValueError, match=f"{part} contains NaN or inf"):
            train(TrainConfig(epochs=1), dataset=Dataset(**fields))


def test_unknown_policy_raises():
    with pytest.raises(ValueError, match="fp16_mixed"):  # the message lists them
        train(policy="fp12")
    with pytest.raises(ValueError, match="fp12"):
        compare(["fp32", "fp12"])
