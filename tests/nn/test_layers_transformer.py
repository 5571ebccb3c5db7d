"""The layers that wrap the transformer ops: Embedding, RMSNorm, Dropout, the GELU
forms, Linear on (..., n_in) and without a bias, and train/eval modes."""

from __future__ import annotations

import numpy as np
import pytest

from lowprec import autograd as ag
from lowprec.autograd import Tensor
from lowprec.nn import GELU, MLP, Dropout, Embedding, Linear, RMSNorm, Sequential


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def same_bits(a, b):
    assert np.asarray(a).dtype == np.asarray(b).dtype
    np.testing.assert_array_equal(bits(a), bits(b))


def test_embedding_looks_up_rounded_normal_weights_and_trains():
    wte = Embedding(11, 4, policy="bf16_mixed", seed=3)
    ref = np.random.default_rng(3).standard_normal((11, 4))
    same_bits(wte.weight.data, Tensor(ref, "bf16", policy="fp32").data)
    idx = np.array([[1, 2, 1], [10, 0, 0]])
    y = wte(idx)
    same_bits(y.data, wte.weight.data[idx])
    y.sum().backward()
    assert wte.weight.grad[[1, 0]].tolist() == [[2.0] * 4, [2.0] * 4]
    assert [n for n, _ in wte.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        wte(np.array([11]))
    with pytest.raises(TypeError, match="integers"):
        wte(np.array([1.0]))


def test_rms_norm_layer_is_the_op_with_its_weight():
    layer = RMSNorm(6, policy="fp16_mixed", eps=1e-5)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 6)), policy="fp16_mixed")
    same_bits(layer(x).data, ag.rms_norm(x, layer.weight, eps=1e-5).data)
    assert layer.weight.data.tolist() == [1.0] * 6
    with pytest.raises(ValueError, match=r"RMSNorm\(6\)"):
        layer(np.ones((2, 5)))
    with pytest.raises(ValueError, match="eps"):
        RMSNorm(6, policy="fp32", eps=0.0)


def test_dropout_layer_draws_a_new_reproducible_mask_per_call_in_training():
    def run():
        drop = Dropout(0.3, policy="fp32", seed=9)
        return [drop(np.ones((8, 8))).data for _ in range(3)], drop

    (a0, a1, a2), drop = run()
    (b0, b1, b2), _ = run()
    for a, b in ((a0, b0), (a1, b1), (a2, b2)):
        same_bits(a, b)  # the same seed: the same masks, call for call
    assert not np.array_equal(a0, a1)
    keep = np.random.default_rng([9, 1]).random((8, 8)) >= 0.3
    same_bits(a1, np.where(keep, np.float32(1) / np.float32(0.7), np.float32(0)))
    model = Sequential(Linear(8, 8, policy="fp32", seed=0), drop)
    assert model.eval() is model and not drop.training
    x = Tensor(np.ones((2, 8)), policy="fp32")
    same_bits(drop(x).data, x.data)
    model.train()
    assert drop.training and drop(x) is not x
    with pytest.raises(ValueError, match="p"):
        Dropout(1.0, policy="fp32")


def test_gelu_module_forms_and_the_mlp_keeps_the_tanh_form():
    x = Tensor(np.linspace(-3, 3, 7), policy="fp32")
    same_bits(GELU(policy="fp32")(x).data, ag.gelu(x).data)
    tanh_form = GELU(policy="fp32", approximate="tanh")(x).data
    same_bits(tanh_form, ag.gelu(x, approximate="tanh").data)
    mlp = MLP([7, 7, 2], policy="fp32", activation="gelu")
    assert mlp.layers[1].approximate == "tanh"
    with pytest.raises(ValueError, match="approximate"):
        GELU(policy="fp32", approximate="exact")


def test_linear_on_a_sequence_and_without_bias():
    layer = Linear(4, 3, policy="fp16_mixed", seed=1)
    x = Tensor(np.random.default_rng(2).standard_normal((2, 5, 4)), policy="fp16_mixed")
    y = layer(x)
    flat = layer(Tensor(x.data.reshape(10, 4), policy="fp16_mixed"))
    same_bits(y.data.reshape(10, 3), flat.data)
    bare = Linear(4, 3, policy="fp32", seed=1, bias=False)
    assert bare.bias is None and [n for n, _ in bare.named_parameters()] == ["weight"]
    same_bits(
        bare(np.ones((2, 4))).data, np.ones((2, 4), np.float32) @ bare.weight.data
    )
    with pytest.raises(TypeError, match="bias"):
        Linear(4, 3, policy="fp32", seed=1, bias=1)
