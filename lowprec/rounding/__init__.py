"""Rounding onto a format: the layer every other one stands on.

- :mod:`~lowprec.rounding.rounder`: :func:`round`, its validation and the kernel's
  plan (the constants a format and mode give);
- :mod:`~lowprec.rounding.encoding`: codes and bit fields (``encode``, ``decode``,
  ``fields``, ``describe``);
- :mod:`~lowprec.rounding.stats`: :class:`RoundingStats`, what rounding did;
- :mod:`~lowprec.rounding.randomness`: the counter-based random bits of stochastic
  rounding;
- :mod:`~lowprec.rounding.reference`: the readable NumPy statement of the rounding
  rules that the kernels are tested against;
- private kernels: ``_kernel`` (the Numba round loops), ``_sr_bits`` (stochastic
  rounding on integers) and ``_rne`` (the small-array round-to-nearest of training).

Imports only :mod:`lowprec.formats`, :mod:`lowprec.modes` and :mod:`lowprec._jit`.
"""

from lowprec.rounding.encoding import Fields, decode, describe, encode, fields
from lowprec.rounding.rounder import (
    Prepared,
    as_float_array,
    check_fits,
    check_out,
    fits,
    make_plan,
    prepare_rounding,
    round,
    smallest_value,
    storage_format,
)
from lowprec.rounding.stats import RoundingStats

__all__ = [
    "Fields",
    "Prepared",
    "RoundingStats",
    "as_float_array",
    "check_fits",
    "check_out",
    "decode",
    "describe",
    "encode",
    "fields",
    "fits",
    "make_plan",
    "prepare_rounding",
    "round",
    "smallest_value",
    "storage_format",
]
