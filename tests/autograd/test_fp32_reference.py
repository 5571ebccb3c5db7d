"""Under the fp32 policy the engine is bit for bit a plain NumPy float32 forward
and backward, written out by hand here in the engine's order of operations."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import F, same_bits

from lowprec import autograd as ag
from lowprec.nn import MLP


def ref_mlp(x, y, params, activation, layer_norm):
    """Forward and backward of the MLP in plain NumPy float32, in the engine's
    order of operations; returns (loss, {name: grad})."""
    c, k = F(np.sqrt(2.0 / np.pi)), F(0.044715)
    half, one, three, eps = F(0.5), F(1.0), F(3.0), F(1e-5)
    n_lin = sum(1 for n in params if n.endswith("weight") and params[n].ndim == 2)
    tape = []
    h = x
    idx = 0
    for i in range(n_lin):
        w, b = params[f"layers.{idx}.weight"], params[f"layers.{idx}.bias"]
        z = h @ w + b
        tape.append(("linear", idx, h, w))
        idx += 1
        if i == n_lin - 1:
            h = z
            break
        if layer_norm:
            lw, lb = params[f"layers.{idx}.weight"], params[f"layers.{idx}.bias"]
            n = F(z.shape[1])
            mu = z.sum(axis=-1, keepdims=True) / n
            xc = z - mu
            var = (xc * xc).sum(axis=-1, keepdims=True) / n
            rstd = one / np.sqrt(var + eps)
            xhat = xc * rstd
            z = xhat * lw + lb
            tape.append(("ln", idx, xhat, rstd, lw))
            idx += 1
        if activation == "relu":
            tape.append(("relu", z))
            h = np.where(z > 0, z, F(0))
        elif activation == "tanh":
            h = np.tanh(z)
            tape.append(("tanh", h))
        else:
            t = np.tanh(c * (z + k * (z * z * z)))
            h = half * z * (one + t)
            tape.append(("gelu", z, t))
        idx += 1
    rows = np.arange(len(y))
    count = F(len(y))
    zl = h - h.max(axis=1, keepdims=True)
    logp = zl - np.log(np.exp(zl).sum(axis=1, keepdims=True))
    loss = -logp[rows, y].sum() / count
    p = np.exp(logp)
    p[rows, y] -= F(1)
    g = p * (np.ones((), F) / count)
    grads = {}
    for entry in reversed(tape):
        kind = entry[0]
        if kind == "linear":
            _, i, hin, w = entry
            grads[f"layers.{i}.bias"] = g.sum(axis=0)
            grads[f"layers.{i}.weight"] = hin.T @ g
            g = g @ w.T
        elif kind == "ln":
            _, i, xhat, rstd, lw = entry
            n = F(xhat.shape[1])
            grads[f"layers.{i}.weight"] = (g * xhat).sum(axis=0)
            grads[f"layers.{i}.bias"] = g.sum(axis=0)
            gx = g * lw
            mean_g = gx.sum(axis=-1, keepdims=True) / n
            mean_gx = (gx * xhat).sum(axis=-1, keepdims=True) / n
            g = rstd * (gx - mean_g - xhat * mean_gx)
        elif kind == "relu":
            g = np.where(entry[1] > 0, g, F(0))
        elif kind == "tanh":
            g = g * (one - entry[1] * entry[1])
        else:
            _, z, t = entry
            d = half * (one + t) + half * z * (one - t * t) * c * (
                one + three * k * (z * z)
            )
            g = g * d
    return loss, grads


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_fp32_policy_is_plain_numpy_float32_bit_for_bit(activation, layer_norm):
    model = MLP(
        [16, 12, 10, 5],
        policy="fp32",
        activation=activation,
        layer_norm=layer_norm,
        seed=11,
    )
    rng = np.random.default_rng(12)
    x = rng.standard_normal((9, 16)).astype(F)
    y = rng.integers(0, 5, 9)
    loss = ag.cross_entropy(model(x), y)
    loss.backward()
    params = {n: p.data.copy() for n, p in model.named_parameters()}
    ref_loss, ref_grads = ref_mlp(x, y, params, activation, layer_norm)
    same_bits(loss.data, np.asarray(ref_loss))
    assert set(ref_grads) == set(params)
    for name, p in model.named_parameters():
        same_bits(p.grad, ref_grads[name])
        same_bits(p.raw_grad, ref_grads[name])
