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

import math
import time
from typing import Any

import numba
import numpy as np

from lowprec import autograd, nn, optim
from lowprec.amp.policy import POLICIES, as_policy
from lowprec.amp.scaler import LossScaler
from lowprec.data.datasets import Dataset
from lowprec.formats import Format, fp32
from lowprec.rounding.rounder import fits
from lowprec.training import telemetry

# the names this module held before config.py, result.py and progress.py; they
# still import from here (and from the deprecated ``lowprec.train``)
from lowprec.training.config import (
    ACTIVATIONS,
    DATASETS,
    LOSS_SCALES,
    OPTIMIZERS,
    TrainConfig,
    _check_dataset,
    _int,
    load_dataset,
)
from lowprec.training.progress import Progress
from lowprec.training.result import OUTPUT, Counts, TrainResult

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


def _weight_arrays(opt: optim.Optimizer) -> list[np.ndarray]:
    """The arrays an optimizer's step() writes: masters if it keeps them."""
    masters = opt.master_weights
    return list(masters) if masters is not None else [p.data for p in opt.params]
