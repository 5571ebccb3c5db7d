"""Your own NumPy code in emulated precision.

:func:`emulate` wraps an array so that every NumPy operation on it rounds like a
machine with that format (see :mod:`lowprec.emulation.array` for the rules), and
:func:`precision` sets the defaults of the arrays made inside a ``with`` block.

- :mod:`~lowprec.emulation.array`: :class:`EmulatedArray`, :func:`emulate`, the
  promotion rule;
- :mod:`~lowprec.emulation.context`: the settings an array carries, ``precision``,
  :class:`EmulationStats`;
- ``_ufuncs``, ``_functions``: which NumPy ufuncs and functions are modelled, and how.

Built on the rounding and arithmetic layers only.
"""

from lowprec.emulation.array import EmulatedArray, emulate, promote
from lowprec.emulation.context import EmulationStats, Settings, precision

__all__ = ["EmulatedArray", "EmulationStats", "Settings", "emulate", "precision",
           "promote"]
