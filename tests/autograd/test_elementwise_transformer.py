"""exp, log, the exact GELU, masked fill and dropout: forward values bit for bit
against independent references over every fp16 and bf16 code, and their
precision rules under the low-precision policies."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from gradcheck import F, same_bits

import lowprec
from lowprec import autograd as ag
from lowprec.amp.policy import FP32_OPS, as_policy
from lowprec.autograd import Tensor

BF16 = ml_dtypes.bfloat16


def _all_codes(dtype):
    """Every finite value of a 16-bit float type, as float32."""
    codes = np.arange(1 << 16, dtype=np.uint16).view(dtype).astype(F)
    return codes[np.isfinite(codes)]


def _to16(x, dtype):
    """Round float32 (or float64) values to fp16 / bf16 with NumPy / ml_dtypes,
    independent oracles of round-to-nearest-even, and back to float32."""
    if dtype is BF16 and x.dtype == np.float64:
        # ml_dtypes goes float64 -> float32 -> bf16 (two roundings): not an oracle
        raise AssertionError("round float64 to bf16 through the exact oracle")
    return np.asarray(x).astype(dtype).astype(F)


# exp and log rounded to the 16-bit format: no "exp_log" among the fp32 ops
POLICY_16 = {
    np.float16: "fp16_pure",
    BF16: as_policy("bf16_pure").replace(
        name="bf16_pure_exp16", fp32_ops=FP32_OPS - {"exp_log"}),
}


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("op", ["exp", "log"])
def test_exp_and_log_are_the_float32_value_rounded_once(dtype, op):
    x = _all_codes(dtype)
    if op == "log":
        x = x[x > 0]
    fn = getattr(np, op)
    with np.errstate(all="ignore"):
        want = _to16(fn(x), dtype)
    got = getattr(ag, op)(Tensor(x, policy=POLICY_16[dtype])).data
    same_bits(got, want)


def test_exp_log_stay_fp32_when_the_policy_says_so():
    y = ag.exp(Tensor([11.09375], policy="fp16_mixed"))
    assert y.fmt.name == "fp32" and y.data[0] == np.float32(math.exp(11.09375))


def test_exp_overflows_fp16_exactly_above_ln_65504():
    x = Tensor([11.0859375, 11.09375, -16.625, -17.34375], policy="fp16_naive")
    y = ag.exp(x)
    assert y.fmt.name == "fp16"
    # 65248 is finite; e**11.09375 ~ 65758 is past the overflow bound 65520
    assert y.data.tolist()[:2] == [65248.0, math.inf]
    # e**-16.625 ~ 6.0e-8 rounds to the smallest subnormal 2**-24, and
    # e**-17.34375 ~ 2.94e-8, below half of it (2**-25 ~ 2.98e-8), to 0
    assert y.data[2] == 2.0**-24 and y.data[3] == 0.0
    assert ag.exp(Tensor([11.09375], policy="fp32")).data[0] == F(math.exp(11.09375))


def _gelu64(x):
    """The exact GELU in float64 with the C library's erf/erfc (independent)."""
    return np.array(
        [0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)]
    )


def test_gelu_erf_is_the_float64_value_rounded_once_on_every_fp16_code():
    x = _all_codes(np.float16)
    got = ag.gelu(Tensor(x, policy="fp16_pure")).data
    # NumPy rounds float64 to float16 directly (one rounding)
    same_bits(got, _gelu64(x).astype(np.float16).astype(F))


def test_gelu_erf_under_fp32_and_bf16():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(20_000) * 3).astype(F)
    x = np.concatenate([x, np.linspace(-12, -5, 200, dtype=F)])  # the tail
    got = ag.gelu(Tensor(x, policy="fp32")).data
    want = _gelu64(x)
    same_bits(got, want.astype(F))
    assert (got[-200:] < 0).all()  # tiny negatives, not the 0 of 1 + erf
    # bf16: every code against the exact rounding of the float64 value
    from oracles import round_exact_array

    xb = _all_codes(BF16)
    xb = xb[np.abs(xb) < 20]  # beyond, GELU is x or a flushed 0 (checked above)
    got16 = ag.gelu(Tensor(xb, policy="bf16_pure")).data
    same_bits(got16, round_exact_array(_gelu64(xb), lowprec.bf16).astype(F))


def test_gelu_tanh_form_is_unchanged_and_forms_are_validated():
    x = np.linspace(-3, 3, 101).astype(F)
    c, k = F(np.sqrt(2.0 / np.pi)), F(0.044715)
    want = F(0.5) * x * (F(1) + np.tanh(c * (x + k * (x * x * x))))
    same_bits(ag.gelu(Tensor(x, policy="fp32"), approximate="tanh").data, want)
    with pytest.raises(ValueError, match="approximate"):
        ag.gelu(Tensor(x, policy="fp32"), approximate="erf")


def test_masked_fill_rounds_the_value_to_the_format_and_blocks_the_gradient():
    mask = np.array([[False, True, True], [False, False, True]])
    x = Tensor(np.ones((2, 3)), policy="fp16_mixed", requires_grad=True)
    y = ag.masked_fill(x, mask, -1e9)
    assert y.fmt is x.fmt
    assert y.data.tolist() == [[1.0, -math.inf, -math.inf], [1.0, 1.0, -math.inf]]
    z = ag.masked_fill(Tensor(np.ones(3), policy="fp32"), np.array([True]), 0.1)
    same_bits(z.data, np.full(3, 0.1, dtype=F))
    ag.masked_fill(x, mask, 0.0).sum().backward()
    same_bits(x.grad, np.where(mask, F(0), F(1)))


@pytest.mark.parametrize(
    ("mask", "value", "error", "match"),
    [
        (np.array([1, 0, 1]), 0.0, TypeError, "boolean"),
        (np.ones((2, 3), bool), 0.0, ValueError, "broadcast"),
        (np.ones(3, bool), "x", TypeError, "number"),
    ],
)
def test_masked_fill_bad_input(mask, value, error, match):
    with pytest.raises(error, match=match):
        ag.masked_fill(Tensor(np.ones(3), policy="fp32"), mask, value)


def test_dropout_mask_is_reproducible_from_the_seed():
    x = Tensor(np.full((50, 40), 3.0), policy="bf16_mixed", requires_grad=True)
    a = ag.dropout(x, 0.25, seed=[4, 2])
    b = ag.dropout(x, 0.25, seed=[4, 2])
    c = ag.dropout(x, 0.25, seed=[4, 3])
    same_bits(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    keep = np.random.default_rng([4, 2]).random((50, 40)) >= 0.25
    # kept: 3 * (1 / 0.75) = 4 in float32, then bf16: exactly 4
    same_bits(a.data, np.where(keep, F(4), F(0)))
    assert a.fmt.name == "bf16"
    # 2000 draws with p = 0.25: the kept fraction within 5 sigma (~0.048) of 0.75
    assert abs(keep.mean() - 0.75) < 5 * math.sqrt(0.25 * 0.75 / keep.size)
    a.sum().backward()
    scale = F(1) / F(0.75)  # the storage dtype's 1 / (1 - p), then bf16 gradients
    same_bits(x.grad, _to16(np.where(keep, scale, F(0)), BF16))


def test_dropout_identity_and_bad_p():
    x = Tensor(np.ones(4), policy="fp32")
    assert ag.dropout(x, 0.0, seed=0) is x
    assert ag.dropout(x, 0.5, seed=0, training=False) is x
    for p, error in ((1.0, ValueError), (-0.1, ValueError), ("0.5", TypeError)):
        with pytest.raises(error, match="p"):
            ag.dropout(x, p, seed=0)
