"""Bytes per parameter from a policy's formats, the ZeRO projection, the ledger."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lowprec.amp import memory
from lowprec.amp.memory import (
    GB,
    Breakdown,
    bytes_per_parameter,
    parameter_ledger,
    parse_count,
    project,
    tensor_bytes,
)
from lowprec.amp.policy import POLICIES
from lowprec.formats import fp4_e2m1fn, fp16, fp32

# -- bytes per parameter ------------------------------------------------------------

# (policy, optimizer): parameters, gradients, master, optimizer state (bytes)
PER_PARAMETER = {
    ("fp64", "adam"): (8, 8, 0, 16),
    ("fp32", "sgd"): (4, 4, 0, 4),
    ("fp32", "adam"): (4, 4, 0, 8),
    ("fp16_pure", "sgd"): (2, 2, 0, 2),
    ("fp16_mixed", "sgd"): (2, 2, 4, 4),
    ("fp16_mixed", "adam"): (2, 2, 4, 8),  # the paper's 2 + 2 + K, K = 12
    ("bf16_mixed", "adam"): (2, 2, 4, 8),
    ("bf16_pure", "adam"): (2, 2, 0, 4),
    ("bf16_pure_sr", "sgd"): (2, 2, 0, 2),
    ("bf16_pure_kahan", "adam"): (2, 2, 0, 6),  # two moments + compensation
    ("bf16_pure_kahan", "sgd"): (2, 2, 0, 4),
}


@pytest.mark.parametrize(("policy", "optimizer"), PER_PARAMETER)
def test_bytes_per_parameter_of_the_presets(policy, optimizer):
    pp = bytes_per_parameter(policy, optimizer)
    got = (pp.parameters, pp.gradients, pp.master, pp.optimizer_state)
    assert got == PER_PARAMETER[policy, optimizer]
    assert pp.k == pp.master + pp.optimizer_state
    assert pp.total == sum(got)


def test_notebook_06_table_is_weights_master_and_sgd_momentum():
    # notebook 06: fp32 8, fp16_mixed 10, bf16_pure 4, bf16_pure_kahan 6
    for name, expected in [
        ("fp32", 8),
        ("fp16_mixed", 10),
        ("bf16_pure", 4),
        ("bf16_pure_kahan", 6),
    ]:
        pp = bytes_per_parameter(name, "sgd")
        assert pp.parameters + pp.master + pp.optimizer_state == expected


def test_a_custom_policy_gets_its_own_figure():
    bf16_moments = POLICIES["fp16_mixed"].replace(
        name="fp16_mixed_bf16_moments", optimizer_state="bf16"
    )
    pp = bytes_per_parameter(bf16_moments, "adam")
    assert (pp.master, pp.optimizer_state, pp.k) == (4, 4, 8)
    assert pp.formats("optimizer_state") == "bf16+bf16"
    fp8_weights = POLICIES["fp16_mixed"].replace(name="fp8w", params="fp8_e4m3fn")
    assert bytes_per_parameter(fp8_weights).parameters == 1
    fp4 = POLICIES["fp32"].replace(name="fp4", params="fp4_e2m1fn")
    assert bytes_per_parameter(fp4).parameters == 0.5


def test_tensor_bytes_round_up_per_tensor():
    assert tensor_bytes(3, fp4_e2m1fn) == 2
    assert tensor_bytes(4, fp4_e2m1fn) == 2
    assert tensor_bytes(0, fp16) == 0
    assert tensor_bytes(10**12 + 1, fp32) == 4 * 10**12 + 4  # exact, no floats
    # projected: 3 fp4 weights take 2 bytes, not 1.5
    fp4 = POLICIES["fp32"].replace(name="fp4", params="fp4_e2m1fn")
    assert project(3, fp4).per_gpu.parameters == 2


# -- ZeRO ---------------------------------------------------------------------------


# Rajbhandari et al., SC 2020, Figure 1: 7.5B parameters, N_d = 64, K = 12. The
# paper prints one decimal (the baseline as "120"), so each figure is checked to
# half a unit of that last digit.
@pytest.mark.parametrize(
    ("stage", "paper_gb"), [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)]
)
def test_the_papers_example(stage, paper_gb):
    proj = project(7.5e9, "fp16_mixed", "adam", world_size=64, zero=stage)
    assert proj.per_parameter.k == 12
    assert abs(proj.total / GB - paper_gb) <= 0.05
    table = proj.table()
    assert f"{paper_gb:.1f}" in table.splitlines()[-3]  # the total row
    assert "GB = 10^9 bytes" in table


def test_the_papers_example_in_exact_bytes():
    n, w = 7_500_000_000, 64
    totals = [project(n, "fp16_mixed", world_size=w, zero=z).total for z in range(4)]
    assert totals == [16 * n, 4 * n + 12 * n // w, 2 * n + 14 * n // w, 16 * n // w]


def test_each_stage_shards_its_categories():
    b = [project(10, "fp16_mixed", world_size=4, zero=z).per_gpu for z in range(4)]
    # ceil(10 / 4) = 3 elements per GPU of a sharded buffer
    assert b[0] == Breakdown(parameters=20, gradients=20, master=40, optimizer_state=80)
    assert b[1] == Breakdown(parameters=20, gradients=20, master=12, optimizer_state=24)
    assert b[2] == Breakdown(parameters=20, gradients=6, master=12, optimizer_state=24)
    assert b[3] == Breakdown(parameters=6, gradients=6, master=12, optimizer_state=24)


def test_one_gpu_shards_nothing_and_activations_add_unsharded():
    base = project("1B", "bf16_pure", "sgd").total
    assert {project("1B", "bf16_pure", "sgd", zero=z).total for z in range(4)} == {base}
    proj = project("1B", "bf16_pure", "sgd", world_size=8, zero=3, activations_gb=2.5)
    assert proj.per_gpu.activations == 2_500_000_000
    assert proj.total == 6 * 10**9 // 8 + 2_500_000_000


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("7.5B", 7_500_000_000),
        ("7.5e9", 7_500_000_000),
        ("7_500_000_000", 7_500_000_000),
        ("125M", 125_000_000),
        ("1.3b", 1_300_000_000),
        ("2T", 2 * 10**12),
        ("4k", 4000),
        (7.5e9, 7_500_000_000),
        (12, 12),
    ],
)
def test_parse_count(text, count):
    assert parse_count(text) == count


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"params": 0}, ValueError, "params must be a positive"),
        ({"params": -5}, ValueError, "params must be a positive"),
        ({"params": "-1B"}, ValueError, "params must be a positive"),
        ({"params": 1.5}, ValueError, "params must be a positive whole"),
        ({"params": "lots"}, ValueError, "params: cannot read"),
        ({"params": "inf"}, ValueError, "params must be a positive"),
        ({"params": True}, TypeError, "params must be a number"),
        ({"params": None}, TypeError, "params must be a number"),
        ({"world_size": 0}, ValueError, "world_size must be >= 1"),
        ({"world_size": 2.0}, TypeError, "world_size must be an int"),
        ({"zero": 4}, ValueError, r"zero must be in 0\.\.3"),
        ({"zero": -1}, ValueError, r"zero must be in 0\.\.3"),
        ({"policy": "fp12_mixed"}, ValueError, "policy: unknown name"),
        ({"policy": 3}, TypeError, "policy must be"),
        ({"optimizer": "lamb"}, ValueError, "optimizer: unknown name 'lamb'"),
        ({"optimizer": None}, TypeError, "optimizer must be a name"),
        ({"activations_gb": -1.0}, ValueError, "activations_gb must be"),
        ({"activations_gb": math.nan}, ValueError, "activations_gb must be"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    args = {"params": 1000, "policy": "fp32", "optimizer": "adam", **kwargs}
    with pytest.raises(error, match=match):
        project(
            args.pop("params"),
            args.pop("policy"),
            args.pop("optimizer"),
            **args,
        )


def test_breakdown_checks_its_fields():
    with pytest.raises(ValueError, match="gradients must be >= 0"):
        Breakdown(gradients=-1)
    with pytest.raises(TypeError, match="master must be an int"):
        Breakdown(master=1.0)
    assert list(Breakdown().as_dict()) == [*memory.CATEGORIES, "total"]


# -- the ledger of live arrays ------------------------------------------------------

SIZES = [4, 3, 2]  # weights 4x3 + 3 and 3x2 + 2: 23 parameters in 4 tensors
N = 4 * 3 + 3 + 3 * 2 + 2


def _stepped(policy, optimizer):
    from lowprec.autograd import cross_entropy
    from lowprec.nn import MLP
    from lowprec.optim import SGD, Adam

    model = MLP(SIZES, policy=policy, seed=1)
    if optimizer == "adam":
        opt = Adam(model.parameters(), policy=policy, lr=1e-3)
    else:
        opt = SGD(model.parameters(), policy=policy, lr=0.1, momentum=0.9)
    x = np.linspace(-1.0, 1.0, 5 * 4).reshape(5, 4)
    cross_entropy(model(x), np.array([0, 1, 0, 1, 1])).backward()
    opt.step()
    return model, opt


# hand counts after one step: (parameters, gradients, master, optimizer state),
# N elements each: fp32 4 bytes, fp16/bf16 2; SGD one buffer, Adam two
LEDGER = {
    ("fp32", "sgd"): (4 * N, 4 * N, 0, 4 * N),
    ("fp32", "adam"): (4 * N, 4 * N, 0, 8 * N),
    ("fp16_mixed", "sgd"): (2 * N, 2 * N, 4 * N, 4 * N),
    ("fp16_mixed", "adam"): (2 * N, 2 * N, 4 * N, 8 * N),
    ("bf16_pure", "sgd"): (2 * N, 2 * N, 0, 2 * N),
    ("bf16_pure", "adam"): (2 * N, 2 * N, 0, 4 * N),
}


@pytest.mark.parametrize(("policy", "optimizer"), LEDGER)
def test_ledger_of_a_tiny_mlp_matches_the_hand_count(policy, optimizer):
    model, opt = _stepped(policy, optimizer)
    ledger = parameter_ledger(model, opt, policy)
    got = (ledger.parameters, ledger.gradients, ledger.master, ledger.optimizer_state)
    assert got == LEDGER[policy, optimizer]
    assert ledger.activations == ledger.loss_scaler == 0
    # the projection of the same model and policy agrees with the live arrays
    assert parameter_ledger(model.parameters(), opt, policy) == ledger
    assert project(N, policy, optimizer).per_gpu.total == ledger.total


def test_ledger_counts_kahan_state_and_mid_step_master_gradients():
    model, opt = _stepped("bf16_pure_kahan", "sgd")
    assert parameter_ledger(model, opt, "bf16_pure_kahan").optimizer_state == 4 * N
    model, opt = _stepped("fp16_mixed", "sgd")
    opt.gradients()  # fp32 copies of the fp16 gradients, until step()
    assert parameter_ledger(model, opt, "fp16_mixed").gradients == 2 * N + 4 * N
    opt.zero_grad()
    ledger = parameter_ledger(model, opt, "fp16_mixed")
    assert ledger.gradients == 0 and ledger.optimizer_state == 4 * N
    assert parameter_ledger(model, None, "fp16_mixed").total == 2 * N


def test_ledger_bad_input():
    model, opt = _stepped("fp32", "sgd")
    with pytest.raises(ValueError, match="optimizer: its policy is 'fp32'"):
        parameter_ledger(model, opt, "bf16_pure")
    with pytest.raises(TypeError, match=r"parameters\[0\] must be a Parameter"):
        parameter_ledger([np.zeros(3)], None, "fp32")
    with pytest.raises(ValueError, match="policy: unknown name"):
        parameter_ledger(model, None, "fp7")
