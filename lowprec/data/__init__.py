"""Data sets for the experiments, and the files the package ships.

- :mod:`~lowprec.data.datasets`: the bundled UCI digits (``digits.csv.gz``, see
  ``README.md`` beside it for provenance and licence) and seeded synthetic sets.
- :mod:`~lowprec.data.text`: a bundled slice of Shakespeare (``shakespeare.txt.gz``),
  a character tokenizer and seeded windows, for the GPT.

Imports nothing else of lowprec. ``lowprec.datasets`` is this package's
:mod:`~lowprec.data.datasets` module.
"""

from lowprec.data.datasets import Dataset, load_digits, make_blobs, make_spirals

__all__ = ["Dataset", "load_digits", "make_blobs", "make_spirals"]
