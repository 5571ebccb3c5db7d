"""Numba kernels for emulated matrix products with a chosen accumulator and order:
the choice of kernel.

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

The modules, one concept each:

* :mod:`~lowprec.arith._matmul_steps`: the general steps (a term, an addition, a
  Kahan step), in any mode, with counts;
* :mod:`~lowprec.arith._matmul_general`: the general kernel, one loop per order
  over those steps; it is the reference;
* :mod:`~lowprec.arith._matmul_fast_steps` and :mod:`~lowprec.arith._matmul_fast`:
  the ties_to_even fast path, the same bits with a few integer operations per
  rounding, on float32 lanes when the data allow, handing the rare lanes it does
  not cover back to the general steps;
* :mod:`~lowprec.arith._matmul_operands`: the one-pass check and conversion of
  the operands of ``lowprec.matmul``'s float32 BLAS path;
* this module: which kernel a call takes.

Kernels are specialized by closure constants that are plain ints and tuples of
them and call module-level helpers only, so that Numba's cache can key on them (a
closure cell holding a dispatcher pickles differently in every process). Every
jitted function also keeps its module's ``_HELPERS``, a stamp of the source of
the modules it inlines, in its closure, so that the cache does not outlive a
change to them.
"""

from __future__ import annotations

import numpy as np

from lowprec.arith._matmul_fast import _consts, _float32_lanes, _make_fast_kernel
from lowprec.arith._matmul_general import _make_kernel
from lowprec.arith._matmul_operands import operand_test, to_float32
from lowprec.arith._matmul_steps import ORDERS
from lowprec.modes import RNE

__all__ = ["ORDERS", "matmul_kernel", "operand_test", "to_float32"]

_KERNELS: dict[tuple, object] = {}


def _cached(key, make):
    if key not in _KERNELS:
        _KERNELS[key] = make(*key[1:])
    return _KERNELS[key]


def matmul_kernel(
    mode: int,
    order: int,
    round_products: bool,
    exact_products: bool,
    counting: bool,
    lanes: str = "auto",
):
    """The kernel for one combination of compile-time choices.

    ties_to_even with exact or rounded products and no counting takes the fast
    path when the formats leave at least one bit to drop (p <= 52), on float32
    lanes when :func:`_float32_lanes` allows; the choice is made per call and
    never changes a result. ``lanes`` ("auto", "float64" or "general") is for the
    tests: "float64" keeps the fast path off float32 lanes, "general" off the fast
    path altogether.
    """
    general = _cached(
        ("general", mode, order, round_products, exact_products, counting), _make_kernel
    )
    fast_mode = mode == RNE and not counting and (exact_products or round_products)
    if lanes == "general" or not fast_mode:
        return general
    fast = _cached(("fast", order), _make_fast_kernel)

    def kernel(a, b, out, pplan, aplan, oplan, seed, rshift, rmask, words, block):
        if aplan.d0 < 1 or (round_products and pplan.d0 < 1):
            return general(
                a, b, out, pplan, aplan, oplan, seed, rshift, rmask, words, block
            )
        rs = (seed, rshift, rmask, words)
        if lanes == "auto" and not round_products and _float32_lanes(a, b, aplan):
            aw = a.astype(np.float32)
            bw = b.astype(np.float32)
            ac = _consts(aplan, 32)
            return fast(a, b, aw, bw, out, pplan, aplan, oplan, rs, block, (), ac)
        pc = _consts(pplan, 64) if round_products else ()
        ac = _consts(aplan, 64)
        return fast(a, b, a, b, out, pplan, aplan, oplan, rs, block, pc, ac)

    return kernel
