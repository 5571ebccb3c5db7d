"""The pieces every ``lowprec`` subcommand shares: the parser, output paths.

- :class:`Parser` reads ``-1e999``, ``-inf`` and ``-0x1p-3`` as values, not as
  options, and shows each option's default in ``--help``;
- :func:`output_path` is the ``type=`` of an option naming a file to write: the
  path is checked when the command line is read, before any work starts;
- :func:`save` writes an output atomically, and if that fails after a long run
  anyway, saves it to the temporary directory rather than lose it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from lowprec._atomic import check_writable, replacing

__all__ = ["Parser", "output_path", "save", "seed"]

# argparse reads a word that starts with "-" as an option unless it matches this
# (``^-\d+$|^-\d*\.\d+$`` in Python 3.11: not -1e999, -inf, -0x1p3 or -1/3).
# No option of lowprec starts with a digit, ".", "inf" or "nan", so these words
# can only be values.
_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help ends with its default, except where none applies."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # a required option has no default; "(default: None)" after a help that
        # says what happens by default would only contradict it
        if action.required or (action.default is None
                               and "default" in (action.help or "")):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that takes negative numbers as values and shows defaults.

    Its subparsers are Parsers too (argparse makes them of the parent's class).
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _DefaultsHelp)
        super().__init__(*args, **kwargs)
        # argparse has no public hook for this; the attribute is what
        # _parse_optional consults (3.11 to 3.13), and tests/cli checks it works
        self._negative_number_matcher = _NEGATIVE_NUMBER


def output_path(text: str) -> str:
    """The ``type=`` of an option that names an output file: check it now.

    A missing or unwritable directory, or a path that is a directory, is an
    error that argparse prints naming the option, before any work starts.
    """
    try:
        check_writable(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def seed(text: str) -> int:
    """The ``type=`` of a ``--seed`` option: an int, 0 or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def save(prog: str, option: str, path: str, write: Callable[[Path], None],
         what: str) -> int:
    """Write an output through ``write(tmp)`` atomically; return an exit status.

    ``path`` was checked before the run, but a disk can fill or a directory
    vanish during it: then the output goes to the temporary directory instead
    (one line on stderr says where) and the status is 1, so a finished run is
    never lost to its output path.
    """
    try:
        with replacing(path) as tmp:
            write(tmp)
    except OSError as err:
        suffix = Path(path).suffix
        fd, spare = tempfile.mkstemp(prefix="lowprec-", suffix=suffix)
        os.close(fd)
        with replacing(spare) as tmp:
            write(tmp)
        print(f"{prog}: error: {option}: cannot write {path!r} "
              f"({err.strerror or err}); the {what} was saved to {spare}",
              file=sys.stderr)
        return 1
    print(f"{what} written to {path}")
    return 0
