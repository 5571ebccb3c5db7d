"""Precision policies: which format each part of training uses.

A :class:`Policy` is an explicit record passed to the model and the optimizer (never
an environment variable or a global). It names the format of the weights used in
forward and backward (``params``), of every forward result (``activations``), of
every backward result (``gradients``), of the optional master copy of the weights
(``master``) and of the optimizer state; the matmul preset (inputs, accumulator,
output; see :data:`lowprec.arith.matmul.PRESETS`) and its order of additions; how
weights are rounded when they are updated without master weights; and the operations
whose results are kept in fp32 (as PyTorch autocast does for softmax, cross-entropy,
layer norm, large reductions, exp and log).

The presets in :data:`POLICIES` (activations and gradients in the params format):

- ``fp64``, ``fp32``: everything in that format, plain NumPy matmul.
- ``fp16_pure``: fp16 weights updated in fp16 (ties to even), fp16 optimizer state,
  matmul ``fp16_fp16acc`` in sequential order, nothing kept in fp32: the
  ``model.half()`` failure mode.
- ``fp16_mixed``, ``bf16_mixed``: fp16 (bf16) weights and compute, fp32 master
  weights and optimizer state, matmul ``fp16_fp32acc`` (``bf16_fp32acc``) on the
  float32 BLAS path, all five ``fp32_ops``.
- ``fp16_naive``: ``fp16_mixed`` with no ``fp32_ops``: softmax, normalization
  statistics, reductions and the loss computed in fp16, where transformers break.
- ``bf16_pure``, ``bf16_pure_sr``, ``bf16_pure_kahan``: bf16 weights updated in bf16
  with ties to even, stochastic rounding or Kahan compensation; bf16 optimizer
  state; matmul ``bf16_fp32acc``; all five ``fp32_ops``.

The mixed presets follow Micikevicius et al., "Mixed Precision
Training", ICLR 2018; the bf16 update roundings follow Zamirai et al., "Revisiting
BFloat16 Training", 2020.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lowprec.arith._matmul_kernel import ORDERS
from lowprec.arith.matmul import PRESETS
from lowprec.formats import Format, as_format, fp32
from lowprec.rounding.rounder import fits

__all__ = [
    "FP32_OPS",
    "MATMUL_ORDERS",
    "POLICIES",
    "UPDATE_ROUNDINGS",
    "Policy",
    "as_policy",
]

FP32_OPS = frozenset(
    {"softmax", "cross_entropy", "layer_norm", "reduction", "exp_log"}
)
UPDATE_ROUNDINGS = ("ties_to_even", "stochastic", "kahan")
MATMUL_ORDERS = (*ORDERS, "unspecified")


@dataclass(frozen=True)
class Policy:
    """The formats and rules of one way of training.

    Format fields accept a :class:`~lowprec.Format` or its name; ``fp32_ops``
    accepts any iterable of names. Invalid values raise ValueError naming the
    field.

    Parameters
    ----------
    name : str
        What the policy prints as.
    params : Format
        The weights used in forward and backward.
    activations : Format
        Every forward result is rounded to it (ties to even), unless the op is
        one of ``fp32_ops``.
    gradients : Format
        Every backward result is rounded to it (ties to even).
    master : Format or None
        The format of a master copy of the weights, updated by the optimizer and
        rounded to ``params`` after each step; None updates the weights in
        ``params`` directly, rounded by ``update_rounding``.
    optimizer_state : Format
        Momentum and Adam moments.
    matmul : str or None
        A :data:`lowprec.arith.matmul.PRESETS` name; None multiplies with plain NumPy in
        the storage dtype.
    matmul_order : str
        The order of additions in the emulated matmul (``"unspecified"`` is the
        float32 BLAS fast path, for presets with fp32 accumulation).
    update_rounding : {"ties_to_even", "stochastic", "kahan"}
        How ``w + dw`` is rounded to ``params`` when ``master`` is None.
    fp32_ops : frozenset of str
        Subset of ``{"softmax", "cross_entropy", "layer_norm", "reduction",
        "exp_log"}`` whose results stay in fp32 instead of being rounded to
        ``activations`` (``"layer_norm"`` covers every normalization's statistics,
        ``"exp_log"`` the exp and log ops).
    seed : int
        Seed of the random bits of stochastic update rounding.

    Examples
    --------
    >>> from lowprec.policy import as_policy
    >>> p = as_policy("fp16_mixed")
    >>> p.params.name, p.master.name, p.matmul, p.dtype
    ('fp16', 'fp32', 'fp16_fp32acc', dtype('float32'))
    >>> p.replace(name="fp16_mixed_fp16acc", matmul="fp16_fp16acc",
    ...           matmul_order="sequential").matmul
    'fp16_fp16acc'
    """

    name: str
    params: Format
    activations: Format
    gradients: Format
    master: Format | None
    optimizer_state: Format
    matmul: str | None
    matmul_order: str
    update_rounding: str
    fp32_ops: frozenset[str]
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        for field in ("params", "activations", "gradients", "optimizer_state"):
            self._set(field, _format(getattr(self, field), field))
        if self.master is not None:
            master = _format(self.master, "master")
            if not fits(self.params, master):
                raise ValueError(
                    f"master: {master.name} cannot hold every value of params "
                    f"({self.params.name}); master weights must be at least as wide"
                )
            self._set("master", master)
        self._check_matmul()
        if self.update_rounding not in UPDATE_ROUNDINGS:
            raise ValueError(
                f"update_rounding must be one of {', '.join(UPDATE_ROUNDINGS)}; got "
                f"{self.update_rounding!r}"
            )
        ops = self.fp32_ops
        if isinstance(ops, str) or not _iterable(ops):
            raise ValueError(
                f"fp32_ops must be a set of op names (a subset of "
                f"{sorted(FP32_OPS)}), got {ops!r}"
            )
        ops = frozenset(ops)
        if not ops <= FP32_OPS:
            raise ValueError(
                f"fp32_ops: unknown op names {sorted(map(str, ops - FP32_OPS))}; "
                f"expected a subset of {sorted(FP32_OPS)}"
            )
        self._set("fp32_ops", ops)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")
        self._set("seed", int(self.seed))
        formats = [self.params, self.activations, self.gradients, self.optimizer_state]
        if self.master is not None:
            formats.append(self.master)
        wide = not all(fits(f, fp32) for f in formats)
        # storage dtype, cached: read by every op of the autograd engine
        object.__setattr__(self, "_dtype", np.dtype(np.float64 if wide else np.float32))

    def _set(self, field: str, value: object) -> None:
        object.__setattr__(self, field, value)  # normalising a frozen record

    def _check_matmul(self) -> None:
        if self.matmul is not None and self.matmul not in PRESETS:
            raise ValueError(
                f"matmul must be None or one of {', '.join(PRESETS)}; got "
                f"{self.matmul!r}"
            )
        if self.matmul_order not in MATMUL_ORDERS:
            raise ValueError(
                f"matmul_order must be one of {', '.join(MATMUL_ORDERS)}; got "
                f"{self.matmul_order!r}"
            )
        if self.matmul is not None and self.matmul_order == "unspecified":
            preset = PRESETS[self.matmul]
            p = as_format(preset.inputs).precision
            if as_format(preset.accumulate) != fp32 or preset.products or p > 12:
                raise ValueError(
                    f"matmul_order: 'unspecified' (float32 BLAS) needs a preset with "
                    f"exact products, at most 12-bit inputs and fp32 accumulation; "
                    f"{self.matmul!r} has none of that, pick 'sequential'"
                )

    @property
    def dtype(self) -> np.dtype:
        """The storage dtype: float64 if any format is wider than fp32, else float32.

        Every array of the engine (data, gradients, master weights, optimizer
        state) is stored in it; values are those of their format.
        """
        return self._dtype

    def replace(self, **changes: object) -> Policy:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _format(value: object, field: str) -> Format:
    try:
        return as_format(value, field)
    except TypeError as err:
        raise ValueError(str(err)) from None


def _iterable(x: object) -> bool:
    try:
        iter(x)
    except TypeError:
        return False
    return True


def _make_presets() -> dict[str, Policy]:
    def uniform(name: str, fmt: str) -> Policy:
        return Policy(
            name,
            fmt,
            fmt,
            fmt,
            None,
            fmt,
            None,
            "unspecified",
            "ties_to_even",
            frozenset(),
        )

    def mixed(name: str, fmt: str) -> Policy:
        return Policy(
            name,
            fmt,
            fmt,
            fmt,
            "fp32",
            "fp32",
            f"{fmt}_fp32acc",
            "unspecified",
            "ties_to_even",
            FP32_OPS,
        )

    bf16_pure = Policy(
        "bf16_pure",
        "bf16",
        "bf16",
        "bf16",
        None,
        "bf16",
        "bf16_fp32acc",
        "unspecified",
        "ties_to_even",
        FP32_OPS,
    )
    presets = [
        uniform("fp64", "fp64"),
        uniform("fp32", "fp32"),
        Policy(
            "fp16_pure",
            "fp16",
            "fp16",
            "fp16",
            None,
            "fp16",
            "fp16_fp16acc",
            "sequential",
            "ties_to_even",
            frozenset(),
        ),
        mixed("fp16_mixed", "fp16"),
        mixed("bf16_mixed", "bf16"),
        # fp16_mixed with softmax, norm statistics, reductions and the loss in fp16:
        # the transformer failure mode (attention logits, LayerNorm variance)
        mixed("fp16_naive", "fp16").replace(fp32_ops=frozenset()),
        bf16_pure,
        bf16_pure.replace(name="bf16_pure_sr", update_rounding="stochastic"),
        bf16_pure.replace(name="bf16_pure_kahan", update_rounding="kahan"),
    ]
    return {p.name: p for p in presets}


POLICIES: dict[str, Policy] = _make_presets()


def as_policy(x: str | Policy) -> Policy:
    """A :class:`Policy` from a preset name (or the Policy itself).

    Raises
    ------
    ValueError
        For an unknown name, listing the presets.
    TypeError
        For anything that is neither a str nor a Policy.

    Examples
    --------
    >>> from lowprec.policy import as_policy
    >>> as_policy("bf16_pure_kahan").update_rounding
    'kahan'
    """
    if isinstance(x, Policy):
        return x
    if isinstance(x, str):
        try:
            return POLICIES[x]
        except KeyError:
            raise ValueError(
                f"policy: unknown name {x!r}; expected one of {', '.join(POLICIES)}"
            ) from None
    raise TypeError(f"policy must be a Policy or a preset name, got {type(x).__name__}")
