"""The codes of values of a format, from their bit patterns as float64: a Numba loop.

Private; :func:`lowprec.rounding._storage.pack_codes` calls it, and
:func:`lowprec.rounding._storage.pack` is its readable NumPy reference (the tests
hold the two to the same bits). The inputs are values of the format already (the
rounding is done), so packing drops only zero bits:

1. NaN and inf: the format's canonical NaN code (unsigned in fnuz formats) and
   its inf code;
2. zero: the sign alone;
3. normal in the format (float64 exponent ``e >= emin``): the biased exponent
   ``e + bias`` above the top ``nmant`` bits of the float64 significand;
4. subnormal in the format: the integer ``|x| / 2**(emin - nmant)``, the full
   float64 significand shifted right (a float64 subnormal is always one: every
   format's emin is at least -1022);
5. the sign bit on top.
"""

from __future__ import annotations

import numpy as np

from lowprec import _jit
from lowprec._jit import jit
from lowprec.rounding._kernel import _source_stamp

_STAMPED = (_jit,)
_HELPERS = _source_stamp(*_STAMPED)

_ABS = np.uint64(0x7FFFFFFFFFFFFFFF)
_MANT = np.uint64((1 << 52) - 1)
_HIDDEN = np.uint64(1 << 52)


def _make_pack():
    helpers = _HELPERS

    @jit
    def pack_kernel(x, out, nmant, bias, emin, sign_shift, inf_code, nan_code,
                    fnuz):
        """out[i] = the code of x[i] (both 1-D; x float32 or float64)."""
        if helpers < 0:  # never: the stamp only keys the cache
            return
        drop = np.uint64(52 - nmant)
        for i in range(x.size):
            b = np.float64(x[i]).view(np.uint64)  # exact (NaN: stays NaN)
            sign = b >> np.uint64(63)
            a = b & _ABS
            e = np.int64(a >> np.uint64(52)) - 1023  # unbiased; -1023: 0/subnormal
            m = a & _MANT
            if e == 1024:  # 1. NaN, inf
                code = inf_code if m == 0 else nan_code
                if m != 0 and fnuz:
                    sign = np.uint64(0)
            elif a == 0:  # 2. zero
                code = np.uint64(0)
            elif e >= emin:  # 3. normal
                code = (np.uint64(e + bias) << np.uint64(nmant)) | (m >> drop)
            else:  # 4. subnormal: value = sig * 2**(ex - 52)
                sig = m | _HIDDEN if e > -1023 else m
                ex = e if e > -1023 else np.int64(-1022)
                code = sig >> (drop + np.uint64(emin - ex))
            out[i] = code | (sign << sign_shift)  # 5. sign

    return pack_kernel


pack_kernel = _make_pack()
