"""Numba kernels for emulated matrix products with a chosen accumulator and order.

Private; :func:`lowprec.matmul` validates, rounds the inputs and calls
:func:`matmul_kernel`. ``C[i, j]`` reduces the terms ``A[i, k] * B[k, j]``; every
rounding goes through the rounding kernel's scalar routine on the exact (hi, lo)
pair, so each step is "exact result, rounded once" in its format:

* a product is rounded to the products format unless products are exact;
* each addition is rounded to the accumulator format, in the order chosen:
  ``sequential`` (k = 0, 1, ...), ``pairwise`` (adjacent pairs, level by level;
  an odd last term moves up a level unchanged), ``blocked`` (sequential inside
  blocks of ``block`` terms, then sequential across the block sums) or ``kahan``
  (compensated summation, the compensation kept in the accumulator format);
* the result is rounded to the output format.

Loops run over j innermost, so rows of B are read contiguously and LLVM
vectorizes across independent outputs; the parallel loop is over rows of C only.
The random word of each stochastic rounding is the hash of (seed, event index),
the event index counting (i, j, k, step) in a fixed order, so results do not
depend on the number of threads.

Two kernels compute this. The general kernel (:func:`_make_kernel`) runs every
rounding through :func:`lowprec.arith._pair_round.round_bits`, in any mode and with the
exception counts; it is the reference. The ties_to_even fast path
(:func:`_make_fast_kernel`, see the section below) gives the same bits with a few
integer operations per rounding, on float32 lanes when the data allow, and hands
the rare lanes it does not cover back to the general steps. Kernels are
specialized by closure constants that are plain ints and tuples of them and call
module-level helpers only, so that Numba's cache can key on them (a closure cell
holding a dispatcher pickles differently in every process). Every jitted function
here also keeps :data:`_HELPERS`, a stamp of the source of the modules it inlines,
in its closure, so that the cache does not outlive a change to them.

:func:`to_float32` (the last section) checks and converts the operands of
``lowprec.matmul``'s float32 BLAS path in one pass.
"""

from __future__ import annotations

import numpy as np
from numba import prange, types
from numba.extending import overload

from lowprec import _jit, modes
from lowprec._jit import jit, jit_inline, jit_parallel
from lowprec.arith import _eft, _pair_round
from lowprec.arith import _elementwise_kernel as _arith_kernel
from lowprec.arith._eft import fma, fma_pair, fma_pair_radius, two_prod, two_sum
from lowprec.arith._elementwise_kernel import (
    FMA,
    _bracket_needed,
    _next_above,
    _round_stochastic_bits,
    _round_stochastic_exact,
)
from lowprec.arith._pair_round import count_one, round_bits
from lowprec.modes import RD, RNE, SR
from lowprec.rounding import randomness
from lowprec.rounding._kernel import _source_stamp

SEQUENTIAL, PAIRWISE, BLOCKED, KAHAN = range(4)
ORDERS = ("sequential", "pairwise", "blocked", "kahan")
_STEPS = 5  # event indices per (i, j, k): product, add, Kahan's three more

# Numba's cache checks only this file, and its key holds a function's own bytecode
# and closure, not the code it inlines or calls: every jitted function here keeps
# this stamp of the other modules' source in its closure (the ``_make_*``
# factories), so that a change to a helper (or to the JIT options) recompiles it.
# (The globals RD, RNE, ... are frozen into the code as well: modes is stamped.)
_STAMPED = (_arith_kernel, _eft, _jit, _pair_round, modes, randomness)
_HELPERS = _source_stamp(*_STAMPED)


# ---------------------------------------------------------------------------------
# The general steps. ``cfg = (mode, counting, round_products, exact_products)`` is
# a closure constant of the calling kernel, so LLVM folds the choices away.
# (seed, rshift, rmask, words), the stochastic rounding's state, travel as four
# arguments: unpacking a tuple that holds an array in the loop would cost a
# reference count per element. The fast path's functions take it as one tuple
# ``rs`` and unpack it once per call.


def _make_rnd():
    helpers = _HELPERS

    @jit
    def _rnd(hi, lo, idx, plan, mode, counting, seed, rshift, rmask, words, cnt):
        # hi + lo rounded once to plan's format; counted into cnt if asked
        if helpers < 0:  # never: the stamp only keys the cache
            return 0.0
        b = np.float64(hi).view(np.int64)
        rb, overflow = round_bits(b, lo, idx, plan, mode, seed, words, rshift, rmask)
        if counting:
            c = count_one(b, lo, rb, overflow, plan)
            for t in range(6):
                cnt[t] += c[t]
            cnt[6] += 1  # every rounding is one event of the stats' total
        return np.int64(rb).view(np.float64)

    return _rnd


_rnd = _make_rnd()


def _make_rnd_fma_stochastic():
    helpers = _HELPERS

    @jit
    def _rnd_fma_stochastic(
        x, y, z, hi, lo, rad, idx, plan, counting, seed, rshift, rmask, words, cnt
    ):
        # x * y + z, within rad of hi + lo, rounded stochastically to a plan whose
        # precision makes lo too coarse for the 64-bit random word (see
        # lowprec.arith._elementwise_kernel): round both ends of the bracket, outward; if they
        # differ, the word's threshold lies between them and _round_stochastic_exact
        # decides on the exact value. Not inlined: only wide accumulators take it.
        if helpers < 0:  # never: the stamp only keys the cache
            return 0.0
        b = np.float64(hi).view(np.int64)
        end = -_next_above(-(lo - rad))
        rb, overflow = _round_stochastic_bits(
            b, end, idx, plan, seed, words, rshift, rmask
        )
        end = _next_above(lo + rad)
        r, o = _round_stochastic_bits(b, end, idx, plan, seed, words, rshift, rmask)
        if r != rb or o != overflow:
            # the plan is not scaled (e = 0): matmul works in float64's range
            rb, overflow = _round_stochastic_exact(
                np.int64(FMA), x, y, z, b, lo, 0, idx, plan, seed, words, rshift,
                rmask,
            )  # fmt: skip
        if counting:
            c = count_one(b, lo, rb, overflow, plan)
            for t in range(6):
                cnt[t] += c[t]
            cnt[6] += 1
        return np.int64(rb).view(np.float64)

    return _rnd_fma_stochastic


_rnd_fma_stochastic = _make_rnd_fma_stochastic()


@jit_inline
def _exact_sum(x, y, mode):
    # two_sum, except that an exact zero sum is -0 when rounding down (IEEE 754
    # 6.3): negate, add, negate back
    if mode == RD:
        hi, lo = two_sum(-x, -y)
        return -hi, -lo
    return two_sum(x, y)


@jit_inline
def _term_pair(aik, bkj, idx, pplan, cfg, seed, rshift, rmask, words, cnt):
    # the k-th term as an exact pair (its product, rounded if asked)
    mode, counting, round_products, exact_products = cfg
    if round_products:
        p, plo = two_prod(aik, bkj)
        return _rnd(
            p, plo, idx, pplan, mode, counting, seed, rshift, rmask, words, cnt
        ), 0.0
    if exact_products:
        return aik * bkj, 0.0
    return two_prod(aik, bkj)


@jit_inline
def _add_term(acc, aik, bkj, idx, pplan, aplan, cfg, seed, rshift, rmask, words, cnt):
    # acc + term, rounded once to the accumulator format
    mode, counting, round_products, exact_products = cfg
    if round_products or exact_products:
        t, tlo = _term_pair(aik, bkj, idx, pplan, cfg, seed, rshift, rmask, words, cnt)
        s, slo = _exact_sum(acc, t, mode)
    elif mode == RD:  # exact product of wide inputs; -0 as in _exact_sum
        s, slo = fma_pair(-aik, bkj, -acc)
        s, slo = -s, -slo
    else:
        s, slo, rad = fma_pair_radius(aik, bkj, acc)  # exact product of wide inputs
        # fma_pair's lo is rounded to odd: enough for every mode but stochastic
        # rounding to a wide accumulator (p >= 38), which needs the radius
        b = np.float64(s).view(np.int64)
        if mode == SR and rad != 0 and _bracket_needed(FMA, b, aplan):
            return _rnd_fma_stochastic(
                aik, bkj, acc, s, slo, rad, idx + 1, aplan, counting, seed, rshift,
                rmask, words, cnt,
            )  # fmt: skip
    return _rnd(s, slo, idx + 1, aplan, mode, counting, seed, rshift, rmask, words, cnt)


@jit_inline
def _kahan_step(
    x, c, aik, bkj, idx, pplan, aplan, cfg, seed, rshift, rmask, words, cnt
):
    # one compensated step from (sum x, compensation c); the new pair
    mode, counting, round_products, exact_products = cfg
    t, tlo = _term_pair(aik, bkj, idx, pplan, cfg, seed, rshift, rmask, words, cnt)
    # y = t - c; s' = s + y; c = (s' - s) - y, each rounded
    h, hlo = _exact_sum(t, -c, mode)
    y = _rnd(h, hlo, idx + 1, aplan, mode, counting, seed, rshift, rmask, words, cnt)
    h, hlo = _exact_sum(x, y, mode)
    s_new = _rnd(
        h, hlo, idx + 2, aplan, mode, counting, seed, rshift, rmask, words, cnt
    )
    h, hlo = _exact_sum(s_new, -x, mode)
    d = _rnd(h, hlo, idx + 3, aplan, mode, counting, seed, rshift, rmask, words, cnt)
    h, hlo = _exact_sum(d, -y, mode)
    c_new = _rnd(
        h, hlo, idx + 4, aplan, mode, counting, seed, rshift, rmask, words, cnt
    )
    return s_new, c_new


def _make_kernel(
    mode: int, order: int, round_products: bool, exact_products: bool, counting: bool
):
    """One compiled general kernel per combination of the compile-time choices.

    ``exact_products``: products of the input format are exact in float64
    (p <= 26), so ``two_sum(acc, a*b)`` is the exact multiply-add.
    """
    cfg = (mode, counting, round_products, exact_products)
    helpers = _HELPERS

    @jit
    def kernel(a, b, out, pplan, aplan, oplan, seed, rshift, rmask, words, block):
        if helpers < 0:  # never: the stamp only keys the cache
            return np.zeros(7, dtype=np.int64)
        m, kdim = a.shape
        n = b.shape[1]
        out_base = m * n * kdim * _STEPS
        totals = np.zeros((m, 7), dtype=np.int64)
        for i in prange(m):
            cnt = np.zeros(7, dtype=np.int64)
            acc = np.zeros(n)
            if order == SEQUENTIAL:
                for k in range(kdim):
                    aik = a[i, k]
                    for j in range(n):
                        idx = ((i * n + j) * kdim + k) * _STEPS
                        acc[j] = _add_term(
                            acc[j],
                            aik,
                            b[k, j],
                            idx,
                            pplan,
                            aplan,
                            cfg,
                            seed,
                            rshift,
                            rmask,
                            words,
                            cnt,
                        )
            elif order == BLOCKED:
                part = np.zeros(n)
                for k0 in range(0, kdim, block):
                    part[:] = 0.0
                    for k in range(k0, min(k0 + block, kdim)):
                        aik = a[i, k]
                        for j in range(n):
                            idx = ((i * n + j) * kdim + k) * _STEPS
                            part[j] = _add_term(
                                part[j],
                                aik,
                                b[k, j],
                                idx,
                                pplan,
                                aplan,
                                cfg,
                                seed,
                                rshift,
                                rmask,
                                words,
                                cnt,
                            )
                    for j in range(n):
                        # the block sum joins the running sum: event step 2 of the
                        # block's first k
                        idx = ((i * n + j) * kdim + k0) * _STEPS + 2
                        s, slo = _exact_sum(acc[j], part[j], mode)
                        acc[j] = _rnd(
                            s,
                            slo,
                            idx,
                            aplan,
                            mode,
                            counting,
                            seed,
                            rshift,
                            rmask,
                            words,
                            cnt,
                        )
            elif order == PAIRWISE:
                work = np.zeros((max(kdim, 1), n))
                for k in range(kdim):
                    aik = a[i, k]
                    for j in range(n):
                        idx = ((i * n + j) * kdim + k) * _STEPS
                        t, tlo = _term_pair(
                            aik,
                            b[k, j],
                            idx,
                            pplan,
                            cfg,
                            seed,
                            rshift,
                            rmask,
                            words,
                            cnt,
                        )
                        work[k, j] = t
                # level by level; internal node number `node` (0 .. kdim-2) names
                # the random event of its rounding
                width = kdim
                node = 0
                while width > 1:
                    half = width // 2
                    for q in range(half):
                        for j in range(n):
                            idx = ((i * n + j) * kdim + node + q) * _STEPS + 1
                            s, slo = _exact_sum(
                                work[2 * q, j], work[2 * q + 1, j], mode
                            )
                            work[q, j] = _rnd(
                                s,
                                slo,
                                idx,
                                aplan,
                                mode,
                                counting,
                                seed,
                                rshift,
                                rmask,
                                words,
                                cnt,
                            )
                    if width % 2 == 1:
                        work[half, :] = work[width - 1, :]
                    node += half
                    width = half + width % 2
                for j in range(n):
                    acc[j] = work[0, j] if kdim > 0 else 0.0
                    if kdim == 1:  # a single term is still rounded to the accumulator
                        idx = ((i * n + j) * kdim) * _STEPS + 1
                        acc[j] = _rnd(
                            acc[j],
                            0.0,
                            idx,
                            aplan,
                            mode,
                            counting,
                            seed,
                            rshift,
                            rmask,
                            words,
                            cnt,
                        )
            else:  # KAHAN
                comp = np.zeros(n)
                for k in range(kdim):
                    aik = a[i, k]
                    for j in range(n):
                        idx = ((i * n + j) * kdim + k) * _STEPS
                        acc[j], comp[j] = _kahan_step(
                            acc[j],
                            comp[j],
                            aik,
                            b[k, j],
                            idx,
                            pplan,
                            aplan,
                            cfg,
                            seed,
                            rshift,
                            rmask,
                            words,
                            cnt,
                        )
            for j in range(n):
                out[i, j] = _rnd(
                    acc[j],
                    0.0,
                    out_base + i * n + j,
                    oplan,
                    mode,
                    counting,
                    seed,
                    rshift,
                    rmask,
                    words,
                    cnt,
                )
            totals[i, :] = cnt
        return totals.sum(axis=0)

    return kernel


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
            return _add_term(
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
        return _add_term(
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


# The loops over j of the fast kernel, one function each: Numba's IR inlining
# leaves a loop in a form that LLVM does not vectorize, so these are called, not
# inlined (one call per row and step; compiled and cached once per lane type).


def _make_step():
    helpers = _HELPERS

    @jit
    def _step(acc, nxt, aw, bw, a, b, i, k, pc, ac, pplan, aplan, rs, cnt):
        """nxt = acc + a[i, k] * b[k, :], each lane rounded once (a step of the sum)."""
        if helpers < 0:  # never: the stamp only keys the cache
            return
        n = acc.size
        kdim = a.shape[1]
        aik = aw[i, k]
        brow = bw[k]
        bad = False
        for j in range(n):
            v, ok = _add_fast(acc[j], aik, brow[j], pc, ac)
            nxt[j] = v
            bad |= not ok
        if bad:
            for j in range(n):
                v, ok = _add_fast(acc[j], aik, brow[j], pc, ac)
                if not ok:
                    idx = ((i * n + j) * kdim + k) * _STEPS
                    nxt[j] = _fix_add(
                        np.float64(acc[j]),
                        a[i, k],
                        b[k, j],
                        idx,
                        pplan,
                        aplan,
                        len(pc) > 0,
                        rs,
                        cnt,
                    )

    return _step


_step = _make_step()


def _make_join():
    helpers = _HELPERS

    @jit
    def _join(x, y, out, i, kdim, node, event, ac, aplan, rs, cnt):
        """out = x + y, each lane rounded once; (i, j, node, event) names the event."""
        if helpers < 0:  # never: the stamp only keys the cache
            return
        n = x.size
        bad = False
        for j in range(n):
            v, ok = _sum_fast(x[j], y[j], ac)
            out[j] = v
            bad |= not ok
        if bad:
            for j in range(n):
                v, ok = _sum_fast(x[j], y[j], ac)
                if not ok:
                    idx = ((i * n + j) * kdim + node) * _STEPS + event
                    out[j] = _fix_sum(
                        np.float64(x[j]), np.float64(y[j]), idx, aplan, rs, cnt
                    )

    return _join


_join = _make_join()


def _make_terms():
    helpers = _HELPERS

    @jit
    def _terms(trow, aw, bw, a, b, i, k, pc, pplan, rs, cnt):
        """trow = the terms a[i, k] * b[k, :], rounded to the products format if
        asked."""
        if helpers < 0:  # never: the stamp only keys the cache
            return
        n = trow.size
        kdim = a.shape[1]
        aik = aw[i, k]
        brow = bw[k]
        bad = False
        for j in range(n):
            t, ok = _term_fast(aik, brow[j], pc)
            trow[j] = t
            bad |= not ok
        if bad:
            for j in range(n):
                t, ok = _term_fast(aik, brow[j], pc)
                if not ok:
                    idx = ((i * n + j) * kdim + k) * _STEPS
                    trow[j] = _fix_term(
                        a[i, k], b[k, j], idx, pplan, len(pc) > 0, rs, cnt
                    )

    return _terms


_terms = _make_terms()


def _make_kahan_row():
    helpers = _HELPERS

    @jit
    def _kahan_row(
        acc, comp, nxt, cnxt, aw, bw, a, b, i, k, pc, ac, pplan, aplan, rs, cnt
    ):
        """One compensated step of every lane: (nxt, cnxt) from (acc, comp)."""
        if helpers < 0:  # never: the stamp only keys the cache
            return
        n = acc.size
        kdim = a.shape[1]
        aik = aw[i, k]
        brow = bw[k]
        bad = False
        for j in range(n):
            s_new, c_new, ok = _kahan_fast(acc[j], comp[j], aik, brow[j], pc, ac)
            nxt[j] = s_new
            cnxt[j] = c_new
            bad |= not ok
        if bad:
            for j in range(n):
                s_new, c_new, ok = _kahan_fast(acc[j], comp[j], aik, brow[j], pc, ac)
                if not ok:
                    idx = ((i * n + j) * kdim + k) * _STEPS
                    nxt[j], cnxt[j] = _fix_kahan(
                        np.float64(acc[j]),
                        np.float64(comp[j]),
                        a[i, k],
                        b[k, j],
                        idx,
                        pplan,
                        aplan,
                        len(pc) > 0,
                        rs,
                        cnt,
                    )

    return _kahan_row


_kahan_row = _make_kahan_row()


def _make_round_out():
    helpers = _HELPERS

    @jit
    def _round_out(acc, out, base, oplan, rs, cnt):
        """out = acc rounded to the output format (ties_to_even), event base + j."""
        if helpers < 0:  # never: the stamp only keys the cache
            return
        seed, rshift, rmask, words = rs
        for j in range(acc.size):
            out[j] = _rnd(
                np.float64(acc[j]),
                0.0,
                base + j,
                oplan,
                RNE,
                False,
                seed,
                rshift,
                rmask,
                words,
                cnt,
            )

    return _round_out


_round_out = _make_round_out()


def _make_pairwise_row():
    helpers = _HELPERS

    @jit
    def _pairwise_row(acc, rows, off, aw, bw, a, b, i, pc, ac, pplan, aplan, rs, cnt):
        """acc = the pairwise sums of row i (see the kernel)."""
        if helpers < 0:  # never: the stamp only keys the cache
            return
        kdim = a.shape[1]
        n = acc.size
        depth = rows.shape[0] - 2
        rid = np.arange(depth + 2)
        lev = np.zeros(depth + 2, dtype=np.int64)
        pos = np.zeros(depth + 2, dtype=np.int64)
        top = 0
        for k in range(kdim):
            _terms(rows[rid[top]], aw, bw, a, b, i, k, pc, pplan, rs, cnt)
            lev[top] = 0
            pos[top] = k
            top += 1
            last = k == kdim - 1
            while top >= 2 and (lev[top - 1] == lev[top - 2] or last):
                # the node of the lower block's level and pair
                node = off[lev[top - 2]] + pos[top - 2] // 2
                _join(
                    rows[rid[top - 2]],
                    rows[rid[top - 1]],
                    rows[rid[top]],
                    i,
                    kdim,
                    node,
                    1,
                    ac,
                    aplan,
                    rs,
                    cnt,
                )
                rid[top - 2], rid[top] = rid[top], rid[top - 2]
                lev[top - 2] += 1
                pos[top - 2] //= 2
                top -= 1
        if kdim == 1:  # a single term is still rounded to the accumulator
            for j in range(n):
                idx = ((i * n + j) * kdim) * _STEPS + 1
                acc[j] = _fix_sum(np.float64(rows[rid[0], j]), 0.0, idx, aplan, rs, cnt)
        elif kdim > 1:
            acc[:] = rows[rid[0]]

    return _pairwise_row


_pairwise_row = _make_pairwise_row()


def _make_fast_kernel(order: int):
    """The ties_to_even kernel of one order, for exact or rounded products.

    ``aw``, ``bw`` are a and b in the lanes' float type (float32 or float64);
    ``pc`` is () for exact products or the products format's constants, ``ac``
    the accumulator's (see :func:`_consts`). The same bits as the general kernel
    in ties_to_even without counting.

    Pairwise builds the general kernel's tree (the node of level L at q sums terms
    [q 2**L, (q+1) 2**L), an odd last block moving up) as a binary counter: a
    stack of finished blocks, merged as soon as two of one level meet, then from
    the top after the last term, so it keeps log2(k) rows instead of k. Stack slot
    s lives in row rid[s]: a merge writes the spare row and keeps both operands
    for the fix-up pass. The internal nodes of level L are numbered from off[L] on,
    level by level as in the general kernel.
    """

    helpers = _HELPERS

    @jit_parallel
    def kernel(a, b, aw, bw, out, pplan, aplan, oplan, rs, block, pc, ac):
        if helpers < 0:  # never: the stamp only keys the cache
            return np.zeros(7, dtype=np.int64)
        m, kdim = a.shape
        n = b.shape[1]
        out_base = m * n * kdim * _STEPS
        depth = 1
        while (1 << (depth - 1)) < kdim:
            depth += 1
        off = np.zeros(depth + 1, dtype=np.int64)
        width = kdim
        for lev in range(depth):
            off[lev + 1] = off[lev] + width // 2
            width = width // 2 + width % 2
        for i in prange(m):
            cnt = np.zeros(7, dtype=np.int64)  # the general steps' (unused) counts
            acc = np.zeros(n, dtype=bw.dtype)
            nxt = np.zeros(n, dtype=bw.dtype)
            if order == SEQUENTIAL:
                for k in range(kdim):
                    _step(acc, nxt, aw, bw, a, b, i, k, pc, ac, pplan, aplan, rs, cnt)
                    acc, nxt = nxt, acc
            elif order == BLOCKED:
                part = np.zeros(n, dtype=bw.dtype)
                pnxt = np.zeros(n, dtype=bw.dtype)
                for k0 in range(0, kdim, block):
                    part[:] = 0.0
                    for k in range(k0, min(k0 + block, kdim)):
                        _step(
                            part,
                            pnxt,
                            aw,
                            bw,
                            a,
                            b,
                            i,
                            k,
                            pc,
                            ac,
                            pplan,
                            aplan,
                            rs,
                            cnt,
                        )
                        part, pnxt = pnxt, part
                    # the block sum joins the running sum: event step 2 of the
                    # block's first k
                    _join(acc, part, nxt, i, kdim, k0, 2, ac, aplan, rs, cnt)
                    acc, nxt = nxt, acc
            elif order == PAIRWISE:
                rows = np.zeros((depth + 2, n), dtype=bw.dtype)
                _pairwise_row(
                    acc, rows, off, aw, bw, a, b, i, pc, ac, pplan, aplan, rs, cnt
                )
            else:  # KAHAN
                comp = np.zeros(n, dtype=bw.dtype)
                cnxt = np.zeros(n, dtype=bw.dtype)
                for k in range(kdim):
                    _kahan_row(
                        acc,
                        comp,
                        nxt,
                        cnxt,
                        aw,
                        bw,
                        a,
                        b,
                        i,
                        k,
                        pc,
                        ac,
                        pplan,
                        aplan,
                        rs,
                        cnt,
                    )
                    acc, nxt = nxt, acc
                    comp, cnxt = cnxt, comp
            _round_out(acc, out[i], out_base + i * n, oplan, rs, cnt)
        return np.zeros(7, dtype=np.int64)

    return kernel


def _bits64(x: float) -> int:
    return int(np.float64(x).view(np.int64))


def _bits32(x: float) -> int:
    return int(np.float32(x).view(np.int32))


def _consts(plan, lane_bits: int) -> tuple:
    """The fast rounding's constants for one plan, in lanes of 64 or 32 bits.

    ``(unit, half - 1, keep)`` drop the low d bits (absent when d = 0);
    ``low_add``, ``low_min``: the magnitude a is in range below iff a - z >=
    smallest_normal - z as unsigned numbers, z = 1 when the format has -0 (then
    a = 0 wraps to the top and passes) and 0 otherwise; adding 2**(w-1) turns that
    into one signed compare: a + (2**(w-1) - z) >= smallest_normal - z + 2**(w-1).
    """
    w = lane_bits
    d = plan.d0 - (53 - 24 if w == 32 else 0)
    if w == 64:
        max_bits = min(plan.max, _bits64(2.0**1020))
        low = plan.smallest_normal
    else:
        max_value = float(np.int64(plan.max).view(np.float64))
        max_bits = min(_bits32(max_value), _bits32(2.0**126))
        low = _bits32(float(np.int64(plan.smallest_normal).view(np.float64)))
    z = 1 if plan.signed_zero == 1 else 0

    def wrap(v):  # two's complement in w bits
        return (v + 2 ** (w - 1)) % 2**w - 2 ** (w - 1)

    lane = np.int64 if w == 64 else np.int32
    top = 2 ** (w - 1)
    ranges = (lane(wrap(top - z)), lane(wrap(low - z + top)), lane(max_bits))
    if d == 0:
        return ranges
    unit = 1 << d
    return (lane(unit), lane(unit // 2 - 1), lane(wrap(~(unit - 1)))) + ranges


_F32_MAX_BITS = _bits64(float(np.finfo(np.float32).max))
_F32_TINY_BITS = _bits64(2.0**-126)


def _float32_lanes(a: np.ndarray, b: np.ndarray, aplan) -> bool:
    """Whether float32 lanes give exact products and an exact two_sum."""
    if not (
        aplan.d0 >= 53 - 24
        and aplan.max <= _F32_MAX_BITS
        and aplan.smallest_normal >= _F32_TINY_BITS
    ):
        return False  # the accumulator's normal range is not one of float32
    sig_bits = 0
    smallest = []
    for x in (a, b):
        if x.size == 0:
            return True
        if not np.isfinite(x).all():
            return False
        x32 = x.astype(np.float32)
        if not np.array_equal(x32.astype(np.float64).view(np.int64), x.view(np.int64)):
            return False
        bits = x.view(np.int64)
        nonzero = (bits & _ABS64) != 0
        if not nonzero.any():
            return True  # every product is a zero
        # significand bits in use: 53 minus the trailing zeros of the OR of all
        # significands (its lowest set bit is the lowest of any of them)
        mant = int(np.bitwise_or.reduce((bits[nonzero] & (2**52 - 1)) | 2**52))
        sig_bits += 53 - ((mant & -mant).bit_length() - 1)
        smallest.append(float(np.abs(x[nonzero]).min()))
    return sig_bits <= 24 and smallest[0] * smallest[1] >= 2.0**-126


# ---------------------------------------------------------------------------------
# The operands of the float32 BLAS path (order "unspecified")
#
# lowprec.matmul checks that every operand is a value of the input format (the
# reference: lowprec.round(x) has x's bits, NaN aside) and hands float32 copies to
# sgemm. :func:`to_float32` does both in one pass with a sufficient test, and the
# wrapper takes the reference whenever an element fails it, so that a false alarm
# would cost time, never a wrong result. An element passes when it is
#
# * in the normal range [smallest_normal, max] with its d0 = 53 - p low bits zero;
# * below smallest_normal, a whole multiple of the smallest positive value T
#   (``|x| / T`` is exact, a scaling by a power of two for T in [2**-1022, 1]),
#   except -0 in a format without it (``neg_zero``);
# * ±inf where the format rounds inf to itself (``inf_bits``), or NaN where NaN
#   may pass unchanged (``nan_above``).
#
# Each of these is exactly where ties_to_even rounding returns x's bits (see
# lowprec.arith._pair_round.round_bits with lo = 0): the test fails no value of the
# format either. The flags are bit patterns, not booleans, which LLVM vectorizes
# better: a pattern that never matches (_NEVER, a NaN's) turns a case off.

_INF64 = 0x7FF0000000000000
_NEVER = -1  # a NaN's bits: no value compares equal, no magnitude is above it


def _make_to_float32():
    helpers = _HELPERS

    @jit
    def to_float32(
        x, out, low_mask, normal, max_bits, inv_tiny, neg_zero, inf_bits, nan_above
    ):
        """out = x as float32 (1-D, x float32 or float64); whether every element
        passed the test above."""
        if helpers < 0:  # never: the stamp only keys the cache
            return False
        failed = np.int64(0)
        for i in range(x.size):
            v = np.float64(x[i])
            b = v.view(np.int64)
            a = b & _ABS64
            q = np.abs(v) * inv_tiny
            small = (np.floor(q) == q) & (a < normal) & (b != neg_zero)
            big = ((b & low_mask) == 0) & (a >= normal) & (a <= max_bits)
            ok = small | big | (a == inf_bits) | (a > nan_above)
            failed |= np.int64(ok) ^ 1
            out[i] = np.float32(v)
        return failed == 0

    return to_float32


to_float32 = _make_to_float32()


def operand_test(plan, nan_ok: bool) -> tuple | None:
    """The constants of :func:`to_float32`'s test for a ties_to_even plan of the
    operands' format, or None where the test does not apply (T outside
    [2**-1022, 1]: then ``|x| / T`` could over- or underflow)."""
    tiny = float(np.int64(plan.tiny).view(np.float64))
    if not 2.0**-1022 <= tiny <= 1.0:
        return None
    return (
        (1 << plan.d0) - 1,
        plan.smallest_normal,
        plan.max,
        1.0 / tiny,
        _NEVER if plan.signed_zero else -(1 << 63),  # -0 fails without signed zero
        _INF64 if plan.inf_res == _INF64 else _NEVER,
        _INF64 if nan_ok else _ABS64,
    )


_KERNELS: dict[tuple, object] = {}


def _cached(key, make):
    if key not in _KERNELS:
        _KERNELS[key] = make(*key[1:])
    return _KERNELS[key]


def matmul_kernel(
    mode: int,
    order: int,
    round_products: bool,
    exact_products: bool,
    counting: bool,
    lanes: str = "auto",
):
    """The kernel for one combination of compile-time choices.

    ties_to_even with exact or rounded products and no counting takes the fast
    path when the formats leave at least one bit to drop (p <= 52), on float32
    lanes when :func:`_float32_lanes` allows; the choice is made per call and
    never changes a result. ``lanes`` ("auto", "float64" or "general") is for the
    tests: "float64" keeps the fast path off float32 lanes, "general" off the fast
    path altogether.
    """
    general = _cached(
        ("general", mode, order, round_products, exact_products, counting), _make_kernel
    )
    fast_mode = mode == RNE and not counting and (exact_products or round_products)
    if lanes == "general" or not fast_mode:
        return general
    fast = _cached(("fast", order), _make_fast_kernel)

    def kernel(a, b, out, pplan, aplan, oplan, seed, rshift, rmask, words, block):
        if aplan.d0 < 1 or (round_products and pplan.d0 < 1):
            return general(
                a, b, out, pplan, aplan, oplan, seed, rshift, rmask, words, block
            )
        rs = (seed, rshift, rmask, words)
        if lanes == "auto" and not round_products and _float32_lanes(a, b, aplan):
            aw = a.astype(np.float32)
            bw = b.astype(np.float32)
            ac = _consts(aplan, 32)
            return fast(a, b, aw, bw, out, pplan, aplan, oplan, rs, block, (), ac)
        pc = _consts(pplan, 64) if round_products else ()
        ac = _consts(aplan, 64)
        return fast(a, b, a, b, out, pplan, aplan, oplan, rs, block, pc, ac)

    return kernel
