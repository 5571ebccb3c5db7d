"""Rounding an exact pair ``hi + lo`` once: the scalar routine of every kernel that
emulates arithmetic (elementwise operations, sums, matrix products).

An error-free transformation (:mod:`lowprec.arith._eft`) gives a float64 ``hi`` and the
exact error ``lo`` (``|lo| <= ulp(hi) / 2``); :func:`round_bits` rounds the real
number ``hi + lo`` onto a format in any mode, so an emulated operation is "exact
result, rounded once" even where float64 itself would have rounded. It follows the
steps of :mod:`lowprec.rounding._kernel` (unpack, round, overflow, specials, pack) on
64-bit patterns, with ``lo`` folded in as guard and sticky information:

* the exact magnitude is written ``a + delta`` with ``0 <= delta < ulp(a)``: when
  ``lo`` points toward zero, ``a`` steps down one float64 and ``delta = ulp - |lo|``;
* ``g`` says ``delta >= ulp / 2`` and ``s`` that ``delta`` is neither 0 nor
  ``ulp / 2``: enough, with the dropped bits, to place the exact value against
  half the gap for the nearest modes, and to know it is inexact for the others;
* stochastic rounding adds ``floor(delta * 2**q)`` to the 64-bit fixed-point
  fraction, which is exact: the carry out of the dropped bits is the whole story.

With ``lo = 0`` this is plain rounding, and the tests check it against
:mod:`lowprec.rounding.reference` and the rounding kernel bit for bit.
"""

from __future__ import annotations

import numpy as np

from lowprec._jit import jit_inline
from lowprec.modes import RD, RNA, RNE, RO, RU, RZ, SR
from lowprec.rounding.randomness import random_word

_I = np.int64
_U = np.uint64
_ABS = 0x7FFFFFFFFFFFFFFF
_INF = 0x7FF0000000000000
_QNAN = 0x7FF8000000000000
_MANT = 0x000FFFFFFFFFFFFF
_HIDDEN = 0x0010000000000000


@jit_inline
def _pow2(k):
    """2**k as a float64, for -1022 <= k <= 1023."""
    return np.int64((k + 1023) << 52).view(np.float64)


@jit_inline
def _delta_fixed(lo_m, q, ulp_exp):
    """floor(delta * 2**q) as uint64, delta = lo_m (lo_m > 0) or ulp + lo_m (< 0).

    ulp * 2**q = 2**ulp_exp; below 1 (ulp_exp < 0) delta cannot carry, so 0.
    """
    k1 = q // 2
    scaled = abs(lo_m) * _pow2(k1) * _pow2(q - k1)
    if lo_m > 0:
        return _U(min(np.floor(scaled), 1.8446744073709550e19))
    if lo_m < 0 and ulp_exp >= 0:
        # 2**ulp_exp - ceil(|lo| 2**q), in wrapping uint64 (2**64 wraps to 0)
        whole = (_U(1) << _U(min(ulp_exp, 63))) * _U(2 if ulp_exp == 64 else 1)
        return whole - _U(max(np.ceil(scaled), 1.0))
    return _U(0)


@jit_inline
def round_bits(b, lo, i, plan, mode, seed, words, rshift, rmask):
    """Round the exact value ``hi + lo`` (``b`` = bits of hi as int64); return the
    result bits and whether it overflowed.

    Written with selects rather than branches so that LLVM vectorizes the loop;
    magnitudes are below 2**63, so signed int64 compares are exact (AVX2 has no
    unsigned 64-bit compare).
    """
    # 1. unpack. The exact value is hi + lo, hi = b's value, |lo| <= ulp(hi) / 2
    # (an error-free transformation's error term; 0 for plain rounding). Work with
    # the magnitude a + delta, 0 <= delta < ulp(a): when lo points toward zero,
    # step a down one float64 and take delta = ulp - |lo|.
    a_in = b & _ABS
    sign = b ^ a_in
    negative = sign != 0
    lo_m = -lo if negative else lo
    a = a_in - 1 if lo_m < 0 else a_in
    # g: delta >= ulp(a) / 2; s: delta is neither 0 nor ulp(a) / 2 (sticky)
    e1 = max(a >> 52, 1)
    half_ulp = (e1 - 53) << 52 if e1 >= 54 else (_I(1) << max(e1 - 2, 0))
    lo_bits = np.float64(abs(lo)).view(np.int64)
    lo_is_half = lo_bits == half_ulp and e1 >= 2
    g = lo_m < 0 or (lo_m > 0 and lo_is_half)
    s = lo_m != 0 and not lo_is_half

    # 2. round: drop d low bits of a. d = 53 - p in the normal range and one more
    # per binade below it; float64 subnormals share the scale of exponent field 1.
    d = min(plan.d0 + max(plan.eminb - e1, 0), 62)  # lanes below T never use d
    unit_n = _I(1) << d
    rem_n = a & (unit_n - 1)
    # the significand with its hidden bit: at d = 52 the last kept bit is the
    # hidden bit, not the exponent field's low bit
    m = (a & _MANT) | (_HIDDEN if a >= _HIDDEN else 0)
    lsb_n = (m >> d) & 1
    # Below T the only candidates are 0 and T: "rem" is a itself, compared in
    # bit space (monotone), and the lower candidate 0 is even.
    tiny = a < plan.tiny
    unit = plan.tiny if tiny else unit_n
    rem = a if tiny else rem_n
    lsb = 0 if tiny else lsb_n
    # where the exact remainder rem + delta lies against half the gap: in the
    # normal range in units of half a float64 ulp (exact, as rem < 2**52);
    # below T in bit space against the bits of T / 2
    r2 = (rem_n << 1) | (1 if g else 0)
    above_n = r2 > unit_n or (r2 == unit_n and s)
    at_n = r2 == unit_n and not s
    above_t = a > plan.half_tiny or (a == plan.half_tiny and (g or s))
    at_t = a == plan.half_tiny and not (g or s)
    above = above_t if tiny else above_n
    at = at_t if tiny else at_n
    inexact = rem != 0 or g or s
    if mode == RNE:
        up = above or (at and lsb == 1)  # above half, or a tie with an odd last bit
    elif mode == RNA:
        up = above or at
    elif mode == RZ:
        up = False
    elif mode == RU:
        up = inexact and not negative
    elif mode == RD:
        up = inexact and negative
    elif mode == RO:
        up = inexact and lsb == 0
    else:
        if words.size > 0:
            k = words[i]
        else:
            k = random_word(seed, i)
        if mode == SR:
            # The dropped fraction rem / unit as a 64-bit fixed-point number. In the
            # normal range that is rem shifted up; below T it is x / T, the
            # significand shifted by its distance to T (left at most 11 places).
            frac_n = (_U(rem_n) << _U(63 - d)) << _U(1)
            sh = e1 - plan.tiny_shift
            left = _U(m) << _U(min(max(sh, 0), 63))
            right = _U(m) >> _U(min(max(-sh, 0), 63))
            frac_t = left if sh >= 0 else right
            frac = frac_t if tiny else frac_n
            # plus delta in the same fixed point: delta * 2**q with q = 64 - d -
            # log2 ulp(a) (normal range) or 64 - log2 T (below T); when a below T
            # has bits under 2**-64 T, delta cannot carry into the kept bits
            q = (1139 - d - e1) if not tiny else (1075 - plan.tiny_shift)
            frac = frac + _delta_fixed(lo_m, q, e1 - 1075 + q)
            # round up when fraction + random bits carries out of r bits
            up = (frac >> rshift) > (rmask - (k >> rshift))
        else:
            up = inexact and (k >> _U(63)) == _U(1)
    r = (0 if tiny else a - rem_n) + (unit if up else 0)

    # 3. overflow (inf inputs land here too but are replaced below)
    overflow = r > plan.max and a_in < _INF
    if r > plan.max:
        r = plan.ovf_neg if negative else plan.ovf_pos
    # 4. specials: inf by format, NaN stays a quiet NaN with its sign
    if a_in >= _INF:
        r = plan.inf_res if a_in == _INF else _QNAN
    # 5. pack
    keep_sign = r != 0 or plan.signed_zero == 1
    return r | (sign if keep_sign else 0), overflow


@jit_inline
def count_one(b, lo, rb, overflow, plan):
    """The exception flags of one rounding of ``hi + lo`` (hi's bits ``b``) to
    ``rb``: (inexact, underflow, flushed, overflow, saturated, nan) as 0/1."""
    a = b & _ABS
    ra = rb & _ABS
    nan_in = a > _INF
    inexact = (ra != a or lo != 0) and not nan_in
    lo_m = -lo if b < 0 else lo
    tiny = a < plan.smallest_normal or (a == plan.smallest_normal and lo_m < 0)
    sat = plan.sat_neg if b < 0 else plan.sat_pos
    return (
        1 if inexact else 0,
        1 if inexact and tiny else 0,
        1 if (a != 0 or lo != 0) and ra == 0 and not nan_in else 0,
        1 if overflow else 0,
        (sat if overflow else 0) + (plan.sat_inf if a == _INF else 0),
        1 if ra > _INF else 0,
    )
