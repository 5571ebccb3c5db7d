"""Policy presets and validation (lowprec.policy)."""

from __future__ import annotations

import numpy as np
import pytest

from lowprec import bf16, fp16, fp32, fp64, tf32
from lowprec.amp.policy import FP32_OPS, POLICIES, Policy, as_policy

ALL4 = frozenset(
    {"softmax", "cross_entropy", "layer_norm", "reduction", "exp_log"}
)

# the presets as the interface states them:
# params/activations/gradients, master, optimizer_state, matmul, order, update, ops
EXPECTED = {
    "fp64": (fp64, None, fp64, None, "ties_to_even"),
    "fp32": (fp32, None, fp32, None, "ties_to_even"),
    "fp16_pure": (fp16, None, fp16, ("fp16_fp16acc", "sequential"), "ties_to_even"),
    "fp16_mixed": (fp16, fp32, fp32, ("fp16_fp32acc", "unspecified"), None),
    "bf16_mixed": (bf16, fp32, fp32, ("bf16_fp32acc", "unspecified"), None),
    "fp16_naive": (fp16, fp32, fp32, ("fp16_fp32acc", "unspecified"), None),
    "bf16_pure": (bf16, None, bf16, ("bf16_fp32acc", "unspecified"), "ties_to_even"),
    "bf16_pure_sr": (bf16, None, bf16, ("bf16_fp32acc", "unspecified"), "stochastic"),
    "bf16_pure_kahan": (bf16, None, bf16, ("bf16_fp32acc", "unspecified"), "kahan"),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_presets_match_the_interface(name):
    fmt, master, state, mm, update = EXPECTED[name]
    p = as_policy(name)
    assert p.name == name
    assert (p.params, p.activations, p.gradients) == (fmt, fmt, fmt)
    assert p.master == master
    assert p.optimizer_state == state
    if mm is None:
        assert p.matmul is None
    else:
        assert (p.matmul, p.matmul_order) == mm
    if update is not None:
        assert p.update_rounding == update
    if name in ("fp16_pure", "fp16_naive", "fp32", "fp64"):
        assert p.fp32_ops == frozenset()
    else:
        assert p.fp32_ops == ALL4
    assert p.dtype == (np.float64 if name == "fp64" else np.float32)
    assert as_policy(p) is p


def test_every_preset_is_listed():
    assert set(POLICIES) == set(EXPECTED)
    assert ALL4 == FP32_OPS


def test_unknown_name_lists_the_presets():
    with pytest.raises(ValueError, match="unknown name 'fp8_mixed'.*fp16_mixed"):
        as_policy("fp8_mixed")
    with pytest.raises(TypeError, match="Policy or a preset name"):
        as_policy(16)


def test_fields_are_normalised_and_replace_validates():
    base = as_policy("fp32")
    p = base.replace(
        name="custom",
        params="bf16",
        activations="fp16",
        gradients="tf32",
        fp32_ops=["softmax"],
    )
    assert (p.params, p.activations, p.gradients) == (bf16, fp16, tf32)
    assert p.fp32_ops == frozenset({"softmax"})
    assert p.dtype == np.float32
    assert p.replace(master="fp64").dtype == np.float64
    assert base.replace(optimizer_state="fp64").dtype == np.float64
    # frozen, hashable, equal by value
    assert hash(p) == hash(
        base.replace(
            name="custom",
            params=bf16,
            activations=fp16,
            gradients=tf32,
            fp32_ops={"softmax"},
        )
    )
    with pytest.raises(AttributeError):
        p.name = "x"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"params": "fp17"}, "params"),
        ({"activations": 3}, "activations"),
        ({"gradients": "float128"}, "gradients"),
        ({"optimizer_state": "nope"}, "optimizer_state"),
        ({"master": "bogus"}, "master"),
        ({"params": "fp32", "master": "fp16"}, "master"),
        ({"matmul": "fp16_fp64acc"}, "matmul"),
        ({"matmul_order": "zigzag"}, "matmul_order"),
        ({"matmul": "fp16_fp16acc", "matmul_order": "unspecified"}, "matmul_order"),
        ({"matmul": "fp32", "matmul_order": "unspecified"}, "matmul_order"),
        ({"update_rounding": "stochastic_equal"}, "update_rounding"),
        ({"fp32_ops": {"softmax", "conv"}}, "fp32_ops"),
        ({"fp32_ops": "softmax"}, "fp32_ops"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_fields_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        as_policy("fp16_mixed").replace(**changes)


def test_sequential_orders_accept_any_preset():
    p = as_policy("fp32").replace(matmul="fp32", matmul_order="pairwise")
    assert p.matmul == "fp32"
    p = as_policy("fp16_mixed").replace(matmul="tf32_fp32acc", matmul_order="kahan")
    assert p.matmul_order == "kahan"


def test_direct_construction():
    p = Policy(
        "mine",
        "fp16",
        "fp16",
        "fp32",
        "fp32",
        "fp32",
        "fp16_fp32acc",
        "blocked",
        "ties_to_even",
        frozenset(),
        seed=7,
    )
    assert p.gradients == fp32 and p.seed == 7
