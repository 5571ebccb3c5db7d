"""The scale and integer formats, and the table of built-in block formats."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import lowprec
from lowprec import blocks


@pytest.mark.parametrize("code", range(256))
def test_every_e8m0_code_decodes_to_its_power_of_two(code):
    v = lowprec.e8m0.decode(code)
    if code == 255:
        assert math.isnan(v)
    else:  # 2**(code - 127), code 0 included (a float32 subnormal)
        assert Fraction(v) == Fraction(2) ** (code - 127)


def test_e8m0_has_no_zero_no_sign_and_refuses_codes_out_of_range():
    f = lowprec.e8m0
    assert (f.bits, f.min_exponent, f.max_exponent, f.nan_code) == (8, -127, 127, 255)
    assert f.smallest == 2.0**-127 and f.max == 2.0**127
    with pytest.raises(ValueError, match="0 to 255"):
        f.decode(256)


@pytest.mark.parametrize("fmt, frac", [(lowprec.int8, 0), (lowprec.int4, 0),
                                       (lowprec.mxint8_element, 6)])
def test_every_integer_code_is_twos_complement(fmt, frac):
    for code in range(1 << fmt.bits):
        k = code - (1 << fmt.bits) if code >> (fmt.bits - 1) else code
        assert Fraction(fmt.decode(code)) == Fraction(k, 1 << frac)
    assert fmt.max == (2 ** (fmt.bits - 1) - 1) / 2**frac
    assert fmt.min == -(2 ** (fmt.bits - 1)) / 2**frac


@pytest.mark.parametrize("fmt", [lowprec.int8, lowprec.int4, lowprec.mxint8_element])
def test_the_grid_format_rounds_onto_the_integers(fmt):
    grid = fmt.grid_format()
    t = np.arange(-2 * 2 ** fmt.bits, 2 * 2 ** fmt.bits) / 4 * fmt.ulp
    r = lowprec.round(t, grid)
    expect = np.round(t / fmt.ulp) * fmt.ulp  # numpy rounds half to even
    assert np.array_equal(r, expect)


# issue 17, section 1: name, element, element max, block, scale, emax_elem
TABLE = [
    ("mxfp8_e4m3", "fp8_e4m3fn", 448, 32, "e8m0", 8),
    ("mxfp8_e5m2", "fp8_e5m2", 57344, 32, "e8m0", 15),
    ("mxfp6_e2m3", "fp6_e2m3fn", 7.5, 32, "e8m0", 2),
    ("mxfp6_e3m2", "fp6_e3m2fn", 28, 32, "e8m0", 4),
    ("mxfp4_e2m1", "fp4_e2m1fn", 6, 32, "e8m0", 2),
    ("mxint8", "mxint8_element", 127 / 64, 32, "e8m0", 0),
    ("nvfp4", "fp4_e2m1fn", 6, 16, "fp8_e4m3fn", 2),
]


@pytest.mark.parametrize("name, element, emax, block, scale, emax_elem", TABLE)
def test_the_built_in_block_formats_are_the_issues_table(name, element, emax, block,
                                                          scale, emax_elem):
    f = blocks.as_block_format(name)
    assert (f.element.name, f.elem_max, f.block_size, f.scale.name, f.emax_elem) == (
        element, emax, block, scale, emax_elem)
    assert f.two_level == (name == "nvfp4")
    assert f in blocks.block_formats()


def test_as_block_format_names_what_it_expected():
    with pytest.raises(ValueError, match="built-in block formats are mxfp8_e4m3"):
        blocks.as_block_format("mxfp3")
    with pytest.raises(TypeError, match="BlockFormat"):
        blocks.as_block_format(3)


def test_custom_block_format_validates():
    f = blocks.custom_block_format("fp8_e5m2", 8, scale_rule="rceil")
    assert (f.block_size, f.scale_rule, f.bits_per_element) == (8, "rceil", 9.0)
    with pytest.raises(ValueError, match="block_size"):
        blocks.custom_block_format("fp8_e5m2", 0)
    with pytest.raises(ValueError, match="at most 8"):
        blocks.custom_block_format("fp16", 32)
    with pytest.raises(ValueError, match="scale_rule"):
        blocks.custom_block_format("fp8_e5m2", 32, scale_rule="te")


def test_the_existing_formats_are_unchanged():
    assert lowprec.e8m0 not in lowprec.builtin_formats()
    assert lowprec.fp8_e4m3fn.max == 448.0 and lowprec.fp4_e2m1fn.bits == 4
