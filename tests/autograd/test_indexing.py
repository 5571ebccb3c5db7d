"""embedding: an exact lookup, and a backward scatter-add in the gradient format,
sequential in index order with every addition rounded (checked against loops
in NumPy float16 and ml_dtypes bfloat16 arithmetic)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from gradcheck import F, same_bits
from hypothesis import given, settings
from hypothesis import strategies as st

from lowprec import autograd as ag
from lowprec.autograd import Tensor
from lowprec.autograd.indexing import scatter_add


def _loop(rows, idx, g, dtype):
    """``out[idx[k]] += g[k]`` one k at a time, in ``dtype`` arithmetic."""
    out = np.zeros((rows, g.shape[-1]), dtype=dtype)
    for k, r in enumerate(idx):
        out[r] = out[r] + g[k].astype(dtype)
    return out.astype(F)


@pytest.mark.parametrize(
    ("policy", "dtype"),
    [("fp16_pure", np.float16), ("bf16_pure", ml_dtypes.bfloat16), ("fp32", F)],
)
def test_backward_is_the_sequential_rounded_scatter_add(policy, dtype):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 7, (6, 40))  # each row about 34 times
    w = Tensor(rng.standard_normal((7, 5)), policy=policy, requires_grad=True)
    y = ag.embedding(w, idx)
    same_bits(y.data, w.data[idx])  # the lookup: exact
    assert y.fmt is w.fmt and y.shape == (6, 40, 5)
    # upstream gradients of mixed sizes, in the gradient format: the order shows
    g = rng.standard_normal(y.shape) * 2.0 ** rng.integers(-6, 6, y.shape)
    g = g.astype(dtype).astype(F)
    y.backward(g)
    same_bits(w.grad, _loop(7, idx.reshape(-1), g.reshape(-1, 5), dtype))
    same_bits(w.raw_grad, w.grad)  # the additions' rounding is the order itself


def test_order_matters_and_is_index_order():
    # fp16: 2048 + 1 + 1 = 2048 one at a time, 2050 if the ones came first
    g = np.array([[2048.0], [1.0], [1.0]], F)
    fp16 = ag.Tensor([0.0], policy="fp16_pure").fmt
    storage = ag.Tensor([0.0], policy="fp32").fmt
    idx = np.array([0, 0, 0])
    assert scatter_add(1, idx, g, fp16, storage).tolist() == [[2048.0]]
    assert scatter_add(1, idx, g[::-1].copy(), fp16, storage).tolist() == [[2050.0]]
    assert scatter_add(1, idx, g, storage, storage).tolist() == [[2050.0]]


def test_tied_weights_add_the_lookup_and_the_product_gradients():
    w = Tensor(np.ones((4, 2)), policy="fp16_mixed", requires_grad=True)
    y = ag.embedding(w, np.array([1, 3]))
    loss = y.sum() + ag.matmul(Tensor(np.ones((1, 4)), policy=w.policy), w).sum()
    loss.backward()
    assert w.grad.tolist() == [[1.0, 1.0], [2.0, 2.0], [1.0, 1.0], [2.0, 2.0]]


@pytest.mark.parametrize(
    ("weight", "idx", "error", "match"),
    [
        (np.ones((3, 2)), np.array([0, 3]), ValueError, r"\[0, 3\)"),
        (np.ones((3, 2)), np.array([-1]), ValueError, r"\[0, 3\)"),
        (np.ones((3, 2)), np.array([0.0]), TypeError, "integers"),
        (np.ones(3), np.array([0]), ValueError, "2-D"),
    ],
)
def test_bad_input(weight, idx, error, match):
    with pytest.raises(error, match=match):
        ag.embedding(Tensor(weight, policy="fp32"), idx)
    with pytest.raises(TypeError, match="weight"):
        ag.embedding(np.ones((3, 2)), np.array([0]))


@settings(max_examples=60)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=40),
    st.integers(0, 2**32 - 1),
    st.sampled_from([("fp16_pure", np.float16), ("bf16_pure", ml_dtypes.bfloat16)]),
)
def test_hypothesis_scatter_add_equals_the_loop(idx, seed, case):
    policy, dtype = case
    idx = np.array(idx)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((idx.size, 2)) * 2.0 ** rng.integers(-20, 12, (idx.size, 2))
    g = g.astype(dtype).astype(F)
    w = Tensor(np.zeros((6, 2)), policy=policy, requires_grad=True)
    ag.embedding(w, idx).backward(g)
    same_bits(w.grad, _loop(6, idx, g, dtype))
