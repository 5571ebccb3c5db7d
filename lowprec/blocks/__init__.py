"""Block-scaled formats: a shared scale per small block of elements.

OCP Microscaling (MX v1.0: ``mxfp8_e4m3``, ``mxfp4_e2m1``, ``mxint8``, ...) and
NVIDIA's NVFP4, split as torchao's ``mx_formats`` is:

- ``formats``: the :class:`BlockFormat` record (element format, block size, scale
  format, scale rule, optional per-tensor scale) and the built-ins;
- ``quantize``: :func:`quantize_blocks` and :class:`BlockArray` (its layout is
  what a block-scaled matmul over K reads), with the Numba kernel in
  ``_quantize_kernel``;
- ``reference``: the readable NumPy statement of the scale rules and the cast;
- ``stats``: :class:`BlockStats`; ``hadamard``: the random Hadamard transform.

The layer stands on :mod:`lowprec.formats` and :mod:`lowprec.rounding`, and below
:mod:`lowprec.amp`, whose FP8 and FP4 recipes can use it.
"""

from lowprec.blocks.formats import (
    MX_SCALE_RULES,
    NVFP4_SCALE_RULES,
    BlockFormat,
    as_block_format,
    block_formats,
    custom_block_format,
    mxfp4_e2m1,
    mxfp6_e2m3,
    mxfp6_e3m2,
    mxfp8_e4m3,
    mxfp8_e5m2,
    mxint8,
    nvfp4,
)
from lowprec.blocks.hadamard import hadamard
from lowprec.blocks.quantize import BlockArray, quantize_blocks
from lowprec.blocks.stats import BlockStats

__all__ = [
    "MX_SCALE_RULES",
    "NVFP4_SCALE_RULES",
    "BlockArray",
    "BlockFormat",
    "BlockStats",
    "as_block_format",
    "block_formats",
    "custom_block_format",
    "hadamard",
    "mxfp4_e2m1",
    "mxfp6_e2m3",
    "mxfp6_e3m2",
    "mxfp8_e4m3",
    "mxfp8_e5m2",
    "mxint8",
    "nvfp4",
    "quantize_blocks",
]
