"""Every op's backward against float64 central finite differences, under fp64."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import FP64, FP64_ALL, away_from_zero, check_grad

from lowprec import autograd as ag
from lowprec.nn import MLP

A = away_from_zero((3, 4), 1)
B = away_from_zero((3, 4), 2)
ROW = away_from_zero((4,), 3)
COL = away_from_zero((3, 1), 4)


@pytest.mark.parametrize("policy", [FP64, FP64_ALL], ids=["fp64", "fp64_all_ops"])
@pytest.mark.parametrize(
    ("name", "fn", "args"),
    [
        ("add", lambda a, b: a + b, (A, B)),
        ("add_row", lambda a, b: a + b, (A, ROW)),
        ("add_col", lambda a, b: b + a, (A, COL)),
        ("sub", lambda a, b: a - b, (A, COL)),
        ("mul", lambda a, b: a * b, (A, ROW)),
        ("div", lambda a, b: a / b, (A, COL)),
        ("scalars", lambda a: (2.0 - a) * 3.0 + 1.0 - a / 4.0 + 1.0 / a, (A,)),
        ("neg", lambda a: -a, (A,)),
        ("matmul", lambda a, b: a @ b, (A, B.T)),
        ("sum", lambda a: a.sum(), (A,)),
        ("sum_axis", lambda a: a.sum(axis=0), (A,)),
        ("sum_keep", lambda a: a.sum(axis=1, keepdims=True), (A,)),
        ("mean", lambda a: a.mean(), (A,)),
        ("mean_axis", lambda a: a.mean(axis=-1), (A,)),
        ("relu", lambda a: a.relu(), (A,)),
        ("gelu", lambda a: a.gelu(), (A,)),
        ("tanh", lambda a: a.tanh(), (A,)),
        ("log_softmax", lambda a: a.log_softmax(), (A,)),
        ("log_softmax0", lambda a: a.log_softmax(axis=0), (A,)),
        ("cross_entropy", lambda a: ag.cross_entropy(a, np.array([0, 3, 1])), (A,)),
        ("layer_norm", lambda a: ag.layer_norm(a), (A,)),
        ("layer_norm_affine", lambda a, w, b: ag.layer_norm(a, w, b), (A, ROW, ROW)),
        (
            "reshape",
            lambda a: (
                a.reshape(2, 6)
                * ag.Tensor(np.arange(12.0).reshape(2, 6), policy=a.policy)
            ),
            (A,),
        ),
        ("transpose", lambda a, b: a.T @ b, (A, B)),
        ("transpose_axes", lambda a: a.reshape(3, 2, 2).transpose(2, 0, 1), (A,)),
        ("reuse", lambda a: a * a + a, (A,)),
    ],
)
def test_op_gradients_match_finite_differences(policy, name, fn, args):
    check_grad(fn, *args, policy=policy)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_mlp_gradient_matches_finite_differences(activation, layer_norm):
    model = MLP(
        [4, 5, 6, 3], policy=FP64, activation=activation, layer_norm=layer_norm, seed=3
    )
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7)

    def loss():
        return ag.cross_entropy(model(x), y)

    loss().backward()
    h = 1e-6
    for name, p in model.named_parameters():
        numeric = np.zeros_like(p.data)
        for idx in np.ndindex(p.shape):
            old = p.data[idx]
            p.data[idx] = old + h
            plus = loss().item()
            p.data[idx] = old - h
            minus = loss().item()
            p.data[idx] = old
            numeric[idx] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-8, err_msg=name)
