"""Counting what block quantization did: saturation, flushing and NaN blocks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["BlockStats"]


@dataclass
class BlockStats:
    """Counts of one or more :func:`lowprec.quantize_blocks` calls, accumulated.

    Attributes
    ----------
    elements : int
        Elements quantized (padding included).
    blocks : int
        Blocks quantized.
    saturated : int
        Finite elements whose scaled value ``x / X`` lay beyond the element's
        range and were set to ±max (the largest elements under the ``floor``
        rule, for one).
    flushed : int
        Nonzero finite elements whose code is ±0.
    nan_blocks : int
        Blocks given the NaN scale code because they held a NaN or ±inf.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> s = lowprec.BlockStats()
    >>> x = np.r_[np.arange(31.0), 1e-9].astype(np.float32)
    >>> _ = lowprec.quantize_blocks(x, "mxfp4_e2m1", stats=s)
    >>> s.blocks, s.saturated, s.flushed, s.nan_blocks
    (1, 6, 2, 0)
    """

    elements: int = 0
    blocks: int = 0
    saturated: int = 0
    flushed: int = 0
    nan_blocks: int = 0

    def add(self, other: BlockStats | dict[str, int]) -> BlockStats:
        """Add another object's (or a dict's) counts to this one; return self."""
        src = asdict(other) if isinstance(other, BlockStats) else other
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + int(src.get(f.name, 0)))
        return self

    def reset(self) -> None:
        """Set every count back to zero."""
        for f in fields(self):
            setattr(self, f.name, 0)

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (for JSON logs)."""
        return asdict(self)
