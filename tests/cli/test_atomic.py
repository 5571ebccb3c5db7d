"""``lowprec._atomic``: outputs appear whole or not at all; paths checked first.

(Here, beside the command line that uses it, rather than in tests/: the CLI
is its only user so far.)
"""

from __future__ import annotations

import os

import pytest

from lowprec._atomic import check_writable, replacing, write_text


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "log.json"
    path.write_text("old")
    write_text(path, "new ünïcode")
    assert path.read_text(encoding="utf-8") == "new ünïcode"
    assert os.listdir(tmp_path) == ["log.json"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "log.json"
    path.write_text("old")
    for exc in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc), replacing(path) as tmp:
            tmp.write_text("half")
            raise exc
        assert path.read_text() == "old"
        assert os.listdir(tmp_path) == ["log.json"]


def test_the_temporary_keeps_the_suffix_and_the_usual_mode(tmp_path):
    plain = tmp_path / "plain.png"
    plain.write_text("")  # made as open() makes files: 0o666 less the umask
    with replacing(tmp_path / "fig.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_text("x")
    mode = (tmp_path / "fig.png").stat().st_mode & 0o777
    assert mode == plain.stat().st_mode & 0o777


def test_check_writable(tmp_path):
    check_writable(tmp_path / "x.json")  # fine, and leaves nothing behind
    assert os.listdir(tmp_path) == []
    (tmp_path / "f").write_text("")
    cases = {
        str(tmp_path): "is a directory",
        str(tmp_path / "no" / "x.json"): "does not exist",
        str(tmp_path / "f" / "x.json"): "is not a directory",
        "/proc/x.json": "cannot write in '/proc'",
        "": "empty",
    }
    for path, message in cases.items():
        with pytest.raises(ValueError, match=message):
            check_writable(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_check_writable_refuses_a_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="cannot write in"):
        check_writable(locked / "x.json")
