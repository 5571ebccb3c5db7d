"""quantize_blocks: the issue's worked vectors, the specials, the layout, the API."""

from __future__ import annotations

import numpy as np
import pytest

import lowprec
from lowprec.blocks import reference

V = np.arange(32) / 2 - 5  # -5.0 .. 10.5, amax 10.5 (issue 17, "a worked block")

WORKED = {
    "mxfp8_e4m3": (122, "F2 F1 F0 EE EC EA E8 E4 E0 D8 00 58 60 64 68 6A 6C 6E "
                        "70 71 72 73 74 75 76 77 78 78 79 7A 7A 7A"),
    "mxfp4_e2m1": (128, "C C C C B A A A 9 8 0 0 1 2 2 2 "
                        "3 4 4 4 4 5 5 5 6 6 6 6 6 6 6 7"),
    "mxint8": (130, " ".join(f"{k & 0xFF:X}" for k in range(-40, 85, 4))),
}


@pytest.mark.parametrize("rule", ["floor", "rceil"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(WORKED))
def test_the_worked_block(name, rule, dtype):
    q = lowprec.quantize_blocks(V.astype(dtype), name, scale_rule=rule)
    scale, codes = WORKED[name]
    assert q.scales.tolist() == [scale]
    assert q.codes.tolist() == [int(c, 16) for c in codes.split()]


# issue 17: (global_amax, block_amax) as fp32 bits -> e4m3 block scale, te/div6/cudnn
NVFP4_VECTORS = [
    (0x4611DB9F, 0x40C5F333, 0.3125, 0.28125, 0.3125),
    (0x435F4F08, 0x3C4761FF, 0.025390625, 0.0234375, 0.025390625),
    (0x4131F4E1, 0x3A922DB8, 0.046875, 0.04296875, 0.04296875),
]


def _f32(bits):
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


@pytest.mark.parametrize("g, b, te, div6, cudnn", NVFP4_VECTORS)
def test_the_nvfp4_regression_vectors(g, b, te, div6, cudnn):
    # one block holding the block amax, another holding the global amax
    x = np.zeros(32, dtype=np.float32)
    x[0], x[16] = _f32(b), _f32(g)
    for rule, want in (("te", te), ("div6", div6), ("cudnn", cudnn)):
        q = lowprec.quantize_blocks(x, "nvfp4", scale_rule=rule)
        assert lowprec.decode(q.scales[0], "fp8_e4m3fn") == want, rule
        assert q.tensor_scale == np.float32(2688.0) / _f32(g)


def test_the_sign_of_zero_is_kept():
    # -0.25 under scale 2 is -0.125 in e2m1: it rounds to -0, code 0x8
    q = lowprec.quantize_blocks(np.array([-0.25, 8.0, -0.0, 0.0]), "mxfp4_e2m1",
                                block_shape=4)
    assert q.scales.tolist() == [128] and q.codes.tolist() == [0x8, 0x6, 0x8, 0x0]
    d = q.dequantize(np.float64)
    assert np.signbit(d).tolist() == [True, False, True, False]


@pytest.mark.parametrize("fmt, nan_code", [("mxfp8_e4m3", 0x7F), ("mxfp8_e5m2", 0x7E),
                                           ("mxfp4_e2m1", 0x7), ("mxint8", 0x7F),
                                           ("nvfp4", 0x7)])
def test_nan_or_inf_gives_the_nan_scale_and_a_nan_block(fmt, nan_code):
    f = lowprec.blocks.as_block_format(fmt)
    x = np.ones((2, f.block_size), dtype=np.float32)
    x[0, 3] = np.nan
    x[1, 5] = -np.inf
    q = lowprec.quantize_blocks(x, fmt)
    assert q.scales[:, 0].tolist() == [f.scale.nan_code] * 2
    assert q.codes[0, 3] == nan_code
    assert np.isnan(q.dequantize()).all()


def test_an_all_zero_block_has_scale_code_zero():
    q = lowprec.quantize_blocks(np.zeros(64), "mxfp8_e4m3")
    assert q.scales.tolist() == [0, 0] and not q.codes.any()
    assert np.array_equal(q.dequantize(), np.zeros(64, np.float32))


def test_e8m0_code_0_dequantizes_as_2_to_the_minus_127():
    x = np.full(32, 2.0**-130)  # floor: E = -130 - 8, clamped to -127
    q = lowprec.quantize_blocks(x, "mxfp8_e4m3")
    assert q.scales.tolist() == [0]
    assert np.array_equal(q.dequantize(np.float64), x)  # 2**-3 * 2**-127, exactly


def test_floor_saturates_and_rceil_does_not():
    x = np.r_[np.full(31, 0.1), 7.9].astype(np.float32)  # e2m1: floor X = 1
    s_floor, s_rceil = lowprec.BlockStats(), lowprec.BlockStats()
    qf = lowprec.quantize_blocks(x, "mxfp4_e2m1", stats=s_floor)
    qr = lowprec.quantize_blocks(x, "mxfp4_e2m1", scale_rule="rceil", stats=s_rceil)
    assert qf.codes[-1] == 0x7 and qf.dequantize()[-1] == 6.0
    assert s_floor.saturated == 1 and s_rceil.saturated == 0
    assert qr.scales[0] == 128 and qr.dequantize()[-1] == 8.0


def test_stats_count_saturated_flushed_and_nan_blocks():
    s = lowprec.BlockStats()
    x = np.r_[np.arange(31.0), 1e-9, np.full(31, 1.0), np.nan]
    lowprec.quantize_blocks(x, "mxfp4_e2m1", stats=s)
    # block 0: X = 4, 25..30 saturate; 1e-9 and 1/4 (a tie to 0) flush
    assert s.as_dict() == dict(elements=64, blocks=2, saturated=6, flushed=2,
                               nan_blocks=1)
    s.reset()
    assert s.blocks == 0


def test_a_ragged_block_is_refused_unless_padded():
    x = np.arange(40.0)
    with pytest.raises(ValueError, match="pad=True"):
        lowprec.quantize_blocks(x, "mxfp8_e4m3")
    q = lowprec.quantize_blocks(x, "mxfp8_e4m3", pad=True)
    assert q.codes.shape == (64,) and q.scales.shape == (2,) and q.shape == (40,)
    assert not q.codes[40:].any()
    whole = lowprec.quantize_blocks(np.r_[x, np.zeros(24)], "mxfp8_e4m3")
    assert np.array_equal(q.codes, whole.codes)
    assert q.dequantize().shape == (40,)


def test_blocks_run_along_axis():
    x = np.random.default_rng(1).standard_normal((64, 3))
    q0 = lowprec.quantize_blocks(x, "mxfp8_e5m2", axis=0)
    qt = lowprec.quantize_blocks(x.T.copy(), "mxfp8_e5m2")
    assert q0.codes.shape == (64, 3) and q0.scales.shape == (2, 3)
    assert np.array_equal(q0.codes, qt.codes.T) and np.array_equal(q0.scales,
                                                                   qt.scales.T)
    assert np.array_equal(q0.dequantize(), qt.dequantize().T)


def test_2d_tiles_are_blocks_of_the_last_two_axes():
    x = np.random.default_rng(2).standard_normal((32, 48)).astype(np.float32)
    q = lowprec.quantize_blocks(x, "nvfp4", block_shape=(16, 16))
    assert q.scales.shape == (2, 3) and q.codes.shape == (32, 48)
    tile = x[16:32, 32:48]
    # a tile is one 256-element block, quantized with the whole tensor's S_enc
    g = np.float32(np.abs(x).max())
    rows = tile.reshape(1, -1)
    ref = reference.quantize_rows(rows, lowprec.blocks.nvfp4, "te",
                                  global_amax=float(g))
    assert q.scales[1, 2] == ref["scales"][0]
    assert np.array_equal(q.codes[16:32, 32:48].reshape(-1), ref["codes"][0])


def test_pack_puts_the_first_element_in_the_low_nibble():
    q = lowprec.quantize_blocks(V, "mxfp4_e2m1")
    packed = q.pack()
    assert packed.dtype == np.uint8 and packed.size == 16
    assert packed[0] == 0xCC and packed[2] == 0xAB  # codes C C, then B A
    assert q.nbytes == 17  # 16 bytes of codes, one scale
    with pytest.raises(ValueError, match="4-bit"):
        lowprec.quantize_blocks(V, "mxfp8_e4m3").pack()


def test_dequantize_mx_is_element_times_scale_rounded_once():
    x = np.random.default_rng(3).standard_normal(96) * 1e30
    q = lowprec.quantize_blocks(x, "mxfp8_e5m2")
    elem = lowprec.decode(q.codes, "fp8_e5m2")
    exact = np.ldexp(elem, np.repeat(q.scales.astype(int) - 127, 32))
    assert np.array_equal(q.dequantize(np.float64), exact)
    assert np.array_equal(q.dequantize(np.float32), exact.astype(np.float32))


def test_stochastic_rounding_is_seeded_and_picks_a_neighbour():
    x = np.random.default_rng(4).standard_normal(320)
    a = lowprec.quantize_blocks(x, "mxfp4_e2m1", rounding="stochastic", rng=7)
    b = lowprec.quantize_blocks(x, "mxfp4_e2m1", rounding="stochastic", rng=7)
    assert np.array_equal(a.codes, b.codes)
    d = a.dequantize(np.float64)
    lo = lowprec.quantize_blocks(x, "mxfp4_e2m1", rounding="toward_negative")
    hi = lowprec.quantize_blocks(x, "mxfp4_e2m1", rounding="toward_positive")
    assert np.all((d == lo.dequantize(np.float64)) | (d == hi.dequantize(np.float64)))


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(fmt="mxfp9"), ValueError, "unknown block format"),
    (dict(scale_rule="te"), ValueError, "scale_rule"),
    (dict(rounding="nearest"), ValueError, "rounding"),
    (dict(rng=3), ValueError, "rng"),
    (dict(axis=2), ValueError, "axis"),
    (dict(axis=1.0), TypeError, "axis"),
    (dict(block_shape=(0,)), ValueError, "block_shape"),
    (dict(pad="yes"), TypeError, "pad"),
    (dict(stats={}), TypeError, "stats"),
])
def test_bad_arguments_name_themselves(kwargs, err, match):
    fmt = kwargs.pop("fmt", "mxfp8_e4m3")
    with pytest.raises(err, match=match):
        lowprec.quantize_blocks(np.ones((2, 32)), fmt, **kwargs)


def test_non_float_data_is_refused():
    with pytest.raises(TypeError, match="x must hold"):
        lowprec.quantize_blocks(np.ones(32, dtype=complex), "mxfp8_e4m3")
    with pytest.raises(ValueError, match="1-D"):
        lowprec.quantize_blocks(1.0, "mxfp8_e4m3")
