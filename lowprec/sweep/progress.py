"""The progress line of a sweep: done, failed and running points, and an ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["SweepProgress"]


class SweepProgress:
    """A one-line progress bar on stderr for a sweep; silent when disabled.

    ``done`` counts the points already in the store at the start with those
    finished since; the ETA is the time per point finished in this call so
    far, times the points left. As with the training bar, a terminal gets the
    line redrawn in place, a log file only the final line.

    Examples
    --------
    >>> import io
    >>> bar = SweepProgress(3, 1, stream=io.StringIO())
    >>> bar.finished("done"); bar.finished("failed")
    >>> bar.close()
    >>> bar.stream.getvalue().split(" ETA")[0]
    'sweep [##############################] 3/3 done 2 failed 1 running 0'
    """

    def __init__(
        self,
        total: int,
        done: int = 0,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        width: int = 30,
    ) -> None:
        self.total, self.done, self.failed, self.running = total, done, 0, 0
        self.enabled, self.width = enabled, width
        self.stream = sys.stderr if stream is None else stream
        self._start_done, self._t0, self._last = done, time.monotonic(), 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def set_running(self, n: int) -> None:
        """Set the number of points in flight."""
        self.running = n
        self._maybe_draw()

    def finished(self, status: str) -> None:
        """Count one point finished with ``status`` (``"done"`` or ``"failed"``)."""
        self.done += status == "done"
        self.failed += status == "failed"
        self._maybe_draw()

    def eta(self) -> float | None:
        """Seconds left, from this call's pace (None before the first point)."""
        new = self.done + self.failed - self._start_done
        if new <= 0:
            return None
        left = self.total - self.done - self.failed
        return (time.monotonic() - self._t0) / new * left

    def line(self) -> str:
        """The progress line, without the carriage return."""
        finished = min(self.done + self.failed, self.total)
        filled = self.width * finished // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        eta = self.eta()
        when = "?" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta))
        return (
            f"sweep [{bar}] {finished}/{self.total} done {self.done} "
            f"failed {self.failed} running {self.running} ETA {when}"
        )

    def _maybe_draw(self) -> None:
        now = time.monotonic()
        if self.enabled and self._tty and now - self._last >= 0.1:
            self._last = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line (nothing runs after it)."""
        self.running = 0
        if self.enabled:
            self.stream.write(("\r" if self._tty else "") + self.line() + "\n")
            self.stream.flush()
