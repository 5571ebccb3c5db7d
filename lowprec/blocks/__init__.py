"""Block-scaled formats: a shared scale per small block of elements (placeholder).

This is where OCP Microscaling (MX v1.0: ``mxfp8_e4m3``, ``mxfp4_e2m1``, ...) and
NVIDIA's NVFP4 will live, following torchao's ``mx_formats`` split:

- ``block_format.py``: the ``BlockFormat`` record (element format, block size,
  scale format, scale rule, optional second-level scale) and the built-ins;
- ``quantize.py``: ``quantize_blocks`` / ``BlockArray.dequantize``, a pure function
  over NumPy arrays, with its Numba kernel as ``_quantize_kernel.py``;
- ``reference.py``: the exact (``fractions``) statement of the scale rules;
- ``block_matmul.py``: block-scaled dot products and their accumulation models.

The layer stands on :mod:`lowprec.formats`, :mod:`lowprec.rounding` and
:mod:`lowprec.arith` (tensor-core models), and below :mod:`lowprec.amp`, whose FP8
and FP4 training recipes use it. Nothing is here yet: see ``ARCHITECTURE.md``.
"""
