"""Hypothesis properties of ``lowprec.round`` over built-in and custom formats.

Formats: the built-ins and ``custom_format`` with precision 2..53, 2..11 exponent
bits, any special-value convention, with and without subnormals. Values: any
float64, and values built near the format's grid (grid points, midpoints, quarter
points and their float64 neighbours) from the bottom of the subnormals to past max.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, reject
from hypothesis import strategies as st
from oracles import (
    DETERMINISTIC_MODES,
    MIRROR_MODE,
    NEAREST_MODES,
    assert_same_bits,
    floor_log2,
    grid_of,
    round_exact_array,
)

import lowprec

SPECIALS = ("ieee", "fn", "fnuz", "none")
SUBNORMALS = st.sampled_from([None, True, False])


@st.composite
def formats(draw, *, max_precision=53, max_exponent_bits=11):
    """A built-in format, or a custom one with random parameters."""
    if draw(st.integers(0, 3)) == 0:
        choices = [
            f
            for f in lowprec.builtin_formats()
            if f.precision <= max_precision and f.exponent_bits <= max_exponent_bits
        ]
        return draw(st.sampled_from(choices))
    p = draw(st.integers(2, max_precision), label="precision")
    eb = draw(st.integers(2, max_exponent_bits), label="exponent_bits")
    specials = draw(st.sampled_from(SPECIALS), label="specials")
    bias = (1 << (eb - 1)) - 1 + draw(st.sampled_from([0, 0, 1, -1]), label="bias+")
    subnormals = draw(st.booleans(), label="subnormals")
    try:
        return lowprec.custom_format(
            p, eb, bias=bias, specials=specials, subnormals=subnormals
        )
    except ValueError:
        reject()  # a range float64 cannot carry (e.g. emax 1024)


@st.composite
def near_grid(draw, fmt):
    """A float64 at or next to a grid point, midpoint or quarter point of fmt."""
    g = grid_of(fmt)
    p = g.precision
    e = draw(st.integers(g.emin - p - 3, g.emax + 2))
    m = draw(st.integers(0, (1 << (p + 2)) - 1))
    try:
        x = math.ldexp(float(m), e - p - 1)  # a quarter point (rounded if p > 51)
    except OverflowError:  # past float64's range (formats with emax near 1023)
        x = math.inf
    nudge = draw(st.sampled_from([0, 0, 1, -1]))
    if nudge:
        x = float(np.nextafter(x, math.inf * nudge))
    return -x if draw(st.booleans()) else x


@st.composite
def cases(draw, max_size=12, **fmt_kw):
    """(format, float64 array) with values near the grid and anywhere."""
    fmt = draw(formats(**fmt_kw))
    g = grid_of(fmt)
    specials = st.sampled_from(
        [
            0.0,
            -0.0,
            math.inf,
            -math.inf,
            math.nan,
            float(g.max),
            -float(g.max),
            math.ldexp(1.0, g.emin),
            float(g.smallest_positive) / 2,
        ]
    )
    value = st.one_of(near_grid(fmt), near_grid(fmt), st.floats(), specials)
    xs = draw(st.lists(value, min_size=1, max_size=max_size))
    return fmt, np.array(xs, dtype=np.float64)


def rnd(x, fmt, rounding, **kw):
    return lowprec.round(x, fmt, rounding=rounding, **kw)


def options():
    return {"saturate": st.booleans(), "subnormals": SUBNORMALS}


# ------------------------------------------------------------------ the oracle


@given(
    case=cases(),
    rounding=st.sampled_from(DETERMINISTIC_MODES),
    **options(),
)
def test_agrees_with_exact_oracle(case, rounding, saturate, subnormals):
    fmt, x = case
    kw = dict(saturate=saturate, subnormals=subnormals)
    want = round_exact_array(x, fmt, rounding, **kw)
    assert_same_bits(rnd(x, fmt, rounding, **kw), want, x, f"{fmt!r} {rounding} {kw}")


# ------------------------------------------------------- algebraic properties


@given(case=cases(), rounding=st.sampled_from(DETERMINISTIC_MODES), **options())
def test_idempotent(case, rounding, saturate, subnormals):
    fmt, x = case
    kw = dict(saturate=saturate, subnormals=subnormals)
    once = rnd(x, fmt, rounding, **kw)
    assert_same_bits(rnd(once, fmt, rounding, **kw), once, x, "round(round(x))")


@given(case=cases(), rounding=st.sampled_from(DETERMINISTIC_MODES), **options())
def test_monotone(case, rounding, saturate, subnormals):
    fmt, x = case
    x = np.sort(x[~np.isnan(x)])
    r = rnd(x, fmt, rounding, saturate=saturate, subnormals=subnormals)
    r = r[~np.isnan(r)]  # fn/fnuz overflow gives NaN
    assert np.all(r[1:] >= r[:-1]), (x, r)


@given(case=cases(), **options())
def test_directed_modes_bracket_x(case, saturate, subnormals):
    fmt, x = case
    g = grid_of(fmt, subnormals)
    x = x[np.isfinite(x)]
    # beyond max only inf brackets x (max does not, NaN compares false)
    inside = np.abs(x) <= float(g.max)
    if not (g.has_inf and not saturate):
        x = x[inside]
        inside = inside[inside]
    kw = dict(saturate=saturate, subnormals=subnormals)
    down = rnd(x, fmt, "toward_negative", **kw)
    up = rnd(x, fmt, "toward_positive", **kw)
    assert np.all(down <= x) and np.all(x <= up), (x, down, up)
    # in range: exact iff the two agree, and every other mode picks one of them
    exact = down == x
    assert np.array_equal(exact[inside], (up == x)[inside])
    for mode in ("ties_to_even", "ties_to_away", "toward_zero", "to_odd"):
        r = rnd(x, fmt, mode, **kw)[inside]
        assert np.all((r == down[inside]) | (r == up[inside])), mode
    toward_zero = rnd(x, fmt, "toward_zero", **kw)
    assert_same_bits(toward_zero, np.where(x < 0, up, down), x, "toward_zero")


@given(case=cases(), rounding=st.sampled_from(DETERMINISTIC_MODES), **options())
def test_sign_symmetry(case, rounding, saturate, subnormals):
    """round(-x) == -round(x), toward_positive and toward_negative swapped."""
    fmt, x = case
    kw = dict(saturate=saturate, subnormals=subnormals)
    neg = rnd(-x, fmt, MIRROR_MODE[rounding], **kw)
    want = -rnd(x, fmt, rounding, **kw)
    if not fmt.has_negative_zero:
        want[want == 0] = 0.0  # fnuz: there is no -0
    assert_same_bits(neg, want, -x, "round(-x) vs -round(x)")


@given(case=cases(), rounding=st.sampled_from(NEAREST_MODES), subnormals=SUBNORMALS)
def test_nearest_error_within_half_ulp(case, rounding, subnormals):
    fmt, x = case
    g = grid_of(fmt, subnormals)
    x = x[np.isfinite(x) & (np.abs(x) <= float(g.max))]
    r = rnd(x, fmt, rounding, subnormals=subnormals)
    for xi, ri in zip(x.tolist(), r.tolist(), strict=True):
        if xi == 0:
            assert ri == 0
            continue
        a = abs(Fraction(xi))
        err = abs(Fraction(ri) - Fraction(xi))
        assert err <= g.quantum(a) / 2, (xi, ri)
        if floor_log2(a) >= g.emin:  # normal range: relative error <= u = 2**-p
            assert err <= a / (1 << g.precision), (xi, ri)


@given(
    case=cases(max_size=4),
    rounding=st.sampled_from(DETERMINISTIC_MODES),
    data=st.data(),
)
def test_power_of_two_scale_invariance(case, rounding, data):
    """round(x * 2**k) == round(x) * 2**k while both stay normal and below max."""
    fmt, x = case
    g = grid_of(fmt)
    a = np.abs(x)
    x = x[np.isfinite(x) & (a >= math.ldexp(1.0, g.emin)) & (a <= float(g.max))]
    assume(x.size > 0)
    lo = max(g.emin - floor_log2(abs(Fraction(v))) for v in x.tolist())
    hi = min(floor_log2(g.max / abs(Fraction(v))) for v in x.tolist())
    assume(lo <= hi)
    k = data.draw(st.integers(lo, hi), label="k")
    scaled = np.ldexp(x, k)
    assert np.all(np.abs(scaled) <= float(g.max))
    want = np.ldexp(rnd(x, fmt, rounding), k)
    assert_same_bits(rnd(scaled, fmt, rounding), want, scaled, f"scale by 2**{k}")


# -------------------------------------------------------------- input widths


def _fits(fmt, dtype, subnormals):
    fi = np.finfo(dtype)
    g = grid_of(fmt, subnormals)
    return (
        g.precision <= fi.nmant + 1
        and g.emax <= fi.maxexp - 1
        and g.smallest_positive >= Fraction(float(fi.smallest_subnormal))
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@given(case=cases(), rounding=st.sampled_from(DETERMINISTIC_MODES), **options())
def test_narrow_input_rounds_like_its_float64_value(
    dtype, case, rounding, saturate, subnormals
):
    fmt, x = case
    assume(_fits(fmt, dtype, subnormals) and _fits(fmt, dtype, None))
    with np.errstate(over="ignore"):
        narrow = x.astype(dtype)  # some other values: fine, both sides see them
    kw = dict(saturate=saturate, subnormals=subnormals)
    got = rnd(narrow, fmt, rounding, **kw)
    assert got.dtype == dtype
    want = rnd(narrow.astype(np.float64), fmt, rounding, **kw)
    assert_same_bits(got.astype(np.float64), want, narrow, f"{np.dtype(dtype)} input")


@given(case=cases(max_precision=22, max_exponent_bits=8), data=st.data())
def test_no_double_rounding_through_float32(case, data):
    """Just above (below) a midpoint that float32 would round onto exactly.

    A float64 -> float32 -> format conversion (ml_dtypes' casts from float64) sees
    an exact tie there and picks the even neighbour; the correct result is the
    upper (lower) neighbour. lowprec rounds the float64 value once.
    """
    fmt, _ = case
    g = grid_of(fmt)
    p = g.precision
    # two neighbours v = k*q < w = (k+1)*q <= max, in the normal or subnormal range
    region = data.draw(st.sampled_from(["normal", "subnormal"]), label="region")
    if region == "normal":
        e = data.draw(st.integers(g.emin, g.emax), label="binade")
        q = Fraction(2) ** (e - p + 1)
        k = data.draw(st.integers(1 << (p - 1), (1 << p) - 1), label="k")
    elif g.subnormals:
        q = Fraction(2) ** (g.emin - p + 1)
        k = data.draw(st.integers(0, (1 << (p - 1)) - 1), label="k")
    else:
        q, k = Fraction(2) ** g.emin, 0
    v, w = k * q, (k + 1) * q
    m = (v + w) / 2
    assume(w <= g.max and m <= Fraction(float(np.finfo(np.float32).max)))
    assume(q / 2 >= Fraction(float(np.finfo(np.float32).smallest_subnormal)))
    above, below = np.nextafter(float(m), math.inf), np.nextafter(float(m), -math.inf)
    # the hazard is real: float32 lands exactly on the midpoint
    assert np.float32(above) == m and np.float32(below) == m
    sign = data.draw(st.sampled_from([1.0, -1.0]), label="sign")
    x = sign * np.array([above, below])
    want = sign * np.array([float(w), float(v)])
    if not g.signed_zero:
        want[want == 0] = 0.0  # fnuz: no -0
    assert_same_bits(rnd(x, fmt, "ties_to_even"), want, x, "just off a midpoint")
    assert_same_bits(round_exact_array(x, fmt), want, x, "oracle")


def test_ml_dtypes_double_rounds_where_lowprec_does_not():
    """The reason for the property above, on ml_dtypes' bfloat16 and e4m3fn."""
    import ml_dtypes

    cases = [
        (1 + 2**-8 + 2**-30, ml_dtypes.bfloat16, "bf16", 1 + 2**-7),
        (1 + 2**-4 + 2**-30, ml_dtypes.float8_e4m3fn, "fp8_e4m3fn", 1.125),
    ]
    for x, dtype, name, correct in cases:
        assert lowprec.round(x, name) == correct
        theirs = float(np.array([x]).astype(dtype).astype(np.float64)[0])
        if theirs == correct:
            pytest.skip("this ml_dtypes casts float64 without double rounding")
        assert theirs == 1.0  # through float32: an exact tie, to even


@given(case=cases(max_precision=51), rounding=st.sampled_from(NEAREST_MODES))
def test_to_odd_with_two_extra_bits_then_nearest_is_nearest(case, rounding):
    """Boldo and Melquiond: to_odd onto p + 2 bits, then to nearest onto p bits,
    equals rounding to nearest directly (same exponent range)."""
    fmt, x = case
    g = grid_of(fmt)
    x = x[~(np.abs(x) > float(g.max))]  # keep NaN; the wide max differs for fn
    if not g.subnormals:  # no extra bits below 2**emin: only 0 and 2**emin there
        x = x[~(np.abs(x) < math.ldexp(1.0, g.emin)) | (x == 0)]
    assume(x.size > 0)
    wide = lowprec.custom_format(
        fmt.precision + 2,
        fmt.exponent_bits,
        bias=fmt.bias,
        subnormals=fmt.subnormals,
        specials=fmt.specials,
    )
    twice = rnd(rnd(x, wide, "to_odd"), fmt, rounding)
    assert_same_bits(twice, rnd(x, fmt, rounding), x, "to_odd then nearest")
