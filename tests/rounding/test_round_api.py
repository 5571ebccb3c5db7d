"""The public contract of ``lowprec.round``: types, shapes, ``out=``, errors, specials.

Values are checked bit for bit against hand-written expectations (from the
docstrings of ``lowprec.round`` and ``lowprec.modes``) or against the exact
oracle, never against lowprec's own reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracles import (
    DETERMINISTIC_MODES,
    assert_same_bits,
    grid_of,
    round_exact_array,
    same_bits,
)

import lowprec

X = np.array([0.1, -1.3e-3, 3.0, 1e-9, -70000.0, 0.0, -0.0, 1.0 + 2**-9, 240.0])


def bits_equal(a, b) -> bool:
    """Same float64 bit patterns (NaN: both NaN with the same sign)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(same_bits(a, b)))


# ------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_is_preserved_and_values_do_not_depend_on_it(dtype):
    with np.errstate(over="ignore"):  # X's largest values are inf in float16
        x = X.astype(dtype)
    got = lowprec.round(x, "fp8_e4m3")
    assert got.dtype == dtype
    want = round_exact_array(x.astype(np.float64), lowprec.fp8_e4m3)
    assert_same_bits(got.astype(np.float64), want, x)


@pytest.mark.parametrize(
    "dtype",
    [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64],
)
def test_integers_become_float64_exactly(dtype):
    info = np.iinfo(dtype)
    candidates = [
        info.min,
        info.min + 1,
        -3,
        0,
        1,
        3,
        100,
        2049,
        2**24 + 1,
        2**53 - 1,
        2**53,
        info.max - 1,
        info.max,
    ]
    ints = np.array(
        [v for v in candidates if info.min <= v <= info.max and abs(v) <= 2**53],
        dtype=dtype,
    )
    got = lowprec.round(ints, "fp64")
    assert got.dtype == np.float64
    assert got.tolist() == [float(int(i)) for i in ints]  # exact, int by int
    got16 = lowprec.round(ints, "fp16", rounding="toward_zero")
    want = round_exact_array(ints.astype(np.float64), lowprec.fp16, "toward_zero")
    assert_same_bits(got16, want, ints)


@pytest.mark.parametrize(
    "big",
    [
        np.array([2**53 + 1], dtype=np.int64),
        np.array([-(2**53) - 1], dtype=np.int64),
        np.array([2**63 - 1], dtype=np.int64),
        np.array([2**64 - 1], dtype=np.uint64),
        np.array([1, 2**62 + 1]),
    ],
)
def test_integers_float64_cannot_hold_raise_value_error(big):
    with pytest.raises(ValueError, match=r"x\b.*2\*\*53"):
        lowprec.round(big, "fp16")


def test_the_largest_exact_integers_are_accepted():
    got = lowprec.round(np.array([2**53, -(2**53)], dtype=np.int64), "fp64")
    assert got.tolist() == [2.0**53, -(2.0**53)]


@pytest.mark.parametrize(
    "x",
    [
        np.array([1.0], dtype=object),
        np.array([1 + 1j]),
        np.array(["1.0"]),
        np.array([True]),
        np.array([1.0], dtype=np.longdouble),
        np.array([(1.0, 2.0)], dtype=[("a", "f8"), ("b", "f8")]),
    ],
    ids=lambda x: str(x.dtype),
)
def test_other_dtypes_raise_type_error_naming_x(x):
    with pytest.raises(TypeError, match=r"\bx\b") as info:
        lowprec.round(x, "fp16")
    assert str(x.dtype) in str(info.value)


@pytest.mark.parametrize(
    ("dtype", "fmt"),
    [
        (np.float16, "bf16"),
        (np.float16, "fp32"),
        (np.float16, "tf32"),
        (np.float32, "fp64"),
    ],
)
def test_format_too_wide_for_the_dtype_raises_value_error(dtype, fmt):
    with pytest.raises(ValueError, match=np.dtype(dtype).name):
        lowprec.round(np.ones(3, dtype=dtype), fmt)


def test_format_too_wide_for_x_but_held_by_a_wider_out():
    """The error above says "or give a wider out="; a float32 ``out`` holds bf16,
    and float16 inputs are exact float32 values, so this call should work."""
    x = np.array([1.0, 3.140625, -65504.0, 6e-8], dtype=np.float16)
    out = np.empty(x.shape, dtype=np.float32)
    got = lowprec.round(x, "bf16", out=out)
    assert got is out
    want = round_exact_array(x.astype(np.float64), lowprec.bf16)
    assert_same_bits(out.astype(np.float64), want, x)


# ------------------------------------------------------------- scalars, shapes


@pytest.mark.parametrize(
    ("x", "scalar_type"),
    [
        (1.3, np.float64),
        (np.float64(1.3), np.float64),
        (np.float32(1.3), np.float32),
        (np.float16(1.3), np.float16),
        (np.array(1.3), np.float64),
        (7, np.float64),
    ],
)
def test_zero_d_input_returns_a_numpy_scalar(x, scalar_type):
    got = lowprec.round(x, "fp8_e4m3")
    assert type(got) is scalar_type
    assert float(got) == round_exact_array(np.float64(x), lowprec.fp8_e4m3)


def test_zero_d_input_with_out_returns_out():
    out = np.empty((), dtype=np.float64)
    got = lowprec.round(np.array(1.3), "fp8_e4m3", out=out)
    assert got is out and out[()] == 1.25


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4), (5,), (2, 3), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_is_preserved(shape, dtype):
    x = (np.arange(math.prod(shape)).reshape(shape) * 0.37 - 1).astype(dtype)
    got = lowprec.round(x, "fp8_e5m2")
    assert got.shape == shape and got.dtype == dtype
    flat = lowprec.round(x.reshape(-1), "fp8_e5m2")
    assert bits_equal(got.reshape(-1), flat)


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[::2],
        lambda a: a[:, ::-1],
        lambda a: a.T,
        lambda a: np.asfortranarray(a),
        lambda a: a[1:, 2:7:3],
        lambda a: np.broadcast_to(a[:1], a.shape),
    ],
    ids=["rows::2", "cols::-1", "T", "fortran", "slice", "broadcast"],
)
def test_non_contiguous_inputs(view):
    base = np.linspace(-3, 3, 60).reshape(6, 10) ** 3
    x = view(base)
    got = lowprec.round(x, "fp8_e4m3fn")
    assert got.shape == x.shape
    want = round_exact_array(np.ascontiguousarray(x), lowprec.fp8_e4m3fn)
    assert_same_bits(got, want, x)


def test_input_is_not_modified():
    x = X.copy()
    lowprec.round(x, "fp4_e2m1fn")
    assert bits_equal(x, X)


def test_format_given_by_object_name_alias_or_dtype():
    want = lowprec.round(X, lowprec.fp16)
    for fmt in ("fp16", "half", "float16", "FP16", np.float16, np.dtype(np.float16)):
        assert bits_equal(lowprec.round(X, fmt), want), fmt


# -------------------------------------------------------------------- out=


def test_out_is_filled_and_returned():
    out = np.empty_like(X)
    got = lowprec.round(X, "fp8_e4m3", out=out)
    assert got is out
    assert bits_equal(out, round_exact_array(X, lowprec.fp8_e4m3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_may_be_x_itself(dtype):
    x = X.astype(dtype)
    want = round_exact_array(x.astype(np.float64), lowprec.fp8_e5m2)
    got = lowprec.round(x, "fp8_e5m2", out=x)
    assert got is x
    assert_same_bits(x.astype(np.float64), want, X)


# each case compiles its own in-place kernels; the fast tier keeps one nearest,
# one directed and both stochastic modes, the slow tier every (mode, dtype)
IN_PLACE_FAST = {
    ("ties_to_even", np.float32),
    ("toward_negative", np.float64),
    ("stochastic", np.float64),
    ("stochastic_equal", np.float32),
}
IN_PLACE_CASES = [
    pytest.param(
        mode,
        dtype,
        marks=() if (mode, dtype) in IN_PLACE_FAST else pytest.mark.slow,
        id=f"{mode}-{np.dtype(dtype).name}",
    )
    for dtype in (np.float32, np.float64)
    for mode in lowprec.ROUNDING_MODES
]


@pytest.mark.parametrize(("rounding", "dtype"), IN_PLACE_CASES)
def test_out_x_over_several_blocks_rounds_and_counts_as_a_new_array(rounding, dtype):
    # (in place, the loop writes through x itself: its own compiled variant)
    gen = np.random.default_rng(8)
    n = 3 * (1 << 14) + 5
    x = (gen.standard_normal(n) * np.exp2(gen.integers(-30, 20, n))).astype(dtype)
    x[::997] = np.nan
    kw = {"rng": 3} if rounding.startswith("stochastic") else {}
    stats = [lowprec.RoundingStats(), lowprec.RoundingStats()]
    want = lowprec.round(x, "fp16", rounding=rounding, stats=stats[0], **kw)
    y = x.copy()
    got = lowprec.round(y, "fp16", rounding=rounding, out=y, stats=stats[1], **kw)
    assert got is y
    assert_same_bits(y, want, x, f"{rounding} {dtype}")
    assert stats[0].as_dict() == stats[1].as_dict()


def test_out_may_be_a_non_contiguous_x_itself():
    base = np.linspace(-3, 3, 40).reshape(4, 10) ** 3
    x = base.copy()
    view = x[:, ::3]
    want = round_exact_array(view.copy(), lowprec.fp8_e5m2)
    lowprec.round(view, "fp8_e5m2", out=view)
    assert_same_bits(view, want, base[:, ::3])
    untouched = np.ones(x.shape, dtype=bool)
    untouched[:, ::3] = False
    assert bits_equal(x[untouched], base[untouched])


@pytest.mark.parametrize("shift", [1, -1, 7])
def test_out_overlapping_x_in_part(shift):
    """``out`` sharing memory with ``x`` at an offset: the result must be that of
    rounding a copy of x (as NumPy's ufuncs guarantee), or a ValueError."""
    buf = np.linspace(1.0, 2.0, 50_001) * 3.01
    n = buf.size - abs(shift)
    x = buf[:n] if shift > 0 else buf[-n:]
    out = buf[shift : shift + n] if shift > 0 else buf[:n]
    want = lowprec.round(x.copy(), "bf16")
    try:
        lowprec.round(x, "bf16", out=out)
    except ValueError as err:
        assert "out" in str(err)
        return
    assert_same_bits(out, want, None, f"out = x shifted by {shift}")


@pytest.mark.parametrize(
    ("x_dtype", "out_dtype", "fmt"),
    [
        (np.float32, np.float64, "bf16"),
        (np.float16, np.float64, "fp8_e4m3"),
        (np.float16, np.float32, "fp16"),
        (np.float64, np.float16, "fp8_e5m2"),  # narrower out that holds the format
        # wider than the input's storage, and with a narrower exponent range too
        (np.float32, np.float64, lowprec.custom_format(30, 8)),
        (np.float32, np.float64, lowprec.custom_format(40, 5)),
    ],
)
def test_out_of_another_dtype(x_dtype, out_dtype, fmt):
    with np.errstate(over="ignore"):  # X's largest values are inf in float16
        x = X.astype(x_dtype)
    out = np.full(x.shape, np.nan, dtype=out_dtype)
    got = lowprec.round(x, fmt, out=out)
    assert got is out and out.dtype == out_dtype
    want = round_exact_array(x.astype(np.float64), lowprec.as_format(fmt))
    assert_same_bits(out.astype(np.float64), want, x)


def test_out_non_contiguous_and_fortran():
    x = np.linspace(-5, 5, 24).reshape(4, 6)
    want = round_exact_array(x, lowprec.fp6_e3m2fn)
    big = np.zeros((8, 6))
    lowprec.round(x, "fp6_e3m2fn", out=big[::2])
    assert_same_bits(big[::2], want, x)
    assert not big[1::2].any()
    fortran = np.zeros((4, 6), order="F")
    lowprec.round(x, "fp6_e3m2fn", out=fortran)
    assert_same_bits(fortran, want, x)


@pytest.mark.parametrize(
    ("out", "error", "pattern"),
    [
        (np.empty(4), ValueError, r"out\b.*shape"),
        (np.empty((3, 3)), ValueError, r"out\b.*shape"),
        ([0.0] * len(X), TypeError, r"out\b"),
        (np.empty(len(X), dtype=np.int32), TypeError, r"out\b.*int32"),
        (np.empty(len(X), dtype=np.complex128), TypeError, r"out\b.*complex128"),
        (np.empty(len(X), dtype=np.float16), ValueError, r"out\b.*float16"),
    ],
)
def test_bad_out_raises(out, error, pattern):
    with pytest.raises(error, match=pattern):
        lowprec.round(X, "bf16", out=out)


def test_read_only_out_raises():
    out = np.empty_like(X)
    out.setflags(write=False)
    with pytest.raises(ValueError, match=r"out\b.*read-only"):
        lowprec.round(X, "fp16", out=out)


# --------------------------------------------------------------- bad options


def test_unknown_rounding_lists_the_names():
    for bad in ("nearest", "RNE", "", None, 0):
        with pytest.raises(ValueError) as info:
            lowprec.round(X, "fp16", rounding=bad)
        for name in lowprec.ROUNDING_MODES:
            assert name in str(info.value)


def test_unknown_format_raises():
    with pytest.raises(ValueError, match="fp17"):
        lowprec.round(X, "fp17")
    with pytest.raises(TypeError):
        lowprec.round(X, 16)


@pytest.mark.parametrize(
    ("kwargs", "error", "arg"),
    [
        ({"saturate": 1}, TypeError, "saturate"),
        ({"saturate": "yes"}, TypeError, "saturate"),
        ({"saturate": None}, TypeError, "saturate"),
        ({"subnormals": 0}, TypeError, "subnormals"),
        ({"subnormals": "no"}, TypeError, "subnormals"),
        ({"stats": {}}, TypeError, "stats"),
        ({"stats": lowprec.RoundingStats}, TypeError, "stats"),
        ({"rounding": "stochastic", "random_bits": 0}, ValueError, "random_bits"),
        ({"rounding": "stochastic", "random_bits": 65}, ValueError, "random_bits"),
        ({"rounding": "stochastic", "random_bits": 2.0}, TypeError, "random_bits"),
        ({"rounding": "stochastic", "random_bits": True}, TypeError, "random_bits"),
        ({"rounding": "stochastic", "random_bits": "8"}, TypeError, "random_bits"),
        ({"rounding": "stochastic_equal", "random_bits": 4}, ValueError, "random_bits"),
        ({"random_bits": 4}, ValueError, "random_bits"),
        ({"rounding": "stochastic", "rng": "seed"}, TypeError, "rng"),
        ({"rounding": "stochastic", "rng": 1.5}, TypeError, "rng"),
        ({"rounding": "stochastic", "rng": -1}, ValueError, "rng"),
        ({"rounding": "stochastic", "rng": 2**64}, ValueError, "rng"),
        (
            {"rounding": "stochastic", "rng": np.zeros(len(X), dtype=np.int64)},
            TypeError,
            "rng",
        ),
        (
            {"rounding": "stochastic", "rng": np.zeros(len(X) + 1, dtype=np.uint64)},
            ValueError,
            "rng",
        ),
        (
            {"rounding": "stochastic", "rng": np.zeros((1, len(X)), dtype=np.uint64)},
            ValueError,
            "rng",
        ),
    ],
)
def test_bad_options_raise_naming_the_argument(kwargs, error, arg):
    with pytest.raises(error, match=rf"\b{arg}\b"):
        lowprec.round(X, "fp16", **kwargs)


@pytest.mark.parametrize("rounding", DETERMINISTIC_MODES)
@pytest.mark.parametrize(
    "rng",
    [0, np.random.default_rng(0), np.zeros(len(X), dtype=np.uint64)],
    ids=["int", "Generator", "words"],
)
def test_rng_for_a_deterministic_mode_raises(rounding, rng):
    with pytest.raises(ValueError, match=r"\brng\b"):
        lowprec.round(X, "fp16", rounding=rounding, rng=rng)


# -------------------------------------------------------- zeros, NaN and inf

FORMAT_KINDS = ["fp16", "fp8_e4m3fn", "fp8_e4m3fnuz", "fp6_e2m3fn"]  # ieee fn fnuz none


@pytest.mark.parametrize("rounding", [*DETERMINISTIC_MODES, "stochastic"])
@pytest.mark.parametrize("name", FORMAT_KINDS)
def test_signed_zeros(name, rounding):
    fmt = lowprec.as_format(name)
    x = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324, -5e-324])
    kw = {"rng": 0} if rounding == "stochastic" else {}
    got = lowprec.round(x[:2], fmt, rounding=rounding, **kw)
    want = [0.0, -0.0] if fmt.has_negative_zero else [0.0, 0.0]
    assert bits_equal(got, want)
    # tiny values that go to zero keep their sign (toward zero: all of them)
    got = lowprec.round(x, fmt, rounding="toward_zero")
    want = np.array([0.0, -0.0] * 3) if fmt.has_negative_zero else np.zeros(6)
    assert bits_equal(got, want)


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("rounding", [*DETERMINISTIC_MODES, "stochastic_equal"])
@pytest.mark.parametrize("name", FORMAT_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_stays_nan_with_its_sign(dtype, name, rounding, saturate):
    uint = np.uint64 if dtype == np.float64 else np.uint32
    payloads = (  # quiet and signalling NaNs with payloads, both signs
        [0x7FF0000000000001, 0xFFF4000000000000, 0x7FFFFFFFFFFFFFFF]
        if dtype == np.float64
        else [0x7F800001, 0xFFC00005, 0x7FFFFFFF]
    )
    x = np.concatenate(
        [np.array([np.nan, -np.nan], dtype=dtype), np.array(payloads, uint).view(dtype)]
    )
    kw = {"rng": 0} if rounding == "stochastic_equal" else {}
    got = lowprec.round(x, name, rounding=rounding, saturate=saturate, **kw)
    assert np.isnan(got).all()
    assert np.signbit(got).tolist() == [False, True, False, True, False]


@pytest.mark.parametrize("rounding", DETERMINISTIC_MODES)
@pytest.mark.parametrize(
    ("name", "saturate", "want"),
    [
        ("fp16", False, math.inf),
        ("bf16", False, math.inf),
        ("fp8_e5m2", False, math.inf),
        ("fp8_e4m3fn", False, math.nan),
        ("fp8_e4m3fnuz", False, math.nan),
        ("fp8_e5m2fnuz", False, math.nan),
        ("fp6_e2m3fn", False, 7.5),
        ("fp6_e3m2fn", False, 28.0),
        ("fp4_e2m1fn", False, 6.0),
        ("fp16", True, 65504.0),
        ("fp8_e4m3fn", True, 448.0),
        ("fp8_e4m3fnuz", True, 240.0),
        ("fp4_e2m1fn", True, 6.0),
    ],
)
def test_infinite_inputs(name, saturate, want, rounding):
    got = lowprec.round(
        np.array([np.inf, -np.inf]), name, rounding=rounding, saturate=saturate
    )
    assert bits_equal(got, [want, -want])  # NaN: +NaN and -NaN


# Overflow, as documented in lowprec.modes: ties and stochastic modes go to inf,
# the directed modes to inf toward their own infinity only, toward_zero and to_odd
# to max; "inf" means NaN in a format without inf, max in one without NaN.
OVERFLOW = {
    # mode: (what +overflow gives, what -overflow gives)
    "ties_to_even": ("inf", "inf"),
    "ties_to_away": ("inf", "inf"),
    "toward_zero": ("max", "max"),
    "toward_positive": ("inf", "max"),
    "toward_negative": ("max", "inf"),
    "to_odd": ("max", "max"),
    "stochastic": ("inf", "inf"),  # past max + gap every word rounds up
    "stochastic_equal": ("inf", "inf"),
}


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("rounding", list(OVERFLOW))
@pytest.mark.parametrize(
    "name", ["fp16", "bf16", "fp8_e5m2", "fp8_e4m3fn", "fp8_e4m3fnuz", "fp4_e2m1fn"]
)
def test_overflow_by_mode_and_format(name, rounding, saturate):
    fmt = lowprec.as_format(name)
    g = grid_of(fmt)
    top_gap = math.ldexp(1.0, g.emax - g.precision + 1)
    # past max + one gap: both candidates are above max, every mode overflows
    big = np.array([float(g.max) + top_gap * 1.5, 1e300, float(np.finfo(float).max)])
    x = np.concatenate([big, -big])
    kw = (
        {"rng": np.full(x.size, 2**64 - 1, dtype=np.uint64)}
        if "stoch" in rounding
        else {}
    )
    if rounding == "stochastic":
        kw["random_bits"] = 64
    stats = lowprec.RoundingStats()
    got = lowprec.round(x, fmt, rounding=rounding, saturate=saturate, stats=stats, **kw)
    inf_like = math.inf if fmt.has_inf else (math.nan if fmt.has_nan else fmt.max)
    results = []
    for kind in OVERFLOW[rounding]:
        results.append(fmt.max if saturate or kind == "max" else inf_like)
    want = [results[0]] * 3 + [-results[1]] * 3
    assert bits_equal(got, want), (got, want)
    assert stats.overflow == 6
    saturated = sum(
        3
        for kind, r in zip(OVERFLOW[rounding], results, strict=True)
        if kind == "inf" and r == fmt.max
    )
    assert stats.saturated == saturated


@pytest.mark.parametrize("name", ["fp16", "fp8_e4m3fn", "fp8_e5m2fnuz", "fp6_e3m2fn"])
def test_overflow_threshold_is_the_midpoint_above_max(name):
    fmt = lowprec.as_format(name)
    g = grid_of(fmt)
    bound = float(g.max) + math.ldexp(1.0, g.emax - g.precision + 1) / 2
    below, above = np.nextafter(bound, 0), np.nextafter(bound, math.inf)
    got = lowprec.round(np.array([below, bound, above]), fmt)
    inf_like = math.inf if fmt.has_inf else (math.nan if fmt.has_nan else fmt.max)
    # the tie goes to the even neighbour: max + gap (odd significand at max) or,
    # for fn formats whose max has an even significand, max
    tie = fmt.max if fmt.specials == "fn" else inf_like
    assert bits_equal(got, [fmt.max, tie, inf_like])
    got = lowprec.round(np.array([below, bound, above]), fmt, rounding="ties_to_away")
    assert bits_equal(got, [fmt.max, inf_like, inf_like])


# ------------------------------------------------------------- known values


@pytest.mark.parametrize(
    ("name", "x", "want"),
    [
        ("fp8_e4m3fn", 464.0, 448.0),  # tie between 448 and 480: even is 448
        ("fp8_e4m3fn", -464.0, -448.0),
        ("fp8_e4m3fn", 465.0, math.nan),  # nearer 480, the NaN code: overflow
        ("fp8_e4m3fn", -465.0, -math.nan),
        ("fp16", 65520.0, math.inf),  # tie between 65504 and 65536: even is 65536
        ("fp16", 65519.99, 65504.0),
        ("fp16", -65520.0, -math.inf),
        ("bf16", 1 + 2**-8, 1.0),  # tie: to even
        ("bf16", 1 + 3 * 2**-8, 1 + 2**-6),  # tie: to even, upward
        ("bf16", 1 + 2**-8 + 2**-40, 1 + 2**-7),  # just above the tie
        ("fp16", 2.0**-25, 0.0),  # half the smallest subnormal: tie to 0
        ("fp16", -(2.0**-25), -0.0),
        ("fp16", 2.0**-25 + 2.0**-60, 2.0**-24),
        ("fp8_e4m3fnuz", -(2.0**-12), 0.0),  # flushed: fnuz has only +0
        ("fp8_e5m2", 0.1, 0.09375),
        ("fp4_e2m1fn", 2.5, 2.0),
        ("fp4_e2m1fn", 100.0, 6.0),
        ("fp6_e2m3fn", 0.125, 0.125),  # the smallest subnormal, 2**-3
        ("fp6_e2m3fn", 0.0625, 0.0),  # half of it: tie to 0
    ],
)
def test_known_values(name, x, want):
    assert bits_equal(lowprec.round(x, name), want)


def test_docstring_examples():
    got = lowprec.round(np.array([0.1, 1e-8, 70000.0]), "fp16")
    assert bits_equal(got, [0.0999755859375, 0.0, math.inf])
    got = lowprec.round(np.float32(1.00390625), "bf16", rounding="toward_positive")
    assert type(got) is np.float32 and got == np.float32(1.0078125)
    stats = lowprec.RoundingStats()
    lowprec.round(np.array([1e-9, 0.1, 1e6, 1.0]), "fp16", stats=stats)
    assert (stats.inexact, stats.flushed, stats.overflow) == (3, 1, 1)


# -------------------------------------------------------------- subnormals=


def test_subnormals_false_removes_the_subnormals():
    fmt = lowprec.fp8_e4m3  # emin = -6, smallest subnormal 2**-9
    nosub = lowprec.custom_format(4, 4, subnormals=False)
    x = np.array([2.0**-9, 2.0**-7, 2.0**-7 + 2.0**-30, 3 * 2.0**-8, 2.0**-6])
    got = lowprec.round(x, fmt, subnormals=False)
    assert bits_equal(got, [0.0, 0.0, 2.0**-6, 2.0**-6, 2.0**-6])
    assert bits_equal(got, lowprec.round(x, nosub))
    got = lowprec.round(x, fmt, subnormals=False, rounding="to_odd")
    assert bits_equal(got, [2.0**-6] * 5)


def test_subnormals_true_restores_the_subnormals():
    """subnormals=True on a format made without them rounds as the format with
    them: the doc says "None uses the format's own setting" (so True overrides)."""
    nosub = lowprec.custom_format(4, 4, subnormals=False)
    x = np.array([2.0**-9, 2.0**-8, 3 * 2.0**-9, 2.0**-7 * 0.75, 2.0**-10 * 1.5])
    want = lowprec.round(x, lowprec.fp8_e4m3)
    assert bits_equal(want, [2.0**-9, 2.0**-8, 3 * 2.0**-9, 3 * 2.0**-9, 2.0**-9])
    got = lowprec.round(x, nosub, subnormals=True)
    assert_same_bits(got, want, x, "custom_format(4, 4, subnormals=False), True")


# ------------------------------------------------------------------- stats=


def test_stats_accumulate_over_calls_and_count_elements():
    stats = lowprec.RoundingStats()
    x = np.array([1.0, 1.1, 1e-30, 1e30, np.nan, -np.inf, 3 * 2.0**-26])
    lowprec.round(x, "fp16", stats=stats)
    assert stats.as_dict() == {
        "total": 7,
        "inexact": 4,  # 1.1, 1e-30, 1e30, 3 * 2**-26 (rounded to a subnormal)
        "underflow": 2,  # 1e-30, 3 * 2**-26: inexact below 2**-14
        "flushed": 1,
        "overflow": 1,
        "saturated": 0,
        "nan": 1,
    }
    lowprec.round(x.reshape(7, 1), "fp16", stats=stats, saturate=True)
    assert stats.total == 14 and stats.saturated == 2 and stats.nan == 2
