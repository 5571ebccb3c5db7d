"""The ``lowprec`` command: the top layer, which imports from every other.

- :mod:`~lowprec.cli.app`: the parser, ``round``, ``info``, ``matmul-error`` and
  ``bench``, and :func:`main` (the console script);
- :mod:`~lowprec.cli.training`: ``train`` and ``compare``;
- ``_parser`` (the shared :class:`argparse.ArgumentParser`, output-path checks,
  atomic saving) and ``_values`` (VALUE read exactly, of any size).

:func:`main` never shows a traceback: bad input is one line on stderr,
``lowprec CMD: error: ...``, and a nonzero exit status.
"""

from lowprec.cli.app import main

__all__ = ["main"]
