"""The lowprec command line: info and round."""

import subprocess
import sys

import pytest

from lowprec.cli.app import main, parse_value


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_info_table_lists_every_builtin(capsys):
    status, out, _ = run(capsys, "info")
    assert status == 0
    for name in ("fp16", "bf16", "tf32", "fp8_e4m3fn", "fp8_e5m2fnuz", "fp4_e2m1fn"):
        assert f"\n{name} " in out
    assert "65504" in out and "448" in out


def test_info_one_format(capsys):
    status, out, _ = run(capsys, "info", "half")
    assert status == 0
    assert "Format('fp16'" in out and "0x7c00" in out and "65504.0" in out


def test_round_prints_value_bits_error_and_neighbours(capsys):
    status, out, _ = run(capsys, "round", "0.1", "--to", "fp16")
    assert status == 0
    assert "rounded    0.0999755859375" in out
    assert "0 01011 1001100110" in out
    assert "below      0.0999755859375" in out
    assert "above      0.10003662109375" in out
    assert "error      -2.44141e-05" in out


def test_round_representable_value_shows_adjacent_values(capsys):
    _, out, _ = run(capsys, "round", "1", "--to", "fp8_e4m3fn")
    assert "below      0.9375" in out and "above      1.125" in out


def test_round_directed_and_saturate(capsys):
    _, out, _ = run(capsys, "round", "1000", "--to", "fp8_e4m3fn", "--saturate")
    assert "rounded    448.0" in out
    _, out, _ = run(capsys, "round", "0.1", "--to", "bf16", "--rounding",
                    "toward_zero")
    assert "rounded    0.099609375" in out


def test_decimal_input_is_not_double_rounded():
    # 1 + 2**-11 + 1e-23 is just above an fp16 tie; float64 would land on the tie
    x = parse_value("1.00048828125000000000001", 11)
    assert x > 1 + 2**-11


def test_errors_name_the_argument(capsys):
    status, _, err = run(capsys, "round", "0.1", "--to", "fp17")
    assert status == 2 and "--to: unknown format 'fp17'" in err
    status, _, err = run(capsys, "round", "abc", "--to", "fp16")
    assert status == 2 and "VALUE: cannot read 'abc'" in err
    with pytest.raises(SystemExit):
        main(["round", "0.1", "--to", "fp16", "--rounding", "sideways"])


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "lowprec.cli", "info", "bf16"],
                            capture_output=True, text=True, check=True)
    assert "Format('bf16'" in result.stdout


def test_matmul_error_prints_errors_and_bounds(capsys):
    status, out, _ = run(capsys, "matmul-error", "--sizes", "8,64", "--presets",
                         "fp16_fp16acc,fp16_fp32acc")
    assert status == 0
    lines = out.strip().splitlines()
    assert "fp16_fp16acc" in lines[1] and "gamma_n(fp16)" in lines[1]
    n8 = lines[2].split()
    assert n8[0] == "8"
    # fp32 accumulation is far more accurate than fp16 accumulation
    assert float(n8[2]) < float(n8[1])
    # and the fp16-accumulated error is within gamma_n of the fp16 accumulator
    assert float(n8[1]) <= float(n8[3])


def test_matmul_error_rejects_unknown_preset(capsys):
    status, _, err = run(capsys, "matmul-error", "--presets", "fp17")
    assert status == 2 and "--presets: unknown preset 'fp17'" in err
