"""The sweep store: an embedded SQLite database in WAL mode, one row per point.

Only the client writes it, one transaction per result, as each result arrives;
a point already ``done`` is never written again unless forced, so a retried
task cannot write twice. WAL mode with ``synchronous=FULL`` keeps every
committed row through a killed client, and readers (``--report``, a second
client) never block the writer.

The rows are keyed by :func:`~lowprec.sweep.spec.point_key`. Metrics and logs
are JSON text; Python's ``json`` writes a float by ``repr``, which reads back
to the same bits (``-0.0``, NaN and infinities included).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["PointRecord", "Store"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key       TEXT PRIMARY KEY,
    version   TEXT NOT NULL,
    config    TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    summary   TEXT,
    steps     TEXT,
    evals     TEXT,
    error     TEXT,
    traceback TEXT,
    wall_time REAL,
    worker    TEXT,
    finished  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = (
    "key",
    "version",
    "config",
    "status",
    "summary",
    "steps",
    "evals",
    "error",
    "traceback",
    "wall_time",
    "worker",
    "finished",
)
_JSON = ("config", "summary", "steps", "evals")


@dataclass(frozen=True)
class PointRecord:
    """One row of the store, its JSON columns decoded.

    Attributes
    ----------
    key, version : str
    config : dict
        The canonical :class:`~lowprec.training.TrainConfig` dict.
    status : str
        ``"done"`` or ``"failed"``.
    summary : dict or None
        The run's summary (without its wall time); None if it failed.
    steps, evals : list of dict or None
        The per-step and evaluation records.
    error, traceback : str or None
        Why the point failed.
    wall_time : float
        Seconds the point took on its worker.
    worker : str
        ``host:pid`` of the process that ran it.
    finished : str
        When the client wrote it (UTC, ISO 8601).
    """

    key: str
    version: str
    config: dict[str, Any]
    status: str
    summary: dict[str, Any] | None
    steps: list[dict[str, Any]] | None
    evals: list[dict[str, Any]] | None
    error: str | None
    traceback: str | None
    wall_time: float
    worker: str
    finished: str


class Store:
    """The SQLite file of a sweep; a context manager that closes it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.db"
    >>> with Store(path) as store:
    ...     store.keys()
    set()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"store {str(self.path)!r}: not a usable sweep database ({exc})"
            ) from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (everything written is already committed)."""
        self._db.close()

    def keys(self, status: str | None = "done") -> set[str]:
        """The keys of the rows with ``status`` (None: every row)."""
        if status is None:
            rows = self._db.execute("SELECT key FROM points")
        else:
            rows = self._db.execute(
                "SELECT key FROM points WHERE status = ?", (status,)
            )
        return {k for (k,) in rows}

    def write(
        self,
        key: str,
        version: str,
        config: dict[str, Any],
        result: dict[str, Any],
        *,
        force: bool = False,
    ) -> bool:
        """Write one point's result in one transaction; True if it was written.

        A point already ``done`` is kept unless ``force``; a ``failed`` row is
        replaced by the new result.
        """
        row = {
            "key": key,
            "version": version,
            "config": config,
            **{c: result.get(c) for c in _COLUMNS[3:11]},
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for column in _JSON:
            row[column] = None if row[column] is None else json.dumps(row[column])
        keep = "" if force else "WHERE points.status != 'done'"
        names, marks = ", ".join(_COLUMNS), ", ".join("?" * len(_COLUMNS))
        update = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
        with self._db:
            cursor = self._db.execute(
                f"INSERT INTO points ({names}) VALUES ({marks})"
                f" ON CONFLICT(key) DO UPDATE SET {update} {keep}",
                [row[c] for c in _COLUMNS],
            )
        return cursor.rowcount == 1

    def records(self, keys: list[str] | None = None) -> list[PointRecord]:
        """The rows (of ``keys``, in that order; missing keys are left out)."""
        cursor = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM points")
        found = {}
        for values in cursor:
            row = dict(zip(_COLUMNS, values, strict=True))
            for column in _JSON:
                if row[column] is not None:
                    row[column] = json.loads(row[column])
            found[row["key"]] = PointRecord(**row)
        if keys is None:
            return sorted(found.values(), key=lambda r: r.finished)
        return [found[k] for k in keys if k in found]

    def integrity(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``"ok"`` for a sound file)."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]
