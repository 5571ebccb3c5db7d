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
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import lowprec
import lowprec.testing as lt
from lowprec.testing import _kind, _magnitude

# The first lowprec.round call compiles its kernel (about 2 s): no deadline.
FAST = settings(deadline=None, max_examples=60, derandomize=True)
SEARCH = settings(
    deadline=None,
    max_examples=2000,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

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
SMALL = [f for f in ML_DTYPES if f.bits <= 8]
by_name = pytest.mark.parametrize("fmt", list(ML_DTYPES), ids=str)
small_by_name = pytest.mark.parametrize("fmt", SMALL, ids=str)


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


def is_value(x: float, fmt: lowprec.Format) -> bool:
    """lowprec.round leaves x alone, bit for bit."""
    return same(float(lowprec.round(np.float64(x), fmt)), x)


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
    find(lt.formats(), lambda f: f in builtins, settings=SEARCH)
    find(lt.formats(), lambda f: f not in builtins, settings=SEARCH)
    find(lt.formats(custom=False), lambda f: f is lowprec.fp4_e2m1fn, settings=SEARCH)
    find(lt.formats(builtin=False), lambda f: f.emax == 1023, settings=SEARCH)
    find(lt.formats(builtin=False), lambda f: f.emin == -1022, settings=SEARCH)


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
    assert 0 <= code < fmt.num_codes
    assert np.array(code).astype(fmt.code_dtype) == code
    kind = _kind(fmt, code)
    assert kind != "nan" or allow_nan
    assert kind != "inf" or allow_inf


@small_by_name
@FAST
@given(data=st.data())
def test_codes_flags_against_ml_dtypes(fmt, data):
    code = data.draw(lt.codes(fmt, allow_nan=False, allow_infinity=False))
    assert np.isfinite(all_values(fmt)[code])


@pytest.mark.parametrize("fmt", [lowprec.fp8_e4m3fn, lowprec.fp8_e4m3fnuz, "bf16"])
def test_codes_reach_every_kind_and_the_sign(fmt):
    fmt = lowprec.as_format(fmt)
    for kind in {"finite", "nan", "inf"} if fmt.has_inf else {"finite", "nan"}:
        find(lt.codes(fmt), lambda c, k=kind: _kind(fmt, c) == k, settings=SEARCH)
    find(lt.codes(fmt), lambda c: c > fmt.sign_mask, settings=SEARCH)
    find(lt.codes(fmt), lambda c: c == fmt.num_codes - 1, settings=SEARCH)


# -- values ------------------------------------------------------------------------


@settings(deadline=None, max_examples=150, derandomize=True)
@given(st.data(), lt.formats())
def test_values_round_to_themselves(data, fmt):
    x = data.draw(lt.values(fmt))
    assert isinstance(x, float)
    assert is_value(x, fmt), (fmt, x)
    if fmt.specials == "fnuz":
        assert not (x == 0 and math.copysign(1, x) < 0)
    if not fmt.has_inf:
        assert not math.isinf(x)
    if not fmt.has_nan:
        assert not math.isnan(x)


@by_name
@FAST
@given(data=st.data())
def test_values_are_ml_dtypes_values(fmt, data):
    x = data.draw(lt.values(fmt))
    back = np.float32(x).astype(ML_DTYPES[fmt]).astype(np.float32)
    assert same(float(back), x)


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
    find(neg, lambda x: x == 0 and math.copysign(1, x) < 0, settings=SEARCH)

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
    for p in _boundary_points(fmt):
        find(lt.values(fmt), lambda x, p=p: same(x, p), settings=SEARCH)
    if fmt.has_nan:
        find(lt.values(fmt), math.isnan, settings=SEARCH)
    # and the bulk in between: a normal value that is none of the above
    find(lt.values(fmt), lambda x: 2 < abs(x) < fmt.max / 2, settings=SEARCH)


@small_by_name
def test_values_reach_every_value_of_an_8bit_format(fmt):
    seen = set()

    @settings(deadline=None, max_examples=3000, derandomize=True, database=None)
    @given(lt.values(fmt))
    def collect(x):
        seen.add(bits(x) if not math.isnan(x) else "nan")

    collect()
    want = {bits(v) if not np.isnan(v) else "nan" for v in all_values(fmt)}
    if fmt.specials == "fnuz":
        want.discard(bits(-0.0))
    # uniform over codes: 3000 draws reach nearly all of at most 256 values
    assert seen <= want | {"nan"}
    assert len(seen) >= 0.9 * len(want)


# -- near ties ---------------------------------------------------------------------


def _midpoints(fmt):
    v = np.unique(np.abs(all_values(fmt)[np.isfinite(all_values(fmt))]))
    top = fmt.max + 2.0 ** (fmt.emax - fmt.nmant)
    mids = (np.append(v, top)[1:] + v) / 2
    return {Fraction(m) for m in np.concatenate([mids, -mids])}


@small_by_name
@FAST
@given(data=st.data())
def test_near_ties_are_midpoints_or_their_neighbours(fmt, data):
    x = data.draw(lt.near_ties(fmt))
    near = {np.nextafter(x, -np.inf), x, np.nextafter(x, np.inf)}
    assert _midpoints(fmt) & {Fraction(float(y)) for y in near}


def _is_tie(y, fmt):
    """y is exactly halfway between its two neighbours in fmt (Fraction check)."""
    y = float(y)
    if abs(y) > fmt.max:
        top = fmt.max + 2.0 ** (fmt.emax - fmt.nmant)
        lo, hi = math.copysign(fmt.max, y), math.copysign(top, y)
    else:
        lo = float(lowprec.round(y, fmt, rounding="toward_negative"))
        hi = float(lowprec.round(y, fmt, rounding="toward_positive"))
    return lo != hi and Fraction(lo) + Fraction(hi) == 2 * Fraction(y)


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
    overflow = fmt.max + 2.0 ** (fmt.emax - fmt.nmant - 1)
    for edge in (
        fmt.smallest_subnormal / 2,  # underflow to zero or to the smallest value
        fmt.smallest_normal - fmt.smallest_subnormal / 2,  # the subnormal edge
        overflow,  # fp16: 65520, e4m3fn: 464
        -overflow,
    ):
        find(lt.near_ties(fmt), lambda x, e=edge: x == e, settings=SEARCH)
    find(lt.near_ties(fmt), lambda x: 0 < x - overflow < 1, settings=SEARCH)
    find(lt.near_ties(fmt), lambda x: _is_tie(x, fmt), settings=SEARCH)


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
    s = lt.floats(fmt, dtype=dtype)
    find(s, lambda x: 0 < abs(x) < fmt.smallest_subnormal / 2, settings=SEARCH)
    find(s, lambda x: fmt.max < abs(x) < math.inf, settings=SEARCH)
    find(s, lambda x: x == -math.inf, settings=SEARCH)
    find(s, lambda x: _is_tie(x, fmt), settings=SEARCH)


@FAST
@given(st.data(), lt.formats(), st.sampled_from([np.float16, np.float32, np.float64]))
def test_floats_have_the_dtype_and_round(data, fmt, dtype):
    try:
        s = lt.floats(fmt, dtype=dtype, allow_nan=False)
    except InvalidArgument:
        assert dtype != np.float64
        return
    x = data.draw(s)
    assert x.dtype == dtype and not np.isnan(x)
    lowprec.round(x, fmt)  # every input is one lowprec.round accepts


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
