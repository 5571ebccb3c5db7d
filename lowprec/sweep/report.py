"""The report of a sweep store: a pivot table of one metric, a CSV and a heatmap.

:func:`pivot` groups the done points by one or two config settings and averages
one summary metric over the rest (seeds, say); :meth:`Pivot.text` prints it,
:meth:`Pivot.to_csv` writes it and :meth:`Pivot.to_png` draws it (matplotlib,
the ``plot`` extra).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowprec.sweep.store import PointRecord, Store

__all__ = ["Pivot", "pivot", "read_store"]


def read_store(path: str | Path) -> list[PointRecord]:
    """Every row of an existing store (ValueError if the file is missing)."""
    if not Path(path).is_file():
        raise ValueError(f"--report: no sweep store at {str(path)!r}")
    with Store(path) as db:
        return db.records()


@dataclass(frozen=True)
class Pivot:
    """Mean of ``metric`` per (row value, column value) of the done points.

    ``cells[i][j]`` is the mean over ``counts[i][j]`` points (NaN if none);
    ``failed`` counts the failed points, which are left out.
    """

    rows: str
    cols: str | None
    metric: str
    row_values: list[str]
    col_values: list[str]
    cells: list[list[float]]
    counts: list[list[int]]
    failed: int

    def text(self) -> str:
        """The table as aligned text, one row per row value."""
        corner = self.rows + (f" \\ {self.cols}" if self.cols else "")
        head = [corner] + (self.col_values if self.cols else [self.metric])
        body = [
            [r] + [_cell(v, n) for v, n in zip(vals, ns, strict=True)]
            for r, vals, ns in zip(
                self.row_values, self.cells, self.counts, strict=True
            )
        ]
        table = [head] + body
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in table
        ]
        title = f"{self.metric}, mean over the other settings"
        if self.failed:
            title += f" ({self.failed} failed points left out)"
        return "\n".join([title, *lines])

    def to_csv(self, path: str | Path) -> None:
        """One line per cell: the row value, the column value, mean, count."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([self.rows, self.cols or "", self.metric, "points"])
            for r, vals, ns in zip(
                self.row_values, self.cells, self.counts, strict=True
            ):
                for c, v, n in zip(self.col_values, vals, ns, strict=True):
                    w.writerow([r, c if self.cols else "", repr(v), n])

    def to_png(self, path: str | Path) -> None:
        """A heatmap of the cells, each annotated with its value."""
        try:
            from matplotlib.figure import Figure  # no pyplot: no global state
        except ImportError:
            raise ValueError(
                "--png needs matplotlib: pip install 'lowprec[plot]'"
            ) from None
        fig = Figure(
            figsize=(1.2 * len(self.col_values) + 2.5, 0.5 * len(self.row_values) + 1.8)
        )
        ax = fig.add_subplot()
        image = ax.imshow(self.cells, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(self.col_values)), self.col_values)
        ax.set_yticks(range(len(self.row_values)), self.row_values)
        ax.set_xlabel(self.cols or "")
        ax.set_ylabel(self.rows)
        for i, vals in enumerate(self.cells):
            for j, v in enumerate(vals):
                ax.text(
                    j,
                    i,
                    "-" if math.isnan(v) else f"{v:.4g}",
                    ha="center",
                    va="center",
                    color="w",
                )
        fig.colorbar(image, ax=ax, label=self.metric)
        fig.tight_layout()
        fig.savefig(path, dpi=120)


def pivot(
    records: list[PointRecord], by: list[str] | None = None, metric: str = "test_loss"
) -> Pivot:
    """The :class:`Pivot` of ``metric`` over the settings ``by`` (one or two).

    ``by`` defaults to the (first two) settings that differ between points.

    Examples
    --------
    >>> from lowprec.sweep.store import PointRecord
    >>> def rec(policy, lr, loss):
    ...     return PointRecord("k", "v", {"policy": policy, "lr": lr}, "done",
    ...                        {"test_loss": loss}, None, None, None, None,
    ...                        0.0, "", "")
    >>> p = pivot([rec("fp32", 0.1, 1.0), rec("fp32", 0.2, 3.0),
    ...            rec("bf16", 0.1, 2.0)], ["policy"])
    >>> print(p.text())
    test_loss, mean over the other settings
    policy  test_loss
    bf16            2
    fp32        2 (2)
    """
    done = [r for r in records if r.status == "done"]
    if not done:
        raise ValueError("--report: the store has no done points")
    settings = list(done[0].config)
    by = by or [k for k in settings if len({_label(r.config[k]) for r in done}) > 1][:2]
    by = by or settings[:1]
    if not 1 <= len(by) <= 2:
        raise ValueError(f"--pivot: one or two settings, got {len(by)}: {by}")
    for key in by:
        if key not in done[0].config:
            raise ValueError(f"--pivot: unknown setting {key!r}; known: {settings}")
    if metric not in done[0].summary:
        known = sorted(done[0].summary)
        raise ValueError(f"--metric: unknown metric {metric!r}; known: {known}")
    rows = _values(done, by[0])
    cols = _values(done, by[1]) if len(by) == 2 else [""]
    sums: dict[tuple[str, str], list[float]] = {}
    for r in done:
        col = _label(r.config[by[1]]) if len(by) == 2 else ""
        value = r.summary[metric]
        value = math.nan if value is None else float(value)
        sums.setdefault((_label(r.config[by[0]]), col), []).append(value)
    cells = [[_mean(sums.get((r, c), [])) for c in cols] for r in rows]
    counts = [[len(sums.get((r, c), [])) for c in cols] for r in rows]
    return Pivot(
        by[0],
        by[1] if len(by) == 2 else None,
        metric,
        rows,
        cols,
        cells,
        counts,
        len(records) - len(done),
    )


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _values(records: list[PointRecord], key: str) -> list[str]:
    raw = {_label(r.config[key]): r.config[key] for r in records}
    try:
        return sorted(raw, key=lambda k: raw[k])
    except TypeError:  # mixed types: by label
        return sorted(raw)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def _cell(value: float, n: int) -> str:
    if n == 0:
        return "-"
    return f"{value:.4g}" + (f" ({n})" if n > 1 else "")
