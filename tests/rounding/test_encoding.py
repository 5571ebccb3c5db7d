"""encode/decode/fields/describe against numpy.float16 and ml_dtypes bit views."""

import ml_dtypes
import numpy as np
import pytest

import lowprec

VIEW_ORACLES = {
    "fp16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "fp8_e4m3": ml_dtypes.float8_e4m3,
    "fp8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "fp8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
}


def oracle_values(name):
    """Every code's value, read by numpy/ml_dtypes from the code's bits."""
    dtype = VIEW_ORACLES[name]
    fmt = lowprec.as_format(name)
    codes = np.arange(fmt.num_codes, dtype=fmt.code_dtype)
    with np.errstate(invalid="ignore"):  # the oracle's cast of NaN codes
        return codes, codes.view(dtype).astype(np.float64)


def same_bits(a, b):
    """Equal as float64 bit patterns, any NaN matching any NaN of the same sign."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    nan = np.isnan(a) & np.isnan(b)
    return np.all(nan & (np.signbit(a) == np.signbit(b)) | (a.view(np.uint64) == b.view(
        np.uint64)))


@pytest.mark.parametrize("name", sorted(VIEW_ORACLES))
def test_decode_every_code(name):
    codes, expected = oracle_values(name)
    assert same_bits(lowprec.decode(codes, name), expected)


@pytest.mark.parametrize("name", sorted(VIEW_ORACLES))
def test_encode_every_value(name):
    codes, values = oracle_values(name)
    fmt = lowprec.as_format(name)
    numbers = ~np.isnan(values)
    got = lowprec.encode(values[numbers], fmt)
    assert got.dtype == fmt.code_dtype
    np.testing.assert_array_equal(got, codes[numbers])


@pytest.mark.parametrize("name", ["fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn"])
def test_mx_formats_against_ml_dtypes(name):
    # ml_dtypes stores these in one byte, low bits; every code is a finite number
    fmt = lowprec.as_format(name)
    dtype = getattr(ml_dtypes, name.replace("fp", "float"))
    codes = np.arange(fmt.num_codes, dtype=np.uint8)
    expected = codes.view(dtype).astype(np.float64)
    assert same_bits(lowprec.decode(codes, fmt), expected)
    np.testing.assert_array_equal(lowprec.encode(expected, fmt), codes)


def test_fp32_codes_roundtrip_through_numpy():
    codes = np.random.default_rng(0).integers(0, 2**32, 10**5, dtype=np.uint64)
    codes = codes.astype(np.uint32)
    with np.errstate(invalid="ignore"):  # the oracle's cast of NaN codes
        values = codes.view(np.float32).astype(np.float64)
    assert same_bits(lowprec.decode(codes, "fp32"), values)
    numbers = ~np.isnan(values)
    np.testing.assert_array_equal(lowprec.encode(values[numbers], "fp32"),
                                  codes[numbers])


@pytest.mark.parametrize(
    "fmt, nan_pos, nan_neg",
    [("fp16", 0x7E00, 0xFE00), ("bf16", 0x7FC0, 0xFFC0), ("fp8_e5m2", 0x7E, 0xFE),
     ("fp8_e4m3fn", 0x7F, 0xFF), ("fp8_e4m3fnuz", 0x80, 0x80),
     ("fp32", 0x7FC00000, 0xFFC00000)],
)
def test_nan_encodes_canonical_with_sign(fmt, nan_pos, nan_neg):
    assert int(lowprec.encode(np.nan, fmt)) == nan_pos
    assert int(lowprec.encode(-np.nan, fmt)) == nan_neg


def test_code_dtypes():
    assert lowprec.encode([1.0], "fp4_e2m1fn").dtype == np.uint8
    assert lowprec.encode([1.0], "fp8_e4m3fn").dtype == np.uint8
    assert lowprec.encode([1.0], "tf32").dtype == np.uint32
    assert lowprec.encode([1.0], "fp64").dtype == np.uint64
    f = lowprec.custom_format(40, 8)
    assert lowprec.encode([1.0], f).dtype == np.uint64


def test_encode_rounds_with_options():
    assert int(lowprec.encode(500.0, "fp8_e4m3fn")) == 0x7F  # overflow: NaN
    assert int(lowprec.encode(500.0, "fp8_e4m3fn", saturate=True)) == 0x7E
    up = lowprec.encode(1 + 2**-12, "fp16", rounding="toward_positive")
    assert int(up) == 0x3C01
    with pytest.raises(ValueError, match="rounding"):
        lowprec.encode(1.0, "fp16", rounding="nearest")


def test_encode_nan_without_nan_code():
    with pytest.raises(ValueError, match="NaN has no encoding in fp4_e2m1fn"):
        lowprec.encode([1.0, np.nan], "fp4_e2m1fn")


def test_decode_rejects_bad_codes():
    with pytest.raises(ValueError, match="codes: fp8_e4m3fn has 8-bit codes"):
        lowprec.decode([256], "fp8_e4m3fn")
    with pytest.raises(ValueError, match="codes"):
        lowprec.decode([-1], "fp16")
    with pytest.raises(TypeError, match="codes must be integers"):
        lowprec.decode([1.0], "fp16")
    with pytest.raises(ValueError, match="codes: fp4_e2m1fn has 4-bit codes"):
        lowprec.decode(np.array([16], dtype=np.uint8), "fp4_e2m1fn")


def test_decode_flushes_subnormal_codes_without_subnormals():
    f = lowprec.custom_format(11, 5, subnormals=False)
    assert same_bits(lowprec.decode([0x0001, 0x8001, 0x0400], f),
                     [0.0, -0.0, 2.0**-14])


def test_fields():
    f = lowprec.fields(np.array([-1.5, 2.0**-24, np.inf]), "fp16")
    np.testing.assert_array_equal(f.sign, [1, 0, 0])
    np.testing.assert_array_equal(f.exponent, [15, 0, 31])
    np.testing.assert_array_equal(f.significand, [0x200, 1, 0])
    assert f.sign.dtype == np.uint16


@pytest.mark.parametrize(
    "value, fmt, text",
    [
        (1.0, "fp16", "0 01111 0000000000 = +1.0 × 2^0 (normal)"),
        (-1.5, "bf16", "1 01111111 1000000 = -1.5 × 2^0 (normal)"),
        (2.0**-24, "fp16",
         "0 00000 0000000001 = +0.0009765625 × 2^-14 = 5.960464477539063e-08 "
         "(subnormal)"),
        (0.1, "fp16",
         "0 01011 1001100110 = +1.599609375 × 2^-4 = 0.0999755859375 "
         "(normal; rounded from 0.1)"),
        (-0.0, "fp16", "1 00000 0000000000 = -0.0 (zero)"),
        (-0.0, "fp8_e4m3fnuz", "0 0000 000 = +0.0 (zero) (rounded from -0.0)"),
        (np.inf, "fp16", "0 11111 0000000000 = +inf"),
        (1e6, "fp16", "0 11111 0000000000 = +inf (rounded from 1000000.0)"),
        (np.nan, "fp8_e4m3fn", "0 1111 111 = NaN"),
        (448.0, "fp8_e4m3fn", "0 1111 110 = +1.75 × 2^8 = 448.0 (normal)"),
    ],
)
def test_describe(value, fmt, text):
    assert lowprec.describe(value, fmt) == text


def test_describe_takes_one_value():
    with pytest.raises(ValueError, match="value: describe takes one value"):
        lowprec.describe([1.0, 2.0], "fp16")
