"""One sweep point, run where a worker runs it: a pure function of its config.

:func:`run_point` is what the client sends to a Dask worker (and what the serial
runner calls directly). It takes the canonical config and returns a plain dict:
everything it computes comes from the config (its ``seed`` included), never
from the worker, so a retried or moved point gives the same bits. An exception
in the run is caught and returned as a failed record, so one bad point never
stops a sweep; only the client writes the store.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from typing import Any

from lowprec.training import TrainConfig, train

__all__ = ["run_point"]


def run_point(config: dict[str, Any]) -> dict[str, Any]:
    """Train the point ``config`` (a canonical config dict) on one Numba thread.

    Returns
    -------
    dict
        ``status`` (``"done"`` or ``"failed"``), ``summary`` (the run's summary
        without its wall time), ``steps`` and ``evals`` (the per-step and
        evaluation records), ``error`` (the exception's type and message, or
        None), ``traceback``, ``wall_time`` (seconds) and ``worker``
        (``host:pid``).
    """
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        result = train(TrainConfig.from_dict(config), num_threads=1)
    except Exception as exc:  # noqa: BLE001 -- a failed point is data, not a crash
        return {
            "status": "failed",
            "summary": None,
            "steps": None,
            "evals": None,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "wall_time": time.perf_counter() - t0,
            "worker": worker,
        }
    # the summary's own "seconds" is a timing, not a result: it goes to wall_time
    summary = {k: v for k, v in result.summary.items() if k != "seconds"}
    return {
        "status": "done",
        "summary": summary,
        "steps": result.steps,
        "evals": result.evals,
        "error": None,
        "traceback": None,
        "wall_time": time.perf_counter() - t0,
        "worker": worker,
    }
