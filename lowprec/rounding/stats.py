"""Counting what rounding did: the exceptions of IEEE 754, per element.

Pass one :class:`RoundingStats` as ``stats=`` to :func:`lowprec.round` or to any
kernel built on it; each call adds its counts, so one object can total a whole
matrix product or training step. Call :meth:`RoundingStats.reset` to start over.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

_COUNTS = ("total", "inexact", "underflow", "flushed", "overflow", "saturated", "nan")


@dataclass
class RoundingStats:
    """Element counts of rounding exceptions, accumulated over calls.

    Attributes
    ----------
    total : int
        Elements rounded.
    inexact : int
        Elements whose value changed (NaN inputs excluded).
    underflow : int
        Inexact elements that were tiny: nonzero and below the smallest normal
        before rounding (IEEE 754 "tininess before rounding").
    flushed : int
        Nonzero inputs whose result is zero.
    overflow : int
        Finite inputs whose rounded magnitude exceeded the format's max
        (whatever they then became: inf, max or NaN).
    saturated : int
        Elements set to ±max where an IEEE format would have given ±inf: by
        ``saturate=True``, or by a format with neither inf nor NaN (fp6, fp4).
    nan : int
        Results that are NaN, whether the input was NaN or became NaN (inf or
        overflow in a format with NaN but no inf).

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> s = lowprec.RoundingStats()
    >>> _ = lowprec.round(np.array([1e-9, 0.1, 1e6, 1.0]), "fp16", stats=s)
    >>> s.inexact, s.flushed, s.overflow
    (3, 1, 1)
    """

    total: int = 0
    inexact: int = 0
    underflow: int = 0
    flushed: int = 0
    overflow: int = 0
    saturated: int = 0
    nan: int = 0

    def add(self, other: RoundingStats | dict[str, int]) -> RoundingStats:
        """Add another object's (or a dict's) counts to this one; return self."""
        src = asdict(other) if isinstance(other, RoundingStats) else other
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + int(src.get(name, 0)))
        return self

    def add_counts(self, counts: tuple[int, ...], total: int) -> RoundingStats:
        """Add a kernel's (inexact, underflow, flushed, overflow, saturated, nan)
        counts and the number of roundings it did; return self."""
        return self.add(dict(zip(_COUNTS[1:], counts, strict=True), total=total))

    def __add__(self, other: RoundingStats) -> RoundingStats:
        return RoundingStats().add(self).add(other)

    def reset(self) -> None:
        """Set every count back to zero."""
        for f in fields(self):
            setattr(self, f.name, 0)

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (for JSON logs)."""
        return asdict(self)

    def fraction(self, name: str) -> float:
        """``count / total`` for one count name, 0.0 when nothing was rounded."""
        if name not in _COUNTS:
            raise ValueError(f"name must be one of {_COUNTS}, got {name!r}")
        return getattr(self, name) / self.total if self.total else 0.0
