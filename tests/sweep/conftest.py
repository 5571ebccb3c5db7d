"""A real Dask cluster for the sweep tests: a ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1, started as subprocesses and stopped by
their PIDs whatever the tests do."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _dask_cli() -> list[str]:
    exe = shutil.which("dask", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "dask"]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process we started, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Cluster:
    """The processes of a test cluster and how to reach it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs, self.workers = tmp, [], []
        self.scheduler_file = tmp / "scheduler.json"
        self.env = {**os.environ, "NUMBA_NUM_THREADS": "1"}

    def start_scheduler(self) -> None:
        self.procs.append(self._spawn(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(self.scheduler_file),
        ))  # fmt: skip
        deadline = time.monotonic() + 60
        while (
            not self.scheduler_file.is_file() or not self.scheduler_file.stat().st_size
        ):
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            assert self.procs[0].poll() is None, "the dask scheduler exited"
            time.sleep(0.1)
        self.address = json.loads(self.scheduler_file.read_text())["address"]

    def start_worker(self) -> subprocess.Popen:
        # --no-nanny: the PID we start is the worker itself, so a SIGKILL of it
        # is a worker dying, not a nanny restarting one
        proc = self._spawn(
            "worker", "--scheduler-file", str(self.scheduler_file),
            "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
            "--no-dashboard",
        )  # fmt: skip
        self.procs.append(proc)
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=60)

    def _spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{args[0]}-{len(self.procs)}.log", "w")  # noqa: SIM115
        return subprocess.Popen(
            [*_dask_cli(), *args], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two workers; every process stopped by its PID after."""
    pytest.importorskip("distributed")
    cluster = Cluster(tmp_path)
    try:
        cluster.start_scheduler()
        cluster.start_worker()
        cluster.start_worker()
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()
