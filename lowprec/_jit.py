"""Every Numba option lowprec uses, in one place.

``cache=True`` so a kernel compiles once per machine; ``nogil=True`` so callers can
thread; ``error_model="numpy"`` so division follows IEEE 754 instead of raising.
``fastmath`` is never on: it lets LLVM contract ``a*b + c`` into an FMA, reassociate
sums and ignore the sign of zero, each of which breaks bit-exact emulation.
"""

from numba import njit

JIT = dict(cache=True, nogil=True, error_model="numpy")
JIT_PARALLEL = dict(JIT, parallel=True)

jit = njit(**JIT)
jit_parallel = njit(**JIT_PARALLEL)
# Small helpers are inlined at the Numba IR level so the caller's loop vectorizes.
jit_inline = njit(inline="always", **JIT)
