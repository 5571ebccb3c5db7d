"""Classic mixed-precision algorithms, written as ordinary NumPy on emulated arrays.

Each doubles as an example of :func:`lowprec.emulate`: the same code runs in float64
on plain arrays and in any format on emulated ones.

- :mod:`~lowprec.algorithms.summation`: recursive, pairwise and compensated sums and
  their error bounds;
- :mod:`~lowprec.algorithms.lu`: LU with partial pivoting, triangular solves, the
  growth factor and the componentwise backward error;
- :mod:`~lowprec.algorithms.refinement`: LU-IR and GMRES-IR in three precisions
  (Carson and Higham 2018), and ``randsvd`` test matrices.
"""

from lowprec.algorithms.lu import (
    LUResult,
    growth_factor,
    lu,
    lu_backward_error,
    lu_solve,
)
from lowprec.algorithms.refinement import (
    RefinementResult,
    backward_error,
    gmres_ir,
    lu_ir,
    randsvd,
)
from lowprec.algorithms.summation import (
    emulated_sum,
    exact_sum,
    summation_bound,
    summation_errors,
)

__all__ = [
    "LUResult",
    "RefinementResult",
    "backward_error",
    "emulated_sum",
    "exact_sum",
    "gmres_ir",
    "growth_factor",
    "lu",
    "lu_backward_error",
    "lu_ir",
    "lu_solve",
    "randsvd",
    "summation_bound",
    "summation_errors",
]
