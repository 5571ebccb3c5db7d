"""The ties_to_even fast path of the emulated matrix product: row loops that
LLVM vectorizes across outputs j, and the kernel that runs them in each order.

Private; :func:`lowprec.arith._matmul_kernel.matmul_kernel` calls the kernel when
the mode is ties_to_even without counting, and it gives the bits of the general
kernel (:mod:`lowprec.arith._matmul_general`). The per-lane steps, and why they
are exact, are in :mod:`lowprec.arith._matmul_fast_steps`; :func:`_consts` makes
their constants from a rounding plan and :func:`_float32_lanes` decides per call
whether float32 lanes are exact.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from lowprec import _jit, modes
from lowprec._jit import jit, jit_parallel
from lowprec.arith import _eft, _matmul_fast_steps, _matmul_steps, _pair_round
from lowprec.arith import _elementwise_kernel as _arith_kernel
from lowprec.arith._matmul_fast_steps import (
    _ABS64,
    _add_fast,
    _fix_add,
    _fix_kahan,
    _fix_sum,
    _fix_term,
    _kahan_fast,
    _sum_fast,
    _term_fast,
)
from lowprec.arith._matmul_steps import _STEPS, BLOCKED, PAIRWISE, SEQUENTIAL, _rnd
from lowprec.modes import RNE
from lowprec.rounding import randomness
from lowprec.rounding._kernel import _source_stamp

# the modules whose jitted code the row loops inline or call (see _matmul_steps)
_STAMPED = (
    _arith_kernel,
    _eft,
    _jit,
    _matmul_fast_steps,
    _matmul_steps,
    _pair_round,
    modes,
    randomness,
)
_HELPERS = _source_stamp(*_STAMPED)


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
        acc, comp, nxt, cnxt, okrow, aw, bw, a, b, i, k, pc, ac, pplan, aplan, rs, cnt
    ):
        """One compensated step of every lane: (nxt, cnxt) from (acc, comp).

        The lanes' flags go to okrow (a store that vectorizes), so that the fix-up
        pass only reads them: a compensation is often a subnormal of a narrow
        accumulator (fp16), which leaves one lane or more to fix in most rows.
        """
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
            okrow[j] = ok
            bad |= not ok
        if bad:
            for j in range(n):
                if not okrow[j]:
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
                            part, pnxt, aw, bw, a, b, i, k, pc, ac, pplan, aplan, rs,
                            cnt,
                        )  # fmt: skip
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
                okrow = np.ones(n, dtype=np.bool_)
                for k in range(kdim):
                    _kahan_row(
                        acc, comp, nxt, cnxt, okrow, aw, bw, a, b, i, k, pc, ac,
                        pplan, aplan, rs, cnt,
                    )  # fmt: skip
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
