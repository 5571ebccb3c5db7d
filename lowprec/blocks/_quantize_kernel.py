"""The Numba kernel of block quantization, round-to-nearest-even only.

It computes what :func:`lowprec.blocks.reference.quantize_rows` states, for one
block per row, in two passes over each block: the finite amax and whether a NaN
or inf is present, then the scale and every element's code. Blocks are
independent, so the loop over them is ``prange``; each block writes its own
counts (saturated, flushed, NaN block), which the wrapper sums: the same for any
thread count.

The element cast, numbered as ml_dtypes' ``ConvertImpl`` is, on the bits of the
exact scaled value y: (1) NaN/inf get the element's special codes, (2) saturation
at max_code, (3) below the element's emin, more bits are shifted off, so the
subnormal spacing applies, (4) the significand is rounded to even by adding half
minus one plus the kept lowest bit and shifting (a carry moves to the exponent, as
it should), (5) the sign is packed.

Two element paths: float64 values and int64 bits (any input; integer elements),
and, for float32 input with a float element, float32 values and int32 bits, with
twice the vector lanes (``quantize_rows32_kernel``). Both are branch-free in the
element loop so that it vectorizes, and both are tested bit for bit against the
reference.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from lowprec import _jit
from lowprec._jit import jit_inline, jit_parallel, select
from lowprec.rounding._kernel import _source_stamp

__all__ = ["ElementPlan", "ElementPlan32", "ScalePlan", "finite_amax32_kernel",
           "quantize_rows32_kernel", "quantize_rows_kernel"]

_STAMPED = (_jit,)  # the JIT options; every helper lives in this module
_HELPERS = _source_stamp(*_STAMPED)

_MAGIC = 2.0**52  # (t + 2**52) - 2**52 rounds 0 <= t < 2**51 to an integer, to even


class ElementPlan(NamedTuple):
    """An element format as plain constants."""

    is_int: int
    nmant: int  # float: stored significand bits; int: frac_bits
    emin: int  # float: exponent of the smallest normal
    bias: int
    max: float  # float: largest value; int: max_int
    min_int: int
    max_code: int
    sign_mask: int
    code_mask: int
    nan_pos: int  # codes of NaN and inf elements, by sign
    nan_neg: int
    inf_pos: int
    inf_neg: int


class ScalePlan(NamedTuple):
    """A scale rule as plain constants."""

    rule: int  # 0 floor, 1 ceil, 2 rceil, 3 even, 4 nvfp4 te, 5 cudnn, 6 div6
    emax_elem: int
    precision: int  # the "even" rule's width
    inv_max: float  # fp32(1 / elem_max), for rceil
    lo: int  # clamp of the scale exponent
    hi: int
    bias: int
    nan_code: int
    s_enc: float  # NVFP4's per-tensor scale (fp32 value)
    inv_s_enc: float  # fp32(1 / s_enc), the same for every block


@intrinsic
def _bits_of(typingctx, x):
    """The int64 bit pattern of a float64 (in jitted code)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(x), codegen


@intrinsic
def _float_of(typingctx, b, like):
    """The float whose bit pattern is the low bits of the int64 ``b``: a float32
    when ``like`` is an int32, a float64 when it is an int64."""
    out = {types.int32: types.float32, types.int64: types.float64}.get(like)
    if out is None or b != types.int64:
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        if out == types.float32:
            value = builder.trunc(value, ir.IntType(32))
        return builder.bitcast(value, context.get_value_type(out))

    return out(b, like), codegen


@jit_inline
def _float_code(y, e):
    """(code, saturated, zero) of the exact scaled value y (float64, normal or 0)
    in float element e, to nearest even, saturating; branch-free so that the
    element loop vectorizes."""
    b = _bits_of(y)
    sign = (b >> 63) & 1
    a = b & np.int64(0x7FFFFFFFFFFFFFFF)
    ex = (a >> 52) - 1023
    ee = max(ex, np.int64(e.emin))  # (3) below emin: the subnormal spacing
    shift = min(np.int64(52 - e.nmant) + (ee - ex), np.int64(62))
    sig = (a & np.int64(0xFFFFFFFFFFFFF)) | np.int64(1 << 52)
    half = (np.int64(1) << (shift - 1)) - 1
    q = (sig + half + ((sig >> shift) & 1)) >> shift  # (4) to even; carries
    mag = ((ee - e.emin) << e.nmant) + q
    mag = min(mag, np.int64(e.max_code))  # (2) saturate
    mag = select(a == 0, np.int64(0), mag)
    return mag | (sign * np.int64(e.sign_mask)), abs(y) > e.max, mag == 0


@jit_inline
def _int_code(t, e):
    """(code, saturated, zero) of t = y * 2**frac_bits, y the scaled value, in
    integer element e: round t to an integer, to even, then clamp."""
    sat = (t > e.max) | (t < e.min_int)
    t = min(max(t, e.min_int - 1.0), e.max + 1.0)  # keeps the magic sum exact
    k = (abs(t) + _MAGIC) - _MAGIC
    k = select(t < 0, -k, k)
    ki = min(max(np.int64(k), np.int64(e.min_int)), np.int64(e.max))
    return ki & np.int64(e.code_mask), sat, ki == 0


@jit_inline
def _pow2(k):
    """``2.0**k`` for -1022 <= k <= 1023, built from its bits (no libm call)."""
    return _float_of(np.int64(k + 1023) << 52, np.int64(0))


@jit_inline
def _log2_parts(v):
    """(floor(log2 v), whether v is a power of two, its 52 fraction bits) of a
    float64 v > 0 (a subnormal v gives -1023: every rule clamps it to -127)."""
    b = _bits_of(v)
    frac = b & np.int64(0xFFFFFFFFFFFFF)
    return ((b >> 52) & 0x7FF) - 1023, frac == 0, frac


@jit_inline
def _mx_exponent(amax, s):
    """The clamped scale exponent of a block whose finite amax is ``amax``."""
    if amax == 0:
        return np.int64(s.lo)
    ex, pow2, frac = _log2_parts(amax)
    if s.rule == 0:  # floor
        k = ex - s.emax_elem
    elif s.rule == 1:  # ceil
        k = ex + (0 if pow2 else 1) - s.emax_elem
    elif s.rule == 3:  # even: round the significand to `precision` bits first
        sig = frac | np.int64(1 << 52)
        shift = 53 - s.precision
        q = (sig + (np.int64(1) << (shift - 1)) - 1 + ((sig >> shift) & 1)) >> shift
        k = ex + (1 if q == (np.int64(1) << s.precision) else 0) - s.emax_elem
    else:  # rceil: the fp32 descale, rounded up to a power of two
        d = np.float32(amax) * np.float32(s.inv_max)
        if d == 0:
            return np.int64(s.lo)
        if d == np.inf:
            return np.int64(s.hi)
        dex, dpow2, _ = _log2_parts(np.float64(d))
        k = dex + (0 if dpow2 else 1)
    return min(max(np.int64(k), np.int64(s.lo)), np.int64(s.hi))


@jit_inline
def _block_scale(amax, s, scale_e, scale_values):
    """(scale code, fp32 encode factor, float64 power-of-two factor) of a block."""
    if s.rule >= 4:  # NVFP4: TE's fp32 chain
        a32 = np.float32(amax)
        senc = np.float32(s.s_enc)
        if s.rule == 4:
            pre = a32 * (senc * np.float32(1.0 / 6.0))
        elif s.rule == 5:
            pre = senc * (a32 * np.float32(1.0 / 6.0))
        else:
            pre = (a32 / np.float32(6.0)) * senc
        sc, _, _ = _float_code(np.float64(pre), scale_e)
        sb = np.float32(scale_values[sc])
        enc = np.float32(1.0) / (sb * np.float32(s.inv_s_enc))
        return sc, min(enc, np.float32(3.4028234663852886e38)), 1.0
    k = _mx_exponent(amax, s)
    return np.int64(k + s.bias), np.float32(1.0), _pow2(-k)


@jit_inline
def _special_code(v, e):
    """(1) The code of a NaN or inf element: the element's NaN or inf code, or
    ±max where it has neither."""
    neg = v < 0
    return select(v != v, select(neg, np.int64(e.nan_neg), np.int64(e.nan_pos)),
                  select(neg, np.int64(e.inf_neg), np.int64(e.inf_pos)))


@jit_inline
def _float_loop(rows, i, out, e, factor, fp32_chain):
    """The codes of one block in float element e; branch-free, so it vectorizes.
    MX: y = x * 2**-k, exact in float64 (an underflow rounds to 0 either way);
    NVFP4 (``fp32_chain``): y = fp32(x * encode)."""
    n_sat = 0
    n_flush = 0
    for j in range(rows.shape[1]):
        v = np.float64(rows[i, j])
        fin = abs(v) < np.inf
        if fp32_chain:
            y = np.float64(np.float32(rows[i, j]) * np.float32(factor))
        else:
            y = v * factor
        c, sat, zero = _float_code(select(fin, y, 0.0), e)
        out[i, j] = select(fin, c, _special_code(v, e))
        n_sat += select(fin & sat, 1, 0)
        n_flush += select(fin & zero & (v != 0), 1, 0)
    return n_sat, n_flush


@jit_inline
def _int_loop(rows, i, out, e, factor):
    """The codes of one block in integer element e."""
    n_sat = 0
    n_flush = 0
    f = factor * _pow2(e.nmant)  # exact: powers of two
    for j in range(rows.shape[1]):
        v = np.float64(rows[i, j])
        fin = abs(v) < np.inf
        c, sat, zero = _int_code(select(fin, v * f, 0.0), e)
        out[i, j] = select(fin, c, _special_code(v, e))
        n_sat += select(fin & sat, 1, 0)
        n_flush += select(fin & zero & (v != 0), 1, 0)
    return n_sat, n_flush


@jit_inline
def _quantize_block(rows, bits, i, out, e, s, scale_e, scale_values, counts,
                    absmask, infbits):
    """Quantize one block into ``out``; its counts into ``counts``; return the
    scale code. ``bits`` is the row's bit pattern (int32 or int64)."""
    amax_b = np.int64(0)  # (int32 bits are widened: Numba computes in int64)
    special = False
    for j in range(rows.shape[1]):  # the finite amax, on the bits: they sort as |x|
        a = bits[i, j] & absmask
        fin = a < infbits
        amax_b = max(amax_b, select(fin, np.int64(a), np.int64(0)))
        special |= not fin
    amax = np.float64(_float_of(amax_b, absmask))
    sc, enc, factor = _block_scale(amax, s, scale_e, scale_values)
    if e.is_int:
        n_sat, n_flush = _int_loop(rows, i, out, e, factor)
    elif s.rule >= 4:
        n_sat, n_flush = _float_loop(rows, i, out, e, np.float64(enc), True)
    else:
        n_sat, n_flush = _float_loop(rows, i, out, e, factor, False)
    counts[0, i] = n_sat
    counts[1, i] = n_flush
    counts[2, i] = 1 if special else 0
    return s.nan_code if special else sc


def _make_kernel():
    helpers = _HELPERS

    @jit_parallel
    def quantize_rows_kernel(rows, bits, codes, scales, counts, e, s, scale_e,
                             scale_values, absmask, infbits):
        """Quantize each row (a block) of ``rows`` into ``codes`` and ``scales``;
        ``counts[i]`` gets block i's (saturated, flushed, NaN block) counts.

        ``scale_e``/``scale_values``: NVFP4's e4m3 scale as an element plan and the
        value of each of its codes (unused for MX).
        """
        if helpers < 0:  # (never: the stamp only keys the cache)
            return
        for i in prange(rows.shape[0]):
            scales[i] = _quantize_block(rows, bits, i, codes, e, s, scale_e,
                                        scale_values, counts, absmask, infbits)

    return quantize_rows_kernel


quantize_rows_kernel = _make_kernel()


# -- the float32 path: float32 input, float elements ------------------------------
# For float32 rows the element loop runs on float32 values and int32 bits, twice
# the lanes of the float64 path (measured about 8x faster). y = x * 2**-k is then
# a float32 product: exact unless it is a float32 subnormal, below 2**-126, where
# every element format's code is 0 to nearest anyway (their smallest subnormal is
# 2**-16 or more). NumPy's ufuncs keep int32 operands int32 in Numba, where the
# operators would widen them to int64.
_I = np.int32
_add, _sub, _and, _or = np.add, np.subtract, np.bitwise_and, np.bitwise_or
_shl, _shr = np.left_shift, np.right_shift


class ElementPlan32(NamedTuple):
    """A float element format as int32 constants (and its max as a float32)."""

    nmant: np.int32
    emin: np.int32
    max_code: np.int32
    sign_mask: np.int32
    nan_pos: np.int32
    nan_neg: np.int32
    inf_pos: np.int32
    inf_neg: np.int32
    max: np.float32


@intrinsic
def _bits32(typingctx, x):
    """The int32 bit pattern of a float32 (in jitted code)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(x), codegen


@intrinsic
def _float32_of(typingctx, b):
    """The float32 whose bit pattern is the int32 ``b``."""
    if b != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(b), codegen


@jit_inline
def _float_code32(y, e):
    """:func:`_float_code` on a float32 y: (code, saturated, zero), int32 ops."""
    b = _bits32(y)
    a = _and(b, _I(0x7FFFFFFF))
    ex = _sub(_shr(a, _I(23)), _I(127))
    ee = max(ex, e.emin)  # (3) below emin: the subnormal spacing
    shift = min(_add(_sub(_I(23), e.nmant), _sub(ee, ex)), _I(30))
    sig = _or(_and(a, _I(0x7FFFFF)), _I(1 << 23))
    half = _sub(_shl(_I(1), _sub(shift, _I(1))), _I(1))
    q = _shr(_add(_add(sig, half), _and(_shr(sig, shift), _I(1))), shift)  # (4)
    mag = min(_add(_shl(_sub(ee, e.emin), e.nmant), q), e.max_code)  # (2)
    mag = select(a < _I(0x00800000), _I(0), mag)  # 0 and float32 subnormals: 0
    code = _or(mag, select(b < _I(0), e.sign_mask, _I(0)))  # (5)
    return code, abs(y) > e.max, mag == _I(0)


@jit_inline
def _quantize_block32(rows, bits, i, out, e, e32, s, scale_e, scale_values,
                      counts):
    """:func:`_quantize_block` for float32 rows and a float element."""
    amax_b = _I(0)
    special = False
    for j in range(rows.shape[1]):  # the finite amax, on the bits
        a = _and(bits[i, j], _I(0x7FFFFFFF))
        fin = a < _I(0x7F800000)
        amax_b = max(amax_b, select(fin, a, _I(0)))
        special |= not fin
    sc, enc, factor = _block_scale(np.float64(_float32_of(amax_b)), s, scale_e,
                                   scale_values)
    f = enc if s.rule >= 4 else np.float32(factor)  # 2**-k: exact in float32
    n_sat = _I(0)
    n_flush = _I(0)
    for j in range(rows.shape[1]):
        x = rows[i, j]
        fin = abs(x) < np.float32(np.inf)
        c, sat, zero = _float_code32(select(fin, x * f, np.float32(0.0)), e32)
        neg = bits[i, j] < _I(0)
        sp = select(x != x, select(neg, e32.nan_neg, e32.nan_pos),
                    select(neg, e32.inf_neg, e32.inf_pos))  # (1) NaN and inf
        out[i, j] = select(fin, c, sp)
        n_sat = _add(n_sat, select(fin & sat, _I(1), _I(0)))
        n_flush = _add(n_flush, select(fin & zero & (x != 0), _I(1), _I(0)))
    counts[0, i] = n_sat
    counts[1, i] = n_flush
    counts[2, i] = 1 if special else 0
    return s.nan_code if special else sc


def _make_kernel32():
    helpers = _HELPERS

    @jit_parallel
    def quantize_rows32_kernel(rows, bits, codes, scales, counts, e, e32, s,
                               scale_e, scale_values):
        """:func:`quantize_rows_kernel` for float32 rows and a float element;
        ``e32`` is the element as an :class:`ElementPlan32`."""
        if helpers < 0:  # (never: the stamp only keys the cache)
            return
        for i in prange(rows.shape[0]):
            scales[i] = _quantize_block32(rows, bits, i, codes, e, e32, s, scale_e,
                                          scale_values, counts)

    return quantize_rows32_kernel


quantize_rows32_kernel = _make_kernel32()


def _make_amax32_kernel():
    helpers = _HELPERS

    @jit_parallel
    def finite_amax32_kernel(bits):
        """:func:`finite_amax_kernel` of float32 bits, in int32 (twice the lanes)."""
        if helpers < 0:
            return _I(0)
        amax_b = _I(0)
        for i in prange(bits.size):
            a = _and(bits[i], _I(0x7FFFFFFF))
            amax_b = max(amax_b, select(a < _I(0x7F800000), a, _I(0)))
        return amax_b

    return finite_amax32_kernel


finite_amax32_kernel = _make_amax32_kernel()
