"""The random Hadamard transform, and the ``quantize-blocks`` / ``info`` commands."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import lowprec
from lowprec.blocks.hadamard import NVFP4_SIGNS, sylvester
from lowprec.cli.app import main


def _exact_transform(x, signs, d):
    """(1/sqrt(d)) x S H_d of one tile, with Fractions (d a power of 4 here)."""
    h = [[1]]
    while len(h) < d:
        h = [r + r for r in h] + [r + [-v for v in r] for r in h]
    root = {4: 2, 16: 4, 64: 8}[d]
    return [sum(Fraction(x[i]) * signs[i] * h[i][j] for i in range(d)) / root
            for j in range(d)]


@pytest.mark.parametrize("d", [4, 16, 64])
def test_hadamard_matches_the_exact_transform_on_small_integers(d):
    rng = np.random.default_rng(d)
    x = rng.integers(-50, 50, size=(3, 2 * d)).astype(np.float64)
    signs = NVFP4_SIGNS if d == 16 else tuple(rng.choice([-1, 1], size=d))
    y = lowprec.hadamard(x, d, signs=signs)
    for r in range(3):
        for t in range(2):
            want = _exact_transform(x[r, t * d:(t + 1) * d], signs, d)
            assert [Fraction(v) for v in y[r, t * d:(t + 1) * d]] == want


def test_hadamard_is_orthogonal_and_its_own_inverse_without_signs():
    h = sylvester(16)
    assert np.array_equal(h @ h.T, 16 * np.eye(16))
    x = np.arange(32.0)
    back = lowprec.hadamard(lowprec.hadamard(x, signs=[1] * 16), signs=[1] * 16)
    assert np.allclose(back, x, rtol=0, atol=1e-12)


def test_hadamard_spreads_an_outlier_along_the_axis_and_rounds():
    x = np.zeros((16, 2))
    x[3, 1] = 100.0
    y = lowprec.hadamard(x, axis=0, round_output="bf16")
    assert np.all(np.abs(y[:, 1]) == 25.0) and not y[:, 0].any()
    with pytest.raises(ValueError, match="multiple of d=16"):
        lowprec.hadamard(np.ones(10))
    with pytest.raises(ValueError, match="power of two"):
        lowprec.hadamard(np.ones(12), d=12)
    with pytest.raises(ValueError, match="signs"):
        lowprec.hadamard(np.ones(16), signs=[2] * 16)


def test_quantize_blocks_command_prints_scale_codes_values_and_errors(capsys):
    values = ",".join(str(v) for v in np.arange(32) / 2 - 5)
    assert main(["quantize-blocks", values, "--format", "mxfp4_e2m1"]) == 0
    out = capsys.readouterr().out
    assert "block 0: scale code 0x80 = 2^1 (e8m0)" in out
    line = next(row for row in out.splitlines() if row.strip().startswith("31 "))
    assert line.split() == ["31", "10.5", "0x7", "12", "1.5", "0.143"]


def test_quantize_blocks_command_pads_and_shows_nvfp4_scales(capsys):
    assert main(["quantize-blocks", "1", "-0.3", "6.5", "--format", "nvfp4"]) == 0
    out = capsys.readouterr().out
    assert "tensor scale S_enc" in out and "scale code 0x7e = 448.0" in out


@pytest.mark.parametrize("argv, match", [
    (["quantize-blocks", "1", "--format", "mxfp3"], "--format"),
    (["quantize-blocks", "x1"], "VALUES"),
    (["quantize-blocks", "1", "--rule", "te"], "--rule"),
    (["quantize-blocks", "1", "--rounding", "up"], "--rounding"),
    (["quantize-blocks", "1", "--dtype", "int8"], "--dtype"),
])
def test_quantize_blocks_command_errors_are_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_info_lists_the_block_formats(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for f in lowprec.blocks.block_formats():
        assert f"\n{f.name} " in out
    assert main(["info", "nvfp4"]) == 0
    out = capsys.readouterr().out
    assert "block_size          16" in out and "tensor_scale        fp32" in out
