"""Exhaustive boundary sweeps: every code of a format, its neighbours and midpoints.

For every code of the 8-bit-and-smaller built-ins and of fp16 and bf16, the inputs
are the code's value, both float64 neighbours of it, the exact midpoint to the next
code up and both neighbours of that midpoint (see ``oracles.boundary_inputs``),
plus the specials. ``lowprec.round`` must match, bit for bit:

* the exact Fraction oracle (8-bit and smaller: all deterministic modes);
* NumPy's float16 cast and ml_dtypes' bfloat16 cast from float32 (ties_to_even);
* MPFR and the Fraction oracle for every fp16/bf16 mode (``@pytest.mark.slow``);
* from float32 inputs (their own neighbours), bf16 and tf32, which the float32
  kernel rounds on the integer path alone: the Fraction oracle near the subnormal
  range, MPFR over every bf16 code (slow);
* ``lowprec.rounding.reference.round_reference``, values and exception counts.
"""

from __future__ import annotations

import functools
import itertools

import ml_dtypes
import numpy as np
import pytest
from oracles import (
    DETERMINISTIC_MODES,
    MPFR_ROUNDING,
    SMALL_FORMATS,
    all_code_values,
    assert_same_bits,
    boundary_inputs,
    grid_of,
    round_exact_counts,
    round_mpfr,
)

import lowprec
from lowprec.rounding.reference import round_reference

WIDE_FORMATS = ("fp16", "bf16")
ML_DTYPES = {
    "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "fp8_e4m3": ml_dtypes.float8_e4m3,
    "fp8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "fp8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "fp6_e2m3fn": ml_dtypes.float6_e2m3fn,
    "fp6_e3m2fn": ml_dtypes.float6_e3m2fn,
    "fp4_e2m1fn": ml_dtypes.float4_e2m1fn,
    "fp16": np.float16,
    "bf16": ml_dtypes.bfloat16,
}
SUBNORMALS = (True, False)
SATURATE = (False, True)


@functools.cache
def inputs(name: str, dtype: str = "float64") -> np.ndarray:
    x = boundary_inputs(lowprec.as_format(name), np.dtype(dtype))
    x.setflags(write=False)
    return x


def exact(
    name: str, rounding: str, subnormals: bool, saturate: bool, dtype="float64"
) -> tuple[np.ndarray, dict[str, int]]:
    """The Fraction oracle's values and counts on ``inputs(name, dtype)``, cached."""
    return _exact(name, rounding, subnormals, saturate, str(dtype))


@functools.cache
def _exact(name, rounding, subnormals, saturate, dtype):
    fmt = lowprec.as_format(name)
    x = inputs(name, dtype)
    kw = dict(subnormals=subnormals)
    if not saturate:
        return round_exact_counts(x, fmt, rounding, saturate=False, **kw)
    # saturate only changes what lies beyond max (a value <= max rounds to at
    # most max in every mode), so only those elements are rounded again
    values, counts = _exact(name, rounding, subnormals, False, dtype)
    beyond = ~(np.abs(x) <= float(grid_of(fmt).max))
    sat, sat_counts = round_exact_counts(x[beyond], fmt, rounding, saturate=True, **kw)
    _, old_counts = round_exact_counts(x[beyond], fmt, rounding, saturate=False, **kw)
    values = values.copy()
    values[beyond] = sat
    counts = {k: counts[k] - old_counts[k] + sat_counts[k] for k in counts}
    return values, counts


def run_lowprec(x, name, rounding, subnormals, saturate):
    stats = lowprec.RoundingStats()
    got = lowprec.round(
        x,
        name,
        rounding=rounding,
        subnormals=subnormals,
        saturate=saturate,
        stats=stats,
    )
    return got, stats.as_dict()


def configs(names, modes):
    return [
        pytest.param(
            n,
            m,
            sub,
            sat,
            id=f"{n}-{m}-{'sub' if sub else 'nosub'}{'-sat' if sat else ''}",
        )
        for n, m, sub, sat in itertools.product(names, modes, SUBNORMALS, SATURATE)
    ]


# ----------------------------------------------------------- the oracles' footing


@pytest.mark.parametrize("name", [*SMALL_FORMATS, *WIDE_FORMATS])
def test_oracle_decodes_every_code_like_ml_dtypes(name):
    fmt = lowprec.as_format(name)
    dtype = ML_DTYPES[name]
    values = all_code_values(fmt)
    codes = np.arange(values.size, dtype=np.uint16 if fmt.bits > 8 else np.uint8)
    theirs = codes.view(dtype)  # sub-byte types: the code in the low bits
    with np.errstate(invalid="ignore"):  # the oracle's cast of NaN codes
        theirs = theirs.astype(np.float64)
    assert_same_bits(values, theirs, codes, name)
    assert float(grid_of(fmt).max) == fmt.max == float(ml_dtypes.finfo(dtype).max)


@pytest.mark.parametrize(
    ("name", "rounding", "subnormals", "saturate"),
    configs(SMALL_FORMATS[:2] + SMALL_FORMATS[5:], MPFR_ROUNDING),
)
def test_mpfr_oracle_agrees_with_exact_oracle(name, rounding, subnormals, saturate):
    x = inputs(name)
    want = exact(name, rounding, subnormals, saturate)[0]
    got = round_mpfr(
        x, lowprec.as_format(name), rounding, saturate=saturate, subnormals=subnormals
    )
    assert_same_bits(got, want, x, "MPFR oracle vs Fraction oracle")


# ------------------------------------------------- 8-bit and smaller: every mode


@pytest.mark.parametrize(
    ("name", "rounding", "subnormals", "saturate"),
    configs(SMALL_FORMATS, DETERMINISTIC_MODES),
)
def test_small_format_matches_exact_oracle(name, rounding, subnormals, saturate):
    x = inputs(name)
    want, want_counts = exact(name, rounding, subnormals, saturate)
    got, counts = run_lowprec(x, name, rounding, subnormals, saturate)
    assert_same_bits(got, want, x, f"lowprec.round vs oracle, {name} {rounding}")
    assert counts == want_counts


@pytest.mark.parametrize(
    ("name", "rounding", "subnormals", "saturate"),
    configs(SMALL_FORMATS, DETERMINISTIC_MODES),
)
def test_small_format_matches_reference(name, rounding, subnormals, saturate):
    x = inputs(name)
    got, counts = run_lowprec(x, name, rounding, subnormals, saturate)
    ref, ref_counts = round_reference(
        x,
        lowprec.as_format(name),
        rounding,
        saturate=saturate,
        subnormals=subnormals,
    )
    assert_same_bits(got, ref, x, f"lowprec.round vs reference, {name} {rounding}")
    assert counts == ref_counts


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("rounding", DETERMINISTIC_MODES)
@pytest.mark.parametrize("name", SMALL_FORMATS)
def test_small_format_narrow_inputs(name, rounding, dtype):
    """float16/float32 inputs, with their own neighbours, round as their values do."""
    x = inputs(name, dtype)
    want = exact(name, rounding, lowprec.as_format(name).subnormals, False, dtype)[0]
    got = lowprec.round(x, name, rounding=rounding)
    assert got.dtype == np.dtype(dtype)
    assert_same_bits(got.astype(np.float64), want, x, f"{dtype} input")


# ------------------------------------------- fp16 and bf16: the fast ties_to_even


@pytest.mark.parametrize("saturate", SATURATE)
def test_fp16_ties_to_even_matches_numpy(saturate):
    x = inputs("fp16")
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).astype(np.float64)
    if saturate:
        want = np.where(np.isinf(want), np.copysign(65504.0, want), want)
    got = lowprec.round(x, "fp16", saturate=saturate)
    assert_same_bits(got, want, x, "fp16 vs numpy.float16")


def test_bf16_ties_to_even_matches_ml_dtypes_from_float32():
    # from float32 ml_dtypes rounds once; from float64 it goes through float32
    x = inputs("bf16", "float32")
    want = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    got = lowprec.round(x, "bf16")
    assert got.dtype == np.float32
    assert_same_bits(got.astype(np.float64), want.astype(np.float64), x, "bf16")


@pytest.mark.parametrize(
    ("name", "rounding", "subnormals", "saturate"),
    configs(WIDE_FORMATS, DETERMINISTIC_MODES),
)
def test_wide_format_matches_reference(name, rounding, subnormals, saturate):
    x = inputs(name)
    got, counts = run_lowprec(x, name, rounding, subnormals, saturate)
    ref, ref_counts = round_reference(
        x,
        lowprec.as_format(name),
        rounding,
        saturate=saturate,
        subnormals=subnormals,
    )
    assert_same_bits(got, ref, x, f"lowprec.round vs reference, {name} {rounding}")
    assert counts == ref_counts


# ---------------------------- bf16 and tf32 from float32: the integer-only kernel
# Their grid below the smallest normal is float32's own subnormal grid, so the
# float32 kernel rounds every value, storage subnormals included, on the integer
# path alone (_round_kernel.has_small_path); these inputs cross that region.


@pytest.mark.parametrize("saturate", SATURATE)
@pytest.mark.parametrize("subnormals", SUBNORMALS)
@pytest.mark.parametrize("rounding", DETERMINISTIC_MODES)
@pytest.mark.parametrize("name", ["bf16", "tf32"])
def test_float32_inputs_near_the_subnormal_range(name, rounding, subnormals, saturate):
    if name == "bf16":
        x = inputs(name, "float32")
        x = x[~(np.abs(x) >= 2.0**-124)]  # the lowest binades, zeros and NaN
    else:  # (19 bits: too many codes to sweep) random float32 of those binades
        bits = np.random.default_rng(0).integers(0, 3 << 23, 4000, dtype=np.uint32)
        bits[::2] |= np.uint32(1 << 31)
        x = bits.view(np.float32)
    fmt = lowprec.as_format(name)
    want, want_counts = round_exact_counts(
        x, fmt, rounding, saturate=saturate, subnormals=subnormals
    )
    got, counts = run_lowprec(x, name, rounding, subnormals, saturate)
    assert got.dtype == np.float32
    assert_same_bits(got.astype(np.float64), want, x, f"{name} {rounding} float32")
    assert counts == want_counts


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rounding", "subnormals", "saturate"),
    configs(["bf16"], MPFR_ROUNDING),
)
def test_bf16_float32_inputs_every_code(name, rounding, subnormals, saturate):
    # (ties_to_away and to_odd: the Fraction oracle takes 20 s a sweep; the fast
    # test above covers their float32 subnormal range)
    x = inputs(name, "float32")
    want = round_mpfr(
        x.astype(np.float64),
        lowprec.as_format(name),
        rounding,
        saturate=saturate,
        subnormals=subnormals,
    )
    got = lowprec.round(
        x, name, rounding=rounding, subnormals=subnormals, saturate=saturate
    )
    assert got.dtype == np.float32
    assert_same_bits(got.astype(np.float64), want, x, f"bf16 {rounding} float32")


# ------------------------------------------------- fp16 and bf16: every mode (slow)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rounding", "subnormals", "saturate"),
    configs(WIDE_FORMATS, MPFR_ROUNDING),
)
def test_wide_format_matches_mpfr(name, rounding, subnormals, saturate):
    x = inputs(name)
    want = round_mpfr(
        x, lowprec.as_format(name), rounding, saturate=saturate, subnormals=subnormals
    )
    got = lowprec.round(
        x, name, rounding=rounding, subnormals=subnormals, saturate=saturate
    )
    assert_same_bits(got, want, x, f"lowprec.round vs MPFR, {name} {rounding}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rounding", "subnormals", "saturate"),
    configs(WIDE_FORMATS, [m for m in DETERMINISTIC_MODES if m not in MPFR_ROUNDING]),
)
def test_wide_format_matches_exact_oracle(name, rounding, subnormals, saturate):
    """ties_to_away and to_odd, which MPFR lacks, against the Fraction oracle."""
    x = inputs(name)
    want, want_counts = exact(name, rounding, subnormals, saturate)
    got, counts = run_lowprec(x, name, rounding, subnormals, saturate)
    assert_same_bits(got, want, x, f"lowprec.round vs oracle, {name} {rounding}")
    assert counts == want_counts
