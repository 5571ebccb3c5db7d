"""Emulated arrays: every modelled ufunc and function, bit for bit.

The oracles are lowprec's own scalar-free functions (``lowprec.add``, ``round``,
``sum``, ``matmul``; each tested against exact references in tests/arith and
tests/rounding), an exact ``Fraction`` rounding (tests/oracles.py) for the means,
and NumPy on float64 for the exact operations.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lowprec
from lowprec.emulation import EmulatedArray, EmulationStats, emulate, precision, promote
from lowprec.emulation.context import REDUCTION_ORDERS
from oracles import assert_same_bits, boundary_inputs, round_exact

MODES = [m for m in lowprec.ROUNDING_MODES if not m.startswith("stochastic")]
BINARY = {
    np.add: lowprec.add,
    np.subtract: lowprec.subtract,
    np.multiply: lowprec.multiply,
    np.true_divide: lowprec.divide,
}


def _values(fmt, n=400, seed=0):
    """Values of ``fmt``: its boundary points rounded onto it, plus random ones."""
    rng = np.random.default_rng(seed)
    pts = boundary_inputs(lowprec.as_format(fmt))
    pts = pts[np.isfinite(pts) | np.isnan(pts)]
    rand = rng.normal(0, 4, n) * 2.0 ** rng.integers(-12, 12, n)
    both = np.concatenate([rng.choice(pts, n), rand])
    with np.errstate(over="ignore"):
        return np.asarray(lowprec.round(both, fmt), np.float64)


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp8_e4m3fn"])
@pytest.mark.parametrize("ufunc", list(BINARY), ids=lambda u: u.__name__)
def test_binary_ufuncs_round_once_like_lowprec(ufunc, fmt, rounding):
    x, y = _values(fmt, seed=1), _values(fmt, seed=2)
    ex, ey = emulate(x, fmt, rounding=rounding), emulate(y, fmt, rounding=rounding)
    expected = BINARY[ufunc](x, y, fmt, rounding=rounding)
    result = ufunc(ex, ey)
    assert isinstance(result, EmulatedArray) and result.fmt == lowprec.as_format(fmt)
    assert_same_bits(np.asarray(result), expected, what=ufunc.__name__)


@pytest.mark.parametrize("rounding", MODES)
def test_sqrt_square_reciprocal(rounding):
    x = np.abs(_values("fp16", seed=3))
    e = emulate(x, "fp16", rounding=rounding)
    assert_same_bits(np.asarray(np.sqrt(e)), lowprec.sqrt(x, "fp16", rounding=rounding))
    assert_same_bits(np.asarray(np.square(e)),
                     lowprec.multiply(x, x, "fp16", rounding=rounding))
    with np.errstate(divide="ignore"):
        assert_same_bits(np.asarray(np.reciprocal(e)),
                         lowprec.divide(np.ones_like(x), x, "fp16", rounding=rounding))


def test_operators_and_stochastic_rounding_share_one_stream():
    x, y = _values("bf16", seed=4), _values("bf16", seed=5)
    a = emulate(x, "bf16", rounding="stochastic", rng=7)
    b = emulate(y, "bf16", rounding="stochastic", rng=8)
    got = [np.asarray(a + b), np.asarray(a * b)]
    rng = np.random.default_rng(7)  # the first operand's stream, consumed in order
    want = [lowprec.add(x, y, "bf16", rounding="stochastic", rng=rng),
            lowprec.multiply(x, y, "bf16", rounding="stochastic", rng=rng)]
    for g, w in zip(got, want, strict=True):
        assert_same_bits(g, w)


EXACT_UNARY = [np.negative, np.positive, np.absolute, np.fabs, np.sign, np.floor,
               np.ceil, np.trunc, np.rint]
EXACT_BINARY = [np.maximum, np.minimum, np.fmax, np.fmin, np.copysign]


@pytest.mark.parametrize("fmt", ["fp16", "fp8_e5m2", "fp4_e2m1fn"])
def test_exact_ufuncs_keep_the_format(fmt):
    x, y = _values(fmt, seed=6), _values(fmt, seed=7)
    ex, ey = emulate(x, fmt), emulate(y, fmt)
    for u in EXACT_UNARY:
        r = u(ex)
        assert r.fmt.name == fmt
        assert_same_bits(np.asarray(r), u(x), what=u.__name__)
        assert_same_bits(np.asarray(lowprec.round(np.asarray(r), fmt)), u(x))
    for u in EXACT_BINARY:
        assert_same_bits(np.asarray(u(ex, ey)), u(x, y), what=u.__name__)
    for u in (np.less, np.greater_equal, np.equal, np.not_equal):
        assert (u(ex, ey) == u(x, y)).all()
    assert (np.isnan(ex) == np.isnan(x)).all() and (np.signbit(ex) == np.signbit(x)).all()


def test_comparisons_with_plain_numbers_are_exact():
    x = emulate([0.0999755859375], "fp16")  # fp16's nearest value to 0.1
    assert not bool((x == 0.1)[0])
    assert bool((x < 0.1)[0])


@pytest.mark.parametrize("ufunc", [np.exp, np.log, np.sin, np.tanh, np.log1p])
def test_transcendentals_are_float64_then_one_rounding_and_counted(ufunc):
    x = np.abs(_values("bf16", seed=8))
    x = x[np.isfinite(x)]
    s = EmulationStats()
    r = ufunc(emulate(x, "bf16", stats=s))
    with np.errstate(all="ignore"):
        expected = lowprec.round(ufunc(x), "bf16")
    assert_same_bits(np.asarray(r), expected)
    assert s.transcendental == x.size and s.total == x.size


def test_plain_operands_are_rounded_to_the_format_first():
    x = _values("fp16", seed=9)
    r = emulate(x, "fp16") + 0.1
    tenth = lowprec.round(np.float64(0.1), "fp16")
    assert_same_bits(np.asarray(r), lowprec.add(x, np.full_like(x, tenth), "fp16"))
    r2 = 3 * emulate(x, "fp16")
    assert_same_bits(np.asarray(r2), lowprec.multiply(np.full_like(x, 3.0), x, "fp16"))


# the promotion table, written out: (a, b) -> result
PROMOTION = {
    ("fp16", "fp32"): "fp32",
    ("fp16", "bf16"): "fp32",
    ("bf16", "fp32"): "fp32",
    ("fp8_e4m3fn", "fp16"): "fp16",
    ("fp8_e5m2", "fp16"): "fp16",
    ("fp8_e5m2", "bf16"): "bf16",
    ("fp8_e4m3fn", "fp8_e5m2"): "fp16",
    ("fp8_e4m3fn", "bf16"): "bf16",
    ("fp4_e2m1fn", "fp8_e4m3fn"): "fp8_e4m3fn",
    ("fp32", "fp64"): "fp64",
    ("fp16", "fp16"): "fp16",
}


@pytest.mark.parametrize(("a", "b"), list(PROMOTION))
def test_promotion_table(a, b):
    fa, fb = lowprec.as_format(a), lowprec.as_format(b)
    want = PROMOTION[(a, b)]
    if want == "fp16" and {a, b} == {"fp8_e4m3fn", "fp8_e5m2"}:
        want = "fp32"  # neither fp8 holds the other: fp32, by the documented rule
    assert promote(fa, fb).name == want and promote(fb, fa).name == want
    r = emulate([1.5], a) * emulate([2.0], b)
    assert r.fmt.name == want


def test_mixed_formats_compute_in_the_wider_one():
    x = _values("fp16", seed=10)
    y = np.random.default_rng(11).normal(size=x.size).astype(np.float32).astype(float)
    r = emulate(x, "fp16") + emulate(y, "fp32")
    assert r.fmt.name == "fp32"
    assert_same_bits(np.asarray(r), lowprec.add(x, y, "fp32"))


@pytest.mark.parametrize(("order", "acc"), [(o, None) for o in REDUCTION_ORDERS]
                         + [("sequential", "fp32")])
def test_sum_dot_matmul_use_the_accumulation_model(order, acc):
    rng = np.random.default_rng(12)
    a = np.asarray(lowprec.round(rng.normal(size=(6, 50)), "fp16"), np.float64)
    b = np.asarray(lowprec.round(rng.normal(size=(50, 3)), "fp16"), np.float64)
    kw = {"accumulate": acc or "fp16", "order": order, "output": "fp16"}
    ea, eb = emulate(a, "fp16", accumulate=acc, order=order), emulate(b, "fp16")
    assert_same_bits(np.asarray(ea @ eb), lowprec.matmul(a, b, inputs="fp16", **kw))
    assert_same_bits(np.asarray(np.sum(ea, axis=1)), lowprec.sum(a, "fp16", axis=1, **kw))
    assert_same_bits(np.asarray(ea.sum()), lowprec.sum(a, "fp16", **kw))
    v = a[0]
    assert_same_bits(np.asarray(np.dot(ea[0], ea[0])), lowprec.dot(v, v, "fp16", **kw))
    batched = np.stack([a, a[::-1]])
    r = emulate(batched, "fp16", accumulate=acc, order=order) @ eb
    for i in range(2):
        assert_same_bits(np.asarray(r[i]),
                         lowprec.matmul(batched[i], b, inputs="fp16", **kw))


def test_tensor_core_model():
    rng = np.random.default_rng(13)
    a = np.asarray(lowprec.round(rng.normal(size=(4, 16)), "fp16"), np.float64)
    r = emulate(a, "fp16", model="a100", accumulate="fp32") @ emulate(a.T, "fp16")
    want = lowprec.matmul(a, a.T, inputs="fp16", accumulate="fp32", output="fp16",
                          model="a100")
    assert_same_bits(np.asarray(r), want)


def test_cumsum_is_the_running_sequential_sum():
    x = np.full(3000, 1.0)
    c = np.asarray(np.cumsum(emulate(x, "fp16")))
    assert c[2047] == 2048 and c[-1] == 2048  # +1 is lost from 2048 on, in fp16
    c32 = np.asarray(np.cumsum(emulate(x, "fp16", accumulate="fp32")))
    assert c32[-1] == 3000 and c32[2999] == 3000
    rng = np.random.default_rng(14)
    y = np.asarray(lowprec.round(rng.normal(size=(40, 3)), "bf16"), np.float64)
    got = np.asarray(np.cumsum(emulate(y, "bf16"), axis=0))
    acc = y[0].copy()
    for i in range(1, 40):
        acc = lowprec.add(acc, y[i], "bf16")
        assert_same_bits(got[i], acc)
    assert_same_bits(got[-1], lowprec.sum(y, "bf16", axis=0))
    with pytest.raises(ValueError, match="only the sequential order"):
        np.cumsum(emulate(y, "bf16", order="pairwise"))


@pytest.mark.parametrize("rounding", MODES)
def test_mean_is_the_sum_divided_once(rounding):
    rng = np.random.default_rng(15)
    x = np.asarray(lowprec.round(rng.normal(size=(7, 3)), "fp16"), np.float64)
    m = np.asarray(np.mean(emulate(x, "fp16", rounding=rounding), axis=0))
    sums = lowprec.sum(x, "fp16", axis=0, rounding=rounding, output="fp16")
    for j in range(3):
        want = round_exact(Fraction(float(sums[j])) / 7, lowprec.fp16, rounding)
        assert_same_bits(m[j], want)


def test_mean_at_a_midpoint_is_exact():
    # 2049/2 = 1024.5 is exact; 2051/3 lands near no boundary: the Fraction path
    # only matters when the float64 quotient sits on a boundary of the format
    x = emulate(np.array([1.0, 2.0, 4.0]), "fp8_e4m3fn")
    s = np.asarray(x.sum())
    assert float(np.asarray(np.mean(x))) == round_exact(Fraction(float(s)) / 3,
                                                        lowprec.fp8_e4m3fn)


def test_norm():
    x = np.asarray(lowprec.round(np.arange(1.0, 40.0), "fp16"), np.float64)
    r = np.linalg.norm(emulate(x, "fp16", accumulate="fp32"))
    ss = lowprec.matmul(x[None], x[:, None], inputs="fp16", accumulate="fp32",
                        output="fp32")[0, 0]
    want = lowprec.round(lowprec.sqrt(np.float64(ss), "fp32"), "fp16")
    assert_same_bits(np.asarray(r), want)


def test_indexing_shapes_and_copies_keep_the_format():
    x = emulate(np.arange(12.0).reshape(3, 4), "bf16")
    for r in (x[1], x[:, ::2], x.T, x.reshape(4, 3), np.concatenate([x, x]),
              np.stack([x, x]), np.where(x > 3, x, 0), x.copy(), np.clip(x, 1, 5),
              np.max(x, axis=0), np.sort(x), np.zeros_like(x), np.flip(x)):
        assert isinstance(r, EmulatedArray) and r.fmt.name == "bf16"
    x[0, 0] = 0.1  # rounded into the format
    assert float(np.asarray(x)[0, 0]) == float(lowprec.round(0.1, "bf16"))
    x += 1000.1
    assert float(np.asarray(x)[0, 1]) == float(lowprec.add(1.0, 1000.0, "bf16"))
    assert np.asarray(x).dtype == np.float64
    assert np.argmax(x) == 11 and np.shape(x) == (3, 4)


@pytest.mark.parametrize("call", [
    lambda x: np.linalg.solve(x, x),
    lambda x: np.prod(x),
    lambda x: np.fft.fft(x),
    lambda x: np.add.outer(x, x),
    lambda x: np.bitwise_and(x, x),
])
def test_unsupported_functions_raise_naming_them(call):
    x = emulate(np.eye(3), "fp16")
    with pytest.raises(TypeError, match=r"not supported on lowprec emulated arrays"):
        call(x)


def test_error_message_names_the_function():
    with pytest.raises(TypeError, match=r"numpy\.linalg\.solve is not supported"):
        np.linalg.solve(emulate(np.eye(2), "fp16"), np.ones(2))


def test_precision_context_sets_and_restores_defaults():
    s = EmulationStats()
    with precision("fp16", rounding="toward_zero", stats=s):
        a = emulate([1.0, 3.0])
        with precision("bf16"):
            assert emulate([1.0]).fmt.name == "bf16"
        b = emulate([0.1])
    assert a.fmt.name == "fp16" and a.settings.rounding == "toward_zero"
    assert b.settings.stats is s
    _ = a / 3
    assert s.total == 2 and s.inexact == 1
    with pytest.raises(ValueError, match="no format given"):
        emulate([1.0])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="rounding must be one of"):
        emulate([1.0], "fp16", rounding="nearest-ish")
    with pytest.raises(ValueError, match="order must be one of"):
        emulate([1.0], "fp16", order="unspecified")
    with pytest.raises(ValueError, match="model must be None or one of"):
        emulate([1.0], "fp16", model="tpu")
    with pytest.raises(TypeError, match="x must hold real numbers"):
        emulate(np.array(["a"]), "fp16")


_LEAF = st.integers(0, 3)
_EXPR = st.recursive(_LEAF, lambda sub: st.tuples(
    st.sampled_from(["+", "-", "*", "/"]), sub, sub), max_leaves=8)


def _eval(expr, leaves, ops):
    if isinstance(expr, int):
        return leaves[expr]
    op, a, b = expr
    return ops[op](_eval(a, leaves, ops), _eval(b, leaves, ops))


@given(expr=_EXPR, seed=st.integers(0, 2**32 - 1),
       fmt=st.sampled_from(["fp16", "bf16", "fp8_e5m2"]),
       rounding=st.sampled_from(MODES))
def test_random_expressions_match_lowprec_calls(expr, seed, fmt, rounding):
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        leaves = [np.asarray(lowprec.round(rng.normal(0, 3, 8), fmt), np.float64)
                  for _ in range(4)]
    emulated = [emulate(v, fmt, rounding=rounding) for v in leaves]
    ops_np = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
    ops_lp = {k: (lambda f: lambda a, b: f(a, b, fmt, rounding=rounding))(v)
              for k, v in {"+": lowprec.add, "-": lowprec.subtract,
                           "*": lowprec.multiply, "/": lowprec.divide}.items()}
    with np.errstate(all="ignore"):
        got = np.asarray(_eval(expr, emulated, ops_np))
        want = _eval(expr, leaves, ops_lp)
    assert_same_bits(np.broadcast_to(got, (8,)), np.broadcast_to(want, (8,)))
