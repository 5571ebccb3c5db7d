"""Block formats: a record of an element format, a block size and a shared scale.

A :class:`BlockFormat` says how a tensor is stored in blocks (OCP Microscaling
v1.0, NVIDIA's NVFP4): each block of ``block_size`` consecutive elements shares
one scale code, and each element keeps its own small code. The scale rule says how
the scale is chosen from the block's largest magnitude; the optional per-tensor
scale is NVFP4's second level (an fp32 value for the whole tensor).

The built-ins are those of OCP MX v1.0 (Table 1, section 5) and NVFP4 (NVIDIA,
"Introducing NVFP4", 2025; Transformer Engine's ``NVFP4BlockScaling`` recipe):

=============  ============================  =====  ==========================
name           element                       block  scale
=============  ============================  =====  ==========================
mxfp8_e4m3     fp8_e4m3fn, max 448           32     e8m0
mxfp8_e5m2     fp8_e5m2, max 57344           32     e8m0
mxfp6_e2m3     fp6_e2m3fn, max 7.5           32     e8m0
mxfp6_e3m2     fp6_e3m2fn, max 28            32     e8m0
mxfp4_e2m1     fp4_e2m1fn, max 6             32     e8m0
mxint8         int8 x 2**-6, max 127/64      32     e8m0
nvfp4          fp4_e2m1fn                    16     fp8_e4m3fn used unsigned,
                                                    and an fp32 tensor scale
=============  ============================  =====  ==========================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lowprec.formats import (
    Format,
    IntegerFormat,
    ScaleFormat,
    as_format,
    e8m0,
    fp4_e2m1fn,
    fp6_e2m3fn,
    fp6_e3m2fn,
    fp8_e4m3fn,
    fp8_e5m2,
    fp32,
    mxint8_element,
)
from lowprec.rounding.encoding import decode

__all__ = [
    "BlockFormat",
    "MX_SCALE_RULES",
    "NVFP4_SCALE_RULES",
    "as_block_format",
    "block_formats",
    "mxfp8_e4m3",
    "mxfp8_e5m2",
    "mxfp6_e2m3",
    "mxfp6_e3m2",
    "mxfp4_e2m1",
    "mxint8",
    "nvfp4",
]

# The MX rules pick a power of two from amax; the NVFP4 rules are associations of
# Transformer Engine's fp32 chain (see lowprec.blocks.quantize).
MX_SCALE_RULES = ("floor", "ceil", "rceil", "even")
NVFP4_SCALE_RULES = ("te", "cudnn", "div6")


@dataclass(frozen=True)
class BlockFormat:
    """A block-scaled format: element format, block size, scale format and rule.

    Parameters
    ----------
    name : str
        The name it prints as.
    element : Format or IntegerFormat
        The format of each element's code (``fp8_e4m3fn``, ``mxint8_element``...).
    block_size : int
        Elements per block (MX: 32; NVFP4: 16).
    scale : ScaleFormat or Format
        ``e8m0`` for MX (a power of two); ``fp8_e4m3fn`` used unsigned for NVFP4.
    scale_rule : str
        The default rule: one of :data:`MX_SCALE_RULES` with an e8m0 scale, one of
        :data:`NVFP4_SCALE_RULES` with a two-level format.
    tensor_scale : Format or None
        The second-level per-tensor scale's format (NVFP4: fp32), or None.

    Examples
    --------
    >>> import lowprec
    >>> f = lowprec.blocks.mxfp8_e4m3
    >>> f.block_size, f.element.name, f.scale.name, f.emax_elem, f.bits_per_element
    (32, 'fp8_e4m3fn', 'e8m0', 8, 8.25)
    """

    name: str
    element: Format | IntegerFormat
    block_size: int
    scale: ScaleFormat | Format = e8m0
    scale_rule: str = "floor"
    tensor_scale: Format | None = None

    @property
    def is_integer(self) -> bool:
        """Whether the elements are integers (mxint8)."""
        return isinstance(self.element, IntegerFormat)

    @property
    def two_level(self) -> bool:
        """Whether a per-tensor scale sits above the block scales (NVFP4)."""
        return self.tensor_scale is not None

    @property
    def element_bits(self) -> int:
        """Bits of one element code."""
        return self.element.bits

    @property
    def elem_max(self) -> float:
        """The element format's largest value (e4m3: 448; e2m1: 6)."""
        return float(self.element.max)

    @property
    def emax_elem(self) -> int:
        """Exponent of the element's largest normal, ``floor(log2(elem_max))``
        (e4m3: 8, e5m2: 15, e2m3: 2, e3m2: 4, e2m1: 2, mxint8: 0)."""
        return math.frexp(self.elem_max)[1] - 1

    @property
    def element_precision(self) -> int:
        """Significand bits of the element's top binade, hidden bit included; the
        width the ``even`` rule rounds amax to (mxint8: 7, for 1.dddddd)."""
        if self.is_integer:
            return self.element.bits - 1
        return self.element.precision

    @property
    def bits_per_element(self) -> float:
        """Storage bits per element, the block's scale shared among its elements
        (the per-tensor scale is not counted)."""
        return self.element_bits + self.scale.bits / self.block_size

    def element_values(self) -> np.ndarray:
        """The float64 value of every element code, indexed by code."""
        codes = np.arange(1 << self.element_bits)
        if self.is_integer:
            return np.array([self.element.decode(int(c)) for c in codes])
        return np.asarray(decode(codes, self.element), dtype=np.float64)

    def __str__(self) -> str:
        return self.name


def _mx(name: str, element: Format | IntegerFormat) -> BlockFormat:
    return BlockFormat(name, element, 32, e8m0, "floor")


mxfp8_e4m3 = _mx("mxfp8_e4m3", fp8_e4m3fn)
mxfp8_e5m2 = _mx("mxfp8_e5m2", fp8_e5m2)
mxfp6_e2m3 = _mx("mxfp6_e2m3", fp6_e2m3fn)
mxfp6_e3m2 = _mx("mxfp6_e3m2", fp6_e3m2fn)
mxfp4_e2m1 = _mx("mxfp4_e2m1", fp4_e2m1fn)
mxint8 = _mx("mxint8", mxint8_element)
nvfp4 = BlockFormat("nvfp4", fp4_e2m1fn, 16, fp8_e4m3fn, "te", tensor_scale=fp32)

_BLOCK_FORMATS = (mxfp8_e4m3, mxfp8_e5m2, mxfp6_e2m3, mxfp6_e3m2, mxfp4_e2m1,
                  mxint8, nvfp4)
_BY_NAME = {f.name: f for f in _BLOCK_FORMATS}
_BY_NAME.update({"mxfp8": mxfp8_e4m3, "mxfp6": mxfp6_e2m3, "mxfp4": mxfp4_e2m1})


def block_formats() -> tuple[BlockFormat, ...]:
    """The built-in block formats, MX first, then NVFP4."""
    return _BLOCK_FORMATS


def as_block_format(fmt: BlockFormat | str, arg: str = "fmt") -> BlockFormat:
    """A :class:`BlockFormat` from itself or a built-in name (case-insensitive).

    Examples
    --------
    >>> import lowprec
    >>> lowprec.blocks.as_block_format("NVFP4").block_size
    16
    """
    if isinstance(fmt, BlockFormat):
        return fmt
    if isinstance(fmt, str):
        key = fmt.strip().lower().replace("-", "_")
        if key in _BY_NAME:
            return _BY_NAME[key]
        raise ValueError(f"{arg}: unknown block format {fmt!r}; built-in block "
                         f"formats are {', '.join(f.name for f in _BLOCK_FORMATS)}")
    raise TypeError(f"{arg} must be a lowprec.blocks.BlockFormat or a block format "
                    f"name, got {type(fmt).__name__}")


def check_scale_rule(fmt: BlockFormat, rule: object) -> str:
    """The rule to use (``fmt``'s default for None); ValueError if it does not
    apply to ``fmt``."""
    if rule is None:
        return fmt.scale_rule
    allowed = NVFP4_SCALE_RULES if fmt.two_level else MX_SCALE_RULES
    if rule not in allowed:
        raise ValueError(f"scale_rule: {fmt.name} takes one of {allowed}, "
                         f"got {rule!r}")
    return str(rule)


def custom_block_format(element: Format | IntegerFormat | str, block_size: int, *,
                        scale_rule: str = "floor",
                        name: str | None = None) -> BlockFormat:
    """An MX-style block format (e8m0 scale) with any element format and block size.

    Examples
    --------
    >>> import lowprec
    >>> lowprec.blocks.custom_block_format("fp8_e4m3fn", 16).name
    'mx_fp8_e4m3fn_b16'
    """
    if not isinstance(element, IntegerFormat):
        element = as_format(element, "element")
        if element.bits > 8:
            raise ValueError(f"element: block elements have at most 8 bits, "
                             f"{element.name} has {element.bits}")
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer):
        raise TypeError(f"block_size must be an int, got {type(block_size).__name__}")
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    if scale_rule not in MX_SCALE_RULES:
        raise ValueError(f"scale_rule must be one of {MX_SCALE_RULES}, "
                         f"got {scale_rule!r}")
    name = name or f"mx_{element.name}_b{block_size}"
    return BlockFormat(name, element, int(block_size), e8m0, scale_rule)
