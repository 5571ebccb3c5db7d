"""Unscaling gradients in place and checking them for inf/NaN in one pass.

:meth:`lowprec.amp.scaler.LossScaler.unscale_` checks the optimizer and its step
state, then calls :func:`unscale_arrays`; the Numba kernel beside it does the
work for contiguous arrays.
"""

from __future__ import annotations

import numpy as np

from lowprec._jit import jit

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_FLOATS = (np.float32, np.float64)


@jit
def _unscale_kernel(g, inv):
    """``g *= inv`` in place (1-D float32 or float64); True if any product is inf
    or NaN. One pass instead of NumPy's multiply, isfinite and all.

    ``inv`` arrives as a float64 holding a float32 value. For float64 ``g`` the
    product is float64 arithmetic. For float32 ``g`` the float64 product of two
    float32 values is exact (24 + 24 <= 53 bits), so storing it rounds once: the
    bits of the float32 product (overflow and subnormals included).
    """
    bad = False
    for i in range(g.size):
        v = g[i] * inv
        g[i] = v
        bad |= not np.isfinite(g[i])
    return bad


def unscale_arrays(grads: list[np.ndarray], scale: np.float32) -> bool:
    """Multiply every array of ``grads`` by the float32 reciprocal of ``scale``,
    in place; True if any result is inf or NaN.

    Every array is checked (a numpy float32 or float64 array) before any is
    changed, and all are unscaled even when one overflows.

    Raises
    ------
    TypeError
        If an element is not a numpy array.
    ValueError
        If an array is not float32/float64.
    """
    for i, g in enumerate(grads):
        if not isinstance(g, np.ndarray):
            raise TypeError(
                f"optimizer.gradients()[{i}] must be a numpy array, got "
                f"{type(g).__name__}"
            )
        dtype = g.dtype
        if dtype is not _F32 and dtype is not _F64 and dtype not in _FLOATS:
            raise ValueError(
                f"optimizer.gradients()[{i}] has dtype {g.dtype}: attempting "
                "to unscale low-precision gradients; master gradients must "
                "be float32 (or float64)"
            )
    # Double reciprocal, then float: float32 division can be inexact under
    # some compiler options, so PyTorch takes 1/S in float64 and rounds it
    # to float32 (with IEEE division both give the correctly rounded 1/S:
    # double rounding is harmless for a quotient when 53 >= 2*24 + 2).
    inv_scale = np.float32(1.0 / float(scale))
    inv = float(inv_scale)  # exact; a Python float is the cheapest kernel argument
    found_inf = False
    for g in grads:
        flags = g.flags
        if flags.c_contiguous and flags.writeable:
            # float32 * float32 -> float32, or float64 * (float32 value);
            # reshape(-1) of contiguous data is a view: unscaled in place
            found_inf |= _unscale_kernel(g.reshape(-1), inv)
            continue
        # An overflow here is reported through found_inf, not as a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            np.multiply(g, g.dtype.type(inv_scale), out=g)
        found_inf |= not np.isfinite(g).all()
    return found_inf
