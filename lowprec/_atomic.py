"""Output files that appear whole or not at all: a temporary file, then a rename.

A file written in place and interrupted (Ctrl-C, a full disk, a crash) is left
truncated, and a reader cannot tell. Here each output is written to a temporary
file in the same directory and moved over the target with :func:`os.replace`,
which POSIX and Windows make atomic on one file system: the target holds the old
contents or the new ones, never a part. Imports nothing of lowprec (layer 0).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["check_writable", "replacing", "write_bytes", "write_text"]


def _temporary(path: Path) -> Path:
    """Create an empty, new temporary file beside ``path`` and return its path.

    The name keeps ``path``'s suffix last, so that a writer that picks the file
    type from the name (matplotlib's ``savefig``) still sees ``.png``. The file is
    made with mode 0o666 less the umask, as ``open(path, "w")`` would; a
    :func:`tempfile.mkstemp` file would be 0o600.
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {str(path)!r}")


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    If the block raises (or is interrupted), the temporary file is removed and
    ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with replacing(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(path)
    tmp = _temporary(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically, as UTF-8."""
    write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise ValueError unless a file can be written at ``path``.

    Checked: ``path`` is not a directory, its directory exists and is one, and a
    file can be created in it (tried, then removed: permission bits do not stop
    root, and a read-only file system is only seen by trying).
    """
    target = Path(path)
    if str(path).strip() == "":
        raise ValueError("the path is empty")
    if target.is_dir():
        raise ValueError(f"{str(path)!r} is a directory")
    parent = target.parent
    if not parent.exists():
        raise ValueError(f"the directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise ValueError(f"{str(parent)!r} is not a directory")
    try:
        _temporary(target).unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"cannot write in {str(parent)!r}: {reason}") from None
