"""``lowprec round`` reads its VALUE exactly and rounds it correctly, any size.

The oracle is ``tests/oracles.round_exact``: an exact Fraction rounding written
from the format's five parameters, which takes values of any magnitude. Results
are compared as float64 bit patterns (the sign of zero counts; NaN is NaN).
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import round_exact

import lowprec
from lowprec.cli import main
from lowprec.cli._values import format_g, read_value, round_exact_value
from lowprec.modes import ROUNDING_MODES, STOCHASTIC

DETERMINISTIC = [m for m in ROUNDING_MODES if m not in STOCHASTIC]
HUGE_AND_TINY = ["1e999", "-1e999", "1e400", "-1e400", "0x1p1024", "-0x1p5000",
                 "1e-400", "-1e-400", "0x1p-1080", "-0x1p-1075", "1e-99999"]
# just above max(float64): below and above its midpoint with 2**1024
NEAR_TOP = ["1.7976931348623158e308", "1.7976931348623159e308",
            "-1.7976931348623159e308"]


def bits(x: float) -> int | str:
    return "nan" if math.isnan(x) else struct.unpack("<Q", struct.pack("<d", x))[0]


def printed(capsys, *argv) -> float:
    """The value on the ``rounded`` line of ``lowprec round ARGV``."""
    assert main(["round", *argv]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines()
                if s.startswith("rounded"))
    return float(line.split()[1])


def exact(text: str) -> Fraction:
    t = text.lower()
    if "0x" in t:  # the oracle's own reading of a hex float
        sign = -1 if t.startswith("-") else 1
        mant, _, exp = t.lstrip("+-")[2:].partition("p")
        return sign * Fraction(int(mant, 16)) * Fraction(2) ** int(exp or 0)
    return Fraction(t)


@pytest.mark.parametrize("fmt", lowprec.builtin_formats(), ids=lambda f: f.name)
def test_huge_and_tiny_values_round_like_the_exact_oracle(capsys, fmt):
    for text in HUGE_AND_TINY + (NEAR_TOP if fmt.name == "fp64" else []):
        q = exact(text)
        for mode in DETERMINISTIC:
            for saturate in (False, True):
                want = round_exact(q, fmt, mode, saturate=saturate)
                if mode in ("ties_to_even", "toward_zero"):  # as printed
                    argv = [text, "--to", fmt.name, "--rounding", mode]
                    got = printed(capsys, *argv, *(["--saturate"] * saturate))
                else:  # the same function, without the printing (faster)
                    got = round_exact_value(q, fmt, mode, saturate=saturate)
                assert bits(got) == bits(want), (text, mode, saturate)


@pytest.mark.parametrize("fmt", lowprec.builtin_formats(), ids=lambda f: f.name)
def test_stochastic_modes_overflow_huge_values(fmt):
    for text in ("1e999", "-1e400"):
        q = exact(text)
        for mode in STOCHASTIC:
            for saturate in (False, True):
                # past the grid point after max every random word gives the same
                want = {bits(round_exact(q, fmt, mode, saturate=saturate,
                                         random_word=w)) for w in (0, 2**64 - 1)}
                got = round_exact_value(q, fmt, mode, saturate=saturate, seed=3)
                assert want == {bits(got)}, (text, mode)


def test_an_emax_1023_format_rounds_beyond_float64():
    fmt = lowprec.custom_format(20, 11)  # max just below 2**1024, not float64's
    for text in ["1e400", "-1e309", "1.7976931348623158e308"]:
        q = exact(text)
        for mode in DETERMINISTIC:
            want = round_exact(q, fmt, mode)
            assert bits(round_exact_value(q, fmt, mode)) == bits(want), (text, mode)
    with pytest.raises(ValueError, match="stochastic"):
        round_exact_value(exact("1.7976931348623158e308"), lowprec.fp64,
                          "stochastic")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    fmt=st.sampled_from(lowprec.builtin_formats()),  # fp64: the directed stand-in
    mode=st.sampled_from(DETERMINISTIC),
    digits=st.integers(1, 40),
    mantissa=st.integers(-(10**40), 10**40),
    exponent=st.integers(-340, 320),
)
def test_decimals_round_like_the_exact_oracle(fmt, mode, digits, mantissa, exponent):
    text = f"{mantissa % 10**digits * (1 if mantissa >= 0 else -1)}e{exponent}"
    q = Fraction(text)
    got = round_exact_value(read_value(text), fmt, mode)
    want = round_exact(q, fmt, mode)
    if q == 0:  # "-0e5" is the Fraction 0: the oracle cannot see its sign
        assert got == 0
    else:
        assert bits(got) == bits(want), (text, fmt.name, mode)


def test_read_value_is_exact():
    assert read_value("1e999") == Fraction(10) ** 999
    assert read_value("-1/3") == Fraction(-1, 3)
    assert read_value("0x1.8p-3") == Fraction(3, 16)
    assert read_value("-0x.8") == Fraction(-1, 2)
    assert read_value("0x1p-1080") == Fraction(1, 2**1080)
    assert bits(read_value("-0")) == bits(-0.0)
    assert math.isinf(read_value("-Infinity")) and read_value("-inf") < 0
    for bad in ("1/0", "abc", "0x", "1e1000001", "2**3", ""):
        with pytest.raises(ValueError, match="VALUE"):
            read_value(bad)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.floats(allow_nan=False, allow_infinity=False).filter(bool),
       st.integers(1, 17))
def test_format_g_is_python_g_of_an_exact_float(x, digits):
    # for a float64 both round the same exact number once
    assert format_g(Fraction(x), digits) == f"{x:.{digits}g}"


def test_format_g_beyond_float64():
    assert format_g(Fraction(10) ** 999 - 65504) == "1e+999"
    assert format_g(-Fraction(3, 10**400), 3) == "-3e-400"
    assert format_g(Fraction(123456789, 10**500), 4) == "1.235e-492"
