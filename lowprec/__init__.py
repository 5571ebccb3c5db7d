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

from lowprec import autograd, datasets, nn, optim, telemetry
from lowprec.arithmetic import add, divide, fma, multiply, sqrt, subtract
from lowprec.autograd import Tensor
from lowprec.compare import compare
from lowprec.datasets import load_digits
from lowprec.encoding import Fields, decode, describe, encode, fields
from lowprec.formats import (
    Format,
    as_format,
    bf16,
    builtin_formats,
    custom_format,
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
    tf32,
)
from lowprec.matmul import PRESETS, dot, matmul, sum
from lowprec.modes import ROUNDING_MODES
from lowprec.policy import POLICIES, Policy, as_policy
from lowprec.rounding import round
from lowprec.scaler import LossScaler
from lowprec.stats import RoundingStats
from lowprec.train import TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "POLICIES",
    "LossScaler",
    "Policy",
    "Tensor",
    "TrainConfig",
    "as_policy",
    "autograd",
    "compare",
    "datasets",
    "load_digits",
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
]
