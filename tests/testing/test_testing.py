"""Tests of lowprec.testing: the strategies generate what they promise.

The oracles are ml_dtypes (every code of the 8-bit formats and bf16), exact
rational arithmetic (fractions.Fraction) for midpoints, and lowprec.round for
representability of custom formats. Values are compared bit for bit.
"""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import lowprec
import lowprec.testing as lt
from lowprec.testing import _kind, _magnitude

# The first lowprec.round call compiles its kernel (about 2 s): no deadline.
FAST = settings(deadline=None, max_examples=60, derandomize=True)


class _Done(Exception):
    pass


def run_until(strategy, stop, max_examples=400):
    """Feed examples to ``stop`` until it returns True, seeded and unshrunk."""

    @settings(
        deadline=None,
        max_examples=max_examples,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(x):
        if stop(x):
            raise _Done

    try:
        run()
    except _Done:
        pass


def reached(strategy, max_examples=400, **conditions):
    """The names of the conditions some example meets, in one seeded run.

    Cheaper than a hypothesis.find per condition: one pass, stopped as soon as
    every condition is met, and no shrinking.
    """
    hit = set()

    def stop(x):
        hit.update(name for name, cond in conditions.items() if cond(x))
        return len(hit) == len(conditions)

    run_until(strategy, stop, max_examples)
    return hit


def assert_reached(strategy, max_examples=400, **conditions):
    missed = set(conditions) - reached(strategy, max_examples, **conditions)
    assert not missed, f"no example for {sorted(missed)}"


ML_DTYPES = {
    lowprec.fp16: np.dtype(np.float16),
    lowprec.bf16: np.dtype(ml_dtypes.bfloat16),
    lowprec.fp8_e5m2: np.dtype(ml_dtypes.float8_e5m2),
    lowprec.fp8_e4m3fn: np.dtype(ml_dtypes.float8_e4m3fn),
    lowprec.fp8_e4m3: np.dtype(ml_dtypes.float8_e4m3),
    lowprec.fp8_e4m3fnuz: np.dtype(ml_dtypes.float8_e4m3fnuz),
    lowprec.fp8_e5m2fnuz: np.dtype(ml_dtypes.float8_e5m2fnuz),
    lowprec.fp6_e2m3fn: np.dtype(ml_dtypes.float6_e2m3fn),
    lowprec.fp6_e3m2fn: np.dtype(ml_dtypes.float6_e3m2fn),
    lowprec.fp4_e2m1fn: np.dtype(ml_dtypes.float4_e2m1fn),
}
by_name = pytest.mark.parametrize("fmt", list(ML_DTYPES), ids=str)
# one 8-bit format per special-value convention: ieee, fn, fnuz, none
ONE_OF_EACH = [
    lowprec.fp8_e5m2,
    lowprec.fp8_e4m3fn,
    lowprec.fp8_e4m3fnuz,
    lowprec.fp6_e3m2fn,
]
one_of_each = pytest.mark.parametrize("fmt", ONE_OF_EACH, ids=str)


def bits(x: float) -> int:
    return int(np.float64(x).view(np.uint64))


def same(a: float, b: float) -> bool:
    """Equal bit for bit, any NaN equal to any NaN."""
    return (math.isnan(a) and math.isnan(b)) or bits(a) == bits(b)


def all_values(fmt: lowprec.Format) -> np.ndarray:
    """Every value of a format with an ml_dtypes twin, by code, as float64."""
    dt = ML_DTYPES[fmt]
    raw = np.arange(fmt.num_codes, dtype=np.uint8 if dt.itemsize == 1 else np.uint16)
    with np.errstate(invalid="ignore"):  # bf16 NaN codes cast to float64 NaN
        return raw.view(dt).astype(np.float64)


def is_value_all(xs: list[float], fmt: lowprec.Format) -> bool:
    """lowprec.round leaves every x alone, bit for bit (NaN stays NaN)."""
    x = np.array(xs, dtype=np.float64)
    r = lowprec.round(x, fmt)
    nan = np.isnan(x)
    return bool(
        np.array_equal(np.isnan(r), nan)
        and np.array_equal(r[~nan].view(np.uint64), x[~nan].view(np.uint64))
    )


# -- the module's packaging --------------------------------------------------------


def test_import_lowprec_does_not_import_hypothesis():
    code = "import sys, lowprec; assert 'hypothesis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_hypothesis_says_how_to_install_it():
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n    import lowprec.testing\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert 'pip install "lowprec[test]"' in out


# -- the private decoder, against ml_dtypes, every code ----------------------------


@by_name
def test_decoder_matches_ml_dtypes_on_every_code(fmt):
    expected = all_values(fmt)
    for code, want in enumerate(expected):
        kind = _kind(fmt, code)
        assert kind == (
            "nan" if np.isnan(want) else "inf" if np.isinf(want) else "finite"
        )
        if kind == "finite":
            got = _magnitude(fmt, code & (fmt.sign_mask - 1))
            got = -got if code & fmt.sign_mask else got
            # fnuz: ml_dtypes has no -0, and neither does the decoder's use
            if not (fmt.specials == "fnuz" and want == 0):
                assert same(got, want), (hex(code), got, want)


# -- formats -----------------------------------------------------------------------


@FAST
@given(lt.formats())
def test_formats_are_valid(fmt):
    again = lowprec.custom_format(
        fmt.precision,
        fmt.exponent_bits,
        bias=fmt.bias,
        subnormals=fmt.subnormals,
        specials=fmt.specials,
    )
    assert again.max == fmt.max
    assert -1022 <= fmt.emin <= fmt.emax <= 1023


@FAST
@given(lt.formats(specials=("fn", "fnuz"), max_precision=8, subnormals=False))
def test_formats_honour_their_arguments(fmt):
    assert fmt.specials in ("fn", "fnuz") and fmt.precision <= 8
    assert not fmt.subnormals


def test_formats_reach_builtins_customs_and_the_exponent_extremes():
    builtins = set(lowprec.builtin_formats())
    assert_reached(
        lt.formats(),
        builtin=lambda f: f in builtins,
        custom=lambda f: f not in builtins,
        fp4=lambda f: f is lowprec.fp4_e2m1fn,
        top=lambda f: f.emax == 1023,
        bottom=lambda f: f.emin == -1022,
        nosub=lambda f: not f.subnormals,
        **{s: lambda f, s=s: f.specials == s for s in ("ieee", "fn", "fnuz", "none")},
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"specials": ("ieee", "inf")},
        {"specials": ()},
        {"max_precision": 54},
        {"min_precision": 9, "max_precision": 8},
        {"max_exponent_bits": 12},
        {"builtin": False, "custom": False},
    ],
)
def test_formats_rejects_bad_arguments(kwargs):
    with pytest.raises(InvalidArgument):
        lt.formats(**kwargs)


# -- codes -------------------------------------------------------------------------


@FAST
@given(st.data(), lt.formats(), st.booleans(), st.booleans())
def test_codes_are_in_range_and_honour_the_flags(data, fmt, allow_nan, allow_inf):
    code = data.draw(lt.codes(fmt, allow_nan=allow_nan, allow_infinity=allow_inf))
    assert type(code) is int and 0 <= code < fmt.num_codes
    assert np.array(code).astype(fmt.code_dtype) == code
    kind = _kind(fmt, code)
    assert kind != "nan" or allow_nan
    assert kind != "inf" or allow_inf


@one_of_each
@FAST
@given(data=st.data())
def test_codes_flags_against_ml_dtypes(fmt, data):
    code = data.draw(lt.codes(fmt, allow_nan=False, allow_infinity=False))
    assert np.isfinite(all_values(fmt)[code])


@pytest.mark.parametrize("fmt", [lowprec.fp8_e4m3fn, lowprec.fp8_e4m3fnuz, "bf16"])
def test_codes_reach_every_kind_and_the_sign(fmt):
    fmt = lowprec.as_format(fmt)
    kinds = ["finite", "nan", "inf"] if fmt.has_inf else ["finite", "nan"]
    assert_reached(
        lt.codes(fmt),
        negative=lambda c: c > fmt.sign_mask,
        all_ones=lambda c: c == fmt.num_codes - 1,
        top_binade=lambda c: c >> fmt.nmant == (fmt.max_code >> fmt.nmant),
        **{k: lambda c, k=k: _kind(fmt, c) == k for k in kinds},
    )


# -- values ------------------------------------------------------------------------


@FAST
@given(st.data(), lt.formats())
def test_values_round_to_themselves(data, fmt):
    # a list per format: one lowprec.round call checks them all
    xs = data.draw(st.lists(lt.values(fmt), min_size=1, max_size=20))
    assert all(isinstance(x, float) for x in xs)
    if not is_value_all(xs, fmt):
        moved = [x for x in xs if not is_value_all([x], fmt)]
        raise AssertionError(f"lowprec.round moves {moved} in {fmt!r}")
    for x in xs:
        if fmt.specials == "fnuz":
            assert not (x == 0 and math.copysign(1, x) < 0)
        assert fmt.has_inf or not math.isinf(x)
        assert fmt.has_nan or not math.isnan(x)


@FAST
@given(st.data(), lt.formats())
def test_values_honour_the_flags(data, fmt):
    strategy = lt.values(
        fmt, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )
    x = data.draw(strategy)
    assert math.isfinite(x)
    assert x == 0 or fmt.smallest_normal <= abs(x) <= fmt.max


@pytest.mark.parametrize("fmt", [lowprec.bf16, lowprec.fp16], ids=str)
@FAST
@given(data=st.data())
def test_values_are_ml_dtypes_values(fmt, data):
    # the 8-bit formats are checked value by value below
    xs = data.draw(st.lists(lt.values(fmt), min_size=1, max_size=20))
    x = np.array(xs, dtype=np.float32)
    back = x.astype(ML_DTYPES[fmt]).astype(np.float32)
    nan = np.isnan(x)
    assert np.array_equal(np.isnan(back), nan)
    assert np.array_equal(back[~nan].view(np.uint32), x[~nan].view(np.uint32))


@FAST
@given(st.data(), lt.formats(max_precision=24), st.booleans())
def test_values_honour_bounds_and_flags(data, fmt, allow_subnormal):
    bound = st.floats(-2.0 * fmt.max, 2.0 * fmt.max)
    lo, hi = sorted([data.draw(bound), data.draw(bound)])
    try:
        strategy = lt.values(
            fmt, min_value=lo, max_value=hi, allow_subnormal=allow_subnormal
        )
    except InvalidArgument:
        assert not _some_value_between(fmt, lo, hi, allow_subnormal)
        return
    x = data.draw(strategy)
    assert lo <= x <= hi and not math.isnan(x)
    if not allow_subnormal:
        assert x == 0 or abs(x) >= fmt.smallest_normal
    if x == 0:  # -0.0 < +0.0 for the bounds, as in hypothesis
        assert math.copysign(1, x) > 0 or math.copysign(1, lo) < 0
        assert math.copysign(1, x) < 0 or math.copysign(1, hi) > 0


def _some_value_between(fmt, lo, hi, allow_subnormal):
    """Whether [lo, hi] holds a value of fmt, found with lowprec.round."""
    sub = allow_subnormal and fmt.subnormals
    up = float(lowprec.round(lo, fmt, rounding="toward_positive", subnormals=sub))
    if up == 0:
        up = fmt.smallest_subnormal if sub else fmt.smallest_normal
    nonzero = lo <= fmt.max and up <= hi
    plus_zero = lo <= 0 and hi >= 0 and math.copysign(1, hi) > 0
    minus_zero = fmt.has_negative_zero and math.copysign(1, lo) < 0 and hi >= 0
    return nonzero or plus_zero or minus_zero


def test_values_bounds_use_signed_zeros_as_hypothesis_does():
    neg = lt.values(lowprec.fp16, min_value=-1.0, max_value=-0.0)
    assert_reached(neg, minus_zero=lambda x: x == 0 and math.copysign(1, x) < 0)

    @FAST
    @given(neg)
    def never_positive(x):
        assert math.copysign(1, x) < 0

    never_positive()
    with pytest.raises(InvalidArgument):
        lt.values(lowprec.fp16, min_value=1.0, max_value=0.5)
    with pytest.raises(InvalidArgument):
        lt.values(lowprec.fp16, min_value=1.0, allow_nan=True)
    with pytest.raises(InvalidArgument):
        lt.values(lowprec.fp8_e4m3fn, min_value=1.01, max_value=1.1)


def _boundary_points(fmt):
    points = [0.0, fmt.smallest_normal, fmt.max, -fmt.max, 1.0]
    if fmt.subnormals:
        points += [fmt.smallest_subnormal, fmt.smallest_normal - fmt.smallest_subnormal]
    if fmt.has_negative_zero:
        points.append(-0.0)
    if fmt.has_inf:
        points += [math.inf, -math.inf]
    return points


@pytest.mark.parametrize("fmt", ["bf16", "fp8_e4m3fnuz", "fp8_e4m3fn", "fp64"])
def test_values_reach_the_boundary_points(fmt):
    fmt = lowprec.as_format(fmt)
    points = {repr(p): lambda x, p=p: same(x, p) for p in _boundary_points(fmt)}
    if fmt.has_nan:
        points["nan"] = math.isnan
    # and the bulk in between, binade by binade even for fp64
    points["middle"] = lambda x: 2 < abs(x) < fmt.max / 2
    points["small"] = lambda x: fmt.smallest_normal * 2 < abs(x) < 0.5
    assert_reached(lt.values(fmt), **points)


@one_of_each
def test_values_reach_every_value_of_an_8bit_format(fmt):
    # every value drawn is an ml_dtypes value, and every one is drawn
    want = {bits(v) if not np.isnan(v) else "nan" for v in all_values(fmt)}
    if fmt.specials == "fnuz":
        want.discard(bits(-0.0))
    seen = set()

    def stop(x):
        seen.add(bits(x) if not math.isnan(x) else "nan")
        return seen >= want

    run_until(lt.values(fmt), stop, max_examples=3000)
    assert seen == want, sorted(want - seen)


# -- near ties ---------------------------------------------------------------------


def _midpoints(fmt):
    v = np.unique(np.abs(all_values(fmt)[np.isfinite(all_values(fmt))]))
    top = fmt.max + 2.0 ** (fmt.emax - fmt.nmant)
    mids = (np.append(v, top)[1:] + v) / 2
    return {Fraction(m) for m in np.concatenate([mids, -mids])}


@one_of_each
@FAST
@given(data=st.data())
def test_near_ties_are_midpoints_or_their_neighbours(fmt, data):
    mids = _midpoints(fmt)
    for x in data.draw(st.lists(lt.near_ties(fmt), min_size=1, max_size=10)):
        near = {np.nextafter(x, -np.inf), x, np.nextafter(x, np.inf)}
        assert mids & {Fraction(float(y)) for y in near}, x


def _is_tie(y, fmt):
    """y is exactly halfway between two neighbouring values of fmt.

    Exact rational arithmetic on the grid of y's binade, independent of
    lowprec.round and of lowprec.testing: above max the grid goes on (max and
    max + ulp), below the smallest normal it is the subnormal spacing, or just
    0 and 2**emin without subnormals.
    """
    y = float(y)
    if not math.isfinite(y) or y == 0:
        return False
    a = abs(Fraction(y))
    e = math.frexp(abs(y))[1] - 1  # 2**e <= |y| < 2**(e + 1)
    if e > fmt.emax:
        return False
    if e < fmt.emin and not fmt.subnormals:
        return a == Fraction(2) ** (fmt.emin - 1)
    quantum = Fraction(2) ** (max(e, fmt.emin) - fmt.nmant)
    return a % quantum == quantum / 2


@settings(deadline=None, max_examples=100, derandomize=True)
@given(st.data(), lt.formats(max_precision=52))
def test_near_ties_of_any_format(data, fmt):
    x = data.draw(lt.near_ties(fmt))
    assert isinstance(x, np.float64)
    assert any(
        _is_tie(y, fmt) for y in (np.nextafter(x, -np.inf), x, np.nextafter(x, np.inf))
    )


@pytest.mark.parametrize("fmt", ["fp16", "fp8_e4m3fn", "fp8_e5m2fnuz"])
def test_near_ties_reach_the_edges_exactly(fmt):
    fmt = lowprec.as_format(fmt)
    overflow = fmt.max + 2.0 ** (fmt.emax - fmt.nmant - 1)  # fp16: 65520
    assert_reached(
        lt.near_ties(fmt),
        underflow=lambda x: x == fmt.smallest_subnormal / 2,
        subnormal_edge=lambda x: x == fmt.smallest_normal - fmt.smallest_subnormal / 2,
        overflow=lambda x: x == overflow,
        minus_overflow=lambda x: x == -overflow,
        above_overflow=lambda x: 0 < x - overflow < 1,
        below_overflow=lambda x: 0 < overflow - x < 1,
        tie=lambda x: _is_tie(x, fmt),
        next_to_tie=lambda x: _is_tie(np.nextafter(x, np.inf), fmt),
    )


@FAST
@given(lt.near_ties(lowprec.bf16, dtype=np.float32))
def test_near_ties_in_float32(x):
    assert x.dtype == np.float32
    assert any(
        _is_tie(y, lowprec.bf16)
        for y in (np.nextafter(x, -np.inf), x, np.nextafter(x, np.inf))
    )


def test_near_ties_refuses_midpoints_the_dtype_cannot_hold():
    with pytest.raises(InvalidArgument, match="54|midpoints"):
        lt.near_ties(lowprec.fp64)
    with pytest.raises(InvalidArgument):
        lt.near_ties(lowprec.fp32, dtype=np.float32)
    with pytest.raises(InvalidArgument):
        lt.near_ties(lowprec.fp16, dtype=np.int32)


# -- floats and arrays -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fmt", ["bf16", "fp8_e4m3fnuz", "fp4_e2m1fn", "fp16"])
def test_floats_span_beyond_both_ends(fmt, dtype):
    fmt = lowprec.as_format(fmt)
    conditions = {
        "underflow": lambda x: 0 < abs(x) < fmt.smallest_subnormal / 2,
        "overflow": lambda x: fmt.max < abs(x) < math.inf,
        "inf": lambda x: x == -math.inf,
        "nan": np.isnan,
        "value": lambda x: x == 1.0,
        "tie": lambda x: _is_tie(x, fmt),
        "dtype": lambda x: x.dtype == dtype,
    }
    if fmt.emax < 127 or dtype == np.float64:
        # bf16 in float32: above max only in the top binade, so rarely
        conditions["far_above"] = lambda x: 2 * fmt.max < abs(x) < math.inf
    assert_reached(lt.floats(fmt, dtype=dtype), **conditions)


@FAST
@given(st.data(), lt.formats(), st.sampled_from([np.float16, np.float32, np.float64]))
def test_floats_have_the_dtype_and_round(data, fmt, dtype):
    try:
        s = lt.floats(fmt, dtype=dtype, allow_nan=False)
    except InvalidArgument:
        info = np.finfo(dtype)
        assert (
            fmt.precision > info.nmant + 1
            or fmt.emax >= info.maxexp
            or fmt.smallest_subnormal < info.smallest_subnormal
        )
        return
    xs = data.draw(st.lists(s, min_size=1, max_size=20))
    assert all(x.dtype == dtype and not np.isnan(x) for x in xs)
    lowprec.round(np.array(xs), fmt)  # every input is one lowprec.round accepts


def test_floats_refuse_a_dtype_narrower_than_the_format():
    with pytest.raises(InvalidArgument):
        lt.floats(lowprec.fp64, dtype=np.float32)
    with pytest.raises(InvalidArgument):
        lt.floats(lowprec.bf16, dtype=np.float16)


@FAST
@given(lt.arrays(lowprec.fp8_e5m2, (3, 4), dtype=np.float32, allow_nan=False))
def test_arrays(a):
    assert a.shape == (3, 4) and a.dtype == np.float32
    assert not np.isnan(a).any()
    back = a.astype(ml_dtypes.float8_e5m2).astype(np.float32)
    assert np.array_equal(back.view(np.uint32), a.view(np.uint32))
