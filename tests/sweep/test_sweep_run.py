"""lowprec.sweep.run in this process: results equal the training layer's, and a
sweep resumes, survives a killed client and records a failing point."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from sweep_helpers import FAILING, TINY, direct_bits, record_bits, tiny_spec

from lowprec.sweep import Spec, Store, run
from lowprec.sweep import runner as runner_module
from lowprec.sweep._point import run_point
from lowprec.sweep.progress import SweepProgress


def test_each_point_equals_the_same_run_of_train_bit_for_bit(tmp_path):
    r = run(tiny_spec(), scheduler="serial", store=tmp_path / "s.db")
    assert (r.computed, r.skipped, len(r.records)) == (4, 0, 4)
    for point, rec in zip(r.points, r.records, strict=True):
        assert rec.key == point.key and rec.status == "done"
        assert record_bits([rec])[0][2:5] == direct_bits(point.config)
        assert rec.config == point.config and rec.wall_time > 0 and rec.worker


def test_a_point_that_raises_is_recorded_failed_and_the_sweep_goes_on(tmp_path):
    spec = {**tiny_spec(policy=["fp32", "bf16_mixed"]), "include": [FAILING]}
    r = run(spec, scheduler="serial", store=tmp_path / "s.db")
    assert [x.status for x in r.records] == ["done", "done", "failed"]
    (bad,) = r.failed
    assert bad.error.startswith("ValueError: loss_scale:")
    assert "fp32 master gradients" in bad.error and "Traceback" in bad.traceback
    assert bad.summary is None and bad.config["policy"] == "fp16_pure"


class Counting:
    """run_point, counted, raising KeyboardInterrupt (Ctrl-C) at call ``stop``."""

    def __init__(self, stop: int | None = None) -> None:
        self.calls, self.stop = [], stop

    def __call__(self, config):
        if len(self.calls) == self.stop:
            raise KeyboardInterrupt
        self.calls.append(config)
        return run_point(config)


def test_an_interrupted_sweep_reruns_only_the_missing_points(tmp_path, monkeypatch):
    spec = tiny_spec(policy=["fp32", "bf16_mixed"], lr=[0.1, 0.05], seed=[0, 1])
    whole = run(spec, scheduler="serial", store=tmp_path / "whole.db")
    interrupted = Counting(stop=3)
    monkeypatch.setattr(runner_module, "run_point", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(spec, scheduler="serial", store=tmp_path / "s.db")
    with Store(tmp_path / "s.db") as db:
        assert len(db.keys()) == 3
    resumed = Counting()
    monkeypatch.setattr(runner_module, "run_point", resumed)
    r = run(spec, scheduler="serial", store=tmp_path / "s.db")
    assert len(resumed.calls) == 8 - 3 and (r.computed, r.skipped) == (5, 3)
    done_before = {p.key for p in whole.points[:3]}
    assert not done_before & {p.key for p in Spec.from_dict(spec).points()
                              if p.config in resumed.calls}  # fmt: skip
    assert record_bits(r.records) == record_bits(whole.records)
    again = Counting()
    monkeypatch.setattr(runner_module, "run_point", again)
    assert run(spec, scheduler="serial", store=tmp_path / "s.db").computed == 0
    assert again.calls == []
    run(spec, scheduler="serial", store=tmp_path / "s.db", force=True)
    assert len(again.calls) == 8


def test_a_failed_point_is_tried_again_on_a_rerun(tmp_path, monkeypatch):
    spec = {**tiny_spec(policy=["fp32"]), "include": [FAILING]}
    run(spec, scheduler="serial", store=tmp_path / "s.db")
    counted = Counting()
    monkeypatch.setattr(runner_module, "run_point", counted)
    r = run(spec, scheduler="serial", store=tmp_path / "s.db")
    assert [c["policy"] for c in counted.calls] == ["fp16_pure"]
    assert (r.computed, r.skipped, len(r.failed)) == (1, 1, 1)


# points slow enough (600 steps, about 0.15 s each) to kill the client between two
SLOW = {
    "base": {**TINY, "policy": "bf16_mixed", "batch_size": 16, "epochs": 6},
    "grid": {"seed": [0, 1, 2, 3, 4, 5]},
}


def test_a_killed_client_leaves_a_valid_store_and_the_rerun_completes(tmp_path):
    db = tmp_path / "s.db"
    code = (
        "import sys; from lowprec.sweep import run\n"
        f"run({SLOW!r}, scheduler='serial', store=sys.argv[1])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)])
    try:
        deadline = time.monotonic() + 120
        while _rows(db) < 2:
            assert proc.poll() is None, "the sweep ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    with Store(db) as store:
        assert store.integrity() == "ok"
        written = store.keys()
    assert 2 <= len(written) < 6
    r = run(SLOW, scheduler="serial", store=db)
    assert (r.computed, r.skipped) == (6 - len(written), len(written))
    whole = run(SLOW, scheduler="serial", store=tmp_path / "whole.db")
    assert record_bits(r.records) == record_bits(whole.records)


def _rows(path) -> int:
    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(path, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM points").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="spec must be"):
        run(42, store=tmp_path / "s.db")
    with pytest.raises(ValueError, match="not both"):
        run(tiny_spec(), scheduler="tcp://127.0.0.1:1", scheduler_file="f")
    with pytest.raises(ValueError, match="n_workers must be an int >= 1"):
        run(tiny_spec(), n_workers=0, store=tmp_path / "s.db")
    with pytest.raises(ValueError, match=r"grid\.lr"):
        run({"grid": {"lr": []}}, scheduler="serial", store=tmp_path / "s.db")


def test_the_progress_line_counts_done_failed_running_and_gives_an_eta():
    stream = io.StringIO()
    bar = SweepProgress(4, 1, stream=stream)
    assert bar.eta() is None and "ETA ?" in bar.line()
    bar.set_running(2)
    bar.finished("done")
    bar.finished("failed")
    assert "3/4 done 2 failed 1 running 2 ETA 00:00:" in bar.line()
    assert bar.eta() >= 0
    bar.close()
    assert stream.getvalue().endswith("running 0 ETA 00:00:00\n")
    quiet = SweepProgress(1, enabled=False, stream=io.StringIO())
    quiet.finished("done")
    quiet.close()
    assert quiet.stream.getvalue() == ""
