"""The Numba rounding kernel: a tight integer loop on float64 bit patterns.

Private: :func:`lowprec.round` validates, derives the constants once (a
:class:`RoundPlan`) and calls :func:`round_kernel`; the kernel only sees arrays and
plain integers. :mod:`lowprec.reference` states the same computation in NumPy.

Every element goes through the steps of ml_dtypes' ``ConvertImpl``, on the bits of
its float64 value ``b`` (float16/float32 inputs are widened exactly):

1. unpack: sign and magnitude bits ``a``;
2. round: drop ``d`` low bits of ``a``, where ``d`` is 53 - p in the format's normal
   range and grows by one per binade below it (gradual underflow). Adding one unit
   at bit ``d`` to the truncated magnitude carries into the exponent field when the
   significand is all ones, which is exactly the next binade, so no renormalising
   is needed. Values below the smallest positive value ``T`` are rounded apart:
   their only candidates are 0 and ``T``;
3. overflow: a magnitude above ``max`` becomes inf, max or NaN by mode and format;
4. NaN and inf inputs: NaN stays (quiet) NaN with its sign; inf by format;
5. pack: put the sign back (not on a zero of an fnuz format).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from lowprec._jit import jit_inline, jit_parallel
from lowprec.modes import RD, RNA, RNE, RO, RU, RZ, SR, SRE
from lowprec.randomness import random_word

_I = np.int64
_U = np.uint64
_ABS = 0x7FFFFFFFFFFFFFFF
_INF = 0x7FF0000000000000
_QNAN = 0x7FF8000000000000
_MANT = 0x000FFFFFFFFFFFFF
_HIDDEN = 0x0010000000000000


class RoundPlan(NamedTuple):
    """The constants a kernel call needs: float64 bit patterns (int64) and counts."""

    d0: int  # bits dropped in the format's normal range: 53 - p
    eminb: int  # float64 biased exponent of the smallest normal (0 if flushed)
    tiny: int  # bits of T, the smallest positive value
    half_tiny: int  # bits of T / 2 (or 1 if T / 2 is not a float64)
    tiny_shift: int  # 1011 + log2(T): aligns a tiny significand to 64-bit x / T
    max: int  # bits of the largest finite value
    ovf_pos: int  # magnitude that +overflow gives
    ovf_neg: int  # magnitude that -overflow gives
    inf_res: int  # magnitude that an infinite input gives
    sat_pos: int  # 1 if the +overflow result counts as saturation
    sat_neg: int
    sat_inf: int
    signed_zero: int  # 0 for fnuz formats: zero has no sign
    smallest_normal: int  # bits of 2**emin, for counting underflow


@jit_inline
def _round_bits(b, i, plan, mode, seed, words, rshift, rmask):
    """Round one float64 bit pattern (as int64); return result bits and overflow.

    Written with selects rather than branches so that LLVM vectorizes the loop;
    magnitudes are below 2**63, so signed int64 compares are exact (AVX2 has no
    unsigned 64-bit compare).
    """
    # 1. unpack
    a = b & _ABS
    sign = b ^ a
    negative = sign != 0

    # 2. round: drop d low bits of a. d = 53 - p in the normal range and one more
    # per binade below it; float64 subnormals share the scale of exponent field 1.
    e1 = max(a >> 52, 1)
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
    half = plan.half_tiny if tiny else max(unit_n >> 1, 1)  # >= 1: exact stays put
    lsb = 0 if tiny else lsb_n
    inexact = rem != 0
    if mode == RNE:
        up = rem + lsb > half  # above half, or a tie with an odd last bit
    elif mode == RNA:
        up = rem >= half
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
            # round up when fraction + random bits carries out of r bits
            up = (frac >> rshift) > (rmask - (k >> rshift))
        else:
            up = inexact and (k >> _U(63)) == _U(1)
    r = (0 if tiny else a - rem_n) + (unit if up else 0)

    # 3. overflow (inf inputs land here too but are replaced below)
    overflow = r > plan.max and a < _INF
    if r > plan.max:
        r = plan.ovf_neg if negative else plan.ovf_pos
    # 4. specials: inf by format, NaN stays a quiet NaN with its sign
    if a >= _INF:
        r = plan.inf_res if a == _INF else _QNAN
    # 5. pack
    keep_sign = r != 0 or plan.signed_zero == 1
    return r | (sign if keep_sign else 0), overflow


_KERNELS: dict[tuple[int, bool], object] = {}


def round_kernel(mode: int, counting: bool):
    """The compiled loop for one rounding mode, with or without exception counts.

    Each (mode, counting) pair is its own function so that the other modes'
    branches and the counting are folded away at compile time; ``mode`` and
    ``counting`` reach Numba as closure constants, which its cache keys on.
    """
    key = (mode, counting)
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernel(mode, counting)
    return _KERNELS[key]


def _make_kernel(mode: int, counting: bool):
    @jit_parallel
    def kernel(x, out, plan, seed, words, rshift, rmask):
        """Round ``x`` (1-D float) into ``out`` (1-D float); return the counts."""
        n = x.size
        n_inexact = 0
        n_underflow = 0
        n_flushed = 0
        n_overflow = 0
        n_saturated = 0
        n_nan = 0
        for i in prange(n):
            b = np.float64(x[i]).view(np.int64)
            rb, overflow = _round_bits(b, i, plan, mode, seed, words, rshift, rmask)
            out[i] = np.int64(rb).view(np.float64)
            if counting:
                a = b & _ABS
                ra = rb & _ABS
                inexact = ra != a and a <= _INF
                n_inexact += 1 if inexact else 0
                n_underflow += 1 if inexact and a < plan.smallest_normal else 0
                n_flushed += 1 if a != 0 and ra == 0 else 0
                n_overflow += 1 if overflow else 0
                sat = plan.sat_neg if b < 0 else plan.sat_pos
                n_saturated += sat if overflow else 0
                n_saturated += plan.sat_inf if a == _INF else 0
                n_nan += 1 if ra > _INF else 0
        return n_inexact, n_underflow, n_flushed, n_overflow, n_saturated, n_nan

    return kernel
