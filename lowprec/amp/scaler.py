"""Loss scaling: keep small fp16 gradients from flushing to zero.

Backpropagation is linear in the loss, so multiplying the loss by a scale ``S``
multiplies every gradient by ``S`` too. Gradients too small for fp16 (below
``2**-24``) are lifted into its range by the backward pass; before the weight
update they are divided by ``S`` again, in fp32, where they fit. If ``S`` is
too large some gradient overflows to inf (or becomes NaN); that step is then
skipped, so no inf/NaN ever reaches the weights (Micikevicius et al., "Mixed
Precision Training", ICLR 2018, section 3.2).

:class:`LossScaler` follows the rules of PyTorch's ``torch.amp.GradScaler``
(``torch/amp/grad_scaler.py`` and the kernels ``_amp_update_scale_`` and
``_amp_foreach_non_finite_check_and_unscale_`` in
``aten/src/ATen/native/cpu/AmpGradScalerKernels.cpp``), and adds a static mode,
a ``min_scale`` floor and Megatron-LM's hysteresis. Its settings, their checks and
its checkpoints live in ``_scaler_state.py``, the unscaling and its Numba kernel in
``_unscale.py``.

One training step::

    loss = criterion(model(x), y)
    scaler.scale(loss).backward()     # gradients are S * dL/dw
    scaler.unscale_(opt)              # optional: only to clip or inspect them
    clip_grad_norm_(opt, 1.0)         # on unscaled gradients
    applied = scaler.step(opt)        # unscales if needed; skips on inf/NaN
    scaler.update()                   # adjusts S for the next step
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from lowprec.amp._scaler_state import (
    MODES,
    _check_backoff_factor,
    _check_count,
    _check_growth_factor,
    _check_scale,
    _ScalerState,
)
from lowprec.amp._unscale import unscale_arrays
from lowprec.formats import Format, as_format, fp32

__all__ = ["LossScaler"]

# The per-optimizer stages of one step, as GradScaler's OptState.
_UNSCALED = "unscaled"
_STEPPED = "stepped"


class _Optimizer(Protocol):
    """What the scaler needs from an optimizer (lowprec.optim.Optimizer has it)."""

    grad_format: Format

    def gradients(self) -> list[np.ndarray]: ...

    def step(self) -> Any: ...


class LossScaler(_ScalerState):
    """Static or dynamic loss scaling with PyTorch ``GradScaler``'s rules.

    Parameters
    ----------
    mode : {"dynamic", "static"}
        ``"dynamic"`` adjusts the scale as below; ``"static"`` keeps
        ``init_scale`` for ever (steps whose gradients hold inf/NaN are still
        skipped).
    init_scale : float
        The first scale. Like PyTorch, the scale is held as a float32 number,
        so ``init_scale`` is rounded to float32 (it must stay positive and
        finite there).
    growth_factor : float
        Multiplier (> 1) applied after ``growth_interval`` consecutive clean
        steps.
    backoff_factor : float
        Multiplier (between 0 and 1) applied on a step with inf/NaN gradients.
    growth_interval : int
        Consecutive clean steps (>= 1) before the scale grows.
    min_scale : float or None
        Floor for the scale: a backoff never takes it below ``min_scale``
        (Megatron-LM's ``min_scale``). Must not exceed ``init_scale``.
    hysteresis : int
        Overflowing steps (>= 1) tolerated before backing off; 1 is
        PyTorch's rule. See :meth:`update`.
    enabled : bool
        ``False`` makes the scaler a pass-through: :meth:`scale` returns the
        loss unchanged, :meth:`unscale_` and :meth:`update` do nothing and
        :meth:`step` just calls ``optimizer.step()``.

    Notes
    -----
    **Protocol.** Each step is ``scale(loss).backward()``, optionally
    :meth:`unscale_` (to clip or inspect gradients), :meth:`step`, then
    :meth:`update` once after all optimizers have stepped. An optimizer is any
    object with ``gradients()`` (the arrays ``step()`` will apply, mutable in
    place), ``grad_format`` and ``step()``.

    **Gradient accumulation** over ``k`` micro-batches: call
    ``scale(loss_i).backward()`` for each micro-batch, letting the gradients
    accumulate *scaled* and with the *same* scale (nothing in between may call
    :meth:`unscale_`, :meth:`step` or :meth:`update`); then, once for the
    effective batch, :meth:`unscale_` if clipping, :meth:`step` and
    :meth:`update`. Unscaling a partial sum and adding more scaled gradients
    to it would mix two scales, and an update in the middle would change the
    scale under the accumulated sum.

    **The scale is float32**, as in PyTorch: a new scale is the float32
    rounding of ``scale * factor`` computed in float64. A dynamic scale that
    keeps backing off (gradients NaN whatever the scale) reaches zero after
    about 280 steps with the defaults, as PyTorch's does; ``min_scale``
    prevents that.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.scaler import LossScaler
    >>> class Opt:  # the smallest optimizer the scaler accepts
    ...     grad_format = "fp32"
    ...     def __init__(self): self.g = [np.zeros(2, np.float32)]; self.steps = 0
    ...     def gradients(self): return self.g
    ...     def step(self): self.steps += 1
    >>> opt, scaler = Opt(), LossScaler(init_scale=1024.0, growth_interval=2)
    >>> scaler.scale(0.5)                     # the loss times the scale
    512.0
    >>> opt.g[0][:] = [2048.0, np.inf]       # an overflowing backward pass
    >>> scaler.step(opt), opt.steps          # skipped: the weights are safe
    (False, 0)
    >>> scaler.update(); scaler.get_scale()  # backed off
    512.0
    >>> opt.g[0][:] = [512.0, 1.0]
    >>> scaler.step(opt), opt.g[0].tolist()  # applied, on unscaled gradients
    (True, [1.0, 0.001953125])
    """

    def __init__(
        self,
        mode: str = "dynamic",
        *,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        min_scale: float | None = None,
        hysteresis: int = 1,
        enabled: bool = True,
    ) -> None:
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(enabled, bool | np.bool_):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        self._mode = mode
        self._enabled = bool(enabled)
        self._scale = _check_scale("init_scale", init_scale)
        self._growth_factor = _check_growth_factor(growth_factor)
        self._backoff_factor = _check_backoff_factor(backoff_factor)
        self._growth_interval = _check_count("growth_interval", growth_interval)
        self._hysteresis = _check_count("hysteresis", hysteresis)
        self._min_scale = None
        if min_scale is not None:
            self._min_scale = _check_scale("min_scale", min_scale)
            if self._min_scale > self._scale:
                raise ValueError(
                    f"min_scale ({min_scale}) must not exceed init_scale ({init_scale})"
                )
        # Consecutive clean steps since the last growth or overflow.
        self._growth_tracker = 0
        # Overflows still tolerated before a backoff (Megatron-LM's tracker).
        self._hysteresis_tracker = self._hysteresis
        # This step: id(optimizer) -> {"stage": ..., "found_inf": bool}.
        self._per_optimizer: dict[int, dict[str, Any]] = {}
        # The last grad_format that passed the fp32 check (kept alive, compared by
        # identity): as_format and the range checks cost more than the unscaling.
        self._fp32_ok: object = None

    # ------------------------------------------------------------------ queries

    # ------------------------------------------------------------ the protocol

    def scale(self, loss: Any) -> Any:
        """Return ``loss`` times the current scale.

        Parameters
        ----------
        loss : Tensor, numpy array or float
            A :class:`lowprec.autograd.Tensor` (the product is a Tensor, so
            ``.backward()`` on it produces scaled gradients), or a plain
            number or array.

        Returns
        -------
        The scaled loss, made by ``loss * scale`` with the loss's own
        multiplication operator; ``loss`` itself when the scaler is disabled.
        The scale and the step state are not changed, so this may be called
        once per micro-batch when accumulating gradients.
        """
        if not self._enabled:
            return loss
        # A Python float holds the float32 scale exactly and lets the loss's
        # type decide the result's type (numpy keeps float32 arrays float32).
        return loss * float(self._scale)

    def unscale_(self, optimizer: _Optimizer) -> None:
        """Divide the optimizer's gradients by the scale, in place, and check them.

        Each gradient array ``g`` becomes ``g * r`` with ``r`` the reciprocal
        of the scale computed in float64 and rounded to float32, as PyTorch
        does. The product is computed in the array's own precision: float32
        arrays in float32 arithmetic (one rounding), float64 arrays in float64.
        Any inf or NaN in the result sets :attr:`found_inf` for this step; all
        arrays are unscaled even then.

        Call it at most once per optimizer per step, after the last backward
        pass of the step (after all micro-batches), and only when the
        unscaled gradients are needed before :meth:`step` (gradient clipping,
        inspection); :meth:`step` unscales otherwise.

        Raises
        ------
        RuntimeError
            If ``unscale_`` or ``step`` was already called for this optimizer
            since the last :meth:`update`.
        ValueError
            If ``optimizer.grad_format`` is narrower than fp32, or a gradient
            array is not float32/float64: an unscaled gradient is small again
            and would underflow in its low-precision format, so unscaling
            must happen in fp32 master gradients.
        TypeError
            If ``optimizer`` lacks ``gradients()``/``grad_format``/``step()``
            or a gradient is not a numpy array.

        Notes
        -----
        PyTorch tests the gradients *before* multiplying; this tests the
        products, which also catches a finite gradient that overflows when the
        scale is below 1. The two agree in every other case.
        """
        if not self._enabled:
            return
        _check_optimizer(optimizer, need_gradients=True)
        state = self._per_optimizer.get(id(optimizer))
        if state is not None and state["stage"] == _UNSCALED:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the "
                "last update()."
            )
        if state is not None and state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        declared = optimizer.grad_format
        if declared is not self._fp32_ok:
            fmt = as_format(declared, "optimizer.grad_format")
            if _narrower_than_fp32(fmt):
                raise ValueError(
                    f"optimizer.grad_format is {fmt.name}: master gradients must be "
                    "fp32; use a policy with master weights"
                )
            self._fp32_ok = declared
        found_inf = unscale_arrays(list(optimizer.gradients()), self._scale)
        self._per_optimizer[id(optimizer)] = {
            "stage": _UNSCALED,
            "found_inf": found_inf,
        }

    def step(self, optimizer: _Optimizer) -> bool:
        """Unscale (unless :meth:`unscale_` was called) and update, unless inf/NaN.

        Returns
        -------
        bool
            True if ``optimizer.step()`` ran, False if the step was skipped
            because a gradient held inf or NaN (the weights are unchanged).
            Always True when the scaler is disabled.

        Raises
        ------
        RuntimeError
            If ``step`` was already called for this optimizer since the last
            :meth:`update`.
        ValueError, TypeError
            As :meth:`unscale_`.
        """
        if not self._enabled:
            _check_optimizer(optimizer, need_gradients=False)
            optimizer.step()
            return True
        _check_optimizer(optimizer, need_gradients=True)
        state = self._per_optimizer.get(id(optimizer))
        if state is not None and state["stage"] == _STEPPED:
            raise RuntimeError(
                "step() has already been called since the last update()."
            )
        if state is None:
            self.unscale_(optimizer)
            state = self._per_optimizer[id(optimizer)]
        applied = not state["found_inf"]
        if applied:
            optimizer.step()
        state["stage"] = _STEPPED
        return applied

    def update(self, new_scale: float | None = None) -> None:
        """Adjust the scale after this step's optimizers have stepped.

        In dynamic mode, with ``found`` = any optimizer's gradients held
        inf/NaN this step:

        * ``found``: the growth counter resets to 0 and the hysteresis
          counter drops by one; when it reaches 0 the scale is multiplied by
          ``backoff_factor`` (and raised to ``min_scale`` if below it). With
          ``hysteresis=1`` (the default) every overflow backs off: PyTorch's
          rule.
        * clean: the growth counter counts up; when it reaches
          ``growth_interval`` it resets to 0, the hysteresis counter is
          restored to ``hysteresis``, and the scale is multiplied by
          ``growth_factor`` unless the product is inf in float32, in which
          case the old scale is kept (PyTorch: "do not grow the scale past
          fp32 bounds to inf").

        So the scale grows after exactly ``growth_interval`` consecutive clean
        steps. The hysteresis counter is *not* restored by a single clean step,
        only by a full clean growth interval: with ``hysteresis=h``, the h-th
        overflow since the last growth backs off, and so does every further
        one until a growth. This is Megatron-LM's ``DynamicGradScaler``
        (``megatron/core/optimizer/grad_scaler.py``; DeepSpeed calls the same
        idea ``hysteresis``, older Megatron/Apex code ``delayed_shift``).

        In static mode the scale and counters never change. In both modes the
        per-step state (:attr:`found_inf`, which optimizers were unscaled or
        stepped) is cleared.

        Parameters
        ----------
        new_scale : float, optional
            Set the scale to this value (rounded to float32) instead of
            applying the rules, as PyTorch's ``update(new_scale)``; the
            counters are left alone.

        Raises
        ------
        RuntimeError
            If no optimizer was unscaled or stepped since the last update
            (and no ``new_scale`` was given).
        """
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = _check_scale("new_scale", new_scale)
        else:
            if not self._per_optimizer:
                raise RuntimeError(
                    "No inf checks were recorded prior to update(): call "
                    "step(optimizer) (or unscale_) before update()."
                )
            if self._mode == "dynamic":
                self._update_dynamic(self.found_inf)
        self._per_optimizer = {}

    def _update_dynamic(self, found_inf: bool) -> None:
        if found_inf:
            self._growth_tracker = 0
            self._hysteresis_tracker = max(self._hysteresis_tracker - 1, 0)
            if self._hysteresis_tracker == 0:
                # float32 scale times a float64 factor, rounded to float32.
                new = np.float32(float(self._scale) * self._backoff_factor)
                if self._min_scale is not None and new < self._min_scale:
                    new = self._min_scale
                self._scale = new
            return
        # A clean step: count it before comparing with the interval.
        successful = self._growth_tracker + 1
        if successful < self._growth_interval:
            self._growth_tracker = successful
            return
        self._growth_tracker = 0
        self._hysteresis_tracker = self._hysteresis
        with np.errstate(over="ignore"):
            grown = np.float32(float(self._scale) * self._growth_factor)
        if np.isfinite(grown):  # never grow to inf
            self._scale = grown


def _check_optimizer(optimizer: object, *, need_gradients: bool) -> None:
    needed = ("gradients", "grad_format", "step") if need_gradients else ("step",)
    missing = [name for name in needed if not hasattr(optimizer, name)]
    if missing:
        raise TypeError(
            f"optimizer must have gradients(), grad_format and step(); "
            f"{type(optimizer).__name__} lacks {', '.join(missing)}"
        )


def _narrower_than_fp32(fmt: Format) -> bool:
    """True if ``fmt`` cannot hold every fp32 value (fewer bits or less range)."""
    return (
        fmt.precision < fp32.precision or fmt.emax < fp32.emax or fmt.emin > fp32.emin
    )
