"""LossScaler against PyTorch GradScaler's rules, on scripted sequences of steps.

The expected scales below are written out by hand from the rules (PyTorch's
``_amp_update_scale_`` kernel, Megatron-LM's hysteresis), not taken from earlier
runs; the unscaling reference is plain NumPy arithmetic written here.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowprec.amp.scaler import LossScaler

F32_MAX = float(np.finfo(np.float32).max)


class FakeOptimizer:
    """The smallest optimizer the scaler accepts; it records what step() saw."""

    def __init__(self, *shapes, grad_format="fp32", dtype=np.float32):
        self.grads = [np.zeros(s, dtype=dtype) for s in (shapes or [(3,)])]
        self.grad_format = grad_format
        self.steps = 0
        self.applied = []  # copies of the gradients at each step() call

    def gradients(self):
        return self.grads

    def step(self):
        self.steps += 1
        self.applied.append([g.copy() for g in self.grads])

    def fill(self, value):
        """Set every gradient element to ``value`` (as a backward pass would)."""
        for g in self.grads:
            g[...] = value


def run(scaler, opt, clean):
    """One training step whose (scaled) gradients are finite or hold an inf."""
    opt.fill(1.0 if clean else np.inf)
    applied = scaler.step(opt)
    scaler.update()
    return applied


def tracker(scaler):
    return scaler.state_dict()["_growth_tracker"]


# ------------------------------------------------------------- dynamic rules


def test_defaults_are_pytorchs():
    s = LossScaler()
    assert s.mode == "dynamic"
    assert s.get_scale() == 65536.0
    d = s.state_dict()
    assert (d["growth_factor"], d["backoff_factor"], d["growth_interval"]) == (
        2.0,
        0.5,
        2000,
    )
    assert d["_growth_tracker"] == 0
    assert s.min_scale is None and s.hysteresis == 1


def test_growth_after_exactly_growth_interval_clean_steps():
    s, opt = LossScaler(init_scale=8.0, growth_interval=3), FakeOptimizer()
    scales = []
    for _ in range(7):
        assert run(s, opt, clean=True)
        scales.append(s.get_scale())
    assert scales == [8, 8, 16, 16, 16, 32, 32]
    assert tracker(s) == 1


def test_growth_at_default_interval_not_one_step_before():
    s, opt = LossScaler(), FakeOptimizer()
    for _ in range(1999):
        run(s, opt, clean=True)
    assert s.get_scale() == 2.0**16 and tracker(s) == 1999
    run(s, opt, clean=True)
    assert s.get_scale() == 2.0**17 and tracker(s) == 0


def test_backoff_and_counter_reset_on_inf():
    s, opt = LossScaler(init_scale=64.0, growth_interval=3), FakeOptimizer()
    run(s, opt, True)
    run(s, opt, True)
    assert tracker(s) == 2
    assert not run(s, opt, False)
    assert s.get_scale() == 32.0 and tracker(s) == 0
    # the two clean steps before the overflow no longer count
    run(s, opt, True)
    run(s, opt, True)
    assert s.get_scale() == 32.0
    run(s, opt, True)
    assert s.get_scale() == 64.0
    # consecutive overflows back off each time
    for expected in (32.0, 16.0, 8.0):
        run(s, opt, False)
        assert s.get_scale() == expected


def test_nan_counts_as_overflow():
    s, opt = LossScaler(init_scale=4.0), FakeOptimizer(3, (2, 2))
    opt.grads[1][1, 0] = np.nan
    assert not s.step(opt)
    assert s.found_inf
    s.update()
    assert s.get_scale() == 2.0 and not s.found_inf


def test_skipped_steps_do_not_call_optimizer_step():
    s, opt = LossScaler(init_scale=2.0), FakeOptimizer()
    pattern = [True, False, True, False, False, True]
    results = [run(s, opt, clean) for clean in pattern]
    assert results == pattern
    assert opt.steps == 3
    # the updates that ran saw finite, unscaled gradients only
    for grads in opt.applied:
        assert all(np.isfinite(g).all() for g in grads)


def test_step_returns_found_inf_before_update():
    s, opt = LossScaler(), FakeOptimizer()
    opt.fill(np.inf)
    assert s.step(opt) is False
    assert s.found_inf is True
    assert s.get_scale() == 65536.0  # changes in update(), not in step()
    s.update()
    assert s.found_inf is False


@pytest.mark.parametrize("init", [2.0**127, F32_MAX, 2.0**127 * 1.5])
def test_no_growth_to_inf(init):
    s, opt = LossScaler(init_scale=init, growth_interval=2), FakeOptimizer()
    for _ in range(6):
        run(s, opt, True)
        assert s.get_scale() == init
        assert np.isfinite(s.get_scale())
    assert tracker(s) == 0  # the counter still resets at each interval


def test_growth_up_to_the_last_finite_power_of_two():
    s, opt = LossScaler(init_scale=2.0**125, growth_interval=1), FakeOptimizer()
    seen = []
    for _ in range(4):
        run(s, opt, True)
        seen.append(s.get_scale())
    assert seen == [2.0**126, 2.0**127, 2.0**127, 2.0**127]


def test_scale_is_held_in_float32():
    s, opt = (
        LossScaler(init_scale=0.1, growth_factor=1.1, growth_interval=1),
        (FakeOptimizer()),
    )
    assert s.get_scale() == float(np.float32(0.1))
    run(s, opt, True)
    # PyTorch: float32 scale times a double factor, rounded to float32
    expected = float(np.float32(float(np.float32(0.1)) * 1.1))
    assert s.get_scale() == expected
    assert expected != float(np.float32(0.1)) * 1.1
    # and on a backoff
    s = LossScaler(init_scale=3.0, backoff_factor=0.3)
    run(s, opt, False)
    assert s.get_scale() == float(np.float32(3.0 * 0.3)) != 3.0 * 0.3


def test_min_scale_floor():
    s = LossScaler(init_scale=4.0, min_scale=1.5, growth_interval=2)
    opt = FakeOptimizer()
    seen = []
    for _ in range(4):
        run(s, opt, False)
        seen.append(s.get_scale())
    assert seen == [2.0, 1.5, 1.5, 1.5]
    # growth from the floor follows the usual rule
    run(s, opt, True)
    run(s, opt, True)
    assert s.get_scale() == 3.0


def test_without_min_scale_backoff_goes_below_one():
    s, opt = LossScaler(init_scale=2.0), FakeOptimizer()
    for _ in range(3):
        run(s, opt, False)
    assert s.get_scale() == 0.25


def test_hysteresis_megatron_rule():
    # Megatron-LM DynamicGradScaler: an overflow resets the growth counter and
    # uses up one unit of hysteresis; backoff when none is left; a full clean
    # growth interval restores it.
    s = LossScaler(init_scale=64.0, growth_interval=3, hysteresis=2)
    opt = FakeOptimizer()
    script = [
        (False, 64.0),  # first overflow tolerated (step still skipped)
        (False, 32.0),  # second: back off
        (False, 16.0),  # and every further one until a growth
        (True, 16.0),
        (True, 16.0),
        (True, 32.0),  # growth; hysteresis restored to 2
        (False, 32.0),  # tolerated again
        (True, 32.0),  # one clean step does not restore it...
        (False, 16.0),  # ...so this non-consecutive overflow backs off
    ]
    for clean, expected in script:
        assert run(s, opt, clean) is clean
        assert s.get_scale() == expected
    assert opt.steps == 4


def test_hysteresis_tolerated_overflow_resets_growth_counter():
    s = LossScaler(init_scale=8.0, growth_interval=3, hysteresis=2)
    opt = FakeOptimizer()
    for clean in (True, True, False, True, True):
        run(s, opt, clean)
    assert s.get_scale() == 8.0 and tracker(s) == 2
    run(s, opt, True)
    assert s.get_scale() == 16.0


def test_hysteresis_and_min_scale_together():
    s = LossScaler(init_scale=8.0, min_scale=4.0, hysteresis=3)
    opt = FakeOptimizer()
    seen = []
    for _ in range(5):
        run(s, opt, False)
        seen.append(s.get_scale())
    assert seen == [8.0, 8.0, 4.0, 4.0, 4.0]


def test_static_mode_never_changes_but_still_skips():
    s = LossScaler("static", init_scale=128.0, growth_interval=1)
    opt = FakeOptimizer()
    results = [run(s, opt, clean) for clean in (True, False, True, True, False)]
    assert results == [True, False, True, True, False]
    assert s.get_scale() == 128.0
    assert opt.steps == 3
    assert tracker(s) == 0
    # the updates that ran used gradients divided by the static scale
    assert opt.applied[0][0].tolist() == [1 / 128] * 3


def test_two_optimizers_share_one_update():
    s = LossScaler(init_scale=16.0)
    a, b = FakeOptimizer(), FakeOptimizer()
    a.fill(1.0)
    b.fill(np.inf)
    assert s.step(a) is True and s.step(b) is False
    assert (a.steps, b.steps) == (1, 0)
    s.update()
    assert s.get_scale() == 8.0


def test_overflow_during_unscale_counts_as_inf():
    # Scale below 1: a finite gradient can overflow when unscaled; the step is
    # skipped rather than handing an inf to the optimizer.
    s = LossScaler(init_scale=0.25)
    opt = FakeOptimizer()
    opt.fill(1e38)
    assert s.step(opt) is False and opt.steps == 0


# ------------------------------------------------------------------ unscaling


def test_unscaled_values_are_grad_times_float32_reciprocal_bit_for_bit():
    rng = np.random.default_rng(5)
    n = 4000
    # magnitudes from float32 subnormals to near float32 max, both signs
    g = (rng.choice([-1.0, 1.0], n) * 2.0 ** rng.uniform(-149, 127, n)).astype(
        np.float32
    )
    g[:4] = [0.0, -0.0, F32_MAX, np.float32(1e-45)]
    for scale in (3.0, 1000.0, 0.7, 65536.0 * 1.5):
        s = LossScaler("static", init_scale=scale)
        opt = FakeOptimizer(n)
        opt.grads[0][:] = g
        s.unscale_(opt)
        # reference: 1/scale in float64, rounded to float32; the float32
        # product is exact in float64 (24 + 24 bits) and rounded once.
        s32 = float(np.float32(scale))
        r = np.float64(np.float32(1.0 / s32))
        with np.errstate(over="ignore"):  # F32_MAX / 0.7 overflows, as it should
            want = (g.astype(np.float64) * r).astype(np.float32)
        np.testing.assert_array_equal(
            opt.grads[0].view(np.uint32), want.view(np.uint32)
        )
        if scale == 3.0:
            # the rule is not float32 division (so this test can tell them apart)
            div = g / np.float32(3.0)
            assert np.count_nonzero(div.view(np.uint32) != want.view(np.uint32)) > 0


def test_float64_gradients_are_unscaled_in_float64():
    s = LossScaler("static", init_scale=3.0)
    g = np.random.default_rng(1).standard_normal(100)
    opt = FakeOptimizer(100, grad_format="fp64", dtype=np.float64)
    opt.grads[0][:] = g
    s.unscale_(opt)
    want = g * float(np.float32(1.0 / 3.0))
    np.testing.assert_array_equal(opt.grads[0].view(np.uint64), want.view(np.uint64))


def test_unscaling_is_in_place_and_the_same_for_every_layout():
    # C-contiguous arrays go through a one-pass kernel, the others through NumPy;
    # both unscale in place, to the same bits, and both see an inf
    rng = np.random.default_rng(3)
    g = (rng.standard_normal((6, 5)) * 1e4).astype(np.float32)
    opt = FakeOptimizer((6, 5), (6, 5), ())
    opt.grads[1] = np.zeros((5, 6), np.float32).T  # Fortran order: not C-contiguous
    opt.grads[1][...] = g
    opt.grads[0][...] = g
    opt.grads[2][...] = 3.0  # a 0-d gradient
    arrays = list(opt.grads)
    s = LossScaler("static", init_scale=3.0)
    s.unscale_(opt)
    assert all(a is b for a, b in zip(arrays, opt.grads, strict=True))
    want = (g.astype(np.float64) * float(np.float32(1 / 3.0))).astype(np.float32)
    for out in opt.grads[:2]:
        np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))
    assert opt.grads[2] == np.float32(3.0) * np.float32(1 / 3.0)
    assert not s.found_inf
    for bad in (0, 1):  # an inf in either kind of array is found
        s = LossScaler("static", init_scale=3.0)
        opt.grads[bad][2, 3] = np.inf
        s.unscale_(opt)
        assert s.found_inf
        opt.grads[bad][2, 3] = 0.0


def test_grad_format_is_checked_again_when_it_changes():
    s, opt = LossScaler(), FakeOptimizer()
    assert run(s, opt, clean=True)
    opt.grad_format = "fp16"
    with pytest.raises(ValueError, match="master gradients must be fp32"):
        s.unscale_(opt)


def test_power_of_two_scale_gives_bit_identical_gradients():
    rng = np.random.default_rng(2)
    g = (rng.standard_normal(1000) * 2.0 ** rng.integers(-60, 60, 1000)).astype(
        np.float32
    )
    s = LossScaler(init_scale=2.0**16)
    opt = FakeOptimizer(1000)
    opt.grads[0][:] = g * np.float32(2.0**16)  # exact: no overflow or underflow
    assert s.step(opt)
    np.testing.assert_array_equal(opt.applied[0][0].view(np.uint32), g.view(np.uint32))


def test_step_after_explicit_unscale_does_not_unscale_again():
    s = LossScaler(init_scale=1024.0)
    opt = FakeOptimizer(2)
    opt.grads[0][:] = [3072.0, -512.0]
    s.unscale_(opt)
    assert opt.grads[0].tolist() == [3.0, -0.5]
    # clip or inspect here; then step applies what is there
    opt.grads[0] *= np.float32(0.5)
    assert s.step(opt)
    assert opt.applied[0][0].tolist() == [1.5, -0.25]


def test_unscale_twice_raises():
    s, opt = LossScaler(), FakeOptimizer()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)


def test_unscale_after_step_raises():
    s, opt = LossScaler(), FakeOptimizer()
    s.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        s.unscale_(opt)


def test_step_twice_raises_and_update_starts_a_new_step():
    s, opt = LossScaler(), FakeOptimizer()
    opt.fill(1.0)
    s.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    s.update()
    s.unscale_(opt)  # allowed again
    assert s.step(opt)
    assert opt.steps == 2


def test_update_without_step_raises():
    s = LossScaler()
    with pytest.raises(RuntimeError, match="No inf checks"):
        s.update()


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "tf32", "fp8_e5m2"])
def test_unscale_of_low_precision_gradients_raises(fmt):
    s, opt = LossScaler(), FakeOptimizer(grad_format=fmt)
    opt.fill(1024.0)
    with pytest.raises(ValueError, match="master gradients must be fp32"):
        s.unscale_(opt)
    with pytest.raises(ValueError, match="master gradients must be fp32"):
        s.step(opt)
    assert opt.grads[0].tolist() == [1024.0] * 3  # untouched
    assert opt.steps == 0


def test_unscale_of_float16_arrays_raises():
    s = LossScaler()
    opt = FakeOptimizer(grad_format="fp32", dtype=np.float16)
    with pytest.raises(ValueError, match="low-precision gradients"):
        s.unscale_(opt)


def test_optimizer_without_the_protocol_raises():
    class NoGradFormat:
        def gradients(self):
            return []

        def step(self):
            pass

    with pytest.raises(TypeError, match="grad_format"):
        LossScaler().step(NoGradFormat())


# ------------------------------------------------------- scale, accumulation


def test_scale_multiplies_and_keeps_float32():
    s = LossScaler(init_scale=1024.0)
    assert s.scale(0.5) == 512.0
    x = np.array([0.25, 3.0], dtype=np.float32)
    y = s.scale(x)
    assert y.dtype == np.float32 and y.tolist() == [256.0, 3072.0]
    assert s.get_scale() == 1024.0


def test_gradient_accumulation_keeps_scale_and_scaled_gradients():
    # k micro-batches: scale/backward k times (gradients accumulate scaled, with
    # one scale), then one step and one update for the effective batch.
    s = LossScaler(init_scale=256.0, growth_interval=1)
    opt = FakeOptimizer(2)
    micro = [np.array([1.0, -2.0]), np.array([0.5, 0.25]), np.array([3.0, 1.0])]
    for g in micro:
        factor = s.scale(1.0)  # d(scaled loss)/d(loss)
        assert factor == 256.0
        opt.grads[0] += (factor * g).astype(np.float32)  # a backward pass
        assert s.state_dict()["_growth_tracker"] == 0
    assert opt.grads[0].tolist() == [256.0 * 4.5, 256.0 * -0.75]
    assert s.step(opt)
    s.update()
    assert opt.applied[0][0].tolist() == [4.5, -0.75]
    assert opt.steps == 1 and s.get_scale() == 512.0


def test_scale_on_autograd_tensor():
    autograd = pytest.importorskip("lowprec.autograd")
    policy_mod = pytest.importorskip("lowprec.amp.policy")
    policy = policy_mod.POLICIES["fp32"]
    loss = autograd.Tensor(np.array(0.75), policy=policy, requires_grad=True)
    scaled = LossScaler(init_scale=1024.0).scale(loss)
    assert isinstance(scaled, autograd.Tensor)
    assert scaled.item() == 768.0
    scaled.backward()
    assert float(np.asarray(loss.grad)) == 1024.0


# ------------------------------------------------------------------ disabled


def test_disabled_is_a_pass_through():
    s = LossScaler(enabled=False)
    loss = np.array([1.5], dtype=np.float32)
    assert s.scale(loss) is loss
    assert s.get_scale() == 1.0
    opt = FakeOptimizer(grad_format="fp16")  # not even checked
    opt.fill(np.inf)
    s.unscale_(opt)
    assert np.isinf(opt.grads[0]).all()
    assert s.step(opt) is True and opt.steps == 1
    assert s.step(opt) is True and opt.steps == 2
    s.update()
    assert s.state_dict() == {}
    s.load_state_dict({})


# ----------------------------------------------------------------- state dict


def test_state_dict_round_trip():
    a = LossScaler(init_scale=32.0, growth_interval=4, hysteresis=2, min_scale=2.0)
    opt = FakeOptimizer()
    for clean in (True, False, True, True):
        run(a, opt, clean)
    d = a.state_dict()
    assert {
        "scale",
        "growth_factor",
        "backoff_factor",
        "growth_interval",
        "_growth_tracker",
    } <= set(d)
    assert d["scale"] == 32.0 and d["_growth_tracker"] == 2
    assert d["_hysteresis_tracker"] == 1 and d["min_scale"] == 2.0

    b = LossScaler("static", init_scale=1.0)
    b.load_state_dict(d)
    assert b.state_dict() == d
    # both continue identically: 2 more clean steps grow, then overflows
    for clean in (True, True, False, False, False):
        run(a, opt, clean)
        run(b, opt, clean)
        assert a.get_scale() == b.get_scale()
    assert b.get_scale() == 16.0 and b.mode == "dynamic"


def test_load_pytorch_state_dict():
    s = LossScaler(hysteresis=3)
    s.load_state_dict(
        {
            "scale": 512.0,
            "growth_factor": 4.0,
            "backoff_factor": 0.25,
            "growth_interval": 2,
            "_growth_tracker": 1,
        }
    )
    opt = FakeOptimizer()
    run(s, opt, True)
    assert s.get_scale() == 2048.0
    d = s.state_dict()
    assert d["hysteresis"] == 3 and d["_hysteresis_tracker"] == 3


def test_load_bad_state_dict():
    s = LossScaler()
    with pytest.raises(RuntimeError, match="empty"):
        s.load_state_dict({})
    good = LossScaler().state_dict()
    with pytest.raises(ValueError, match="_growth_tracker"):
        s.load_state_dict({k: v for k, v in good.items() if k != "_growth_tracker"})
    with pytest.raises(ValueError, match="scale"):
        s.load_state_dict({**good, "scale": float("inf")})
    with pytest.raises(ValueError, match="backoff_factor"):
        s.load_state_dict({**good, "scale": 8.0, "backoff_factor": 2.0})
    assert s.get_scale() == 65536.0  # nothing half-loaded


# ----------------------------------------------------------- bad constructor


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"init_scale": 0.0}, "init_scale"),
        ({"init_scale": -1.0}, "init_scale"),
        ({"init_scale": float("inf")}, "init_scale"),
        ({"init_scale": float("nan")}, "init_scale"),
        ({"init_scale": 1e39}, "init_scale"),  # inf in float32
        ({"init_scale": 1e-50}, "init_scale"),  # zero in float32
        ({"growth_factor": 1.0}, "growth_factor"),
        ({"growth_factor": 0.5}, "growth_factor"),
        ({"growth_factor": float("inf")}, "growth_factor"),
        ({"backoff_factor": 0.0}, "backoff_factor"),
        ({"backoff_factor": 1.0}, "backoff_factor"),
        ({"backoff_factor": 1.5}, "backoff_factor"),
        ({"backoff_factor": float("nan")}, "backoff_factor"),
        ({"growth_interval": 0}, "growth_interval"),
        ({"growth_interval": -3}, "growth_interval"),
        ({"hysteresis": 0}, "hysteresis"),
        ({"min_scale": 0.0}, "min_scale"),
        ({"min_scale": -2.0}, "min_scale"),
        ({"min_scale": 2.0**20}, "min_scale"),  # above init_scale
        ({"mode": "auto"}, "mode"),
    ],
)
def test_bad_constructor_values(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        LossScaler(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"growth_interval": 1.5}, "growth_interval"),
        ({"growth_interval": True}, "growth_interval"),
        ({"hysteresis": 2.0}, "hysteresis"),
        ({"init_scale": "big"}, "init_scale"),
        ({"enabled": 1}, "enabled"),
    ],
)
def test_bad_constructor_types(kwargs, arg):
    with pytest.raises(TypeError, match=arg):
        LossScaler(**kwargs)
