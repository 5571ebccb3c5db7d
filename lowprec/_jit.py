"""Every Numba option lowprec uses, in one place, and two code-generation tools.

``cache=True`` so a kernel compiles once per machine; ``nogil=True`` so callers can
thread; ``error_model="numpy"`` so division follows IEEE 754 instead of raising.
``fastmath`` is never on: it lets LLVM contract ``a*b + c`` into an FMA, reassociate
sums and ignore the sign of zero, each of which breaks bit-exact emulation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import llvmlite.binding as llvm
from numba import njit
from numba.extending import intrinsic

JIT = dict(cache=True, nogil=True, error_model="numpy")
JIT_PARALLEL = dict(JIT, parallel=True)

jit = njit(**JIT)
jit_parallel = njit(**JIT_PARALLEL)
# Small helpers are inlined at the Numba IR level so the caller's loop vectorizes.
jit_inline = njit(inline="always", **JIT)


@intrinsic
def select(typingctx, cond, a, b):
    """``a if cond else b`` as one LLVM ``select`` (in jitted code).

    Numba lowers a conditional expression to branches; LLVM usually flattens them,
    but not always (several variable shifts in a row, for one), and a loop left with
    branches does not vectorize. ``a`` and ``b`` must have the same type.
    """
    if a != b:
        return None  # a typing error: convert one of them first

    def codegen(context, builder, signature, args):
        c, x, y = args
        return builder.select(c, x, y)

    return a(cond, a, b), codegen


@contextlib.contextmanager
def wide_vectors() -> Iterator[None]:
    """Compile, within this block, with LLVM's loop vectorizer sizing vectors by the
    narrowest type in the loop instead of the widest.

    A float64 loop that computes on 32-bit halves then runs eight lanes per AVX2
    instruction instead of four. The option is global to LLVM, so it is on only
    while the block compiles the kernels that want it (the cache keeps their code).
    """
    llvm.set_option("lowprec", "-vectorizer-maximize-bandwidth=true")
    try:
        yield
    finally:
        llvm.set_option("lowprec", "-vectorizer-maximize-bandwidth=false")
