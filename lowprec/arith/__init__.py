"""Emulated arithmetic: exact results rounded once, and accumulation models.

- :mod:`~lowprec.arith.elementwise`: ``add``, ``subtract``, ``multiply``,
  ``divide``, ``sqrt``, ``fma``, each the exact result rounded once in any mode;
- :mod:`~lowprec.arith.matmul`: ``sum``, ``dot`` and ``matmul`` with a chosen input,
  product and accumulator format and order of additions, and their presets;
- :mod:`~lowprec.arith.tensorcore`: the block-FMA models of GPU tensor cores;
- :mod:`~lowprec.arith.error_analysis`: error measures and the γ_n, √n·u bounds;
- private kernels: ``_eft`` (error-free transformations), ``_pair_round``
  (rounding an exact pair once), ``_elementwise_kernel``, ``_matmul_kernel`` and
  ``_tensorcore_kernel``.

Stands on :mod:`lowprec.rounding`; imports nothing above it. The functions are
imported from their modules or from the top level (``lowprec.matmul(...)``), so
that each name here means one thing: ``lowprec.arith.matmul`` is the module.
"""
