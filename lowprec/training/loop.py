"""Training a small MLP under a precision policy, with telemetry at every step.

:func:`train` runs the whole loop that mixed-precision training needs, in the order
the literature and PyTorch's AMP recipe use (Micikevicius et al., "Mixed Precision
Training", ICLR 2018; the ``torch.cuda.amp`` examples):

1. for each of ``accumulate`` micro-batches: forward, loss times ``loss_weight /
   accumulate``, times the loss scale, backward (gradients accumulate, still
   scaled; the scale stays constant until the effective step);
2. telemetry of every parameter's gradient: what rounding to the gradient format
   flushed to zero, left subnormal or overflowed (``param.raw_grad`` against
   ``param.grad``), recorded per step and per layer, and a histogram of log2|g|
   before rounding, added up per epoch;
3. ``unscale_`` (fp32 master gradients times 1/scale), gradient clipping by global
   norm on the *unscaled* gradients;
4. the step, skipped when any gradient is inf/NaN (with or without a scaler, so a
   non-finite gradient never reaches the weights), then the scaler's ``update``;
5. telemetry of the update: the fraction of weights that did not move although
   their gradient was nonzero (swallowed updates, ``w + dw == w``).

Periodically the same weights are evaluated on the test set twice: under the
policy, and copied into an fp32 model, which separates "the weights are bad" from
"the low-precision forward pass is bad".
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TextIO

import numba
import numpy as np

from lowprec import autograd, nn, optim
from lowprec.amp.policy import POLICIES, Policy, as_policy
from lowprec.amp.scaler import LossScaler
from lowprec.data.datasets import Dataset, load_digits, make_blobs, make_spirals
from lowprec.formats import Format, fp32
from lowprec.rounding.rounder import fits
from lowprec.training import telemetry

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "LOSS_SCALES",
    "OPTIMIZERS",
    "Progress",
    "TrainConfig",
    "TrainResult",
    "load_dataset",
    "train",
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


class Progress:
    """A one-line progress bar on stderr; no dependency, silent when disabled.

    On a terminal the line is redrawn in place (at most ten times a second); when
    the stream is not a terminal (a log file, CI) only the finished line is
    written, so logs do not fill with partial lines.

    Examples
    --------
    >>> import io
    >>> bar = Progress(4, "demo", stream=io.StringIO())
    >>> for _ in range(4):
    ...     bar.update(loss=0.5)
    >>> bar.close()
    >>> bar.stream.getvalue().strip()
    'demo [##############################] 4/4 loss 0.5'
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        width: int = 30,
    ) -> None:
        self.total, self.label, self.enabled = max(int(total), 1), label, enabled
        self.stream = sys.stderr if stream is None else stream
        self.width, self.done = width, 0
        self._info: dict[str, float | str] = {}
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1, **info: float | str) -> None:
        """Advance by ``n`` and show ``info`` (e.g. ``loss=0.12``) after the bar."""
        self.done = min(self.done + n, self.total)
        if not self.enabled:
            return
        if info:
            self._info = info
        now = time.monotonic()
        if self._tty and now - self._last >= 0.1:
            self._last = now
            self._draw("\r")

    def _draw(self, prefix: str) -> None:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        info = " ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in self._info.items()
        )
        self.stream.write(
            f"{prefix}{self.label} [{bar}] {self.done}/{self.total} {info}".rstrip()
        )
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw("\r" if self._tty else "")
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class TrainResult:
    """What :func:`train` returns: the configuration, the history and a summary.

    Attributes
    ----------
    config : TrainConfig
    telemetry : lowprec.training.telemetry.Telemetry
        ``telemetry.steps``: one record per optimizer step with ``step``,
        ``epoch``, ``loss`` (the unweighted cross-entropy, mean over the
        micro-batches), ``scale`` (None without loss scaling), ``skipped`` and
        ``layers`` (per parameter name: the :func:`~lowprec.training.telemetry.gradient_summary`
        of the gradient and the ``swallowed_fraction`` of the update).
        ``telemetry.evals``: ``step``, ``epoch``, ``test_accuracy`` and
        ``test_loss`` under the policy, ``test_accuracy_fp32`` and
        ``test_loss_fp32`` of the same weights in an fp32 model.
    summary : dict
        See :func:`train`.
    histograms : dict of str to list of int
        Per parameter, and for the gradient of the loss with respect to the
        logits (key ``"output"``), counts of log2|g| of the nonzero gradients
        before rounding to the gradient format (scaled, as the format sees them),
        summed over the run, in the bins ``hist_edges`` (one per binade,
        :data:`lowprec.training.telemetry.DEFAULT_LOG2_EDGES`). All zeros without
        telemetry.
    hist_edges : list of float
    gradient_format : str
        The policy's gradient format.
    model : lowprec.nn.Module or None
        The trained model (None after :meth:`from_json`).
    epoch_histograms : dict of str to list of list of int
        The same counts per epoch: ``epoch_histograms[name][e]`` holds epoch
        ``e + 1``'s, and they sum to ``histograms[name]``. This is how the
        histograms resolve time: the per-step records keep each layer's
        :func:`~lowprec.training.telemetry.gradient_summary` (per step and per layer), but
        a histogram has 277 bins, so one per layer and step would dominate the
        log; one per epoch shows the gradients drifting through the format's
        range at the cost of a few hundred numbers per layer and epoch. Empty
        for logs written before it existed.
    """

    config: TrainConfig
    telemetry: telemetry.Telemetry
    summary: dict[str, Any]
    histograms: dict[str, list[int]]
    hist_edges: list[float]
    gradient_format: str
    model: Any = field(default=None, repr=False, compare=False)
    epoch_histograms: dict[str, list[list[int]]] = field(default_factory=dict)

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The per-step records (``telemetry.steps``)."""
        return self.telemetry.steps

    @property
    def evals(self) -> list[dict[str, Any]]:
        """The evaluation records (``telemetry.evals``)."""
        return self.telemetry.evals

    def to_dict(self) -> dict[str, Any]:
        """The telemetry's JSON-ready dict, with the config, the summary and the
        histograms in its ``meta`` (everything except the model)."""
        self.telemetry.meta = {
            "kind": _LOG_KIND,
            "config": self.config.to_dict(),
            "summary": self.summary,
            "gradient_format": self.gradient_format,
            "hist_edges": list(self.hist_edges),
            "histograms": self.histograms,
            "epoch_histograms": self.epoch_histograms,
        }
        return self.telemetry.to_dict()

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as strict JSON (non-finite floats tagged as
        :class:`~lowprec.training.telemetry.Telemetry` does)."""
        Path(path).write_text(json.dumps(self.to_dict(), allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainResult:
        """The inverse of :meth:`to_dict` (without the model)."""
        t = telemetry.Telemetry.from_dict(d)
        meta = t.meta
        if meta.get("kind") != _LOG_KIND:
            raise ValueError("not a lowprec training log (meta.kind missing)")
        return cls(
            config=TrainConfig.from_dict(meta["config"]),
            telemetry=t,
            summary=meta["summary"],
            histograms=meta["histograms"],
            hist_edges=meta["hist_edges"],
            gradient_format=meta["gradient_format"],
            epoch_histograms=meta.get("epoch_histograms", {}),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> TrainResult:
        """Read a log written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def summary_text(self) -> str:
        """The summary as aligned ``name  value`` lines."""
        s = self.summary
        scale = "none" if s["final_scale"] is None else f"{s['final_scale']:g}"
        lines = [
            ("policy", self.config.policy_name),
            ("loss scaling", self.config.loss_scale),
            ("test accuracy", f"{s['test_accuracy']:.2%}"),
            ("test accuracy, fp32 eval", f"{s['test_accuracy_fp32']:.2%}"),
            ("final loss", f"{s['final_loss']:.4g}"),
            ("steps (skipped)", f"{s['steps']} ({s['skipped_steps']})"),
            ("final loss scale", scale),
            (
                f"logit gradients flushed ({self.gradient_format})",
                f"{s['output_flushed_fraction']:.2%}",
            ),
            (
                f"weight gradients flushed ({self.gradient_format})",
                f"{s['flushed_fraction']:.2%}",
            ),
            ("weight gradients subnormal", f"{s['subnormal_fraction']:.2%}"),
            ("updates swallowed", f"{s['swallowed_fraction']:.2%}"),
            ("time", f"{s['seconds']:.1f} s"),
        ]
        return "\n".join(f"{k:<34} {v}" for k, v in lines)


_LOG_KIND = "lowprec.train"


def train(
    config: TrainConfig | None = None,
    *,
    dataset: Dataset | None = None,
    progress: bool = False,
    label: str | None = None,
    num_threads: int | None = 1,
    **overrides: Any,
) -> TrainResult:
    """Train an MLP classifier under a precision policy and record what happened.

    Parameters
    ----------
    config : TrainConfig, optional
        The run; ``overrides`` replace some of its fields (or of the defaults),
        e.g. ``train(policy="fp16_mixed", loss_scale="dynamic")``.
    dataset : Dataset or str, optional
        Train on this :class:`~lowprec.data.datasets.Dataset` instead of
        ``config.dataset`` (the config's name is then only a label); a name is
        the same as the ``dataset`` override.
    progress : bool
        Draw a progress bar on stderr.
    label : str, optional
        The progress bar's label (default: the policy name).
    num_threads : int or None
        Numba threads for the emulated kernels during the run (restored after).
        The default 1 is fastest here: the arrays of a small MLP are a few
        thousand values, and waking worker threads for each of the thousands of
        kernel calls costs more than it saves (on a busy two-core machine, an
        fp16_pure epoch took 45 times longer with two threads than with one).
        None keeps the current setting.

    Returns
    -------
    TrainResult
        ``summary`` holds ``test_accuracy`` and ``test_loss`` (under the policy),
        ``test_accuracy_fp32`` and ``test_loss_fp32`` (the same weights in an
        fp32 model), ``final_loss`` (mean training loss of the last epoch, NaN
        if it was not finite), ``steps``, ``skipped_steps``, ``final_scale``,
        ``flushed_fraction``, ``subnormal_fraction`` and ``overflow_fraction``
        (over all gradient values of the run), ``swallowed_fraction`` (over all
        weights with a nonzero gradient in the applied steps) and ``seconds``.

    Raises
    ------
    ValueError
        For an invalid configuration, an unknown policy, loss scaling with a
        policy whose gradients are not fp32 master gradients, or NaN/inf in the
        data.

    Examples
    --------
    >>> r = train(policy="fp32", epochs=1, hidden=(16,))  # doctest: +SKIP
    >>> r.summary["test_accuracy"] > 0.8  # doctest: +SKIP
    True
    """
    if isinstance(dataset, str):
        overrides["dataset"], dataset = dataset, None
    elif dataset is not None and not isinstance(dataset, Dataset):
        raise TypeError(
            f"dataset must be a Dataset or a name, got {type(dataset).__name__}"
        )
    if config is None:
        config = TrainConfig(**overrides)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    elif overrides:
        config = config.replace(**overrides)
    data = load_dataset(config.dataset, config.seed) if dataset is None else dataset
    _check_dataset(data)
    before = numba.get_num_threads()
    if num_threads is not None:
        _int("num_threads", num_threads, 1)
        numba.set_num_threads(min(num_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return _Run(config, data, progress, label).run()
    finally:
        numba.set_num_threads(before)


class _Run:
    """The state of one training run (a class only to keep :func:`train` short)."""

    def __init__(
        self, config: TrainConfig, data: Dataset, progress: bool, label: str | None
    ) -> None:
        self.config = c = config
        self.data = data
        self.policy = as_policy(c.policy).replace(seed=c.seed)
        sizes = [data.x_train.shape[1], *c.hidden, int(data.n_classes)]
        self.model = nn.MLP(
            sizes,
            policy=self.policy,
            activation=c.activation,
            layer_norm=c.layer_norm,
            seed=c.seed,
        )
        self.named = self.model.named_parameters()
        self.names = [n for n, _ in self.named]
        params = self.model.parameters()
        if c.optimizer == "sgd":
            self.opt = optim.SGD(
                params,
                policy=self.policy,
                lr=c.lr,
                momentum=c.momentum,
                weight_decay=c.weight_decay,
            )
        else:
            self.opt = optim.Adam(
                params, policy=self.policy, lr=c.lr, weight_decay=c.weight_decay
            )
        self.scaler = None
        if c.loss_scale != "none":
            if self.opt.grad_format.precision < fp32.precision:
                raise ValueError(
                    f"loss_scale: {c.loss_scale!r} loss scaling needs fp32 master "
                    f"gradients to unscale, and policy {self.policy.name!r} has "
                    f"{self.opt.grad_format.name} gradients without master weights "
                    "(PyTorch's GradScaler refuses to unscale fp16 gradients too); "
                    "use a *_mixed policy or loss_scale='none'"
                )
            self.scaler = LossScaler(
                c.loss_scale, init_scale=c.init_scale, growth_interval=c.growth_interval
            )
        # The fp32 twin that evaluates the same weights without low precision.
        self.fp32_policy = POLICIES["fp32"]
        self.twin = nn.MLP(
            sizes,
            policy=self.fp32_policy,
            activation=c.activation,
            layer_norm=c.layer_norm,
            seed=c.seed,
        )
        self.grad_fmt = self.policy.gradients
        self.rng = np.random.default_rng(c.seed)
        n_micro = len(data.x_train) // c.batch_size
        self.steps_per_epoch = n_micro // c.accumulate
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"batch_size * accumulate = {c.effective_batch} exceeds the "
                f"{len(data.x_train)} training samples"
            )
        self.bar = Progress(
            self.steps_per_epoch * c.epochs, label or self.policy.name, enabled=progress
        )
        self.log = telemetry.Telemetry()
        self.edges = telemetry.DEFAULT_LOG2_EDGES
        # this epoch's histograms; closed epochs move to epoch_hist and hist_total
        self.hist = {
            n: np.zeros(len(self.edges) - 1, dtype=np.int64)
            for n in [OUTPUT, *self.names]
        }
        self.hist_total = {n: np.zeros_like(h) for n, h in self.hist.items()}
        self.epoch_hist: dict[str, list[list[int]]] = {n: [] for n in self.hist}
        self.output_totals = Counts()
        # run totals for the summary
        self.param_totals = Counts()
        self.n_moving = self.n_swallowed = 0

    # -- one run -------------------------------------------------------------

    def run(self) -> TrainResult:
        c, t0 = self.config, time.perf_counter()
        step = 0
        self.evaluate(step, 0)
        for epoch in range(1, c.epochs + 1):
            order = self.rng.permutation(len(self.data.x_train))
            for i in range(self.steps_per_epoch):
                step += 1
                lo = i * c.effective_batch
                self.train_step(step, epoch, order[lo : lo + c.effective_batch])
                if c.eval_every and step % c.eval_every == 0:
                    self.evaluate(step, epoch)
            self.close_epoch_histograms()
            if not c.eval_every and epoch < c.epochs:
                self.evaluate(step, epoch)
        if self.log.evals[-1]["step"] != step:
            self.evaluate(step, c.epochs)
        self.bar.close()
        return TrainResult(
            config=c,
            telemetry=self.log,
            summary=self.summarize(t0),
            histograms={n: h.tolist() for n, h in self.hist_total.items()},
            hist_edges=self.edges.tolist(),
            gradient_format=self.grad_fmt.name,
            model=self.model,
            epoch_histograms=self.epoch_hist,
        )

    def close_epoch_histograms(self) -> None:
        """Keep this epoch's histograms, add them to the run's, start at zero."""
        for name, h in self.hist.items():
            self.epoch_hist[name].append(h.tolist())
            self.hist_total[name] += h
            h[:] = 0

    def train_step(self, step: int, epoch: int, idx: np.ndarray) -> None:
        c, opt, scaler = self.config, self.opt, self.scaler
        scale = scaler.get_scale() if scaler is not None else None
        opt.zero_grad()
        weight = c.loss_weight / c.accumulate
        losses = []
        output = Counts() if c.telemetry else None
        for j in range(c.accumulate):
            mb = idx[j * c.batch_size : (j + 1) * c.batch_size]
            logits = self.model(self.data.x_train[mb])
            labels = self.data.y_train[mb]
            loss = autograd.cross_entropy(logits, labels)
            losses.append(loss.item())
            if weight != 1.0:
                loss = loss * weight
            if scaler is not None:
                loss = scaler.scale(loss)
            loss.backward()
            if c.telemetry:
                self.output_telemetry(logits, labels, weight * (scale or 1.0), output)
        layers = self.gradient_telemetry() if c.telemetry else {}
        if scaler is not None:
            scaler.unscale_(opt)
        if c.clip is not None:
            optim.clip_grad_norm_(opt, c.clip)
        # the arrays step() applies: for the finiteness check without a scaler
        # and for the update telemetry
        grads = opt.gradients() if c.telemetry or scaler is None else None
        before = [w.copy() for w in self.updated_arrays()] if c.telemetry else None
        if scaler is not None:
            applied = scaler.step(opt)
            scaler.update()
        else:
            # no scaler to check: never let inf/NaN reach the weights either
            applied = all(bool(np.isfinite(g).all()) for g in grads)
            if applied:
                opt.step()
        if c.telemetry and applied:
            self.update_telemetry(before, grads, layers)
        # the mean of one loss is that loss (np.mean of a list costs microseconds)
        loss_value = losses[0] if len(losses) == 1 else float(np.mean(losses))
        extra = {}
        if c.telemetry:
            extra["output"] = output.summary()
            self.output_totals.merge(output)
        self.log.record_step(
            step, loss_value, scale, not applied, layers, epoch=epoch, **extra
        )
        if not self.bar.enabled:
            self.bar.update()  # counts the step; a hidden bar shows nothing
        elif scaler is not None:
            self.bar.update(loss=loss_value, scale=f"{scale:g}")
        else:
            self.bar.update(loss=loss_value)

    def updated_arrays(self) -> list[np.ndarray]:
        """The arrays step() changes: the fp32 masters if any, else param.data."""
        return _weight_arrays(self.opt)

    def gradient_telemetry(self) -> dict[str, dict[str, float]]:
        """Per parameter: what rounding to the gradient format did; histograms."""
        layers = {}
        for name, p in self.named:
            raw = p.raw_grad if p.raw_grad is not None else np.zeros_like(p.data)
            grad = p.grad if p.grad is not None else np.zeros_like(p.data)
            s = telemetry.gradient_summary(raw, grad, self.grad_fmt)
            layers[name] = s
            self.param_totals.add(s)
            counts, _ = telemetry.log2_histogram(raw)  # the default edges
            self.hist[name] += counts
        return layers

    def output_telemetry(
        self, logits: autograd.Tensor, labels: np.ndarray, seed: float, counts: Counts
    ) -> None:
        """What rounding did to the gradient of the loss with respect to the
        logits: the first gradient of the backward pass, and the first to flush
        when the loss is small (everything below it is computed from it, so a
        value flushed here never shows in the weight gradients).

        The engine does not keep the unrounded value of intermediate gradients,
        so it is recomputed here in float64: ``(softmax - onehot) * seed / n``,
        where ``seed`` is the gradient the backward pass starts from (loss weight
        times scale). Only which values are zero matters for the flushed count,
        and float64 decides that as the engine's float32 does except within a
        float32 rounding of the flushing threshold.
        """
        z = logits.data.astype(np.float64)
        with np.errstate(all="ignore"):  # inf logits: NaN gradients, counted
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(labels)), labels] -= 1.0
            raw = p * (seed / len(labels))
        grad = logits.grad if logits.grad is not None else np.zeros_like(raw)
        counts.add(
            telemetry.gradient_summary(
                raw, grad.astype(np.float64), self.output_fmt(logits)
            )
        )
        hist, _ = telemetry.log2_histogram(raw)
        self.hist[OUTPUT] += hist

    def output_fmt(self, logits: autograd.Tensor) -> Format:
        """The format of the logits' gradient: the policy's gradient format, or
        the logits' own format when that is wider (as the engine does)."""
        g = self.policy.gradients
        return g if fits(logits.fmt, g) else logits.fmt

    def update_telemetry(
        self,
        before: list[np.ndarray],
        grads: list[np.ndarray],
        layers: dict[str, dict[str, float]],
    ) -> None:
        """Per parameter: the fraction of weights with a nonzero gradient that the
        step left unchanged (the update was swallowed by rounding)."""
        after = self.updated_arrays()
        for name, w0, w1, g in zip(self.names, before, after, grads, strict=True):
            moving = g != 0
            n = int(np.count_nonzero(moving))
            same = int(np.count_nonzero(w0[moving] == w1[moving]))
            self.n_moving += n
            self.n_swallowed += same
            layers.setdefault(name, {})["swallowed_fraction"] = same / n if n else 0.0

    def evaluate(self, step: int, epoch: int) -> None:
        """Test accuracy and loss of the current weights, under the policy and in
        fp32 (the weights copied into the fp32 twin)."""
        x, y = self.data.x_test, self.data.y_test
        record: dict[str, Any] = {"epoch": epoch}
        for p_twin, p in zip(
            self.twin.parameters(), self.model.parameters(), strict=True
        ):
            p_twin.data[...] = p.data  # fp16/bf16 values are exact in float32
        for suffix, model in (("", self.model), ("_fp32", self.twin)):
            logits = model(x)
            loss = autograd.cross_entropy(logits, y).item()
            acc = float(np.mean(np.argmax(logits.data, axis=1) == y))
            record["test_accuracy" + suffix] = acc
            record["test_loss" + suffix] = float(loss)
        self.log.record_eval(step, **record)

    def summarize(self, t0: float) -> dict[str, Any]:
        last = self.log.evals[-1]
        final_epoch = [
            s["loss"] for s in self.log.steps if s["epoch"] == self.config.epochs
        ]
        final_loss = float(np.mean(final_epoch)) if final_epoch else math.nan
        grads = self.param_totals.summary()
        return {
            "test_accuracy": last["test_accuracy"],
            "test_loss": last["test_loss"],
            "test_accuracy_fp32": last["test_accuracy_fp32"],
            "test_loss_fp32": last["test_loss_fp32"],
            "final_loss": final_loss if math.isfinite(final_loss) else math.nan,
            "steps": len(self.log.steps),
            "skipped_steps": sum(s["skipped"] for s in self.log.steps),
            "final_scale": (
                self.scaler.get_scale() if self.scaler is not None else None
            ),
            "output_flushed_fraction": self.output_totals.summary()["flushed_fraction"],
            "flushed_fraction": grads["flushed_fraction"],
            "subnormal_fraction": grads["subnormal_fraction"],
            "overflow_fraction": grads["overflow_fraction"],
            "swallowed_fraction": (
                self.n_swallowed / self.n_moving if self.n_moving else 0.0
            ),
            "nonzero_gradients": grads["nonzero"],
            "updates": self.n_moving,
            "seconds": time.perf_counter() - t0,
        }


OUTPUT = "output"  # the histogram of the logits' gradient, beside the parameters'


class Counts:
    """Counts of :func:`~lowprec.training.telemetry.gradient_summary` added over arrays."""

    KEYS = ("size", "nonzero", "flushed", "subnormal", "overflow")

    def __init__(self) -> None:
        self.n = dict.fromkeys(self.KEYS, 0)

    def add(self, s: dict[str, Any]) -> None:
        for k in self.KEYS:
            self.n[k] += s[k]

    def merge(self, other: Counts) -> None:
        for k in self.KEYS:
            self.n[k] += other.n[k]

    def summary(self) -> dict[str, Any]:
        """The counts and the fractions, with gradient_summary's denominators
        (a zero never rounds to nonzero, so the nonzero values after rounding are
        ``nonzero - flushed``)."""
        n = self.n
        return {
            **n,
            "flushed_fraction": _ratio(n["flushed"], n["nonzero"]),
            "subnormal_fraction": _ratio(n["subnormal"], n["nonzero"] - n["flushed"]),
            "overflow_fraction": _ratio(n["overflow"], n["nonzero"]),
        }


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def _weight_arrays(opt: optim.Optimizer) -> list[np.ndarray]:
    """The arrays an optimizer's step() writes: masters if it keeps them."""
    masters = opt.master_weights
    return list(masters) if masters is not None else [p.data for p in opt.params]
