"""The SQLite store: WAL mode, floats back bit for bit, each point written once."""

from __future__ import annotations

import math
import sqlite3
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sweep_helpers import bits

from lowprec.sweep.store import Store

# the floats a summary can hold that a careless encoding would change
SPECIAL = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324,
           2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 1 / 3,
           float.fromhex("0x1.ffcp15"), float.fromhex("0x1p-24")]  # fmt: skip


def result(summary, status="done", error=None):
    return {
        "status": status,
        "summary": summary,
        "steps": [{"step": 1, "loss": summary and summary.get("x"), "scale": None}],
        "evals": [],
        "error": error,
        "traceback": None,
        "wall_time": 0.25,
        "worker": "host:1",
    }


def test_special_floats_come_back_bit_for_bit(tmp_path):
    summary = {f"v{i}": v for i, v in enumerate(SPECIAL)}
    with Store(tmp_path / "s.db") as db:
        assert db.write("k", "0.1.0", {"lr": 0.1}, result(summary))
    with Store(tmp_path / "s.db") as db:
        (rec,) = db.records()
    assert bits(rec.summary) == bits(summary)
    assert (rec.status, rec.version, rec.config, rec.wall_time, rec.worker) == (
        "done", "0.1.0", {"lr": 0.1}, 0.25, "host:1",
    )  # fmt: skip


@given(st.floats(allow_nan=False))
def test_any_float64_comes_back_bit_for_bit(tmp_path_factory, x):
    path = tmp_path_factory.mktemp("h") / "s.db"
    with Store(path) as db:
        db.write("k", "v", {}, result({"x": x}))
        (rec,) = db.records()
    assert struct.pack("<d", rec.summary["x"]) == struct.pack("<d", x)
    assert struct.pack("<d", rec.steps[0]["loss"]) == struct.pack("<d", x)


def test_wal_mode_and_a_sound_file(tmp_path):
    with Store(tmp_path / "s.db") as db:
        assert db.integrity() == "ok"
    con = sqlite3.connect(tmp_path / "s.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_a_done_point_is_written_once_unless_forced(tmp_path):
    with Store(tmp_path / "s.db") as db:
        assert db.write("k", "v", {}, result(None, "failed", "ValueError: x"))
        assert db.keys("failed") == {"k"} and db.keys() == set()
        assert db.write("k", "v", {}, result({"x": 1.0}))  # a failure is replaced
        assert not db.write("k", "v", {}, result({"x": 2.0}))  # a retry: kept
        assert db.records()[0].summary == {"x": 1.0}
        assert db.write("k", "v", {}, result({"x": 3.0}), force=True)
        (rec,) = db.records()
        assert rec.summary == {"x": 3.0} and rec.error is None
        assert db.keys(None) == {"k"}


def test_records_keep_the_order_asked_and_skip_missing(tmp_path):
    with Store(tmp_path / "s.db") as db:
        for k in "abc":
            db.write(k, "v", {}, result({"x": 0.0}))
        assert [r.key for r in db.records(["c", "zz", "a"])] == ["c", "a"]


def test_a_file_that_is_not_a_database_is_a_value_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not sqlite at all, just some text " * 100)
    with pytest.raises(ValueError, match="not a usable sweep database"):
        Store(path)
