"""Running a sweep: :func:`run` sends the missing points to Dask (or runs them in
this process) and writes each result to the store as it arrives.

Where the points run is the ``scheduler`` argument:

- ``None``: an embedded ``distributed.LocalCluster`` of worker processes, one
  per CPU, one thread each, Numba on one thread (``NUMBA_NUM_THREADS=1``);
- ``"tcp://HOST:PORT"`` (any Dask address), or ``scheduler_file=F``: an
  existing cluster, whatever started it;
- ``"serial"``: one after another in this process, without Dask.

Dask is the optional extra ``lowprec[distributed]``; it is imported only here,
only when a sweep runs on it, so ``import lowprec`` never needs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowprec.sweep._point import run_point
from lowprec.sweep.progress import SweepProgress
from lowprec.sweep.spec import Point, Spec, lowprec_version
from lowprec.sweep.store import PointRecord, Store

__all__ = ["EXTRA", "SweepResult", "run"]

EXTRA = "lowprec[distributed]"
SERIAL = "serial"


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run` did.

    Attributes
    ----------
    store : pathlib.Path
    points : list of Point
        Every point of the spec, in spec order.
    computed : int
        Points run (and written) by this call.
    skipped : int
        Points already done in the store, not run again.
    records : list of PointRecord
        The store's rows of the spec's points, in spec order (a point missing
        after an interruption is left out).
    """

    store: Path
    points: list[Point]
    computed: int
    skipped: int
    records: list[PointRecord]

    @property
    def failed(self) -> list[PointRecord]:
        """The records of the points that raised."""
        return [r for r in self.records if r.status == "failed"]


def run(
    spec: Spec | dict[str, Any] | str | Path,
    *,
    scheduler: Any = None,
    store: str | Path = "sweep.db",
    scheduler_file: str | Path | None = None,
    force: bool = False,
    n_workers: int | None = None,
    timeout: float = 10.0,
    progress: bool = False,
) -> SweepResult:
    """Run the points of ``spec`` that the store does not hold yet.

    Parameters
    ----------
    spec : Spec, dict or path
        A :class:`~lowprec.sweep.spec.Spec`, a dict of its tables, or the path
        of a TOML spec.
    scheduler : None, str or distributed.Client
        None: an embedded ``LocalCluster``; a Dask address such as
        ``"tcp://10.0.0.5:8786"``; ``"serial"`` to run in this process without
        Dask; or a connected ``distributed.Client`` (left open).
    store : str or Path
        The SQLite file (created if missing).
    scheduler_file : str or Path, optional
        Connect through a scheduler file (``dask scheduler --scheduler-file``)
        instead of an address.
    force : bool
        Recompute points already done.
    n_workers : int, optional
        Workers of the embedded cluster (default: the CPU count).
    timeout : float
        Seconds to wait for an existing scheduler to answer.
    progress : bool
        Draw a progress bar (done, failed, running, ETA) on stderr.

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        For a bad spec (naming the key and its line), a scheduler that does not
        answer within ``timeout``, or both ``scheduler`` and ``scheduler_file``.
    ImportError
        When a sweep needs Dask and ``lowprec[distributed]`` is not installed.

    Examples
    --------
    >>> spec = {"base": {"dataset": "blobs", "epochs": 1, "batch_size": 512,
    ...                  "hidden": [8], "telemetry": False},
    ...         "grid": {"policy": ["fp32", "bf16_mixed"]}}
    >>> import tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "sweep.db"
    >>> r = run(spec, scheduler="serial", store=db)
    >>> r.computed, r.skipped, [x.status for x in r.records]
    (2, 0, ['done', 'done'])
    >>> run(spec, scheduler="serial", store=db).computed  # resumed: nothing left
    0
    """
    spec = _as_spec(spec)
    if scheduler is not None and scheduler_file is not None:
        raise ValueError("give scheduler or scheduler_file, not both")
    if n_workers is not None and (
        isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
    ):
        raise ValueError(f"n_workers must be an int >= 1, got {n_workers!r}")
    points = spec.points()
    version = lowprec_version()
    with Store(store) as db:
        done = set() if force else db.keys("done")
        todo = [p for p in points if p.key not in done]
        bar = SweepProgress(len(points), len(points) - len(todo), enabled=progress)
        written = 0

        def record(point: Point, result: dict[str, Any]) -> None:
            nonlocal written
            written += db.write(point.key, version, point.config, result, force=force)
            bar.finished(result["status"])

        try:
            if todo:
                _execute(
                    todo, record, bar, scheduler, scheduler_file, n_workers, timeout
                )
        finally:
            bar.close()
        records = db.records([p.key for p in points])
    return SweepResult(
        store=Path(store),
        points=points,
        computed=written,
        skipped=len(points) - len(todo),
        records=records,
    )


def _as_spec(spec: Any) -> Spec:
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return Spec.from_dict(spec)
    if isinstance(spec, str | Path):
        return Spec.from_toml(spec)
    raise TypeError(
        f"spec must be a Spec, a dict or the path of a TOML file, "
        f"got {type(spec).__name__}"
    )


def _execute(
    todo: list[Point],
    record: Callable[[Point, dict[str, Any]], None],
    bar: SweepProgress,
    scheduler: Any,
    scheduler_file: str | Path | None,
    n_workers: int | None,
    timeout: float,
) -> None:
    if scheduler == SERIAL:
        bar.set_running(1)
        for point in todo:
            record(point, run_point(point.config))
        return
    with _client(scheduler, scheduler_file, n_workers, timeout) as client:
        _run_on_dask(client, todo, record, bar)


def _run_on_dask(
    client: Any,
    todo: list[Point],
    record: Callable[[Point, dict[str, Any]], None],
    bar: SweepProgress,
) -> None:
    """Submit every point, then write each result as it completes."""
    from distributed import as_completed

    futures = {
        client.submit(run_point, p.config, key=f"lowprec-sweep-{p.key}", pure=False): p
        for p in todo
    }
    threads = max(sum(client.nthreads().values()), 1)
    left = len(futures)
    bar.set_running(min(threads, left))
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 -- e.g. KilledWorker: record it
                result = {
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                    "wall_time": 0.0,
                    "worker": "",
                }
            record(futures[future], result)
            left -= 1
            bar.set_running(min(threads, left))
            future.release()
    finally:
        with suppress(Exception):  # a dead scheduler cannot cancel anything
            client.cancel([f for f in futures if not f.done()])


@contextmanager
def _client(
    scheduler: Any,
    scheduler_file: str | Path | None,
    n_workers: int | None,
    timeout: float,
) -> Iterator[Any]:
    """A connected ``distributed.Client``, closed (with its cluster) on exit."""
    try:
        import distributed
    except ImportError:
        raise ImportError(
            f"running a sweep on Dask needs the optional extra: pip install "
            f"'{EXTRA}' (or pass scheduler='serial')"
        ) from None
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(
            "scheduler must be None, 'serial', a Dask address such as "
            f"'tcp://HOST:PORT' or a distributed.Client, got {type(scheduler).__name__}"
        )
    cluster = None
    if scheduler is None and scheduler_file is None:
        cluster = _local_cluster(distributed, n_workers)
        scheduler = cluster
    elif scheduler_file is not None and not Path(scheduler_file).is_file():
        raise ValueError(f"scheduler file {str(scheduler_file)!r} does not exist")
    try:
        try:
            client = distributed.Client(
                scheduler,
                scheduler_file=None if scheduler_file is None else str(scheduler_file),
                timeout=timeout,
                set_as_default=False,
            )
        except (OSError, TimeoutError) as exc:
            where = scheduler if scheduler_file is None else f"file {scheduler_file}"
            raise ValueError(
                f"scheduler {where}: no answer within {timeout:g} s ({exc})"
            ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _local_cluster(distributed: Any, n_workers: int | None) -> Any:
    """The embedded cluster: processes, 1 thread each, Numba on one thread."""
    one = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return distributed.LocalCluster(
        n_workers=n_workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        env=one,
        silence_logs=40,  # logging.ERROR: Dask's info lines would hide the bar
    )
