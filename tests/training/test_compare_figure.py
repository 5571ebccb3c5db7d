"""The compare figure reads at a glance: coincident runs are marked, the histogram
panels share one x-range, each title names the run's headline failure, 120 dpi.

coincident_runs and headline are tested on synthetic curves and summaries whose
answers are worked out by hand; the figure on one short real comparison.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from lowprec.training.compare import (
    FIGURE_DPI,
    coincident_runs,
    compare,
    comparison_figure,
    headline,
)

ACC = np.array([0.2, 0.5, 0.8])
DOWN = np.linspace(2.0, 1.0, 50)  # the loss span of these curves is 1.0 (or more)


def test_identical_runs_coincide_with_the_first():
    curves = {k: (DOWN.copy(), ACC.copy()) for k in ("fp32", "a", "b")}
    curves["off"] = (DOWN + 0.5, ACC)
    assert coincident_runs(curves) == {"a": "fp32", "b": "fp32"}


def test_the_tolerances_are_a_fraction_of_the_loss_span_and_accuracy_points():
    curves = {
        "fp32": (DOWN, ACC),
        "near": (DOWN + 0.009, ACC + 0.014),  # span 1.009: 0.009 < 1% of it
        "far_loss": (DOWN + 0.02, ACC),
        "far_acc": (DOWN, ACC + np.array([0, 0.02, 0])),
    }
    assert coincident_runs(curves) == {"near": "fp32"}
    assert coincident_runs(curves, loss_tol=0.05, accuracy_tol=0.05) == {
        "near": "fp32",
        "far_loss": "fp32",
        "far_acc": "fp32",
    }


def test_followers_are_matched_against_leaders_only():
    # b is within tolerance of a (a follower of fp32) but not of fp32
    step = 0.008
    curves = {
        "fp32": (DOWN, ACC),
        "a": (DOWN + step, ACC),
        "b": (DOWN + 2 * step, ACC),
    }
    assert coincident_runs(curves) == {"a": "fp32"}


def test_nan_lengths_and_divergence():
    nan_tail = DOWN.copy()
    nan_tail[-5:] = np.nan
    curves = {
        "fp32": (DOWN, ACC),
        "short": (DOWN[:-1], ACC),
        "diverged": (nan_tail, ACC),
        "diverged_too": (nan_tail.copy(), ACC),
    }
    assert coincident_runs(curves) == {"diverged_too": "diverged"}


def test_headline_picks_the_largest_loss_of_information():
    bf16_pure = {
        "steps": 534,
        "skipped_steps": 0,
        "output_flushed_fraction": 0.0,
        "flushed_fraction": 0.0,
        "subnormal_fraction": 0.0,
        "nonzero_gradients": 100,
        "swallowed_fraction": 0.924,
        "updates": 1000,
    }
    assert headline(bf16_pure) == "92% of updates swallowed (w + Δw == w)"
    fp16_pure = dict(bf16_pure, output_flushed_fraction=0.9, swallowed_fraction=0.0)
    fp16_pure["subnormal_fraction"] = 1.0  # subnormal counts only when alone
    assert headline(fp16_pure) == "90% of logit gradients flushed to 0"
    skipping = dict(bf16_pure, skipped_steps=534)
    assert headline(skipping) == "100% of steps skipped (inf/NaN gradients)"
    scaled = dict(bf16_pure, swallowed_fraction=0.0, subnormal_fraction=0.171)
    assert headline(scaled) == "17% of weight gradients subnormal"
    clean = dict(bf16_pure, swallowed_fraction=0.009)  # below the 1% threshold
    assert headline(clean) == "nothing flushed, skipped or swallowed"
    # a fraction of nothing counted is no failure
    no_updates = dict(bf16_pure, updates=0)
    assert headline(no_updates) == "nothing flushed, skipped or swallowed"


def png_dpi(path) -> float:
    """The resolution a PNG's pHYs chunk records, in dots per inch."""
    data = path.read_bytes()
    i = data.index(b"pHYs")
    x_per_metre, _, unit = struct.unpack(">IIB", data[i + 4 : i + 13])
    assert unit == 1  # metres
    return x_per_metre * 0.0254


def test_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    runs = ["fp32", "bf16_mixed", "fp16_mixed"]
    c = compare(runs, epochs=1, hidden=(8,), dataset="blobs")
    fig = comparison_figure(c)
    ax_loss, ax_acc, *panels = fig.axes
    # one x-range for every histogram panel
    assert len(panels) == 3 and len({p.get_xlim() for p in panels}) == 1
    # each panel's title: the run, its accuracy and its headline failure
    for panel, (label, r) in zip(panels, c.results.items(), strict=True):
        title = panel.get_title()
        assert title.startswith(f"{label}: ") and headline(r.summary) in title
    # the legend says which runs coincide, as coincident_runs finds them
    curves = {}
    for label, r in c.results.items():
        lines = ax_loss.lines
        loss = next(ln for ln in lines if ln.get_label().startswith(label))
        acc = [e["test_accuracy"] for e in r.evals]
        curves[label] = (np.asarray(loss.get_ydata()), np.asarray(acc))
    same = coincident_runs(curves)
    texts = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    want = [f"{k} (= {same[k]})" if k in same else k for k in runs]
    assert texts == want
    c.plot(tmp_path / "c.png")
    assert FIGURE_DPI >= 110 and round(png_dpi(tmp_path / "c.png")) == FIGURE_DPI
