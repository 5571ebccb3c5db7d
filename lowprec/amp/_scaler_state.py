"""The settings and counters of a :class:`~lowprec.amp.scaler.LossScaler`: their
validation, read-only views and checkpoints (``state_dict``/``load_state_dict``).

The scaling protocol itself (``scale``, ``unscale_``, ``step``, ``update``) is in
:mod:`lowprec.amp.scaler`.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

MODES = ("dynamic", "static")


class _ScalerState:
    """The read-only views, the repr and the checkpoints of a loss scaler.

    :class:`~lowprec.amp.scaler.LossScaler` subclasses it; its ``__init__`` sets
    the attributes below, validated by the ``_check_*`` functions of this module.
    """

    _mode: str
    _enabled: bool
    _scale: np.float32
    _growth_factor: float
    _backoff_factor: float
    _growth_interval: int
    _min_scale: np.float32 | None
    _hysteresis: int
    _growth_tracker: int  # the counters: see LossScaler.__init__
    _hysteresis_tracker: int
    _per_optimizer: dict[int, dict[str, Any]]

    # ------------------------------------------------------------------ queries

    @property
    def mode(self) -> str:
        """``"dynamic"`` or ``"static"``."""
        return self._mode

    @property
    def enabled(self) -> bool:
        """Whether scaling is on (``False``: every method passes through)."""
        return self._enabled

    def is_enabled(self) -> bool:
        """Whether scaling is on (PyTorch's spelling of :attr:`enabled`)."""
        return self._enabled

    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled)."""
        return float(self._scale) if self._enabled else 1.0

    @property
    def found_inf(self) -> bool:
        """Whether any gradient unscaled in this step held inf or NaN.

        Cleared by :meth:`update`; log the return value of :meth:`step` to keep
        a record of skipped steps.
        """
        return any(s["found_inf"] for s in self._per_optimizer.values())

    @property
    def growth_factor(self) -> float:
        """Multiplier applied after ``growth_interval`` clean steps."""
        return self._growth_factor

    @property
    def backoff_factor(self) -> float:
        """Multiplier applied on a backoff."""
        return self._backoff_factor

    @property
    def growth_interval(self) -> int:
        """Consecutive clean steps before the scale grows."""
        return self._growth_interval

    @property
    def min_scale(self) -> float | None:
        """Floor for the scale, or None."""
        return None if self._min_scale is None else float(self._min_scale)

    @property
    def hysteresis(self) -> int:
        """Overflowing steps tolerated before backing off."""
        return self._hysteresis

    def __repr__(self) -> str:
        return (
            f"LossScaler({self._mode!r}, scale={self.get_scale()!r}, "
            f"growth_factor={self._growth_factor}, "
            f"backoff_factor={self._backoff_factor}, "
            f"growth_interval={self._growth_interval}, "
            f"min_scale={self.min_scale}, hysteresis={self._hysteresis}, "
            f"enabled={self._enabled})"
        )

    # ------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state as a plain dict (empty when disabled).

        Keys as PyTorch's ``GradScaler.state_dict``: ``scale``,
        ``growth_factor``, ``backoff_factor``, ``growth_interval``,
        ``_growth_tracker``; and lowprec's own: ``mode``, ``min_scale``,
        ``hysteresis``, ``_hysteresis_tracker``. Take it after :meth:`update`.
        """
        if not self._enabled:
            return {}
        return {
            "scale": float(self._scale),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
            "mode": self._mode,
            "min_scale": self.min_scale,
            "hysteresis": self._hysteresis,
            "_hysteresis_tracker": self._hysteresis_tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (no-op when disabled).

        A PyTorch ``GradScaler`` state (the five PyTorch keys only) is accepted
        too; lowprec's keys then keep their current values and the hysteresis
        counter is set full.

        Raises
        ------
        RuntimeError
            For an empty dict (saved from a disabled scaler), as PyTorch.
        ValueError
            For a missing PyTorch key or an invalid value.
        """
        if not self._enabled:
            return
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"state_dict must be a dict, got {type(state_dict).__name__}"
            )
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved "
                "from a disabled LossScaler."
            )
        required = (
            "scale",
            "growth_factor",
            "backoff_factor",
            "growth_interval",
            "_growth_tracker",
        )
        missing = [k for k in required if k not in state_dict]
        if missing:
            raise ValueError(f"state_dict lacks the keys {missing}")
        # Validate everything before changing anything.
        mode = state_dict.get("mode", self._mode)
        if mode not in MODES:
            raise ValueError(f"state_dict['mode'] must be one of {MODES}, got {mode!r}")
        scale = _check_scale("state_dict['scale']", state_dict["scale"])
        growth_factor = _check_growth_factor(state_dict["growth_factor"])
        backoff_factor = _check_backoff_factor(state_dict["backoff_factor"])
        interval = _check_count(
            "state_dict['growth_interval']", state_dict["growth_interval"]
        )
        tracker = _check_count(
            "state_dict['_growth_tracker']", state_dict["_growth_tracker"], low=0
        )
        hysteresis = _check_count(
            "state_dict['hysteresis']", state_dict.get("hysteresis", self._hysteresis)
        )
        h_tracker = _check_count(
            "state_dict['_hysteresis_tracker']",
            state_dict.get("_hysteresis_tracker", hysteresis),
            low=0,
        )
        min_scale = state_dict.get("min_scale", self.min_scale)
        if min_scale is not None:
            min_scale = _check_scale("state_dict['min_scale']", min_scale)
        self._mode = mode
        self._scale = scale
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = interval
        self._growth_tracker = tracker
        self._hysteresis = hysteresis
        self._hysteresis_tracker = h_tracker
        self._min_scale = min_scale


# ---------------------------------------------------------------- validation


def _check_scale(arg: str, value: object) -> np.float32:
    """A positive number that stays positive and finite in float32."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{arg} must be a number, got {type(value).__name__}")
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{arg} must be positive and finite, got {value!r}")
    with np.errstate(over="ignore", under="ignore"):
        s = np.float32(v)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(
            f"{arg}={value!r} is not positive and finite in float32, where the "
            "scale is held"
        )
    return s


def _check_growth_factor(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"growth_factor must be a number, got {type(value).__name__}")
    v = float(value)
    if not (math.isfinite(v) and v > 1.0):
        raise ValueError(f"growth_factor must be finite and > 1, got {value!r}")
    return v


def _check_backoff_factor(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"backoff_factor must be a number, got {type(value).__name__}")
    v = float(value)
    if not (0.0 < v < 1.0):
        raise ValueError(f"backoff_factor must be in (0, 1), got {value!r}")
    return v


def _check_count(arg: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{arg} must be >= {low}, got {value!r}")
    return int(value)
