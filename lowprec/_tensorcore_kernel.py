"""The Numba kernel of the tensor-core block-FMA model: integers on significands.

Private: :func:`lowprec.tensorcore.tensor_core_matmul` validates its inputs and
calls :func:`tensor_core_matmul_kernel` with plain floats arrays and ints; the
readable statement of the same computation is
:func:`lowprec.tensorcore.block_fma_reference`, and the tests compare the two bit
for bit.

Every finite value ``x`` of the input format is split once into a signed
integer significand ``M`` and an exponent ``e = max(floor(log2|x|), emin)``,
``x = M * 2**(e - (p-1))``, so a product is the integer ``Ma*Mb`` (below
``2**(2p)``, at most 2**22 here) at the scale ``2**(ea + eb - 2(p-1))``. A block
then works on int64 only:

1. the alignment exponent ``emax`` is the largest ``ea + eb`` of the nonzero
   products and the exponent of a nonzero accumulator ``c``;
2. each term is shifted to the common scale ``2**q``, ``q = emax - 23 - neab``:
   left by a few bits (at most ``23 + neab - 2(p-1)`` for a product, ``neab``
   for ``c``), or right by any amount, which truncates the magnitude;
3. the signed terms are added (|sum| < 2**33: no overflow);
4. the sum is cut to fp32's 24 bits (or its subnormal quantum) and scaled by
   ``2**q`` with ``ldexp``, exactly.

Blocks containing NaN or inf (and a ``c`` that is NaN or inf, e.g. after an
overflow) take the IEEE-like special path of :func:`_special_block`.

The loop is parallel over output rows only: each row ``i`` splits its own row of
``a`` into buffers it allocates, and writes ``out[i, :]`` alone, so the result does
not depend on the thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from lowprec._jit import jit, jit_parallel

_ACC_P = 24  # fp32 significand bits
_ACC_EMIN = -126
_ACC_EMAX = 127
_NONE = -(1 << 30)  # "no term yet" for the alignment exponent


@jit
def _split(x, p, emin):
    """(signed significand, exponent) of a finite x: ``x = M * 2**(e - p + 1)``."""
    if x == 0.0:
        return 0, 0
    ax = abs(x)
    e = math.frexp(ax)[1] - 1  # floor(log2|x|): frexp's mantissa is in [0.5, 1)
    if e < emin:
        e = emin  # subnormal: exponent emin, significand below 2**(p-1)
    m = np.int64(math.ldexp(ax, p - 1 - e))  # exact: x is a value of the format
    return (-m if x < 0.0 else m), e


@jit
def _shift(mag, sh):
    """``mag * 2**sh`` for sh >= 0, else ``floor(mag * 2**sh)``: truncation."""
    if sh >= 0:
        return mag << sh
    if sh <= -63:
        return 0
    return mag >> -sh


@jit
def _round_toward_zero_fp32(acc, q):
    """The fp32 value of ``acc * 2**q`` rounded toward zero (inf on overflow)."""
    if acc == 0:
        return 0.0  # an exact zero sum is +0
    mag = abs(acc)
    bits = math.frexp(float(mag))[1]  # bit length: mag < 2**53 converts exactly
    e = q + bits - 1
    if e > _ACC_EMAX:
        return math.inf if acc > 0 else -math.inf  # overflow gives inf
    qf = max(e, _ACC_EMIN) - _ACC_P + 1  # fp32's quantum at e (subnormal below)
    if qf > q:
        mag = _shift(mag, q - qf)
        q = qf
    d = math.ldexp(float(mag), q)  # exact: below 2**24 times a power of two
    return -d if acc < 0 else d  # a negative sum cut to zero is -0


@jit
def _special_block(a, b, i, j, start, stop, d):
    """NaN, ±inf, or 0.0 with False when the block and d are all finite."""
    nan = math.isnan(d)
    pos = d == math.inf
    neg = d == -math.inf
    for t in range(start, stop):
        x = a[i, t]
        y = b[t, j]
        if math.isnan(x) or math.isnan(y):
            nan = True
        elif math.isinf(x) or math.isinf(y):
            if x == 0.0 or y == 0.0:
                nan = True  # 0 * inf
            elif (x > 0.0) == (y > 0.0):
                pos = True
            else:
                neg = True
    if nan or (pos and neg):
        return True, math.nan
    if pos:
        return True, math.inf
    if neg:
        return True, -math.inf
    return False, 0.0


@jit
def _finite_block(asig, aexp, bsig, bexp, j, start, stop, d, frac2, neab, floor):
    """One block FMA on split inputs: row buffers asig/aexp, column j of bsig/bexp.

    ``frac2`` is ``2(p-1)``, the fraction bits of an exact product's significand.
    """
    # 1. the alignment exponent: largest product exponent ea + eb, and c's
    emax = _NONE
    for t in range(start, stop):
        if asig[t] != 0 and bsig[j, t] != 0:
            e = aexp[t] + bexp[j, t]
            if e > emax:
                emax = e
    csig, cexp = _split(d, _ACC_P, _ACC_EMIN)
    if csig != 0 and cexp > emax:
        emax = cexp
    if emax == _NONE:
        return 0.0  # no nonzero term
    if emax < floor:
        emax = floor
    q = emax - (_ACC_P - 1) - neab  # the scale of the last bit kept
    # 2.-3. shift every magnitude to the scale 2**q (truncating), add signed
    acc = 0
    for t in range(start, stop):
        prod = asig[t] * bsig[j, t]
        if prod != 0:
            mag = _shift(abs(prod), aexp[t] + bexp[j, t] - frac2 - q)
            acc += mag if prod > 0 else -mag
    if csig != 0:
        mag = _shift(abs(csig), cexp - (_ACC_P - 1) - q)
        acc += mag if csig > 0 else -mag
    # 4. one normalisation, rounded toward zero to fp32
    return _round_toward_zero_fp32(acc, q)


@jit_parallel
def tensor_core_matmul_kernel(a, b, c, out, p, emin, block, neab, floor):
    """``out = c + a @ b`` through chained tensor-core block FMAs.

    Parameters
    ----------
    a : float64 array (m, k)
        Values of the input format (p significand bits, minimum exponent emin).
    b : float64 array (k, n)
        Values of the input format.
    c : float64 array (m, n)
        The initial accumulators, fp32 values.
    out : float64 array (m, n)
        Receives the fp32 results.
    p, emin : int
        The input format's precision and minimum normal exponent.
    block : int
        Products per block FMA.
    neab : int
        Extra alignment bits kept below fp32's 24.
    floor : int
        Lower bound of the alignment exponent (-1024: none).
    """
    m, kdim = a.shape
    n = b.shape[1]
    frac2 = 2 * (p - 1)
    # split b once, column by column, so that column j is contiguous
    bsig = np.zeros((n, kdim), dtype=np.int64)
    bexp = np.zeros((n, kdim), dtype=np.int64)
    col_special = np.zeros(n, dtype=np.bool_)
    for t in range(kdim):
        for j in range(n):
            y = b[t, j]
            if math.isfinite(y):
                bsig[j, t], bexp[j, t] = _split(y, p, emin)
            else:
                col_special[j] = True
    for i in prange(m):
        asig = np.zeros(kdim, dtype=np.int64)
        aexp = np.zeros(kdim, dtype=np.int64)
        row_special = False
        for t in range(kdim):
            x = a[i, t]
            if math.isfinite(x):
                asig[t], aexp[t] = _split(x, p, emin)
            else:
                row_special = True
        for j in range(n):
            d = c[i, j]
            careful = row_special or col_special[j]
            for start in range(0, kdim, block):
                stop = min(start + block, kdim)
                if careful or not math.isfinite(d):
                    special, value = _special_block(a, b, i, j, start, stop, d)
                    if special:
                        d = value
                        continue
                d = _finite_block(
                    asig, aexp, bsig, bexp, j, start, stop, d, frac2, neab, floor
                )
            out[i, j] = d
