"""Several precision policies trained side by side: the table and the figure.

:func:`compare` trains the same MLP, from the same initial weights and on the same
batches, once per *run*, and :class:`Comparison` prints the table and draws the
figure of ``lowprec compare``. A run is a policy name with optional loss scaling,
``"POLICY[:SCALING]"``, where ``SCALING`` is ``none``, ``dynamic``, ``static`` (at
``init_scale``) or ``static=S``: ``"fp16_mixed:dynamic"``,
``"fp16_mixed:static=1024"``.

The default runs and settings are chosen so that one minute on one core shows the
lessons of the mixed-precision literature on the bundled digits (see
:data:`DEFAULTS`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lowprec._atomic import replacing, write_text
from lowprec.amp.policy import as_policy
from lowprec.formats import as_format
from lowprec.training.loop import (
    LOSS_SCALES,
    OUTPUT,
    TrainConfig,
    TrainResult,
    load_dataset,
    train,
)

__all__ = [
    "DEFAULTS",
    "DEFAULT_RUNS",
    "Comparison",
    "coincident_runs",
    "compare",
    "comparison_figure",
    "headline",
    "parse_number",
    "parse_run",
]

# Each run shows one lesson (Micikevicius et al. 2018; Zamirai et al. 2020):
DEFAULT_RUNS = (
    "fp32",  # the reference
    "fp16_pure",  # fp16 weights updated in fp16: small updates swallowed
    "fp16_mixed",  # fp32 master weights, but small gradients flush to zero
    "fp16_mixed:dynamic",  # ... which loss scaling lifts back into range
    "bf16_mixed",  # bf16's fp32-sized range needs no loss scaling
    "bf16_pure",  # bf16 weights, round to nearest: updates swallowed
    "bf16_pure_sr",  # ... stochastic rounding keeps them in expectation
    "bf16_pure_kahan",  # ... Kahan compensation keeps the lost low bits
)

# The settings of the default comparison: a short run at a small learning rate, so
# that bf16 updates of the weights fall below half a unit in the last place of the
# weights (bf16 keeps 8 bits: an update below about |w| / 512 is lost), with a loss
# weight of 2**-20 standing for a loss whose gradients are tiny (as the activation
# gradients of the SSD detector in Micikevicius et al., Fig. 3): without loss
# scaling, the logit gradients (softmax - onehot) / 16 * 2**-20 fall below fp16's
# smallest subnormal 2**-24 and flush to zero. SGD's step is lr * loss weight *
# gradient, so the learning rate is raised by the same 2**20: fp32 trains exactly
# as with weight 1 and lr 1e-3 (a power of two: no rounding differs).
DEFAULTS: dict[str, Any] = {
    "epochs": 6,
    "batch_size": 16,
    "optimizer": "sgd",
    "lr": 2.0**20 * 1e-3,
    "momentum": 0.9,
    "loss_weight": 2.0**-20,
    "hidden": (64,),
}


def parse_run(spec: str) -> dict[str, Any]:
    """The config fields a run spec ``"POLICY[:SCALING]"`` sets.

    Examples
    --------
    >>> parse_run("fp16_mixed:static=1024")
    {'policy': 'fp16_mixed', 'loss_scale': 'static', 'init_scale': 1024.0}
    >>> parse_run("bf16_mixed")
    {'policy': 'bf16_mixed', 'loss_scale': 'none'}
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"run must be 'POLICY[:SCALING]', got {spec!r}")
    name, _, scaling = spec.strip().partition(":")
    as_policy(name)  # ValueError naming the presets
    out: dict[str, Any] = {"policy": name, "loss_scale": "none"}
    if scaling:
        mode, _, value = scaling.partition("=")
        if mode not in LOSS_SCALES or (value and mode != "static"):
            raise ValueError(
                f"run {spec!r}: the scaling after ':' must be none, dynamic, "
                "static or static=S"
            )
        out["loss_scale"] = mode
        if value:
            try:
                out["init_scale"] = float(parse_number(value))
            except ValueError:
                raise ValueError(
                    f"run {spec!r}: cannot read the scale {value!r}"
                ) from None
    return out


def parse_number(text: str) -> float:
    """A number written as ``1024``, ``1e3`` or ``2**10`` (ValueError otherwise).

    Examples
    --------
    >>> parse_number("2**-12"), parse_number("1e3")
    (0.000244140625, 1000.0)
    """
    base, sep, exp = text.partition("**")
    if sep:
        return float(base) ** float(exp)
    return float(text)


@dataclass
class Comparison:
    """The results of :func:`compare`, one :class:`TrainResult` per run label."""

    results: dict[str, TrainResult]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per run: the table's numbers."""
        keys = (
            "test_accuracy",
            "test_accuracy_fp32",
            "final_loss",
            "skipped_steps",
            "steps",
            "final_scale",
            "output_flushed_fraction",
            "flushed_fraction",
            "subnormal_fraction",
            "swallowed_fraction",
            "nonzero_gradients",
            "updates",
            "seconds",
        )
        return [
            {
                "run": label,
                "gradient_format": r.gradient_format,
                **{k: r.summary[k] for k in keys},
            }
            for label, r in self.results.items()
        ]

    def table(self) -> str:
        """The comparison as an aligned text table.

        Columns: test accuracy under the policy and of the same weights in fp32;
        the mean training loss of the last epoch; skipped steps; the final loss
        scale; the gradient format; the fraction of nonzero logit gradients
        (d loss / d logits, where the backward pass starts) and of nonzero weight
        gradients that rounding flushed to zero, and of the weight gradients left
        subnormal; the fraction of weights with a nonzero gradient that a step
        left unchanged (swallowed updates); the time.

        A weight gradient's value "before rounding" is the matmul accumulator's:
        with an fp16 accumulator (fp16_pure) the flushing happens inside the
        accumulation, so its weight gradients show as subnormal, not flushed.
        """
        head = (
            "run",
            "test acc",
            "fp32 eval",
            "final loss",
            "skipped",
            "scale",
            "grads",
            "flushed dlogits",
            "flushed dW",
            "subnormal dW",
            "swallowed",
            "time",
        )
        lines = [head]
        for row in self.rows():
            scale = row["final_scale"]
            lines.append(
                (
                    row["run"],
                    f"{row['test_accuracy']:.1%}",
                    f"{row['test_accuracy_fp32']:.1%}",
                    _num(row["final_loss"]),
                    f"{row['skipped_steps']}/{row['steps']}",
                    _scale(scale),
                    row["gradient_format"],
                    f"{row['output_flushed_fraction']:.1%}",
                    _pct(row["flushed_fraction"], row["nonzero_gradients"]),
                    _pct(row["subnormal_fraction"], row["nonzero_gradients"]),
                    _pct(row["swallowed_fraction"], row["updates"]),
                    f"{row['seconds']:.1f} s",
                )
            )
        widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
        return "\n".join(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in lines
        )

    def to_dict(self) -> dict[str, Any]:
        """Every run's full log (see :meth:`TrainResult.to_dict`)."""
        return {
            "format": "lowprec-compare-log",
            "version": 1,
            "runs": {k: r.to_dict() for k, r in self.results.items()},
        }

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON."""
        write_text(path, json.dumps(self.to_dict(), allow_nan=False) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> Comparison:
        """Read a file written by :meth:`to_json`."""
        d = json.loads(Path(path).read_text())
        if d.get("format") != "lowprec-compare-log":
            raise ValueError(f"{path}: not a lowprec compare log")
        return cls({k: TrainResult.from_dict(v) for k, v in d["runs"].items()})

    def plot(self, path: str | Path) -> None:
        """Write a PNG: loss and test-accuracy curves, and per run the histogram
        of log2|g| of the gradients before rounding, with the gradient format's
        subnormal and normal ranges shaded.

        A run whose curves coincide with an earlier run's (:func:`coincident_runs`)
        is drawn as markers on that run's line and labelled ``(= that run)``; the
        histogram panels share one x-range; each panel's title gives the run's
        test accuracy and its largest failure (:func:`headline`). 120 dpi.

        Needs matplotlib (the ``plot`` extra: ``pip install lowprec[plot]``).
        """
        plot_comparison(self, path)


def _num(v: float) -> str:
    return f"{v:.4f}" if math.isfinite(v) else str(v)


def _scale(scale: float | None) -> str:
    """A loss scale as 2^k when it is a power of two; "-" without scaling."""
    if scale is None:
        return "-"
    k = math.log2(scale) if scale > 0 else 0.5
    return f"2^{k:g}" if k.is_integer() else f"{scale:g}"


def _pct(fraction: float, count: int) -> str:
    """A percentage, or "-" when nothing was counted (no nonzero gradient)."""
    return f"{fraction:.1%}" if count else "-"


def compare(
    runs: tuple[str, ...] | list[str] = DEFAULT_RUNS,
    config: TrainConfig | None = None,
    *,
    progress: bool = False,
    **overrides: Any,
) -> Comparison:
    """Train one model per run, all with the same data, initialisation and batches.

    Parameters
    ----------
    runs : sequence of str
        Run specs ``"POLICY[:SCALING]"`` (see :func:`parse_run`); labels must be
        distinct.
    config : TrainConfig, optional
        The shared settings; default ``TrainConfig(**DEFAULTS)``. ``overrides``
        replace some of them.
    progress : bool
        A progress bar per run on stderr.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> c = compare(["fp32", "bf16_mixed"], epochs=1)  # doctest: +SKIP
    >>> print(c.table())  # doctest: +SKIP
    """
    if isinstance(runs, str):
        raise TypeError("runs must be a sequence of run specs, not one string")
    runs = list(runs)
    if not runs:
        raise ValueError("runs must name at least one run")
    if len(set(runs)) != len(runs):
        raise ValueError(f"runs must be distinct, got {runs}")
    specs = {r: parse_run(r) for r in runs}  # validate all before training any
    base = TrainConfig(**DEFAULTS) if config is None else config
    if overrides:
        base = base.replace(**overrides)
    data = load_dataset(base.dataset, base.seed)
    results = {}
    for label, spec in specs.items():
        results[label] = train(
            base.replace(**spec), dataset=data, progress=progress, label=f"{label:<20}"
        )
    return Comparison(results)


# -- the figure ---------------------------------------------------------------

# Curves closer than this draw one line on the figure: 1% of the loss axis'
# span, and 1.5 accuracy points (of the 0..1 axis), a few pixels on a laptop.
COINCIDE_LOSS = 0.01
COINCIDE_ACCURACY = 0.015


def coincident_runs(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    loss_tol: float = COINCIDE_LOSS,
    accuracy_tol: float = COINCIDE_ACCURACY,
) -> dict[str, str]:
    """Which runs draw the same curves as an earlier run, so the eye sees one.

    Parameters
    ----------
    curves : dict of str to (loss, accuracy)
        Per run label, in legend order, the plotted (smoothed) training loss and
        the test accuracies at the evaluations, as arrays.
    loss_tol, accuracy_tol : float
        The largest difference that still draws one line: a fraction of the
        span of all the loss curves (default 1%), and an absolute accuracy
        (default 0.015: 1.5 percentage points).

    Returns
    -------
    dict of str to str
        For each run whose loss and accuracy curves both stay within the
        tolerances of an earlier run's, the label of the first such run.
        Runs of different lengths never coincide; NaN matches only NaN.

    Examples
    --------
    >>> import numpy as np
    >>> flat, down = np.ones(4), np.linspace(2, 1, 4)
    >>> acc = np.array([0.2, 0.8])
    >>> coincident_runs({"fp32": (down, acc), "bf16": (flat, acc),
    ...                  "fp16": (down + 1e-4, acc)})
    {'fp16': 'fp32'}
    """
    finite = [c[0][np.isfinite(c[0])] for c in curves.values()]
    finite = [f for f in finite if f.size]
    span = float(np.ptp(np.concatenate(finite))) if finite else 0.0
    leaders: list[str] = []
    same: dict[str, str] = {}
    for label, (loss, acc) in curves.items():
        for lead in leaders:
            lead_loss, lead_acc = curves[lead]
            if _close(loss, lead_loss, loss_tol * span) and _close(
                acc, lead_acc, accuracy_tol
            ):
                same[label] = lead
                break
        else:
            leaders.append(label)
    return same


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    with np.errstate(invalid="ignore"):  # inf - inf where both diverged
        return bool(np.all((np.abs(a - b) <= tol) | (a == b)))


# The failures a run's summary counts, in the order a title prefers them when
# their fractions tie: a skipped step or a flush loses information outright, a
# swallowed update loses it for that step, a subnormal keeps it with fewer bits.
_FAILURES = (
    ("skipped_steps", "steps", "of steps skipped (inf/NaN gradients)"),
    ("output_flushed_fraction", None, "of logit gradients flushed to 0"),
    ("flushed_fraction", "nonzero_gradients", "of weight gradients flushed to 0"),
    ("swallowed_fraction", "updates", "of updates swallowed (w + Δw == w)"),
    ("subnormal_fraction", "nonzero_gradients", "of weight gradients subnormal"),
)


def headline(summary: dict[str, Any], *, threshold: float = 0.01) -> str:
    """The largest failure a run's summary records, as a phrase for a title.

    The candidates are skipped steps, flushed logit and weight gradients,
    swallowed updates and subnormal weight gradients; a fraction below
    ``threshold`` does not count, and subnormals count only when nothing else
    does.

    Examples
    --------
    >>> headline({"swallowed_fraction": 0.924, "updates": 10, "skipped_steps": 0,
    ...           "steps": 5, "output_flushed_fraction": 0.0})
    '92% of updates swallowed (w + Δw == w)'
    >>> headline({"steps": 5, "skipped_steps": 0})
    'nothing flushed, skipped or swallowed'
    """
    found = []
    for key, count, what in _FAILURES:
        value = summary.get(key)
        if value is None or (count is not None and not summary.get(count)):
            continue
        fraction = value / summary[count] if key == "skipped_steps" else value
        if fraction >= threshold:
            found.append((fraction, what))
    lost = [f for f in found if "subnormal" not in f[1]]
    best = max(lost or found, key=lambda f: f[0], default=None)
    if best is None:
        return "nothing flushed, skipped or swallowed"
    return f"{best[0]:.0%} {best[1]}"


def plot_comparison(comparison: Comparison, path: str | Path) -> None:
    """Draw :meth:`Comparison.plot`'s figure into ``path`` (PNG, 120 dpi), written
    atomically (a temporary file beside it, then a rename)."""
    with replacing(path) as tmp:
        comparison_figure(comparison).savefig(tmp, dpi=FIGURE_DPI)


# Readable on a laptop: 9-11 pt text at 120 dpi is 15-18 pixels high.
FIGURE_DPI = 120


def comparison_figure(comparison: Comparison) -> Any:
    """The :class:`matplotlib.figure.Figure` of :meth:`Comparison.plot`."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend state
    except ImportError:
        raise ImportError(
            "the compare figure needs matplotlib: pip install "
            "'lowprec[plot]' (or pip install matplotlib)"
        ) from None
    results = comparison.results
    n = len(results)
    ncols = min(4, n)
    nrows = 1 + math.ceil(n / ncols)
    fig = Figure(figsize=(3.8 * max(ncols, 2), 3.4 * nrows), layout="constrained")
    grid = fig.add_gridspec(nrows, max(ncols, 2))
    half = max(ncols // 2, 1)
    ax_loss = fig.add_subplot(grid[0, :half])
    ax_acc = fig.add_subplot(grid[0, half:])
    same = _draw_curves(ax_loss, ax_acc, results)
    xlim = _shared_range(results.values())
    for k, (label, r) in enumerate(results.items()):
        ax = fig.add_subplot(grid[1 + k // ncols, k % ncols])
        _histogram_panel(ax, label, r, f"C{k % 10}", xlim, same.get(label))
    fig.suptitle(
        "Gradient exponents over the run, against the gradient format: "
        "red = flushed to zero (left) or overflow (right), orange = "
        "subnormal, green = normal",
        fontsize=11,
    )
    return fig


def _draw_curves(ax_loss: Any, ax_acc: Any, results: dict) -> dict[str, str]:
    """The loss and accuracy panels; returns :func:`coincident_runs`' mapping.

    A run that coincides with an earlier one is drawn as sparse hollow markers
    on that run's line, and its legend entry says ``= <that run>``.
    """
    curves, steps = {}, {}
    for label, r in results.items():
        steps[label] = np.array([s["step"] for s in r.steps], dtype=float)
        loss = _smooth(np.array([s["loss"] for s in r.steps], dtype=float), 10)
        acc = np.array([e["test_accuracy"] for e in r.evals], dtype=float)
        curves[label] = (loss, acc)
    same = coincident_runs(curves)
    markers = "osD^v<>ph*"
    n = len(results)  # the first lines on top: the reference stays visible
    for k, (label, r) in enumerate(results.items()):
        loss, acc = curves[label]
        color = f"C{k % 10}"
        shown = label if label not in same else f"{label} (= {same[label]})"
        if label in same:  # markers spread out so several followers stay apart
            every = (k % 5 * max(len(loss) // 60, 1), max(len(loss) // 12, 1))
            style = {"ls": "none", "marker": markers[k % 10], "mfc": "none"}
            style |= {"ms": 6, "mew": 1.3, "markevery": every}
        else:
            style = {"ls": "-", "lw": 1.8, "zorder": 2 + 0.01 * (n - k)}
        ax_loss.plot(steps[label], loss, color=color, label=shown, **style)
        eval_steps = [e["step"] for e in r.evals]
        acc_style = dict(style, markevery=None, marker=markers[k % 10], ms=5)
        ax_acc.plot(eval_steps, acc, color=color, label=shown, **acc_style)
        skipped = [s["step"] for s in r.steps if s["skipped"]]
        if skipped:  # a row of ticks near the top, one row per run
            height = np.full(len(skipped), 0.97 - 0.02 * k)
            axes = ax_loss.get_xaxis_transform()
            ax_loss.plot(skipped, height, "|", color=color, ms=5, transform=axes)
    finite = np.concatenate([c[0] for c in curves.values()])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    log = finite.size and finite.max() > 20 * finite.min()
    ax_loss.set(
        xlabel="step",
        ylabel="training loss (mean of 10 steps)",
        yscale="log" if log else "linear",
    )
    ax_loss.set_title("training loss (| marks a skipped step)", fontsize=11)
    ax_acc.set(xlabel="step", ylabel="test accuracy", ylim=(0, 1))
    ax_acc.set_title("test accuracy under the policy", fontsize=11)
    # the loss curves start high and fall: the lower left is free (one legend
    # serves both panels, which share the colours and markers)
    ax_loss.legend(fontsize=9, ncols=2, loc="lower left")
    return same


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Running mean over the last ``window`` finite values (NaN where none)."""
    finite = np.isfinite(y)
    values = np.where(finite, y, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    count = ccount[idx] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum[idx] - csum[lo]) / count, np.nan)


def _histogram_data(r: TrainResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges, weight-gradient counts of all layers, logit-gradient counts)."""
    edges = np.asarray(r.hist_edges, dtype=float)
    weights = np.sum(
        [np.asarray(h) for name, h in r.histograms.items() if name != OUTPUT], axis=0
    )
    output = np.asarray(r.histograms.get(OUTPUT, np.zeros_like(weights)))
    return edges, weights, output


def _panel_range(r: TrainResult) -> tuple[float, float]:
    """The x-range one run's panel needs: its data, and the format's limits
    when they are near it."""
    fmt = as_format(r.gradient_format)
    edges, weights, output = _histogram_data(r)
    nz = np.flatnonzero(weights + output)
    data_lo = edges[nz[0]] if nz.size else -30.0
    data_hi = edges[nz[-1] + 1] if nz.size else 0.0
    sub_lo = math.log2(fmt.smallest_subnormal)
    top = math.log2(fmt.max)
    lo = max(min(sub_lo - 2, data_lo - 2), data_lo - 12)
    hi = min(max(data_hi + 2, top + 2), data_hi + 20)
    return lo, hi


def _shared_range(results: Any) -> tuple[float, float]:
    """One x-range for every histogram panel, so that shifts show by position
    (the dynamic scaler moves fp16_mixed's gradients up by 16 binades)."""
    ranges = [_panel_range(r) for r in results]
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def _histogram_panel(
    ax: Any,
    label: str,
    r: TrainResult,
    color: str,
    xlim: tuple[float, float],
    same_as: str | None,
) -> None:
    """log2|g| before rounding: the weight gradients (filled, all layers) and the
    logit gradients (outline), over the format's flush, subnormal and normal
    ranges; the title gives the run's accuracy and its headline failure."""
    fmt = as_format(r.gradient_format)
    edges, weights, output = _histogram_data(r)
    lo, hi = xlim
    sub_lo = math.log2(fmt.smallest_subnormal)
    norm_lo = math.log2(fmt.smallest_normal)
    top = math.log2(fmt.max)
    if lo < sub_lo - 1:
        ax.axvspan(lo, sub_lo - 1, color="tab:red", alpha=0.12, lw=0)
    ax.axvspan(max(sub_lo - 1, lo), norm_lo, color="tab:orange", alpha=0.18, lw=0)
    ax.axvspan(max(norm_lo, lo), min(top + 1, hi), color="tab:green", alpha=0.10, lw=0)
    if top + 1 < hi:
        ax.axvspan(top + 1, hi, color="tab:red", alpha=0.12, lw=0)
    ax.stairs(
        weights, edges, fill=True, color=color, alpha=0.75, label="weight gradients"
    )
    ax.stairs(output, edges, color="black", lw=1.0, label="logit gradients")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlim(lo, hi)
    s = r.summary
    same = f" (= {same_as})" if same_as else ""
    ax.set_title(
        f"{label}: {s['test_accuracy']:.0%} test acc{same}\n{headline(s)}",
        fontsize=10,
    )
    ax.set_xlabel(f"log2|gradient| before rounding to {fmt.name}", fontsize=9)
    ax.set_ylabel("values", fontsize=9)
    ax.tick_params(labelsize=9)
    ax.legend(fontsize=8, loc="upper left")
