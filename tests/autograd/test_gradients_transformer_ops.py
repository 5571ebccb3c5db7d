"""The backward of every op a transformer needs (issue 16) against float64 central
finite differences, under the fp64 policy (and fp64 with every fp32 op listed)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import FP64, FP64_ALL, away_from_zero, check_grad

from lowprec import autograd as ag
from lowprec.autograd import Tensor

A = away_from_zero((3, 4), 11)
POS = np.abs(away_from_zero((3, 4), 12))
X3 = away_from_zero((2, 3, 4), 13)  # (B, T, C)
W = away_from_zero((4, 5), 14)
ROW = away_from_zero((4,), 15)
Q = away_from_zero((2, 2, 3, 4), 16)  # (B, heads, T, head_dim)
K = away_from_zero((2, 2, 3, 4), 17)
TABLE = away_from_zero((5, 3), 18)
IDX = np.array([[0, 4, 0], [2, 0, 4]])  # repeated rows: the scatter adds
LABELS = np.array([[0, 3, 1], [2, 2, 0]])
MASK = np.array([True, False, False, True])
GRID = np.linspace(-4.0, 4.0, 12).reshape(3, 4) + 0.0123  # both GELU branches


def _gelu_tail(a):
    # the erf form below -sqrt(2) goes through erfc: check that branch too
    return ag.gelu(a * 3.0 - 6.0)


def _attention(q, k):
    scores = ag.matmul(q, k.transpose(0, 1, 3, 2)) * 0.5
    return ag.matmul(ag.softmax(scores, causal=True), k)


def _heads(x):
    # split into q, k, v along channels, then (B, T, C) -> (B, heads, T, hd)
    q, k, v = ag.split(x, [1, 3], axis=-1)
    merged = ag.concat([v, k, q], axis=-1)
    heads = merged.reshape(2, 3, 2, 2).transpose(0, 2, 1, 3)
    return heads * ag.Tensor(np.arange(24.0).reshape(2, 2, 3, 2), policy=x.policy)


CASES = [
    ("exp", lambda a: ag.exp(a), (A,)),
    ("log", lambda a: ag.log(a), (POS,)),
    ("gelu_erf", lambda a: ag.gelu(a), (GRID,)),
    ("gelu_erf_tail", _gelu_tail, (np.abs(A),)),
    ("gelu_tanh", lambda a: ag.gelu(a, approximate="tanh"), (GRID,)),
    ("masked_fill", lambda a: ag.masked_fill(a, MASK, -3.0) * a, (A,)),
    ("softmax", lambda a: ag.softmax(a), (A,)),
    ("softmax_axis0", lambda a: ag.softmax(a, axis=0), (A,)),
    ("softmax_causal", lambda a: ag.softmax(a, causal=True), (X3,)),
    ("softmax_no_max", lambda a: ag.softmax(a, subtract_max=False), (A,)),
    ("rms_norm", lambda a: ag.rms_norm(a), (X3,)),
    ("rms_norm_weight", lambda a, w: ag.rms_norm(a, w, eps=1e-3), (X3, ROW)),
    ("layer_norm_3d", lambda a, w, b: ag.layer_norm(a, w, b), (X3, ROW, ROW)),
    ("embedding", lambda t: ag.embedding(t, IDX), (TABLE,)),
    ("matmul_3d_2d", lambda a, w: ag.matmul(a, w), (X3, W)),
    ("matmul_batched", lambda q, k: ag.matmul(q, k.transpose(0, 1, 3, 2)), (Q, K)),
    ("attention", _attention, (Q, K)),
    ("split_concat_heads", _heads, (away_from_zero((2, 3, 4), 19),)),
    ("cross_entropy_btv", lambda a: ag.cross_entropy(a, LABELS), (X3,)),
    ("cross_entropy_z", lambda a: ag.cross_entropy(a, LABELS, z_loss=0.3), (X3,)),
    ("dropout", lambda a: ag.dropout(a, 0.4, seed=[7, 1]), (A,)),
]


@pytest.mark.parametrize("policy", [FP64, FP64_ALL], ids=["fp64", "fp64_all_ops"])
@pytest.mark.parametrize(("name", "fn", "args"), CASES, ids=[c[0] for c in CASES])
def test_op_gradients_match_finite_differences(policy, name, fn, args):
    check_grad(fn, *args, policy=policy, rtol=1e-6, atol=1e-8)


def test_embedding_gradient_of_a_row_used_twice_is_the_sum():
    w = Tensor(TABLE, policy=FP64, requires_grad=True)
    ag.embedding(w, np.array([1, 1])).sum().backward()
    assert w.grad[1].tolist() == [2.0, 2.0, 2.0]
    assert not w.grad[[0, 2, 3, 4]].any()
