"""Sweeps on Dask: an embedded LocalCluster and a real scheduler with two workers
on 127.0.0.1 give the bits of the in-process run, a killed worker's points are
recomputed, and a scheduler that does not answer is an error, not a hang."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sweep_helpers import FAILING, TINY, record_bits, tiny_spec

from lowprec.sweep import Store, run

pytest.importorskip("distributed")


def test_a_local_cluster_gives_the_serial_bits(tmp_path):
    spec = {**tiny_spec(), "include": [FAILING]}
    serial = run(spec, scheduler="serial", store=tmp_path / "serial.db")
    local = run(spec, n_workers=2, store=tmp_path / "local.db")
    assert (local.computed, local.skipped) == (5, 0)
    assert record_bits(local.records) == record_bits(serial.records)
    assert [r.status for r in local.records].count("failed") == 1
    workers = {r.worker for r in local.records}
    assert f"{socket.gethostname()}:{os.getpid()}" not in workers  # not in-process


def test_a_cluster_by_address_and_by_scheduler_file(tmp_path, dask_cluster):
    spec = tiny_spec(policy=["fp32", "bf16_mixed"])
    serial = run(spec, scheduler="serial", store=tmp_path / "serial.db")
    by_address = run(spec, scheduler=dask_cluster.address, store=tmp_path / "a.db")
    assert record_bits(by_address.records) == record_bits(serial.records)
    by_file = run(spec, scheduler_file=dask_cluster.scheduler_file,
                  store=tmp_path / "f.db")  # fmt: skip
    assert record_bits(by_file.records) == record_bits(serial.records)


# 8 points of about 0.15 s: the sweep is still running when a worker dies
SLOW = {
    "base": {**TINY, "policy": "bf16_mixed", "batch_size": 16, "epochs": 6},
    "grid": {"seed": list(range(8))},
}


def test_a_killed_worker_s_points_are_recomputed_once(tmp_path, dask_cluster):
    spec = tmp_path / "slow.toml"
    spec.write_text(
        "[base]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in SLOW["base"].items())
        + f"[grid]\nseed = {SLOW['grid']['seed']}\n"
    )  # fmt: skip
    db = tmp_path / "s.db"
    client = subprocess.Popen(
        [sys.executable, "-m", "lowprec.cli", "sweep", str(spec), "--store", str(db),
         "--scheduler-file", str(dask_cluster.scheduler_file), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while _done(db) < 1:
            assert client.poll() is None, client.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        victim = dask_cluster.workers[0]
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        written_before = _done(db)
        out, err = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            os.kill(client.pid, signal.SIGKILL)
            client.wait()
    assert written_before < 8, "the sweep ended before the worker was killed"
    assert client.returncode == 0, err
    assert "8 points: 8 computed, 0 already done, 0 failed" in out
    with Store(db) as store:
        assert store.integrity() == "ok"
        assert len(store.keys(None)) == len(store.keys("done")) == 8
    serial = run(SLOW, scheduler="serial", store=tmp_path / "serial.db")
    with Store(db) as store:
        records = store.records([r.key for r in serial.records])
    assert record_bits(records) == record_bits(serial.records)
    pids = {r.worker.rsplit(":", 1)[1] for r in records}
    assert str(dask_cluster.workers[1].pid) in pids


def _toml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _done(path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(path, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM points").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_a_scheduler_that_does_not_answer_is_an_error_within_the_timeout(tmp_path):
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=rf"127\.0\.0\.1:{port}: no answer within 2 s"):
        run(tiny_spec(), scheduler=f"tcp://127.0.0.1:{port}", timeout=2,
            store=tmp_path / "s.db")  # fmt: skip
    assert time.monotonic() - t0 < 20
    with pytest.raises(ValueError, match="scheduler file .* does not exist"):
        run(tiny_spec(), scheduler_file=tmp_path / "none.json", store=tmp_path / "s.db")
