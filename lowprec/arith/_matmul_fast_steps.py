"""The ties_to_even fast path's per-lane steps, and the general steps that redo
the lanes it does not cover.

Private, used by the row loops of :mod:`lowprec.arith._matmul_fast`. Each step
returns its value and whether the lane was in the fast region; a lane that was
not is redone from its old values by one of the ``_fix_*`` functions, which call
the general steps of :mod:`lowprec.arith._matmul_steps` in ties_to_even.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from lowprec import _jit, modes
from lowprec._jit import jit, jit_inline
from lowprec.arith import _eft, _matmul_steps, _pair_round
from lowprec.arith import _elementwise_kernel as _arith_kernel
from lowprec.arith._eft import fma, two_sum
from lowprec.arith._matmul_steps import (
    _add_exact_term,
    _kahan_step,
    _rnd,
    _term_pair,
)
from lowprec.modes import RNE
from lowprec.rounding import randomness
from lowprec.rounding._kernel import _source_stamp

# the modules whose jitted code the ``_fix_*`` functions inline (see _matmul_steps)
_STAMPED = (_arith_kernel, _eft, _jit, _matmul_steps, _pair_round, modes, randomness)
_HELPERS = _source_stamp(*_STAMPED)

# ---------------------------------------------------------------------------------
# The ties_to_even fast path
#
# (s, lo) = two_sum(x, y) is the exact sum, |lo| <= ulp(s) / 2 in the lanes' float
# type. When |s| lies in the accumulator's normal range [smallest_normal, B],
# rounding s + lo to nearest even drops d = (lane precision) - p low bits of s's
# pattern. The target grid's gap is 2**d lane ulps and d >= 1, so |lo| is at most a
# quarter of it: s + lo lies on the same side of every midpoint as s, unless s is
# itself a midpoint (the dropped bits are exactly half a unit). Then lo decides:
# up when it points away from zero, down when toward zero, to even when it is 0.
# So with e = 1 for "up at a tie", the result is (bits + half - 1 + e) with the low
# d bits cleared: the carry happens iff rem + e > half. Just below a power of two
# the grid below is twice as fine, but s's rounding is then the power of two
# itself and |lo| <= ulp(s-) / 2 is still inside half that finer gap. A carry out
# of the significand is the next binade; nothing in the range rounds past max, so
# there is no overflow. An exact zero (lo = 0) is its own rounding, sign and all,
# except in a format without -0, where it is left to the general steps.
#
# B is the format's max, capped at 2**1020 (float64 lanes) or 2**126 (float32
# lanes) so that no intermediate of two_sum can overflow: every operand is a
# previous in-range result or a product, and a lane whose sum leaves the range is
# flagged. Flagged lanes (tiny or subnormal results, magnitudes above B, inf, NaN)
# are redone after the vectorized loop over j by a scalar pass that calls the
# general steps, from the old values kept in a second buffer.
#
# float32 lanes (twice as many per vector) are used when the accumulator's normal
# range is one of float32 (p <= 24, smallest normal >= 2**-126) and every product
# is exact in float32: the data are float32 values whose significands together
# need at most 24 bits and whose nonzero products are at least 2**-126 (checked
# per call in O(mk + kn)). Then two_sum in float32 is exact too, and for an fp32
# accumulator (d = 0) the float32 sum itself is the rounded result. Which lanes
# are used never changes a result, only the speed.


def _round_pair(s, lo, c):
    """(s + lo rounded to nearest even, whether the lane is in the fast region)."""


def _term_fast(aik, bkj, pc):
    """(the k-th term, whether the fast path covered it)."""


_I32 = np.int32
_ABS32 = 0x7FFFFFFF
_ABS64 = 0x7FFFFFFFFFFFFFFF
_OVERLOAD = dict(jit_options=dict(error_model="numpy"), inline="always")


@overload(_round_pair, **_OVERLOAD)
def _round_pair_ol(s, lo, c):
    if isinstance(s, types.Float) and s.bitwidth == 64:

        def round64(s, lo, c):
            unit, half_m1, keep, low_add, low_min, max_bits = c
            b = np.float64(s).view(np.int64)
            lb = np.float64(lo).view(np.int64)
            a = b & _ABS64
            odd = (b & unit) != 0
            away = (lb ^ b) >= 0  # lo on s's side (read only when lo != 0)
            # up at a tie: lo away from zero, or lo = 0 and an odd last bit
            e = (odd & (lo == 0.0)) | (away & (lo != 0.0))
            r = (b + half_m1 + np.int64(e)) & keep
            # a in {0 (if the format has -0)} or [smallest_normal, B]: one signed
            # compare of a + low_add stands for an unsigned one (see _consts)
            ok = ((a + low_add) >= low_min) & (a <= max_bits)
            return np.int64(r).view(np.float64), ok

        return round64
    if len(c) == 6:

        def round32(s, lo, c):
            # as round64; every int32 result is truncated back to int32 so LLVM
            # keeps 8 lanes (Numba types int32 arithmetic as int64)
            unit, half_m1, keep, low_add, low_min, max_bits = c
            b = np.float32(s).view(np.int32)
            lb = np.float32(lo).view(np.int32)
            a = _I32(b & _ABS32)
            odd = _I32(b & unit) != _I32(0)
            away = _I32(lb ^ b) >= _I32(0)
            e = (odd & (lo == np.float32(0.0))) | (away & (lo != np.float32(0.0)))
            r = _I32(_I32(b + half_m1) + _I32(e)) & keep
            ok = (_I32(a + low_add) >= low_min) & (a <= max_bits)
            return np.int32(r).view(np.float32), ok

        return round32

    def exact32(s, lo, c):
        # p = 24: the float32 sum is already rounded to nearest even
        low_add, low_min, max_bits = c
        a = _I32(np.float32(s).view(np.int32) & _ABS32)
        return s, (_I32(a + low_add) >= low_min) & (a <= max_bits)

    return exact32


@overload(_term_fast, **_OVERLOAD)
def _term_fast_ol(aik, bkj, pc):
    if len(pc) == 0:
        return lambda aik, bkj, pc: (aik * bkj, True)  # exact product

    def rounded(aik, bkj, pc):
        p = aik * bkj
        return _round_pair(p, fma(aik, bkj, -p), pc)

    return rounded


@jit_inline
def _sum_fast(x, y, c):
    # two_sum without the inf/NaN clean-up (such lanes are flagged), rounded
    s = x + y
    bb = s - x
    return _round_pair(s, (x - (s - bb)) + (y - bb), c)


@jit_inline
def _add_fast(x, aik, bkj, pc, ac):
    t, ok_t = _term_fast(aik, bkj, pc)
    v, ok = _sum_fast(x, t, ac)
    return v, ok & ok_t


@jit_inline
def _kahan_fast(x, c, aik, bkj, pc, ac):
    t, ok = _term_fast(aik, bkj, pc)
    y, ok1 = _sum_fast(t, -c, ac)
    s_new, ok2 = _sum_fast(x, y, ac)
    d, ok3 = _sum_fast(s_new, -x, ac)
    c_new, ok4 = _sum_fast(d, -y, ac)
    return s_new, c_new, ok & ok1 & ok2 & ok3 & ok4


# The general steps for the lanes the fast path leaves, in ties_to_even: compiled
# once as functions of their own (rarely called), on float64 values.
_RNE_EXACT = (RNE, False, False, True)
_RNE_ROUNDED = (RNE, False, True, True)


def _make_fix_add():
    helpers = _HELPERS

    @jit
    def _fix_add(x, aik, bkj, idx, pplan, aplan, round_products, rs, cnt):
        if helpers < 0:  # never: the stamp only keys the cache
            return 0.0
        seed, rshift, rmask, words = rs
        if round_products:
            return _add_exact_term(
                x,
                aik,
                bkj,
                idx,
                pplan,
                aplan,
                _RNE_ROUNDED,
                seed,
                rshift,
                rmask,
                words,
                cnt,
            )
        return _add_exact_term(
            x, aik, bkj, idx, pplan, aplan, _RNE_EXACT, seed, rshift, rmask, words, cnt
        )

    return _fix_add


_fix_add = _make_fix_add()


def _make_fix_term():
    helpers = _HELPERS

    @jit
    def _fix_term(aik, bkj, idx, pplan, round_products, rs, cnt):
        if helpers < 0:  # never: the stamp only keys the cache
            return 0.0
        seed, rshift, rmask, words = rs
        if round_products:
            return _term_pair(
                aik, bkj, idx, pplan, _RNE_ROUNDED, seed, rshift, rmask, words, cnt
            )[0]
        return aik * bkj

    return _fix_term


_fix_term = _make_fix_term()


def _make_fix_sum():
    helpers = _HELPERS

    @jit
    def _fix_sum(x, y, idx, aplan, rs, cnt):
        if helpers < 0:  # never: the stamp only keys the cache
            return 0.0
        seed, rshift, rmask, words = rs
        s, slo = two_sum(x, y)
        return _rnd(s, slo, idx, aplan, RNE, False, seed, rshift, rmask, words, cnt)

    return _fix_sum


_fix_sum = _make_fix_sum()


def _make_fix_kahan():
    helpers = _HELPERS

    @jit
    def _fix_kahan(x, c, aik, bkj, idx, pplan, aplan, round_products, rs, cnt):
        if helpers < 0:  # never: the stamp only keys the cache
            return 0.0, 0.0
        seed, rshift, rmask, words = rs
        if round_products:
            return _kahan_step(
                x,
                c,
                aik,
                bkj,
                idx,
                pplan,
                aplan,
                _RNE_ROUNDED,
                seed,
                rshift,
                rmask,
                words,
                cnt,
            )
        return _kahan_step(
            x,
            c,
            aik,
            bkj,
            idx,
            pplan,
            aplan,
            _RNE_EXACT,
            seed,
            rshift,
            rmask,
            words,
            cnt,
        )

    return _fix_kahan


_fix_kahan = _make_fix_kahan()
