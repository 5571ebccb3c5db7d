"""Telemetry statistics on hand-built arrays, and the JSON round trip.

References: values whose fate in fp16 is known by hand (flush, subnormal, overflow),
NumPy's own float16 conversion (correctly rounded, ties to even), ml_dtypes for bf16,
exponents read with math.frexp, and exact Fractions for the swallowed updates.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import lowprec
from lowprec.training.telemetry import (
    DEFAULT_LOG2_EDGES,
    Telemetry,
    format_range_marks,
    gradient_summary,
    log2_histogram,
    swallowed_fraction,
)

# -- gradient_summary --------------------------------------------------------------

# Each raw fp32 gradient with what fp16 rounding (ties to even) makes of it.
FP16_CASES = [
    (0.0, "zero"),
    (1e-9, "flushed"),  # far below 2**-25
    (2.0**-25, "flushed"),  # half the smallest subnormal: tie, to even = 0
    (-(2.0**-26), "flushed"),
    (2.0**-24, "subnormal"),  # smallest subnormal
    (1e-5, "subnormal"),
    (-6e-5, "subnormal"),  # just below 2**-14 = 6.1035e-5
    (2.0**-14, "normal"),
    (1.0, "normal"),
    (-3.5, "normal"),
    (65504.0, "normal"),  # fp16 max
    (65505.0, "overflow"),  # rounds down to max, but |raw| > max
    (65520.0, "overflow"),  # midpoint above max: ties to even gives inf
    (-1e6, "overflow"),
    (float("nan"), "overflow"),
]


def _fp16_round(raw: np.ndarray) -> np.ndarray:
    """NumPy's float32 -> float16 cast, an independent fp16 rounding."""
    with np.errstate(over="ignore"):  # overflow to inf is the point
        return raw.astype(np.float16).astype(np.float32)


def test_gradient_summary_counts_hand_built_fp16_cases():
    raw = np.array([v for v, _ in FP16_CASES], dtype=np.float32)
    kinds = [k for _, k in FP16_CASES]
    rounded = _fp16_round(raw)
    s = gradient_summary(raw, rounded, lowprec.fp16)
    nonzero = len(kinds) - kinds.count("zero")
    assert s["size"] == len(kinds) and s["nonzero"] == nonzero == 14
    assert s["flushed"] == kinds.count("flushed") == 3
    assert s["subnormal"] == kinds.count("subnormal") == 3
    assert s["overflow"] == kinds.count("overflow") == 4
    assert s["flushed_fraction"] == 3 / 14
    rounded_nonzero = nonzero - 3  # the flushed ones are zero now
    assert s["subnormal_fraction"] == 3 / rounded_nonzero
    assert s["overflow_fraction"] == 4 / 14
    for key in ("size", "nonzero", "flushed", "subnormal", "overflow"):
        assert type(s[key]) is int
    for key in ("flushed_fraction", "subnormal_fraction", "overflow_fraction"):
        assert type(s[key]) is float


def test_gradient_summary_agrees_with_lowprec_round():
    raw = np.array([v for v, _ in FP16_CASES], dtype=np.float32)
    by_numpy = gradient_summary(raw, _fp16_round(raw), "fp16")
    by_lowprec = gradient_summary(raw, lowprec.round(raw, "fp16"), "fp16")
    assert by_numpy == by_lowprec


def test_gradient_summary_bf16_keeps_what_fp16_loses():
    # bf16 has fp32's exponent range: none of these flush, none is subnormal
    raw = np.array([1e-9, 2.0**-25, 1e-5, 1e-30, 65520.0, 1e6], dtype=np.float32)
    rounded = raw.astype(ml_dtypes.bfloat16).astype(np.float32)
    s = gradient_summary(raw, rounded, "bf16")
    assert s["nonzero"] == 6
    assert s["flushed"] == s["subnormal"] == s["overflow"] == 0
    # ... and fp32's subnormals are bf16's too
    tiny = np.array([1e-40, 2.0**-133, 2.0**-135], dtype=np.float32)
    s = gradient_summary(
        tiny, tiny.astype(ml_dtypes.bfloat16).astype(np.float32), "bf16"
    )
    assert s["subnormal"] == 2 and s["flushed"] == 1  # 2**-135 < 2**-134: flushed


def test_gradient_summary_in_float16_storage():
    # thresholds compare exactly whatever the storage dtype
    raw = np.array([2.0**-24, 2.0**-14, 2.0**-15, 60000.0], dtype=np.float16)
    s = gradient_summary(raw, raw.copy(), "fp16")
    assert s["subnormal"] == 2 and s["overflow"] == 0 and s["flushed"] == 0
    s = gradient_summary(raw, raw.copy(), "fp8_e4m3fn")  # max 448, normal 2**-6
    assert s["overflow"] == 1 and s["subnormal"] == 3


def test_gradient_summary_empty_and_all_zero():
    for raw in (np.zeros(0, np.float32), np.zeros(7, np.float32)):
        s = gradient_summary(raw, raw, "fp16")
        assert s["nonzero"] == 0
        assert s["flushed_fraction"] == s["subnormal_fraction"] == 0.0
        assert s["overflow_fraction"] == 0.0


def test_gradient_summary_rejects_bad_arguments():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="same shape"):
        gradient_summary(x, np.ones(4, np.float32), "fp16")
    with pytest.raises(TypeError, match="raw"):
        gradient_summary(np.ones(3, int), x, "fp16")
    with pytest.raises(ValueError, match="unknown format"):
        gradient_summary(x, x, "fp17")


# -- log2_histogram ----------------------------------------------------------------


def _floor_log2(v: float) -> int:
    return math.frexp(v)[1] - 1


def test_log2_histogram_default_edges_hand_built():
    values = np.array(
        [
            2.0**-24,
            2.0**-14,
            0.75,
            1.0,
            1.5,
            -8.0,
            np.nextafter(1024.0, 0.0),  # log2 rounds to 10.0; the binade is 9
            0.0,
            np.inf,
            -np.inf,
            np.nan,
            1e-300,  # below 2**-149: counted in the first bin
            1e300,  # above 2**128: counted in the last bin
            2.0**127,
        ]
    )
    counts, edges = log2_histogram(values)
    assert edges.tolist() == list(range(-149, 129))
    assert counts.dtype == np.int64 and counts.shape == (277,)
    expected = np.zeros(277, dtype=np.int64)
    for v in values:
        if v != 0 and math.isfinite(v):
            expected[min(max(_floor_log2(abs(v)), -149), 127) + 149] += 1
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == 10
    assert counts[9 + 149] == 1 and counts[10 + 149] == 0


def test_log2_histogram_float16_subnormals():
    values = np.array([2.0**-24, 3 * 2.0**-24, 2.0**-15], dtype=np.float16)
    counts, _ = log2_histogram(values, bins=np.arange(-25, -13))
    # binades -24, -23 (3 * 2**-24), -15
    assert counts.tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1]


def test_log2_histogram_fractional_edges():
    values = np.array([0.6, 0.8, 1.2, 1.5, 3.0, 0.1], dtype=np.float32)
    counts, edges = log2_histogram(values, bins=[-1.0, -0.5, 0.0, 0.5, 1.0])
    # log2: -0.74, -0.32, 0.26, 0.58, 1.58 (clamped to the last), -3.3 (to the first)
    assert counts.tolist() == [2, 1, 1, 2]
    assert edges.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]


def test_log2_histogram_random_against_frexp(rng):
    values = (rng.standard_normal(3000) * np.exp2(rng.integers(-30, 10, 3000))).astype(
        np.float32
    )
    counts, _ = log2_histogram(values)
    expected = np.zeros(277, dtype=np.int64)
    for v in values.tolist():
        expected[_floor_log2(abs(v)) + 149] += 1
    np.testing.assert_array_equal(counts, expected)


def test_log2_histogram_default_edges_read_only():
    with pytest.raises(ValueError):
        DEFAULT_LOG2_EDGES[0] = 0.0
    _, edges = log2_histogram(np.ones(2))
    edges[0] = 5.0  # a copy
    assert DEFAULT_LOG2_EDGES[0] == -149


@pytest.mark.parametrize(
    ("values", "bins", "error"),
    [
        (np.ones(2), [1.0], ValueError),
        (np.ones(2), [1.0, 1.0], ValueError),
        (np.ones(2), [0.0, np.inf], ValueError),
        (np.ones(2), [[0.0, 1.0]], ValueError),
        (np.ones(2), ["a", "b"], TypeError),
        (np.array(["x"]), None, TypeError),
    ],
)
def test_log2_histogram_rejects_bad_arguments(values, bins, error):
    with pytest.raises(error):
        log2_histogram(values, bins)


# -- format_range_marks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "sub", "normal", "biggest"),
    [
        ("fp16", -24, -14, 65504),
        ("bf16", -133, -126, Fraction(2**8 - 1, 2**7) * 2**127),
        ("fp32", -149, -126, Fraction(2**24 - 1, 2**23) * 2**127),
        ("fp8_e4m3fn", -9, -6, 448),
        ("fp8_e5m2", -16, -14, 57344),
    ],
)
def test_format_range_marks(fmt, sub, normal, biggest):
    marks = format_range_marks(fmt)
    assert marks == {
        "smallest_subnormal": float(sub),
        "smallest_normal": float(normal),
        "max": pytest.approx(math.log2(biggest), abs=1e-12),
    }


# -- swallowed_fraction ------------------------------------------------------------


def test_swallowed_fp16_at_2048():
    w = np.full(1, 2048.0, dtype=np.float32)
    # fp16 spacing is 2 in [2048, 4096): 2049 is a tie and goes back to 2048
    assert swallowed_fraction(w, np.array([1.0], np.float32), "fp16") == 1.0
    assert swallowed_fraction(w, np.array([2.0], np.float32), "fp16") == 0.0
    # below 2048 the spacing is 1: 2047 is a value; 2047.5 ties to even 2048
    assert swallowed_fraction(w, np.array([-1.0], np.float32), "fp16") == 0.0
    assert swallowed_fraction(w, np.array([-0.5], np.float32), "fp16") == 1.0
    # but an fp32 weight takes all of them
    for d in (1.0, -0.5):
        assert swallowed_fraction(w, np.array([d], np.float32), "fp32") == 0.0


def test_swallowed_counts_only_nonzero_updates():
    w = np.array([2048.0, 2048.0, 1.0, 1.0, 5.0], dtype=np.float32)
    dw = np.array([1.0, 2.0, 0.0, -0.0, np.nan], dtype=np.float32)
    # nonzero: 1.0 (swallowed), 2.0 (applied), NaN (never swallowed)
    assert swallowed_fraction(w, dw, "fp16") == 1 / 3
    assert swallowed_fraction(w, np.zeros(5, np.float32), "fp16") == 0.0
    assert swallowed_fraction(w[:0], dw[:0], "fp16") == 0.0


def test_swallowed_bf16_near_one():
    w = np.ones(4, dtype=np.float32)
    # bf16 spacing above 1 is 2**-7: half of it ties to even (1.0)
    dw = np.array([2.0**-9, 2.0**-8, 2.0**-8 + 2.0**-20, -(2.0**-9)], np.float32)
    # below 1 the spacing is 2**-8: 1 - 2**-9 ties to even, which is 1.0
    assert swallowed_fraction(w, dw, "bf16") == 3 / 4
    assert swallowed_fraction(w, dw, "bf16", "kahan") == 3 / 4  # the plain sum
    assert swallowed_fraction(w, dw, "bf16", "toward_zero") == 3 / 4
    assert swallowed_fraction(w, dw, "bf16", "toward_positive") == 1 / 4


def test_swallowed_uses_the_exact_sum_in_directed_modes():
    # 1 + 2**-60 is 1.0 in float64, but it is above 1: rounding up must move it
    w = np.ones(2, dtype=np.float32)
    dw = np.array([2.0**-60, -(2.0**-60)], dtype=np.float32)
    assert swallowed_fraction(w, dw, "fp32", "ties_to_even") == 1.0
    assert swallowed_fraction(w, dw, "fp32", "toward_positive") == 0.5
    assert swallowed_fraction(w, dw, "fp32", "toward_negative") == 0.5
    assert swallowed_fraction(w, dw, "fp32", "toward_zero") == 0.5  # 1 - 2**-60 down
    assert swallowed_fraction(w, dw, "fp32", "to_odd") == 0.0


def test_swallowed_random_fp16_against_exact_fractions(rng):
    w = rng.uniform(-4, 4, 2000).astype(np.float16).astype(np.float32)
    dw = (rng.standard_normal(2000) * 10.0 ** rng.uniform(-6, -1, 2000)).astype(
        np.float32
    )
    dw[::7] = 0.0

    def fp16_rne(x: Fraction) -> Fraction:
        # nearest fp16 value (ties to even) of the exact x; |x| < 65504 here
        m = abs(x)
        e = m.numerator.bit_length() - m.denominator.bit_length()  # 2**e ~ |x|
        if Fraction(2) ** e > m:
            e -= 1  # now 2**e <= |x| < 2**(e + 1)
        ulp = Fraction(2) ** (max(e, -14) - 10)
        q, r = divmod(x, ulp)
        if r > ulp / 2 or (r == ulp / 2 and q % 2 == 1):
            q += 1
        return q * ulp

    moved = swallowed = 0
    for a, b in zip(w.tolist(), dw.tolist(), strict=True):
        if b == 0:
            continue
        moved += 1
        swallowed += fp16_rne(Fraction(a) + Fraction(b)) == Fraction(a)
    result = swallowed_fraction(w, dw, "fp16")
    assert result == swallowed / moved
    assert 0.2 < result < 0.8  # the test data exercises both outcomes


def test_swallowed_stochastic_matches_probability():
    # 1 + 2**-25 is a quarter of the fp32 spacing above 1: kept with probability 3/4
    n = 4000
    w = np.ones(n, dtype=np.float32)
    dw = np.full(n, 2.0**-25, dtype=np.float32)
    frac = swallowed_fraction(w, dw, "fp32", "stochastic", rng=12345)
    # binomial standard deviation sqrt(3/16 / 4000) = 0.0068; allow 6 of them
    assert abs(frac - 0.75) < 0.041
    assert swallowed_fraction(w, dw, "fp32", "stochastic", rng=12345) == frac


def test_swallowed_rejects_bad_arguments():
    w = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="same shape"):
        swallowed_fraction(w, np.ones(2, np.float32), "fp16")
    with pytest.raises(TypeError, match="dw"):
        swallowed_fraction(w, np.ones(3, int), "fp16")
    with pytest.raises(ValueError, match="rounding"):
        swallowed_fraction(w, np.zeros(3, np.float32), "fp16", "nearest")
    with pytest.raises(TypeError, match="rounding"):
        swallowed_fraction(w, w, "fp16", 1)


# -- Telemetry ---------------------------------------------------------------------


def _sample_telemetry() -> Telemetry:
    t = Telemetry(meta={"policy": "fp16_mixed", "fmt": lowprec.fp16, "lr": 0.1})
    hist = np.array([0, 3, 5], dtype=np.int64)
    t.record_step(
        np.int64(0),
        np.float32(2.5),
        np.float64(65536.0),
        np.bool_(False),
        {"layers.0.weight": {"flushed_fraction": np.float64(0.25), "hist": hist}},
        grad_norm=np.float32(1.5),
    )
    t.record_step(1, float("inf"), 65536.0, True, {}, grad_norm=float("nan"))
    t.record_step(2, 1.25, None, False, layers=None, grad_norm=-np.inf)
    t.record_eval(2, accuracy=np.float64(0.5), loss=float("nan"), fp32_accuracy=0.75)
    return t


def test_record_step_converts_to_plain_python():
    t = _sample_telemetry()
    first = t.steps[0]
    assert first == {
        "step": 0,
        "loss": 2.5,
        "scale": 65536.0,
        "skipped": False,
        "layers": {"layers.0.weight": {"flushed_fraction": 0.25, "hist": [0, 3, 5]}},
        "grad_norm": 1.5,
    }
    assert type(first["step"]) is int and type(first["loss"]) is float
    assert type(first["skipped"]) is bool and type(first["grad_norm"]) is float
    assert type(first["layers"]["layers.0.weight"]["hist"][0]) is int
    assert t.meta["fmt"] == "fp16"
    assert t.steps[2]["scale"] is None and t.steps[2]["layers"] == {}
    assert t.evals == [
        {"step": 2, "accuracy": 0.5, "loss": t.evals[0]["loss"], "fp32_accuracy": 0.75}
    ]
    assert math.isnan(t.evals[0]["loss"])


def test_record_step_copies_arrays():
    t = Telemetry()
    hist = np.array([1, 2, 3])
    t.record_step(0, 1.0, 1.0, False, {"w": {"hist": hist}})
    hist[:] = 0
    assert t.steps[0]["layers"]["w"]["hist"] == [1, 2, 3]


def test_series():
    t = _sample_telemetry()
    assert t.series("loss") == [2.5, math.inf, 1.25]
    assert t.series("skipped") == [False, True, False]
    assert t.series("flushed_fraction", layer="layers.0.weight") == [0.25, None, None]


def test_json_round_trip_with_non_finite_values(tmp_path):
    t = _sample_telemetry()
    path = tmp_path / "log.json"
    t.to_json(path)
    text = path.read_text(encoding="utf-8")

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    data = json.loads(text, parse_constant=refuse)  # strict JSON: no NaN/Infinity
    assert data["schema"] == "lowprec.telemetry"
    assert data["steps"][1]["loss"] == {"$float": "inf"}
    assert data["steps"][2]["grad_norm"] == {"$float": "-inf"}

    back = Telemetry.from_json(path)
    assert back.meta == t.meta
    assert back.steps[0] == t.steps[0]
    assert back.steps[1]["loss"] == math.inf and back.steps[1]["skipped"] is True
    assert math.isnan(back.steps[1]["grad_norm"])
    assert back.steps[2]["grad_norm"] == -math.inf
    assert back.steps[2]["scale"] is None
    assert math.isnan(back.evals[0]["loss"]) and back.evals[0]["accuracy"] == 0.5
    assert back.to_dict() == t.to_dict()  # tags compare equal where NaN would not
    assert back.series("loss") == t.series("loss")


def test_json_keeps_floats_exactly(tmp_path):
    t = Telemetry()
    values = [0.1, 1 / 3, 2.0**-149, 5e-324, 1.7976931348623157e308, -0.0]
    t.record_eval(0, values=values)
    t.to_json(tmp_path / "x.json")
    back = Telemetry.from_json(tmp_path / "x.json").evals[0]["values"]
    assert [v.hex() for v in back] == [v.hex() for v in values]


def test_from_json_rejects_other_files(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"steps": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a lowprec telemetry"):
        Telemetry.from_json(path)
    path.write_text(
        '{"schema": "lowprec.telemetry", "version": 99, "steps": []}', encoding="utf-8"
    )
    with pytest.raises(ValueError, match="version"):
        Telemetry.from_json(path)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((-1, 1.0, 1.0, False), {}, ValueError),
        ((True, 1.0, 1.0, False), {}, TypeError),
        ((1.0, 1.0, 1.0, False), {}, TypeError),
        ((0, "1.0", 1.0, False), {}, TypeError),
        ((0, 1.0, "big", False), {}, TypeError),
        ((0, 1.0, 1.0, 0), {}, TypeError),
        ((0, 1.0, 1.0, False, [1, 2]), {}, TypeError),
        ((0, 1.0, 1.0, False, {"w": 3.0}), {}, TypeError),
        ((0, 1.0, 1.0, False, {"w": {1: 2}}), {}, TypeError),
        ((0, 1.0, 1.0, False, {"w": {"$float": 2}}), {}, ValueError),
        ((0, 1.0, 1.0, False, {"w": {"c": 1j}}), {}, TypeError),
        ((0, 1.0, 1.0, False, {"w": {"o": object()}}), {}, TypeError),
        ((0, 1.0, 1.0, False), {"layers_extra": np.array([1j])}, TypeError),
    ],
)
def test_record_step_rejects_bad_arguments(args, kwargs, error):
    t = Telemetry()
    with pytest.raises(error):
        t.record_step(*args, **kwargs)
    assert t.steps == []


def test_record_eval_and_meta_reject_bad_arguments():
    t = Telemetry()
    with pytest.raises(TypeError):
        t.record_eval(0.5, accuracy=1.0)
    with pytest.raises(TypeError):
        t.record_eval(0, accuracy=1j)
    with pytest.raises(TypeError, match="meta"):
        Telemetry(meta=[("a", 1)])
