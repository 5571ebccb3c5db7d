"""The settings an emulated array carries, and the ``precision`` context that sets
their defaults.

An :class:`Settings` record is what every :class:`~lowprec.emulate.EmulatedArray`
holds besides its values: the format, the rounding mode, the accumulator and order
of its reductions, the random stream of stochastic rounding and the counts.
``with lowprec.precision("fp16"): ...`` makes the record that arrays created inside
the block (by :func:`~lowprec.emulate.emulate` without a format) start from.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from lowprec.arith.tensorcore import MODELS
from lowprec.formats import Format, as_format
from lowprec.modes import ROUNDING_MODES, STOCHASTIC
from lowprec.rounding.stats import RoundingStats

__all__ = ["EmulationStats", "Settings", "current", "precision"]

# the bit-exact orders of lowprec.matmul (its "unspecified" BLAS path sums in an
# order of its own, so it is no model of a NumPy reduction); a test keeps them in step
REDUCTION_ORDERS = ("sequential", "pairwise", "blocked", "kahan")


@dataclass
class EmulationStats(RoundingStats):
    """:class:`~lowprec.RoundingStats` plus the elements computed by a function that
    is not correctly rounded (``exp``, ``log``, ``sin``, ...: float64, then one
    rounding).

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> s = lowprec.EmulationStats()
    >>> x = lowprec.emulate(np.array([0.1, 2.0]), "fp16", stats=s)
    >>> _ = np.exp(x)
    >>> s.total, s.transcendental
    (2, 2)
    """

    transcendental: int = 0

    def reset(self) -> None:
        """Set every count back to zero."""
        super().reset()
        self.transcendental = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return {**super().as_dict(), "transcendental": self.transcendental}


@dataclass(frozen=True)
class Settings:
    """How an emulated array computes.

    Attributes
    ----------
    fmt : Format
        Every value, and every operation's result, is a value of it.
    rounding : str
        The mode of every rounding (see :data:`lowprec.ROUNDING_MODES`).
    accumulate : Format
        The format every addition of a reduction (sum, dot, matmul, cumsum, norm)
        is rounded to; ``fmt`` by default.
    order : str
        The order of a reduction's additions: sequential, pairwise, blocked or kahan.
    model : str or None
        A tensor-core model (``"v100"``, ...) for matmul and dot instead of ``order``.
    rng : numpy.random.Generator or None
        The stream of random bits of stochastic rounding, shared by every array
        derived from this one (so two runs from the same seed agree).
    stats : RoundingStats or None
        Where every rounding's counts are added.
    """

    fmt: Format
    rounding: str = "ties_to_even"
    accumulate: Format | None = None
    order: str = "sequential"
    model: str | None = None
    rng: np.random.Generator | None = field(default=None, compare=False)
    stats: RoundingStats | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", as_format(self.fmt, "fmt"))
        acc = self.fmt if self.accumulate is None else as_format(
            self.accumulate, "accumulate")
        object.__setattr__(self, "accumulate", acc)
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(
                f"rounding must be one of {', '.join(ROUNDING_MODES)}; got "
                f"{self.rounding!r}"
            )
        if self.order not in REDUCTION_ORDERS:
            raise ValueError(
                f"order must be one of {', '.join(REDUCTION_ORDERS)}; "
                f"got {self.order!r}"
            )
        if self.model is not None and self.model not in MODELS:
            raise ValueError(
                f"model must be None or one of {', '.join(MODELS)}; got {self.model!r}"
            )
        if self.rng is not None and not isinstance(self.rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator, got {type(self.rng).__name__}"
            )
        if self.stats is not None and not isinstance(self.stats, RoundingStats):
            raise TypeError(
                "stats must be a RoundingStats or None, got "
                f"{type(self.stats).__name__}"
            )
        if self.rounding in STOCHASTIC and self.rng is None:
            object.__setattr__(self, "rng", np.random.default_rng(0))

    def with_format(self, fmt: Format) -> Settings:
        """The same settings for another format (the accumulator follows if it was
        the format itself)."""
        acc = fmt if self.accumulate == self.fmt else self.accumulate
        return replace(self, fmt=fmt, accumulate=acc, rng=self.rng, stats=self.stats)

    def options(self) -> dict:
        """Keyword arguments of lowprec's arithmetic for one rounding to ``fmt``."""
        opts: dict = {"rounding": self.rounding, "stats": self.stats}
        if self.rounding in STOCHASTIC:
            opts["rng"] = self.rng
        return opts


_CURRENT: contextvars.ContextVar[Settings | None] = contextvars.ContextVar(
    "lowprec_precision", default=None
)


def current() -> Settings | None:
    """The settings of the innermost :func:`precision` block, or None."""
    return _CURRENT.get()


def _as_rng(rng: object) -> np.random.Generator | None:
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer) or rng < 0:
        raise TypeError(f"rng must be None, a non-negative int seed or a Generator, "
                        f"got {rng!r}")
    return np.random.default_rng(int(rng))


def make_settings(
    fmt: Format | str | None,
    rounding: str | None,
    accumulate: Format | str | None,
    order: str | None,
    model: str | None,
    rng: object,
    stats: RoundingStats | None,
) -> Settings:
    """Settings from explicit arguments, the rest from the context (or defaults)."""
    base = current()
    if fmt is None:
        if base is None:
            raise ValueError(
                "fmt: no format given and no lowprec.precision(...) block is active"
            )
        fmt = base.fmt
    values = {
        "rounding": rounding, "accumulate": accumulate, "order": order,
        "model": model, "rng": _as_rng(rng), "stats": stats,
    }
    for name, value in values.items():
        if value is None and base is not None:
            value = getattr(base, name)
            if name == "accumulate" and value == base.fmt:
                value = None  # follow the array's own format
            values[name] = value
    values = {k: v for k, v in values.items() if v is not None}
    return Settings(fmt, **values)


@contextlib.contextmanager
def precision(
    fmt: Format | str,
    *,
    rounding: str = "ties_to_even",
    accumulate: Format | str | None = None,
    order: str = "sequential",
    model: str | None = None,
    rng: int | np.random.Generator | None = None,
    stats: RoundingStats | None = None,
) -> Iterator[Settings]:
    """Set the defaults of the emulated arrays made inside the block.

    :func:`~lowprec.emulate.emulate` called without a format (or without some other
    setting) inside the block takes it from here. Blocks nest; leaving one restores
    the outer settings.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> with lowprec.precision("bf16", rounding="stochastic", rng=0) as s:
    ...     x = lowprec.emulate(np.array([1.0, 2.0]))
    >>> x.fmt.name, x.settings.rounding, s.fmt.name
    ('bf16', 'stochastic', 'bf16')
    """
    settings = Settings(fmt, rounding, accumulate, order, model, _as_rng(rng), stats)
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)
