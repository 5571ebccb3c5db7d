"""The GPT: its forward and backward against an independent float64 NumPy GPT
(tests/nn/gpt_reference.py), nanoGPT's state-dict layout, generation, bad input,
and the fp16 softmax limits it is built to show."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gpt_reference import forward_backward

from lowprec.autograd import Tensor, cross_entropy, exp, softmax
from lowprec.nn.gpt import GPT, GPTConfig

V, T, L, H, C = 11, 8, 2, 2, 8


def _model(policy="fp32", **kw):
    model = GPT(V, T, n_layer=L, n_head=H, n_embd=C, policy=policy, seed=1, **kw)
    sd = model.state_dict()
    rng = np.random.default_rng(0)  # away from the init's zeros and ones
    sd = {k: v + rng.normal(0, 0.1, v.shape) for k, v in sd.items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    model.load_state_dict(sd)
    return model


@pytest.mark.parametrize(("policy", "tol"), [("fp64", 1e-12), ("fp32", 1e-5)])
def test_forward_and_backward_match_the_float64_reference(policy, tol):
    model = _model(policy)
    rng = np.random.default_rng(3)
    idx, targets = rng.integers(0, V, (2, 6)), rng.integers(0, V, (2, 6))
    logits = model(idx)
    loss = cross_entropy(logits, targets)
    loss.backward()
    sd = model.state_dict()
    ref_loss, ref_logits, ref_grads = forward_backward(
        {k: v for k, v in sd.items() if k != "lm_head.weight"}, idx, targets, H)
    assert abs(loss.item() - ref_loss) <= tol * abs(ref_loss)
    assert np.abs(logits.data - ref_logits).max() <= tol * np.abs(ref_logits).max()
    linear = model._linear_weights()
    for name, p in model.named_parameters():
        g = np.asarray(p.grad, np.float64)
        g = g.T if name in linear else g
        scale = np.abs(ref_grads[name]).max()
        assert np.abs(g - ref_grads[name]).max() <= tol * scale, name


def test_reference_gradient_is_right():
    """The reference's hand-written backward against central differences."""
    from gpt_reference import init_params

    p = init_params(V, T, 1, C, seed=4)
    rng = np.random.default_rng(5)
    idx, tg = rng.integers(0, V, (2, 5)), rng.integers(0, V, (2, 5))
    _, _, grads = forward_backward(p, idx, tg, H)
    for name in ("transformer.h.0.attn.c_attn.weight", "transformer.wpe.weight",
                 "transformer.h.0.ln_2.bias", "transformer.wte.weight"):
        for j in rng.choice(p[name].size, 3, replace=False):
            q = {k: v.copy() for k, v in p.items()}
            q[name].flat[j] += 1e-6
            up = forward_backward(q, idx, tg, H)[0]
            q[name].flat[j] -= 2e-6
            down = forward_backward(q, idx, tg, H)[0]
            assert (up - down) / 2e-6 == pytest.approx(grads[name].flat[j], rel=1e-5,
                                                       abs=1e-9)


def test_state_dict_has_nanogpt_names_and_round_trips_bit_for_bit():
    model = _model("bf16_mixed")
    sd = model.state_dict()
    assert sd["transformer.h.0.attn.c_attn.weight"].shape == (3 * C, C)
    assert sd["transformer.h.1.mlp.c_fc.weight"].shape == (4 * C, C)
    assert sd["transformer.h.1.mlp.c_proj.weight"].shape == (C, 4 * C)
    assert sd["transformer.wpe.weight"].shape == (T, C)
    assert (sd["lm_head.weight"] == sd["transformer.wte.weight"]).all()
    expected = {"transformer.wte.weight", "transformer.wpe.weight",
                "transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"}
    for i in range(L):
        h = f"transformer.h.{i}."
        for m in ("ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc",
                  "mlp.c_proj"):
            expected |= {h + m + ".weight", h + m + ".bias"}
    assert set(sd) == expected
    other = GPT(V, T, n_layer=L, n_head=H, n_embd=C, policy="bf16_mixed", seed=9)
    buffers = {f"transformer.h.{i}.attn.bias": np.tril(np.ones((1, 1, T, T)))
               for i in range(L)}  # nanoGPT's causal-mask buffers: ignored
    other.load_state_dict({**sd, **buffers})
    again = other.state_dict()
    for k in sd:
        assert sd[k].tobytes() == again[k].tobytes(), k


def test_bad_state_dicts_list_every_problem():
    model = GPT(V, T, n_layer=1, n_head=H, n_embd=C, policy="fp32")
    sd = model.state_dict()
    sd.pop("transformer.ln_f.bias")
    sd["transformer.h.9.mlp.c_fc.weight"] = np.zeros(3)
    key = "transformer.h.0.attn.c_attn.weight"
    sd[key] = sd[key].T
    with pytest.raises(ValueError) as err:
        model.load_state_dict(sd)
    msg = str(err.value)
    assert "missing keys ['transformer.ln_f.bias']" in msg
    assert "unexpected keys ['transformer.h.9.mlp.c_fc.weight']" in msg
    assert "transformer.h.0.attn.c_attn.weight: expected (24, 8), got (8, 24)" in msg
    sd = model.state_dict()
    sd["lm_head.weight"] = sd["lm_head.weight"] + 1
    with pytest.raises(ValueError, match="lm_head.weight differs"):
        model.load_state_dict(sd)


def test_gpt2_initialisation():
    model = GPT(50, 16, n_layer=4, n_head=2, n_embd=64, policy="fp32", seed=2)
    sd = model.state_dict()
    assert np.std(sd["transformer.wte.weight"]) == pytest.approx(0.02, rel=0.05)
    proj = sd["transformer.h.0.mlp.c_proj.weight"]
    assert np.std(proj) == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert (sd["transformer.h.2.attn.c_attn.bias"] == 0).all()
    assert (sd["transformer.h.3.ln_2.weight"] == 1).all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="n_embd must be divisible by n_head"):
        GPT(V, T, n_layer=1, n_head=3, n_embd=8, policy="fp32")
    model = GPT(V, T, n_layer=1, n_head=H, n_embd=C, policy="fp32")
    with pytest.raises(ValueError, match="longer than block_size 8"):
        model(np.zeros((1, 9), np.int64))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 11\)"):
        model(np.array([[0, 11]]))
    with pytest.raises(TypeError, match="idx must be an integer array"):
        model(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="dropout must be in"):
        GPTConfig(V, T, 1, 1, 8, dropout=1.0)


def test_generate_is_seeded_and_greedy_with_top_k_1():
    model = _model("fp32")
    start = np.array([[1, 2]])
    a = model.generate(start, 10, seed=3)
    assert a.shape == (1, 12) and (a[:, :2] == start).all()
    assert (model.generate(start, 10, seed=3) == a).all()
    greedy = model.generate(start, 3, top_k=1)
    idx = start
    for _ in range(3):
        nxt = model(idx[:, -T:]).data[:, -1].argmax(-1)
        idx = np.concatenate([idx, nxt[:, None]], 1)
    assert (greedy == idx).all()


def test_fp16_exp_overflows_exactly_between_the_two_neighbours_of_ln_max():
    # ln(65504) = 11.0898...; 11.0859375 and 11.09375 are neighbouring fp16 values
    out = exp(Tensor(np.array([11.0859375, 11.09375]), policy="fp16_naive")).data
    assert np.isfinite(out[0]) and np.isinf(out[1])
    row = Tensor(np.array([[0.0, 12.0]]), policy="fp16_naive")
    assert np.isnan(softmax(row, subtract_max=False).data).any()
    assert np.isfinite(softmax(row).data).all()  # max-subtraction
    fixed = softmax(Tensor(np.array([[0.0, 12.0]]), policy="fp16_mixed"),
                    subtract_max=False).data  # fp32 softmax
    assert np.isfinite(fixed).all()


def test_attention_telemetry_sees_the_overflow():
    idx = np.random.default_rng(0).integers(0, 65, (2, 16))
    rows = {}
    for policy in ("fp16_naive", "fp16_mixed"):
        model = GPT(65, 16, n_layer=1, n_head=2, n_embd=32, policy=policy, seed=0,
                    qk_norm=True)  # unit-variance q and k: |logit| <= sqrt(hs) = 4
        model.transformer.h[0].attn.subtract_max = False
        model.transformer.h[0].attn.logit_multiplier = 8.0  # the stress: up to 32
        out = model(idx)
        rows[policy] = model.telemetry()["softmax_overflow_rows"][0]
        assert model.telemetry()["max_attention_logit"][0] > math.log(65504)
        assert np.isfinite(out.data).all() == (policy == "fp16_mixed")
    assert rows["fp16_naive"] > 0 and rows["fp16_mixed"] == 0
