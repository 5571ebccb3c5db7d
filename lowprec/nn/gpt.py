"""A GPT (nanoGPT's architecture) on lowprec's engine, in any precision policy.

Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2), 2019,
as laid out by Karpathy's nanoGPT ``model.py``: token and position embeddings,
pre-LayerNorm blocks of causal multi-head self-attention and a 4x GELU (erf) MLP
with residuals, a final LayerNorm (eps 1e-5), and an LM head tied to the token
embedding. GPT-2 initialisation: every Linear and embedding weight N(0, 0.02), the
residual projections (``c_proj``) N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm
weights 1.

The attention matches nanoGPT's ``CausalSelfAttention``: ``c_attn`` gives q, k, v
in that order along the channels; head h owns channels ``h*hs:(h+1)*hs`` of each;
logits are ``q @ k^T * (1/sqrt(hs))``; the causal softmax masks future positions.
``qk_norm=True`` normalizes q and k per head (LayerNorm over hs, no affine) before
the product, which bounds the logits by ``sqrt(hs)``.

:meth:`GPT.state_dict` and :meth:`GPT.load_state_dict` use nanoGPT's names and
PyTorch's shapes (a Linear weight is (out, in)), so a nanoGPT checkpoint converted
with ``{k: v.numpy() for k, v in sd.items()}`` loads, and weights trained here load
into nanoGPT.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.autograd import (
    Tensor,
    gelu,
    layer_norm,
    reshape,
    softmax,
    split,
    transpose,
)
from lowprec.formats import fp32
from lowprec.nn.layers import Dropout, Embedding, LayerNorm, Linear
from lowprec.nn.module import Module, Parameter, _check_size

__all__ = ["GPT", "GPTConfig"]


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a GPT.

    Attributes
    ----------
    vocab_size, block_size, n_layer, n_head, n_embd : int
        Tokens, context length, blocks, heads per block, channels.
    bias : bool
        Biases in the Linears and LayerNorms.
    dropout : float
        Dropout probability (attention weights, residual branches, embeddings).
    qk_norm : bool
        Normalize queries and keys per head before their product.
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    bias: bool = True
    dropout: float = 0.0
    qk_norm: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            _check_size(getattr(self, name), name)
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd must be divisible by n_head, got n_embd={self.n_embd} and "
                f"n_head={self.n_head}"
            )
        for name in ("bias", "qk_norm"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got "
                                f"{getattr(self, name)!r}")
        if not (isinstance(self.dropout, int | float) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def head_size(self) -> int:
        """Channels per head."""
        return self.n_embd // self.n_head

    def as_dict(self) -> dict:
        """The fields, for a checkpoint."""
        return asdict(self)


class _SelfAttention(Module):
    def __init__(self, cfg: GPTConfig, policy: Policy, seed: list[int]) -> None:
        self.policy = policy
        self.cfg = cfg
        C = cfg.n_embd
        self.c_attn = Linear(C, 3 * C, policy=policy, seed=seed + [0], bias=cfg.bias)
        self.c_proj = Linear(C, C, policy=policy, seed=seed + [1], bias=cfg.bias)
        self.attn_dropout = Dropout(cfg.dropout, policy=policy, seed=_seed(seed, 2))
        self.resid_dropout = Dropout(cfg.dropout, policy=policy, seed=_seed(seed, 3))
        self.logit_multiplier = 1.0  # > 1 stresses the softmax (tests, notebook)
        self.subtract_max = True  # False: the naive softmax, exp of the raw logits
        self.max_logit = 0.0  # telemetry of the last forward
        self.overflow_rows = 0

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        nh, hs = self.cfg.n_head, self.cfg.head_size

        def heads(t: Tensor) -> Tensor:  # (B, T, C) -> (B, nh, T, hs)
            return transpose(reshape(t, (B, T, nh, hs)), (0, 2, 1, 3))

        q, k, v = (heads(t) for t in split(self.c_attn(x), 3, axis=-1))
        if self.cfg.qk_norm:
            q, k = layer_norm(q), layer_norm(k)
        scale = self.logit_multiplier / math.sqrt(hs)
        logits = (q @ transpose(k, (0, 1, 3, 2))) * scale
        self._record(logits.data, T)
        probs = softmax(logits, -1, causal=True, subtract_max=self.subtract_max)
        y = reshape(transpose(self.attn_dropout(probs) @ v, (0, 2, 1, 3)), (B, T, C))
        return self.resid_dropout(self.c_proj(y))

    def _record(self, logits: np.ndarray, T: int) -> None:
        """The largest |logit| a query sees, and the rows whose exp overflows the
        format the softmax computes in (fp32 when it is one of the policy's fp32
        ops, else the activations): a visible exponent above ln(max)."""
        visible = np.tril(np.ones((T, T), bool))
        x = np.where(visible, np.asarray(logits, np.float64), -np.inf)
        finite = np.isfinite(x) | ~visible
        with np.errstate(invalid="ignore"):
            mags = np.where(visible, np.abs(x), 0.0)
        self.max_logit = float(mags.max()) if finite.all() else math.inf
        fmt = fp32 if "softmax" in self.policy.fp32_ops else self.policy.activations
        fmt = fmt if fmt.precision >= self.policy.activations.precision else (
            self.policy.activations)
        shift = x.max(-1, keepdims=True) if self.subtract_max else 0.0
        with np.errstate(invalid="ignore"):
            exponent = np.where(visible, x - shift, -np.inf)
        bad = (exponent > math.log(float(fmt.max))) | ~finite
        self.overflow_rows = int(np.count_nonzero(bad.any(-1)))


class _MLP(Module):
    def __init__(self, cfg: GPTConfig, policy: Policy, seed: list[int]) -> None:
        self.policy = policy
        C = cfg.n_embd
        self.c_fc = Linear(C, 4 * C, policy=policy, seed=seed + [0], bias=cfg.bias)
        self.c_proj = Linear(4 * C, C, policy=policy, seed=seed + [1], bias=cfg.bias)
        self.dropout = Dropout(cfg.dropout, policy=policy, seed=_seed(seed, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(gelu(self.c_fc(x))))


class _Block(Module):
    def __init__(self, cfg: GPTConfig, policy: Policy, seed: list[int]) -> None:
        self.policy = policy
        self.ln_1 = _layer_norm(cfg, policy)
        self.attn = _SelfAttention(cfg, policy, seed + [0])
        self.ln_2 = _layer_norm(cfg, policy)
        self.mlp = _MLP(cfg, policy, seed + [1])

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Transformer(Module):
    def __init__(self, cfg: GPTConfig, policy: Policy, seed: int) -> None:
        self.policy = policy
        self.wte = Embedding(cfg.vocab_size, cfg.n_embd, policy=policy, seed=[seed, 0])
        self.wpe = Embedding(cfg.block_size, cfg.n_embd, policy=policy, seed=[seed, 1])
        self.drop = Dropout(cfg.dropout, policy=policy, seed=_seed([seed], 2))
        self.h = [_Block(cfg, policy, [seed, 3, i]) for i in range(cfg.n_layer)]
        self.ln_f = _layer_norm(cfg, policy)


def _layer_norm(cfg: GPTConfig, policy: Policy) -> LayerNorm:
    ln = LayerNorm(cfg.n_embd, policy=policy, eps=1e-5)
    if not cfg.bias:
        ln.bias = None
    return ln


def _seed(path: list[int], k: int) -> int:
    """A dropout module's integer seed from its place in the model."""
    return int(np.random.SeedSequence(list(path) + [k]).generate_state(1)[0])


class GPT(Module):
    """A GPT language model under a precision policy.

    Parameters
    ----------
    vocab_size, block_size, n_layer, n_head, n_embd : int
        See :class:`GPTConfig`.
    policy : Policy or str
        The precision policy of every op.
    bias, dropout, qk_norm
        See :class:`GPTConfig`.
    seed : int
        Seeds the initialisation and the dropout masks.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import GPT
    >>> model = GPT(65, 16, n_layer=2, n_head=2, n_embd=16, policy="bf16_mixed")
    >>> logits = model(np.zeros((3, 16), dtype=np.int64))
    >>> logits.shape, logits.fmt.name
    ((3, 16, 65), 'bf16')
    >>> sorted(model.state_dict())[:2]
    ['lm_head.weight', 'transformer.h.0.attn.c_attn.bias']
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        *,
        policy: Policy | str,
        bias: bool = True,
        dropout: float = 0.0,
        qk_norm: bool = False,
        seed: int = 0,
    ) -> None:
        self.config = GPTConfig(vocab_size, block_size, n_layer, n_head, n_embd,
                                bias, float(dropout), qk_norm)
        self.policy = as_policy(policy)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        self.transformer = _Transformer(self.config, self.policy, self.seed)
        self._gpt2_init(np.random.default_rng([self.seed, 7]))

    @classmethod
    def from_config(cls, config: GPTConfig, *, policy: Policy | str,
                    seed: int = 0) -> GPT:
        """A GPT of the shape ``config``."""
        c = config
        return cls(c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd,
                   policy=policy, bias=c.bias, dropout=c.dropout, qk_norm=c.qk_norm,
                   seed=seed)

    # ------------------------------------------------------------------ layout
    def _linear_weights(self) -> set[str]:
        names = set()
        for i in range(self.config.n_layer):
            h = f"transformer.h.{i}."
            names |= {h + "attn.c_attn.weight", h + "attn.c_proj.weight",
                      h + "mlp.c_fc.weight", h + "mlp.c_proj.weight"}
        return names

    def _gpt2_init(self, rng: np.random.Generator) -> None:
        """GPT-2's initialisation, drawn in the state dict's (PyTorch) layout."""
        linear = self._linear_weights()
        resid_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                values = np.zeros(p.shape)
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                values = np.ones(p.shape)
            else:
                std = resid_std if name.endswith("c_proj.weight") else 0.02
                shape = p.shape[::-1] if name in linear else p.shape
                values = rng.normal(0.0, std, shape)
                if name in linear:
                    values = values.T
            p.data[...] = Parameter(values, policy=self.policy).data

    # ----------------------------------------------------------------- forward
    def __call__(self, idx: object) -> Tensor:
        return self.forward(idx)

    def _check_idx(self, idx: object) -> np.ndarray:
        a = np.asarray(idx)
        if a.dtype.kind not in "iu":
            raise TypeError(f"idx must be an integer array, got dtype {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"idx must have shape (B, T), got {a.shape}")
        if a.shape[1] > self.config.block_size:
            raise ValueError(
                f"idx: sequence length {a.shape[1]} is longer than block_size "
                f"{self.config.block_size}"
            )
        if a.size and (a.min() < 0 or a.max() >= self.config.vocab_size):
            raise ValueError(
                f"idx: token ids must lie in [0, {self.config.vocab_size}), got "
                f"[{a.min()}, {a.max()}]"
            )
        return a.astype(np.int64, copy=False)

    def forward(self, idx: object) -> Tensor:
        """Logits of shape (B, T, vocab_size) for token ids ``idx`` of shape (B, T)."""
        idx = self._check_idx(idx)
        tr = self.transformer
        T = idx.shape[1]
        x = tr.drop(tr.wte(idx) + tr.wpe(np.arange(T)))
        self.block_amax = []
        for block in tr.h:
            x = block(x)
            self.block_amax.append(float(np.abs(x.data).max()) if x.size else 0.0)
        x = tr.ln_f(x)
        return x @ tr.wte.weight.T  # the LM head, tied to the token embedding

    def telemetry(self) -> dict:
        """What the last forward saw, per layer: the largest |attention logit| (of
        the visible positions), the softmax rows whose exp overflows the activation
        format, and each block's output amax."""
        return {
            "max_attention_logit": [b.attn.max_logit for b in self.transformer.h],
            "softmax_overflow_rows": [b.attn.overflow_rows for b in self.transformer.h],
            "block_amax": list(getattr(self, "block_amax", [])),
        }

    # ------------------------------------------------------------- generation
    def generate(
        self,
        idx: object,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """Sample ``max_new_tokens`` tokens after ``idx`` (shape (B, T)).

        The context is cropped to the last ``block_size`` tokens; logits are divided
        by ``temperature``, cut to the ``top_k`` largest, and sampled from the
        softmax (in float64) with ``numpy.random.default_rng(seed)``.
        """
        idx = self._check_idx(idx)
        n = _check_size(max_new_tokens, "max_new_tokens") if max_new_tokens else 0
        if not (isinstance(temperature, int | float) and temperature > 0):
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if top_k is not None:
            top_k = _check_size(top_k, "top_k")
        rng = np.random.default_rng(seed)
        was_training = self.training
        self.eval()
        try:
            for _ in range(n):
                ctx = idx[:, -self.config.block_size:]
                logits = np.asarray(self(ctx).data[:, -1, :], np.float64) / temperature
                if top_k is not None and top_k < logits.shape[-1]:
                    kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
                    logits = np.where(logits < kth, -np.inf, logits)
                p = np.exp(logits - logits.max(-1, keepdims=True))
                p /= p.sum(-1, keepdims=True)
                nxt = np.array([rng.choice(p.shape[-1], p=row) for row in p])
                idx = np.concatenate([idx, nxt[:, None]], axis=1)
        finally:
            self.train(was_training)
        return idx

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, np.ndarray]:
        """nanoGPT's names and PyTorch's shapes, float64 (exact); ``lm_head.weight``
        is the token embedding (tied)."""
        linear = self._linear_weights()
        out = {}
        for name, p in self.named_parameters():
            v = p.data.astype(np.float64)
            out[name] = v.T.copy() if name in linear else v
        out["lm_head.weight"] = out["transformer.wte.weight"].copy()
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set every parameter from a nanoGPT-style state dict (rounded to the
        policy's params format).

        The causal-mask buffers of older nanoGPT checkpoints (``*.attn.bias`` of
        shape (1, 1, T, T)) are ignored; ``lm_head.weight``, if present, must equal
        ``transformer.wte.weight`` (the two are tied).

        Raises
        ------
        ValueError
            Listing every missing, unexpected and misshapen key.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        linear = self._linear_weights()
        params = dict(self.named_parameters())
        expected = {n: (p.shape[::-1] if n in linear else p.shape)
                    for n, p in params.items()}
        given = {k: np.asarray(v) for k, v in state.items()
                 if not (k.endswith(".attn.bias") and np.ndim(v) == 4)}
        tied = given.pop("lm_head.weight", None)
        missing = sorted(set(expected) - set(given))
        extra = sorted(set(given) - set(expected))
        shapes = sorted(f"{k}: expected {expected[k]}, got {given[k].shape}"
                        for k in set(given) & set(expected)
                        if given[k].shape != expected[k])
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if extra:
            problems.append(f"unexpected keys {extra}")
        if shapes:
            problems.append(f"misshapen keys [{'; '.join(shapes)}]")
        if not problems and tied is not None and not np.array_equal(
                tied, given["transformer.wte.weight"]):
            problems.append("lm_head.weight differs from transformer.wte.weight, "
                            "but this GPT ties them")
        if problems:
            raise ValueError("state: " + "; ".join(problems))
        for name, p in params.items():
            value = given[name].astype(np.float64)
            p.data[...] = Parameter(value.T if name in linear else value,
                                    policy=self.policy).data

    def __repr__(self) -> str:
        c = self.config
        return (f"GPT(vocab_size={c.vocab_size}, block_size={c.block_size}, "
                f"n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, "
                f"policy={self.policy.name!r})")
