"""A one-line progress bar for :func:`~lowprec.training.loop.train`."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """A one-line progress bar on stderr; no dependency, silent when disabled.

    On a terminal the line is redrawn in place (at most ten times a second); when
    the stream is not a terminal (a log file, CI) only the finished line is
    written, so logs do not fill with partial lines.

    Examples
    --------
    >>> import io
    >>> bar = Progress(4, "demo", stream=io.StringIO())
    >>> for _ in range(4):
    ...     bar.update(loss=0.5)
    >>> bar.close()
    >>> bar.stream.getvalue().strip()
    'demo [##############################] 4/4 loss 0.5'
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        width: int = 30,
    ) -> None:
        self.total, self.label, self.enabled = max(int(total), 1), label, enabled
        self.stream = sys.stderr if stream is None else stream
        self.width, self.done = width, 0
        self._info: dict[str, float | str] = {}
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1, **info: float | str) -> None:
        """Advance by ``n`` and show ``info`` (e.g. ``loss=0.12``) after the bar."""
        self.done = min(self.done + n, self.total)
        if not self.enabled:
            return
        if info:
            self._info = info
        now = time.monotonic()
        if self._tty and now - self._last >= 0.1:
            self._last = now
            self._draw("\r")

    def _draw(self, prefix: str) -> None:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        info = " ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in self._info.items()
        )
        self.stream.write(
            f"{prefix}{self.label} [{bar}] {self.done}/{self.total} {info}".rstrip()
        )
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw("\r" if self._tty else "")
            self.stream.write("\n")
            self.stream.flush()
