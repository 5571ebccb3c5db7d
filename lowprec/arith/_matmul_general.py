"""The general matmul kernel: every rounding mode, every order, exception counts.

Private; :func:`lowprec.arith._matmul_kernel.matmul_kernel` picks it (or the
ties_to_even fast path, which gives the same bits). Each row of C is reduced by
one of the order functions below, one output j at a time per step k, every step
one of :mod:`lowprec.arith._matmul_steps`; the order and
``cfg = (mode, counting, round_products, exact_products)`` are closure constants
of the compiled kernel, so LLVM folds the choices away. The order functions are
inlined at the IR level into that kernel (``jit_inline``): they take the
stochastic state as the four arguments ``seed, rshift, rmask, words`` (see
:mod:`lowprec.arith._matmul_steps`) and write the row's sums into ``acc``.
"""

from __future__ import annotations

import numpy as np

from lowprec import _jit, modes
from lowprec._jit import jit, jit_inline
from lowprec.arith import _eft, _matmul_steps, _pair_round
from lowprec.arith import _elementwise_kernel as _arith_kernel
from lowprec.arith._matmul_steps import (
    _STEPS,
    BLOCKED,
    PAIRWISE,
    SEQUENTIAL,
    _add_term,
    _exact_sum,
    _kahan_step,
    _rnd,
    _term_pair,
)
from lowprec.rounding import randomness
from lowprec.rounding._kernel import _source_stamp

# the modules whose jitted code the kernel inlines (see _matmul_steps)
_STAMPED = (_arith_kernel, _eft, _jit, _matmul_steps, _pair_round, modes, randomness)
_HELPERS = _source_stamp(*_STAMPED)


@jit_inline
def _sequential(acc, a, b, i, pplan, aplan, cfg, seed, rshift, rmask, words, cnt):
    # acc[j] = ((a[i,0] b[0,j] + a[i,1] b[1,j]) + ...), each addition rounded
    kdim = a.shape[1]
    n = b.shape[1]
    for k in range(kdim):
        aik = a[i, k]
        for j in range(n):
            idx = ((i * n + j) * kdim + k) * _STEPS
            acc[j] = _add_term(
                acc[j], aik, b[k, j], idx, pplan, aplan, cfg, seed, rshift, rmask,
                words, cnt,
            )  # fmt: skip


@jit_inline
def _blocked(acc, a, b, i, pplan, aplan, cfg, block, seed, rshift, rmask, words, cnt):
    # sequential inside blocks of `block` terms, then across the block sums
    mode, counting = cfg[0], cfg[1]
    kdim = a.shape[1]
    n = b.shape[1]
    part = np.zeros(n)
    for k0 in range(0, kdim, block):
        part[:] = 0.0
        for k in range(k0, min(k0 + block, kdim)):
            aik = a[i, k]
            for j in range(n):
                idx = ((i * n + j) * kdim + k) * _STEPS
                part[j] = _add_term(
                    part[j], aik, b[k, j], idx, pplan, aplan, cfg, seed, rshift,
                    rmask, words, cnt,
                )  # fmt: skip
        for j in range(n):
            # the block sum joins the running sum: event step 2 of the block's
            # first k
            idx = ((i * n + j) * kdim + k0) * _STEPS + 2
            s, slo = _exact_sum(acc[j], part[j], mode)
            acc[j] = _rnd(
                s, slo, idx, aplan, mode, counting, seed, rshift, rmask, words, cnt
            )


@jit_inline
def _pairwise(acc, a, b, i, pplan, aplan, cfg, seed, rshift, rmask, words, cnt):
    # adjacent pairs, level by level; an odd last term moves up unchanged
    mode, counting = cfg[0], cfg[1]
    kdim = a.shape[1]
    n = b.shape[1]
    work = np.zeros((max(kdim, 1), n))
    for k in range(kdim):
        aik = a[i, k]
        for j in range(n):
            idx = ((i * n + j) * kdim + k) * _STEPS
            t, tlo = _term_pair(
                aik, b[k, j], idx, pplan, cfg, seed, rshift, rmask, words, cnt
            )
            work[k, j] = t
    # internal node number `node` (0 .. kdim-2) names the random event of its
    # rounding
    width = kdim
    node = 0
    while width > 1:
        half = width // 2
        for q in range(half):
            for j in range(n):
                idx = ((i * n + j) * kdim + node + q) * _STEPS + 1
                s, slo = _exact_sum(work[2 * q, j], work[2 * q + 1, j], mode)
                work[q, j] = _rnd(
                    s, slo, idx, aplan, mode, counting, seed, rshift, rmask, words,
                    cnt,
                )  # fmt: skip
        if width % 2 == 1:
            work[half, :] = work[width - 1, :]
        node += half
        width = half + width % 2
    for j in range(n):
        acc[j] = work[0, j] if kdim > 0 else 0.0
        if kdim == 1:  # a single term is still rounded to the accumulator
            idx = ((i * n + j) * kdim) * _STEPS + 1
            acc[j] = _rnd(
                acc[j], 0.0, idx, aplan, mode, counting, seed, rshift, rmask, words,
                cnt,
            )  # fmt: skip


@jit_inline
def _kahan(acc, a, b, i, pplan, aplan, cfg, seed, rshift, rmask, words, cnt):
    # compensated summation, the compensation kept in the accumulator format
    kdim = a.shape[1]
    n = b.shape[1]
    comp = np.zeros(n)
    for k in range(kdim):
        aik = a[i, k]
        for j in range(n):
            idx = ((i * n + j) * kdim + k) * _STEPS
            acc[j], comp[j] = _kahan_step(
                acc[j], comp[j], aik, b[k, j], idx, pplan, aplan, cfg, seed, rshift,
                rmask, words, cnt,
            )  # fmt: skip


def _make_kernel(
    mode: int, order: int, round_products: bool, exact_products: bool, counting: bool
):
    """One compiled general kernel per combination of the compile-time choices.

    ``exact_products``: products of the input format are exact in float64
    (p <= 26), so ``two_sum(acc, a*b)`` is the exact multiply-add. Returns the
    seven counts (six exception flags and the number of roundings).
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
        for i in range(m):
            cnt = np.zeros(7, dtype=np.int64)
            acc = np.zeros(n)
            if order == SEQUENTIAL:
                _sequential(
                    acc, a, b, i, pplan, aplan, cfg, seed, rshift, rmask, words, cnt
                )
            elif order == BLOCKED:
                _blocked(
                    acc, a, b, i, pplan, aplan, cfg, block, seed, rshift, rmask,
                    words, cnt,
                )  # fmt: skip
            elif order == PAIRWISE:
                _pairwise(
                    acc, a, b, i, pplan, aplan, cfg, seed, rshift, rmask, words, cnt
                )
            else:  # KAHAN
                _kahan(acc, a, b, i, pplan, aplan, cfg, seed, rshift, rmask, words, cnt)
            for j in range(n):
                out[i, j] = _rnd(
                    acc[j], 0.0, out_base + i * n + j, oplan, mode, counting, seed,
                    rshift, rmask, words, cnt,
                )  # fmt: skip
            totals[i, :] = cnt
        return totals.sum(axis=0)

    return kernel
