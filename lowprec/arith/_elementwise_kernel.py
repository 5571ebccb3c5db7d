"""Numba kernels for elementwise arithmetic: an error-free transformation, then
one rounding of the exact (hi, lo) pair by the rounding kernel's scalar routine.

Formats with 11 exponent bits (fp64, and custom ones such as 40 bits of precision
with fp64's range) reach float64's own limits: an error term below float64's
subnormals is lost, and a float64 result can overflow where the exact one is
finite. Such elements (operands or result outside ``[2**-900, 2**900]``) take a
slower path: the operands are scaled by powers of two (exactly) so that the EFT
works near 1, and the pair is rounded to the format scaled by the same power
(:func:`_scaled_plan`), then scaled back (exact: the result is a format value).

Stochastic rounding needs more of the error term than its sign. Its 64-bit
fraction is exact for a sum or a product (an exact pair), but division and square
root have only an approximate ``lo``, and fma's ``lo`` is rounded to odd: at 53
bits of precision the first 64 bits of the fraction reach below the last bit of
``lo``. Each operation therefore also gives a radius around ``hi + lo`` that holds
the exact result; where the radius could matter (:func:`_bracket_needed`), the
element is rounded at both ends of that bracket. Rounding with a fixed random word
is monotone, so when both ends agree that is the result; when they do not (for
random words, with probability at most about 2**-49 per element),
:func:`_up_exact` compares the exact result with the threshold that the
element's random word sets, exactly.

Private; :mod:`lowprec.arith.elementwise` validates and calls :func:`arith_kernel`.
"""

from __future__ import annotations

import numpy as np

from lowprec import _jit, modes
from lowprec._jit import jit, jit_inline
from lowprec.arith import _eft, _pair_round
from lowprec.arith._eft import (
    div_pair_radius,
    fma_pair_radius,
    sqrt_pair_radius,
    two_prod,
    two_sum,
)
from lowprec.arith._pair_round import count_one, round_bits
from lowprec.modes import RD, RU, RZ, SR
from lowprec.rounding import randomness
from lowprec.rounding._kernel import RoundPlan, _source_stamp
from lowprec.rounding.randomness import random_word

ADD, MUL, DIV, SQRT, FMA = range(5)

# Numba's cache checks only this file; the kernels keep a stamp of the helpers they
# inline in their closure, which the cache key includes (see _round_kernel).
_HELPERS = _source_stamp(_eft, _pair_round, _jit, modes, randomness)

_BAND_LO = 2.0**-900  # inside [2**-900, 2**900] every EFT below is exact
_BAND_HI = 2.0**900
_FAR = 300  # a term 2**-300 below the other only counts by its sign (a sticky bit)
_F64_MAX_BITS = 0x7FEFFFFFFFFFFFFF
_ABS = 0x7FFFFFFFFFFFFFFF
# Stochastic rounding from (hi, lo) alone is exact, whatever the random word, in
# formats with at least this many fewer bits than float64 (d0 = 53 - p); below
# it, the kernel brackets the exact result (see _bracket_needed).
_DIV_EXACT_D0 = 34  # p <= 19: fp16, bf16, tf32, the fp8s; the proof needs p <= 21
_FMA_EXACT_D0 = 16  # p <= 37: fp32 and narrower; the proof needs p <= 39
_SQRT_EXACT_D0 = 37  # p <= 16, normal results; checked for every root up to p = 19


@jit_inline
def exact_pair(op, mode, x, y, z):
    """The float64 result of ``op``, its error term, and a radius: the exact
    result lies within ``rad`` of ``hi + lo``, and ``rad`` is 0 when it is
    ``hi + lo`` (always, for a sum or a product)."""
    if op == ADD:
        if mode == RD:
            # an exact zero sum is -0 when rounding down: negate, add, negate back
            hi, lo = two_sum(-x, -y)
            return -hi, -lo, 0.0
        hi, lo = two_sum(x, y)
        return hi, lo, 0.0
    if op == MUL:
        hi, lo = two_prod(x, y)
        return hi, lo, 0.0
    if op == DIV:
        return div_pair_radius(x, y)
    if op == SQRT:
        return sqrt_pair_radius(x)
    if np.isinf(z) and np.isfinite(x) and np.isfinite(y):
        return z, 0.0, 0.0  # a finite product (even one float64 overflows) plus inf
    if mode == RD:
        hi, lo, rad = fma_pair_radius(-x, y, -z)
        return -hi, -lo, rad
    return fma_pair_radius(x, y, z)


@jit_inline
def _outside(v):
    """Whether a finite v is nonzero and outside the band where EFTs are exact."""
    a = abs(v)
    return a != 0 and (a < _BAND_LO or a > _BAND_HI)


@jit_inline
def _risky(op, x, y, z, hi):
    """Whether the float64 EFT may have over- or underflowed for these operands."""
    bad_hi = not np.isfinite(hi) or _outside(hi)
    if op == ADD:  # TwoSum is exact down to float64's subnormals; only overflow
        return np.isfinite(x) and np.isfinite(y) and not np.isfinite(hi)
    if op == SQRT:
        return np.isfinite(x) and x > 0 and _outside(x)
    if not (np.isfinite(x) and np.isfinite(y) and x != 0 and y != 0):
        return False  # zeros and specials: the fast path is exact
    if op == MUL or op == DIV:
        return _outside(x) or _outside(y) or bad_hi or hi == 0
    # FMA
    if not np.isfinite(z):
        return False
    p = x * y
    return _outside(x) or _outside(y) or _outside(z) or _outside(p) or p == 0 or bad_hi


@jit_inline
def _split(v):
    """(m, e) with v = m * 2**e, 1 <= |m| < 2, for a finite nonzero v."""
    shift = 0
    if abs(v) < 2.0**-1022:
        v = v * 2.0**64  # a subnormal: normalize first (exact)
        shift = 64
    b = np.float64(v).view(np.int64)
    e = ((b >> 52) & 0x7FF) - 1023
    m = np.int64((b & ~np.int64(0x7FF0000000000000)) | (np.int64(1023) << 52))
    return m.view(np.float64), e - shift


@jit_inline
def _pow2(k):
    """2**k for -1022 <= k <= 1023."""
    return np.int64((k + 1023) << 52).view(np.float64)


@jit_inline
def _ldexp(v, k):
    """v * 2**k, exact whenever the result is a float64 (steps that move toward
    the result, so no intermediate loses bits)."""
    while k != 0:
        step = min(max(k, -1022), 1023)
        v = v * _pow2(step)
        k -= step
    return v


@jit_inline
def _scaled_operands(op, x, y, z):
    """Operands near 1 and E with op(x, y, z) = op(xs, ys, zs) * 2**E, exactly but
    for a term far below the other in an fma, kept as a same-signed 2**-300."""
    if op == ADD:  # overflow: both operands are above 2**969, so halving is exact
        return x * 0.5, y * 0.5, z, 1
    if op == SQRT:
        m, e = _split(x)
        if e % 2 != 0:
            m, e = m * 2.0, e - 1
        return m, y, z, e // 2
    mx, ex = _split(x)
    my, ey = _split(y)
    if op == MUL:
        return mx, my, z, ex + ey
    if op == DIV:
        return mx, my, z, ex - ey
    p_e = ex + ey
    if z == 0:
        return mx, my, z, p_e
    mz, ez = _split(z)
    e = max(p_e, ez)
    xs = _ldexp(mx, p_e - e) if p_e - e > -_FAR else np.copysign(2.0**-_FAR, mx)
    zs = _ldexp(mz, ez - e) if ez - e > -_FAR else np.copysign(2.0**-_FAR, mz)
    return xs, my, zs, e


@jit_inline
def _scaled_plan(plan, e):
    """The plan of the format scaled by 2**-e (values of the format times 2**-e).

    Exponent limits that fall outside float64 are clamped where the clamping
    cannot matter for a value in [2**-70 T, 8 max] scaled: T (the smallest value)
    stays at least 2**-1000 and max at most float64's.
    """
    t_log = plan.tiny_shift - 1011
    n_log = (plan.smallest_normal >> 52) - 1023
    c = max(0, -1000 - (t_log - e))
    t_s = t_log - e + c
    n_s = n_log - e + c
    max_exp = (plan.max >> 52) - e
    max_s = plan.max - (e << 52) if max_exp <= 2046 else _F64_MAX_BITS
    return RoundPlan(
        plan.d0,
        (n_s + 1023) if plan.eminb > 0 else 0,
        np.int64(t_s + 1023) << 52,
        np.int64(t_s + 1022) << 52,
        1011 + t_s,
        max_s,
        plan.ovf_pos,
        plan.ovf_neg,
        plan.inf_res,
        plan.sat_pos,
        plan.sat_neg,
        plan.sat_inf,
        plan.signed_zero,
        np.int64(n_s + 1023) << 52,
    )


@jit_inline
def scaled_pair(op, mode, x, y, z, plan):
    """``(hi, lo, rad, e)``: the exact result is within ``rad * 2**e`` of ``(hi +
    lo) * 2**e``, ``1 <= |hi| < 2`` (or ``hi`` = 0, e = 0), computed on operands
    scaled near 1. A result far below the smallest value T or far above max is
    replaced by one (2**-70 T or 8 * 2**floor(log2 max), same sign) that rounds the
    same in every mode, with the same flags, stochastic rounding included (its
    fraction is below 2**-64)."""
    xs, ys, zs, e = _scaled_operands(op, x, y, z)
    hi, lo, rad = exact_pair(op, mode, xs, ys, zs)
    if hi == 0:
        return hi, lo, rad, 0
    m, k = _split(hi)
    lo = _ldexp(lo, -k)
    rad = _ldexp(rad, -k)
    e = e + k
    t_log = plan.tiny_shift - 1011
    max_log = (plan.max >> 52) - 1023
    if e < t_log - 70:
        return np.copysign(1.0, hi), 0.0, 0.0, t_log - 70
    if e > max_log + 3:
        return np.copysign(1.0, hi), 0.0, 0.0, max_log + 3
    return m, lo, rad, e


# ------------------------------------------------- stochastic rounding, exactly


@jit_inline
def _bracket_needed(op, b, plan):
    """Whether a stochastic rounding of an inexact ``hi + lo`` (hi's bits ``b``)
    onto ``plan`` may need more of the error than ``lo`` holds.

    Units below are 2**-64 of the format's gap G at the result; round_bits takes
    ``floor`` of the fraction in these units, so ``lo`` is enough when its error
    cannot carry the exact fraction across a whole number of units. In the normal
    range G = 2**d0 ulp(a), a the float64 below the result, and ``|lo| <= ulp(a)
    / 2`` spans 2**(63 - d0) units.

    * div: ``lo = r / y`` rounded once errs by at most 2**(10 - d0) units. The
      exact fraction in units is an integer over y's significand Y < 2**p, so it
      is a whole number (then ``lo`` is exact) or at least 2**-p from one:
      enough for p <= 21.
    * fma: ``hi + lo`` is an odd multiple of w, the last place of the rounded-to-
      odd ``t + e``, and the exact result lies strictly between its even
      neighbours; if 2 w is at most one unit, no whole number lies between.
      ``|t + e| < 2 ulp(s)`` whenever ``t + e`` is inexact, so w <= G
      2**(-d0 - 51): enough for d0 >= 14 (p <= 39).
    * sqrt: ``lo`` errs by less than 2**(12 - d0) units (1.5 of its last
      places), and a root's fraction has no such bound in general; but there
      are only 2**(p + 1) roots to check (the significands, times 1 or 2), and
      up to p = 19 each one's fraction is farther than 2**(13 - d0) from every
      whole number (the tests recompute this). That holds in the normal range,
      where the units line up with the root's significand; below it, and in
      wider formats, bracket.
    """
    if op == SQRT:
        return plan.d0 < _SQRT_EXACT_D0 or (b & _ABS) <= plan.smallest_normal
    if op == DIV:
        return plan.d0 < _DIV_EXACT_D0
    return op == FMA and plan.d0 < _FMA_EXACT_D0


@jit_inline
def _next_above(v):
    """The float64 after v (v finite)."""
    b = np.float64(v).view(np.int64)
    nxt = np.int64(b + 1 if v > 0 else b - 1).view(np.float64)
    return nxt if v != 0 else 5e-324


@jit_inline
def _sign_of_sum(terms, n):
    """The sign (-1, 0, 1) of the exact sum of ``terms[:n]`` (finite float64s).

    Shewchuk's Grow-Expansion with zero elimination ("Adaptive precision
    floating-point arithmetic", 1997): the terms go one by one into an expansion,
    components that do not overlap, smallest first; the sum's sign is the sign of
    the largest.
    """
    comp = np.empty(n)
    m = 0
    for j in range(n):
        q = terms[j]
        kept = 0
        for c in range(m):
            q, err = two_sum(q, comp[c])
            if err != 0:
                comp[kept] = err
                kept += 1
        if q != 0:
            comp[kept] = q
            kept += 1
        m = kept
    if m == 0:
        return 0
    return 1 if comp[m - 1] > 0 else -1


@jit_inline
def _gap_above(lower_bits, plan):
    """The gap G from a value ``lower`` of the format (bits, >= 0) to the next one
    up, as if the format went on above max: T below the smallest normal (0 and
    2**emin when subnormals are flushed), else 2**d0 float64 gaps."""
    if lower_bits < plan.smallest_normal:
        return np.int64(plan.tiny).view(np.float64)
    return np.int64(((lower_bits >> 52) - 52 + plan.d0) << 52).view(np.float64)


@jit_inline
def _up_exact(op, x, y, z, negative, lower, gap, e, word, rshift, rmask):
    """Whether stochastic rounding of ``v = op(x, y, z)`` with this random word
    rounds ``|v|`` up to ``lower + gap``, its neighbour above (``lower`` and
    ``gap`` in units of 2**e; ``negative``: the sign of v).

    round_bits rounds up when ``floor(f 2**r) + (word >> (64 - r)) >= 2**r``, f
    the fraction ``(|v| - lower) / gap``: exactly when ``|v| >= lower + gap N
    2**-r``, ``N = 2**r - (word >> (64 - r))``. That threshold has up to 53 + 64
    bits: three float64s. It is compared with ``|v|`` as the sign of an exact sum
    on operands scaled near 1 (as in :func:`scaled_pair`), where no product
    under- or overflows: fma ``x y + z - threshold``; division ``|x| -
    threshold |y|``; square root ``x - threshold**2``.
    """
    key = word >> rshift
    if key == 0:
        return False  # the fraction would have to reach 1
    n_up = rmask - key + np.uint64(1)  # N, from 1 to 2**r - 1
    xs, ys, zs, es = _scaled_operands(op, x, y, z)  # op(x, y, z) = op(xs..) 2**es
    # the threshold in units of 2**es, as three exact float64s: lower, and G 2**-r
    # times N's two 32-bit halves
    unit = _ldexp(gap, e - es + np.int64(rshift) - 64)
    th = np.empty(3)
    th[0] = _ldexp(lower, e - es)
    th[1] = np.float64(n_up & np.uint64(0xFFFFFFFF00000000)) * unit
    th[2] = np.float64(n_up & np.uint64(0xFFFFFFFF)) * unit
    terms = np.empty(13)
    if op == FMA:
        prod, perr = two_prod(xs, ys)
        sign = -1.0 if negative else 1.0
        terms[0], terms[1], terms[2] = sign * prod, sign * perr, sign * zs
        terms[3], terms[4], terms[5] = -th[0], -th[1], -th[2]
        n = 6
    elif op == DIV:
        terms[0] = abs(xs)
        for j in range(3):
            prod, perr = two_prod(th[j], abs(ys))
            terms[1 + 2 * j], terms[2 + 2 * j] = -prod, -perr
        n = 7
    else:  # SQRT: the threshold squared, six products
        terms[0] = xs
        n = 1
        for j in range(3):
            for jj in range(j, 3):
                f = 1.0 if j == jj else 2.0  # cross terms twice (exact)
                prod, perr = two_prod(f * th[j], th[jj])
                terms[n], terms[n + 1] = -prod, -perr
                n += 2
    return _sign_of_sum(terms, n) >= 0


# The two helpers below are not inlined into the kernels: each inlined round_bits
# costs a kernel seconds of compilation, and a call costs a few nanoseconds only
# in stochastic mode where the bracket is needed. Like the kernels, they keep the
# stamp of the helpers they inline in their closure, for the cache.


def _make_round_stochastic_bits():
    helpers = _HELPERS

    @jit
    def round_stochastic_bits(b, lo, i, p, seed, words, rshift, rmask):
        """``round_bits`` in stochastic mode."""
        if helpers < 0:  # never: the stamp only keys the cache
            return 0, False
        return round_bits(b, lo, i, p, SR, seed, words, rshift, rmask)

    return round_stochastic_bits


def _make_round_stochastic_exact():
    helpers = _HELPERS

    @jit
    def round_stochastic_exact(op, x, y, z, b, lo, e, i, p, seed, words, rshift, rmask):
        """Stochastic rounding of ``v = op(x, y, z) = (hi + lo') 2**e`` (hi's bits
        ``b``, ``lo'`` near ``lo``, ``p`` the plan scaled by 2**-e) when the
        random word's threshold lies too close to v for ``lo`` to decide: round
        toward zero and away from it (with overflow) for v's neighbours, and let
        :func:`_up_exact` choose.
        """
        if helpers < 0:  # never: the stamp only keys the cache
            return 0, False
        away = RD if b < 0 else RU
        r, o, r_down, o_down = 0, False, 0, False
        for j in range(2):  # one call site for two roundings: one inlined copy
            mode = RZ if j == 0 else away
            r, o = round_bits(b, lo, i, p, mode, seed, words, rshift, rmask)
            if j == 0:
                r_down, o_down = r, o
        # the threshold lies between v's neighbours, so |v| is below the overflow
        # bound and rounding toward zero gave its neighbour below
        lower = r_down & _ABS
        lower_value = np.int64(lower).view(np.float64)
        gap = _gap_above(lower, p)
        word = words[i] if words.size > 0 else random_word(seed, i)
        up = _up_exact(op, x, y, z, b < 0, lower_value, gap, e, word, rshift, rmask)
        return (r, o) if up else (r_down, o_down)

    return round_stochastic_exact


_round_stochastic_bits = _make_round_stochastic_bits()
_round_stochastic_exact = _make_round_stochastic_exact()


_KERNELS: dict[int, object] = {}


def arith_kernel(op: int):
    """The compiled loop for one operation (a closure constant).

    The rounding mode and whether to count are run-time arguments: one kernel
    per operation compiles in seconds, where one per (operation, mode, counting)
    made a first use of every mode cost minutes of compilation. The per-element
    branches on them are predictable, so the loop runs at nearly the same speed.
    """
    if op not in _KERNELS:
        _KERNELS[op] = _make_kernel(op)
    return _KERNELS[op]


def _make_kernel(op: int):
    helpers = _HELPERS

    @jit
    def kernel(x, y, z, out, plan, mode, counting, seed, words, rshift, rmask):
        n = out.size
        n_inexact = 0
        n_underflow = 0
        n_flushed = 0
        n_overflow = 0
        n_saturated = 0
        n_nan = 0
        if helpers < 0:  # never: the stamp only keys the cache
            n = 0
        for i in range(n):
            hi, lo, rad = exact_pair(op, mode, x[i], y[i], z[i])
            e = 0
            p = plan
            if _risky(op, x[i], y[i], z[i], hi):
                hi, lo, rad, e = scaled_pair(op, mode, x[i], y[i], z[i], plan)
                if e != 0:
                    p = _scaled_plan(plan, e)
            b = np.float64(hi).view(np.int64)
            # Stochastic rounding where lo may be too coarse for the random word:
            # round both ends of a bracket around the exact result (each end
            # rounded outward). Rounding with a fixed word is monotone, so if the
            # ends agree, so does the exact result; if not, decide exactly.
            bracket = mode == SR and rad != 0 and _bracket_needed(op, b, p)
            end = -_next_above(-(lo - rad)) if bracket else lo
            rb, overflow = round_bits(b, end, i, p, mode, seed, words, rshift, rmask)
            if bracket:
                end = _next_above(lo + rad)
                r, o = _round_stochastic_bits(b, end, i, p, seed, words, rshift, rmask)
                if r != rb or o != overflow:  # the word's threshold lies between
                    # np.int64(op): one compiled helper for all ops, not one per
                    # literal value
                    rb, overflow = _round_stochastic_exact(
                        np.int64(op), x[i], y[i], z[i], b, lo, e, i, p, seed,
                        words, rshift, rmask,
                    )  # fmt: skip
            res = np.int64(rb).view(np.float64)
            if e != 0 and not overflow:
                res = _ldexp(res, e)  # exact: the result is a value of the format
            out[i] = res
            if counting:
                c = count_one(b, lo, rb, overflow, p)
                n_inexact += c[0]
                n_underflow += c[1]
                n_flushed += c[2]
                n_overflow += c[3]
                n_saturated += c[4]
                n_nan += c[5]
        return n_inexact, n_underflow, n_flushed, n_overflow, n_saturated, n_nan

    return kernel
