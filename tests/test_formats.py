"""Format constants against numpy.finfo and ml_dtypes.finfo, and the factory's checks."""

import dataclasses

import ml_dtypes
import numpy as np
import pytest

import lowprec

# lowprec format -> dtype whose finfo is the oracle
FINFO_ORACLES = {
    "fp16": np.float16,
    "fp32": np.float32,
    "fp64": np.float64,
    "bf16": ml_dtypes.bfloat16,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "fp8_e4m3": ml_dtypes.float8_e4m3,
    "fp8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "fp8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "fp6_e2m3fn": ml_dtypes.float6_e2m3fn,
    "fp6_e3m2fn": ml_dtypes.float6_e3m2fn,
    "fp4_e2m1fn": ml_dtypes.float4_e2m1fn,
}


def finfo(dtype):
    return np.finfo(dtype) if dtype in (np.float16, np.float32, np.float64) else (
        ml_dtypes.finfo(dtype))


@pytest.mark.parametrize("name", sorted(FINFO_ORACLES))
def test_constants_equal_finfo(name):
    fmt = lowprec.as_format(name)
    fi = finfo(FINFO_ORACLES[name])
    assert fmt.bits == fi.bits
    assert fmt.nmant == fi.nmant
    assert fmt.nexp == fi.nexp
    assert fmt.minexp == fi.minexp
    assert fmt.maxexp == fi.maxexp
    assert fmt.machep == fi.machep
    assert fmt.negep == fi.negep
    for attr in ("max", "smallest_normal", "smallest_subnormal", "eps", "epsneg",
                 "tiny"):
        assert getattr(fmt, attr) == float(getattr(fi, attr)), attr


def test_documented_maxima():
    # OCP 8-bit spec (2023) and OCP MX spec v1.0 table values
    assert lowprec.fp8_e4m3fn.max == 448
    assert lowprec.fp8_e4m3.max == 240
    assert lowprec.fp8_e5m2.max == 57344
    assert lowprec.fp8_e4m3fnuz.max == 240
    assert lowprec.fp8_e5m2fnuz.max == 57344
    assert lowprec.fp6_e2m3fn.max == 7.5
    assert lowprec.fp6_e3m2fn.max == 28
    assert lowprec.fp4_e2m1fn.max == 6
    assert lowprec.tf32.precision == 11 and lowprec.tf32.bits == 19
    # tf32 keeps fp32's range with 10 stored bits: max = (2 - 2**-10) * 2**127
    assert lowprec.tf32.max == lowprec.fp32.max - 2.0**104 * (2**13 - 1)


def test_special_value_flags():
    assert lowprec.fp16.has_inf and lowprec.fp16.has_nan
    assert not lowprec.fp8_e4m3fn.has_inf and lowprec.fp8_e4m3fn.has_nan
    assert not lowprec.fp8_e4m3fnuz.has_negative_zero
    assert not lowprec.fp4_e2m1fn.has_nan and not lowprec.fp4_e2m1fn.has_inf
    assert lowprec.fp8_e4m3fn.nan_code == 0x7F
    assert lowprec.fp8_e4m3fnuz.nan_code == 0x80
    assert lowprec.fp16.nan_code == 0x7E00 and lowprec.fp16.inf_code == 0x7C00
    assert lowprec.bf16.max_code == 0x7F7F


@pytest.mark.parametrize(
    "alias, name",
    [("float16", "fp16"), ("half", "fp16"), ("binary16", "fp16"), ("HALF", "fp16"),
     ("bfloat16", "bf16"), ("float32", "fp32"), ("single", "fp32"),
     ("float8_e4m3fn", "fp8_e4m3fn"), ("e5m2", "fp8_e5m2"), ("tensorfloat32", "tf32"),
     ("float4_e2m1fn", "fp4_e2m1fn"), ("double", "fp64")],
)
def test_aliases(alias, name):
    assert lowprec.as_format(alias) is getattr(lowprec, name)


def test_as_format_accepts_dtypes_and_formats():
    assert lowprec.as_format(np.float16) is lowprec.fp16
    assert lowprec.as_format(np.dtype(ml_dtypes.bfloat16)) is lowprec.bf16
    assert lowprec.as_format(lowprec.bf16) is lowprec.bf16


def test_as_format_errors():
    with pytest.raises(ValueError, match="unknown format 'fp17'.*fp16"):
        lowprec.as_format("fp17")
    with pytest.raises(TypeError, match="fmt must be"):
        lowprec.as_format(16)
    with pytest.raises(ValueError, match="dtype"):
        lowprec.as_format(np.int32)


def test_format_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        lowprec.fp16.precision = 12


def test_builtins_equal_factory_output():
    assert lowprec.custom_format(11, 5, name="fp16") == lowprec.fp16
    f = lowprec.custom_format(11, 5)
    assert f.name == "e5m10" and f.max == 65504.0


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(precision=1, exponent_bits=5), ValueError, "precision"),
        (dict(precision=54, exponent_bits=5), ValueError, "precision"),
        (dict(precision=11, exponent_bits=1), ValueError, "exponent_bits"),
        (dict(precision=11, exponent_bits=12), ValueError, "exponent_bits"),
        (dict(precision=11.0, exponent_bits=5), TypeError, "precision"),
        (dict(precision=True, exponent_bits=5), TypeError, "precision"),
        (dict(precision=11, exponent_bits=5, specials="nan"), ValueError, "specials"),
        (dict(precision=11, exponent_bits=5, bias=1.5), TypeError, "bias"),
        (dict(precision=11, exponent_bits=11, bias=-1), ValueError, "bias"),
        (dict(precision=11, exponent_bits=11, bias=1030), ValueError, "bias"),
        (dict(precision=11, exponent_bits=5, subnormals="no"), TypeError, "subnormals"),
        (dict(precision=11, exponent_bits=5, name=3), TypeError, "name"),
    ],
)
def test_custom_format_rejects_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lowprec.custom_format(**kwargs)


@pytest.mark.parametrize("p", [2, 8, 24, 53])
@pytest.mark.parametrize("e", [2, 5, 8, 11])
@pytest.mark.parametrize("specials", ["ieee", "fn", "fnuz", "none"])
def test_custom_constants_from_first_principles(p, e, specials):
    if e == 11 and specials != "ieee":
        # the all-ones exponent holds numbers: emax = 1024 is beyond float64
        with pytest.raises(ValueError, match="emax=1024"):
            lowprec.custom_format(p, e, specials=specials)
        return
    f = lowprec.custom_format(p, e, specials=specials)
    bias = 2 ** (e - 1) - 1
    assert f.bits == 1 + e + p - 1
    assert f.emin == 1 - bias
    top = 2**e - 1 - (specials == "ieee")
    assert f.emax == top - bias
    top_sig = 2**p - 1 - (specials == "fn")  # fn: all-ones significand is NaN
    assert f.max == top_sig * 2.0 ** (f.emax - p + 1)
    assert f.smallest_subnormal == 2.0 ** (f.emin - p + 1)
    assert f.eps == 2.0 ** (1 - p)
    assert np.dtype(f.code_dtype).itemsize * 8 >= f.bits
