"""Optimizers (SGD, Adam) whose weight updates are rounded as a precision policy says.

Each step computes the update ``dw`` in the storage dtype (float32 for every
preset but ``fp64``) from the gradients and the optimizer state, which is rounded
to ``policy.optimizer_state`` after each update. Then:

- with master weights (``policy.master``, fp32 in the mixed presets), the master
  copy is updated, ``master = round(master + dw)``, and the weights used in forward
  and backward become ``round(master, policy.params)`` (Micikevicius et al.,
  "Mixed Precision Training", ICLR 2018);
- without, the weights are updated in their own format,
  ``w = round(w + dw, policy.params)``, rounded by ``policy.update_rounding``:

  * ``"ties_to_even"``: an update below half a unit in the last place of ``w`` is
    swallowed, ``w + dw == w``; small learning rates stall;
  * ``"stochastic"``: rounds up with probability equal to the distance, so the
    expected weight follows the exact update (random bits from a counter-based
    stream seeded by ``policy.seed`` and the step, over all parameters in order,
    so runs are reproducible);
  * ``"kahan"``: compensated summation with the compensation ``c`` kept in the
    params format: ``y = round(dw - c); t = round(w + y);
    c = round(round(t - w) - y); w = t`` (Zamirai et al., "Revisiting BFloat16
    Training", 2020).

Every ``round(a + b)`` here is the correctly rounded sum: a + b is formed in a
working precision with round-to-odd (TwoSum and a sticky last bit), which has at
least two more bits than the target, so rounding it once more to the target is
innocuous (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums:
proved algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008). A
float32 sum of an fp16 weight and an fp32 update rounded to fp16 would otherwise
be a double rounding.

A NaN or inf gradient never reaches the weights: :meth:`Optimizer.step` raises
ValueError (a :class:`lowprec.amp.scaler.LossScaler` skips such steps before calling
it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.autograd import Tensor
from lowprec.formats import Format
from lowprec.rounding._rne import _sum_to_odd, round_rne, round_rne_into
from lowprec.rounding.rounder import round as round_to

__all__ = ["SGD", "Adam", "Optimizer", "clip_grad_norm_", "rounded_sum"]


# -- correctly rounded a + b -----------------------------------------------------


def rounded_sum(
    a: np.ndarray,
    b: np.ndarray,
    fmt: Format,
    rounding: str = "ties_to_even",
    rng: int | None = None,
) -> np.ndarray:
    """The exact ``a + b`` rounded once to ``fmt``, in a's dtype.

    ``a`` and ``b`` are float32 (or float64) arrays of any values their dtype
    holds. ``rounding`` is ``"ties_to_even"`` or ``"stochastic"`` (with ``rng``
    an int seed, as in :func:`lowprec.round`).

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> from lowprec.optim import rounded_sum
    >>> w = np.array([1.0], np.float32)  # bf16 spacing at 1 is 2**-7
    >>> rounded_sum(w, np.array([2**-8 + 2**-30], np.float32), lowprec.bf16)
    array([1.0078125], dtype=float32)
    """
    if rounding == "ties_to_even":
        return round_rne(a, fmt, plus=b)
    # stochastic: the float64 sum rounded to odd is within 2**-53 relative of the
    # exact sum, far below the resolution of the random bits' probabilities
    s = _sum_to_odd(a.astype(np.float64), b.astype(np.float64))
    r = np.asarray(round_to(s, fmt, rounding=rounding, rng=rng))
    return r.astype(a.dtype)


# -- optimizers ---------------------------------------------------------------------


def _check_number(value: object, arg: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"{arg} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= low):
        raise ValueError(f"{arg} must be a finite number >= {low}, got {value}")
    return value


class Optimizer:
    """Base class: gradients, master weights, and the rounded weight update.

    Subclasses define :meth:`_update`, which turns one parameter's gradient into
    the step ``dw`` (storage dtype) and keeps their state.

    Parameters
    ----------
    params : iterable of Parameter
        The tensors to update (``requires_grad``, values of ``policy.params``).
    policy : Policy or str
    lr : float
        Learning rate (settable later as ``opt.lr``).
    """

    def __init__(
        self, params: Iterable[Tensor], *, policy: Policy | str, lr: float
    ) -> None:
        self.policy = as_policy(policy)
        self.params = list(params)
        if not self.params:
            raise ValueError("params: the optimizer got no parameters")
        dtype = self.policy.dtype
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad or p._backward:
                raise TypeError(f"params[{i}] must be a Parameter (a leaf tensor)")
            if p.fmt != self.policy.params or p.data.dtype != dtype:
                raise ValueError(
                    f"params[{i}] holds {p.fmt.name} values in {p.data.dtype}; the "
                    f"policy {self.policy.name!r} expects {self.policy.params.name} "
                    f"in {dtype}"
                )
        self.lr = lr
        self.step_count = 0
        # master copies: exact, every params value is one of the master format
        self._master = (
            [p.data.copy() for p in self.params] if self.policy.master else None
        )
        kahan = self.policy.master is None and self.policy.update_rounding == "kahan"
        self._compensation = (
            [np.zeros_like(p.data) for p in self.params] if kahan else None
        )
        self._grads: list[np.ndarray] | None = None
        self._grads_from: list[np.ndarray | None] = []

    @property
    def lr(self) -> float:
        """The learning rate."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_number(value, "lr")

    @property
    def grad_format(self) -> Format:
        """The format of the gradients :meth:`step` applies: the master format
        (fp32) with master weights, else ``policy.gradients``."""
        return self.policy.master or self.policy.gradients

    @property
    def master_weights(self) -> list[np.ndarray] | None:
        """The master copies (storage dtype), or None without master weights."""
        return self._master

    def gradients(self) -> list[np.ndarray]:
        """The gradient arrays :meth:`step` will apply, one per parameter, mutable.

        With master weights: copies of the parameters' gradients in the storage
        dtype (float32), made on the first call after a backward and kept until
        :meth:`step` or :meth:`zero_grad`. Without: the parameters' own ``.grad``
        arrays. A parameter without a gradient gives zeros.
        """
        if self._master is None:
            for p in self.params:
                if p.grad is None:
                    p.grad = np.zeros_like(p.data)
            return [p.grad for p in self.params]
        if self._grads is not None:  # called several times per step: check first
            for p, source in zip(self.params, self._grads_from, strict=True):
                if p.grad is not source:
                    break
            else:
                return self._grads
        sources = [p.grad for p in self.params]
        dtype = self.policy.dtype
        self._grads = [
            np.zeros_like(p.data) if g is None else np.array(g, dtype=dtype)
            for p, g in zip(self.params, sources, strict=True)
        ]
        self._grads_from = sources
        return self._grads

    def zero_grad(self) -> None:
        """Forget the parameters' gradients and any cached master gradients."""
        for p in self.params:
            p.grad = None
            p.raw_grad = None
        self._grads = None
        self._grads_from = []

    def step(self) -> None:
        """Apply one update to every parameter.

        Raises
        ------
        ValueError
            If any gradient holds NaN or inf; no weight is changed then.
        """
        grads = self.gradients()
        for i, g in enumerate(grads):
            if not np.isfinite(g).all():
                bad = np.count_nonzero(~np.isfinite(g))
                raise ValueError(
                    f"step: the gradient of params[{i}] (shape {g.shape}) has {bad} "
                    "NaN or inf values; refusing to update the weights with them "
                    "(a LossScaler skips such steps)"
                )
        self.step_count += 1
        with np.errstate(all="ignore"):
            steps = []
            for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
                w = p.data if self._master is None else self._master[i]
                steps.append(self._update(i, w, g))
            if self._master is None and self.policy.update_rounding == "stochastic":
                self._apply_stochastic(steps)
            else:
                for i, (p, dw) in enumerate(zip(self.params, steps, strict=True)):
                    self._apply(i, p, dw)
        self._grads = None
        self._grads_from = []

    def _update(self, i: int, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self, x: np.ndarray) -> np.ndarray:
        """Round optimizer state to its format."""
        return round_rne(x, self.policy.optimizer_state)

    def _apply(self, i: int, p: Tensor, dw: np.ndarray) -> None:
        policy = self.policy
        fmt = policy.params
        if self._master is not None:
            # in place: no temporary master or weight array per step
            master = self._master[i]
            round_rne_into(master, master, policy.master, plus=dw)
            round_rne_into(p.data, master, fmt)
        elif self._compensation is not None:
            w, c = p.data, self._compensation[i]
            y = rounded_sum(dw, -c, fmt)
            t = rounded_sum(w, y, fmt)
            self._compensation[i] = rounded_sum(rounded_sum(t, -w, fmt), -y, fmt)
            p.data[...] = t
        else:
            p.data[...] = rounded_sum(p.data, dw, fmt)

    def _apply_stochastic(self, steps: list[np.ndarray]) -> None:
        """Stochastic update rounding of all parameters in one call: the random
        bits come from a counter-based stream keyed by (policy.seed, step)."""
        seed = np.random.SeedSequence([self.policy.seed, self.step_count])
        word = int(seed.generate_state(1, np.uint64)[0])
        w = np.concatenate([p.data.reshape(-1) for p in self.params])
        dw = np.concatenate([d.reshape(-1) for d in steps])
        new = rounded_sum(w, dw, self.policy.params, "stochastic", rng=word)
        start = 0
        for p in self.params:
            p.data[...] = new[start : start + p.size].reshape(p.shape)
            start += p.size


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and weight decay (PyTorch's rule).

    ``d = g + weight_decay * w``; with momentum ``buf = momentum * buf + d``
    (``buf = d`` on the first step), rounded to ``policy.optimizer_state``, and
    ``d = buf``; then ``dw = -lr * d``. Everything in the storage dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import Parameter
    >>> from lowprec.optim import SGD
    >>> w = Parameter([1.0], policy="fp32")
    >>> w.grad = np.array([0.5], np.float32)
    >>> SGD([w], policy="fp32", lr=0.1).step()
    >>> w.data
    array([0.95], dtype=float32)
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        *,
        policy: Policy | str,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, policy=policy, lr=lr)
        self.momentum = _check_number(momentum, "momentum")
        self.weight_decay = _check_number(weight_decay, "weight_decay")
        self._buffers: list[np.ndarray | None] = [None] * len(self.params)

    def _update(self, i: int, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        dt = w.dtype.type
        d = g
        if self.weight_decay:
            d = d + dt(self.weight_decay) * w
        if self.momentum:
            buf = self._buffers[i]
            buf = d if buf is None else dt(self.momentum) * buf + d
            self._buffers[i] = self._state(np.array(buf, copy=True))
            d = self._buffers[i]
        return -dt(self.lr) * d


class Adam(Optimizer):
    """Adam (Kingma and Ba, ICLR 2015) with L2 weight decay added to the gradient.

    ``g = g + weight_decay * w``; ``m = b1 m + (1 - b1) g``;
    ``v = b2 v + (1 - b2) g**2`` (both rounded to ``policy.optimizer_state``);
    ``dw = -(lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``, the
    arrangement of PyTorch's Adam. The scalar factors are computed in float64 and
    rounded to the storage dtype; the arrays are computed in the storage dtype.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        *,
        policy: Policy | str,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, policy=policy, lr=lr)
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"betas must be a pair of numbers, got {betas!r}")
        b1, b2 = (_check_number(b, "betas") for b in betas)
        if not (b1 < 1 and b2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas!r}")
        self.betas = (b1, b2)
        self.eps = _check_number(eps, "eps")
        self.weight_decay = _check_number(weight_decay, "weight_decay")
        self._m = [np.zeros_like(p.data) for p in self.params]
        self._v = [np.zeros_like(p.data) for p in self.params]

    def _update(self, i: int, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        dt = w.dtype.type
        b1, b2 = self.betas
        t = self.step_count
        if self.weight_decay:
            g = g + dt(self.weight_decay) * w
        self._m[i] = self._state(dt(b1) * self._m[i] + dt(1.0 - b1) * g)
        self._v[i] = self._state(dt(b2) * self._v[i] + dt(1.0 - b2) * (g * g))
        step_size = dt(self.lr / (1.0 - b1**t))
        denom = np.sqrt(self._v[i]) / dt(math.sqrt(1.0 - b2**t)) + dt(self.eps)
        return -step_size * (self._m[i] / denom)


def clip_grad_norm_(opt: Optimizer, max_norm: float) -> float:
    """Scale the optimizer's gradients in place so their global L2 norm is at most
    ``max_norm``; return the norm before clipping.

    The norm of all of ``opt.gradients()`` together is computed in float64. When
    it exceeds ``max_norm`` every gradient is multiplied by
    ``max_norm / (norm + 1e-6)`` in the storage dtype and rounded to
    ``opt.grad_format``. An inf or NaN norm is returned without scaling (the step
    will be skipped or refused). Call it on unscaled gradients (after
    ``LossScaler.unscale_``).

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import Parameter
    >>> from lowprec.optim import SGD, clip_grad_norm_
    >>> w = Parameter([0.0, 0.0], policy="fp32")
    >>> w.grad = np.array([3.0, 4.0], np.float32)
    >>> opt = SGD([w], policy="fp32", lr=0.1)
    >>> clip_grad_norm_(opt, 1.0)
    5.0
    >>> np.round(w.grad, 4)
    array([0.6, 0.8], dtype=float32)
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an Optimizer, got {type(opt).__name__}")
    max_norm = _check_number(max_norm, "max_norm")
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    grads = opt.gradients()
    with np.errstate(all="ignore"):
        total = float(np.sum([np.sum(np.square(g, dtype=np.float64)) for g in grads]))
        norm = math.sqrt(total) if total >= 0 else total  # NaN stays NaN
        if math.isfinite(norm) and norm > max_norm:
            fmt = opt.grad_format
            for g in grads:
                coef = g.dtype.type(max_norm / (norm + 1e-6))
                g[...] = round_rne(g * coef, fmt)
    return norm
