"""Numbers typed on the command line, read exactly, and rounded as exact numbers.

``lowprec round`` reads its VALUE as the exact number the text denotes (a
:class:`~fractions.Fraction`), whatever its size: ``1e999`` is a number, too large
for float64 but not for a Fraction, and it rounds to inf or to max as the mode
and ``saturate`` say. The rounding kernels see float64, so :func:`stand_in` gives
the float64 that rounds like the exact number (rounded *to odd*, Boldo and
Melquiond 2008), and :func:`round_exact_value` handles the values beyond float64,
where no stand-in exists.
"""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction

import numpy as np

from lowprec.formats import Format
from lowprec.modes import STOCHASTIC, overflow_outcome
from lowprec.rounding.rounder import round as round_to

__all__ = ["format_g", "read_value", "round_exact_value", "stand_in"]

# |exponent| beyond this is refused: 10**100000 takes milliseconds as a Fraction,
# 10**10**9 would fill the memory. Every format overflows or underflows long before.
MAX_EXPONENT = 100_000
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-inf": -math.inf, "-infinity": -math.inf,
            "nan": math.nan, "+nan": math.nan, "-nan": -math.nan}
_HEX = re.compile(r"([+-]?)0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?\d+))?")
_EXPONENT = re.compile(r"[^/]*e([+-]?\d+)")
_DBL_MAX = Fraction(sys.float_info.max)


def read_value(text: str, arg: str = "VALUE") -> Fraction | float:
    """The exact number ``text`` denotes: a Fraction, or a float for inf, NaN, -0.

    Accepted: decimals (``0.1``, ``-1e999``), fractions (``1/3``), hex floats
    (``0x1.8p-3``), ``inf`` and ``nan``. ValueError naming ``arg`` otherwise.

    Examples
    --------
    >>> read_value("1e400") == 10**400, read_value("-0x1.8p-3"), read_value("-0")
    (True, Fraction(-3, 16), -0.0)
    """
    t = text.strip().lower()
    if t in _SPECIAL:
        return _SPECIAL[t]
    hexa = _HEX.fullmatch(t)
    if hexa is not None:
        q = _hex_fraction(text, arg, *hexa.groups())
    else:
        exp = _EXPONENT.fullmatch(t)
        if exp is not None and abs(int(exp.group(1))) > MAX_EXPONENT:
            raise ValueError(f"{arg}: the exponent of {text!r} is beyond "
                             f"±{MAX_EXPONENT}")
        try:
            q = Fraction(t)
        except ValueError:
            raise ValueError(f"{arg}: cannot read {text!r} as a number") from None
        except ZeroDivisionError:
            raise ValueError(f"{arg}: {text!r} divides by zero") from None
    if q == 0 and t.startswith("-"):
        return -0.0
    return q


def _hex_fraction(text: str, arg: str, sign: str, whole: str, frac: str | None,
                  exp: str | None) -> Fraction:
    frac = frac or ""
    if not whole and not frac:
        raise ValueError(f"{arg}: cannot read {text!r} as a number")
    e = int(exp or 0)
    if abs(e) > 4 * MAX_EXPONENT:
        raise ValueError(f"{arg}: the exponent of {text!r} is beyond "
                         f"±{4 * MAX_EXPONENT}")
    q = Fraction(int(whole + frac, 16)) * Fraction(2) ** (e - 4 * len(frac))
    return -q if sign == "-" else q


def stand_in(q: Fraction | float, precision: int,
             rounding: str = "ties_to_even") -> float:
    """A float64 that rounds, onto a format of ``precision`` bits, like ``q``.

    ``q`` rounded to float64 *to odd* is one for every mode: with at least two
    more bits than the format it lies in the same gap between the format's
    values, and on a tie exactly when ``q`` does (Boldo and Melquiond, 2008).
    This holds down to float64's subnormals, since a format's smallest normal is
    at least 2**-1022. With more than 51 bits (fp64) there is no room for those
    bits, and ``q`` is rounded to float64 in ``rounding``'s direction instead:
    exact for fp64 in every deterministic mode; a stochastic mode gets the
    nearest float64. Beyond float64's range the result is ±max(float64): see
    :func:`round_exact_value`.
    """
    if isinstance(q, float):
        return q
    if abs(q) > _DBL_MAX:
        return -sys.float_info.max if q < 0 else sys.float_info.max
    f = float(q)  # the nearest float64: no overflow below max(float64)
    if Fraction(f) == q:
        return f
    lo = f if Fraction(f) < q else math.nextafter(f, -math.inf)
    hi = math.nextafter(lo, math.inf)
    odd = lo if int(np.float64(lo).view(np.int64)) & 1 else hi
    if precision <= 51 or rounding == "to_odd":
        return odd
    if rounding == "toward_negative" or (rounding == "toward_zero" and q > 0):
        return lo
    if rounding in ("toward_positive", "toward_zero"):
        return hi
    if rounding == "ties_to_away" and 2 * q == Fraction(lo) + Fraction(hi):
        return hi if q > 0 else lo  # a tie between float64s: away from zero
    return f


def round_exact_value(q: Fraction | float, fmt: Format, rounding: str, *,
                      saturate: bool = False, subnormals: bool = True,
                      seed: int = 0) -> float:
    """``q`` rounded onto ``fmt``, for a ``q`` of any size.

    This is ``lowprec.round`` of :func:`stand_in`. Past the next point of
    ``fmt``'s grid continued above max, ``2**(emax + 1)``, every mode overflows,
    and the mode and ``saturate`` say whether to inf, NaN or max; the stand-in
    max(float64) of a value beyond float64 is past that point, except for a
    format with ``emax = 1023`` (fp64), which is rounded here, with
    :func:`lowprec.modes.overflow_outcome`. Between such a format's max and
    ``2**1024`` only a stochastic mode cannot be decided (ValueError).
    """
    top = Fraction(2) ** (fmt.emax + 1)  # the grid point after max
    if isinstance(q, float) or abs(q) <= _DBL_MAX or top <= _DBL_MAX:
        # in range, or past ``top`` as its stand-in max(float64) is: the kernel
        opts = {"rounding": rounding, "saturate": saturate}
        if not subnormals:
            opts["subnormals"] = False
        if rounding in STOCHASTIC:
            opts["rng"] = seed
        return float(round_to(stand_in(q, fmt.precision, rounding), fmt, **opts))
    negative, a = q < 0, abs(q)
    if a < top:  # between max and the next grid point (emax = 1023 only)
        if rounding in STOCHASTIC:
            raise ValueError(f"VALUE: {rounding} rounding of a value between "
                             f"{fmt.name}'s max and 2**{fmt.emax + 1} needs more "
                             "than float64")
        up = {"ties_to_even": 2 * a >= Fraction(fmt.max) + top,  # max is odd
              "ties_to_away": 2 * a >= Fraction(fmt.max) + top,
              "toward_positive": not negative,
              "toward_negative": negative}.get(rounding, False)
        if not up:
            return -fmt.max if negative else fmt.max
    outcome = overflow_outcome(fmt, rounding, saturate, negative)
    magnitude = {"inf": math.inf, "max": fmt.max, "nan": math.nan}[outcome]
    return -magnitude if negative and outcome != "nan" else magnitude


def format_g(q: Fraction, digits: int = 6) -> str:
    """``q`` as ``f"{q:.{digits}g}"`` would print it, rounded exactly, any size.

    Examples
    --------
    >>> format_g(Fraction(-1, 10**400)), format_g(Fraction(1, 3), 3)
    ('-1e-400', '0.333')
    """
    if q == 0:
        return "0"
    sign, a = ("-" if q < 0 else ""), abs(q)
    # e = floor(log10(a)): estimate from the bit lengths, then correct exactly
    bits = a.numerator.bit_length() - a.denominator.bit_length()
    e = math.floor(bits * math.log10(2))
    while Fraction(10) ** e > a:
        e -= 1
    while Fraction(10) ** (e + 1) <= a:
        e += 1
    n = round(a / Fraction(10) ** (e - digits + 1))  # ties to even, exactly
    if n == 10**digits:
        n, e = n // 10, e + 1
    mantissa = str(n)
    if -4 <= e < digits:  # fixed notation, as %g
        if e >= 0:
            text = mantissa[: e + 1] + "." + mantissa[e + 1:]
        else:
            text = "0." + "0" * (-e - 1) + mantissa
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return sign + text
    body = (mantissa[0] + "." + mantissa[1:]).rstrip("0").rstrip(".")
    return f"{sign}{body}e{'-' if e < 0 else '+'}{abs(e):02d}"
