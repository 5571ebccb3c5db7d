"""An exact statement of block quantization, written apart from lowprec's code.

Element values come from the formats' published parameters (OCP OFP8 and MX v1.0),
rounding is done on ``fractions.Fraction`` values by searching the sorted value
list, and NVFP4's fp32 chain uses numpy.float32 arithmetic (IEEE binary32, the
arithmetic the recipe names). Only round-to-nearest-even (and toward zero).
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import numpy as np

# (exponent bits, mantissa bits, bias, specials) of each element, from the specs
ELEMENTS = {
    "fp8_e4m3fn": (4, 3, 7, "fn"),  # OCP OFP8: NaN is S.1111.111, max 448
    "fp8_e5m2": (5, 2, 15, "ieee"),  # OCP OFP8: IEEE-like, max 57344
    "fp6_e2m3fn": (2, 3, 1, "none"),  # OCP MX v1.0 5.3.2: max 7.5
    "fp6_e3m2fn": (3, 2, 3, "none"),  # max 28
    "fp4_e2m1fn": (2, 1, 1, "none"),  # max 6
}


class Element:
    """A float element format as a table of exact values."""

    def __init__(self, name: str):
        self.name = name
        ebits, mbits, bias, specials = ELEMENTS[name]
        self.mbits, self.bits = mbits, 1 + ebits + mbits
        self.table: dict[int, object] = {}
        top = (1 << ebits) - 1
        for code in range(1 << self.bits):
            s, e, m = code >> (ebits + mbits), (code >> mbits) & top, code & (
                (1 << mbits) - 1)
            if specials == "ieee" and e == top:
                v = "inf" if m == 0 else "nan"
            elif specials == "fn" and e == top and m == (1 << mbits) - 1:
                v = "nan"
            elif e == 0:
                v = Fraction(m, 1 << mbits) * Fraction(2) ** (1 - bias)
            else:
                v = (1 + Fraction(m, 1 << mbits)) * Fraction(2) ** (e - bias)
            if isinstance(v, Fraction) and s:
                v = -v
            self.table[code] = v
        pos = sorted((v, c) for c, v in self.table.items()
                     if isinstance(v, Fraction) and c < (1 << (self.bits - 1)))
        self.values = [v for v, _ in pos]
        self.codes = [c for _, c in pos]
        self.max = self.values[-1]
        # the quiet NaN (top significand bit set) of IEEE-like e5m2, as ml_dtypes
        quiet = (top << mbits) | (1 << (mbits - 1))
        self.nan = {"ieee": quiet, "fn": (1 << (ebits + mbits)) - 1}.get(specials)
        self.inf = next((c for c, v in self.table.items() if v == "inf"), None)
        self.sign = 1 << (self.bits - 1)

    def emax(self) -> int:
        return floor_log2(self.max)

    def round(self, t: Fraction, neg: bool, mode: str = "ties_to_even") -> int:
        """The code of t (exact), saturating; ``neg`` is its sign (for -0)."""
        a = abs(t)
        if a >= self.max:
            mag = self.codes[-1]
        else:
            i = bisect.bisect_right(self.values, a) - 1  # values[i] <= a
            lo, hi = self.values[i], self.values[i + 1]
            if mode == "toward_zero" or a == lo:
                mag = self.codes[i]
            elif a - lo != hi - a:
                mag = self.codes[i] if a - lo < hi - a else self.codes[i + 1]
            else:  # tie: the even code
                mag = self.codes[i] if self.codes[i] % 2 == 0 else self.codes[i + 1]
        return mag | (self.sign if neg else 0)

    def special(self, x: float) -> int:
        sign = self.sign if math.copysign(1, x) < 0 else 0
        nan = self.nan if self.nan is not None else self.codes[-1]
        if math.isnan(x):
            return nan | sign
        return (self.inf if self.inf is not None else nan) | sign


class Int8Element:
    """MXINT8's element: two's-complement int8 times 2**-6."""

    bits = 8
    max = Fraction(127, 64)

    def emax(self) -> int:
        return 0

    def round(self, t: Fraction, neg: bool, mode: str = "ties_to_even") -> int:
        u = t * 64
        k = math.floor(u)
        if mode == "toward_zero":
            k = math.trunc(u)
        elif u - k > Fraction(1, 2) or (u - k == Fraction(1, 2) and k % 2):
            k += 1
        return max(-128, min(127, k)) & 0xFF

    def special(self, x: float) -> int:
        return 0x80 if math.copysign(1, x) < 0 else 0x7F


def floor_log2(a: Fraction) -> int:
    """floor(log2 a) of a positive Fraction, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    return e


def ceil_log2(a: Fraction) -> int:
    e = floor_log2(a)
    return e if Fraction(2) ** e == a else e + 1


def round_precision(a: Fraction, p: int) -> Fraction:
    """a > 0 rounded to p significant bits, ties to even."""
    e = floor_log2(a)
    q = a / Fraction(2) ** (e - p + 1)
    k = math.floor(q)
    if q - k > Fraction(1, 2) or (q - k == Fraction(1, 2) and k % 2):
        k += 1
    return k * Fraction(2) ** (e - p + 1)


def mx_block(xs, el, rule: str, precision: int, mode: str = "ties_to_even"):
    """(scale code, element codes) of one MX block, exactly."""
    finite = [Fraction(x) for x in xs if math.isfinite(x)]
    amax = max((abs(v) for v in finite), default=Fraction(0))
    if amax == 0:
        e = -127
    elif rule == "floor":
        e = floor_log2(amax) - el.emax()
    elif rule == "ceil":
        e = ceil_log2(amax) - el.emax()
    elif rule == "even":
        e = floor_log2(round_precision(amax, precision)) - el.emax()
    else:  # rceil: the fp32 descale of the spec, then up to a power of two
        with np.errstate(over="ignore"):  # float64 amax beyond fp32: inf, so 127
            d = np.float32(float(amax)) * np.float32(1 / float(el.max))
        e = 127 if np.isinf(d) else ceil_log2(Fraction(float(d))) if d != 0 else -127
    if amax != 0:
        e = max(-127, min(127, e))
    special = any(not math.isfinite(x) for x in xs)
    codes = [el.special(x) if not math.isfinite(x) else
             el.round(Fraction(x) / Fraction(2) ** e, math.copysign(1, x) < 0, mode)
             for x in xs]
    return (255 if special else e + 127), codes


def nvfp4_block(xs, global_amax: np.float32, rule: str):
    """(e4m3 scale code, e2m1 codes) of one NVFP4 block: the fp32 chain of TE."""
    f32 = np.float32
    e4m3, e2m1 = Element("fp8_e4m3fn"), Element("fp4_e2m1fn")
    g = f32(global_amax)
    s_enc = f32(1.0) if g == 0 else min(f32(f32(2688.0) / g),
                                         f32(np.finfo(np.float32).max))
    s_enc = f32(1.0) if s_enc == 0 else s_enc
    xs32 = [f32(x) for x in xs]
    a = max((abs(x) for x in xs32 if np.isfinite(x)), default=f32(0))
    if rule == "te":
        pre = a * f32(s_enc * f32(1 / 6))
    elif rule == "cudnn":
        pre = s_enc * f32(a * f32(1 / 6))
    else:
        pre = f32(a / f32(6)) * s_enc
    sc = e4m3.round(Fraction(float(pre)), False)
    s_block = f32(float(e4m3.table[sc]))
    with np.errstate(divide="ignore", over="ignore"):
        enc = min(f32(f32(1) / f32(s_block * f32(f32(1) / s_enc))),
                  f32(np.finfo(np.float32).max))
        ys = [f32(x * enc) for x in xs32]
    codes = [e2m1.special(float(x)) if not np.isfinite(x) else
             e2m1.round(Fraction(float(y)) if np.isfinite(y) else Fraction(10**9),
                        math.copysign(1, float(x)) < 0)
             for x, y in zip(xs32, ys, strict=True)]
    special = any(not np.isfinite(x) for x in xs32)
    return (0x7F if special else sc), codes, s_enc
