"""The engine's round-to-nearest kernel (:mod:`lowprec.rounding._rne`) against
:func:`lowprec.round`, around every midpoint of the formats it serves."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import F, same_bits

import lowprec
from lowprec.rounding._rne import round_rne, round_rne_into


def _probes(fmt):
    """Every finite value of fmt (both signs), its midpoints, and one float32 step
    either side of each value and midpoint; plus specials and random floats."""
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    vals = np.asarray(lowprec.decode(codes, fmt), dtype=np.float64)
    vals = np.unique(vals[np.isfinite(vals)])
    mids = (vals[:-1] + vals[1:]) / 2  # exact in float64
    centre = np.concatenate([vals, mids, [fmt.max + (fmt.max - vals[-2]) / 2]])
    centre = centre.astype(np.float32)  # exact: fp16/bf16 midpoints fit float32
    up = np.nextafter(centre, np.float32(np.inf))
    down = np.nextafter(centre, np.float32(-np.inf))
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(10_000).astype(np.float32) * np.float32(1e3)
    tiny = rng.standard_normal(10_000).astype(np.float32) * np.float32(1e-6)
    special = np.array(
        [0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45], dtype=np.float32
    )
    return np.concatenate([centre, up, down, noise, tiny, special])


KERNEL_FORMATS = [
    lowprec.fp16,
    lowprec.bf16,
    lowprec.tf32,
    lowprec.fp8_e5m2,
    lowprec.fp8_e4m3,
]


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_fast_paths_equal_lowprec_round(fmt):
    x = _probes(fmt)
    same_bits(round_rne(x, fmt), lowprec.round(x, fmt))
    nan = np.array([np.nan, -np.nan], dtype=np.float32)
    nan_payload = np.array([0x7F800001, 0xFFFFFFFF], dtype=np.uint32).view(np.float32)
    assert np.isnan(round_rne(np.concatenate([nan, nan_payload]), fmt)).all()


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_on_a_sweep_of_all_float32_bit_patterns(fmt):
    # every 4093rd bit pattern (a prime stride: all low-bit residues occur), so
    # every binade, the target's subnormals and float32's own, inf and NaN
    codes = np.arange(0, 1 << 32, 4093, dtype=np.uint64).astype(np.uint32)
    x = codes.view(np.float32)
    got, want = round_rne(x, fmt), np.asarray(lowprec.round(x, fmt))
    nan = np.isnan(x)
    assert np.isnan(got[nan]).all()
    same_bits(got[~nan], want[~nan])


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_from_float64_equals_lowprec_round(fmt):
    x32 = _probes(fmt)
    x = x32.astype(np.float64)
    rng = np.random.default_rng(2)
    # float64 values between float32 neighbours, where a plain float32 cast would
    # round first: both sides of every midpoint by less than a float32 step
    x = x[np.isfinite(x)]
    nudge = rng.uniform(-1, 1, x.size) * np.abs(x) * 2.0**-30
    extra = np.array(
        [
            1e300,
            -1e300,
            1e-300,
            -1e-300,
            3.3947e38,
            1 + 2**-11 + 2**-40,
            np.inf,
            -np.inf,
        ]
    )
    x = np.concatenate([x, x + nudge, extra])
    same_bits(round_rne(x, fmt), lowprec.round(x, fmt))


def same_bits_or_nan(a, b):
    a, b = np.asarray(a), np.asarray(b)
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    same_bits(a[~nan], b[~nan])


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_of_a_sum_is_correctly_rounded(fmt):
    rng = np.random.default_rng(3)
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    vals = np.asarray(lowprec.decode(codes, fmt), dtype=F)
    vals = vals[~np.isnan(vals)]
    # operands of the format: lowprec.add is the exact sum rounded once
    a, b = rng.choice(vals, 20_000), rng.choice(vals, 20_000)
    same_bits_or_nan(round_rne(a, fmt, plus=b), lowprec.add(a, b, fmt))
    # float32 operands near midpoints: compare where float64 holds the exact sum
    a = _probes(fmt)
    a = a[np.abs(a) < 1e37]  # (keeps b finite)
    # b within 2**-28 of a's size: the float64 sum of two float32 values is exact
    b = rng.standard_normal(a.size) * np.abs(a) * 2.0 ** rng.integers(-28, 1, a.size)
    b = b.astype(F)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = a64 + b64
    bb = exact - a64
    ok = (a64 - (exact - bb)) + (b64 - bb) == 0  # TwoSum: no rounding error
    assert ok.mean() > 0.95
    expected = np.asarray(lowprec.round(exact[ok], fmt)).astype(F)
    same_bits(round_rne(a[ok], fmt, plus=b[ok]), expected)
    # float64 data take the same route through float32 rounded to odd
    same_bits(round_rne(a64[ok], fmt, plus=b64[ok]), expected.astype(np.float64))


def test_round_rne_identity_and_other_formats():
    x = np.array([0.1, 1e-30], dtype=np.float32)
    assert round_rne(x, lowprec.fp32) is x
    y = np.array([0.1, 1e-300])
    assert round_rne(y, lowprec.fp64) is y
    same_bits(round_rne(y, lowprec.fp16), lowprec.round(y, lowprec.fp16))
    same_bits(round_rne(x, lowprec.fp8_e4m3fn), lowprec.round(x, lowprec.fp8_e4m3fn))
    z = np.array([0.1, 1e-300, 1e-45, 3.4028235e38, 3.4028236e38, 1e39, -1e-46])
    same_bits(round_rne(z, lowprec.fp32), lowprec.round(z, lowprec.fp32))


@pytest.mark.parametrize(
    "fmt",
    [lowprec.fp16, lowprec.bf16, lowprec.fp32, lowprec.fp8_e4m3fn],
    ids=lambda f: f.name,
)
def test_round_rne_into_equals_round_rne(fmt):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((8, 6)) * 2.0 ** rng.integers(-30, 20, (8, 6))).astype(F)
    y = (rng.standard_normal((8, 6)) * 2.0**-12).astype(F)
    for plus in (None, y):
        want = round_rne(x, fmt, plus=plus)
        out = np.empty_like(x)
        round_rne_into(out, x, fmt, plus=plus)  # into another array
        same_bits(out, want)
        w = x.copy()
        round_rne_into(w, w, fmt, plus=plus)  # in place
        same_bits(w, want)
        t = np.zeros((6, 8), F).T  # not C-contiguous: the general path
        round_rne_into(t, x, fmt, plus=plus)
        same_bits(t, want)
