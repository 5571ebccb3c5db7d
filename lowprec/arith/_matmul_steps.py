"""The general steps of the emulated matrix product: one term, one addition, one
compensated step, each "exact result, rounded once" in any rounding mode.

Private, used by the general kernel (:mod:`lowprec.arith._matmul_general`) and by
the ties_to_even fast path for the lanes it does not cover
(:mod:`lowprec.arith._matmul_fast_steps`). Every rounding goes through
:func:`lowprec.arith._pair_round.round_bits` on the exact (hi, lo) pair and counts
into ``cnt`` when asked. The event index ``idx`` of a step names its random word in
the stochastic modes: ``((i * n + j) * k + kk) * _STEPS + step`` (product 0,
addition 1, Kahan's further steps 2 to 4), the outputs numbered after all of them.
"""

from __future__ import annotations

import numpy as np

from lowprec import _jit, modes
from lowprec._jit import jit, jit_inline
from lowprec.arith import _eft, _pair_round
from lowprec.arith import _elementwise_kernel as _arith_kernel
from lowprec.arith._eft import fma_pair, fma_pair_radius, two_prod, two_sum
from lowprec.arith._elementwise_kernel import (
    FMA,
    _bracket_needed,
    _next_above,
    _round_stochastic_bits,
    _round_stochastic_exact,
)
from lowprec.arith._pair_round import count_one, round_bits
from lowprec.modes import RD, SR
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
        # lowprec.arith._elementwise_kernel): round both ends of the bracket,
        # outward; if they differ, the word's threshold lies between them and
        # _round_stochastic_exact decides on the exact value. Not inlined: only
        # wide accumulators take it.
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
def _add_exact_term(
    acc, aik, bkj, idx, pplan, aplan, cfg, seed, rshift, rmask, words, cnt
):
    # acc + term, rounded once to the accumulator format, for a term that is an
    # exact float64 (products exact or rounded). Apart from _add_term so that the
    # fast path's fix-up compiles without the wide products' stochastic bracket
    # (Numba types both sides of a branch: that code was half its cold start).
    mode, counting = cfg[0], cfg[1]
    t, tlo = _term_pair(aik, bkj, idx, pplan, cfg, seed, rshift, rmask, words, cnt)
    s, slo = _exact_sum(acc, t, mode)
    return _rnd(s, slo, idx + 1, aplan, mode, counting, seed, rshift, rmask, words, cnt)


@jit_inline
def _add_term(acc, aik, bkj, idx, pplan, aplan, cfg, seed, rshift, rmask, words, cnt):
    # acc + term, rounded once to the accumulator format
    mode, counting, round_products, exact_products = cfg
    if round_products or exact_products:
        return _add_exact_term(
            acc, aik, bkj, idx, pplan, aplan, cfg, seed, rshift, rmask, words, cnt
        )
    if mode == RD:  # exact product of wide inputs; -0 as in _exact_sum
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
