"""Decoding codes from a format's parameters, independent of
:mod:`lowprec.rounding.encoding`, so tests of lowprec itself can use the strategies.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from lowprec.formats import Format

# -- decoding, independent of lowprec.encoding ------------------------------------


def _kind(fmt: Format, code: int) -> str:
    """Whether a code is "nan", "inf" or "finite", from the format's parameters."""
    magnitude = code & (fmt.sign_mask - 1)
    exponent = magnitude >> fmt.nmant
    top = (1 << fmt.exponent_bits) - 1
    mant_mask = (1 << fmt.nmant) - 1
    if fmt.specials == "ieee" and exponent == top:
        # all-ones exponent: zero significand is inf, any other is NaN
        return "inf" if magnitude & mant_mask == 0 else "nan"
    if fmt.specials == "fn" and magnitude == (top << fmt.nmant) | mant_mask:
        return "nan"
    if fmt.specials == "fnuz" and code == fmt.sign_mask:
        # fnuz: the negative-zero code is the only NaN
        return "nan"
    return "finite"


def _magnitude(fmt: Format, code: int) -> float:
    """The value of a positive finite code, computed exactly in float64."""
    exponent = code >> fmt.nmant
    significand = code & ((1 << fmt.nmant) - 1)
    if exponent == 0:
        # subnormal: 2**emin * M / 2**(p-1); the ints are < 2**53, so exact
        return math.ldexp(significand, fmt.emin - fmt.nmant)
    return math.ldexp((1 << fmt.nmant) | significand, exponent - fmt.bias - fmt.nmant)


class _Magnitudes:
    """The positive finite values of a format, numbered 1..n in increasing order.

    Positive codes order like their values, so value ``k`` is a code plus an
    offset; without subnormals the codes ``1 .. 2**(p-1) - 1`` are skipped.
    Index 0 is zero.
    """

    def __init__(self, fmt: Format, subnormals: bool) -> None:
        self.fmt = fmt
        self.subnormals = subnormals and fmt.subnormals
        # index k is code k + skip
        self.skip = 0 if self.subnormals else (1 << fmt.nmant) - 1
        self.n = fmt.max_code - self.skip
        self.first_normal = (1 << fmt.nmant) - self.skip

    def __getitem__(self, k: int) -> float:
        return 0.0 if k == 0 else _magnitude(self.fmt, k + self.skip)

    def count_below(self, x: float, *, inclusive: bool) -> int:
        """How many positive values are < x (or <= x), by bisection."""
        if self._passes(self.n, x, inclusive):
            return self.n
        lo, hi = 0, self.n - 1  # invariant: self[lo] passes, self[hi + 1] fails
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._passes(mid, x, inclusive):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _passes(self, k: int, x: float, inclusive: bool) -> bool:
        return k == 0 or (self[k] <= x if inclusive else self[k] < x)

    def by_binade(self, a: int, b: int) -> st.SearchStrategy[int]:
        """Indices in [a, b], with the exponent field drawn apart from the rest.

        Hypothesis draws a wide integer range mostly from its small end; drawing
        the exponent on its own gives every binade of fp64 its share.
        """
        lo, hi = a + self.skip, b + self.skip  # as codes
        nmant = self.fmt.nmant

        def index(drawn: tuple[int, int]) -> int:
            code = (drawn[0] << nmant) | drawn[1]
            # the end binades are cut at the bounds (which also weights them)
            return min(max(code, lo), hi) - self.skip

        fields = st.tuples(
            st.integers(lo >> nmant, hi >> nmant), st.integers(0, (1 << nmant) - 1)
        )
        return fields.map(index)

    def interesting(self) -> list[int]:
        """Indices of the boundary values: smallest, subnormal edge, 1.0, max."""
        fmt = self.fmt
        picks = [1, 2, self.first_normal - 1, self.first_normal]
        picks += [self.first_normal + 1, self.n - 1, self.n]
        if fmt.emin <= 0 <= fmt.emax:
            picks.append((fmt.bias << fmt.nmant) - self.skip)  # 1.0
        return sorted({k for k in picks if 1 <= k <= self.n})

    def gap_above(self, k: int) -> float:
        """The distance from value k to the next, exactly (a power of two).

        Above max it is the ulp of max, as if the exponent range went on: the
        midpoint there is the overflow bound of round-to-nearest, and for
        ``fn`` formats ``max + ulp`` is the value the NaN code would have.
        """
        if k == self.n:
            return math.ldexp(1.0, self.fmt.emax - self.fmt.nmant)
        return self[k + 1] - self[k]
