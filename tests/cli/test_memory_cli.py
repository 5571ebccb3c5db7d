"""The ``lowprec memory`` command: the ZeRO table, and one-line errors."""

from __future__ import annotations

import pytest

from lowprec.cli.app import main


def run(capsys, *argv):
    status = main(["memory", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("stage", "total"), [("0", "120.0"), ("1", "31.4"), ("2", "16.6"), ("3", "1.9")]
)
def test_the_papers_example(capsys, stage, total):
    status, out, err = run(
        capsys,
        "--params",
        "7.5B",
        "--policy",
        "fp16_mixed",
        "--optimizer",
        "adam",
        "--world-size",
        "64",
        "--zero",
        stage,
    )
    assert status == 0 and err == ""
    assert "GB = 10^9 bytes" in out
    total_row = next(line for line in out.splitlines() if line.startswith("total"))
    assert total_row.split()[-1] == total
    assert "K = 12 bytes per parameter" in out


def test_params_as_an_exponent_and_activations(capsys):
    status, out, _ = run(
        capsys,
        "--params",
        "7.5e9",
        "--policy",
        "bf16_pure",
        "--optimizer",
        "sgd",
        "--activations-gb",
        "3",
    )
    assert status == 0
    assert "7,500,000,000 parameters, policy bf16_pure, optimizer sgd" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:10]}
    assert rows["activations"][-1] == "3.0"
    assert rows["total"][-1] == "48.0"  # 6 bytes x 7.5e9 + 3 GB


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--params", "0", "--params must be a positive whole number"),
        ("--params", "-7B", "--params must be a positive whole number"),
        ("--params", "many", "--params: cannot read 'many'"),
        ("--world-size", "0", "--world-size must be >= 1, got 0"),
        ("--world-size", "two", "--world-size must be an int"),
        ("--zero", "4", "--zero must be in 0..3, got 4"),
        ("--zero", "-1", "--zero must be in 0..3, got -1"),
        ("--policy", "fp12", "--policy: unknown name 'fp12'"),
        ("--optimizer", "lamb", "--optimizer: unknown name 'lamb'"),
        ("--activations-gb", "-1", "--activations-gb must be a finite number"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(capsys, option, value, message):
    options = {"--params": "1B", "--policy": "fp32", option: value}
    # OPTION=VALUE, so that argparse reads "-7B" as a value, not an option
    status, out, err = run(capsys, *(f"{k}={v}" for k, v in options.items()))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("lowprec memory: error: " + message)
