"""The Tensor itself: construction, graphs, constants and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import F

import lowprec
from lowprec import autograd as ag
from lowprec.autograd import Tensor


def test_tensor_rounds_float64_data_once():
    v = 1 + 2.0**-11 + 2.0**-40  # float32 would make it a tie and round down
    assert Tensor([v], policy="fp16_mixed").data.tolist() == [1 + 2.0**-10]
    arr = np.array([0.5], dtype=F)
    t = Tensor(arr, policy="fp32")
    arr[0] = 7
    assert t.data.tolist() == [0.5]  # copied
    assert Tensor([1, 2], policy="fp64").data.dtype == np.float64
    assert Tensor([0.1], "bf16", policy="fp32").data.tolist() == [
        float(lowprec.round(np.float32(0.1), "bf16"))
    ]


def test_no_graph_without_requires_grad():
    x = Tensor(np.ones((2, 2)), policy="fp32")
    y = (x * 2.0 + 1.0).sum()
    assert not y.requires_grad
    with pytest.raises(ValueError, match="requires_grad"):
        y.backward()


def test_constants_do_not_promote_and_arrays_defer():
    x = Tensor([1.0, 2.0], policy="fp16_mixed")
    assert (x * 1e6).fmt == lowprec.fp16  # a constant does not widen
    assert np.isinf((x * 1e6).data).all()  # overflow to inf, not an error
    y = np.array([2.0, 3.0]) * x
    assert isinstance(y, Tensor) and y.data.tolist() == [2.0, 6.0]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda t: t(np.ones((2, 3))) @ t(np.ones((2, 3))),
            ValueError,
            r"\(2, 3\) and \(2, 3\)",
        ),
        (lambda t: t(np.ones(3)) @ t(np.ones((3, 1))), ValueError, "2-D"),
        (
            lambda t: t(np.ones((2, 3))) + t(np.ones((4,))),
            ValueError,
            r"\(2, 3\) and \(4,\)",
        ),
        (lambda t: t(np.ones((2, 3))) * np.ones((5, 1, 2)), ValueError, "broadcast"),
        (
            lambda t: ag.cross_entropy(t(np.ones((2, 3))), np.array([0, 3])),
            ValueError,
            r"\[0, 3\)",
        ),
        (
            lambda t: ag.cross_entropy(t(np.ones((2, 3))), np.array([0, 1, 2])),
            ValueError,
            r"shape \(2,\)",
        ),
        (
            lambda t: ag.cross_entropy(t(np.ones((2, 3))), np.array([0.0, 1.0])),
            TypeError,
            "integers",
        ),
        (lambda t: ag.cross_entropy(t(np.ones(3)), np.array([0])), ValueError, "2-D"),
        (lambda t: t(np.ones((2, 3))).reshape(4, 2), ValueError, r"\(4, 2\)"),
        (lambda t: t(np.ones((2, 3))).sum(axis=2), ValueError, "axis"),
        (lambda t: t(np.ones((2, 3))).backward(), ValueError, "requires_grad"),
        (
            lambda t: ag.layer_norm(t(np.ones((2, 3))), t(np.ones(2))),
            ValueError,
            r"\(3,\)",
        ),
        (
            lambda t: t(np.ones(2)) + Tensor(np.ones(2), policy="fp32"),
            ValueError,
            "different policies",
        ),
        (lambda t: t(np.ones(2)) + "a", TypeError, "operands"),
        (lambda t: Tensor([1.0], policy="fp8_mixed"), ValueError, "unknown name"),
        (lambda t: Tensor([1.0], "fp64", policy="fp16_mixed"), ValueError, "fit"),
        (lambda t: t(np.ones((2, 2))).item(), ValueError, "one-element"),
    ],
)
def test_bad_input_raises_clearly(make, error, message):
    def t(a):
        return Tensor(a, policy="fp16_mixed")

    with pytest.raises(error, match=message):
        make(t)


def test_backward_needs_grad_for_non_scalars():
    x = Tensor(np.ones((2, 2)), policy="fp32", requires_grad=True)
    with pytest.raises(ValueError, match="grad must be given"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(3))
