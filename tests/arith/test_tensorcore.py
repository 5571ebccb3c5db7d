"""Tensor-core block-FMA models: the published behaviours, and kernel == reference.

Sources (full references in :mod:`lowprec.tensorcore`):

[FHMP21] Fasi, Higham, Mikaitis, Pranesh, "Numerical behavior of NVIDIA tensor
    cores", PeerJ Comput. Sci. 7:e330 (2021). Their test suite runs one
    16x16x16 ``wmma`` product and reads ``d[0] = c[0] + a[0, :16] @ b[:16, 0]``;
    the group and item names below (A "Support for subnormal numbers", B
    "Accuracy of the dot products", C "Rounding modes", D "Features of the
    accumulator" 1-5) are theirs, from ``tc_test_numerics-V100.cu``,
    ``tc_test_numerics-T4-A100-binary16.cu`` and ``tc_test_numerics-A100-bf16.cu``.
    Each expected value is the one their test counts as a pass on that GPU.
[KM25] Khattak, Mikaitis, "Accurate Models of NVIDIA Tensor Cores",
    arXiv:2512.07004 (2025), and their MATLAB models.

Every published vector is run through both implementations: the exact reference
(``tensor_core_dot_reference``) and the Numba kernel (``tensor_core_matmul``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from cache_stamps import assert_stamped

import lowprec
from lowprec.arith import _tensorcore_kernel
from lowprec.arith.tensorcore import (
    MODELS,
    TensorCoreModel,
    as_model,
    block_fma_reference,
    tensor_core_dot_reference,
    tensor_core_matmul,
)

TWO = 2.0
BELOW_ONE_32 = 1 - TWO**-24  # largest fp32 below 1
MIN_SUB_16 = TWO**-24  # smallest fp16 subnormal


def bits(x):
    """float64 bit patterns, so that -0.0 != 0.0 and NaN == NaN."""
    return np.asarray(x, dtype=np.float64).view(np.uint64)


def dot16(a, b, model, c, inputs="fp16", impl="reference"):
    """d = c + a @ b for the suite's 16-long row and column, zero padded."""
    av = np.zeros(16)
    bv = np.zeros(16)
    av[: len(a)] = a
    bv[: len(b)] = b
    if impl == "reference":
        return tensor_core_dot_reference(av, bv, model, c, inputs)
    d = tensor_core_matmul(av[None, :], bv[:, None], model, c=[[c]], inputs=inputs)
    assert d.dtype == np.float32
    return float(d[0, 0])


IMPLS = ["reference", "kernel"]


# --------------------------------------------------------------------------
# [FHMP21] V100 (tc_test_numerics-V100.cu), binary32 accumulation mode
# --------------------------------------------------------------------------

# (test-suite item, a, b, c, expected d)
V100_VECTORS = [
    # A. binary16 subnormals in input: 2**-24 * 4
    ("A subnormal fp16 input", [MIN_SUB_16], [4.0], 0.0, TWO**-22),
    # A. binary32 subnormals in input pass through c
    ("A subnormal fp32 c", [], [], TWO**-149, TWO**-149),
    # A. subnormals in output (binary32 mode): both results must be nonzero
    ("A output 1", [TWO**-14], [0.5], 0.0, TWO**-15),
    ("A output 2", [TWO**-14], [1.0], -(TWO**-15), TWO**-15),
    # B. products are computed exactly: (1 - 2**-11)**2
    ("B exact product", [1 - TWO**-11], [1 - TWO**-11], 0.0, 1 - TWO**-10 + TWO**-22),
    (
        "B exact products x4",
        [1 - TWO**-11] * 4,
        [1 - TWO**-11] * 4,
        0.0,
        4 * (1 - TWO**-10 + TWO**-22),
    ),
    # B. products are accumulated in binary32: four 2**-24 are cut off next to
    # c = 1 although 1 + 2**-22 is an fp32 number
    ("B fp32 accumulation", [1.0] * 4, [MIN_SUB_16] * 4, 1.0, 1.0),
    # C. round-down for positive values, round-up for negative values:
    # 2 + 3*2**-24 is 0.75 ulp above 2 and still gives 2
    ("C round-down", [1.0] * 4, [2.0, TWO**-23 + TWO**-24], 0.0, 2.0),
    ("C round-up", [1.0] * 4, [-2.0, -(TWO**-23) - TWO**-24], 0.0, -2.0),
    # D.1 extra bits in the significand alignment: none on V100, c loses its
    # last bit, 1 - (1 - 2**-23) instead of the exact 2**-24
    ("D.1 alignment bits", [1.0], [1.0], -BELOW_ONE_32, TWO**-23),
    # D.2 normalization in addition: 1 - 2**-24 + 4 * 2**-24, rounded down
    ("D.2 normalization +", [1.0] * 4, [MIN_SUB_16] * 4, BELOW_ONE_32, 1 + TWO**-23),
    # D.3 normalization in subtraction: -2**-24 is cut away, c loses a bit
    ("D.3 normalization -", [1.0, 1.0], [1.0, -(TWO**-24)], -1 + TWO**-24, TWO**-23),
    # D.4 extra bits for carry out: the third carry bit (sum exactly 8)
    ("D.4 third carry bit", [1.0] * 4, [1.0, 1.5, 1.75, 1.875], 1.875, 8.0),
    # D.4 round-down in normalization of positive / negative values
    ("D.4 round-down +", [1.0] * 4, [1.0] * 4, 1 + TWO**-22 + TWO**-23, 5.0),
    ("D.4 round-down -", [1.0] * 4, [-1.0] * 4, -1 - TWO**-22 - TWO**-23, -5.0),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "item, a, b, c, expected", V100_VECTORS, ids=[v[0] for v in V100_VECTORS]
)
def test_v100_published_vectors(item, a, b, c, expected, impl):
    assert bits(dot16(a, b, "v100", c, impl=impl)) == bits(expected)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("model", ["v100", "a100"])
def test_sum_starts_from_largest_element(model, impl):
    # [FHMP21] B "Sum starts from largest element": wherever the 1 sits among
    # the four products, the small terms (products and c = 2**-24) are aligned
    # to it and cut away, so the order of the terms does not matter.
    small = 0.5 if model == "a100" else 1.0  # the A100 file halves the products
    for j in range(4):
        a = [small] * 4
        b = [MIN_SUB_16] * 4
        a[j], b[j] = 1.0, 1.0
        assert dot16(a, b, model, TWO**-24, impl=impl) == 1.0


@pytest.mark.parametrize("impl", IMPLS)
def test_v100_carry_out_every_position(impl):
    # [FHMP21] D.4 "Extra bits for carry out": three products 1, one 2**-23,
    # c = 1 + 2**-22 + 2**-23: the exact 4 + 2**-21 needs the carries kept.
    for i in range(4):
        b = [1.0] * 4
        b[i] = TWO**-23
        d = dot16([1.0] * 4, b, "v100", 1 + TWO**-22 + TWO**-23, impl=impl)
        assert d == 4 + TWO**-21


# --------------------------------------------------------------------------
# [FHMP21] A100 binary16 (tc_test_numerics-T4-A100-binary16.cu) and bfloat16
# (tc_test_numerics-A100-bf16.cu): one extra alignment bit
# --------------------------------------------------------------------------

A100_VECTORS = [
    # inputs, item, a, b, c, expected
    ("fp16", "A subnormal fp16 input", [MIN_SUB_16], [4.0], 0.0, TWO**-22),
    ("fp16", "B fp32 accumulation", [0.5] * 4, [MIN_SUB_16] * 4, 1.0, 1.0),
    ("fp16", "C round-down", [1.0] * 4, [2.0, TWO**-23 + TWO**-24], 0.0, 2.0),
    ("fp16", "C round-up", [1.0] * 4, [-2.0, -(TWO**-23) - TWO**-24], 0.0, -2.0),
    # D.1: the extra bit keeps c whole: the exact 2**-24
    ("fp16", "D.1 alignment bits", [1.0], [1.0], -BELOW_ONE_32, TWO**-24),
    (
        "fp16",
        "D.2 normalization +",
        [1.0] * 4,
        [MIN_SUB_16] * 4,
        BELOW_ONE_32,
        1 + TWO**-23,
    ),
    # D.3: exact cancellation to +0 (V100 gives 2**-23)
    ("fp16", "D.3 normalization -", [1.0, 1.0], [1.0, -(TWO**-24)], -1 + TWO**-24, 0.0),
    ("fp16", "D.4 third carry bit", [1.0] * 4, [1.0, 1.5, 1.75, 1.875], 1.875, 8.0),
    ("fp16", "D.4 round-down +", [1.0] * 4, [1.0] * 4, 1 + TWO**-22 + TWO**-23, 5.0),
    ("fp16", "D.4 round-down -", [1.0] * 4, [-1.0] * 4, -1 - TWO**-22 - TWO**-23, -5.0),
    # bf16 file: A. subnormal bf16 input 2**-133 * 2**7
    ("bf16", "A subnormal bf16 input", [TWO**-133], [TWO**7], 0.0, TWO**-126),
    ("bf16", "A subnormal fp32 c", [], [], TWO**-149, TWO**-149),
    # A. bf16/binary32 subnormals in output: exactly 2**-127
    ("bf16", "A output 1", [TWO**-126], [0.5], 0.0, TWO**-127),
    ("bf16", "A output 2", [TWO**-126], [1.0], -(TWO**-127), TWO**-127),
    (
        "bf16",
        "B exact product",
        [1 - TWO**-8],
        [1 - TWO**-8],
        0.0,
        1 - TWO**-7 + TWO**-16,
    ),
    (
        "bf16",
        "B exact products x4",
        [1 - TWO**-8] * 4,
        [1 - TWO**-8] * 4,
        0.0,
        4 * (1 - TWO**-7 + TWO**-16),
    ),
    ("bf16", "B fp32 accumulation", [0.5] * 4, [TWO**-24] * 4, 1.0, 1.0),
    ("bf16", "C round-down", [1.0] * 4, [2.0, TWO**-23 + TWO**-24], 0.0, 2.0),
    ("bf16", "C round-up", [1.0] * 4, [-2.0, -(TWO**-23) - TWO**-24], 0.0, -2.0),
    ("bf16", "D.1 alignment bits", [1.0], [1.0], -BELOW_ONE_32, TWO**-24),
    (
        "bf16",
        "D.2 normalization +",
        [1.0] * 4,
        [TWO**-24] * 4,
        BELOW_ONE_32,
        1 + TWO**-23,
    ),
    ("bf16", "D.3 normalization -", [1.0, 1.0], [1.0, -(TWO**-24)], -1 + TWO**-24, 0.0),
    ("bf16", "D.4 third carry bit", [1.0] * 4, [1.0, 1.5, 1.75, 1.875], 1.875, 8.0),
    ("bf16", "D.4 round-down +", [1.0] * 4, [1.0] * 4, 1 + TWO**-22 + TWO**-23, 5.0),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "inputs, item, a, b, c, expected",
    A100_VECTORS,
    ids=[f"{v[0]}-{v[1]}" for v in A100_VECTORS],
)
def test_a100_published_vectors(inputs, item, a, b, c, expected, impl):
    assert bits(dot16(a, b, "a100", c, inputs, impl=impl)) == bits(expected)


# --------------------------------------------------------------------------
# Non-monotonicity [FHMP21] D.5 "Monotonicity of dot product"
# --------------------------------------------------------------------------

# (model, inputs, a, b): raising c from 1 - 2**-24 to 1 lowers d
NON_MONOTONE = [
    # V100: c's exponent -1 -> 0 moves the cut from 2**-24 to 2**-23, and the
    # four products 2**-24 vanish: 1 + 2**-23 -> 1
    ("v100", "fp16", [1.0] * 4, [MIN_SUB_16] * 4),
    # A100 (one more bit): three products 2**-25 and one 3 * 2**-25 are
    # needed; 1 + 2**-23 -> 1 + 2**-24 rounded down to 1
    ("a100", "fp16", [0.5] * 4, [MIN_SUB_16] * 3 + [TWO**-23 + TWO**-24]),
    ("a100", "bf16", [0.5] * 4, [TWO**-24] * 3 + [TWO**-23 + TWO**-24]),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("model, inputs, a, b", NON_MONOTONE)
def test_non_monotonic_in_c(model, inputs, a, b, impl):
    lower = dot16(a, b, model, BELOW_ONE_32, inputs, impl=impl)
    higher = dot16(a, b, model, 1.0, inputs, impl=impl)
    assert lower == 1 + TWO**-23
    assert higher == 1.0
    assert higher < lower  # c went up, d went down


@pytest.mark.parametrize("impl", IMPLS)
def test_v100_vector_is_monotone_on_a100(impl):
    # Why the A100 file needs its own vector: with the extra alignment bit the
    # four 2**-24 survive next to c = 1.
    a, b = [1.0] * 4, [MIN_SUB_16] * 4
    assert dot16(a, b, "a100", BELOW_ONE_32, impl=impl) == 1 + TWO**-23
    assert dot16(a, b, "a100", 1.0, impl=impl) == 1 + TWO**-22


def test_non_monotonic_in_c_exhaustive_neighbourhood():
    # Beyond the single published pair: over the fp32 values of c near 1, d is
    # not monotone in c, and every drop happens where c crosses a power of two.
    a, b = [1.0] * 4, [MIN_SUB_16] * 4
    cs = np.float32(1.0) + np.arange(-64, 65, dtype=np.float32) * np.float32(2**-24)
    cs = np.unique(cs).astype(np.float64)  # the fp32 values around 1
    ds = [block_fma_reference(a, b, c, "v100") for c in cs]
    steps = zip(cs[:-1], cs[1:], ds[:-1], ds[1:], strict=True)
    drops = [(c0, c1) for c0, c1, d0, d1 in steps if d1 < d0]
    assert drops == [(BELOW_ONE_32, 1.0)]


# --------------------------------------------------------------------------
# Block size and alignment width
# --------------------------------------------------------------------------


def test_block_sizes_and_widths():
    assert MODELS["v100"].block_size("fp16") == 4  # [FHMP21]
    assert MODELS["a100"].block_size("fp16") == 8  # [FHMP21], [KM25]
    assert MODELS["a100"].block_size("bf16") == 8  # [KM25]
    assert MODELS["a100"].block_size("tf32") == 4  # [KM25]
    assert MODELS["h100"].block_size("fp16") == 16  # [KM25]
    assert [MODELS[m].alignment_bits for m in ("v100", "a100", "h100")] == [24, 25, 26]
    # three carry bits are needed by [FHMP21] D.4 (the sum 8 = 2**3)
    assert MODELS["v100"].carry_bits("fp16") >= 3


@pytest.mark.parametrize("impl", IMPLS)
def test_block_size_4_vs_8(impl):
    # Two products 2**-24 next to a 1, in positions 1 and 4: one block of 8
    # keeps both (the extra bit reaches 2**-24); two blocks of 4 meet each
    # 2**-24 alone and round 1 + 2**-24 down to 1 twice.
    a = [1.0] * 8
    b = [1.0, TWO**-24, 0.0, 0.0, TWO**-24, 0.0, 0.0, 0.0]
    a100_by_4 = dataclasses.replace(
        MODELS["a100"], name="a100/4", block_sizes={"fp16": 4}
    )
    assert dot16(a, b, "a100", 0.0, impl=impl) == 1 + TWO**-23
    assert dot16(a, b, a100_by_4, 0.0, impl=impl) == 1.0
    assert dot16(a, b, "v100", 0.0, impl=impl) == 1.0
    # tf32 on the A100 uses blocks of 4, so the same numbers give 1 there
    assert dot16(a, b, "a100", 0.0, "tf32", impl=impl) == 1.0


def test_subnormal_product_exponent_is_clamped():
    # A subnormal input keeps the exponent emin (its significand is below 1),
    # so 2**-24 * 2**8 aligns at exponent -14 + 8 = -6, not at its value's -16:
    # the product 2**-20 * (1 + 2**-10) loses its last bit.
    a = [MIN_SUB_16, TWO**-10]
    b = [TWO**8, TWO**-10 * (1 + TWO**-10)]
    exact = TWO**-16 + TWO**-20 + TWO**-30
    assert block_fma_reference(a, b, 0.0, "v100") == TWO**-16 + TWO**-20
    assert tensor_core_dot_reference(a, b, "v100") != exact


# --------------------------------------------------------------------------
# Agreement with the published MATLAB model [KM25]
# --------------------------------------------------------------------------

# Random blocks with cancellation, chosen so that the exact sum rounded toward
# zero differs from the model; d was computed by the global-alignment path of
# [KM25]'s Generic_BFMA_TC.m (denormalised products, neab and min_exp_limit as
# in V100TC.m / A100TC.m / H100TC.m) under GNU Octave. Every value is given as
# the bits of an fp32 number: a[0..k-1], b[0..k-1], c, d.
KM25_BLOCKS = [
    (
        "v100",
        "fp16",
        "00000000 41a78000 baf44000 bc664000 3f7e2000 c08d6000 "
        "c3be6000 c1486000 42b73b3d b7000000",
    ),
    (
        "v100",
        "fp16",
        "ba3aa000 c3d74000 ba8fc000 3d9d2000 408dc000 40b66000 "
        "c4cdc000 00000000 4518f643 c08a3e00",
    ),
    (
        "v100",
        "fp16",
        "44020000 3e1e8000 b9b08000 436c0000 3bad0000 41102000 "
        "43f20000 439be000 c78fb916 c1132000",
    ),
    (
        "v100",
        "fp16",
        "43fca000 c1e3c000 3feb6000 00000000 00000000 ba0be000 "
        "3e4c2000 bfd1e000 bec374f5 b3000000",
    ),
    (
        "a100",
        "fp16",
        "b9f2e000 412f2000 4446c000 00000000 39f24000 bec7e000 "
        "be728000 c3ba2000 bbdc4000 bf5ec000 c59ac000 45b44000 3f71c000 42270000 "
        "ba472000 44e82000 4a90846b 47d1c7c0",
    ),
    (
        "a100",
        "fp16",
        "45de8000 ba4dc000 bb358000 c5ca8000 4079a000 bfa4c000 "
        "bccc4000 bddf8000 c1d8e000 00000000 00000000 bffb6000 00000000 00000000 "
        "bd258000 c0096000 4830112a bc000000",
    ),
    (
        "a100",
        "fp16",
        "bf9aa000 c4ac8000 c2ac8000 c44ac000 bf4a6000 bc9de000 "
        "c48ac000 3e354000 3fd74000 3f3ac000 4399c000 b9bec000 39ab6000 4514a000 "
        "c1d20000 bd934000 93926c8f 44c32b28",
    ),
    (
        "a100",
        "fp16",
        "45164000 bfcaa000 00000000 b9e2a000 beeae000 c44d0000 "
        "414aa000 bcc76000 3de42000 bc26e000 c20d4000 bbbf4000 3ac1c000 c127a000 "
        "3a3be000 437ba000 c60a51d9 ba000000",
    ),
    (
        "a100",
        "bf16",
        "ceb50000 bd9c0000 51f50000 b3760000 b4b80000 30c50000 "
        "3ac00000 518a0000 4dc20000 39e30000 c49d0000 46da0000 4c530000 44fe0000 "
        "34490000 c2d40000 5d093197 d60fc000",
    ),
    (
        "a100",
        "bf16",
        "3ec80000 36c80000 bb980000 44680000 4f2c0000 cc520000 "
        "b8000000 3a4c0000 42db0000 351a0000 b3480000 af990000 bd860000 cc620000 "
        "3f470000 51f90000 d9376286 56005e60",
    ),
    (
        "a100",
        "bf16",
        "446e0000 4e660000 c22f0000 49590000 cfbb0000 354e0000 "
        "3abf0000 363f0000 50ef0000 39270000 37090000 b0310000 c01f0000 b5d20000 "
        "2dd30000 ad580000 d5de4ef9 4c000000",
    ),
    (
        "a100",
        "bf16",
        "2d7d0000 49080000 48300000 c2870000 2cf70000 34060000 "
        "ac610000 b43f0000 30ee0000 35d80000 cc880000 bd580000 cf230000 51ff0000 "
        "c7ba0000 318c0000 553afa74 ceb18000",
    ),
    (
        "a100",
        "tf32",
        "00000000 2ca40000 2f01c000 cf50e000 3e98a000 bc264000 "
        "ccf22000 39e04000 49b6f4dd c2d6c000",
    ),
    (
        "a100",
        "tf32",
        "ccf62000 00000000 ce14c000 b4168000 affa2000 c8b16000 "
        "b8a52000 d37a0000 c8472384 c5862a90",
    ),
    (
        "a100",
        "tf32",
        "3eeda000 cadc2000 b9ed0000 cfe5a000 51cf8000 b7958000 "
        "c513c000 4c892000 5cf5fea8 51400000",
    ),
    (
        "h100",
        "fp16",
        "00000000 c00cc000 3ac14000 3aed0000 bf46a000 3b184000 "
        "3fa82000 3b29e000 c38ce000 00000000 c2e2c000 00000000 3d28a000 c3966000 "
        "c43d4000 00000000 42c3e000 3bf66000 c5406000 00000000 bfe72000 455d2000 "
        "c01f8000 c3dd4000 41f6a000 3ec1c000 bf498000 bdd86000 40b18000 00000000 "
        "c427c000 4496c000 c8f3d2e9 3cc00000",
    ),
    (
        "h100",
        "fp16",
        "bdbe2000 3fa86000 43524000 3b3e4000 00000000 c12ca000 "
        "baa70000 beda0000 c0b84000 4577c000 c2b22000 43714000 4131c000 c16fe000 "
        "3d9d4000 be8d6000 3a560000 c1332000 bb09a000 39bca000 420ce000 c09b8000 "
        "443ae000 4099e000 3d126000 00000000 42c3a000 bc47a000 bde62000 c3c42000 "
        "be750000 3eec8000 452f1a7f 3f231800",
    ),
    (
        "h100",
        "bf16",
        "c1510000 365a0000 48350000 311d0000 00000000 43020000 "
        "41f60000 b4240000 38450000 2ce80000 48220000 c7b80000 b7dd0000 b6a70000 "
        "ba3d0000 37150000 b2190000 ce070000 ac8a0000 ba0a0000 b7370000 3c570000 "
        "cd370000 30660000 b10e0000 b98d0000 384f0000 2f5b0000 baed0000 d0660000 "
        "b1d00000 00000000 4fade9a5 cc77e440",
    ),
    (
        "h100",
        "bf16",
        "c9fa0000 4ed30000 cba10000 2eb00000 00000000 ced90000 "
        "3a030000 c3180000 43260000 adb00000 c5f90000 bd4f0000 c7210000 c3960000 "
        "464e0000 bae80000 b1030000 4efc0000 391f0000 b0950000 b5940000 cc7a0000 "
        "b7a30000 2bd90000 cde70000 c67c0000 35370000 cb780000 b6760000 c2b40000 "
        "ce1c0000 b6440000 de565330 52000000",
    ),
]


def decode_block(codes):
    values = np.array([int(h, 16) for h in codes.split()], dtype=np.uint32)
    values = values.view(np.float32).astype(np.float64)
    k = (values.size - 2) // 2
    return values[:k], values[k : 2 * k], values[-2], values[-1]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("model, inputs, codes", KM25_BLOCKS)
def test_agrees_with_published_matlab_model(model, inputs, codes, impl):
    a, b, c, d = decode_block(codes)
    assert a.size == as_model(model).block_size(inputs)
    if impl == "reference":
        got = block_fma_reference(a, b, c, model, inputs)
    else:
        got = tensor_core_matmul(a[None, :], b[:, None], model, c=[[c]], inputs=inputs)[
            0, 0
        ]
    assert bits(got) == bits(d)


# --------------------------------------------------------------------------
# Special values, zeros and overflow (semantics documented in the module)
# --------------------------------------------------------------------------

INF, NAN = np.inf, np.nan
SPECIALS = [
    ([INF, 1.0], [1.0, 1.0], 0.0, INF),
    ([INF, 1.0], [-1.0, 1.0], 0.0, -INF),
    ([INF, -INF], [1.0, 1.0], 0.0, NAN),  # inf - inf
    ([INF], [0.0], 0.0, NAN),  # 0 * inf
    ([1.0], [NAN], 0.0, NAN),
    ([1.0], [1.0], INF, INF),
    ([INF], [1.0], -INF, NAN),
    ([1.0], [1.0], NAN, NAN),
    ([0.0, -0.0], [1.0, 1.0], -0.0, 0.0),  # no nonzero term: +0
    ([1.0], [-1.0], 1.0, 0.0),  # exact cancellation: +0
    ([TWO**-14], [-(TWO**-10)], 0.0, -(TWO**-24)),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("a, b, c, expected", SPECIALS)
def test_special_values(a, b, c, expected, impl):
    d = dot16(a, b, "v100", c, impl=impl)
    if np.isnan(expected):
        assert np.isnan(d)
    else:
        assert bits(d) == bits(expected)


@pytest.mark.parametrize("impl", IMPLS)
def test_overflow_gives_inf_and_later_blocks_keep_it(impl):
    # 2**127 + 2**127 reaches 2**128: inf (as [KM25]'s model), and a later
    # block of finite products leaves the infinite accumulator as it is
    big = TWO**120
    a = [big, big] + [0.0] * 6 + [1.0]
    b = [128.0, 128.0] + [0.0] * 6 + [-1.0]
    assert dot16(a, b, "a100", 0.0, "bf16", impl=impl) == INF
    assert dot16(a[:2], [-128.0, -128.0], "a100", 0.0, "bf16", impl=impl) == -INF


def test_negative_result_truncated_to_zero_keeps_its_sign():
    # -(2**-75)**2 = -2**-150 is below fp32's smallest subnormal 2**-149: one
    # block gives -0; a following block of zero products gives +0, as
    # -0 + (+0) does in IEEE arithmetic (and [KM25]'s model: no term, d = 0).
    a = np.zeros(16)
    b = np.zeros(16)
    a[0], b[0] = TWO**-75, -(TWO**-75)
    one_block = block_fma_reference(a[:8], b[:8], 0.0, "a100", "bf16")
    assert bits(one_block) == bits(-0.0)
    for k in (8, 16):
        got = tensor_core_matmul(a[None, :k], b[:k, None], "a100", inputs="bf16")
        want = tensor_core_dot_reference(a[:k], b[:k], "a100", 0.0, "bf16")
        assert bits(got[0, 0]) == bits(want) == bits(-0.0 if k == 8 else 0.0)


# --------------------------------------------------------------------------
# Kernel == reference, bit for bit, on random matrices
# --------------------------------------------------------------------------


def random_values(rng, shape, inputs, lo, hi, zeros=0.1):
    """Values of ``inputs`` with exponents in [lo, hi), signs, zeros, subnormals."""
    fmt = lowprec.as_format(inputs)
    e = rng.integers(lo, hi, shape)
    x = np.ldexp(rng.random(shape) + 1.0, e) * rng.choice([-1.0, 1.0], shape)
    x = lowprec.round(x, fmt, rounding="toward_zero")
    x[rng.random(shape) < zeros] = 0.0
    return x


def random_case(rng, model, inputs, m, k, n):
    lo, hi = {"fp16": (-26, 16), "bf16": (-140, 80), "tf32": (-140, 80)}[inputs]
    a = random_values(rng, (m, k), inputs, lo, hi)
    b = random_values(rng, (k, n), inputs, lo, hi)
    # accumulators: zeros, wide-range fp32 values, and near -a@b to cancel
    c = lowprec.round(
        rng.standard_normal((m, n)) * 2.0 ** rng.integers(-60, 60, (m, n)), "fp32"
    )
    with np.errstate(over="ignore", invalid="ignore"):
        cancel = -(a @ b) * (1 + rng.standard_normal((m, n)) * 2.0**-20)
    cancel = lowprec.round(np.nan_to_num(cancel, posinf=0.0, neginf=0.0), "fp32")
    pick = rng.random((m, n))
    c = np.where(pick < 0.3, cancel, c)
    c[pick > 0.85] = 0.0
    c[~np.isfinite(c)] = 0.0
    return a, b, c


def reference_matmul(a, b, model, c, inputs):
    m, n = a.shape[0], b.shape[1]
    return np.array(
        [
            [
                tensor_core_dot_reference(a[i], b[:, j], model, c[i, j], inputs)
                for j in range(n)
            ]
            for i in range(m)
        ]
    ).reshape(m, n)


CONFIGS = [
    ("v100", "fp16"),
    ("a100", "fp16"),
    ("a100", "bf16"),
    ("a100", "tf32"),
    ("h100", "fp16"),
    ("h100", "bf16"),
]


@pytest.mark.parametrize("model, inputs", CONFIGS)
def test_kernel_matches_reference(model, inputs):
    rng = np.random.default_rng(sum(map(ord, model + inputs)))
    for m, k, n in [(5, 37, 4), (3, 16, 6), (4, 3, 2), (2, 0, 3)]:
        a, b, c = random_case(rng, model, inputs, m, k, n)
        got = tensor_core_matmul(a, b, model, c=c, inputs=inputs)
        want = reference_matmul(a, b, model, c, inputs)
        assert np.array_equal(bits(got), bits(want)), (m, k, n)


@pytest.mark.parametrize("model, inputs", [("v100", "fp16"), ("a100", "bf16")])
def test_kernel_matches_reference_with_specials(model, inputs):
    rng = np.random.default_rng(5)
    a, b, c = random_case(rng, model, inputs, 6, 20, 5)
    a[1, 3], a[2, 9], b[4, 1], b[12, 3] = np.inf, np.nan, -np.inf, np.inf
    a[4, 4] = 0.0
    b[4, 4] = np.inf  # 0 * inf in the product for (4, 4)
    c[0, 0], c[3, 2] = np.inf, np.nan
    got = tensor_core_matmul(a, b, model, c=c, inputs=inputs)
    want = reference_matmul(a, b, model, c, inputs)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.array_equal(bits(got[ok]), bits(want[ok]))


@pytest.mark.parametrize("model, inputs", [("a100", "bf16"), ("v100", "fp16")])
def test_kernel_independent_of_thread_count(restore_num_threads, model, inputs):
    # (bf16: float64 lanes; fp16: float32 lanes, b split by chunks of 64 columns)
    import numba

    rng = np.random.default_rng(11)
    a, b, c = random_case(rng, model, inputs, 33, 40, 130)
    numba.set_num_threads(1)
    one = tensor_core_matmul(a, b, model, c=c, inputs=inputs)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    two = tensor_core_matmul(a, b, model, c=c, inputs=inputs)
    assert np.array_equal(bits(one), bits(two))


def run_kernel(a, b, c, model, inputs, lanes32):
    """One of the two fast kernels, called directly (see _tensorcore_kernel)."""
    tc = _tensorcore_kernel
    m, fmt = as_model(model), lowprec.as_format(inputs)
    k, neab = m.block_size(inputs), m.extra_alignment_bits
    floor = m.alignment_exponent_floor or -1024
    assert tc._lanes32(fmt.precision, fmt.emin, fmt.emax, k, neab, floor) or (
        not lanes32
    )
    out = np.empty((a.shape[0], b.shape[1]))
    kernel = (tc._make_kernel32 if lanes32 else tc._make_kernel)(k)
    kernel(a, b, c, out, fmt.precision, fmt.emin, neab, floor)
    return out


def test_float32_lanes_serve_fp16_on_v100_and_a100_only():
    tc = _tensorcore_kernel
    fp16, bf16 = lowprec.fp16, lowprec.bf16
    assert tc._lanes32(fp16.precision, fp16.emin, fp16.emax, 4, 0, -1024)  # V100
    assert tc._lanes32(fp16.precision, fp16.emin, fp16.emax, 8, 1, -1024)  # A100
    # H100: 16 products with two extra bits overflow an int32 sum
    assert not tc._lanes32(fp16.precision, fp16.emin, fp16.emax, 16, 2, -133)
    # bf16 products leave float32's range
    assert not tc._lanes32(bf16.precision, bf16.emin, bf16.emax, 8, 1, -1024)


@pytest.mark.parametrize("model", ["v100", "a100"])
def test_float32_lanes_match_float64_lanes_and_reference(model):
    # the edges of the float32 lanes: accumulators alone below their lowest scale
    # 2**-100 (slow path) or at it, the largest products, the largest c (which
    # cuts fp16 products away entirely), zeros
    rng = np.random.default_rng(21)
    k = as_model(model).block_size("fp16")
    a, b, c = random_case(rng, model, "fp16", 8, 3 * k + 1, 9)
    a[0, :] = 0.0  # row 0: c alone in every block
    a[1:4, :k] = 0.0  # rows 1-3: in the first block
    c[0, :] = [TWO**-101, -(TWO**-149), TWO**-100, -(TWO**-126), 0.0, -0.0] + [
        TWO**-101 + TWO**-124,  # its last bit is below 2**(-100 - 23)
        -(TWO**-120),
        TWO**-100 + TWO**-123,
    ]
    big = 65504.0  # fp16's max: products near 2**32, each term near its bound
    a[4, :], b[:, 0] = big, big
    c[4, 0] = 0.0
    a[5, :k], b[:k, 1] = big, -big
    c[5, 1] = -3.4028234663852886e38  # fp32's max
    c[6, 2] = 3.4028234663852886e38
    want = reference_matmul(a, b, model, c, "fp16")
    for lanes32 in (True, False):
        got = run_kernel(a, b, c, model, "fp16", lanes32)
        assert np.array_equal(bits(got), bits(want)), lanes32


@pytest.mark.parametrize("model", ["v100", "a100"])
def test_float32_lanes_match_float64_lanes_on_random_matrices(model):
    rng = np.random.default_rng(22)
    for m, k, n in [(17, 64, 33), (3, 101, 40), (1, 7, 1)]:
        a, b, c = random_case(rng, model, "fp16", m, k, n)
        one = run_kernel(a, b, c, model, "fp16", lanes32=True)
        two = run_kernel(a, b, c, model, "fp16", lanes32=False)
        assert np.array_equal(bits(one), bits(two)), (m, k, n)


def test_kernel_cache_keys_follow_the_helpers_source():
    # Numba's cache keys on a function's own file; the kernels keep a stamp of
    # the other modules' source (here only the JIT options) in their closure
    tc = _tensorcore_kernel
    assert_stamped(tc, [tc._make_kernel(4), tc._make_kernel32(4)], minimum=9)


def test_default_c_is_zero_and_scalar_c_broadcasts():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[1.0, 0.5], [0.25, 1.0]], dtype=np.float16)
    np.testing.assert_array_equal(tensor_core_matmul(a, b), a @ b.astype(np.float64))
    np.testing.assert_array_equal(
        tensor_core_matmul(a, b, "a100", c=1.0), a @ b.astype(np.float64) + 1
    )


# --------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(a=np.ones(4)), ValueError, "a must be a 2-D"),
        (dict(b=np.ones((3, 2))), ValueError, "do not match"),
        (dict(a=np.full((2, 4), 0.1)), ValueError, "a: 0.1 .* not a fp16 value"),
        (dict(b=np.full((4, 2), 70000.0)), ValueError, "b: .* not a fp16 value"),
        (dict(a=np.ones((2, 4), dtype=complex)), TypeError, "a must hold"),
        (dict(model="p100"), ValueError, "unknown tensor-core model"),
        (dict(model=100), TypeError, "model must be"),
        (dict(inputs="bf16"), ValueError, "inputs: model 'v100' takes fp16"),
        (dict(inputs="fp8"), ValueError, "inputs: unknown format"),
        (dict(inputs=16), TypeError, "inputs must be"),
        (dict(c=np.ones((3, 3))), ValueError, "c: shape"),
        (dict(c=np.full((2, 2), 0.1)), ValueError, "c: 0.1 .* not a fp32 value"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    args = dict(a=np.ones((2, 4)), b=np.ones((4, 2)), model="v100")
    args.update(kwargs)
    a, b, model = args.pop("a"), args.pop("b"), args.pop("model")
    with pytest.raises(error, match=match):
        tensor_core_matmul(a, b, model, **args)


def test_reference_rejects_bad_blocks():
    with pytest.raises(ValueError, match="at most 4 products"):
        block_fma_reference([1.0] * 5, [1.0] * 5, 0.0, "v100")
    with pytest.raises(ValueError, match="not a fp16 value"):
        block_fma_reference([0.1], [1.0], 0.0, "v100")
    with pytest.raises(ValueError, match="not a fp32 value"):
        block_fma_reference([1.0], [1.0], 0.1, "v100")


def test_model_record_validates():
    with pytest.raises(ValueError, match="extra_alignment_bits"):
        TensorCoreModel("x", {"fp16": 4}, extra_alignment_bits=-1)
    with pytest.raises(ValueError, match="toward_zero"):
        TensorCoreModel("x", {"fp16": 4}, 0, output_rounding="ties_to_even")
    with pytest.raises(ValueError, match="positive int"):
        TensorCoreModel("x", {"fp16": 0}, 0)
    with pytest.raises(ValueError, match="more than 11 significand bits"):
        TensorCoreModel("x", {"fp32": 4}, 0)
    assert MODELS["a100"].block_size(lowprec.bf16) == 8
    assert hash(MODELS["v100"]) == hash(as_model("V100"))
