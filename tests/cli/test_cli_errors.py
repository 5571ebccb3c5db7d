"""The command line never shows a traceback (issue 14, section 1).

Every subcommand runs against a table of bad values and of unwritable output
paths, in process through ``lowprec.cli.main``: each case exits nonzero, names the
option or argument on stderr and prints no traceback. Two real runs of the
command prove the same of the console script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import lowprec.training.loop as loop
from lowprec.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``lowprec ARGV`` in process: (status, stdout, stderr)."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's own errors (usage, exit 2)
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


TINY = ("--epochs", "1", "--hidden", "4", "--dataset", "blobs", "--quiet")

# (argv, what stderr must name)
BAD_VALUES = [
    (("round", "abc", "--to", "fp16"), "VALUE"),
    (("round", "1/0", "--to", "fp16"), "VALUE"),
    (("round", "-1/0", "--to", "fp16"), "VALUE"),
    (("round", "2**2000", "--to", "fp16"), "VALUE"),
    (("round", "1e999999999", "--to", "fp16"), "VALUE"),
    (("round", "0x", "--to", "fp16"), "VALUE"),
    (("round", "0x1pq", "--to", "fp16"), "VALUE"),
    (("round", "nan", "--to", "fp4_e2m1fn"), "VALUE"),
    (("round", "-nan", "--to", "fp6_e2m3fn"), "VALUE"),
    (("round", "1", "--to", "fp17"), "--to"),
    (("round", "1"), "--to"),
    (("round", "--to", "fp16"), "VALUE"),
    (("round", "1", "--to", "fp16", "--rounding", "sideways"), "--rounding"),
    (("round", "1", "--to", "fp16", "--seed", "-1"), "--seed"),
    (("round", "1", "--to", "fp16", "--seed", "x"), "--seed"),
    (("info", "fp17"), "FMT"),
    (("info", "--markdown", "fp17"), "FMT"),
    (("matmul-error", "--sizes", "0"), "--sizes"),
    (("matmul-error", "--sizes", "-5"), "--sizes"),
    (("matmul-error", "--sizes", "16,abc"), "--sizes"),
    (("matmul-error", "--sizes", ""), "--sizes"),
    (("matmul-error", "--sizes", "16,,64"), "--sizes"),
    (("matmul-error", "--presets", "fp17"), "--presets"),
    (("matmul-error", "--dist", "cauchy"), "--dist"),
    (("matmul-error", "--seed", "-2"), "--seed"),
    (("bench", "--fast"), "--fast"),
    (("train", "--lr", "abc", *TINY), "--lr"),
    (("train", "--lr", "-1e-3", *TINY), "--lr"),
    (("train", "--lr", "1/0", *TINY), "--lr"),
    (("train", "--epochs", "0", "--quiet"), "--epochs"),
    (("train", "--batch-size", "-3", "--quiet"), "--batch-size"),
    (("train", "--momentum", "2", "--quiet"), "--momentum"),
    (("train", "--hidden", "a,b", "--quiet"), "--hidden"),
    (("train", "--policy", "fp12", "--quiet"), "--policy"),
    (("train", "--loss-scale", "always", "--quiet"), "--loss-scale"),
    (("compare", "--runs", "fp32:sometimes", *TINY), "--runs"),
    (("compare", "--runs", "fp32,fp32", *TINY), "--runs"),
    (("compare", "--epochs", "-1", "--quiet"), "--epochs"),
    (("memory", "--params", "abc", "--policy", "fp32"), "--params"),
    (("memory", "--params", "7B", "--policy", "fp32", "--zero", "5"), "--zero"),
    (("memory", "--params", "7B", "--policy", "fp32", "--world-size", "-2"),
     "--world-size"),
    (("memory", "--params", "-7e9", "--policy", "fp32"), "--params"),
    (("info", "--markdown", "mxfp8_e4m3"), "--markdown"),
    (("quantize-blocks", "1", "abc"), "VALUES"),
    (("quantize-blocks", "1", "--format", "mxfp17"), "--format"),
    (("sweep",), "SPEC.toml"),
    (("sweep", "--report", "no_such.db"), "--report"),
]


def _id(v):
    return " ".join(v) if isinstance(v, tuple) else v


@pytest.mark.parametrize(("argv", "names"), BAD_VALUES, ids=_id)
def test_bad_values_give_one_line_naming_the_option(capsys, argv, names):
    status, out, err = run(capsys, *argv)
    assert status != 0
    assert names in err
    assert f"lowprec {argv[0]}: error: " in err
    assert "Traceback" not in out + err
    if argv[0] == "round":  # decided before printing anything
        assert out == ""


OUTPUTS = [("train", "--json", "x.json"), ("compare", "--json", "x.json"),
           ("compare", "--png", "x.png")]


def _bad_paths(tmp_path):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir").mkdir()
    paths = {
        "missing dir": str(tmp_path / "no_such_dir" / "sub"),
        "parent is a file": str(tmp_path / "a_file"),
        "path is a dir": None,
        "read-only fs": "/proc",
    }
    if os.geteuid() != 0:  # root writes through permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        paths["unwritable dir"] = str(locked)
    return paths


@pytest.mark.parametrize(("command", "option", "name"), OUTPUTS)
def test_bad_output_paths_are_refused_before_the_work(capsys, tmp_path, monkeypatch,
                                                      command, option, name):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the output path")

    monkeypatch.setattr(loop, "train", no_training)
    for case, where in _bad_paths(tmp_path).items():
        path = str(tmp_path / "a_dir") if where is None else os.path.join(where, name)
        status, out, err = run(capsys, command, option, path, *TINY)
        assert status != 0, case
        assert f"lowprec {command}: error: argument {option}: " in err, case
        assert out == "" and "Traceback" not in err, case


def test_output_check_names_the_problem(capsys, tmp_path):
    _, _, err = run(capsys, "train", "--json", str(tmp_path / "nope" / "x.json"))
    assert "does not exist" in err
    _, _, err = run(capsys, "train", "--json", str(tmp_path))
    assert "is a directory" in err


def test_ctrl_c_during_train_is_one_line_and_130(capsys, monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", interrupted)
    path = tmp_path / "x.json"
    status, _, err = run(capsys, "train", "--json", str(path), *TINY)
    assert status == 130
    assert err == "lowprec train: interrupted\n"
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_ctrl_c_during_compare_writes_the_finished_runs(capsys, monkeypatch,
                                                        tmp_path):
    real = loop.train
    calls = []

    def second_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train", second_interrupted)
    path = tmp_path / "c.json"
    status, out, err = run(capsys, "compare", "--runs", "fp32,bf16_mixed,fp16_mixed",
                           "--json", str(path), *TINY)
    assert status == 130
    assert "lowprec compare: interrupted after 1 of 3 runs; writing" in err
    assert "Traceback" not in err
    log = json.loads(path.read_text())
    assert list(log["runs"]) == ["fp32"]
    assert "fp32" in out and "bf16_mixed" not in out.splitlines()[-1]


def test_a_diverged_run_says_so_and_is_marked(capsys, tmp_path):
    path = tmp_path / "d.json"
    status, out, err = run(capsys, "train", "--lr", "1e30", "--json", str(path),
                           "--policy", "fp32", *TINY)
    assert status == 0
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "diverged" in warning[0]
    summary = json.loads(path.read_text())["meta"]["summary"]
    assert summary["diverged"] and "final loss NaN" in summary["diverged"]


def test_a_healthy_run_is_not_marked(capsys, tmp_path):
    path = tmp_path / "ok.json"
    status, _, err = run(capsys, "train", "--lr", "0.05", "--json", str(path),
                         "--policy", "fp32", *TINY)
    assert status == 0 and "warning" not in err
    assert json.loads(path.read_text())["meta"]["summary"]["diverged"] is None


def test_negative_numbers_are_values(capsys):
    for value in ("-1e999", "-inf", "-0x1p-3", "-1/3", "-.5", "-5", "-1e-400"):
        status, out, err = run(capsys, "round", value, "--to", "fp16")
        assert status == 0, (value, err)
        assert out.startswith(f"input      {value}\n")
    # an option's value too: refused by its own check, not read as an option
    status, _, err = run(capsys, "train", "--momentum", "-0.5e-1", "--quiet")
    assert status == 2 and "--momentum" in err and "expected one argument" not in err


def test_help_shows_the_defaults(capsys):
    expected = {
        "round": ["(default: ties_to_even)", "(default: 0)"],
        "matmul-error": ["(default: 16,64,256,1024,4096)", "(default: uniform)"],
        "train": ["(default: fp16_mixed)", "(default: 0.1)", "(default: 64)",
                  "(default: digits)", "(default: None)"],
        "compare": ["(default: 1048.576)", "(default: 9.5367431640625e-07)"],
        "memory": ["(default: adam)", "(default: 1)"],
    }
    for command, defaults in expected.items():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        for d in defaults:
            assert d in " ".join(out.split()), (command, d)


def test_aliases(capsys):
    for mode in ("nearest", "rne"):
        status, out, _ = run(capsys, "round", "0.1", "--to", "bfloat",
                             "--rounding", mode)
        assert status == 0 and "(ties_to_even to bf16)" in out


def test_info_markdown_of_one_format(capsys):
    status, out, _ = run(capsys, "info", "--markdown", "fp16")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 3
    assert lines[0].startswith("| name | bits |")
    assert lines[2].startswith("| fp16 | 16 |")


def test_overflow_neighbours_say_so(capsys):
    _, out, _ = run(capsys, "round", "1e5", "--to", "fp8_e4m3fn")
    assert "below      448.0 " in out
    assert "above      overflow" in out and "above 448.0" in out
    _, out, _ = run(capsys, "round", "-1e5", "--to", "fp16")
    assert "below      overflow" in out and "above      -65504.0 " in out
    _, out, _ = run(capsys, "round", "65504", "--to", "fp16")
    assert "below      65472.0 " in out and "above      overflow" in out


def test_relative_error_of_a_value_that_rounds_to_zero_is_minus_one(capsys):
    _, out, _ = run(capsys, "round", "1e-400", "--to", "fp16")
    assert "error      -1e-400  (relative -1)" in out
    _, out, _ = run(capsys, "round", "-1e999", "--to", "fp16", "--saturate")
    assert "rounded    -65504.0 " in out and "error      1e+999  (relative -1)" in out


def test_save_falls_back_to_the_temporary_directory(capsys, tmp_path):
    from lowprec.cli._parser import save

    gone = tmp_path / "gone" / "x.json"  # checked at start, vanished since
    status = save("lowprec train", "--json", str(gone),
                  lambda tmp: tmp.write_text("{}"), "log")
    err = capsys.readouterr().err
    assert status == 1 and "lowprec train: error: --json: cannot write" in err
    spare = err.rsplit("saved to ", 1)[1].strip()
    try:
        with open(spare) as saved:  # closed, or a ResourceWarning
            assert saved.read() == "{}"
    finally:
        os.unlink(spare)


def _console():
    exe = shutil.which("lowprec")
    return [exe] if exe else [sys.executable, "-m", "lowprec.cli"]


@pytest.mark.parametrize("argv", [
    ("round", "1e999", "--to", "fp16"),
    ("train", "--json", "no_such_dir/sub/x.json", "--epochs", "1"),
])
def test_console_script_never_shows_a_traceback(tmp_path, argv):
    result = subprocess.run([*_console(), *argv], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert "Traceback" not in result.stdout + result.stderr
    if argv[0] == "round":
        assert result.returncode == 0 and "rounded    inf  " in result.stdout
    else:
        assert result.returncode == 2 and "argument --json" in result.stderr


def test_a_closed_pipe_is_not_an_error(tmp_path):
    # lowprec info | head -1: the reader leaves before lowprec has written
    proc = subprocess.Popen([*_console(), "info"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()
    err = proc.communicate(timeout=300)[1].decode()
    assert err == "" and proc.returncode == 1
