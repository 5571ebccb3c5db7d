"""Whole experiments: a config in, a result with telemetry out.

- :mod:`~lowprec.training.loop`: :class:`TrainConfig`, :func:`train`,
  :class:`TrainResult` (one run);
- :mod:`~lowprec.training.telemetry`: what a run records per step and per layer
  (flushed, subnormal and overflowed gradients, swallowed updates, histograms);
- :mod:`~lowprec.training.compare`: several runs side by side, the table and the
  figure.

Stands on :mod:`lowprec.nn`, :mod:`lowprec.optim`, :mod:`lowprec.amp` and
:mod:`lowprec.data`; only :mod:`lowprec.cli` imports it.
"""

from lowprec.training.loop import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
