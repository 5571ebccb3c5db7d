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
"""

from __future__ import annotations

import numpy as np
from numba import prange

from lowprec._eft import fma_pair, two_prod, two_sum
from lowprec._jit import jit_inline, jit_parallel
from lowprec._pair_round import count_one, round_bits

SEQUENTIAL, PAIRWISE, BLOCKED, KAHAN = range(4)
ORDERS = ("sequential", "pairwise", "blocked", "kahan")
_STEPS = 5  # event indices per (i, j, k): product, add, Kahan's three more


@jit_inline
def _round(hi, lo, idx, plan, mode, seed, rshift, rmask, words):
    b = np.float64(hi).view(np.int64)
    rb, overflow = round_bits(b, lo, idx, plan, mode, seed, words, rshift, rmask)
    return np.int64(rb).view(np.float64), b, rb, overflow


def _make_kernel(mode: int, order: int, round_products: bool, exact_products: bool,
                 counting: bool):
    """One compiled kernel per combination of the compile-time choices.

    ``exact_products``: products of the input format are exact in float64
    (p <= 26), so ``two_sum(acc, a*b)`` is the exact multiply-add.
    """

    @jit_inline
    def rnd(hi, lo, idx, plan, seed, rshift, rmask, words, cnt):
        v, b, rb, overflow = _round(hi, lo, idx, plan, mode, seed, rshift, rmask,
                                    words)
        if counting:
            c = count_one(b, lo, rb, overflow, plan)
            for t in range(6):
                cnt[t] += c[t]
            cnt[6] += 1  # every rounding is one event of the stats' total
        return v

    @jit_inline
    def term_pair(aik, bkj, idx, pplan, seed, rshift, rmask, words, cnt):
        # the k-th term as an exact pair (its product, rounded if asked)
        if round_products:
            p, plo = two_prod(aik, bkj)
            return rnd(p, plo, idx, pplan, seed, rshift, rmask, words, cnt), 0.0
        if exact_products:
            return aik * bkj, 0.0
        return two_prod(aik, bkj)

    @jit_inline
    def add_term(acc, aik, bkj, idx, pplan, aplan, seed, rshift, rmask, words, cnt):
        # acc + term, rounded once to the accumulator format
        if round_products or exact_products:
            t, tlo = term_pair(aik, bkj, idx, pplan, seed, rshift, rmask, words,
                               cnt)
            s, slo = two_sum(acc, t)
        else:
            s, slo = fma_pair(aik, bkj, acc)  # exact product of wide inputs
        return rnd(s, slo, idx + 1, aplan, seed, rshift, rmask, words, cnt)

    @jit_parallel
    def kernel(a, b, out, pplan, aplan, oplan, seed, rshift, rmask, words, block):
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
                        acc[j] = add_term(acc[j], aik, b[k, j], idx, pplan, aplan,
                                          seed, rshift, rmask, words, cnt)
            elif order == BLOCKED:
                part = np.zeros(n)
                for k0 in range(0, kdim, block):
                    part[:] = 0.0
                    for k in range(k0, min(k0 + block, kdim)):
                        aik = a[i, k]
                        for j in range(n):
                            idx = ((i * n + j) * kdim + k) * _STEPS
                            part[j] = add_term(part[j], aik, b[k, j], idx, pplan,
                                               aplan, seed, rshift, rmask, words, cnt)
                    for j in range(n):
                        # the block sum joins the running sum: event step 2 of the
                        # block's first k
                        idx = ((i * n + j) * kdim + k0) * _STEPS + 2
                        s, slo = two_sum(acc[j], part[j])
                        acc[j] = rnd(s, slo, idx, aplan, seed, rshift, rmask, words,
                                     cnt)
            elif order == PAIRWISE:
                work = np.zeros((max(kdim, 1), n))
                for k in range(kdim):
                    aik = a[i, k]
                    for j in range(n):
                        idx = ((i * n + j) * kdim + k) * _STEPS
                        t, tlo = term_pair(aik, b[k, j], idx, pplan, seed, rshift,
                                           rmask, words, cnt)
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
                            s, slo = two_sum(work[2 * q, j], work[2 * q + 1, j])
                            work[q, j] = rnd(s, slo, idx, aplan, seed, rshift, rmask,
                                             words, cnt)
                    if width % 2 == 1:
                        work[half, :] = work[width - 1, :]
                    node += half
                    width = half + width % 2
                for j in range(n):
                    acc[j] = work[0, j] if kdim > 0 else 0.0
                    if kdim == 1:  # a single term is still rounded to the accumulator
                        idx = ((i * n + j) * kdim) * _STEPS + 1
                        acc[j] = rnd(acc[j], 0.0, idx, aplan, seed, rshift, rmask,
                                     words, cnt)
            else:  # KAHAN
                comp = np.zeros(n)
                for k in range(kdim):
                    aik = a[i, k]
                    for j in range(n):
                        idx = ((i * n + j) * kdim + k) * _STEPS
                        t, tlo = term_pair(aik, b[k, j], idx, pplan, seed, rshift,
                                           rmask, words, cnt)
                        # y = t - c; s' = s + y; c = (s' - s) - y, each rounded
                        h, hlo = two_sum(t, -comp[j])
                        y = rnd(h, hlo, idx + 1, aplan, seed, rshift, rmask, words,
                                cnt)
                        h, hlo = two_sum(acc[j], y)
                        s_new = rnd(h, hlo, idx + 2, aplan, seed, rshift, rmask,
                                    words, cnt)
                        h, hlo = two_sum(s_new, -acc[j])
                        d = rnd(h, hlo, idx + 3, aplan, seed, rshift, rmask, words,
                                cnt)
                        h, hlo = two_sum(d, -y)
                        comp[j] = rnd(h, hlo, idx + 4, aplan, seed, rshift, rmask,
                                      words, cnt)
                        acc[j] = s_new
            for j in range(n):
                out[i, j] = rnd(acc[j], 0.0, out_base + i * n + j, oplan, seed,
                                rshift, rmask, words, cnt)
            totals[i, :] = cnt
        return totals.sum(axis=0)

    return kernel


_KERNELS: dict[tuple, object] = {}


def matmul_kernel(mode: int, order: int, round_products: bool, exact_products: bool,
                  counting: bool):
    """The compiled kernel for one combination of compile-time choices."""
    key = (mode, order, round_products, exact_products, counting)
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernel(*key)
    return _KERNELS[key]
