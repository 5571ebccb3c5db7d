"""The ``lowprec`` command: the top layer, which imports from every other.

- :mod:`~lowprec.cli.app`: the parser, ``round``, ``info``, ``matmul-error`` and
  ``bench``, and :func:`main` (the console script);
- :mod:`~lowprec.cli.training`: ``train`` and ``compare``.
"""

from lowprec.cli.app import main

__all__ = ["main"]
