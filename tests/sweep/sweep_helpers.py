"""Shared pieces of the sweep tests: tiny specs and bit-pattern comparisons."""

from __future__ import annotations

import struct
from typing import Any

from lowprec.training import TrainConfig, train

# a point trains in a few milliseconds: 1 epoch of 1,600 blobs in batches of 512
TINY = {
    "dataset": "blobs",
    "epochs": 1,
    "batch_size": 512,
    "hidden": [8],
    "telemetry": False,
}


def tiny_spec(**grid: list) -> dict[str, Any]:
    """A spec of TINY with ``grid`` (default: two policies by two rates)."""
    return {
        "base": dict(TINY),
        "grid": grid or {"policy": ["fp32", "bf16_mixed"], "lr": [0.1, 0.05]},
    }


# a config that validates but whose run raises (GradScaler's rule)
FAILING = {"policy": "fp16_pure", "loss_scale": "dynamic"}


def bits(obj: Any) -> Any:
    """``obj`` with every float replaced by its float64 bit pattern (hex), so
    ``==`` tells -0.0 from 0.0 and compares NaN payloads."""
    if isinstance(obj, float):
        return struct.pack("<d", obj).hex()
    if isinstance(obj, dict):
        return {k: bits(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [bits(v) for v in obj]
    return obj


def record_bits(records: list) -> list[tuple]:
    """What must not change between runs of a point, as bit patterns."""
    return [
        (r.key, r.status, bits(r.summary), bits(r.steps), bits(r.evals), r.error)
        for r in records
    ]


def direct_bits(config: dict[str, Any]) -> tuple:
    """The point run by the training layer itself, outside any sweep code."""
    r = train(TrainConfig.from_dict(config), num_threads=1)
    summary = {k: v for k, v in r.summary.items() if k != "seconds"}
    return bits(summary), bits(r.steps), bits(r.evals)
