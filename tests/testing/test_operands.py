"""Tests of lowprec.testing.operands, and of the strategies with ml_dtypes dtypes.

Oracles: ml_dtypes' own casts (a value of a format survives the round trip through
its ml_dtypes type bit for bit) and exact rational arithmetic (fractions.Fraction)
for whether a sum, product or fma lands on a midpoint, underflows or overflows.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from test_testing import ML_DTYPES, _is_tie, assert_reached

import lowprec
import lowprec.testing as lt

FAST = settings(deadline=None, max_examples=60, derandomize=True)
EIGHT_BIT = [lowprec.fp8_e4m3fn, lowprec.fp8_e5m2, lowprec.fp8_e4m3fnuz]
SMALL = [*EIGHT_BIT, lowprec.fp6_e2m3fn, lowprec.fp4_e2m1fn, lowprec.bf16]


def is_value(x: object, fmt: lowprec.Format) -> bool:
    """x survives the cast to fmt's ml_dtypes type and back, bit for bit."""
    x64 = np.float64(x)
    with np.errstate(invalid="ignore", over="ignore"):
        back = np.float64(np.array([x64]).astype(ML_DTYPES[fmt])[0])
    if math.isnan(x64):
        return fmt.has_nan and math.isnan(back)
    return back.view(np.uint64) == x64.view(np.uint64)


def grid(fmt: lowprec.Format) -> tuple[Fraction, Fraction, Fraction]:
    """(quantum of the subnormal range, max, max + ulp(max) / 2) exactly."""
    q = Fraction(2) ** (fmt.emin - fmt.nmant)
    top = Fraction(fmt.max)
    return q, top, top + Fraction(2) ** (fmt.emax - fmt.nmant - 1)


def is_tie(r: Fraction, fmt: lowprec.Format) -> bool:
    """r is halfway between two neighbouring values (max + ulp included)."""
    if r == 0:
        return False
    a = abs(r)
    q, _, bound = grid(fmt)
    if a > bound:
        return False
    e = math.floor(math.log2(a))  # float log2 is fine away from powers of two
    if Fraction(2) ** e > a:
        e -= 1
    elif Fraction(2) ** (e + 1) <= a:
        e += 1
    quantum = q if e < fmt.emin else Fraction(2) ** (e - fmt.nmant)
    return a % quantum == quantum / 2


def exact(*xs: object) -> list[Fraction] | None:
    vals = [float(x) for x in xs]
    return None if not all(map(math.isfinite, vals)) else [Fraction(v) for v in vals]


@pytest.mark.parametrize("fmt", SMALL, ids=str)
@FAST
@given(data=st.data())
def test_every_operand_is_a_value_of_the_format(fmt, data):
    n = data.draw(st.integers(1, 4))
    t = data.draw(lt.operands(fmt, n))
    assert len(t) == n
    for x in t:
        assert type(x) is np.float32
        assert is_value(x, fmt), (fmt, x)


@pytest.mark.parametrize("fmt", EIGHT_BIT + [lowprec.fp6_e2m3fn], ids=str)
def test_pairs_reach_ties_and_edges(fmt):
    q, top, _ = grid(fmt)

    def sum_(t):
        v = exact(*t)
        return v and v[0] + v[1]

    def prod(t):
        v = exact(*t)
        return v and v[0] * v[1]

    conditions = dict(
        sum_tie=lambda t: sum_(t) and is_tie(sum_(t), fmt),
        product_tie=lambda t: prod(t) and is_tie(prod(t), fmt),
        overflow_tie=lambda t: sum_(t) and abs(sum_(t)) == grid(fmt)[2],
        overflow=lambda t: prod(t) and abs(prod(t)) > top,
        underflow=lambda t: prod(t) and 0 < abs(prod(t)) < q / 2,
        subnormal=lambda t: any(0 < abs(float(x)) < fmt.smallest_normal for x in t),
        cancel_to_zero=lambda t: sum_(t) == 0 and float(t[0]) != 0,
        nan=lambda t: any(math.isnan(x) for x in t),
    )
    if fmt.has_negative_zero:
        conditions["minus_zero"] = lambda t: any(
            x == 0 and math.copysign(1, x) < 0 for x in t
        )
    if fmt.has_inf:
        conditions["inf"] = lambda t: any(math.isinf(x) for x in t)
    if not fmt.has_nan:
        del conditions["nan"]
    if fmt.precision < 3:  # no product of two 2-bit significands is a tie
        del conditions["product_tie"]
    assert_reached(lt.operands(fmt), 2000, **conditions)


@pytest.mark.parametrize("fmt", [lowprec.fp8_e4m3fn, lowprec.fp8_e5m2], ids=str)
def test_triples_reach_fma_ties_and_broken_ties(fmt):
    q = grid(fmt)[0]

    def fma(t):
        v = exact(*t)
        return v and v[0] * v[1] + v[2]

    def product_tie(t):
        v = exact(*t)
        return v and is_tie(v[0] * v[1], fmt)

    assert_reached(
        lt.operands(fmt, 3),
        2000,
        fma_tie=lambda t: fma(t) and is_tie(fma(t), fmt),
        tie_plus_tiny=lambda t: product_tie(t) and abs(exact(*t)[2]) == q,
        tie_plus_zero=lambda t: product_tie(t) and t[2] == 0,
    )


def test_the_flags_remove_nan_inf_and_subnormals():
    fmt = lowprec.fp8_e5m2

    @FAST
    @given(lt.operands(fmt, 3, allow_nan=False, allow_subnormal=False))
    def run(t):
        for x in t:
            assert not math.isnan(x)
            assert x == 0 or abs(x) >= fmt.smallest_normal

    run()

    @FAST
    @given(lt.operands(fmt, allow_infinity=False))
    def run_finite(t):
        assert not any(math.isinf(x) for x in t)

    run_finite()


@FAST
@given(lt.operands(lowprec.fp8_e4m3fn, 3, shape=st.sampled_from([(0,), (2, 3)])))
def test_arrays_share_one_shape(t):
    assert len({a.shape for a in t}) == 1 and all(a.dtype == np.float32 for a in t)
    for x in np.concatenate([a.ravel() for a in t]):
        assert is_value(x, lowprec.fp8_e4m3fn)


@pytest.mark.parametrize(
    "dtype", [np.float64, np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn]
)
@FAST
@given(data=st.data())
def test_operands_in_any_dtype(dtype, data):
    dt = np.dtype(dtype)
    allow = dt != np.dtype(ml_dtypes.float8_e4m3fn)
    fmt = lowprec.fp8_e4m3fn
    t = data.draw(lt.operands(fmt, dtype=dtype, allow_infinity=allow))
    assert all(type(x) is dt.type and is_value(x, fmt) for x in t)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fmt": "fp8_e4m3fn", "n": 0}, "positive int"),
        ({"fmt": "fp32", "dtype": np.float16}, "cannot hold"),
        ({"fmt": "fp8_e4m3", "dtype": ml_dtypes.float8_e4m3fn}, "allow_infinity"),
        ({"fmt": "fp8_e4m3fn", "dtype": ml_dtypes.int4}, "ml_dtypes float"),
        ({"fmt": "fp8_e4m3fn", "shape": (-1,)}, "shape"),
    ],
)
def test_operands_refuses(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        lt.operands(**kwargs).example()


# -- the older strategies with ml_dtypes dtypes -------------------------------------


@pytest.mark.parametrize("fmt", EIGHT_BIT + [lowprec.fp4_e2m1fn], ids=str)
@FAST
@given(data=st.data())
def test_arrays_in_the_formats_own_ml_dtype(fmt, data):
    dt = ML_DTYPES[fmt]
    inf = fmt.has_inf
    a = data.draw(lt.arrays(fmt, 8, dtype=dt, allow_infinity=inf or None))
    assert a.dtype == dt
    assert all(is_value(x, fmt) for x in a)


@FAST
@given(lt.near_ties(lowprec.fp8_e4m3fn, dtype=ml_dtypes.bfloat16))
def test_near_ties_in_bfloat16(x):
    assert type(x) is ml_dtypes.bfloat16
    up = np.nextafter(x, ml_dtypes.bfloat16(1e30))
    down = np.nextafter(x, ml_dtypes.bfloat16(-1e30))
    assert any(_is_tie(float(y), lowprec.fp8_e4m3fn) for y in (down, x, up))


def test_floats_in_bfloat16_reach_both_ends():
    fmt = lowprec.fp8_e4m3fn
    assert_reached(
        lt.floats(fmt, dtype=ml_dtypes.bfloat16),
        bf16=lambda x: type(x) is ml_dtypes.bfloat16,
        underflow=lambda x: 0 < abs(float(x)) < fmt.smallest_subnormal / 2,
        overflow=lambda x: math.isfinite(float(x)) and abs(float(x)) > 464,
        nan=lambda x: math.isnan(float(x)),
    )


@pytest.mark.parametrize(
    ("strategy", "match"),
    [
        (lambda: lt.floats("fp8_e4m3fn", dtype=ml_dtypes.float8_e4m3fn), "no inf"),
        (lambda: lt.floats("fp4_e2m1fn", dtype=ml_dtypes.float4_e2m1fn), "no NaN"),
        (lambda: lt.arrays("bf16", 3, dtype=ml_dtypes.float8_e4m3fn), "cannot hold"),
        (lambda: lt.arrays("fp8_e4m3fn", 3, dtype=ml_dtypes.float8_e4m3fnuz), "hold"),
        (lambda: lt.near_ties("bf16", dtype=ml_dtypes.bfloat16), "midpoints"),
    ],
)
def test_ml_dtypes_that_cannot_hold_the_draws_are_refused(strategy, match):
    with pytest.raises(InvalidArgument, match=match):
        strategy().example()


@settings(deadline=None, max_examples=30, derandomize=True)
@given(st.data(), lt.formats(max_precision=11))
def test_operands_of_any_format_round_to_themselves(data, fmt):
    t = data.draw(lt.operands(fmt, data.draw(st.integers(1, 3)), dtype=np.float64))
    x = np.array(t, dtype=np.float64)
    finite = np.isfinite(x)
    assert not np.isinf(x).any() or fmt.has_inf
    assert not np.isnan(x).any() or fmt.has_nan
    got = lowprec.round(x[finite], fmt)
    assert np.array_equal(got.view(np.uint64), x[finite].view(np.uint64)), (fmt, t)
