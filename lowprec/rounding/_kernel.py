"""The Numba rounding kernels: tight loops on the bit patterns of the input.

Private: :func:`lowprec.round` validates, derives the constants once (a
:class:`RoundPlan`, in float64 bit patterns) and calls the runner that
:func:`round_kernel` returns. The runner picks the kernel for the input's width,
turns the plan into that width's constants (:func:`make_consts`) and passes them
as two small arrays, so the kernel only sees arrays and plain numbers.
:mod:`lowprec.rounding.reference` states the same rounding in NumPy.

float32 inputs are rounded on their 32-bit patterns and float64 inputs on their
64-bit patterns, by the same code (:func:`_make_round_bits`), so that a float32
loop runs eight lanes per AVX2 instruction instead of four. Every element goes
through the steps of ml_dtypes' ``ConvertImpl``, on the bits ``b`` of its value:

1. unpack: sign and magnitude bits ``a``;
2. round, in one of two regions (both are computed, then one is selected):

   * the format's normal range, ``|x| >= B = 2**emin``: drop the ``d0 = P - p``
     low bits of ``a`` (``P`` is the storage precision, 24 or 53). Adding one unit
     at bit ``d0`` carries into the exponent field when the significand is all
     ones, which is exactly the next binade, so nothing needs renormalising;
   * below ``B`` the format's values are the multiples of its smallest positive
     value ``T``: a fixed grid, handled in floating point. Scaled by a power of two
     ``S`` (so that ``T' = S * T`` is 1, or as near as the width allows), adding
     ``C = T' * 2**(P - 1)``, whose spacing is ``T'``, rounds ``|x| * S`` onto the
     grid to nearest-even, and subtracting ``C`` again is exact. The other modes
     take ``floor(|x| * S / T')`` and decide from the exact remainder;
3. overflow: a magnitude above ``max`` becomes inf, max or NaN by mode and format;
4. NaN and inf inputs: NaN stays (quiet) NaN with its sign; inf by format;
5. pack: put the sign back (not on a zero of an fnuz format).

Stochastic rounding compares the fraction rounded off with the element's random
word (see :mod:`lowprec.rounding.randomness`): it rounds up when the two, cut to their
``random_bits`` leading bits, carry out of 64 bits when added. The loops do it
from the upper 32 bits of the word, on integers only (:mod:`lowprec.rounding._sr_bits`);
float64 inputs to formats of at most 21 bits of precision round on the upper 32
bits of their pattern, eight lanes per AVX2 instruction. Where the bits not looked
at could still carry (probability ``2**-32`` per element for random words, and
only with more than 32 random bits), the runner redoes that block with whole words
in the code above (:func:`_redo_blocks`).

The branches are written as selects so that LLVM vectorizes the loops; magnitudes
are below ``2**(width - 1)``, so signed compares are exact. Numba widens int32
arithmetic written with operators to int64, so the bit operations are NumPy's
ufuncs on scalars (``np.add``, ``np.bitwise_and``, ...), which keep the type.

The loop runs over fixed blocks of :data:`BLOCK` elements with ``prange``, each
block writing its own slice of ``out`` and its own row of counts, so the result
and the counts do not depend on the number of threads.
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import prange

from lowprec import _jit, modes
from lowprec._jit import jit, jit_inline, jit_parallel, select
from lowprec.modes import RD, RNA, RNE, RO, RU, RZ, SR, SRE
from lowprec.rounding import _sr_bits, randomness
from lowprec.rounding._sr_bits import (
    SrConsts,
    make_sr_consts,
    splits,
    sr_round32,
    sr_round64,
    sr_round64hi,
    unpack32,
    unpack64,
    unpack64hi,
)
from lowprec.rounding.randomness import lowbias32, random_word, segment_keys

BLOCK = 1 << 14  # elements per parallel work item; divides 2**32 (see randomness)


def _source_stamp(*modules) -> int:
    """A hash of the modules' source files, as an int.

    Numba's cache checks only the cached function's own file, so a kernel would
    outlive a change to the helpers it inlines from other modules. The kernels
    keep this stamp in their closure, which the cache key includes.
    """
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return int.from_bytes(digest.digest()[:7], "little")


_STAMPED = (_jit, _sr_bits, modes, randomness)  # _jit: the options
_HELPERS = _source_stamp(*_STAMPED)

# bit operations that keep their operands' integer type (see the module docstring)
_add, _sub = np.add, np.subtract
_and, _or, _xor, _not = np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert
_shl, _shr = np.left_shift, np.right_shift


class RoundPlan(NamedTuple):
    """A format and options as float64 bit patterns (int64) and flags; built once
    by :func:`lowprec.rounding.rounder.make_plan`, turned into a kernel's constants by
    :func:`make_consts` (which uses d0, tiny, max, the overflow and infinity
    results, the saturation flags, signed_zero and smallest_normal)."""

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


class Consts(NamedTuple):
    """A plan in one storage width, as the kernels see it (see make_consts)."""

    # integers of the kernel's width
    d0: int  # bits dropped in the normal range: P - p
    mask0: int  # 2**d0 - 1
    unit0: int  # 2**d0
    half0: int  # 2**(d0 - 1), 0 if d0 = 0
    hm1: int  # half0 - 1, 0 if d0 = 0
    lsb1: int  # 1, 0 if d0 = 0 (there is no last kept bit to look at)
    normal: int  # bits of B = 2**emin: the normal range starts here
    tiny_shift: int  # aligns a significand below B to the fraction (frac_bits)
    frac_shift: int  # aligns 2 * rem_n to the fraction (frac_bits)
    max: int  # bits of the largest finite value
    ovf_pos: int  # bits that +overflow gives
    ovf_neg: int
    inf_res: int  # bits that an infinite input gives
    sat_pos: int  # 1 if the +overflow result counts as saturation
    sat_neg: int
    sat_inf: int
    zero_sign: int  # the sign bit, 0 for fnuz formats: zero has no sign
    # stochastic rounding with whole words (the fast path is lowprec.rounding._sr_bits)
    keep_mask: int  # the random_bits leading bits of 64 (uint64)
    # floats of the kernel's width
    tiny: float  # T, the smallest positive value
    scale: float  # S, a power of two: T' = S * T is 1 (or as near as S allows)
    unscale: float  # 1 / S
    sub_t: float  # T', the grid spacing below B, scaled
    sub_inv: float  # 1 / T'
    sub_c: float  # C = T' * 2**(P - 1): adding it rounds onto the grid


_N_INTS = Consts._fields.index("tiny")


class _Width(NamedTuple):
    int: type
    uint: type
    float: type
    mant: int  # stored significand bits: 23 or 52
    bias: int


_W32 = _Width(np.int32, np.uint32, np.float32, 23, 127)
_W64 = _Width(np.int64, np.uint64, np.float64, 52, 1023)


def _as_width(bits64: int, w: _Width) -> int:
    """The bit pattern in width ``w`` of the float64 with bit pattern ``bits64``."""
    value = np.int64(bits64).view(np.float64)
    return int(np.asarray(value, dtype=w.float).view(w.int))  # exact: it fits


@functools.lru_cache(maxsize=512)
def make_consts(plan: RoundPlan, width: int, rshift: int) -> tuple[np.ndarray, ...]:
    """The constants of ``plan`` for a ``width``-bit kernel (32 or 64), as an int64
    and a float64 array in the order of :class:`Consts`; the kernel casts them to
    its width (Numba types a tuple of NumPy scalars slowly on every call)."""
    w = _W32 if width == 32 else _W64
    d0 = plan.d0 - (52 - w.mant)
    assert d0 >= 0, "the wrapper checks that the storage holds the format"
    t = math.frexp(np.int64(plan.tiny).view(np.float64))[1] - 1  # T = 2**t
    # below B: scale by S = 2**s so that T' = 2**(t + s) is 1, or as near as
    # allowed with 1 / S a normal float (a subnormal operand is slow); then
    # C = T' * 2**(P - 1) is finite
    s = min(-t, w.bias - 1)
    sub_t = math.ldexp(1.0, t + s)
    keep = ~((1 << rshift) - 1) & (2**64 - 1)
    consts = Consts(
        d0=d0,
        mask0=(1 << d0) - 1,
        unit0=1 << d0,
        half0=1 << d0 >> 1,
        hm1=max((1 << d0 >> 1) - 1, 0),
        lsb1=1 if d0 > 0 else 0,
        normal=_as_width(plan.smallest_normal, w),
        # the 64-bit exact path aligns to all 64 bits of the fraction, the 32-bit
        # kernel to the upper 32
        tiny_shift=w.bias + w.mant - width + t,
        frac_shift=width - 1 - d0,
        max=_as_width(plan.max, w),
        ovf_pos=_as_width(plan.ovf_pos, w),
        ovf_neg=_as_width(plan.ovf_neg, w),
        inf_res=_as_width(plan.inf_res, w),
        sat_pos=plan.sat_pos,
        sat_neg=plan.sat_neg,
        sat_inf=plan.sat_inf,
        zero_sign=-(1 << (width - 1)) if plan.signed_zero else 0,
        keep_mask=int(np.uint64(keep).view(np.int64)),  # bits, as an int64
        tiny=math.ldexp(1.0, t),
        scale=math.ldexp(1.0, s),
        unscale=math.ldexp(1.0, -s),
        sub_t=sub_t,
        sub_inv=1 / sub_t,
        sub_c=math.ldexp(sub_t, w.mant),
    )
    ints = np.array(consts[:_N_INTS], dtype=np.int64)
    floats = np.array(consts[_N_INTS:], dtype=np.float64)  # powers of two: exact
    ints.flags.writeable = floats.flags.writeable = False
    return ints, floats


@functools.lru_cache(maxsize=512)
def has_small_path(plan: RoundPlan, width: int) -> bool:
    """Whether values below B need the float path in a ``width``-bit kernel.

    They do not when the format's grid below B is the storage's own subnormal
    grid coarsened by d0 bits, as for bf16 and tf32 in float32 (same emin, with
    subnormals): dropping d0 bits of the magnitude then rounds storage subnormals
    too, and the kernel compiled without the float path never multiplies a
    subnormal operand, which costs the CPU a microcode assist per element.
    """
    w = _W32 if width == 32 else _W64
    d0 = plan.d0 - (52 - w.mant)
    t = math.frexp(np.int64(plan.tiny).view(np.float64))[1] - 1  # T = 2**t
    return t != 1 - w.bias - w.mant + d0


def _make_unpack(w: _Width):
    """The jitted constructor of a :class:`Consts` of width ``w`` from the arrays
    of make_consts."""
    IT, FT = w.int, w.float  # the width's types

    @jit_inline
    def unpack(ci, cf):
        # one line per group of fields, in the order of Consts
        return Consts(
            IT(ci[0]), IT(ci[1]), IT(ci[2]), IT(ci[3]), IT(ci[4]), IT(ci[5]),
            IT(ci[6]), IT(ci[7]), IT(ci[8]), IT(ci[9]), IT(ci[10]), IT(ci[11]),
            IT(ci[12]), IT(ci[13]), IT(ci[14]), IT(ci[15]), IT(ci[16]),
            np.uint64(ci[17]),
            FT(cf[0]), FT(cf[1]), FT(cf[2]), FT(cf[3]), FT(cf[4]), FT(cf[5]),
        )  # fmt: skip

    return unpack


_unpack32 = _make_unpack(_W32)
_unpack64 = _make_unpack(_W64)


def _make_round_bits(w: _Width):
    """The element functions for one storage width (see the module docstring)."""
    IT, UT, FT = w.int, w.uint, w.float  # the width's types
    width = 8 * np.dtype(IT).itemsize
    ZERO, ONE = IT(0), IT(1)
    UZERO = UT(0)
    MB = IT(w.mant)
    ABS = IT((1 << (width - 1)) - 1)
    INF = IT(((1 << (width - 1 - w.mant)) - 1) << w.mant)
    QNAN = IT(INF | (1 << (w.mant - 1)))
    HIDDEN = IT(1 << w.mant)
    HIGH = IT(1 << 16)  # the second count of a packed pair
    INF_1, SIGN_SHIFT = IT(INF + 1), IT(width - 1)
    TWO_MB = FT(2.0**w.mant)

    @jit_inline
    def shift_up(m, s):
        """``m * 2**s`` (``m`` unsigned), truncated to the width; 0 out of range."""
        su = UT(s)
        left = _shl(m, su) if su < UT(width) else UZERO
        sd = UT(_sub(ZERO, s))
        right = _shr(m, sd) if sd < UT(width) else UZERO
        return _or(left, right)

    @jit_inline
    def frac_bits(a, small, rem_n, c):
        """The fraction rounded off as fixed point, from the integer bits: all 64
        bits in the 64-bit kernel, the upper 32 in the 32-bit one."""
        # rem_n / 2**d0 in the normal range; below B |x| / T (mod 1), from the
        # significand m (with its hidden bit) shifted by its exponent
        e1 = max(_shr(a, MB), ONE)  # storage subnormals share exponent 1's scale
        m = _sub(_add(a, HIDDEN), _shl(e1, MB))
        frac_m = UT(m if small else _shl(rem_n, ONE))
        sh = _sub(e1, c.tiny_shift) if small else c.frac_shift
        return shift_up(frac_m, sh)

    @jit_inline
    def sr_exact(a, small, rem_n, k, c):
        """Stochastic, exactly (64-bit kernel): whether the fraction rounded off
        and the whole random word ``k`` carry out of 64 bits when added, both cut
        to their ``random_bits`` leading bits."""
        keep = c.keep_mask
        return _and(frac_bits(a, small, rem_n, c), keep) > _not(_and(k, keep))

    @jit_inline
    def round_bits(b, c, mode, k, has_small):
        """Round one bit pattern; return the result bits and the overflow flag.
        ``k`` is the random word (stochastic modes; stochastic rounding here uses
        all of it, see :mod:`lowprec.rounding._sr_bits` for the loops' fast path). Without
        ``has_small`` (see :func:`has_small_path`) the float path below B is
        folded away."""
        # 1. unpack
        a = _and(b, ABS)
        sign = _xor(b, a)
        negative = b < ZERO

        # 2. round. In the normal range (a >= B) drop the d0 low bits of a. Below
        # B round |x| * S onto the multiples of T': adding C does it to nearest.
        small = has_small and a < c.normal
        rem_n = _and(a, c.mask0)
        trunc_n = _xor(a, rem_n)
        x = IT(a).view(FT)
        x_s = x * c.scale
        near = (x_s + c.sub_c) - c.sub_c  # ties to even; exact
        if mode == RNE:
            lsb = _and(_shr(a, c.d0), c.lsb1)
            r_n = _and(_add(_add(a, c.hm1), lsb), _not(c.mask0))
            r_s = near * c.unscale
        else:
            q = x_s * c.sub_inv  # |x| / T (exact, or an underflow far below 1)
            q_low = np.floor(q)
            rem_q = q - q_low  # the fraction rounded off, exact
            low_x = q_low * c.sub_t * c.unscale  # |x| rounded down
            if mode == RNA:
                r_n = _and(_add(a, c.half0), _not(c.mask0))
                up_s = rem_q >= 0.5
            elif mode == RO:
                r_n = _or(trunc_n, c.unit0 if rem_n != ZERO else ZERO)
                # the last bit of the integer q_low, in the bits of q_low + 2**MB
                odd = _and(FT(q_low + TWO_MB).view(IT), ONE) != ZERO
                up_s = low_x != x and not odd
            else:
                # (x_s may have underflowed if S < 1, so compare unscaled)
                inexact = low_x != x if small else rem_n != ZERO
                if mode == RZ:
                    up = False
                elif mode == RU:
                    up = inexact and not negative
                elif mode == RD:
                    up = inexact and negative
                elif mode == SRE:
                    up = inexact and (k >> np.uint64(63)) != np.uint64(0)
                else:
                    up = sr_exact(a, small, rem_n, k, c)
                r_n = _add(trunc_n, c.unit0 if up else ZERO)
                up_s = up
            r_s = low_x + c.tiny if up_s else low_x
        r = FT(r_s).view(IT) if small else r_n

        # 3. overflow (inf and NaN inputs land here too but are replaced below)
        big = r > c.max
        finite = a < INF
        overflow = big and finite
        if big:
            r = c.ovf_neg if negative else c.ovf_pos
        # 4. specials: inf by format, NaN stays a quiet NaN with its sign
        if not finite:
            r = c.inf_res if a == INF else QNAN
        # 5. pack
        packed = _or(r, sign if r != ZERO else _and(sign, c.zero_sign))
        return packed, overflow

    @jit_inline
    def below(p, q):
        """-1 if p < q else 0, for p and q in [0, 2**(width - 1)).

        (Integer masks rather than booleans: LLVM legalizes vectors of eight
        booleans to 16-bit lanes, and converting back and forth costs more.)"""
        return _shr(_sub(p, q), SIGN_SHIFT)

    @jit_inline
    def count(b, r, overflow, c):
        """The element's exception counts, two to an int (low and high 16 bits):
        (inexact, underflow), (flushed, overflow), (saturated, nan)."""
        a = _and(b, ABS)
        ra = _and(r, ABS)
        inexact = _and(below(ZERO, _xor(ra, a)), below(a, INF_1))  # NaN in: no
        underflow = _and(inexact, below(a, c.normal))
        flushed = _and(below(ZERO, a), _not(below(ZERO, ra)))
        nan = below(INF, ra)
        sat = c.sat_neg if b < ZERO else c.sat_pos
        saturated = _add(sat if overflow else ZERO, c.sat_inf if a == INF else ZERO)
        return (
            _sub(_and(underflow, HIGH), inexact),
            _sub(HIGH if overflow else ZERO, flushed),
            _add(saturated, _and(nan, HIGH)),
        )

    return round_bits, count


_round_bits32, _count32 = _make_round_bits(_W32)
_round_bits64, _count64 = _make_round_bits(_W64)


def _make_redo(helpers: int):
    @jit
    def redo_blocks(x, out, blocks, ci, cf, counting, seed, words, counts):
        """Round the ``blocks`` of ``x`` again stochastically with whole random
        words, in the 64-bit code, and replace their counts (rare: see the module
        docstring)."""
        if helpers < 0:  # (never: the stamp only keys the cache, _source_stamp)
            return
        c = _unpack64(ci, cf)
        for blk in blocks:
            lo = np.uint64(blk * BLOCK)
            hi = np.uint64(min((blk + 1) * BLOCK, x.size))
            n0 = n1 = n2 = np.int64(0)
            for i in range(lo, hi):
                k = words[i] if words.size > 0 else random_word(seed, i)
                b = np.float64(x[i]).view(np.int64)
                r, overflow = _round_bits64(b, c, SR, k, True)
                out[i] = np.int64(r).view(np.float64)  # exact in a float32 out too
                if counting:
                    e0, e1, e2 = _count64(b, r, overflow, c)
                    n0, n1, n2 = n0 + e0, n1 + e1, n2 + e2
            if counting:
                _store_counts(counts, blk, n0, n1, n2)

    return redo_blocks


@jit_inline
def _store_counts(counts, blk, n0, n1, n2):
    """Store a block's counts, packed two to an int, as six int64."""
    counts[blk, 0] = n0 & 0xFFFF
    counts[blk, 1] = n0 >> 16
    counts[blk, 2] = n1 & 0xFFFF
    counts[blk, 3] = n1 >> 16
    counts[blk, 4] = n2 & 0xFFFF
    counts[blk, 5] = n2 >> 16


_redo_blocks = _make_redo(_HELPERS)


def _make_kernel(
    mode: int,
    counting: bool,
    width: int,
    given_words: bool,
    parallel: bool,
    has_small: bool,
    split: bool,
    signed_zero: bool,
    cut: bool,
    in_place: bool,
):
    """Compile the loop for one (mode, counting, width, given_words, parallel,
    has_small, split, signed_zero, cut, in_place).

    Each is its own function so that the other modes' branches, the counting, the
    other width and the other source of random words are folded away at compile
    time; the flags reach Numba as closure constants, which its cache keys on
    (with the stamp of the helpers' source, :func:`_source_stamp`). The serial
    variant (``prange`` is then ``range``) is for inputs of one block: waking the
    thread pool costs more than rounding a few thousand values. ``split``: a
    stochastic float64 loop on the upper words (:func:`lowprec.rounding._sr_bits.splits`);
    ``signed_zero`` and ``cut`` only vary for it and the other stochastic loops
    (``sr_round`` in :mod:`lowprec.rounding._sr_bits`). ``in_place``: ``out`` is ``x``; the
    loop then writes through ``x`` itself, since LLVM vectorizes a loop over two
    arrays only after checking that they do not overlap.
    """
    stochastic = mode in (SR, SRE)
    helpers = _HELPERS
    # (the kernel names module globals only: a jitted function in its closure
    # would change Numba's cache key in every process)

    def kernel(x, out, ci, cf, cs, seed, words, counts):
        """Round ``x`` (1-D float) into ``out`` (1-D float).

        ``ci`` and ``cf`` hold the constants (make_consts), ``cs`` those of
        stochastic rounding's fast path (make_sr_consts). Row ``blk`` of
        ``counts`` gets the counts of block ``blk`` and, in column 6, whether a
        stochastic rounding there was in doubt (see lowprec.rounding._sr_bits).
        """
        if helpers < 0:  # (never: the stamp only keys the cache, _source_stamp)
            return
        if in_place:
            out = x
        c = _unpack32(ci, cf) if width == 32 else _unpack64(ci, cf)
        s = unpack32(cs) if width == 32 else unpack64hi(cs) if split else unpack64(cs)
        size = x.size
        for blk in prange(counts.shape[0]):
            # unsigned indices: Numba then skips the wraparound of negative ones,
            # which would keep LLVM from vectorizing the loads
            lo = np.uint64(blk * BLOCK)
            hi = np.uint64(min((blk + 1) * BLOCK, size))
            n0 = n1 = n2 = _sub(c.max, c.max)  # zeros of the width's int
            doubt = _NO_DOUBT
            if stochastic and not given_words:
                # the upper halves of randomness.random_word: a Weyl sequence
                # through lowbias32 (the lower halves only matter in doubt)
                key, step, unused_key, unused_step = segment_keys(
                    seed, lo >> np.uint64(32)
                )
                weyl = np.add(key, np.multiply(np.uint32(lo & 0xFFFFFFFF), step))
            k_hi = np.uint32(0)  # the upper half of the element's random word
            for i in range(lo, hi):
                if stochastic and given_words:
                    k_hi = np.uint32(words[i] >> np.uint64(32))
                elif stochastic:
                    k_hi = lowbias32(weyl)
                    weyl = np.add(weyl, step)
                k = np.uint64(k_hi) << np.uint64(32)  # (only its sign bit is used)
                # (loads and stores stay in this loop: in a helper inlined into
                # it they keep LLVM from vectorizing)
                if width == 32:
                    b = np.float32(x[i]).view(np.int32)
                    if mode == SR:
                        r, overflow, d = sr_round32(
                            b, np.uint32(0), k_hi, s, has_small, signed_zero, cut
                        )
                        doubt = _or(doubt, select(d, _DOUBT, _NO_DOUBT))
                    else:
                        r, overflow = _round_bits32(b, c, mode, k, has_small)
                    out[i] = np.int32(r).view(np.float32)
                    if counting:
                        e0, e1, e2 = _count32(b, r, overflow, c)
                        n0, n1, n2 = _add(n0, e0), _add(n1, e1), _add(n2, e2)
                else:
                    b = np.float64(x[i]).view(np.int64)
                    if split:
                        hi_w = np.int32(b >> np.int64(32))
                        lo_w = np.uint32(b & np.int64(0xFFFFFFFF))
                        r_hi, overflow, d = sr_round64hi(
                            hi_w, lo_w, k_hi, s, has_small, signed_zero, cut
                        )
                        r = np.int64(r_hi) << np.int64(32)
                        doubt = _or(doubt, select(d, _DOUBT, _NO_DOUBT))
                    elif mode == SR:
                        r, overflow, d = sr_round64(
                            b, np.uint64(0), k_hi, s, has_small, signed_zero, cut
                        )
                        doubt = _or(doubt, select(d, _DOUBT, _NO_DOUBT))
                    else:
                        r, overflow = _round_bits64(b, c, mode, k, has_small)
                    out[i] = np.int64(r).view(np.float64)
                    if counting:
                        e0, e1, e2 = _count64(b, r, overflow, c)
                        n0, n1, n2 = n0 + e0, n1 + e1, n2 + e2
            if counting:
                _store_counts(counts, blk, n0, n1, n2)
            counts[blk, 6] = doubt

    return (jit_parallel if parallel else jit)(kernel)


_NO_DOUBT, _DOUBT = np.int32(0), np.int32(1)
_KERNELS: dict[tuple, object] = {}
_WIDE: set[tuple] = set()  # split kernels compiled for an out dtype (wide_vectors)
_NO_SR = np.zeros(len(SrConsts._fields), dtype=np.int64)


def round_kernel(mode: int, counting: bool):
    """The rounding loop for one mode, with or without exception counts.

    Returns ``run(x, out, plan, seed, words, rshift, rmask) -> counts``: it picks
    the 32- or 64-bit kernel by ``x``'s dtype (float32 or float64; ``out`` may be
    float32 or float64) and returns the six counts (zeros when not counting).
    """

    def run(x, out, plan, seed, words, rshift, rmask):
        width = 32 if x.dtype == np.float32 else 64
        split = mode == SR and width == 64 and splits(plan.d0)
        in_place = x.dtype == out.dtype and x.ctypes.data == out.ctypes.data
        if in_place and mode == SR and rshift < 32:
            # a block in doubt is rounded again from x (see below): keep it
            x, in_place = x.copy(), False
        key = (
            mode,
            counting,
            width,
            mode in (SR, SRE) and words.size > 0,
            x.size > BLOCK,  # parallel only over more than one block
            has_small_path(plan, width),
            split,
            mode != SR or bool(plan.signed_zero),
            mode == SR and rshift > 32,  # fewer than 32 random bits
            in_place,
        )
        kernel = _KERNELS.get(key)
        if kernel is None:
            kernel = _KERNELS[key] = _make_kernel(*key)
        seed = np.uint64(seed)
        counts = np.zeros((-(-x.size // BLOCK), 7), dtype=np.int64)
        ci, cf = make_consts(plan, width, int(rshift))
        cs = _NO_SR
        if mode == SR:
            layout = "32" if width == 32 else "64hi" if split else "64"
            cs = make_sr_consts(plan, layout, int(rshift))
        args = (x, out, ci, cf, cs, seed, words, counts)
        if split and (key, out.dtype) not in _WIDE:
            with _jit.wide_vectors():  # the first call compiles (or loads) it
                kernel(*args)
            _WIDE.add((key, out.dtype))
        else:
            kernel(*args)
        # with at most 32 random bits the words' lower halves are 0 and cannot
        # carry, so a doubt is settled (see lowprec.rounding._sr_bits)
        if mode == SR and rshift < 32 and counts[:, 6].any():
            ci, cf = make_consts(plan, 64, int(rshift))
            unsure = np.flatnonzero(counts[:, 6])
            _redo_blocks(x, out, unsure, ci, cf, counting, seed, words, counts)
        if not counting:
            return (0, 0, 0, 0, 0, 0)
        return tuple(counts[:, :6].sum(axis=0).tolist())

    return run
