"""Whole experiments: a config in, a result with telemetry out.

- :mod:`~lowprec.training.loop`: :func:`train` (one run), which also re-exports
  the names of the three modules it stands on:
  :mod:`~lowprec.training.config` (:class:`TrainConfig`, the choices,
  :func:`~lowprec.training.config.load_dataset`),
  :mod:`~lowprec.training.result` (:class:`TrainResult` and its JSON log) and
  :mod:`~lowprec.training.progress` (the progress bar);
- :mod:`~lowprec.training.telemetry`: what a run records per step and per layer
  (flushed, subnormal and overflowed gradients, swallowed updates, histograms);
- :mod:`~lowprec.training.compare`: several runs side by side, the table and the
  figure.

Stands on :mod:`lowprec.nn`, :mod:`lowprec.optim`, :mod:`lowprec.amp` and
:mod:`lowprec.data`; only :mod:`lowprec.cli` imports it.
"""

from lowprec.training.loop import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
