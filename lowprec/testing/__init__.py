"""Hypothesis strategies for property-testing code that uses low-precision formats.

Hypothesis cannot generate bf16 or fp8 values itself (its issue #3959), so this
module does it for every lowprec format, built-in or custom:

:func:`formats`
    Built-in formats and valid custom ones.
:func:`codes`
    The stored bit patterns of a format, as ints.
:func:`values`
    The float64 values a format holds, exactly.
:func:`near_ties`
    Floats at, just below and just above the midpoints between neighbouring
    values, where round-to-nearest has to break a tie.
:func:`floats`
    Inputs for a rounding function: everything from below the smallest subnormal
    to beyond the overflow bound, in float16, float32 or float64.
:func:`arrays`
    NumPy arrays of a format's values.
:func:`operands`
    Tuples of a format's values for testing an add, a multiply or an fma,
    biased towards exact results that are ties, underflow or overflow.

and one assertion:

:func:`assert_bits_equal`
    Equality bit for bit (``-0.0`` is not ``+0.0``; NaN equals NaN), with a
    message that shows the bit fields of what differs.

Every strategy with a ``dtype`` argument accepts an ml_dtypes float type too
(``ml_dtypes.bfloat16``, ``ml_dtypes.float8_e4m3fn``, ...): the values drawn
are still the format's, stored in that type.

Each strategy mixes uniform draws with the points where bugs live (zeros, the
subnormal/normal boundary, max, the overflow midpoint, inf, NaN), so a hundred
examples reach them. The values are computed here from the format's parameters,
independently of :func:`lowprec.decode`, so tests of lowprec itself can use them.

``import lowprec`` does not import this module: hypothesis is a test extra
(``pip install "lowprec[test]"``), not a dependency.

The strategies live in private modules, one per concept: ``_formats`` (formats),
``_values`` (codes, values, near ties), ``_floats`` (floats, arrays),
``_operands`` (operands), ``_assert`` (assert_bits_equal), ``_decode`` (the
decoding they share) and ``_support`` (dtypes and display); import them from
here.
"""

# hypothesis first, so that a missing test extra says how to install it
try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'lowprec.testing needs hypothesis; install it with pip install "lowprec[test]"'
    ) from exc

from lowprec.testing._assert import assert_bits_equal
from lowprec.testing._blocks import block_formats, blocks

# _kind and _magnitude: the private decoder that tests/testing checks
from lowprec.testing._decode import _kind, _magnitude  # noqa: F401
from lowprec.testing._floats import arrays, floats
from lowprec.testing._formats import formats
from lowprec.testing._operands import operands
from lowprec.testing._values import codes, near_ties, values

__all__ = [
    "arrays",
    "assert_bits_equal",
    "block_formats",
    "blocks",
    "codes",
    "floats",
    "formats",
    "near_ties",
    "operands",
    "values",
]
