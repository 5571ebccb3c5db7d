"""Elementwise arithmetic against exact oracles, bit for bit.

``lowprec.add`` (and subtract, multiply, divide, sqrt, fma) must return the exact
result rounded once. The oracle of record is :func:`oracles.round_exact` applied to
that exact result, computed here without lowprec:

* ``+ - * /`` and fma: :class:`fractions.Fraction` arithmetic (a quotient of two
  floats is a rational, so it is exact too);
* sqrt: an integer square root carried 260 bits, giving an exact root or a
  bracket ``(lo, hi)`` around the irrational one; both ends must round to the same
  result, and since rounding is monotone in every mode (and for every fixed random
  word), so does the root between them;
* the IEEE 754 special cases (NaN, infinities, the sign of zero) are written out
  from IEEE 754-2019 sections 6.1-6.3 and 7.2-7.3.

numpy.float16 and ml_dtypes, which compute in float32 and round once (exact here:
float32 has at least 2p + 2 bits), are second, independent oracles for
round-to-nearest-even. NaN results are compared as NaN without their sign, which
IEEE 754 leaves unspecified for arithmetic.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracles import (
    DETERMINISTIC_MODES,
    Flags,
    all_code_values,
    grid_of,
    round_exact,
    round_exact_flags,
    same_bits,
)

import lowprec
import lowprec.testing

P53 = lowprec.custom_format(53, 11, name="p53e11")
P40 = lowprec.custom_format(40, 11, name="p40e11")
FORMATS = {
    "fp16": lowprec.fp16,
    "bf16": lowprec.bf16,
    "fp32": lowprec.fp32,
    "tf32": lowprec.tf32,
    "fp8_e4m3fn": lowprec.fp8_e4m3fn,
    "fp8_e5m2": lowprec.fp8_e5m2,
    "fp4_e2m1fn": lowprec.fp4_e2m1fn,
    "p53e11": P53,
    "p40e11": P40,
}
NAN = math.nan
INF = math.inf

# ------------------------------------------------------------------ exact results
# A value is a Fraction (finite, nonzero, exact) or a float (NaN, +-inf, +-0).


def _signbit(v: Fraction | float) -> bool:
    return v < 0 if isinstance(v, Fraction) else math.copysign(1.0, v) < 0


def _zero_sum(rounding: str) -> float:
    # IEEE 754 6.3: an exact zero sum of opposite signs is +0, -0 rounding down
    return -0.0 if rounding == "toward_negative" else 0.0


def exact_sum(x: float, y: float, rounding: str) -> Fraction | float:
    """``x + y`` exactly."""
    if math.isnan(x) or math.isnan(y):
        return NAN
    if math.isinf(x) or math.isinf(y):
        if math.isinf(x) and math.isinf(y) and (x > 0) != (y > 0):
            return NAN  # inf - inf
        return x if math.isinf(x) else y
    s = Fraction(x) + Fraction(y)
    if s != 0:
        return s
    if x == 0 and y == 0 and _signbit(x) == _signbit(y):
        return x  # (+0) + (+0) = +0, (-0) + (-0) = -0 in every mode
    return _zero_sum(rounding)


def exact_difference(x: float, y: float, rounding: str) -> Fraction | float:
    """``x - y`` exactly."""
    return exact_sum(x, -y, rounding)


def exact_product(x: float, y: float) -> Fraction | float:
    """``x * y`` exactly."""
    if math.isnan(x) or math.isnan(y):
        return NAN
    negative = _signbit(x) != _signbit(y)
    if math.isinf(x) or math.isinf(y):
        if x == 0 or y == 0:
            return NAN  # 0 * inf
        return -INF if negative else INF
    if x == 0 or y == 0:
        return -0.0 if negative else 0.0
    return Fraction(x) * Fraction(y)


def exact_quotient(x: float, y: float) -> Fraction | float:
    """``x / y`` exactly (a rational)."""
    if math.isnan(x) or math.isnan(y):
        return NAN
    negative = _signbit(x) != _signbit(y)
    if (math.isinf(x) and math.isinf(y)) or (x == 0 and y == 0):
        return NAN  # inf / inf, 0 / 0
    if math.isinf(x) or y == 0:
        return -INF if negative else INF  # x / 0 for x != 0: division by zero
    if math.isinf(y) or x == 0:
        return -0.0 if negative else 0.0
    return Fraction(x) / Fraction(y)


def exact_fma(x: float, y: float, z: float, rounding: str) -> Fraction | float:
    """``x * y + z`` exactly."""
    p = exact_product(x, y)
    if math.isnan(z) or (isinstance(p, float) and math.isnan(p)):
        return NAN
    if isinstance(p, float) and math.isinf(p):
        if math.isinf(z) and (z > 0) != (p > 0):
            return NAN
        return p
    if math.isinf(z):
        return z
    s = Fraction(p) + Fraction(z)
    if s != 0:
        return s
    if p == 0 and z == 0 and _signbit(p) == _signbit(z):
        return z
    return _zero_sum(rounding)


EXTRA_BITS = 260
Bracket = tuple[Fraction, Fraction]


def sqrt_bracket(x: float) -> Fraction | float | Bracket:
    """``sqrt(x)``: exact (Fraction or special float), or an open bracket (lo, hi)
    around it at most 2**-EXTRA_BITS wide relative to it, from integer square
    roots."""
    if math.isnan(x) or x < 0:
        return NAN  # sqrt of a negative number (-0 excluded: -0 < 0 is False)
    if x == 0 or math.isinf(x):
        return x  # sqrt(+-0) = +-0, sqrt(inf) = inf
    v = Fraction(x)
    n, d = v.numerator, v.denominator
    t = d.bit_length() - 1  # d = 2**t
    # scale by 4**k: an integer, with at least 2 * EXTRA_BITS bits
    k = max((t + 1) // 2, (t - n.bit_length() + 2 * EXTRA_BITS) // 2 + 1)
    big = n << (2 * k - t)
    r = math.isqrt(big)
    if r * r == big:
        return Fraction(r, 1 << k)
    return Fraction(r, 1 << k), Fraction(r + 1, 1 << k)


def exact_value(op: str, operands: tuple[float, ...], rounding: str):
    """The exact result of ``op``: a Fraction or special float, or for an
    irrational square root a :data:`Bracket` around it."""
    if op == "add":
        return exact_sum(*operands, rounding)
    if op == "subtract":
        return exact_difference(*operands, rounding)
    if op == "multiply":
        return exact_product(*operands)
    if op == "divide":
        return exact_quotient(*operands)
    if op == "fma":
        return exact_fma(*operands, rounding)
    if op == "sqrt":
        return sqrt_bracket(*operands)
    raise ValueError(op)


def round_value(v, fmt, rounding: str, **kw) -> float:
    """``round_exact`` of an exact value; for a bracket, of its two ends, which must
    agree. Rounding in any mode (and with any fixed random word) is monotone, so
    then every point of the bracket, the root included, rounds to that result."""
    if isinstance(v, tuple):
        lo, hi = (round_exact(end, fmt, rounding, **kw) for end in v)
        assert same_bits(lo, hi), f"a square root in {v} is too close to a boundary"
        return lo
    return round_exact(v, fmt, rounding, **kw)


def round_value_flags(v, fmt, rounding: str, **kw) -> tuple[float, Flags]:
    """:func:`round_value` and the flags (of the bracket's midpoint, which like the
    root is never a value of the format, nor a power of two)."""
    if isinstance(v, tuple):
        value = round_value(v, fmt, rounding, **kw)
        return value, round_exact_flags((v[0] + v[1]) / 2, fmt, rounding, **kw)[1]
    return round_exact_flags(v, fmt, rounding, **kw)


def midpoint(v):
    return (v[0] + v[1]) / 2 if isinstance(v, tuple) else v


_ROUNDED: dict[tuple, float] = {}


def rounded(value, fmt, rounding: str) -> float:
    """:func:`round_value` memoized on the exact value (x+y and y+x, x-y and x+(-y)
    are rounded once); floats keyed by their hex so that -0.0 and 0.0 stay apart."""
    key = (value.hex() if isinstance(value, float) else value, fmt, rounding)
    if key not in _ROUNDED:
        _ROUNDED[key] = round_value(value, fmt, rounding)
    return _ROUNDED[key]


def expected(op: str, operands: list[np.ndarray], fmt, rounding: str) -> np.ndarray:
    """The oracle's result for every element (operands already broadcast, 1-D)."""
    rows = zip(*(o.tolist() for o in operands), strict=True)
    out = [rounded(exact_value(op, row, rounding), fmt, rounding) for row in rows]
    return np.array(out, dtype=np.float64)


OPS = {
    "add": lowprec.add,
    "subtract": lowprec.subtract,
    "multiply": lowprec.multiply,
    "divide": lowprec.divide,
    "sqrt": lowprec.sqrt,
    "fma": lowprec.fma,
}
ARITY = {"add": 2, "subtract": 2, "multiply": 2, "divide": 2, "sqrt": 1, "fma": 3}

# ------------------------------------------------------------------- comparisons


def canonical_nan(x) -> np.ndarray:
    a = np.array(x, dtype=np.float64)
    a[np.isnan(a)] = NAN
    return a


def mismatches(actual, want, operands, what: str) -> str | None:
    """None if bit-identical (NaN sign aside), else a report of the first ones."""
    a = canonical_nan(actual).reshape(-1)
    e = canonical_nan(want).reshape(-1)
    assert a.shape == e.shape, (a.shape, e.shape)
    ok = same_bits(a, e)
    if ok.all():
        return None
    bad = np.flatnonzero(~ok)
    lines = [f"{what}: {bad.size} of {ok.size} differ; first ones:"]
    for i in bad[:8]:
        args = ", ".join(float(o[i]).hex() for o in operands)
        lines.append(f"  ({args}) -> got {a[i].hex()}, want {e[i].hex()}")
    return "\n".join(lines)


def assert_matches(actual, want, operands, what: str) -> None:
    msg = mismatches(actual, want, operands, what)
    assert msg is None, msg


# -------------------------------------------------------------------- operands


def is_value(v: float | Fraction, fmt) -> bool:
    """Whether a number is a finite value of ``fmt`` (from the grid alone)."""
    g = grid_of(fmt)
    a = abs(Fraction(v))
    if a == 0:
        return True
    if a > g.max or (not g.subnormals and a < Fraction(2) ** g.emin):
        return False
    return (a / g.quantum(a)).denominator == 1


@functools.cache
def curated_values(name: str) -> np.ndarray:
    """Values of a format where arithmetic is delicate, both signs, and specials.

    The smallest subnormals, the subnormal/normal boundary, 1 and its neighbours,
    half an ulp of 1 (x + it is a tie), max and its neighbour below, the top
    quantum's half (max + it is the overflow tie), powers of two far apart, and a
    few random values of the normal and subnormal ranges. Pairs of them give large
    exponent gaps, exact ties, cancellations (the set is symmetric), overflow and
    underflow.
    """
    fmt = FORMATS[name]
    if fmt.precision + fmt.exponent_bits <= 5:
        return all_code_values(fmt)  # fp4: every code
    g = grid_of(fmt)
    p = g.precision
    ss = float(g.smallest_positive)
    sn = 2.0**g.emin
    top = 2.0 ** (g.emax - p + 1)
    mx = float(g.max)
    ulp1 = 2.0 ** (1 - p)
    cands = [ss, 2 * ss, 3 * ss, sn - ss, sn, sn * (1 + ulp1), 1.0, 1 + ulp1, 1.5]
    cands += [2 - ulp1, 3.0, 2.0**-p, mx, mx - top, top / 2, 2.0**g.emax]
    cands += [2.0 ** (g.emax // 2), 2.0 ** (g.emin // 2)]
    gen = np.random.default_rng(sum(map(ord, name)))
    for i in range(6):
        e = int(gen.integers(g.emin, g.emax + 1)) if i % 2 else int(gen.integers(-6, 7))
        m = int(gen.integers(1 << (p - 1), 1 << p))
        cands.append(math.ldexp(m, e - p + 1))
    if g.subnormals:
        cands += [ss * int(gen.integers(1, 1 << (p - 1))) for _ in range(2)]
    mags = sorted({c for c in cands if 0 < c and is_value(c, fmt)})
    specials = [0.0, -0.0]
    specials += [INF, -INF] if g.has_inf else []
    specials += [NAN] if g.has_nan else []
    return np.array(specials + mags + [-m for m in mags], dtype=np.float64)


@functools.cache
def operand_sets(name: str, op: str) -> tuple[np.ndarray, ...]:
    """The operands the sweep feeds to ``op``: every pair of curated values for the
    binary ops, every value for sqrt, random triples and cancelling triples
    (z = -(x*y) rounded to the format) for fma."""
    v = curated_values(name)
    if op == "sqrt":
        return (v,)
    if op != "fma":
        x, y = np.meshgrid(v, v, indexing="ij")
        return x.reshape(-1), y.reshape(-1)
    fmt = FORMATS[name]
    gen = np.random.default_rng(7)
    x, y, z = (gen.choice(v, 300) for _ in range(3))
    xc, yc = gen.choice(v, 300), gen.choice(v, 300)
    with np.errstate(all="ignore"):
        near = [
            round_exact(exact_product(a, b), fmt) for a, b in zip(xc, yc, strict=True)
        ]
    zc = -np.array(near)
    return np.concatenate([x, xc]), np.concatenate([y, yc]), np.concatenate([z, zc])


# ------------------------------------------------------ the exact-oracle sweeps


# fp16's curated sweep is the largest (every pair of about 600 values); the fast
# tier keeps its add, subtract and fma, the slow tier adds the rest (the other
# formats cover the same kernel paths in the fast tier)
FP16_SLOW_OPS = ("multiply", "divide", "sqrt")
ORACLE_SWEEPS = [
    pytest.param(
        name,
        op,
        marks=pytest.mark.slow if name == "fp16" and op in FP16_SLOW_OPS else (),
        id=f"{name}-{op}",
    )
    for name in FORMATS
    for op in OPS
]


@pytest.mark.parametrize(("name", "op"), ORACLE_SWEEPS)
def test_every_deterministic_mode_matches_the_exact_oracle(name, op):
    fmt = FORMATS[name]
    operands = operand_sets(name, op)
    failures = []
    for mode in DETERMINISTIC_MODES:
        got = OPS[op](*operands, fmt, rounding=mode)
        want = expected(op, list(operands), fmt, mode)
        msg = mismatches(got, want, operands, f"{op} {name} {mode}")
        if msg:
            failures.append(msg)
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------- hand-checked cases


def test_bf16_large_exponent_gap_in_every_mode():
    # float64 alone loses 2**-100 next to 2**100; the emulated adder must not
    assert 2.0**100 + 2.0**-100 == 2.0**100
    up = 2.0**100 * (1 + 2.0**-7)  # the next bf16 value above 2**100
    want = {
        "ties_to_even": (2.0**100, -(2.0**100)),
        "ties_to_away": (2.0**100, -(2.0**100)),
        "toward_zero": (2.0**100, -(2.0**100)),
        "toward_positive": (up, -(2.0**100)),
        "toward_negative": (2.0**100, -up),
        "to_odd": (up, -up),
    }
    for mode, (pos, neg) in want.items():
        got = lowprec.add(
            [2.0**100, -(2.0**100)], [2.0**-100, -(2.0**-100)], "bf16", rounding=mode
        )
        assert got.tolist() == [pos, neg], mode
        assert (
            round_exact(Fraction(2) ** 100 + Fraction(2) ** -100, lowprec.bf16, mode)
            == pos
        )


def test_fp16_tie_in_every_mode():
    # 1 + 2**-11 is halfway between 1 and 1 + 2**-10; 1 + 3 * 2**-11 between
    # 1 + 2**-10 (odd) and 1 + 2**-9 (even)
    x = np.array([1.0, 1 + 2.0**-10, -1.0])
    y = np.array([2.0**-11, 2.0**-11, -(2.0**-11)])
    want = {
        "ties_to_even": [1.0, 1 + 2.0**-9, -1.0],
        "ties_to_away": [1 + 2.0**-10, 1 + 2.0**-9, -1 - 2.0**-10],
        "toward_zero": [1.0, 1 + 2.0**-10, -1.0],
        "toward_positive": [1 + 2.0**-10, 1 + 2.0**-9, -1.0],
        "toward_negative": [1.0, 1 + 2.0**-10, -1 - 2.0**-10],
        "to_odd": [1 + 2.0**-10, 1 + 2.0**-10, -1 - 2.0**-10],
    }
    for mode, w in want.items():
        assert lowprec.add(x, y, "fp16", rounding=mode).tolist() == w, mode


def test_signed_zeros_of_sums_and_products():
    x = np.array([1.5, -1.5, 0.0, -0.0, 0.0, -0.0])
    y = np.array([-1.5, 1.5, -0.0, -0.0, 0.0, 0.0])
    for mode in DETERMINISTIC_MODES:
        z = -0.0 if mode == "toward_negative" else 0.0
        # x + (-x) and (+0) + (-0) are +0, or -0 rounding down; equal zeros keep
        # their sign
        want = [z, z, z, -0.0, 0.0, z]
        assert_matches(
            lowprec.add(x, y, "fp16", rounding=mode), want, (x, y), f"add {mode}"
        )
        # x - y is x + (-y): the same sums
        assert_matches(
            lowprec.subtract(x, -y, "fp16", rounding=mode),
            want,
            (x, y),
            f"subtract {mode}",
        )
    got = lowprec.multiply([-0.0, 0.0, -0.0, 3.0], [2.0, -2.0, -2.0, -0.0], "bf16")
    assert_matches(got, [-0.0, -0.0, 0.0, -0.0], (np.zeros(4),), "multiply")


def test_signed_zeros_of_fma():
    # 1 * 1 + (-1) cancels: +0 (-0 rounding down); (-0) * 1 + (-0) and
    # 1 * (-0) + (-0) are (-0) + (-0) = -0 in every mode; 0 * 1 + (-0) is +0 or -0
    x = np.array([1.0, -0.0, 1.0, 0.0])
    y = np.array([1.0, 1.0, -0.0, 1.0])
    zz = np.array([-1.0, -0.0, -0.0, -0.0])
    failures = []
    for mode in DETERMINISTIC_MODES:
        z = -0.0 if mode == "toward_negative" else 0.0
        got = lowprec.fma(x, y, zz, "fp16", rounding=mode)
        failures.append(mismatches(got, [z, -0.0, -0.0, z], (x, y, zz), f"fma {mode}"))
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["fp16", "fp8_e4m3fn"])
def test_ieee_special_cases(name):
    inf_res = INF if name == "fp16" else NAN  # e4m3fn has no inf: NaN instead
    cases = [
        (lowprec.add, (INF, -INF), NAN),
        (lowprec.subtract, (INF, INF), NAN),
        (lowprec.multiply, (0.0, INF), NAN),
        (lowprec.divide, (0.0, 0.0), NAN),
        (lowprec.divide, (INF, -INF), NAN),
        (lowprec.sqrt, (-1.0,), NAN),
        (lowprec.sqrt, (-INF,), NAN),
        (lowprec.fma, (INF, 0.0, 1.0), NAN),
        (lowprec.fma, (INF, 1.0, -INF), NAN),
        (lowprec.divide, (1.0, 0.0), inf_res),
        (lowprec.divide, (-1.0, 0.0), -inf_res),
        (lowprec.divide, (1.0, -0.0), -inf_res),
        (lowprec.divide, (0.0, 0.0), NAN),
        (lowprec.divide, (-2.0, INF), -0.0),
        (lowprec.sqrt, (-0.0,), -0.0),
        (lowprec.sqrt, (INF,), inf_res),
        (lowprec.add, (INF, 1.0), inf_res),
    ]
    fmt = FORMATS[name]
    for fn, args, want in cases:
        if any(math.isinf(a) for a in args) and not fmt.has_inf:
            continue  # inf is not an operand of e4m3fn
        got = fn(*args, fmt)
        assert_matches(
            np.atleast_1d(got),
            [want],
            tuple(map(np.atleast_1d, args)),
            f"{fn.__name__}{args}",
        )


def test_overflow_by_mode_and_format():
    mx = lowprec.fp16.max
    want = {  # (max + max, -max - max): IEEE 754 section 7.4
        "ties_to_even": (INF, -INF),
        "ties_to_away": (INF, -INF),
        "toward_zero": (mx, -mx),
        "toward_positive": (INF, -mx),
        "toward_negative": (mx, -INF),
        "to_odd": (mx, -mx),
    }
    for mode, w in want.items():
        got = lowprec.add([mx, -mx], [mx, -mx], "fp16", rounding=mode)
        assert got.tolist() == list(w), mode
        assert float(lowprec.add(mx, mx, "fp16", rounding=mode, saturate=True)) == mx
    # max + half the top quantum is the overflow tie: even is 2**16, so inf
    assert float(lowprec.add(mx, 16.0, "fp16")) == INF
    assert float(lowprec.add(mx, 8.0, "fp16")) == mx
    assert math.isnan(lowprec.add(448.0, 448.0, "fp8_e4m3fn"))  # fn: NaN, no inf
    assert float(lowprec.add(6.0, 6.0, "fp4_e2m1fn")) == 6.0  # no inf/NaN: saturate


# --- wide formats: the float64 intermediate itself over- or underflows --------


def check_cases(fmt, cases) -> None:
    """Each (op, operands, mode) against the oracle; all failures in one report."""
    failures = []
    for op, args, mode in cases:
        got = float(OPS[op](*args, fmt, rounding=mode))
        want = round_value(exact_value(op, args, mode), fmt, mode)
        if not same_bits(canonical_nan([got]), canonical_nan([want])).all():
            failures.append(
                f"{op}{tuple(a.hex() for a in args)} {mode}: got "
                f"{got.hex()}, want {want.hex()}"
            )
    assert not failures, "\n".join(failures)


WIDE = [P53, P40, lowprec.fp64]


@pytest.mark.parametrize("fmt", WIDE, ids=lambda f: f.name)
def test_overflow_beyond_float64_is_still_a_finite_overflow(fmt):
    """A finite exact result above float64's range is an overflow like any other:
    toward_zero, to_odd and the directed mode away from it give max, not inf; and
    a finite product plus inf is inf, not NaN."""
    big = [
        ("add", (fmt.max, fmt.max)),
        ("multiply", (2.0**1000, 2.0**100)),
        ("divide", (2.0**1000, 2.0**-100)),
        ("fma", (2.0**1000, 2.0**100, 1.0)),
    ]
    cases = [
        (op, args, mode)
        for op, args in big
        for mode in ("toward_zero", "to_odd", "toward_negative")
    ]
    cases += [
        ("fma", (fmt.max, 2.0, math.inf), "ties_to_even"),
        ("fma", (fmt.max, -2.0, math.inf), "ties_to_even"),
    ]
    check_cases(fmt, cases)


@pytest.mark.parametrize("fmt", WIDE, ids=lambda f: f.name)
def test_error_terms_below_float64_subnormals_are_kept(fmt):
    """Exact results, error terms and remainders below float64's subnormal
    spacing are still nonzero: rounding up, to odd or to nearest-away sees them,
    and an underflowed fma result keeps its sign."""
    ss = fmt.smallest_subnormal
    cases = [
        ("multiply", (2.0**-600, 2.0**-500), "toward_positive"),
        ("multiply", (3 * ss, 1.5), "ties_to_away"),
        ("divide", (2.0**-1000, 2.0**100), "toward_positive"),
        ("divide", (ss, 3 * ss), "toward_positive"),  # 1/3: remainder ~2**-1130
        ("divide", (ss, 2 - 2.0**-39), "ties_to_even"),
        ("sqrt", (2 * ss,), "toward_zero"),  # remainder below 2**-1074
        ("fma", (2.0**-600, 2.0**-500, 0.0), "toward_positive"),
        ("fma", (ss, -ss, 0.0), "ties_to_even"),  # -2**-2148 rounds to -0
        ("fma", (-(2.0**-1022), -(2.0**-53), 2.0**-1030), "ties_to_away"),
    ]
    check_cases(fmt, cases)


def test_no_double_rounding_in_p40_subnormal_products():
    # x * y = 1.4999... * 2**-1061: float64 rounds it onto the p40 midpoint
    # 1.5 * 2**-1061, which ties_to_even would then send up to 2 * 2**-1061
    x = float.fromhex("0x1.26addb7d50000p-540")
    y = float.fromhex("0x1.4d95f17174000p-521")
    want = round_exact(Fraction(x) * Fraction(y), P40)
    assert want == P40.smallest_subnormal
    assert float(lowprec.multiply(x, y, P40)) == want


@pytest.mark.parametrize("fmt", [P53, lowprec.fp64], ids=lambda f: f.name)
def test_sqrt_just_below_a_53_bit_midpoint(fmt):
    # sqrt(4 - 2**-51) = 2 - 2**-53 - 2**-108...: just below the midpoint between
    # 2 - 2**-52 and 2, so ties_to_even must give 2 - 2**-52 (as numpy does);
    # sqrt(1 + 2**-52) = 1 + 2**-53 - 2**-107...: ties_to_away must give 1.
    # sqrt(max) = 2**512 (1 - 2**-54 - 2**-109...): below the midpoint under 2**512
    cases = [
        (4 - 2.0**-51, "ties_to_even"),
        (1 + 2.0**-52, "ties_to_away"),
        (fmt.max, "ties_to_even"),
    ]
    for x, mode in cases:
        assert round_value(sqrt_bracket(x), fmt, mode) == float(np.sqrt(x))
    check_cases(fmt, [("sqrt", (x,), mode) for x, mode in cases])


def test_sqrt_bracket_is_exact_for_squares_and_tight_otherwise():
    assert sqrt_bracket(2.25) == Fraction(3, 2)
    assert sqrt_bracket(2.0**-1074) == Fraction(2) ** -537
    lo, hi = sqrt_bracket(2.0)
    assert lo * lo < 2 < hi * hi and (hi - lo) <= Fraction(1, 1 << EXTRA_BITS)


# ------------------------------------------------------- independent RNE oracles


def fp16_sample(n: int, seed: int) -> np.ndarray:
    codes = np.random.default_rng(seed).integers(0, 1 << 16, n, dtype=np.uint16)
    return codes.view(np.float16)


def test_numpy_float16_is_an_oracle_for_fp16_ties_to_even():
    v = fp16_sample(300, 1)
    x, y = (a.reshape(-1) for a in np.meshgrid(v, v, indexing="ij"))
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(all="ignore"):
        cases = {
            "add": (lowprec.add, x + y),
            "subtract": (lowprec.subtract, x - y),
            "multiply": (lowprec.multiply, x * y),
            "divide": (lowprec.divide, x / y),
        }
        for op, (fn, want) in cases.items():
            assert_matches(fn(x64, y64, "fp16"), want, (x64, y64), op)
        every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
        e64 = every.astype(np.float64)
        assert_matches(lowprec.sqrt(e64, "fp16"), np.sqrt(every), (e64,), "sqrt")
    # float16 operands give float16 results
    assert lowprec.add(x[:5], y[:5], "fp16").dtype == np.float16


@pytest.mark.parametrize("name", ["fp8_e4m3fn", "fp8_e5m2", "bf16"])
def test_ml_dtypes_is_an_oracle_for_ties_to_even(name):
    dt = {
        "fp8_e4m3fn": ml_dtypes.float8_e4m3fn,
        "fp8_e5m2": ml_dtypes.float8_e5m2,
        "bf16": ml_dtypes.bfloat16,
    }[name]
    if name == "bf16":  # a random sample of codes, all pairs
        codes = np.random.default_rng(2).integers(0, 1 << 16, 256, dtype=np.uint16)
    else:  # every code, every pair
        codes = np.arange(256, dtype=np.uint8)
    v = codes.view(dt)
    x, y = (a.reshape(-1) for a in np.meshgrid(v, v, indexing="ij"))
    with np.errstate(invalid="ignore"):  # the oracle's cast of bf16 NaN codes
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(all="ignore"):
        for fn, want in [
            (lowprec.add, x + y),
            (lowprec.multiply, x * y),
            (lowprec.divide, x / y),
            (lowprec.subtract, x - y),
        ]:
            assert_matches(
                fn(x64, y64, name),
                want.astype(np.float64),
                (x64, y64),
                f"{fn.__name__} {name}",
            )
        v64 = v.astype(np.float64)
        assert_matches(
            lowprec.sqrt(v64, name),
            np.sqrt(v).astype(np.float64),
            (v64,),
            f"sqrt {name}",
        )


# ------------------------------------------------------------------- hypothesis

SAMPLED = st.sampled_from(list(FORMATS.values()))
ANY_FORMAT = st.one_of(SAMPLED, lowprec.testing.formats(max_precision=53))
MODES = st.sampled_from(DETERMINISTIC_MODES)


def check_one(op: str, fmt, mode: str, operands: tuple[float, ...]) -> None:
    got = OPS[op](*operands, fmt, rounding=mode)
    want = round_value(exact_value(op, operands, mode), fmt, mode)
    cols = tuple(np.array([o]) for o in operands)
    assert_matches(np.atleast_1d(got), [want], cols, f"{op} {fmt} {mode}")


@given(
    fmt=ANY_FORMAT,
    op=st.sampled_from(["add", "subtract", "multiply", "divide"]),
    mode=MODES,
    data=st.data(),
)
def test_hypothesis_binary_ops(fmt, op, mode, data):
    x = data.draw(lowprec.testing.values(fmt), label="x")
    y = data.draw(lowprec.testing.values(fmt), label="y")
    check_one(op, fmt, mode, (x, y))


@given(fmt=ANY_FORMAT, mode=MODES, data=st.data())
def test_hypothesis_fma(fmt, mode, data):
    xs = tuple(data.draw(lowprec.testing.values(fmt), label=n) for n in "xyz")
    check_one("fma", fmt, mode, xs)


@given(fmt=ANY_FORMAT, mode=MODES, data=st.data())
def test_hypothesis_sqrt(fmt, mode, data):
    x = data.draw(lowprec.testing.values(fmt), label="x")
    check_one("sqrt", fmt, mode, (x,))


# ---------------------------------------------------------- stochastic rounding


def inexact_operands(name: str, op: str, n: int) -> tuple[np.ndarray, ...]:
    """Up to n operand tuples whose exact result is finite, nonzero, below max and
    not a value of the format (so stochastic rounding has a choice to make)."""
    fmt = FORMATS[name]
    g = grid_of(fmt)
    cols = operand_sets(name, op)
    keep = []
    for i, row in enumerate(zip(*(c.tolist() for c in cols), strict=True)):
        v = midpoint(exact_value(op, row, "ties_to_even"))
        if isinstance(v, Fraction) and abs(v) < g.max and not is_value(v, fmt):
            keep.append(i)
    idx = np.array(keep[:: max(1, len(keep) // n)][:n])
    return tuple(c[idx] for c in cols)


def kept_bits(v, fmt, r: int) -> tuple[Fraction, int]:
    """The grid neighbour below |v| and the first r bits of the fraction
    (|v| - lower) / gap, from the grid alone; for a bracket, both ends must agree."""
    g = grid_of(fmt)
    ends = v if isinstance(v, tuple) else (v,)
    found = set()
    for end in ends:
        a = abs(end)
        q = g.quantum(a)
        lower = math.floor(a / q) * q
        found.add((lower, math.floor((a - lower) / q * (1 << r))))
    assert len(found) == 1, f"a square root in {v} is too close to a boundary"
    return found.pop()


def enumerating_words(r: int, n: int, seed: int = 0) -> np.ndarray:
    """Shape (2**r, n): row t has top r bits t, and random low bits."""
    top = np.arange(1 << r, dtype=np.uint64)[:, None] << np.uint64(64 - r)
    low = np.random.default_rng(seed).integers(
        0, 1 << (64 - r), (1 << r, n), dtype=np.uint64
    )
    return top | low


@pytest.mark.parametrize("r", [1, 3])
@pytest.mark.parametrize("op", ["add", "multiply", "divide", "sqrt", "fma"])
@pytest.mark.parametrize("name", ["bf16", "fp8_e5m2", "p40e11"])
def test_stochastic_round_ups_equal_floor_of_fraction(name, op, r):
    fmt = FORMATS[name]
    cols = inexact_operands(name, op, 40)
    n = cols[0].size
    words = enumerating_words(r, n)
    got = OPS[op](
        *(np.broadcast_to(c, words.shape) for c in cols),
        fmt,
        rounding="stochastic",
        random_bits=r,
        rng=words,
    )
    assert got.shape == (1 << r, n)
    failures = []
    for j, row in enumerate(zip(*(c.tolist() for c in cols), strict=True)):
        v = exact_value(op, row, "stochastic")
        lower, kept = kept_bits(v, fmt, r)
        ups = int(np.count_nonzero(np.abs(got[:, j]) > float(lower)))
        if ups != kept:
            failures.append(f"{op}{row}: {ups} round-ups, want {kept} of {1 << r}")
        for t in range(1 << r):
            want = round_value(
                v,
                fmt,
                "stochastic",
                random_fraction_bits=r,
                random_word=int(words[t, j]),
            )
            if not same_bits(got[t, j], want):
                failures.append(
                    f"{op}{row} word {int(words[t, j]):#x}: got "
                    f"{got[t, j]!r}, want {want!r}"
                )
    assert not failures, "\n".join(failures[:10])


@pytest.mark.parametrize("op", ["add", "multiply", "divide", "sqrt", "fma"])
@pytest.mark.parametrize("name", ["bf16", "fp16", "fp32", "p40e11", "p53e11"])
def test_stochastic_64_bit_threshold_words(name, op):
    """With all 64 random bits, x rounds up exactly when word >= 2**64 - k, k =
    floor(frac * 2**64): both sides of the threshold, from the exact result (the
    error term of a sum or product far below the format's last bit matters)."""
    fmt = FORMATS[name]
    cols = inexact_operands(name, op, 60)
    rows, words, wants = [], [], []
    for row in zip(*(c.tolist() for c in cols), strict=True):
        v = exact_value(op, row, "stochastic")
        k = kept_bits(v, fmt, 64)[1]
        if k == 0:
            continue
        for w in ((1 << 64) - k, (1 << 64) - k - 1):
            rows.append(row)
            words.append(w)
            wants.append(round_value(v, fmt, "stochastic", random_word=w))
    args = tuple(np.array(c) for c in zip(*rows, strict=True))
    got = OPS[op](
        *args, fmt, rounding="stochastic", rng=np.array(words, dtype=np.uint64)
    )
    assert_matches(got, wants, args, f"{op} {name} stochastic at the threshold")


def test_stochastic_equal_takes_either_neighbour_on_the_top_bit():
    fmt = lowprec.bf16
    x, y = inexact_operands("bf16", "add", 40)
    words = enumerating_words(1, x.size, seed=3)
    x, y = (np.broadcast_to(c, words.shape) for c in (x, y))
    got = lowprec.add(x, y, fmt, rounding="stochastic_equal", rng=words)
    want = [
        round_exact(
            exact_sum(a, b, "stochastic_equal"),
            fmt,
            "stochastic_equal",
            random_word=int(w),
        )
        for a, b, w in zip(x.flat, y.flat, words.flat, strict=True)
    ]
    assert_matches(
        got.reshape(-1), want, (x.reshape(-1), y.reshape(-1)), "stochastic_equal"
    )
    assert (got[0] != got[1]).all()  # inexact: the two words give both neighbours


def test_stochastic_seed_is_reproducible_and_unbiased():
    # 1 + 2**-9 is a quarter of the way from 1 to the next bf16 value
    x = np.full(20_000, 1.0)
    y = np.full(20_000, 2.0**-9)
    a = lowprec.add(x, y, "bf16", rounding="stochastic", rng=11)
    b = lowprec.add(x, y, "bf16", rounding="stochastic", rng=11)
    c = lowprec.add(x, y, "bf16", rounding="stochastic", rng=12)
    assert same_bits(a, b).all() and not same_bits(a, c).all()
    # round-ups ~ Binomial(20000, 1/4): sd 61; allow 5 sd
    assert abs(np.count_nonzero(a > 1) - 5000) < 5 * 61


# ------------------------------------ 53 bits of precision: the hard cases

STOCHASTIC_PROBES = ("threshold", "top bit", "stochastic_equal")


def threshold_words(v, fmt) -> list[int]:
    """The 64-bit words just at and just below the round-up threshold of ``v``:
    ``2**64 - k`` rounds up, ``2**64 - k - 1`` does not (k = floor(frac 2**64))."""
    k = kept_bits(v, fmt, 64)[1]
    return [(1 << 64) - k, (1 << 64) - k - 1] if k else []


def check_every_mode(op: str, fmt, rows: list[tuple[float, ...]]) -> None:
    """Each row of operands in every deterministic mode, and stochastically with
    the threshold words (64 random bits), with one random bit (both top bits) and
    stochastic_equal, all against the exact oracle; one report of all failures."""
    cols = tuple(np.array(c) for c in zip(*rows, strict=True))
    failures = []
    for mode in DETERMINISTIC_MODES:
        got = OPS[op](*cols, fmt, rounding=mode)
        want = [round_value(exact_value(op, row, mode), fmt, mode) for row in rows]
        failures.append(mismatches(got, want, cols, f"{op} {fmt.name} {mode}"))
    for probe in STOCHASTIC_PROBES:
        mode = "stochastic_equal" if probe == "stochastic_equal" else "stochastic"
        r = 1 if probe == "top bit" else 64
        tests = []  # (row, word)
        for row in rows:
            v = exact_value(op, row, mode)
            if probe == "threshold":
                tests += [(row, w) for w in threshold_words(v, fmt)]
            else:
                tests += [(row, 0), (row, 1 << 63)]
        args = tuple(np.array(c) for c in zip(*(t[0] for t in tests), strict=True))
        words = np.array([t[1] for t in tests], dtype=np.uint64)
        kw = {"random_bits": r} if mode == "stochastic" else {}
        got = OPS[op](*args, fmt, rounding=mode, rng=words, **kw)
        want = [
            round_value(
                exact_value(op, row, mode),
                fmt,
                mode,
                random_fraction_bits=r,
                random_word=w,
            )
            for row, w in tests
        ]
        failures.append(mismatches(got, want, args, f"{op} {fmt.name} {probe}"))
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures)


def sqrt_mod_pow2(c: int, k: int) -> int:
    """An odd r with r * r = c (mod 2**k), for c = 1 (mod 8) and k >= 3."""
    r = 1
    for j in range(3, k):  # Hensel: r or r + 2**(j-1) is a root mod 2**(j+1)
        if (r * r - c) % (1 << (j + 1)):
            r += 1 << (j - 1)
    return r % (1 << k)


@functools.cache
def near_midpoint_squares() -> tuple[float, ...]:
    """float64 values x whose square root lies within c 2**-107 of the midpoint m
    of two neighbouring 53-bit numbers, for small c of both signs, at several
    scales.

    m = N 2**-53 with N odd, 2**53 < N < 2**54. x near m*m = N*N 2**-106 is a
    multiple of 2**(k - 106), k = 54 below 2 and 55 above, so N*N must be c away
    from a multiple of 2**k: N is a square root of c modulo 2**k (odd squares
    are 1 mod 8). Then x = m*m - c 2**-106 and sqrt(x) = m - c 2**-107 / m + ...
    (c = 1 gives sqrt(1 + 2**-52) and sqrt(4 - 2**-51)).
    """
    found = set()
    for c in (1, -7, 9, -15, 17, -23, 33, -63, 65, -1023, 1025, 2**20 + 1):
        for k in (54, 55):
            r = sqrt_mod_pow2(c % (1 << k), k)
            for root in (r, -r, r + (1 << (k - 1)), -r + (1 << (k - 1))):
                n = root % (1 << k)
                lo_sq, hi_sq = (1 << 106, 1 << 107) if k == 54 else (1 << 107, 1 << 108)
                if (1 << 53) < n < (1 << 54) and lo_sq <= n * n - c < hi_sq:
                    x = Fraction(n * n - c, 1 << 106)
                    assert x.denominator <= 1 << (106 - k)  # a float64
                    found.add(float(x))
    xs = []
    for x in sorted(found):
        xs += [math.ldexp(x, 2 * j) for j in (-511, -250, 0, 250, 510)]
    return tuple(xs)


def test_near_midpoint_squares_are_near_midpoints():
    xs = near_midpoint_squares()
    assert len(xs) >= 80
    for x in xs:
        lo, hi = sqrt_bracket(x)
        e = math.frexp(x)[1]
        unit = Fraction(2) ** ((e - 1) // 2 - 53)  # half the 53-bit gap at the root
        off = (lo / unit) % 2 - 1  # where the root is from the midpoint, in halves
        assert 0 < abs(off) < Fraction(2**21, 2**52), x


@pytest.mark.parametrize("fmt", [P53, lowprec.fp64], ids=lambda f: f.name)
def test_sqrt_near_53_bit_midpoints_in_every_mode(fmt):
    """Roots within a few 2**-107 (relative) of a 53-bit midpoint, below it and
    above it: where sqrt's rounded error term can land on exactly half an ulp, a
    false tie. Every mode against the exact oracle, and ties_to_even against
    numpy (IEEE 754 sqrt is correctly rounded)."""
    xs = near_midpoint_squares()
    check_every_mode("sqrt", fmt, [(x,) for x in xs])
    got = lowprec.sqrt(np.array(xs), fmt)
    assert_matches(got, np.sqrt(np.array(xs)), (np.array(xs),), "numpy")


def random_values(fmt, n: int, gen, exponents=(-20, 20)) -> np.ndarray:
    """n random values of fmt with full significands, both signs, exponents in
    the given range."""
    p = fmt.precision
    m = gen.integers(1 << (p - 1), 1 << p, n, dtype=np.int64).astype(np.float64)
    e = gen.integers(exponents[0], exponents[1] + 1, n)
    sign = np.where(gen.integers(0, 2, n) == 1, -1.0, 1.0)
    return sign * np.ldexp(m, e - p + 1)


def long_fma_operands(fmt, n: int, seed: int) -> list[tuple[float, float, float]]:
    """fma operands whose exact x*y + z has far more bits than two float64s: z a
    random distance (up to 110 binades) below or above x*y, so that float64's
    p + z is inexact as well as the product p, and the round-to-odd pair loses
    bits."""
    gen = np.random.default_rng(seed)
    x = random_values(fmt, n, gen, exponents=(-5, 5))
    y = random_values(fmt, n, gen, exponents=(-5, 5))
    z = random_values(fmt, n, gen, exponents=(0, 0))
    shift = gen.integers(-110, 20, n)
    z = np.ldexp(z, np.frexp(x * y)[1] + shift)
    return list(zip(x.tolist(), y.tolist(), z.tolist(), strict=True))


@pytest.mark.parametrize(
    "fmt",
    [P53, lowprec.fp64, lowprec.custom_format(50, 11), lowprec.custom_format(45, 8)],
    ids=lambda f: f.name,
)
def test_fma_with_long_exact_results_in_every_mode(fmt):
    """53 bits and just below: the 64-bit stochastic fraction reaches past the
    round-to-odd pair; the threshold words decide on the bits beyond it."""
    check_every_mode("fma", fmt, long_fma_operands(fmt, 150, seed=fmt.precision))


# formats on each side of the limits where stochastic rounding from the pair
# alone is shown exact (sqrt: p <= 19, division: p <= 21, fma: p <= 39) and where
# the kernel starts bracketing (sqrt: p >= 17, division: p >= 20, fma: p >= 38)
LIMIT_FORMATS = [
    lowprec.custom_format(p, 8) for p in (16, 17, 19, 20, 22, 37, 38, 40, 43)
]


def root_clearance(p: int) -> Fraction:
    """How close, at the least, the square root of a p-bit number comes to a
    multiple of 2**-64 of the gap between its p-bit neighbours (not counting
    exact roots, which have at most (p + 1) / 2 bits), as a fraction of it.

    Only the significand M (1 <= M < 2**p) and the parity of the exponent
    matter, so the roots of N = M and N = 2 M cover every value of every p-bit
    format in the normal range: with ``lead = floor(log2 sqrt(N))`` the units
    are ``2**(lead - p + 1 - 64)``, and the root's fraction in them is read off
    an integer square root carried 64 bits further.
    """
    least = Fraction(1)
    for n in (m << j for j in (0, 1) for m in range(1, 1 << p)):
        lead = (n.bit_length() - 1) // 2
        big = n << (2 * (p + 63 - lead + 64))
        root = math.isqrt(big)
        if root * root == big:
            continue
        frac = root & ((1 << 64) - 1)  # the fraction lies in [frac, frac + 1)
        least = min(least, Fraction(min(frac, (1 << 64) - 1 - frac), 1 << 64))
    return least


def test_narrow_roots_clear_the_error_of_the_pair():
    """The kernel rounds a root stochastically from sqrt_pair's (s, lo) alone,
    without the bracket, for p <= 53 - _SQRT_EXACT_D0 in the normal range: there
    lo's error, below 2**(p - 41) units of the 64-bit fraction, must never carry
    a root's fraction across a whole unit. Check every root, with a factor 2 to
    spare."""
    from lowprec.arith._elementwise_kernel import _SQRT_EXACT_D0

    assert 53 - _SQRT_EXACT_D0 >= 11  # fp16, bf16, tf32 and the fp8s take it
    for p in range(2, 53 - _SQRT_EXACT_D0 + 1):
        assert root_clearance(p) > Fraction(2) ** (p - 40), p


@pytest.mark.parametrize("fmt", LIMIT_FORMATS, ids=lambda f: f.name)
@pytest.mark.parametrize("op", ["divide", "sqrt", "fma"])
def test_stochastic_threshold_words_near_the_bracketing_limits(fmt, op):
    """Random operands with the two words around each threshold, on both sides of
    the precisions where the kernel stops trusting lo alone (so both the proofs
    of its fast path and the bracket are exercised)."""
    gen = np.random.default_rng(fmt.precision)
    if op == "fma":
        rows = long_fma_operands(fmt, 150, seed=fmt.precision)
    else:
        x = random_values(fmt, 150, gen)
        y = random_values(fmt, 150, gen)
        rows = [(abs(a),) for a in x] if op == "sqrt" else list(zip(x, y, strict=True))
    tests = [
        (row, w)
        for row in rows
        for w in threshold_words(exact_value(op, row, "stochastic"), fmt)
    ]
    args = tuple(np.array(c) for c in zip(*(t[0] for t in tests), strict=True))
    words = np.array([t[1] for t in tests], dtype=np.uint64)
    got = OPS[op](*args, fmt, rounding="stochastic", rng=words)
    want = [
        round_value(
            exact_value(op, row, "stochastic"), fmt, "stochastic", random_word=w
        )
        for row, w in tests
    ]
    assert_matches(got, want, args, f"{op} {fmt.name} threshold words")


# ------------------------------------------------------------------------ API


@pytest.mark.parametrize(
    ("fn", "args", "bad"),
    [
        (lowprec.add, (0.1, 1.0), "x"),
        (lowprec.subtract, (1.0, 0.1), "y"),
        (lowprec.multiply, (1.0, [1.0, 0.1]), "y"),
        (lowprec.divide, (0.1, 1.0), "x"),
        (lowprec.sqrt, (0.1,), "x"),
        (lowprec.fma, (1.0, 1.0, 0.1), "z"),
    ],
)
def test_non_representable_operands_raise_unless_round_inputs(fn, args, bad):
    with pytest.raises(ValueError, match=rf"^{bad}: .*not values of fp16"):
        fn(*args, "fp16")
    got = fn(*args, "fp16", round_inputs=True)
    # the same as the operation on operands rounded (ties_to_even) first
    op = fn.__name__
    rounded_args = [
        np.vectorize(lambda v: round_exact(Fraction(v), lowprec.fp16))(
            np.asarray(a, dtype=np.float64)
        )
        for a in args
    ]
    bcast = np.broadcast_arrays(*rounded_args)
    want = expected(op, [b.reshape(-1) for b in bcast], lowprec.fp16, "ties_to_even")
    assert_matches(np.atleast_1d(got), want, [b.reshape(-1) for b in bcast], op)


def test_broadcasting():
    x = np.array([[1.0], [-2.5], [0.375]])  # (3, 1)
    y = np.array([3.0, 2.0**-20, -0.0, 1024.0])  # (4,)
    for fn, op in [
        (lowprec.add, "add"),
        (lowprec.multiply, "multiply"),
        (lowprec.divide, "divide"),
    ]:
        got = fn(x, y, "bf16", rounding="toward_positive")
        assert got.shape == (3, 4)
        bx, by = (a.reshape(-1) for a in np.broadcast_arrays(x, y))
        want = expected(op, [bx, by], lowprec.bf16, "toward_positive")
        assert_matches(got.reshape(-1), want, (bx, by), op)
    got = lowprec.fma(x, y, 1.0, "bf16")
    assert got.shape == (3, 4)
    with pytest.raises(ValueError, match="could not be broadcast"):
        lowprec.add(np.ones(3), np.ones(4), "bf16")


def test_out_dtype_and_scalars():
    x = np.array([1.0, 2.0**-130, 3.0e38], dtype=np.float32)
    y = np.array([2.0**-8, 1.0, 3.0e38], dtype=np.float32)
    x = lowprec.round(x, "bf16")
    y = lowprec.round(y, "bf16")
    out = np.empty(3, dtype=np.float32)
    res = lowprec.add(x, y, "bf16", out=out)
    assert res is out
    want = expected(
        "add",
        [x.astype(np.float64), y.astype(np.float64)],
        lowprec.bf16,
        "ties_to_even",
    )
    assert_matches(out, want, (x, y), "add out=")
    assert lowprec.add(x, y, "bf16").dtype == np.float32  # operands' dtype
    with pytest.raises(ValueError):
        lowprec.add(x, y, "bf16", out=np.empty(3, dtype=np.float16))  # cannot hold
    with pytest.raises(ValueError):
        lowprec.add(x, y, "bf16", out=np.empty(4))
    with pytest.raises(ValueError):  # float16 data cannot hold bf16 results
        lowprec.add(np.float16(1.0), np.float16(1.0), "bf16")
    s = lowprec.multiply(3, 5, "fp16")  # integers are converted exactly
    assert isinstance(s, np.float64) and s == 15.0
    assert lowprec.sqrt(np.float32(2.25), "fp16").dtype == np.float32


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("op", ["add", "multiply", "divide", "sqrt", "fma"])
@pytest.mark.parametrize("name", ["fp16", "fp8_e4m3fn", "fp4_e2m1fn"])
def test_stats_count_the_oracle_flags(name, op, saturate):
    fmt = FORMATS[name]
    cols = operand_sets(name, op)
    stats = lowprec.RoundingStats()
    got = OPS[op](*cols, fmt, saturate=saturate, stats=stats)
    counts = dict.fromkeys(Flags.__dataclass_fields__, 0)
    want = []
    for row in zip(*(c.tolist() for c in cols), strict=True):
        value, flags = round_value_flags(
            exact_value(op, row, "ties_to_even"), fmt, "ties_to_even", saturate=saturate
        )
        want.append(value)
        for k in counts:
            counts[k] += int(getattr(flags, k))
    counts["total"] = cols[0].size
    assert stats.as_dict() == counts
    assert_matches(got, want, cols, f"{op} {name}")
