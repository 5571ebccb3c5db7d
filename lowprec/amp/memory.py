"""What a precision policy costs in memory: bytes per parameter, ZeRO, a ledger.

Every count here comes from the formats of a :class:`~lowprec.amp.policy.Policy`,
never from a table: a tensor of ``n`` elements of a ``b``-bit format takes
``ceil(n * b / 8)`` bytes (bits per element times elements, rounded up to whole
bytes per tensor), so an fp8 or fp4 policy, or one with bf16 moments, gets its
own figure. The categories, in :class:`Breakdown`:

- ``parameters``: the weights used in forward and backward (``policy.params``);
- ``gradients``: one gradient per weight (``policy.gradients``);
- ``master``: the master copy of the weights (``policy.master``; mixed presets);
- ``optimizer_state``: SGD's momentum or Adam's two moments
  (``policy.optimizer_state``), and the Kahan compensation of
  ``bf16_pure_kahan`` (``policy.params``), which lives beside them;
- ``activations`` and ``loss_scaler``: measured by a training run, or given.

:func:`project` scales the per-parameter counts to a model of any size and
shards them as ZeRO does (Rajbhandari et al., "ZeRO: Memory Optimizations Toward
Training Trillion Parameter Models", SC 2020): over ``W`` data-parallel GPUs,
stage 1 shards the optimizer state (the master weights count as optimizer
state: mixed-precision Adam's ``K = 12`` bytes are 4 of master, 4 of momentum
and 4 of variance), stage 2 the gradients too, stage 3 the parameters too. A
sharded category holds ``ceil(n / W)`` elements per GPU. Activations are not
sharded: each GPU holds those of its own micro-batch.

:func:`parameter_ledger` counts the live arrays of a model and its optimizer
the same way. Figures are printed in GB = 10**9 bytes, the paper's convention.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from decimal import Decimal, InvalidOperation

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.formats import Format

__all__ = [
    "CATEGORIES",
    "GB",
    "OPTIMIZERS",
    "ZERO_STAGES",
    "Breakdown",
    "PerParameter",
    "Projection",
    "bytes_per_parameter",
    "parameter_ledger",
    "parse_count",
    "project",
    "tensor_bytes",
]

GB = 10**9  # the paper's gigabyte
ZERO_STAGES = (0, 1, 2, 3)
# the state buffers each optimizer keeps per parameter (SGD: with momentum)
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum",),
    "adam": ("exp_avg", "exp_avg_sq"),
}
CATEGORIES = (
    "parameters",
    "gradients",
    "master",
    "optimizer_state",
    "activations",
    "loss_scaler",
)
# the lowest ZeRO stage that shards each per-parameter category
_SHARDED_FROM = {"optimizer_state": 1, "master": 1, "gradients": 2, "parameters": 3}
_SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def tensor_bytes(n: int, fmt: Format) -> int:
    """Bytes of ``n`` elements of ``fmt``, rounded up to whole bytes.

    Examples
    --------
    >>> from lowprec import fp4_e2m1fn, fp16
    >>> tensor_bytes(3, fp16), tensor_bytes(3, fp4_e2m1fn)
    (6, 2)
    """
    return -(-int(n) * fmt.bits // 8)  # ceil without floats


@dataclass(frozen=True)
class Breakdown:
    """Bytes in each memory category (non-negative ints).

    Examples
    --------
    >>> b = Breakdown(parameters=4, gradients=4)
    >>> b.total, b.as_dict()["gradients"]
    (8, 4)
    """

    parameters: int = 0
    gradients: int = 0
    master: int = 0
    optimizer_state: int = 0
    activations: int = 0
    loss_scaler: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise TypeError(f"{f.name} must be an int (bytes), got {v!r}")
            if v < 0:
                raise ValueError(f"{f.name} must be >= 0 bytes, got {v}")
            object.__setattr__(self, f.name, int(v))

    @property
    def total(self) -> int:
        """The sum of all categories, in bytes."""
        return sum(astuple(self))

    def as_dict(self) -> dict[str, int]:
        """``{category: bytes}`` in :data:`CATEGORIES` order, then ``"total"``."""
        return {**{c: getattr(self, c) for c in CATEGORIES}, "total": self.total}


@dataclass(frozen=True)
class PerParameter:
    """The buffers a policy and optimizer keep per parameter, with their formats.

    ``buffers`` lists ``(category, name, format)``; the byte counts per
    parameter are bits / 8 (fractional for formats under 8 bits).

    Examples
    --------
    >>> pp = bytes_per_parameter("fp16_mixed", "adam")
    >>> pp.parameters, pp.gradients, pp.master, pp.optimizer_state, pp.total, pp.k
    (2.0, 2.0, 4.0, 8.0, 16.0, 12.0)
    """

    policy: str
    optimizer: str
    buffers: tuple[tuple[str, str, Format], ...]

    def bits(self, category: str) -> int:
        """The bits per parameter of one category."""
        if category not in _SHARDED_FROM:
            raise ValueError(
                f"category must be one of {', '.join(_SHARDED_FROM)}, got {category!r}"
            )
        return sum(f.bits for c, _, f in self.buffers if c == category)

    def formats(self, category: str) -> str:
        """The formats of a category's buffers, e.g. ``"fp32+fp32"``, or ``"-"``."""
        names = [f.name for c, _, f in self.buffers if c == category]
        return "+".join(names) or "-"

    @property
    def parameters(self) -> float:
        """Bytes per parameter of the weights used in compute."""
        return self.bits("parameters") / 8

    @property
    def gradients(self) -> float:
        """Bytes per parameter of the gradients."""
        return self.bits("gradients") / 8

    @property
    def master(self) -> float:
        """Bytes per parameter of the master weights (0 without)."""
        return self.bits("master") / 8

    @property
    def optimizer_state(self) -> float:
        """Bytes per parameter of the optimizer state (moments, compensation)."""
        return self.bits("optimizer_state") / 8

    @property
    def k(self) -> float:
        """ZeRO's K: master weights plus optimizer state, bytes per parameter."""
        return self.master + self.optimizer_state

    @property
    def total(self) -> float:
        """All per-parameter bytes."""
        return self.parameters + self.gradients + self.k


def _optimizer_name(optimizer: object) -> str:
    if not isinstance(optimizer, str):
        raise TypeError(
            f"optimizer must be a name ({', '.join(OPTIMIZERS)}), got "
            f"{type(optimizer).__name__}"
        )
    name = optimizer.strip().lower()
    if name not in OPTIMIZERS:
        raise ValueError(
            f"optimizer: unknown name {optimizer!r}; expected one of "
            f"{', '.join(OPTIMIZERS)}"
        )
    return name


def bytes_per_parameter(policy: Policy | str, optimizer: str = "adam") -> PerParameter:
    """The per-parameter buffers of ``policy`` trained with ``optimizer``.

    ``"sgd"`` is SGD with momentum (one buffer; without momentum it keeps no
    state), ``"adam"`` keeps two moments. Both are in ``policy.optimizer_state``;
    master weights exist only when ``policy.master`` is set, and a Kahan update
    without master weights adds a compensation buffer in ``policy.params``.

    Examples
    --------
    >>> bytes_per_parameter("bf16_pure_kahan", "adam").optimizer_state
    6.0
    >>> bytes_per_parameter("fp32", "sgd").total
    12.0
    """
    pol = as_policy(policy)
    name = _optimizer_name(optimizer)
    buffers = [
        ("parameters", "weights", pol.params),
        ("gradients", "grad", pol.gradients),
    ]
    if pol.master is not None:
        buffers.append(("master", "master", pol.master))
    buffers += [("optimizer_state", b, pol.optimizer_state) for b in OPTIMIZERS[name]]
    if pol.master is None and pol.update_rounding == "kahan":
        buffers.append(("optimizer_state", "compensation", pol.params))
    return PerParameter(pol.name, name, tuple(buffers))


def parse_count(value: object, arg: str = "params") -> int:
    """A positive whole count from an int, an integral float or a string.

    Strings may use an exponent or a suffix K, M, B (or G) and T:
    ``"7.5e9"``, ``"7.5B"``, ``"125M"``, ``"7_500_000_000"``.

    Raises
    ------
    ValueError
        Naming ``arg``, for zero, negative, fractional or unreadable counts.

    Examples
    --------
    >>> parse_count("7.5B"), parse_count(7.5e9), parse_count("125m")
    (7500000000, 7500000000, 125000000)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | np.number):
        raise TypeError(f"{arg} must be a number, got {type(value).__name__}")
    text = str(value).strip().replace("_", "").replace(",", "")
    scale = 1
    if text and text[-1].lower() in _SUFFIXES and isinstance(value, str):
        scale, text = _SUFFIXES[text[-1].lower()], text[:-1]
    try:
        d = Decimal(text) * scale
    except InvalidOperation:
        raise ValueError(f"{arg}: cannot read {value!r} as a count") from None
    if not d.is_finite() or d <= 0 or d != d.to_integral_value():
        raise ValueError(f"{arg} must be a positive whole number, got {value!r}")
    return int(d)


def _check_int(value: object, arg: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{arg} must be {span}, got {value}")
    return int(value)


@dataclass(frozen=True)
class Projection:
    """Bytes per GPU of a model of ``params`` parameters (see :func:`project`)."""

    params: int
    per_parameter: PerParameter
    world_size: int
    zero: int
    per_gpu: Breakdown

    @property
    def total(self) -> int:
        """Bytes per GPU, all categories."""
        return self.per_gpu.total

    def sharded(self, category: str) -> bool:
        """Whether this ZeRO stage shards ``category`` over the GPUs."""
        stage = _SHARDED_FROM.get(category)
        return stage is not None and self.zero >= stage and self.world_size > 1

    def table(self) -> str:
        """The projection as a text table, in GB = 10**9 bytes."""
        pp = self.per_parameter
        w = self.world_size
        lines = [
            f"{self.params:,} parameters, policy {pp.policy}, optimizer "
            f"{pp.optimizer}, ZeRO stage {self.zero}, {w} GPU{'s' * (w > 1)}",
            "bytes per GPU, GB = 10^9 bytes",
            "",
        ]
        rows = [("category", "formats", "B/param", "sharded", "GB")]
        for c in CATEGORIES[:4]:
            shard = "-" if not pp.bits(c) else f"/{w}" if self.sharded(c) else "no"
            rows.append(
                (
                    c.replace("_", " "),
                    pp.formats(c),
                    f"{pp.bits(c) / 8:g}",
                    shard,
                    _gb(getattr(self.per_gpu, c)),
                )
            )
        rows.append(("activations", "-", "-", "no", _gb(self.per_gpu.activations)))
        rows.append(("total", "", f"{pp.total:g}", "", _gb(self.total)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            left = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
            right = [v.rjust(wd) for v, wd in zip(r[2:], widths[2:], strict=True)]
            lines.append("  ".join(left + right).rstrip())
        lines += ["", f"K = {pp.k:g} bytes per parameter (master + optimizer state)"]
        return "\n".join(lines)


def _gb(nbytes: int) -> str:
    gb = nbytes / GB
    return f"{gb:.1f}" if gb >= 1 or gb == 0 else f"{gb:.3g}"


def project(
    params: int | float | str,
    policy: Policy | str,
    optimizer: str = "adam",
    *,
    world_size: int = 1,
    zero: int = 0,
    activations_gb: float = 0.0,
) -> Projection:
    """Bytes per GPU of training a ``params``-parameter model, with ZeRO sharding.

    Parameters
    ----------
    params : int, float or str
        The parameter count (``7.5e9``, ``"7.5B"``; see :func:`parse_count`).
    policy : Policy or str
    optimizer : {"adam", "sgd"}
    world_size : int
        Data-parallel GPUs ``W``, at least 1.
    zero : {0, 1, 2, 3}
        ZeRO stage: 1 shards master weights and optimizer state over ``W``, 2
        also the gradients, 3 also the parameters.
    activations_gb : float
        Activation memory per GPU in GB (10**9 bytes), added unsharded.

    Returns
    -------
    Projection
        ``per_gpu`` holds the bytes of each category; ``table()`` prints them.

    Examples
    --------
    The paper's example: 7.5B parameters, fp16 mixed precision with Adam
    (K = 12), 64 GPUs.

    >>> [round(project("7.5B", "fp16_mixed", world_size=64, zero=z).total / GB, 2)
    ...  for z in (0, 1, 2, 3)]
    [120.0, 31.41, 16.64, 1.88]
    """
    n = parse_count(params, "params")
    pp = bytes_per_parameter(policy, optimizer)
    w = _check_int(world_size, "world_size", 1)
    stage = _check_int(zero, "zero", 0, 3)
    if isinstance(activations_gb, bool) or not isinstance(
        activations_gb, int | float | np.number
    ):
        raise TypeError(
            f"activations_gb must be a number, got {type(activations_gb).__name__}"
        )
    if not (math.isfinite(activations_gb) and activations_gb >= 0):
        raise ValueError(
            f"activations_gb must be a finite number >= 0, got {activations_gb}"
        )
    counts = dict.fromkeys(_SHARDED_FROM, 0)
    for category, _, fmt in pp.buffers:
        held = -(-n // w) if stage >= _SHARDED_FROM[category] else n
        counts[category] += tensor_bytes(held, fmt)
    per_gpu = Breakdown(**counts, activations=round(float(activations_gb) * GB))
    return Projection(n, pp, w, stage, per_gpu)


# -- the ledger of live arrays ----------------------------------------------------

# optimizer attribute -> (category, policy field of its format); the lists of
# lowprec.optim's SGD (_buffers), Adam (_m, _v) and the Kahan compensation
_STATE_ARRAYS = (
    ("_buffers", "optimizer_state", "optimizer_state"),
    ("_m", "optimizer_state", "optimizer_state"),
    ("_v", "optimizer_state", "optimizer_state"),
    ("_compensation", "optimizer_state", "params"),
    ("_grads", "gradients", "master"),  # fp32 copies of the gradients, mid-step
)


def parameter_ledger(
    parameters: Iterable[object], optimizer: object | None, policy: Policy | str
) -> Breakdown:
    """Bytes of the live arrays of a model's parameters and of its optimizer.

    Counts, each distinct array once and each from its format (elements times
    bits, rounded up to whole bytes per array): the weights (their ``fmt``), their
    ``.grad`` (``policy.gradients``), the optimizer's master weights
    (``policy.master``), its state (momentum or moments in
    ``policy.optimizer_state``, Kahan compensation in ``policy.params``), and the
    master-format gradient copies it holds between ``gradients()`` and
    ``step()``. The emulator's own ``.raw_grad`` (telemetry, not a buffer of
    real training) and the storage dtype (float32) are not counted. Activations
    and the loss scaler are left at 0 for the training loop to fill in.

    Parameters
    ----------
    parameters : iterable of Parameter, or a Module
        A module's ``parameters()`` are used.
    optimizer : Optimizer or None
        A :mod:`lowprec.optim` optimizer of the same policy; None counts no
        master weights or state.
    policy : Policy or str

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import Parameter
    >>> from lowprec.optim import Adam
    >>> w = Parameter(np.ones(10), policy="fp16_mixed")
    >>> opt = Adam([w], policy="fp16_mixed")
    >>> parameter_ledger([w], opt, "fp16_mixed").as_dict()
    ... # doctest: +NORMALIZE_WHITESPACE
    {'parameters': 20, 'gradients': 0, 'master': 40, 'optimizer_state': 80,
     'activations': 0, 'loss_scaler': 0, 'total': 140}
    """
    pol = as_policy(policy)
    if callable(getattr(parameters, "parameters", None)):
        parameters = parameters.parameters()
    counts = dict.fromkeys(_SHARDED_FROM, 0)
    seen: set[int] = set()

    def count(array: object, category: str, fmt: Format | None, where: str) -> None:
        if array is None or id(array) in seen:
            return
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{where} must be an ndarray, got {type(array).__name__}")
        if fmt is None:
            raise ValueError(f"{where}: policy {pol.name!r} has no master format")
        seen.add(id(array))
        counts[category] += tensor_bytes(array.size, fmt)

    for i, p in enumerate(parameters):
        fmt = getattr(p, "fmt", None)
        if not isinstance(fmt, Format) or not hasattr(p, "data"):
            raise TypeError(
                f"parameters[{i}] must be a Parameter, got {type(p).__name__}"
            )
        count(p.data, "parameters", fmt, f"parameters[{i}].data")
        count(
            getattr(p, "grad", None),
            "gradients",
            pol.gradients,
            f"parameters[{i}].grad",
        )
    if optimizer is not None:
        opt_policy = getattr(optimizer, "policy", None)
        if opt_policy != pol:
            name = getattr(opt_policy, "name", opt_policy)
            raise ValueError(f"optimizer: its policy is {name!r}, not {pol.name!r}")
        for j, m in enumerate(getattr(optimizer, "master_weights", None) or ()):
            count(m, "master", pol.master, f"optimizer.master_weights[{j}]")
        for attr, category, field in _STATE_ARRAYS:
            for j, a in enumerate(getattr(optimizer, attr, None) or ()):
                count(a, category, getattr(pol, field), f"optimizer.{attr}[{j}]")
    return Breakdown(**counts)
