"""Batched matmul: ``(..., m, k) @ (k, n)`` is the 2-D product of the flattened
rows, ``(..., m, k) @ (..., k, n)`` the 2-D product of each pair, forward and
backward, under each kind of matmul preset, bit for bit against
:func:`lowprec.matmul` (the arithmetic layer, tested against MPFR and Fraction
oracles in tests/arith)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import F, same_bits

import lowprec
from lowprec.amp.policy import as_policy
from lowprec.autograd import Tensor, matmul
from lowprec.rounding._rne import round_rne

# (policy, preset arguments of lowprec.matmul for the forward)
POLICIES = ["fp16_mixed", "bf16_mixed", "fp16_pure"]


def _mm(name, a, b, **kw):
    p = as_policy(name)
    order = {"fp16_pure": {}}.get(name, {"order": "unspecified"})
    return lowprec.matmul(a, b, p.matmul, **order, **kw).astype(F)


def _grad(name, shape, rng):
    g = rng.standard_normal(shape).astype(F)
    return round_rne(g, as_policy(name).gradients)


@pytest.mark.parametrize("name", POLICIES)
def test_sequence_times_matrix_is_the_flattened_2d_product(name):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 5, 24)), policy=name, requires_grad=True)
    w = Tensor(rng.standard_normal((24, 6)), policy=name, requires_grad=True)
    y = matmul(x, w)
    assert y.shape == (3, 5, 6) and y.fmt is as_policy(name).activations
    flat = x.data.reshape(15, 24)
    same_bits(y.data.reshape(15, 6), _mm(name, flat, w.data))
    g = _grad(name, y.shape, rng)
    y.backward(g)
    g2 = g.reshape(15, 6)
    if name == "fp16_pure":  # gradients in fp16, the fp16 accumulator's value
        same_bits(x.grad.reshape(15, 24), _mm(name, g2, w.data.T))
        same_bits(w.grad, _mm(name, flat.T, g2))
    else:  # the fp32 accumulator's value, before rounding to the gradients
        same_bits(w.raw_grad, _mm(name, flat.T, g2, output="fp32"))


@pytest.mark.parametrize("name", POLICIES)
def test_stacked_matrices_multiply_pair_by_pair(name):
    rng = np.random.default_rng(1)
    q = Tensor(rng.standard_normal((2, 3, 4, 16)), policy=name, requires_grad=True)
    k = Tensor(rng.standard_normal((2, 3, 16, 4)), policy=name, requires_grad=True)
    s = matmul(q, k)
    g = _grad(name, s.shape, rng)
    s.backward(g)
    for i in np.ndindex(2, 3):
        same_bits(s.data[i], _mm(name, q.data[i], k.data[i]))
        if name == "fp16_pure":
            same_bits(q.grad[i], _mm(name, g[i], k.data[i].T))
            same_bits(k.grad[i], _mm(name, q.data[i].T, g[i]))
        else:
            raw = _mm(name, q.data[i].T, g[i], output="fp32")
            same_bits(k.raw_grad[i], raw)


def test_fp32_policy_batched_is_numpy_float32():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 4, 3, 5)).astype(F)
    b = rng.standard_normal((2, 4, 5, 6)).astype(F)
    same_bits(matmul(Tensor(a, policy="fp32"), Tensor(b, policy="fp32")).data, a @ b)


def test_fp16_accumulator_stalls_in_every_batch_element():
    a = Tensor(np.ones((3, 1, 4096)), policy="fp16_pure")
    b = Tensor(np.ones((3, 4096, 1)), policy="fp16_pure")
    assert matmul(a, b).data.reshape(-1).tolist() == [2048.0] * 3


@pytest.mark.parametrize(
    ("ashape", "bshape", "match"),
    [
        ((2, 3, 4), (2, 5, 6), "align"),
        ((2, 3, 4), (3, 4, 6), "leading dimensions"),
        ((3, 4), (2, 4, 6), "leading dimensions"),
        ((4,), (4, 6), "2-D"),
    ],
)
def test_bad_shapes(ashape, bshape, match):
    with pytest.raises(ValueError, match=match):
        matmul(
            Tensor(np.ones(ashape), policy="fp32"),
            Tensor(np.ones(bshape), policy="fp32"),
        )
