"""What a run returns: :class:`TrainResult`, its JSON log, and gradient counts.

:class:`TrainResult` holds the config, the telemetry, the summary and the
histograms, and writes and reads them as one JSON log (``meta.kind`` is
``"lowprec.train"``). :class:`Counts` adds up
:func:`~lowprec.training.telemetry.gradient_summary` records over arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lowprec._atomic import write_text
from lowprec.training import telemetry
from lowprec.training.config import TrainConfig

__all__ = ["OUTPUT", "Counts", "TrainResult", "divergence"]

OUTPUT = "output"  # the histogram of the logits' gradient, beside the parameters'

_LOG_KIND = "lowprec.train"


@dataclass
class TrainResult:
    """What :func:`~lowprec.training.loop.train` returns: the configuration, the
    history and a summary.

    Attributes
    ----------
    config : TrainConfig
    telemetry : lowprec.training.telemetry.Telemetry
        ``telemetry.steps``: one record per optimizer step with ``step``,
        ``epoch``, ``loss`` (the unweighted cross-entropy, mean over the
        micro-batches), ``scale`` (None without loss scaling), ``skipped`` and
        ``layers`` (per parameter name: the
        :func:`~lowprec.training.telemetry.gradient_summary` of the gradient and
        the ``swallowed_fraction`` of the update).
        ``telemetry.evals``: ``step``, ``epoch``, ``test_accuracy`` and
        ``test_loss`` under the policy, ``test_accuracy_fp32`` and
        ``test_loss_fp32`` of the same weights in an fp32 model.
    summary : dict
        See :func:`~lowprec.training.loop.train`; also ``diverged``, the reason
        of :func:`divergence` or None.
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
        :func:`~lowprec.training.telemetry.gradient_summary` (per step and per
        layer), but a histogram has 277 bins, so one per layer and step would
        dominate the log; one per epoch shows the gradients drifting through the
        format's range at the cost of a few hundred numbers per layer and epoch.
        Empty for logs written before it existed.
    """

    config: TrainConfig
    telemetry: telemetry.Telemetry
    summary: dict[str, Any]
    histograms: dict[str, list[int]]
    hist_edges: list[float]
    gradient_format: str
    model: Any = field(default=None, repr=False, compare=False)
    epoch_histograms: dict[str, list[list[int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the mark of a diverged run, in the summary and so in the JSON log;
        # computed here too for logs written before it existed
        self.summary.setdefault("diverged", divergence(self.summary))

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
        write_text(path, json.dumps(self.to_dict(), allow_nan=False) + "\n")

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


def divergence(summary: dict[str, Any]) -> str | None:
    """Why a run diverged, from its summary: its final loss is NaN, or it skipped
    more than half of its steps (a gradient was inf/NaN); None if neither.

    ``TrainResult.summary["diverged"]`` holds this.

    Examples
    --------
    >>> divergence({"final_loss": float("nan"), "steps": 44, "skipped_steps": 43})
    'final loss NaN, skipped 43 of 44 steps'
    >>> divergence({"final_loss": 0.1, "steps": 44, "skipped_steps": 0}) is None
    True
    """
    loss = summary.get("final_loss")
    steps, skipped = summary.get("steps", 0), summary.get("skipped_steps", 0)
    reasons = []
    if isinstance(loss, float) and loss != loss:  # NaN
        reasons.append("final loss NaN")
    if steps and 2 * skipped > steps:
        reasons.append(f"skipped {skipped} of {steps} steps")
    return ", ".join(reasons) or None


class Counts:
    """Counts of :func:`~lowprec.training.telemetry.gradient_summary` added up over
    arrays."""

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
