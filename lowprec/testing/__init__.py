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

Each strategy mixes uniform draws with the points where bugs live (zeros, the
subnormal/normal boundary, max, the overflow midpoint, inf, NaN), so a hundred
examples reach them. The values are computed here from the format's parameters,
independently of :func:`lowprec.decode`, so tests of lowprec itself can use them.

``import lowprec`` does not import this module: hypothesis is a test extra
(``pip install "lowprec[test]"``), not a dependency.

The strategies live in private modules, one per concept: ``_formats`` (formats),
``_values`` (codes, values, near ties), ``_floats`` (floats, arrays), ``_decode``
(the decoding they share) and ``_support`` (dtypes and display); import them from
here.
"""

# hypothesis first, so that a missing test extra says how to install it
try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'lowprec.testing needs hypothesis; install it with pip install "lowprec[test]"'
    ) from exc

# _kind and _magnitude: the private decoder that tests/testing checks
from lowprec.testing._decode import _kind, _magnitude  # noqa: F401
from lowprec.testing._floats import arrays, floats
from lowprec.testing._formats import formats
from lowprec.testing._values import codes, near_ties, values

__all__ = ["arrays", "codes", "floats", "formats", "near_ties", "values"]
