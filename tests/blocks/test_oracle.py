"""quantize_blocks against the exact oracle (block_oracle.py), bit for bit.

Exhaustive where small: every element code, every midpoint and both neighbours of
each midpoint, times a sweep of block scales; every e8m0 code. Then hypothesis
blocks for every format and rule, and the kernel against the NumPy reference
(and 1 thread against 2).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from block_oracle import Element, Int8Element, mx_block, nvfp4_block
from hypothesis import given, settings
from hypothesis import strategies as st

import lowprec
from lowprec.blocks import reference
from lowprec.testing import blocks

MX_FLOAT = {"mxfp8_e4m3": "fp8_e4m3fn", "mxfp8_e5m2": "fp8_e5m2",
            "mxfp6_e2m3": "fp6_e2m3fn", "mxfp6_e3m2": "fp6_e3m2fn",
            "mxfp4_e2m1": "fp4_e2m1fn"}
SCALES = (-127, -126, -60, -1, 0, 1, 60, 126, 127)


def _element(name):
    return Int8Element() if name == "mxint8" else Element(MX_FLOAT[name])


def _probe_values(el, dtype=np.float64) -> np.ndarray:
    """Every finite value of the element, each midpoint and its two float64
    neighbours, both signs, and values beyond max."""
    if isinstance(el, Int8Element):
        vals = np.arange(0, 128) / 64.0  # -128/64 = -2 would raise the amax
    else:
        vals = np.array(sorted({float(v) for v in el.table.values()
                                if not isinstance(v, str)}))
    mids = ((vals[:-1] + vals[1:]) / 2).astype(dtype)  # exact in float32 too
    top = 2.0 ** (el.emax() + 1)  # beyond max, but in max's binade: they saturate
    beyond = [(float(el.max) + top) / 2, np.nextafter(dtype(top), dtype(0))]
    probes = np.concatenate([vals, mids, np.nextafter(mids, -np.inf),
                             np.nextafter(mids, np.inf), beyond])
    return np.concatenate([probes, -probes])


def _as_blocks(values: np.ndarray, el, k: int, dtype=np.float64) -> np.ndarray:
    """Blocks of 31 probes behind an amax of max * 2**k, so the floor rule gives
    scale exponent k; probes scaled by 2**k."""
    n = -len(values) % 31
    v = np.concatenate([values, np.zeros(n)]).reshape(-1, 31)
    head = np.full((v.shape[0], 1), float(el.max))
    return np.ldexp(np.hstack([head, v]).astype(dtype), k)  # exact


@pytest.mark.parametrize("k", SCALES)
@pytest.mark.parametrize("name", sorted(MX_FLOAT) + ["mxint8"])
def test_every_element_code_and_midpoint_times_a_sweep_of_scales(name, k):
    el = _element(name)
    x = _as_blocks(_probe_values(el), el, k)
    q = lowprec.quantize_blocks(x, name)
    fmt = lowprec.blocks.as_block_format(name)
    for i, row in enumerate(x):
        scale, codes = mx_block(row.tolist(), el, "floor", fmt.element_precision)
        assert q.scales[i] == scale == k + 127
        assert q.codes[i].tolist() == codes, (name, k, i)


@pytest.mark.parametrize("k", (-100, -1, 0, 1, 100))
@pytest.mark.parametrize("name", sorted(MX_FLOAT) + ["mxint8"])
def test_every_element_code_and_midpoint_from_float32(name, k):
    # the float32 kernel: the same probes, with float32 neighbours of the midpoints
    el = _element(name)
    x = _as_blocks(_probe_values(el, np.float32), el, k, np.float32)
    assert x.dtype == np.float32
    q = lowprec.quantize_blocks(x, name)
    fmt = lowprec.blocks.as_block_format(name)
    for i, row in enumerate(x):
        scale, codes = mx_block(row.tolist(), el, "floor", fmt.element_precision)
        assert q.scales[i] == scale == k + 127
        assert q.codes[i].tolist() == codes, (name, k, i)


@pytest.mark.parametrize("name", sorted(MX_FLOAT))
def test_every_e8m0_code_is_reached_and_dequantizes_exactly(name):
    fmt = lowprec.blocks.as_block_format(name)
    el = _element(name)
    ks = np.arange(-127, 128)
    x = np.ldexp(np.tile(np.r_[float(el.max), np.linspace(-1, 1, 31)], (255, 1)),
                 ks[:, None])
    q = lowprec.quantize_blocks(x, fmt)
    assert q.scales[:, 0].tolist() == list(range(255))
    elem = np.array([float(el.table[c]) for c in q.codes.reshape(-1)]).reshape(x.shape)
    assert np.array_equal(q.dequantize(np.float64), np.ldexp(elem, ks[:, None]))


@pytest.mark.parametrize("name", sorted(MX_FLOAT) + ["mxint8"])
@settings(max_examples=20)
@given(data=st.data())
def test_random_mx_blocks_match_the_oracle(name, data):
    fmt = lowprec.blocks.as_block_format(name)
    rule = data.draw(st.sampled_from(["floor", "ceil", "even", "rceil"]))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x = data.draw(blocks(fmt, dtype=dtype))
    q = lowprec.quantize_blocks(x, fmt, scale_rule=rule)
    el = _element(name)
    for i, row in enumerate(x):
        scale, codes = mx_block(row.tolist(), el, rule, fmt.element_precision)
        assert q.scales[i] == scale
        assert q.codes[i].tolist() == codes


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp4_e2m1", "mxint8"])
@settings(max_examples=25)
@given(data=st.data())
def test_random_blocks_toward_zero_match_the_oracle(name, data):
    fmt = lowprec.blocks.as_block_format(name)
    x = data.draw(blocks(fmt, dtype=np.float64))
    q = lowprec.quantize_blocks(x, fmt, rounding="toward_zero")
    el = _element(name)
    for i, row in enumerate(x):
        _, codes = mx_block(row.tolist(), el, "floor", fmt.element_precision,
                            "toward_zero")
        assert q.codes[i].tolist() == codes


@pytest.mark.parametrize("rule", ["te", "cudnn", "div6"])
@settings(max_examples=20)
@given(x=blocks("nvfp4", max_blocks=3))
def test_random_nvfp4_blocks_match_the_oracle(rule, x):
    q = lowprec.quantize_blocks(x, "nvfp4", scale_rule=rule)
    fin = np.isfinite(x)
    g = np.float32(np.abs(np.where(fin, x, 0)).max())
    for i, row in enumerate(x):
        scale, codes, s_enc = nvfp4_block(row.tolist(), g, rule)
        assert q.scales[i] == scale
        assert q.codes[i].tolist() == codes
        assert q.tensor_scale == s_enc


@pytest.mark.parametrize("fmt", lowprec.blocks.block_formats(), ids=str)
@settings(max_examples=30)
@given(data=st.data())
def test_the_kernel_matches_the_reference(fmt, data):
    x = data.draw(blocks(fmt, dtype=data.draw(st.sampled_from([np.float32,
                                                                np.float64]))))
    rules = lowprec.blocks.NVFP4_SCALE_RULES if fmt.two_level else \
        lowprec.blocks.MX_SCALE_RULES
    rule = data.draw(st.sampled_from(rules))
    s = lowprec.BlockStats()
    q = lowprec.quantize_blocks(x, fmt, scale_rule=rule, stats=s)
    with np.errstate(over="ignore"):  # NVFP4 is fp32: beyond it is inf
        rows = x.astype(np.float32) if fmt.two_level else x
    ref = reference.quantize_rows(rows, fmt, rule)
    assert np.array_equal(q.scales[:, 0], ref["scales"])  # (n, 1): one block a row
    assert np.array_equal(q.codes, ref["codes"])
    assert (s.saturated, s.flushed, s.nan_blocks) == (
        ref["saturated"], ref["flushed"], ref["nan_blocks"])


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "nvfp4", "mxint8"])
def test_one_thread_and_two_give_the_same_bits(fmt, restore_num_threads):
    x = np.random.default_rng(5).standard_normal((512, 64)).astype(np.float32)
    x[::7] *= 1e-20
    numba.set_num_threads(1)
    one = lowprec.quantize_blocks(x, fmt)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    two = lowprec.quantize_blocks(x, fmt)
    assert np.array_equal(one.codes, two.codes)
    assert np.array_equal(one.scales, two.scales)


def test_float64_values_that_underflow_when_scaled_round_as_the_exact_ones():
    # 2**-1074 under a scale of 2**127 is 2**-1201: far below every element value
    x = np.r_[2.0**135, 5e-324, -5e-324, np.zeros(29)]
    for mode, want in (("toward_positive", [0x01, 0x80]),
                       ("toward_negative", [0x00, 0x81]),
                       ("ties_to_even", [0x00, 0x80])):
        q = lowprec.quantize_blocks(x, "mxfp8_e4m3", rounding=mode)
        assert q.scales[0] == 254 and q.codes[1:3].tolist() == want, mode


def test_the_kernel_cache_stamps():
    from cache_stamps import assert_stamped

    from lowprec.blocks import _quantize_kernel

    assert_stamped(_quantize_kernel, [], minimum=2)
    assert math.isfinite(_quantize_kernel._HELPERS)


@pytest.mark.parametrize("element", [lowprec.custom_format(3, 5, bias=60),
                                     lowprec.custom_format(3, 5, bias=-40),
                                     lowprec.custom_format(4, 4, bias=120),
                                     lowprec.fp8_e4m3fnuz])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_custom_elements_take_the_kernel_or_the_reference_alike(element, dtype):
    # far-off biases and fnuz elements leave the float32 path or the kernel
    fmt = lowprec.blocks.custom_block_format(element, 32)
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((64, 32)) * np.exp(rng.uniform(-60, 60, (64, 1))))
    x = x.astype(dtype)
    q = lowprec.quantize_blocks(x, fmt)
    ref = reference.quantize_rows(x, fmt, "floor")
    assert np.array_equal(q.codes, ref["codes"])
    assert np.array_equal(q.scales[:, 0], ref["scales"])
