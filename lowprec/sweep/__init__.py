"""Sweeps: a grid of training runs from a TOML spec, on Dask, resumable.

- :mod:`~lowprec.sweep.spec`: the TOML spec (``[base]``, ``[grid]``,
  ``[[include]]``) read into a validated :class:`Spec` and its points, each
  keyed by a hash of its canonical config and the lowprec version;
- :mod:`~lowprec.sweep.store`: the SQLite store (WAL mode), one row per point,
  written only by the client, one transaction per result;
- :mod:`~lowprec.sweep.runner`: :func:`run`, which runs only the missing
  points, on an embedded ``LocalCluster``, an existing Dask cluster, or
  serially in this process;
- :mod:`~lowprec.sweep.report`: the pivot table, CSV and heatmap of a store.

Stands on :mod:`lowprec.training`; only :mod:`lowprec.cli` imports it. Dask
(the ``lowprec[distributed]`` extra) is imported only when a sweep runs on it.
"""

from lowprec.sweep.report import Pivot, pivot, read_store
from lowprec.sweep.runner import EXTRA, SweepResult, run
from lowprec.sweep.spec import Point, Spec
from lowprec.sweep.store import PointRecord, Store

__all__ = [
    "EXTRA",
    "Pivot",
    "Point",
    "PointRecord",
    "Spec",
    "Store",
    "SweepResult",
    "pivot",
    "read_store",
    "run",
]
