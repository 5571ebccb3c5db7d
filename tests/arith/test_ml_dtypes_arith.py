"""ml_dtypes arrays through the arithmetic, sum/dot/matmul and the error measures.

Oracles: ml_dtypes' own arithmetic (it computes in float32 and rounds once to the
dtype; float32 has p = 24 >= 2p + 2 for bf16 and the fp8 formats, so that double
rounding is innocuous for +, -, *, / and sqrt: Figueroa, "When is double rounding
innocuous?", SIGNUM Newsl. 30(3), 1995), over every pair of fp8 codes; the exact
Fraction oracle of ``tests/oracles.py`` for fma (every fp4 triple) and for the
sums and products of sum/dot/matmul.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from oracles import round_exact

import lowprec
import lowprec.arith.error_analysis as ea

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

DTYPES = {
    "fp8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "bf16": ml_dtypes.bfloat16,
}


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).view(np.uint16 if a.dtype.itemsize == 2 else np.uint8)


def assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Same dtype, same bits; NaN matches any NaN (its sign is not specified)."""
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    nan_got = np.isnan(got.astype(np.float32))
    nan_want = np.isnan(want.astype(np.float32))
    bad = (nan_got != nan_want) | (~nan_want & (bits(got) != bits(want)))
    assert not bad.any(), (
        f"{what}: {np.count_nonzero(bad)} differ, e.g. got {got[bad][:4]} "
        f"want {want[bad][:4]}"
    )


def operand_pairs(name: str):
    dtype = DTYPES[name]
    if name == "bf16":  # a sample of codes, every pair of them
        codes = np.random.default_rng(5).integers(0, 1 << 16, 256, dtype=np.uint16)
    else:  # every code, every pair
        codes = np.arange(256, dtype=np.uint8)
    v = codes.view(dtype)
    return tuple(a.reshape(-1) for a in np.meshgrid(v, v, indexing="ij"))


@pytest.mark.parametrize("name", DTYPES)
def test_ml_dtypes_operands_give_ml_dtypes_results_with_its_bits(name):
    x, y = operand_pairs(name)
    with np.errstate(all="ignore"):  # ml_dtypes' float32 arithmetic warns
        cases = [
            (lowprec.add, x + y),
            (lowprec.subtract, x - y),
            (lowprec.multiply, x * y),
            (lowprec.divide, x / y),
        ]
        root = np.sqrt(x[: 1 << 8 if name != "bf16" else None])
    for fn, want in cases:
        assert_same(fn(x, y, name), want, f"{fn.__name__} {name}")
    v = x[: root.size]
    assert_same(lowprec.sqrt(v, name), root, f"sqrt {name}")


@pytest.mark.parametrize("name", ["fp4_e2m1fn", "fp6_e2m3fn", "fp6_e3m2fn"])
def test_every_pair_of_sub_byte_codes_against_the_exact_oracle(name):
    fmt = lowprec.as_format(name)
    dtype = getattr(ml_dtypes, name.replace("fp", "float"))
    v = np.arange(1 << fmt.bits, dtype=np.uint8).view(dtype)
    x, y = (a.reshape(-1) for a in np.meshgrid(v, v, indexing="ij"))
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    # float64 holds these sums, differences and products exactly (signed zeros
    # included), so rounding the float64 result once is the exact answer
    for fn, exact in [(lowprec.add, x64 + y64), (lowprec.subtract, x64 - y64),
                      (lowprec.multiply, x64 * y64)]:
        want = np.array([round_exact(e, fmt) for e in exact]).astype(dtype)
        assert_same(fn(x, y, name), want, f"{fn.__name__} {name}")


def test_fma_of_every_fp4_triple_against_the_exact_oracle():
    fmt = lowprec.fp4_e2m1fn
    dtype = ml_dtypes.float4_e2m1fn
    v = np.arange(16, dtype=np.uint8).view(dtype)
    x, y, z = (a.reshape(-1) for a in np.meshgrid(v, v, v, indexing="ij"))
    got = lowprec.fma(x, y, z, fmt)
    exact = [round_exact(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)),
                         fmt) for a, b, c in zip(x, y, z, strict=True)]
    # the oracle's zero of an exact zero sum: +0 unless both terms are -0
    for i, (a, b, c) in enumerate(zip(x, y, z, strict=True)):
        if exact[i] == 0 and float(a) * float(b) + float(c) == 0:
            exact[i] = float(a) * float(b) + float(c)
    want = np.array(exact).astype(dtype)  # exact: values of fp4
    assert_same(got, want, "fma fp4")


def test_the_result_dtype_follows_ml_dtypes_promotion():
    b = np.array([1.0, 2.0], dtype=ml_dtypes.bfloat16)
    e4 = np.array([1.0, 2.0], dtype=ml_dtypes.float8_e4m3fn)
    e5 = np.array([1.0, 2.0], dtype=ml_dtypes.float8_e5m2)
    assert lowprec.add(b, b, "bf16").dtype == np.dtype(ml_dtypes.bfloat16)
    assert lowprec.add(b, np.float32([1, 1]), "bf16").dtype == np.float32
    assert lowprec.add(b, e4, "fp8_e4m3fn").dtype == np.dtype(ml_dtypes.bfloat16)
    assert lowprec.add(e4, e5, "fp8_e4m3fn").dtype == np.float32
    assert lowprec.add(b, 1.0, "bf16").dtype == np.float64  # as for float16
    assert type(lowprec.add(b[0], b[0], "bf16")) is ml_dtypes.bfloat16


def test_an_ml_dtypes_out_and_a_dtype_that_cannot_hold_the_result():
    e4 = np.array([448.0, 2.0, -0.0], dtype=ml_dtypes.float8_e4m3fn)
    with pytest.raises(ValueError, match="result: float8_e4m3fn cannot hold"):
        lowprec.add(e4, e4, "bf16")
    out = np.empty(3, dtype=ml_dtypes.bfloat16)
    assert lowprec.add(e4, e4, "bf16", out=out) is out
    assert out.astype(np.float64).tolist() == [896.0, 4.0, -0.0]
    assert np.signbit(out.astype(np.float32)[2])
    fp8 = np.empty(3, dtype=ml_dtypes.float8_e4m3fn)
    lowprec.multiply(e4, e4, "fp8_e4m3fn", saturate=True, out=fp8)
    assert bits(fp8).tolist() == [0x7E, 0x48, 0x00]  # 448 (saturated), 4, +0


# --------------------------------------------------------- sum, dot, matmul


def sequential(terms, acc_fmt, out_fmt) -> float:
    """Exact products, each addition rounded to acc_fmt, the result to out_fmt."""
    acc = Fraction(0)
    for t in terms:
        acc = Fraction(round_exact(acc + t, acc_fmt))
    return round_exact(acc, out_fmt)


def bf16_values(shape, seed):
    v = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return v.astype(ml_dtypes.bfloat16)  # nonzero, so no sign-of-zero question


def test_matmul_of_bf16_arrays_against_the_exact_oracle():
    a, b = bf16_values((5, 40), 1), bf16_values((40, 3), 2)
    got = lowprec.matmul(a, b, "bf16_fp32acc")
    assert got.dtype == np.float64  # matmul returns float64 for every input
    want = [[sequential([Fraction(float(a[i, k])) * Fraction(float(b[k, j]))
                         for k in range(40)], lowprec.fp32, lowprec.bf16)
             for j in range(3)] for i in range(5)]
    assert np.array_equal(got, np.array(want))
    fast = lowprec.matmul(a, b, "bf16_fp32acc", order="unspecified")
    same = lowprec.matmul(a.astype(np.float32), b.astype(np.float32),
                          "bf16_fp32acc", order="unspecified")
    assert np.array_equal(fast, same)


def test_sum_and_dot_of_ml_dtypes_arrays_against_the_exact_oracle():
    x = bf16_values(300, 3)
    want = sequential([Fraction(float(t)) for t in x], lowprec.bf16, lowprec.bf16)
    assert lowprec.sum(x, "bf16") == want
    ones = np.ones(300, dtype=ml_dtypes.bfloat16)
    assert lowprec.dot(ones, ones, "bf16") == 256.0  # bf16: 256 + 1 rounds to 256
    e4 = np.ones(40, dtype=ml_dtypes.float8_e4m3fn)
    assert lowprec.sum(e4, "fp8_e4m3fn") == 16.0  # 16 + 1 ties back to 16
    assert lowprec.sum(e4, "fp8_e4m3fn", accumulate="fp32") == 40.0


def test_tensor_core_matmul_takes_ml_dtypes_inputs():
    a, b = bf16_values((4, 8), 4), bf16_values((8, 4), 5)
    got = lowprec.matmul(a, b, inputs="bf16", model="a100")
    same = lowprec.matmul(a.astype(np.float32), b.astype(np.float32),
                          inputs="bf16", model="a100")
    assert np.array_equal(got, same)


# ------------------------------------------------------------ error measures


def test_error_measures_take_ml_dtypes_arrays():
    x = bf16_values(6, 6)
    exact = np.linspace(-1, 1, 6) + 0.01
    # the float64 formula on the exact values (float() of a bfloat16 is exact)
    want = [abs(float(c) - e) / abs(e) for c, e in zip(x, exact, strict=True)]
    assert ea.relative_error(x, exact).tolist() == want
    assert ea.normwise_error(x, x.astype(np.float64)) == 0.0
    a, b = bf16_values((3, 4), 7), bf16_values((4, 2), 8)
    c = lowprec.matmul(a, b, "bf16_fp32acc")
    assert ea.componentwise_error(c, a, b) <= lowprec.bf16.unit_roundoff
    with pytest.raises(TypeError, match="computed must hold"):
        ea.relative_error(np.array(["1"]), exact[:1])


@pytest.mark.parametrize(("x", "y"), itertools.combinations(
    [np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e5m2], 2))
def test_mixed_operands_are_checked_against_the_format(x, y):
    a = np.array([1.5, 3.0], dtype=x)
    b = np.array([0.25, -2.0], dtype=y)
    got = lowprec.add(a, b, "fp8_e5m2", out=np.empty(2, ml_dtypes.float8_e5m2))
    assert got.astype(np.float64).tolist() == [1.75, 1.0]
    with pytest.raises(ValueError, match="are not values of fp8_e5m2"):
        lowprec.add(a + np.array(2**-6, dtype=x), b, "fp8_e5m2", out=got)
