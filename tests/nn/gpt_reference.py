"""An independent float64 NumPy GPT (nanoGPT's architecture): forward and backward.

Written for the tests from the architecture's definition (Radford et al. 2019, GPT-2;
Karpathy's nanoGPT ``model.py`` for the layout): token + position embeddings, pre-LN
blocks of causal self-attention and a 4x GELU (erf) MLP, a final LayerNorm, an LM head
tied to the token embedding, and the mean cross-entropy. Parameters are a dict with
nanoGPT's names and PyTorch's shapes (a Linear weight is (out, in)). The backward is
written out by hand, layer by layer, with no autograd, so it checks lowprec's engine
without sharing any of its code.
"""

from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])
EPS = 1e-5


def _ln_fwd(x, w, b):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + EPS)
    xhat = xc * rstd
    return xhat * w + b, (xhat, rstd, w)


def _ln_bwd(g, cache):
    xhat, rstd, w = cache
    n = xhat.shape[-1]
    dw = (g * xhat).reshape(-1, n).sum(0)
    db = g.reshape(-1, n).sum(0)
    gx = g * w
    dx = rstd * (
        gx - gx.mean(-1, keepdims=True) - xhat * (gx * xhat).mean(-1, keepdims=True)
    )
    return dx, dw, db


def _gelu_fwd(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_bwd(g, x):
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return g * (cdf + x * pdf)


def _linear_fwd(x, w, b):
    return x @ w.T + (0.0 if b is None else b)


def _linear_bwd(g, x, w):
    n_in = x.shape[-1]
    dw = g.reshape(-1, w.shape[0]).T @ x.reshape(-1, n_in)
    db = g.reshape(-1, w.shape[0]).sum(0)
    return g @ w, dw, db


def forward_backward(params: dict, idx: np.ndarray, targets: np.ndarray, n_head: int):
    """Loss, logits and the gradient of every parameter, all float64.

    Parameters
    ----------
    params : dict of str to ndarray
        nanoGPT's state dict names (``transformer.wte.weight``, ...), float64.
    idx, targets : ndarray of int, shape (B, T)
    n_head : int
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    B, T = idx.shape
    wte, wpe = p["transformer.wte.weight"], p["transformer.wpe.weight"]
    V, C = wte.shape
    hs = C // n_head
    n_layer = 1 + max(int(k.split(".")[2]) for k in p if k.startswith("transformer.h."))
    mask = np.tril(np.ones((T, T), bool))
    grads = {k: np.zeros_like(v) for k, v in p.items()}

    x = wte[idx] + wpe[:T]
    caches = []
    for i in range(n_layer):
        h = f"transformer.h.{i}."
        a_in, ln1 = _ln_fwd(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"])
        qkv = _linear_fwd(
            a_in, p[h + "attn.c_attn.weight"], p.get(h + "attn.c_attn.bias")
        )
        q, k, v = (
            qkv[..., j * C : (j + 1) * C]
            .reshape(B, T, n_head, hs)
            .transpose(0, 2, 1, 3)
            for j in range(3)
        )
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hs)
        s = np.where(mask, s, -np.inf)
        e = np.exp(s - s.max(-1, keepdims=True))
        att = e / e.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + _linear_fwd(
            y, p[h + "attn.c_proj.weight"], p.get(h + "attn.c_proj.bias")
        )
        m_in, ln2 = _ln_fwd(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"])
        f = _linear_fwd(m_in, p[h + "mlp.c_fc.weight"], p.get(h + "mlp.c_fc.bias"))
        gf = _gelu_fwd(f)
        x = x + _linear_fwd(
            gf, p[h + "mlp.c_proj.weight"], p.get(h + "mlp.c_proj.bias")
        )
        caches.append((a_in, ln1, q, k, v, att, y, m_in, ln2, f, gf))
    xf, lnf = _ln_fwd(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    logits = xf @ wte.T
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    n = B * T
    loss = -np.take_along_axis(logp, targets[..., None], -1).mean()

    # Backward.
    dlogits = np.exp(logp)
    np.put_along_axis(
        dlogits,
        targets[..., None],
        np.take_along_axis(dlogits, targets[..., None], -1) - 1.0,
        -1,
    )
    dlogits /= n
    grads["transformer.wte.weight"] += dlogits.reshape(-1, V).T @ xf.reshape(-1, C)
    dxf = dlogits @ wte
    dx, dw, db = _ln_bwd(dxf, lnf)
    grads["transformer.ln_f.weight"] += dw
    grads["transformer.ln_f.bias"] += db
    for i in reversed(range(n_layer)):
        h = f"transformer.h.{i}."
        a_in, ln1, q, k, v, att, y, m_in, ln2, f, gf = caches[i]
        dgf, dw, db = _linear_bwd(dx, gf, p[h + "mlp.c_proj.weight"])
        grads[h + "mlp.c_proj.weight"] += dw
        if h + "mlp.c_proj.bias" in grads:
            grads[h + "mlp.c_proj.bias"] += db
        df = _gelu_bwd(dgf, f)
        dm, dw, db = _linear_bwd(df, m_in, p[h + "mlp.c_fc.weight"])
        grads[h + "mlp.c_fc.weight"] += dw
        if h + "mlp.c_fc.bias" in grads:
            grads[h + "mlp.c_fc.bias"] += db
        d, dw, db = _ln_bwd(dm, ln2)
        grads[h + "ln_2.weight"] += dw
        grads[h + "ln_2.bias"] += db
        dx = dx + d
        dy, dw, db = _linear_bwd(dx, y, p[h + "attn.c_proj.weight"])
        grads[h + "attn.c_proj.weight"] += dw
        if h + "attn.c_proj.bias" in grads:
            grads[h + "attn.c_proj.bias"] += db
        dy = dy.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
        datt = dy @ v.transpose(0, 1, 3, 2)
        dv = att.transpose(0, 1, 3, 2) @ dy
        ds = att * (datt - (datt * att).sum(-1, keepdims=True)) / math.sqrt(hs)
        dq = ds @ k
        dk = ds.transpose(0, 1, 3, 2) @ q
        dqkv = np.concatenate(
            [t.transpose(0, 2, 1, 3).reshape(B, T, C) for t in (dq, dk, dv)], -1
        )
        da, dw, db = _linear_bwd(dqkv, a_in, p[h + "attn.c_attn.weight"])
        grads[h + "attn.c_attn.weight"] += dw
        if h + "attn.c_attn.bias" in grads:
            grads[h + "attn.c_attn.bias"] += db
        d, dw, db = _ln_bwd(da, ln1)
        grads[h + "ln_1.weight"] += dw
        grads[h + "ln_1.bias"] += db
        dx = dx + d
    np.add.at(grads["transformer.wte.weight"], idx.reshape(-1), dx.reshape(-1, C))
    grads["transformer.wpe.weight"][:T] += dx.sum(0)
    return loss, logits, grads


def init_params(
    vocab_size: int,
    block_size: int,
    n_layer: int,
    n_embd: int,
    seed: int = 0,
    bias: bool = True,
) -> dict:
    """Random float64 parameters with nanoGPT's names and shapes (for the tests)."""
    rng = np.random.default_rng(seed)
    C = n_embd
    p = {
        "transformer.wte.weight": rng.normal(0, 0.5, (vocab_size, C)),
        "transformer.wpe.weight": rng.normal(0, 0.5, (block_size, C)),
    }
    shapes = {
        "attn.c_attn": (3 * C, C),
        "attn.c_proj": (C, C),
        "mlp.c_fc": (4 * C, C),
        "mlp.c_proj": (C, 4 * C),
    }
    for i in range(n_layer):
        h = f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            p[h + ln + ".weight"] = 1 + rng.normal(0, 0.1, C)
            p[h + ln + ".bias"] = rng.normal(0, 0.1, C)
        for name, shape in shapes.items():
            p[h + name + ".weight"] = rng.normal(0, 0.3, shape) / math.sqrt(shape[1])
            if bias:
                p[h + name + ".bias"] = rng.normal(0, 0.1, shape[0])
    p["transformer.ln_f.weight"] = 1 + rng.normal(0, 0.1, C)
    p["transformer.ln_f.bias"] = rng.normal(0, 0.1, C)
    return p
