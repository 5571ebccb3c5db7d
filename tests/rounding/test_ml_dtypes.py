"""ml_dtypes arrays in and out of round/encode/decode, against ml_dtypes itself.

The oracles: ``ml_dtypes.finfo`` for the mapping of formats to dtypes; ml_dtypes'
own decoding of every code (a ``.view`` of the code) and the Fraction decoding of
``tests/oracles.py`` for the inputs; ml_dtypes' cast from float32 (one rounding,
ties to even: its ``ConvertImpl``) for the bits lowprec writes into an ml_dtypes
``out``. Every code of every format both have (fp16 and bf16: 65536 codes) is
swept, with its neighbours and midpoints for the outputs.

Where the two differ on purpose, a test pins it: with ``saturate=True`` lowprec
clamps ±inf to ±max, while ml_dtypes' saturating conversion keeps ±inf (NaN in
the formats without inf) and NumPy's ``astype`` does not saturate at all; NaN
into fp6/fp4 is a ValueError in lowprec, a zero in ml_dtypes.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from oracles import all_code_values, assert_same_bits, boundary_inputs
from oracles import decode as oracle_decode

import lowprec
from lowprec.rounding._storage import pack, pack_codes
from lowprec.rounding.rounder import as_float_array

# The ml_dtypes type of each built-in format, stated here independently.
EXPECTED = {
    "fp64": np.float64,
    "fp32": np.float32,
    "tf32": None,
    "fp16": np.float16,
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
# ml_dtypes floats without a built-in lowprec format of their own
EXTRA = ("float8_e3m4", "float8_e4m3b11fnuz")
# every (name, dtype) lowprec and ml_dtypes share, 16 bits or fewer
SHARED = [(n, d) for n, d in EXPECTED.items() if d is not None and n not in
          ("fp32", "fp64")] + [(n, getattr(ml_dtypes, n)) for n in EXTRA]
IDS = [n for n, _ in SHARED]
# bfloat16 NaN codes without the quiet bit are float32 signalling NaNs: lowprec
# must cast them without the warning NumPy gives for an invalid operation
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def fmt_of(name: str) -> lowprec.Format:
    return lowprec.as_format(getattr(ml_dtypes, name) if name in EXTRA else name)


def code_view(fmt) -> np.dtype:
    return np.dtype(np.uint16 if fmt.bits > 8 else np.uint8)


@functools.cache
def every_code(name: str) -> np.ndarray:
    """Every code of the format, in the unsigned dtype of its storage."""
    fmt = fmt_of(name)
    return np.arange(1 << fmt.bits, dtype=code_view(fmt))


@functools.cache
def float32_inputs(name: str) -> np.ndarray:
    """Every value, its float32 neighbours, every midpoint and theirs, specials."""
    x = boundary_inputs(fmt_of(name), np.float32)
    if not fmt_of(name).has_nan:  # NaN has no code: see the pinned difference
        x = x[~np.isnan(x)]
    x.setflags(write=False)
    return x


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint16 if a.dtype.itemsize == 2 else np.uint8)


# ------------------------------------------------------------------ the mapping


@pytest.mark.parametrize("name", EXPECTED)
def test_format_ml_dtype_is_the_matching_dtype(name):
    want = EXPECTED[name]
    got = lowprec.as_format(name).ml_dtype
    assert got is None if want is None else got == np.dtype(want)
    if want is not None:  # and back
        assert lowprec.as_format(want) is lowprec.as_format(name)
        assert lowprec.as_format(np.dtype(want)) is lowprec.as_format(name)


@pytest.mark.parametrize(("name", "dtype"), SHARED, ids=IDS)
def test_the_format_of_a_dtype_has_ml_dtypes_finfo(name, dtype):
    fmt, fi = lowprec.as_format(dtype), ml_dtypes.finfo(dtype)
    assert (fmt.bits, fmt.nmant, fmt.nexp) == (fi.bits, fi.nmant, fi.nexp)
    assert (fmt.minexp, fmt.maxexp) == (fi.minexp, fi.maxexp)
    for attr in ("max", "smallest_normal", "smallest_subnormal", "eps"):
        assert getattr(fmt, attr) == float(getattr(fi, attr)), attr
    assert -fmt.max == float(fi.min)
    assert fmt.ml_dtype == np.dtype(dtype)


def test_the_formats_without_a_built_in_are_named_as_ml_dtypes_names_them():
    f = lowprec.as_format(ml_dtypes.float8_e3m4)
    assert (f.name, f.precision, f.exponent_bits, f.bias, f.specials) == (
        "float8_e3m4", 5, 3, 3, "ieee")
    assert lowprec.as_format(np.dtype("float8_e4m3b11fnuz")).specials == "fnuz"


def test_a_custom_format_with_the_same_parameters_has_the_same_dtype():
    assert lowprec.custom_format(8, 8).ml_dtype == np.dtype(ml_dtypes.bfloat16)
    assert lowprec.custom_format(4, 4, specials="fn").ml_dtype == np.dtype(
        ml_dtypes.float8_e4m3fn)
    assert lowprec.custom_format(8, 8, subnormals=False).ml_dtype is None
    assert lowprec.custom_format(5, 4).ml_dtype is None


@pytest.mark.parametrize("name", ["float8_e8m0fnu", "float8_e5m3fnu", "int4"])
def test_dtypes_that_are_not_signed_floats_have_no_format(name):
    if not hasattr(ml_dtypes, name):
        pytest.skip(f"ml_dtypes {ml_dtypes.__version__} has no {name}")
    with pytest.raises(ValueError, match="fmt: dtype"):
        lowprec.as_format(getattr(ml_dtypes, name))


# ---------------------------------------------------------------------- inputs


@pytest.mark.parametrize(("name", "dtype"), SHARED, ids=IDS)
def test_every_code_comes_in_exactly(name, dtype):
    fmt = fmt_of(name)
    typed = every_code(name).view(dtype)  # sub-byte types: the code in the low bits
    want = all_code_values(fmt)  # the Fraction decoding of each code
    got = as_float_array(typed)
    assert got.dtype == (np.float16 if dtype is np.float16 else np.float32)
    assert_same_bits(got, want, every_code(name), name)
    assert_same_bits(lowprec.decode(typed, fmt), want, every_code(name), name)


@pytest.mark.parametrize(("name", "dtype"), SHARED, ids=IDS)
def test_rounding_every_code_onto_its_own_format_keeps_dtype_and_bits(name, dtype):
    fmt, codes = fmt_of(name), every_code(name)
    typed = codes.view(dtype)
    got = lowprec.round(typed, fmt)
    assert got.dtype == np.dtype(dtype)
    nan = np.isnan(all_code_values(fmt))
    assert np.array_equal(bits(got)[~nan], codes[~nan])
    assert np.isnan(got[nan].astype(np.float32)).all()
    # encode returns the same codes; its typed view the same array
    assert np.array_equal(lowprec.encode(typed, fmt)[~nan], codes[~nan])
    same = lowprec.encode(typed, fmt, dtype=dtype)
    assert same.dtype == np.dtype(dtype)
    assert np.array_equal(bits(same), bits(got))


def test_unsigned_ml_dtypes_floats_come_in_as_float32():
    codes = np.arange(256, dtype=np.uint8)
    e8m0 = codes.view(ml_dtypes.float8_e8m0fnu)
    want = np.array([np.ldexp(1.0, c - 127) for c in range(255)] + [np.nan])
    got = as_float_array(e8m0)
    assert got.dtype == np.float32
    assert_same_bits(got, want, codes, "e8m0")
    # no lowprec format to keep: the result is float32
    r = lowprec.round(e8m0[:8], "bf16")
    assert r.dtype == np.float32 and r.tolist() == want[:8].tolist()


def test_ml_dtypes_integers_come_in_as_float64():
    v = np.arange(-8, 8)
    got = lowprec.round(v.astype(ml_dtypes.int4), "fp16")
    assert got.dtype == np.float64 and got.tolist() == v.tolist()
    assert as_float_array(np.arange(4).astype(ml_dtypes.uint2)).tolist() == [0, 1, 2, 3]


def test_fields_and_describe_take_ml_dtypes_values():
    x = np.array([0.1, -448.0], dtype=ml_dtypes.bfloat16)  # 0.1 is 0x3DCD in bf16
    f = lowprec.fields(x, "bf16")
    assert (f.sign.tolist(), f.exponent.tolist(), f.significand.tolist()) == (
        [0, 1], [0x7B, 0x87], [0x4D, 0x60])
    assert lowprec.describe(x[0], "bf16") == (
        "0 01111011 1001101 = +1.6015625 × 2^-4 = 0.10009765625 (normal)")


def test_a_scalar_keeps_its_type():
    got = lowprec.round(ml_dtypes.bfloat16(1.5), "fp4_e2m1fn")
    assert type(got) is ml_dtypes.bfloat16 and float(got) == 1.5


# --------------------------------------------------------------------- outputs


@pytest.mark.parametrize(("name", "dtype"), SHARED, ids=IDS)
def test_an_ml_dtypes_out_gets_the_bits_ml_dtypes_casts_to(name, dtype):
    fmt, x = fmt_of(name), float32_inputs(name)
    with np.errstate(over="ignore", invalid="ignore"):
        want = bits(x.astype(dtype))
    out = np.empty(x.shape, dtype=dtype)
    assert lowprec.round(x, fmt, out=out) is out
    assert np.array_equal(bits(out), want)
    assert np.array_equal(bits(lowprec.encode(x, fmt, dtype=dtype)), want)
    assert np.array_equal(lowprec.encode(x, fmt), want)


@pytest.mark.parametrize("name", ["fp8_e4m3fn", "fp8_e5m2", "fp6_e3m2fn", "fp4_e2m1fn"])
def test_every_bf16_rounded_to_a_narrower_format_stays_bf16(name):
    x = np.arange(1 << 16, dtype=np.uint16).view(ml_dtypes.bfloat16)
    if not lowprec.as_format(name).has_nan:
        x = x[~np.isnan(x.astype(np.float32))]
    got = lowprec.round(x, name)
    assert got.dtype == np.dtype(ml_dtypes.bfloat16)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.astype(EXPECTED[name]).astype(ml_dtypes.bfloat16)  # both exact
    nan = np.isnan(want.astype(np.float32))
    assert np.array_equal(bits(got)[~nan], bits(want)[~nan])
    assert np.isnan(got[nan].astype(np.float32)).all()
    # into a bf16 out: the same bits
    out = np.empty_like(x)
    lowprec.round(as_float_array(x).astype(np.float64), name, out=out)
    assert np.array_equal(bits(out), bits(got))


def test_out_may_be_x_or_a_strided_view():
    x = np.array([1.1, -2.3, 0.1, 7.0], dtype=ml_dtypes.bfloat16)
    want = x.astype(ml_dtypes.float8_e4m3fn).astype(ml_dtypes.bfloat16)
    assert lowprec.round(x, "fp8_e4m3fn", out=x) is x
    assert np.array_equal(bits(x), bits(want))
    big = np.zeros(8, dtype=ml_dtypes.float8_e5m2)
    lowprec.round(np.array([1.0, 3.0, -0.0, 5.0]), "fp8_e5m2", out=big[::2])
    assert bits(big).tolist() == [0x3C, 0, 0x42, 0, 0x80, 0, 0x45, 0]


@pytest.mark.parametrize(
    ("x_dtype", "fmt", "out_dtype"),
    [
        (ml_dtypes.bfloat16, "fp16", None),  # precision 11 > 8
        (ml_dtypes.float8_e4m3fn, "bf16", None),
        (np.float64, "fp8_e4m3", ml_dtypes.float8_e4m3fn),  # no inf to hold
        (np.float64, "fp8_e4m3fn", ml_dtypes.float8_e4m3),  # 448 > 240
        (np.float64, "fp4_e2m1fn", ml_dtypes.float8_e4m3fnuz),  # no -0
        (np.float64, "fp8_e4m3fn", ml_dtypes.float6_e2m3fn),  # no NaN
    ],
)
def test_a_dtype_that_cannot_hold_the_format_is_a_value_error(x_dtype, fmt, out_dtype):
    x = np.ones(3, dtype=x_dtype)
    out = None if out_dtype is None else np.empty(3, dtype=out_dtype)
    arg = "x" if out is None else "out"
    with pytest.raises(ValueError, match=rf"^{arg}: .* cannot hold every value"):
        lowprec.round(x, fmt, out=out)


def test_an_unusable_out_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="out must have dtype.*float8_e8m0fnu"):
        lowprec.round(np.ones(2), "bf16", out=np.empty(2, ml_dtypes.float8_e8m0fnu))


def test_encode_dtype_must_be_the_formats_own():
    with pytest.raises(ValueError, match="dtype: bf16 is stored as bfloat16"):
        lowprec.encode(1.0, "bf16", dtype=ml_dtypes.float8_e4m3fn)
    with pytest.raises(ValueError, match="dtype: tf32 is stored as None"):
        lowprec.encode(1.0, "tf32", dtype=np.float32)
    with pytest.raises(ValueError, match="codes: .* codes of bf16, not of fp16"):
        lowprec.decode(np.ones(2, ml_dtypes.bfloat16), "fp16")


def test_stochastic_rounding_of_an_ml_dtypes_array_sees_its_values():
    x = np.arange(1 << 16, dtype=np.uint16).view(ml_dtypes.bfloat16)
    x = x[np.isfinite(x.astype(np.float32))]
    kw = dict(rounding="stochastic", rng=7)
    got = lowprec.round(x, "fp8_e5m2", **kw)
    want = lowprec.round(x.astype(np.float32), "fp8_e5m2", **kw)
    assert_same_bits(got.astype(np.float64), want, x, "stochastic")


# ----------------------------------------------------- where the two differ


@pytest.mark.parametrize("name", ["bf16", "fp8_e5m2", "fp8_e4m3", "fp8_e4m3fn",
                                  "fp8_e4m3fnuz"])
def test_saturate_clamps_infinities_where_ml_dtypes_casts_keep_them(name):
    fmt, dtype = lowprec.as_format(name), EXPECTED[name]
    x = np.array([np.inf, -np.inf, 2 * fmt.max, -2 * fmt.max])
    got = lowprec.encode(x, fmt, saturate=True, dtype=dtype)
    assert got.astype(np.float64).tolist() == [fmt.max, -fmt.max] * 2
    with np.errstate(over="ignore", invalid="ignore"):
        theirs = x.astype(dtype).astype(np.float64)  # NumPy casts never saturate
    if fmt.has_inf:
        assert theirs.tolist() == [np.inf, -np.inf] * 2
    else:
        assert np.isnan(theirs).all()


@pytest.mark.parametrize("name", ["fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn"])
def test_nan_into_a_format_without_nan_raises_where_ml_dtypes_gives_zero(name):
    fmt, dtype = lowprec.as_format(name), EXPECTED[name]
    x = np.array([np.nan, -np.nan])
    assert (x.astype(dtype).astype(np.float64) == 0).all()  # ml_dtypes: a zero
    with pytest.raises(ValueError, match=f"x: NaN has no encoding in {name}"):
        lowprec.round(x, fmt, out=np.empty(2, dtype))
    with pytest.raises(ValueError, match="NaN has no encoding"):
        lowprec.encode(x, fmt, dtype=dtype)
    # both saturate the infinities (neither has inf)
    inf = np.array([np.inf, -np.inf])
    assert inf.astype(dtype).astype(np.float64).tolist() == [fmt.max, -fmt.max]
    assert lowprec.round(inf, fmt).tolist() == [fmt.max, -fmt.max]


# -------------------------------------------------------------- ml_dtypes absent

ABSENT = textwrap.dedent(
    """
    import sys
    sys.modules["ml_dtypes"] = None  # import ml_dtypes now raises ImportError
    import numpy as np
    import lowprec
    assert lowprec.round(np.array([0.1]), "bf16").tolist() == [0.10009765625]
    assert int(lowprec.encode(1.0, "fp8_e4m3fn")) == 0x38
    assert lowprec.fp16.ml_dtype == np.float16 and lowprec.tf32.ml_dtype is None
    assert lowprec.as_format("bf16") is lowprec.bf16
    try:
        lowprec.bf16.ml_dtype
    except ImportError as e:
        assert "lowprec[ml_dtypes]" in str(e), e
    else:
        raise AssertionError("no ImportError")
    print("ok")
    """
)


def test_without_ml_dtypes_everything_else_works():
    run = subprocess.run([sys.executable, "-c", ABSENT], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_import_lowprec_does_not_import_ml_dtypes():
    code = ("import sys, numpy as np, lowprec; lowprec.round(np.ones(2), 'bf16'); "
            "lowprec.fp16.ml_dtype; print('ml_dtypes' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=300)
    assert run.stdout.strip() == "False", run.stderr


def test_ml_dtype_names_the_extra_when_ml_dtypes_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    with pytest.raises(ImportError, match=r"pip install 'lowprec\[ml_dtypes\]'"):
        _ = lowprec.fp8_e4m3fn.ml_dtype
    assert lowprec.fp32.ml_dtype == np.float32


# ------------------------------------------------------------ the pack kernel

PACKED = [*(lowprec.as_format(n) for n in EXPECTED if n not in ("fp32", "fp64",
                                                               "tf32")),
          fmt_of("float8_e3m4"), fmt_of("float8_e4m3b11fnuz"),
          lowprec.custom_format(5, 11),  # subnormals are float64 subnormals
          lowprec.custom_format(3, 4, bias=2)]


@pytest.mark.parametrize("fmt", PACKED, ids=str)
def test_the_pack_kernel_gives_every_code_back(fmt):
    codes = np.arange(fmt.num_codes, dtype=fmt.code_dtype)
    values = all_code_values(fmt)  # the Fraction decoding, in code order
    keep = ~np.isnan(values) if not fmt.has_nan else np.ones(values.size, bool)
    got = pack_codes(values[keep], fmt)
    assert got.dtype == fmt.code_dtype
    assert np.array_equal(got, pack(values[keep], fmt))  # the NumPy reference
    nan = np.isnan(values[keep])
    assert np.array_equal(got[~nan], codes[keep][~nan])
    sign = codes[keep][nan] >> np.uint64(fmt.bits - 1)
    canonical = fmt.nan_code | (sign.astype(np.int64) << (fmt.bits - 1)
                                if fmt.specials != "fnuz" else 0)
    assert np.array_equal(got[nan], np.asarray(canonical, dtype=fmt.code_dtype)
                          * np.ones(nan.sum(), fmt.code_dtype))


@pytest.mark.parametrize(("fmt", "dtype"), [(lowprec.fp32, np.float32),
                                            (lowprec.fp64, np.float64)], ids=str)
def test_the_pack_kernel_gives_numpys_own_bits(fmt, dtype):
    udt = fmt.code_dtype
    raw = np.random.default_rng(9).integers(0, np.iinfo(udt).max, 100_000,
                                            dtype=udt, endpoint=True)
    raw[:4] = [0, 1, fmt.sign_mask, fmt.sign_mask | 1]  # zeros, subnormals
    x = raw.view(dtype)
    nan = np.isnan(x)
    with np.errstate(invalid="ignore"):  # the test's cast of signalling NaNs
        x64 = x.astype(np.float64)
    got = pack_codes(x64, fmt)
    assert np.array_equal(got[~nan], raw[~nan])
    assert np.array_equal(got, pack(x64, fmt))


@st.composite
def wide_codes(draw):
    """A format of 17 to 32 bits (every special convention) and one of its codes."""
    p = draw(st.integers(6, 24))
    e = draw(st.integers(max(2, 17 - p), min(11, 32 - p)))
    specials = draw(st.sampled_from(["ieee", "fn", "fnuz", "none"]))
    bias = (1 << (e - 1)) - 1 + draw(st.integers(-2, 2))
    try:
        fmt = lowprec.custom_format(p, e, bias=bias, specials=specials)
    except ValueError:  # e = 11: a range beyond float64's
        assume(False)
    code = draw(st.integers(0, fmt.num_codes - 1))
    return fmt, code


@given(wide_codes())
def test_the_pack_kernel_gives_back_any_code_of_a_wide_format(case):
    fmt, code = case
    value = oracle_decode(code, fmt)  # the Fraction decoding of the code
    got = int(pack_codes(np.array([value]), fmt)[0])
    assert got == int(pack(np.array([value]), fmt)[0])
    if not np.isnan(value):
        assert got == code
    else:
        assert got & ~fmt.sign_mask == fmt.nan_code & ~fmt.sign_mask


def test_the_pack_kernel_is_cache_stamped():
    from cache_stamps import assert_stamped

    from lowprec.rounding import _pack_kernel

    assert_stamped(_pack_kernel, [], minimum=1)
