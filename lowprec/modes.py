"""Rounding modes, and what each does at the edges of a format's range.

The names follow IEEE 754-2019 (``roundTiesToEven`` ... ) in snake case, plus the
modes emulation studies need:

``to_odd``
    Truncate, then set the last significand bit if the result is inexact
    (SoftFloat's ``round_odd``). Rounding to odd with two or more extra bits and
    then to nearest gives the correctly rounded result (Boldo and Melquiond, 2008).
``stochastic``
    Round the magnitude up with probability equal to its distance from the lower
    neighbour over the gap between the neighbours. With ``random_bits=r`` only the
    first ``r`` bits of that fraction count, as in hardware.
``stochastic_equal``
    Either neighbour with probability 1/2 when the value is not representable.
"""

from __future__ import annotations

from typing import Literal

from lowprec.formats import Format

ROUNDING_MODES = (
    "ties_to_even",
    "ties_to_away",
    "toward_zero",
    "toward_positive",
    "toward_negative",
    "to_odd",
    "stochastic",
    "stochastic_equal",
)
RNE, RNA, RZ, RU, RD, RO, SR, SRE = range(len(ROUNDING_MODES))
# Other names people use for a mode (the command line accepts them too).
MODE_ALIASES = {"nearest": "ties_to_even", "rne": "ties_to_even"}
STOCHASTIC = frozenset({"stochastic", "stochastic_equal"})

Outcome = Literal["inf", "max", "nan"]


def mode_id(rounding: str) -> int:
    """The integer a kernel uses for a rounding mode name; ValueError if unknown."""
    try:
        return ROUNDING_MODES.index(rounding)
    except ValueError:
        raise ValueError(
            f"rounding must be one of {', '.join(ROUNDING_MODES)}; got {rounding!r}"
        ) from None


def canonical_mode(rounding: str, arg: str = "rounding") -> str:
    """The name in :data:`ROUNDING_MODES` of a mode or of one of its aliases.

    ValueError, naming ``arg``, for an unknown name.

    Examples
    --------
    >>> canonical_mode("nearest"), canonical_mode("toward_zero")
    ('ties_to_even', 'toward_zero')
    """
    name = MODE_ALIASES.get(rounding, rounding)
    if name not in ROUNDING_MODES:
        known = ", ".join((*ROUNDING_MODES, *MODE_ALIASES))
        raise ValueError(f"{arg}: unknown rounding mode {rounding!r}; known: {known}")
    return name


def _no_inf(fmt: Format, saturate: bool) -> Outcome:
    # A format without inf gives NaN where IEEE gives inf; one with neither saturates.
    if saturate or not fmt.has_nan:
        return "max"
    return "nan" if not fmt.has_inf else "inf"


def rounds_to_infinity(rounding: str, negative: bool) -> bool:
    """Whether an IEEE format sends an overflowing value to inf in this mode.

    IEEE 754 section 7.4: the ties modes go to inf, toward_zero to max, the directed
    modes to their own infinity and to max on the other side. to_odd gives max (it
    truncates). The stochastic modes round onto the grid continued past max and so
    overflow to inf when they round up past it.
    """
    if rounding in ("toward_zero", "to_odd"):
        return False
    if rounding == "toward_positive":
        return not negative
    if rounding == "toward_negative":
        return negative
    return True


def overflow_outcome(
    fmt: Format, rounding: str, saturate: bool, negative: bool
) -> Outcome:
    """What a finite value whose rounded magnitude exceeds ``fmt.max`` becomes."""
    if not rounds_to_infinity(rounding, negative):
        return "max"
    return _no_inf(fmt, saturate)


def infinity_outcome(fmt: Format, saturate: bool) -> Outcome:
    """What ±inf becomes: itself in IEEE formats, NaN in fn/fnuz, else max."""
    return _no_inf(fmt, saturate)
