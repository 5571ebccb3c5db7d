"""Stochastic rounding of one bit pattern from the upper 32 bits of its random word.

Private: the loops of :mod:`lowprec.rounding._kernel` call these for
``rounding="stochastic"``; the rule is :mod:`lowprec.rounding.reference`'s. An element rounds
up when the fraction rounded off and its random word, both read as fractions of 64
bits (the word cut to ``random_bits``), carry out when added
(:mod:`lowprec.rounding.randomness`). These functions look at the word's upper 32 bits only.

They work on one machine word of the input's bit pattern: all of a float32, all of
a float64, or, for formats of at most 21 bits of precision, the upper 32 bits of a
float64 (the lower 32 beside it as ``lo``). Kept bits then lie in the upper word,
and the float64 loop runs on 32-bit lanes, eight to an AVX2 instruction instead of
four. With ``e`` the word's biased exponent field and ``m`` the significand (hidden
bit included):

1. ``n``, the bits dropped from the word: ``d0`` from B up; below B the format's
   values are the multiples of T, so ``n`` grows by one per binade down. The code
   keeps ``left = W - n`` (``W`` the word's width), the shift that brings the
   dropped bits to the top of the word.
2. the fraction rounded off, as 32-bit fixed point: the bits ``n - 1 .. n - 32`` of
   the pattern, ``floor(m * 2**(32 - n)) mod 2**32`` with ``lo`` shifted in below.
   A shift by ``W`` bits or more gives 0, which is what AVX2's variable shifts
   do, so each is one instruction. Below T (``n`` past the significand) the same
   formula gives ``x / T``.
3. round up when that plus the word's upper 32 bits carries. If the sum is all
   ones, bits below both could still carry: the lane reports doubt, and the runner
   redoes its block with whole words (probability ``2**-32`` per element for random
   words). Stochastic rounding with a fixed word is monotone, so nothing else can
   change the result.
4. the result: the magnitude with its ``n`` low bits cleared, plus ``2**n`` if up (a
   carry into the exponent field is exactly the next binade); below T, 0 or T.
5. overflow and specials: a result above max becomes the overflow result, which for
   stochastic rounding is also what an infinite input gives (inf, NaN or max by
   format and ``saturate``); an infinite input reaches it since its pattern is
   above max. NaN stays a quiet NaN with its sign. Formats without -0 turn it into
   +0.

Every choice is a :func:`lowprec._jit.select`, so the loops have no branches.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from lowprec._jit import jit_inline, select

# bit operations that keep their operands' integer type (see _round_kernel)
_add, _sub = np.add, np.subtract
_and, _or, _xor, _not = np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert
_shl, _shr = np.left_shift, np.right_shift


class SrConsts(NamedTuple):
    """A plan's constants for one word layout (see :func:`make_sr_consts`), as
    words: patterns of the word's width, or their upper 32 bits (layout "64hi")."""

    left: int  # W - (bits dropped from the word) in the normal range (W: its width)
    lsub: int  # below B, W - e + lsub bits are dropped
    normal: int  # B, the smallest normal
    tiny: int  # T, the smallest positive value
    max: int  # the largest finite value
    ovf: int  # what overflow and an infinite input give
    no_zero: int  # the code to turn into +0: -0 for fnuz formats, else -1 (never one)
    keep: int  # the random_bits leading bits of the word's upper 32 (unsigned)


class Layout(NamedTuple):
    int: type  # the word's integer types
    uint: type
    mant: int  # significand bits stored in the word
    shift: int  # the word is the pattern's bits shift .. shift + width - 1


LAYOUTS = {
    "32": Layout(np.int32, np.uint32, 23, 0),
    "64": Layout(np.int64, np.uint64, 52, 0),
    "64hi": Layout(np.int32, np.uint32, 20, 32),
}


def splits(d0_64: int) -> bool:
    """Whether a float64 input can round on its upper word: ``d0 >= 32`` (the
    format's precision is at most 21 bits), so no kept bit lies in the lower."""
    return d0_64 >= 32


@functools.lru_cache(maxsize=512)
def make_sr_consts(plan, layout: str, rshift: int) -> np.ndarray:
    """The constants of ``plan`` (a RoundPlan) for ``layout``, as an int64 array in
    the order of :class:`SrConsts`; ``rshift`` is 64 - random_bits."""
    lay = LAYOUTS[layout]
    width = 8 * np.dtype(lay.int).itemsize
    store = 23 if layout == "32" else 52  # the storage's significand bits

    def word(bits64: int) -> int:
        """The word of the float64 with bit pattern ``bits64``, in the storage."""
        value = np.int64(bits64).view(np.float64)
        if layout == "32":
            return int(np.float32(value).view(np.int32))  # exact: it fits
        return int(np.int64(bits64) >> lay.shift)

    d0 = plan.d0 - (52 - store)
    t = math.frexp(np.int64(plan.tiny).view(np.float64))[1] - 1  # T = 2**t
    bias = 127 if layout == "32" else 1023
    keep = ~((1 << rshift) - 1) & (2**64 - 1)
    assert plan.ovf_pos == plan.ovf_neg == plan.inf_res, "symmetric for stochastic"
    consts = SrConsts(
        left=width - (d0 - lay.shift),
        lsub=t + bias + store - lay.shift - width,
        normal=word(plan.smallest_normal),
        tiny=word(plan.tiny),
        max=word(plan.max),
        ovf=word(plan.ovf_pos),
        no_zero=-1 if plan.signed_zero else -(1 << (width - 1)),
        keep=keep >> 32,
    )
    out = np.array(consts, dtype=np.int64)
    out.flags.writeable = False
    return out


def _make(layout: str):
    """The element function for one word layout (see the module docstring)."""
    lay = LAYOUTS[layout]
    IT, UT = lay.int, lay.uint
    width = 8 * np.dtype(IT).itemsize
    ZERO, ONE = IT(0), IT(1)
    UZERO, U32 = UT(0), np.uint32
    MB, W = IT(lay.mant), IT(width)
    ABS = IT((1 << (width - 1)) - 1)
    INF = IT(((1 << (width - 1 - lay.mant)) - 1) << lay.mant)
    QNAN = IT(INF | (1 << (lay.mant - 1)))
    TOP = UT(width - 32)  # the fraction's upper 32 bits
    ALL = UT((1 << width) - 1)

    @jit_inline
    def unpack(cs):
        return SrConsts(
            IT(cs[0]), IT(cs[1]), IT(cs[2]), IT(cs[3]), IT(cs[4]), IT(cs[5]),
            IT(cs[6]), U32(cs[7]),
        )  # fmt: skip

    @jit_inline
    def shl(v, n):
        """``v << n``, 0 unless 0 <= n < width (unsigned ``v``)."""
        return select(UT(n) < UT(width), _shl(v, UT(n)), UZERO)

    @jit_inline
    def shr(v, n):
        """``v >> n``, 0 unless 0 <= n < width (unsigned ``v``)."""
        return select(UT(n) < UT(width), _shr(v, UT(n)), UZERO)

    @jit_inline
    def sr_round(h, lo, k_hi, s, has_small, signed_zero, cut):
        """Round the word ``h`` (with the lower word ``lo``, 0 if none) by the
        upper 32 bits ``k_hi`` of its random word; ``s`` is an :class:`SrConsts`.
        Returns the result's word, whether it overflowed, and the doubt.

        The flags are compile-time constants, each sparing the loop work and a
        register: without ``has_small`` every element drops the same bits
        (formats whose grid below B is the storage's own subnormal grid,
        coarsened); ``signed_zero``: the format has -0; ``cut``: fewer than 32
        random bits, so the word is masked.
        """
        a = _and(h, ABS)
        sign = _xor(h, a)
        # left = W - n: the shift that brings the n bits dropped to the top
        left = s.left
        # (bits of the word above n leave through the top of the word)
        frac = _or(shl(UT(a), left), shr(lo, _sub(W, left)))
        if has_small:
            e1 = max(_shr(a, MB), ONE)  # storage subnormals: exponent 1's scale
            left = select(a >= s.normal, s.left, _sub(e1, s.lsub))
            # n may exceed the significand here: m holds the hidden bit
            m = UT(_sub(a, _shl(_sub(e1, ONE), MB)))
            frac = _or(
                _or(shl(m, left), shr(lo, _sub(W, left))), shr(m, _sub(ZERO, left))
            )
        top = U32(_shr(frac, TOP))
        nk = _not(_and(k_hi, s.keep) if cut else k_hi)
        up = top > nk  # top + word carries out of 32 bits
        doubt = top == nk
        mask = IT(shr(ALL, left))  # the n bits dropped
        trunc = _and(a, _not(mask))
        unit = _add(mask, ONE)
        if has_small:
            below_t = a < s.tiny  # the result is 0 or T
            trunc = select(below_t, ZERO, trunc)
            unit = select(below_t, s.tiny, unit)
        r = _add(trunc, select(up, unit, ZERO))
        big = r > s.max
        r = select(big, s.ovf, r)
        # (& and | on booleans: "and" and "or" would be branches)
        nan = _or(a > INF, _and(a == INF, lo != UZERO))
        r = select(nan, QNAN, r)
        packed = _or(r, sign)
        if not signed_zero:
            packed = select(packed == s.no_zero, ZERO, packed)
        return packed, _and(big, a < INF), doubt

    return unpack, sr_round


unpack32, sr_round32 = _make("32")
unpack64, sr_round64 = _make("64")
unpack64hi, sr_round64hi = _make("64hi")
