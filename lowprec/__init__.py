"""lowprec: see, bit by bit, what low-precision floating point does to numbers.

Formats are :class:`Format` records (``lowprec.fp16``, ``lowprec.bf16``, ...);
:func:`round` rounds onto them in any IEEE or stochastic mode; :func:`encode`,
:func:`decode`, :func:`fields` and :func:`describe` show the bits;
:class:`RoundingStats` counts what rounding did. :func:`add` and friends,
:func:`sum`, :func:`dot` and :func:`matmul` are emulated arithmetic with a chosen
accumulator; :mod:`lowprec.autograd`, :mod:`lowprec.nn` and :mod:`lowprec.optim`
train small models under a precision :class:`Policy`, with :class:`LossScaler`,
and :func:`train` / :func:`compare` run whole experiments. ``import lowprec`` compiles
nothing: each Numba kernel compiles on first use and is cached on disk.
"""

from lowprec import _compat, autograd, nn, optim
from lowprec.amp import memory
from lowprec.amp.policy import POLICIES, Policy, as_policy
from lowprec.amp.scaler import LossScaler
from lowprec.arith.elementwise import add, divide, fma, multiply, sqrt, subtract
from lowprec.arith.matmul import PRESETS, dot, matmul, sum
from lowprec.autograd import Tensor
from lowprec.blocks import BlockArray, BlockFormat, BlockStats, quantize_blocks
from lowprec.blocks.hadamard import hadamard
from lowprec.data import datasets
from lowprec.data.datasets import load_digits
from lowprec.emulation import EmulatedArray, EmulationStats, emulate, precision
from lowprec.formats import (
    Format,
    IntegerFormat,
    ScaleFormat,
    as_format,
    bf16,
    builtin_formats,
    custom_format,
    e8m0,
    fp4_e2m1fn,
    fp6_e2m3fn,
    fp6_e3m2fn,
    fp8_e4m3,
    fp8_e4m3fn,
    fp8_e4m3fnuz,
    fp8_e5m2,
    fp8_e5m2fnuz,
    fp16,
    fp32,
    fp64,
    int4,
    int8,
    mxint8_element,
    tf32,
)
from lowprec.modes import ROUNDING_MODES
from lowprec.rounding.encoding import Fields, decode, describe, encode, fields
from lowprec.rounding.rounder import round
from lowprec.rounding.stats import RoundingStats
from lowprec.training import telemetry
from lowprec.training.compare import compare
from lowprec.training.loop import TrainConfig, train

_compat.install()

__version__ = "0.1.0"

__all__ = [
    "POLICIES",
    "EmulatedArray",
    "EmulationStats",
    "emulate",
    "precision",
    "LossScaler",
    "Policy",
    "Tensor",
    "TrainConfig",
    "as_policy",
    "autograd",
    "compare",
    "datasets",
    "load_digits",
    "memory",
    "nn",
    "optim",
    "telemetry",
    "train",
    "PRESETS",
    "add",
    "divide",
    "dot",
    "fma",
    "matmul",
    "multiply",
    "sqrt",
    "subtract",
    "sum",
    "Fields",
    "decode",
    "describe",
    "encode",
    "fields",
    "Format",
    "ROUNDING_MODES",
    "RoundingStats",
    "as_format",
    "bf16",
    "builtin_formats",
    "custom_format",
    "fp4_e2m1fn",
    "fp6_e2m3fn",
    "fp6_e3m2fn",
    "fp8_e4m3",
    "fp8_e4m3fn",
    "fp8_e4m3fnuz",
    "fp8_e5m2",
    "fp8_e5m2fnuz",
    "fp16",
    "fp32",
    "fp64",
    "round",
    "tf32",
    # block-scaled formats (issue 17)
    "BlockArray",
    "BlockFormat",
    "BlockStats",
    "IntegerFormat",
    "ScaleFormat",
    "e8m0",
    "hadamard",
    "int4",
    "int8",
    "mxint8_element",
    "quantize_blocks",
]
