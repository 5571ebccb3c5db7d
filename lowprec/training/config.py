"""What one training run is: :class:`TrainConfig`, its choices and its data.

:class:`TrainConfig` validates every field on construction; :func:`load_dataset`
turns a config's dataset name into a :class:`~lowprec.data.datasets.Dataset`, and
``_check_dataset`` refuses data the model cannot train on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.data.datasets import Dataset, load_digits, make_blobs, make_spirals

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "LOSS_SCALES",
    "OPTIMIZERS",
    "TrainConfig",
    "load_dataset",
]

LOSS_SCALES = ("none", "static", "dynamic")
OPTIMIZERS = ("sgd", "adam")
DATASETS = ("digits", "blobs", "spirals")
ACTIVATIONS = ("relu", "gelu", "tanh")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run; validated on construction.

    Parameters
    ----------
    policy : str or Policy
        A preset name of :data:`lowprec.amp.policy.POLICIES` (``"fp32"``,
        ``"fp16_mixed"``, ...) or a :class:`~lowprec.amp.policy.Policy`.
    dataset : str
        ``"digits"`` (the bundled 8x8 handwritten digits), ``"blobs"`` or
        ``"spirals"`` (seeded synthetic data).
    optimizer : str
        ``"sgd"`` or ``"adam"``.
    lr, momentum, weight_decay : float
        Optimizer settings (``momentum`` is SGD's; Adam uses its defaults).
    epochs, batch_size : int
        ``batch_size`` is the micro-batch; the effective batch is
        ``batch_size * accumulate``. The last incomplete effective batch of each
        epoch is dropped.
    seed : int
        Seeds the initialisation, the shuffling, the synthetic data and the
        stochastic update rounding.
    loss_weight : float
        Multiplies the loss (and so every gradient). A small weight models a loss
        term whose gradients are tiny and makes fp16 gradient underflow visible.
        With SGD the effective learning rate is ``lr * loss_weight``.
    loss_scale : str
        ``"none"``, ``"static"`` (constant ``init_scale``) or ``"dynamic"``
        (PyTorch ``GradScaler`` rules, starting at ``init_scale``).
    init_scale : float
        The (initial) loss scale.
    growth_interval : int
        Clean steps before the dynamic scaler doubles the scale (PyTorch: 2000).
    accumulate : int
        Micro-batches per optimizer step.
    clip : float or None
        Clip the global L2 norm of the unscaled gradients to this value.
    hidden : tuple of int
        Hidden layer widths of the MLP.
    activation : str
        ``"relu"``, ``"gelu"`` or ``"tanh"``.
    layer_norm : bool
        A LayerNorm after each hidden linear layer.
    eval_every : int
        Evaluate every this many optimizer steps; 0 evaluates at the end of each
        epoch. There is always an evaluation before the first step and after the
        last.
    telemetry : bool
        Record the per-layer gradient and update statistics (a few NumPy passes
        over the gradients per step).

    Examples
    --------
    >>> TrainConfig(policy="fp16_mixed", loss_scale="dynamic").effective_batch
    32
    """

    policy: str | Policy = "fp32"
    dataset: str = "digits"
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    loss_weight: float = 1.0
    loss_scale: str = "none"
    init_scale: float = 2.0**16
    growth_interval: int = 2000
    accumulate: int = 1
    clip: float | None = None
    hidden: tuple[int, ...] = (64,)
    activation: str = "relu"
    layer_norm: bool = False
    eval_every: int = 0
    telemetry: bool = True

    def __post_init__(self) -> None:
        as_policy(self.policy)  # ValueError listing the presets
        _choice("dataset", self.dataset, DATASETS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss_scale", self.loss_scale, LOSS_SCALES)
        _choice("activation", self.activation, ACTIVATIONS)
        _positive_float("lr", self.lr)
        _positive_float("loss_weight", self.loss_weight)
        _positive_float("init_scale", self.init_scale)
        for name in ("momentum", "weight_decay"):
            value = _float(name, getattr(self, name))
            if not 0.0 <= value < math.inf:
                raise ValueError(f"{name} must be >= 0 and finite, got {value!r}")
        if self.momentum >= 1.0:
            raise ValueError(f"momentum must be < 1, got {self.momentum!r}")
        for name in ("epochs", "batch_size", "accumulate", "growth_interval"):
            _int(name, getattr(self, name), 1)
        _int("seed", self.seed, 0)
        _int("eval_every", self.eval_every, 0)
        if self.clip is not None:
            _positive_float("clip", self.clip)
        if isinstance(self.hidden, list):  # accept a list, store a hashable tuple
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if not isinstance(self.hidden, tuple):
            raise TypeError(f"hidden must be a tuple of ints, got {self.hidden!r}")
        for width in self.hidden:
            _int("hidden", width, 1)
        for name in ("layer_norm", "telemetry"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def effective_batch(self) -> int:
        """Samples per optimizer step: ``batch_size * accumulate``."""
        return self.batch_size * self.accumulate

    @property
    def policy_name(self) -> str:
        """The policy's name (a custom Policy keeps its own name)."""
        return as_policy(self.policy).name

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (the policy by name)."""
        d = (
            asdict(self)
            if not isinstance(self.policy, Policy)
            else {f.name: getattr(self, f.name) for f in fields(self)}
        )
        d["policy"] = self.policy_name
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"TrainConfig: unknown fields {sorted(unknown)}; known: {sorted(known)}"
            )
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _positive_float(name: str, value: object) -> None:
    v = _float(name, value)
    if not 0.0 < v < math.inf:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def _int(name: str, value: object, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """The dataset ``name`` of :data:`DATASETS` (synthetic ones seeded by ``seed``).

    The synthetic sets have 2,000 points: ``blobs`` 16 features and 4 classes,
    ``spirals`` 2 features (two interleaved spirals).
    """
    _choice("dataset", name, DATASETS)
    if name == "digits":
        return load_digits()
    if name == "blobs":
        return make_blobs(2000, 16, 4, seed=seed)
    return make_spirals(2000, seed=seed)


def _check_dataset(data: Dataset) -> None:
    """ValueError for data the model cannot train on (NaN/inf, bad labels)."""
    for part in ("x_train", "x_test"):
        x = np.asarray(getattr(data, part))
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(
                f"dataset.{part} must be a 2-D float array, got "
                f"{x.dtype} of shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(
                f"dataset.{part} contains NaN or inf "
                f"({np.count_nonzero(~np.isfinite(x))} values)"
            )
    for part, xpart in (("y_train", "x_train"), ("y_test", "x_test")):
        y = np.asarray(getattr(data, part))
        if y.shape != (len(getattr(data, xpart)),):
            raise ValueError(
                f"dataset.{part} must have one label per row of "
                f"dataset.{xpart}, got shape {y.shape}"
            )
        if (
            not np.issubdtype(y.dtype, np.integer)
            or y.size
            and (y.min() < 0 or y.max() >= data.n_classes)
        ):
            raise ValueError(f"dataset.{part} must be ints in [0, n_classes)")
    if data.x_train.shape[1] != data.x_test.shape[1]:
        raise ValueError("dataset: x_train and x_test have different widths")
