"""Tests of lowprec.testing.assert_bits_equal.

The oracle is the definition, written here on integers: two elements are equal
when their stored codes are equal, or both are NaN codes. Every code of the 8-bit
formats (through ml_dtypes) and of float16 is swept; hypothesis covers float32.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lowprec.testing import assert_bits_equal

FAST = settings(deadline=None, max_examples=80, derandomize=True)


def differences(message: str) -> int:
    return int(re.search(r"(\d+) of \d+ elements differ", message).group(1))


def test_catches_a_converter_that_turns_minus_tiny_into_plus_zero():
    def to_fp16(x):  # a plausible bug: "+ 0.0" turns -0.0 into +0.0
        return np.float16(x) + np.float16(0.0)

    x = -(2.0**-26)  # below half fp16's smallest subnormal: rounds to -0
    oracle = np.float16(x)  # numpy's conversion, correctly rounded
    assert to_fp16(x) == oracle  # == cannot see the sign of zero
    with pytest.raises(AssertionError) as err:
        assert_bits_equal(to_fp16(x), oracle, "fp16")
    msg = str(err.value)
    assert "1 of 1 elements differ" in msg
    assert "0 00000 0000000000 = +0.0" in msg and "1 00000 0000000000 = -0.0" in msg


@pytest.mark.parametrize(
    "dtype",
    [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fnuz],
    ids=lambda d: np.dtype(d).name,
)
def test_every_pair_of_8bit_codes(dtype):
    codes = np.arange(256, dtype=np.uint8)
    a, b = np.repeat(codes, 256), np.tile(codes, 256)  # every ordered pair
    with np.errstate(invalid="ignore"):  # NaN codes to float64
        is_nan = np.isnan(codes.view(dtype).astype(np.float64))
    want = int(np.count_nonzero((a != b) & ~(is_nan[a] & is_nan[b])))
    assert_bits_equal(codes.view(dtype), codes.view(dtype))
    with pytest.raises(AssertionError) as err:
        assert_bits_equal(a.view(dtype), b.view(dtype))
    assert differences(str(err.value)) == want
    # with payloads compared, only identical codes are equal
    with pytest.raises(AssertionError) as err:
        assert_bits_equal(a.view(dtype), b.view(dtype), nan_payload=True)
    assert differences(str(err.value)) == 256 * 255


def test_every_float16_code_against_its_neighbour():
    codes = np.arange(1 << 16, dtype=np.uint32)
    a, b = codes.astype(np.uint16), ((codes + 1) & 0xFFFF).astype(np.uint16)
    nan = (a & 0x7C00 == 0x7C00) & (a & 0x3FF != 0)
    nan_b = (b & 0x7C00 == 0x7C00) & (b & 0x3FF != 0)
    want = int(np.count_nonzero(~(nan & nan_b)))
    assert_bits_equal(a.view(np.float16), a.view(np.float16), nan_payload=True)
    with pytest.raises(AssertionError) as err:
        assert_bits_equal(a.view(np.float16), b.view(np.float16), "fp16")
    assert differences(str(err.value)) == want


@FAST
@given(hnp.arrays(np.uint32, st.integers(0, 8)), st.data())
def test_float32_agrees_with_the_definition(codes, data):
    other = data.draw(hnp.arrays(np.uint32, codes.shape))
    other = np.where(data.draw(hnp.arrays(bool, codes.shape)), codes, other)
    x, y = codes.view(np.float32), other.view(np.float32)
    nan = lambda c: (c & 0x7F800000 == 0x7F800000) & (c & 0x7FFFFF != 0)  # noqa: E731
    want = int(np.count_nonzero((codes != other) & ~(nan(codes) & nan(other))))
    if want == 0:
        assert_bits_equal(x, y)
    else:
        with pytest.raises(AssertionError) as err:
            assert_bits_equal(x, y)
        assert differences(str(err.value)) == want


def test_nan_equals_nan_unless_payloads_are_compared():
    quiet, signed = np.float32(np.nan), np.float32(-np.nan)
    payload = np.array([0x7FC00001], np.uint32).view(np.float32)
    assert_bits_equal(quiet, signed)
    assert_bits_equal(np.array([quiet]), payload)
    with pytest.raises(AssertionError, match="0x7fc00001"):
        assert_bits_equal(np.array([quiet]), payload, nan_payload=True)
    with pytest.raises(AssertionError, match="1 of 1"):
        assert_bits_equal(np.nan, 1.0)


def test_message_lists_the_first_differences_and_their_fields():
    a = np.zeros((3, 4))
    b = a.copy()
    b[0, 1] = b[1, 2] = b[2, 0] = b[2, 1] = b[2, 2] = b[2, 3] = 1.0
    with pytest.raises(AssertionError) as err:
        assert_bits_equal(a, b, "bf16")
    msg = str(err.value)
    assert "6 of 12 elements differ, the first 5 shown" in msg
    assert "(0, 1)" in msg and "(2, 2)" in msg and "(2, 3)" not in msg
    assert "0 01111111 0000000 = +1.0 × 2^0 (normal)" in msg  # bf16 fields
    assert "bit fields in bf16" in msg


def test_without_a_format_the_fields_are_the_dtypes_own():
    with pytest.raises(AssertionError) as err:
        assert_bits_equal(np.array([1.5], ml_dtypes.bfloat16), np.float32([1.0]))
    msg = str(err.value)
    assert "bfloat16 | float32" in msg
    assert "0 01111111 1000000 = +1.5" in msg  # bf16: 7 significand bits
    assert "0 01111111 00000000000000000000000 = +1.0" in msg  # float32: 23


def test_different_dtypes_compare_values():
    assert_bits_equal(np.array([1.5, -0.0], ml_dtypes.bfloat16), [1.5, -0.0])
    assert_bits_equal(np.float16(-0.0), -0.0)
    assert_bits_equal(np.float32(2.0**-149), 2.0**-149)
    with pytest.raises(AssertionError):
        assert_bits_equal(np.float16(-0.0), 0.0)
    with pytest.raises(TypeError, match="same dtype"):
        assert_bits_equal(np.float16(np.nan), np.nan, nan_payload=True)


def test_scalars_and_zero_d_arrays():
    assert_bits_equal(1.0, np.array(1.0))
    assert_bits_equal(np.float64(np.inf), np.inf)
    with pytest.raises(AssertionError, match=r"\(\)"):
        assert_bits_equal(np.inf, -np.inf)


def test_shapes_must_match():
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_bits_equal(np.zeros(3), np.zeros((1, 3)))
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_bits_equal(np.zeros(3), 0.0)


@pytest.mark.parametrize("bad", [[1, 2], np.array(["a"]), np.int8(1)])
def test_refuses_what_is_not_floats(bad):
    with pytest.raises(TypeError, match="actual must be floats"):
        assert_bits_equal(bad, np.zeros(2))
    with pytest.raises(TypeError, match="desired must be floats"):
        assert_bits_equal(np.zeros(2), bad)
