"""Sums, dot products and matrix products against a slow, obviously correct loop.

:func:`reference_matmul` computes each ``C[i, j]`` one scalar step at a time, as the
docstring of :mod:`lowprec.arith._matmul_kernel` states: each product exact or rounded
to the products format, each addition rounded to the accumulator in the chosen order,
the result rounded to the output format. A step is "exact value, rounded once":
the exact value is a :class:`fractions.Fraction` (IEEE 754 specials and signed zeros
written out by hand) and the rounding is :func:`oracles.round_exact`, the oracle
that tests/test_arithmetic.py holds ``lowprec.add``/``multiply``/``fma`` to. This
works for every combination of formats, including exact fp16 products that are not
fp16 values (an fp16 accumulator), where no elementwise lowprec op applies. A second
loop built on ``lowprec.fma`` checks the sequential order of the presets.

Stochastic rounding: the random word of each rounding is the hash of (seed, event
index) that lowprec.randomness documents, written here with Python ints; the event
index of product, addition, block join, pairwise node, Kahan step and output is
the kernel's "(i, j, k, step) in a fixed order" (five steps per (i, j, k), the
outputs after all of them).

Numba compiles one kernel per (mode, order, products rounded, products exact in
float64, counting stats), 20 s to a few minutes each, cached on disk after. The
default run uses every order in ties_to_even and every mode in sequential order;
the rest of the (order x mode x products) grid is marked ``slow`` (``GRID``; run it
with ``pytest -m slow``).
"""

from __future__ import annotations

import math
import types
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import numba
import numpy as np
import pytest
from cache_stamps import assert_stamped
from oracles import (
    DETERMINISTIC_MODES,
    Flags,
    boundary_inputs,
    grid_of,
    round_exact,
    round_exact_flags,
    same_bits,
)

import lowprec
from lowprec.arith import _matmul_kernel
from lowprec.arith.tensorcore import tensor_core_matmul
from lowprec.rounding._kernel import _source_stamp
from lowprec.rounding.rounder import make_plan

ORDERS = ("sequential", "pairwise", "blocked", "kahan")
PRESET_NAMES = ("fp16_fp32acc", "fp16_fp16acc", "bf16_fp32acc", "tf32_fp32acc")
STEPS = 5  # event indices per (i, j, k): product, addition, Kahan's three more
MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
GOLDEN = 0x9E3779B97F4A7C15
NAN = math.nan
GRID = pytest.mark.slow  # see the module docstring

# ------------------------------------------------------------------ exact values
# A value is a Fraction (finite, nonzero, exact) or a float (any rounded result,
# and the exact NaN, +-inf and +-0).


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _isinf(v) -> bool:
    return isinstance(v, float) and math.isinf(v)


def _negative(v) -> bool:
    return v < 0 if isinstance(v, Fraction) else math.copysign(1.0, v) < 0


def exact_product(x: float, y: float):
    """``x * y`` exactly (IEEE 754 for NaN, inf and zeros)."""
    if math.isnan(x) or math.isnan(y):
        return NAN
    negative = _negative(x) != _negative(y)
    if math.isinf(x) or math.isinf(y):
        return NAN if x == 0 or y == 0 else (-math.inf if negative else math.inf)
    if x == 0 or y == 0:
        return -0.0 if negative else 0.0
    return Fraction(x) * Fraction(y)


def exact_sum(x, y, rounding: str):
    """``x + y`` exactly; an exact zero of opposite signs is +0 (-0 rounding down)."""
    if _isnan(x) or _isnan(y):
        return NAN
    if _isinf(x) or _isinf(y):
        if _isinf(x) and _isinf(y) and (x > 0) != (y > 0):
            return NAN
        return x if _isinf(x) else y
    s = Fraction(x) + Fraction(y)
    if s != 0:
        return s
    if x == 0 and y == 0 and _negative(x) == _negative(y):
        return x
    return -0.0 if rounding == "toward_negative" else 0.0


def negated(v):
    return -v


# --------------------------------------------------------------- random words


def _splitmix64(z: int) -> int:
    """SplitMix64's output function (Steele, Lea and Flood, OOPSLA 2014)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _lowbias32(x: int) -> int:
    """Wellons' lowbias32 integer hash."""
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & MASK32
    x = ((x ^ (x >> 15)) * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def random_word(seed: int, index: int) -> int:
    """The 64-bit random word of event ``index``, as the docstring of
    lowprec.randomness specifies it: two 32-bit halves, each lowbias32 of a Weyl
    sequence whose key and odd step come from SplitMix64 of the seed."""
    segment, c = index >> 32, index & MASK32
    halves = []
    for t in (1, 2):
        z = _splitmix64((seed + (2 * segment + t) * GOLDEN) & MASK64)
        key, step = z >> 32, (z & MASK32) | 1
        halves.append(_lowbias32((key + c * step) & MASK32))
    return halves[0] << 32 | halves[1]


# ------------------------------------------------------------------ reference


@dataclass
class Rounder:
    """Rounds exact values one step at a time and counts what each rounding did."""

    rounding: str
    seed: int = 0
    random_bits: int = 64
    counts: dict = field(
        default_factory=lambda: dict.fromkeys((*Flags.__dataclass_fields__, "total"), 0)
    )

    def __call__(self, value, fmt, event: int) -> float:
        word = None
        if self.rounding in ("stochastic", "stochastic_equal"):
            word = random_word(self.seed, event)
        v, flags = round_exact_flags(
            value,
            fmt,
            self.rounding,
            random_fraction_bits=self.random_bits,
            random_word=word,
        )
        for name in Flags.__dataclass_fields__:
            self.counts[name] += int(getattr(flags, name))
        self.counts["total"] += 1
        return v


def reference_matmul(
    a,
    b,
    *,
    products,
    accumulate,
    output,
    rounding="ties_to_even",
    order="sequential",
    block_size=32,
    seed=0,
    random_bits=64,
):
    """``a @ b`` one scalar step at a time; returns (C, counts of the roundings)."""
    prod_fmt = None if products is None else lowprec.as_format(products)
    acc_fmt = lowprec.as_format(accumulate)
    out_fmt = lowprec.as_format(output)
    rnd = Rounder(rounding, seed, random_bits)
    add = exact_sum
    m, kdim = a.shape
    n = b.shape[1]
    c = np.empty((m, n))
    for i in range(m):
        for j in range(n):

            def event(k, step, i=i, j=j):
                return ((i * n + j) * kdim + k) * STEPS + step

            def term(k, i=i, j=j):
                p = exact_product(float(a[i, k]), float(b[k, j]))
                return p if prod_fmt is None else rnd(p, prod_fmt, event(k, 0))

            acc = 0.0
            if order == "sequential":
                for k in range(kdim):
                    acc = rnd(add(acc, term(k), rounding), acc_fmt, event(k, 1))
            elif order == "blocked":
                for k0 in range(0, kdim, block_size):
                    part = 0.0  # sequential inside the block
                    for k in range(k0, min(k0 + block_size, kdim)):
                        part = rnd(add(part, term(k), rounding), acc_fmt, event(k, 1))
                    # the block sum joins the running sum
                    acc = rnd(add(acc, part, rounding), acc_fmt, event(k0, 2))
            elif order == "pairwise":
                level = [term(k) for k in range(kdim)]
                node = 0  # internal nodes are numbered level by level
                while len(level) > 1:
                    half = len(level) // 2
                    nxt = [
                        rnd(
                            add(level[2 * q], level[2 * q + 1], rounding),
                            acc_fmt,
                            event(node + q, 1),
                        )
                        for q in range(half)
                    ]
                    if len(level) % 2:
                        nxt.append(level[-1])  # the odd last term moves up unchanged
                    node += half
                    level = nxt
                if kdim == 1:  # a single term is still rounded to the accumulator
                    acc = rnd(level[0], acc_fmt, event(0, 1))
                elif kdim > 1:
                    acc = level[0]
            elif order == "kahan":
                comp = 0.0
                for k in range(kdim):
                    y = rnd(add(term(k), negated(comp), rounding), acc_fmt, event(k, 1))
                    s = rnd(add(acc, y, rounding), acc_fmt, event(k, 2))
                    d = rnd(add(s, negated(acc), rounding), acc_fmt, event(k, 3))
                    comp = rnd(add(d, negated(y), rounding), acc_fmt, event(k, 4))
                    acc = s
            else:
                raise ValueError(order)
            c[i, j] = rnd(acc, out_fmt, m * n * kdim * STEPS + i * n + j)
    return c, rnd.counts


def preset_formats(name: str) -> dict:
    p = lowprec.PRESETS[name]
    return {"products": p.products, "accumulate": p.accumulate, "output": p.output}


# -------------------------------------------------------------------- test data


def format_values(fmt, gen, size, lo=-4, hi=4, wide=0.15, tiny=0.05) -> np.ndarray:
    """Random values of ``fmt``: exponents in [lo, hi] (clipped to the format), a
    fraction ``wide`` of them from half the normal range, ``tiny`` subnormals, and
    +-0. From the grid alone."""
    g = grid_of(fmt)
    p = g.precision
    e = gen.integers(max(lo, g.emin), min(hi, g.emax) + 1, size)
    far = gen.random(size) < wide
    e[far] = gen.integers(g.emin // 2, g.emax // 2 + 1, int(far.sum()))
    m = gen.integers(1 << (p - 1), 1 << p, size)
    v = np.ldexp(m.astype(np.float64), e - p + 1)
    kind = gen.random(size)
    if g.subnormals:
        sub = kind < tiny
        ss = float(g.smallest_positive)
        v[sub] = ss * gen.integers(1, 1 << (p - 1), int(sub.sum()))
    v[(kind > 0.05) & (kind < 0.12)] = 0.0
    return np.where(gen.random(size) < 0.5, -v, v)


def random_problem(fmt, seed: int, m=4, k=7, n=5, kind="mixed"):
    """a (m, k) and b (k, n) of values of fmt, with cancellations.

    Column 0 of b is ones, so column 0 of C sums row i of a: row 0 takes its first
    half back in its second half (for every column), row 1 adds a huge term and
    takes it away at the end, row 2 is pairs (x, -x): exact zero sums, whose sign
    depends on the mode. ``kind``: "mixed" (wide exponents, subnormals, zeros),
    "narrow" (exponents in [-4, 4], no subnormals: fp16/bf16/tf32 data that the
    ties_to_even fast path runs on float32 lanes) or "specials" (mixed with inf and
    NaN, which keep it on float64 lanes).
    """
    gen = np.random.default_rng(seed)
    opts = {"wide": 0.0, "tiny": 0.0} if kind == "narrow" else {}
    a = format_values(fmt, gen, (m, k), **opts)
    b = format_values(fmt, gen, (k, n), **opts)
    if n > 0:
        b[:, 0] = 1.0
    if k >= 2:
        h = k // 2
        b[h : 2 * h, 1:] = b[:h, 1:]
        a[0, h : 2 * h] = -a[0, :h]
        if m > 1:
            big = float(2.0 ** min(grid_of(fmt).emax // 2, 10))
            a[1, 0], a[1, -1] = big, -big
        if m > 2:
            a[2, 1 : 2 * h : 2] = -a[2, 0 : 2 * h : 2]
    if kind == "specials" and m > 1 and n > 1:
        a[1, 1] = math.inf if grid_of(fmt).has_inf else NAN
        b[-1, -1] = NAN
    return a, b


PROBLEMS = [  # (shape, kind): the edge cases K = 0, 1, 2 and blocks of 3 with a rest
    ((4, 7, 5), "mixed"),
    ((3, 8, 3), "mixed"),
    ((3, 13, 2), "mixed"),
    ((4, 6, 3), "narrow"),
    ((3, 9, 4), "narrow"),
    ((3, 5, 4), "specials"),
    ((1, 1, 3), "mixed"),
    ((2, 2, 2), "mixed"),
    ((2, 0, 2), "mixed"),
]


def assert_same(actual, want, what: str) -> None:
    a = np.array(actual, dtype=np.float64)
    e = np.array(want, dtype=np.float64)
    a[np.isnan(a)] = NAN  # the sign of a NaN result is not specified
    e[np.isnan(e)] = NAN
    assert a.shape == e.shape, (a.shape, e.shape)
    ok = same_bits(a, e)
    if not ok.all():
        bad = np.argwhere(~ok)[:8]
        rows = [
            f"  C{tuple(map(int, ix))}: got {a[tuple(ix)]!r} "
            f"({float(a[tuple(ix)]).hex()}), want {e[tuple(ix)]!r} "
            f"({float(e[tuple(ix)]).hex()})"
            for ix in bad
        ]
        raise AssertionError(
            f"{what}: {int((~ok).sum())} of {ok.size} differ\n" + "\n".join(rows)
        )


def grid_param(order: str, rounding: str, core: bool):
    marks = () if core else (GRID,)
    return pytest.param(order, rounding, marks=marks, id=f"{order}-{rounding}")


# the core kernels: every order in ties_to_even (the fast path), every mode in
# sequential order (the general kernel)
ORDER_MODE_GRID = [
    grid_param(order, mode, mode == "ties_to_even" or order == "sequential")
    for order in ORDERS
    for mode in DETERMINISTIC_MODES
]


# ------------------------------------------------------- orders, modes, presets


# the fast tier checks the core grid on two presets (an fp16 and a bf16 input, a
# narrow and a wide accumulator); the slow tier adds the others
CORE_PRESETS = ("fp16_fp16acc", "bf16_fp32acc")


@pytest.mark.parametrize(("order", "rounding"), ORDER_MODE_GRID)
@pytest.mark.parametrize(
    "presets",
    [
        pytest.param(CORE_PRESETS, id="core-presets"),
        pytest.param(
            tuple(p for p in PRESET_NAMES if p not in CORE_PRESETS),
            marks=GRID,
            id="other-presets",
        ),
    ],
)
def test_matches_reference_for_every_preset(order, rounding, presets):
    failures = []
    for preset in presets:
        fmt = lowprec.as_format(lowprec.PRESETS[preset].inputs)
        for seed, ((m, k, n), kind) in enumerate(PROBLEMS):
            a, b = random_problem(fmt, seed, m, k, n, kind)
            got = lowprec.matmul(
                a, b, preset, rounding=rounding, order=order, block_size=3
            )
            want, _ = reference_matmul(
                a,
                b,
                **preset_formats(preset),
                rounding=rounding,
                order=order,
                block_size=3,
            )
            try:
                assert_same(
                    got, want, f"{preset} {order} {rounding} {kind} {(m, k, n)}"
                )
            except AssertionError as e:
                failures.append(str(e))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "order",
    [pytest.param(o, marks=() if o == "sequential" else (GRID,)) for o in ORDERS],
)
def test_products_rounded_to_a_products_format(order):
    # fp16 inputs, products rounded to fp16 (overflow, underflow and all), fp32 sums
    fmts = {"products": "fp16", "accumulate": "fp32", "output": "fp16"}
    for seed, kind in enumerate(["mixed", "narrow", "specials"]):
        a, b = random_problem(lowprec.fp16, seed, 3, 9, 4, kind)
        got = lowprec.matmul(a, b, inputs="fp16", **fmts, order=order, block_size=4)
        want, _ = reference_matmul(a, b, **fmts, order=order, block_size=4)
        assert_same(got, want, f"products=fp16 {order}")


@pytest.mark.parametrize(
    "rounding", ["ties_to_even", pytest.param("toward_positive", marks=GRID)]
)
def test_wide_inputs_use_an_exact_fused_step(rounding):
    # 40-bit inputs: a product has up to 80 bits, not a float64; sequential order
    # must still round acc + a*b once
    p40 = lowprec.custom_format(40, 11, name="p40e11")
    fmts = {"products": None, "accumulate": p40, "output": p40}
    for seed, kind in enumerate(["mixed", "narrow", "specials"]):
        a, b = random_problem(p40, seed, 3, 6, 3, kind)
        got = lowprec.matmul(a, b, inputs=p40, rounding=rounding)
        want, _ = reference_matmul(a, b, **fmts, rounding=rounding)
        assert_same(got, want, f"p40 {rounding}")


def test_an_fp64_accumulator_is_exact_then_rounded_once():
    # fp16 products sum exactly in fp64 here (no bit to drop: the general kernel)
    fmts = {"products": None, "accumulate": "fp64", "output": "fp16"}
    for seed, ((m, k, n), kind) in enumerate(PROBLEMS):
        a, b = random_problem(lowprec.fp16, seed, m, k, n, kind)
        got = lowprec.matmul(a, b, inputs="fp16", accumulate="fp64", output="fp16")
        want, _ = reference_matmul(a, b, **fmts)
        assert_same(got, want, f"fp64 accumulator {kind} {(m, k, n)}")


def fma_loop(a, b, preset: str, rounding: str, seed: int = 0) -> np.ndarray:
    """The sequential order written with lowprec.fma: acc = fma(a_ik, b_kj, acc)
    rounded to the accumulator, then the output rounded (presets only: their
    inputs are values of their accumulator format, as fma requires)."""
    p = lowprec.PRESETS[preset]
    m, kdim = a.shape
    n = b.shape[1]
    stochastic = rounding in ("stochastic", "stochastic_equal")
    ij = np.arange(m * n, dtype=object).reshape(m, n)

    def words(events):
        return np.array(
            [[random_word(seed, int(e)) for e in row] for row in events],
            dtype=np.uint64,
        )

    acc = np.zeros((m, n))
    for k in range(kdim):
        kw = {"rng": words((ij * kdim + k) * STEPS + 1)} if stochastic else {}
        acc = lowprec.fma(
            a[:, k : k + 1], b[k : k + 1, :], acc, p.accumulate, rounding=rounding, **kw
        )
    kw = {"rng": words(m * n * kdim * STEPS + ij)} if stochastic else {}
    return lowprec.round(acc, p.output, rounding=rounding, **kw)


@pytest.mark.parametrize("rounding", [*DETERMINISTIC_MODES, "stochastic"])
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_sequential_equals_a_loop_of_lowprec_fma(preset, rounding):
    fmt = lowprec.as_format(lowprec.PRESETS[preset].inputs)
    a, b = random_problem(fmt, 5, 4, 9, 3)
    kw = {"rng": 99} if rounding == "stochastic" else {}
    got = lowprec.matmul(a, b, preset, rounding=rounding, **kw)
    assert_same(got, fma_loop(a, b, preset, rounding, seed=99), f"{preset} {rounding}")


def test_exact_zero_sum_rounding_down_is_minus_zero():
    # as lowprec.add and IEEE 754 section 6.3: x + (-x) = -0 when rounding down
    assert (
        math.copysign(1, lowprec.add(1.0, -1.0, "fp16", rounding="toward_negative")) < 0
    )
    a = np.array([[1.0, -1.0], [2.0, 2.0]])
    b = np.array([[1.0], [1.0]])
    got = lowprec.matmul(a, b, inputs="fp16", rounding="toward_negative")
    assert_same(got, [[-0.0], [4.0]], "toward_negative")


def test_fma_flag_is_the_same_rounding_when_products_are_exact():
    a, b = random_problem(lowprec.fp16, 1)
    assert_same(
        lowprec.matmul(a, b, "fp16_fp16acc", fma=True),
        lowprec.matmul(a, b, "fp16_fp16acc"),
        "fma=True",
    )


# ------------------------------------------------------------- known results


def test_sum_of_ones_stops_at_2048_in_fp16_and_256_in_bf16():
    ones = np.ones(10_000)
    assert float(lowprec.sum(ones, "fp16")) == 2048.0
    assert float(lowprec.sum(ones, "bf16")) == 256.0
    assert float(lowprec.dot(ones[:300], ones[:300], "bf16")) == 256.0
    wide = lowprec.sum(ones, "fp16", accumulate="fp32", output="fp32")
    assert float(wide) == 10_000.0
    # rounded to fp16 (spacing 8 near 10000, and 10000 = 1250 * 8): still exact
    assert float(lowprec.sum(ones, "fp16", accumulate="fp32")) == 10_000.0


def test_a_wide_accumulator_does_not_stall():
    x = np.full(10_000, float(lowprec.round(0.01, "bf16")))  # 0.010009765625
    exact = 10_000 * x[0]
    wide = float(lowprec.sum(x, "bf16", accumulate="fp32"))
    narrow = float(lowprec.sum(x, "bf16"))
    assert abs(wide - exact) < 0.5  # output rounded to bf16: spacing 0.5 at 100
    assert narrow == 4.0  # x < half the spacing of bf16 at 4: every add is lost
    want, _ = reference_matmul(
        np.ones((1, x.size)),
        x[:, None],
        products=None,
        accumulate="bf16",
        output="bf16",
    )
    assert narrow == want[0, 0]


def test_sum_and_dot_are_matmul_with_ones_and_vectors():
    gen = np.random.default_rng(3)
    x = format_values(lowprec.bf16, gen, (9, 4))
    fmts = {"products": None, "accumulate": "fp32", "output": "bf16"}
    want, _ = reference_matmul(np.ones((1, 9)), x, **fmts)
    got = lowprec.sum(x, "bf16", axis=0, accumulate="fp32")
    assert got.shape == (4,)
    assert_same(got, want[0], "sum axis=0")
    want_t, _ = reference_matmul(np.ones((1, 4)), x.T, **fmts)
    assert_same(
        lowprec.sum(x, "bf16", axis=-1, accumulate="fp32"), want_t[0], "sum axis=-1"
    )
    want_all, _ = reference_matmul(np.ones((1, 36)), x.reshape(-1, 1), **fmts)
    assert_same(lowprec.sum(x, "bf16", accumulate="fp32"), want_all[0, 0], "sum")
    d = lowprec.dot(x[:, 0], x[:, 1], "bf16", accumulate="fp32")
    want_d, _ = reference_matmul(x[None, :, 0], x[:, 1:2], **fmts)
    assert isinstance(d, np.float64)
    assert_same(d, want_d[0, 0], "dot")


def test_sum_of_a_format_without_one():
    # e3m3 with bias -5: the smallest value is 8, so 1.0 is not a value; the sum of
    # its values is still defined (64 + 64 = 128)
    fmt = lowprec.custom_format(4, 3, bias=-5)
    assert float(lowprec.round(1.0, fmt)) != 1.0
    assert float(lowprec.sum(np.array([64.0, 64.0]), fmt)) == 128.0


def test_unspecified_order_is_blas_within_fp16_rounding():
    gen = np.random.default_rng(4)
    a = np.abs(format_values(lowprec.fp16, gen, (6, 64), -3, 3))
    b = np.abs(format_values(lowprec.fp16, gen, (64, 5), -3, 3))
    seq = lowprec.matmul(a, b, "fp16_fp32acc")
    blas = lowprec.matmul(a, b, "fp16_fp32acc", order="unspecified")
    g = grid_of(lowprec.fp16)
    for s, t in zip(seq.reshape(-1), blas.reshape(-1), strict=True):
        ulp = g.quantum(Fraction(max(s, t))) if max(s, t) > 0 else 0
        assert abs(Fraction(s) - Fraction(t)) <= ulp, (s, t)
    for kw in (
        {"preset": "fp16_fp16acc"},
        {"preset": "fp16_fp32acc", "products": "fp16"},
        {"preset": "fp16_fp32acc", "rounding": "toward_zero"},
    ):
        with pytest.raises(ValueError, match="unspecified"):
            lowprec.matmul(a, b, order="unspecified", **kw)


# ------------------------------------------------------- the float32 BLAS path


def blas_reference(a, b, inputs, output, round_inputs=False, stats=None):
    """What order="unspecified" computes: sgemm on float32 copies of the operands
    (rounded to ``inputs`` first if asked), the result rounded once to ``output``."""
    if round_inputs:
        a, b = lowprec.round(a, inputs), lowprec.round(b, inputs)
    with np.errstate(invalid="ignore"):  # the oracle's sgemm of inf/NaN inputs
        c = np.asarray(a, dtype=np.float32) @ np.asarray(b, dtype=np.float32)
    return lowprec.round(c.astype(np.float64), output, stats=stats)


def strict_bits(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).view(np.int64)


# shapes whose float32 operands fit in the result's buffer (the square ones; 7x3
# puts b at an offset of 84 bytes) and shapes where they do not
BLAS_SHAPES = [(7, 3, 7), (64, 64, 64), (5, 40, 3), (1, 300, 1), (0, 3, 2), (4, 0, 5)]


@pytest.mark.parametrize(("m", "k", "n"), BLAS_SHAPES)
@pytest.mark.parametrize(
    ("preset", "output"),
    [
        ("fp16_fp32acc", None),
        ("bf16_fp32acc", None),
        ("tf32_fp32acc", None),
        ("fp16_fp32acc", "fp8_e4m3fn"),
        ("fp16_fp32acc", "fp64"),  # a result format float32 cannot hold
    ],
)
def test_unspecified_order_is_sgemm_of_float32_copies(preset, output, m, k, n):
    inputs = lowprec.PRESETS[preset].inputs
    out_fmt = output or lowprec.PRESETS[preset].output
    gen = np.random.default_rng(m * 1000 + k)
    a = format_values(lowprec.as_format(inputs), gen, (m, k), -12, 12)
    b = format_values(lowprec.as_format(inputs), gen, (k, n), -12, 12)
    if a.size and b.size and inputs == "fp16":
        a[0, 0], b[-1, -1] = np.inf, -np.inf
        a[-1, 0] = np.nan
    want = blas_reference(a, b, inputs, out_fmt)
    kw = {"order": "unspecified", "output": output}
    got = lowprec.matmul(a, b, preset, **kw)
    assert got.dtype == np.float64
    assert np.array_equal(strict_bits(got), strict_bits(want))
    # float32, float16 and non-contiguous operands: the same values, the same bits
    for x, y in [
        (a.astype(np.float32), np.asfortranarray(b)),
        (np.repeat(a, 2, axis=1)[:, ::2], b.astype(np.float32)),
    ]:
        got = lowprec.matmul(x, y, preset, **kw)
        assert np.array_equal(strict_bits(got), strict_bits(want))
    if inputs == "fp16":
        got = lowprec.matmul(a.astype(np.float16), b, preset, **kw)
        assert np.array_equal(strict_bits(got), strict_bits(want))
    # stats count the output's rounding, as the reference's
    stats, stats_want = lowprec.RoundingStats(), lowprec.RoundingStats()
    got = lowprec.matmul(a, b, preset, stats=stats, **kw)
    want = blas_reference(a, b, inputs, out_fmt, stats=stats_want)
    assert np.array_equal(strict_bits(got), strict_bits(want))
    assert stats.as_dict() == stats_want.as_dict()
    # rounded operands, NaN included (rounding makes it the canonical NaN)
    x, y = gen.standard_normal((m, k)), gen.standard_normal((k, n))
    if x.size:
        x[0, -1] = -np.float64(np.nan)
    got = lowprec.matmul(x, y, preset, round_inputs=True, **kw)
    want = blas_reference(x, y, inputs, out_fmt, round_inputs=True)
    assert np.array_equal(strict_bits(got), strict_bits(want))


def test_unspecified_order_checks_the_operands():
    ok = np.ones((2, 3))
    for bad in (0.1, 70000.0, 2.0**-26, -0.0):
        a = ok.copy()
        a[1, 2] = bad
        if bad == 0.0:  # -0 is an fp16 value, not one of fp8_e4m3fnuz
            with pytest.raises(ValueError, match="^a: 1 of 6 values are not values"):
                lowprec.matmul(
                    a, ok.T, inputs="fp8_e4m3fnuz", accumulate="fp32",
                    order="unspecified",
                )  # fmt: skip
            continue
        with pytest.raises(ValueError, match="^b: 1 of 6 values are not values"):
            lowprec.matmul(ok, a.T, "fp16_fp32acc", order="unspecified")
    # a format whose smallest value is above 1 (the one-pass test does not apply)
    fmt = lowprec.custom_format(4, 3, bias=-5)
    assert (
        _matmul_kernel.operand_test(make_plan(fmt, "ties_to_even", False, True), True)
        is None
    )
    x = np.array([[8.0, 16.0]])
    got = lowprec.matmul(x, x.T, inputs=fmt, accumulate="fp32", order="unspecified")
    assert np.array_equal(
        strict_bits(got), strict_bits(blas_reference(x, x.T, fmt, fmt))
    )


@pytest.mark.parametrize(
    ("order", "model"),
    [("unspecified", None), ("sequential", None), ("kahan", None), (None, "v100")],
)
def test_inf_and_nan_inputs_raise_no_runtime_warning(order, model):
    # issue 15: library code emits no RuntimeWarning (sgemm's "invalid value
    # encountered in matmul" on inf * 0 was one); the NaNs land where inf * 0,
    # inf - inf and NaN put them, as in float64 arithmetic
    a = np.array([[np.inf, 1.0, 0.0], [np.nan, 2.0, 1.0], [1.0, 1.0, 1.0]])
    b = np.array([[0.0, 1.0], [np.inf, 1.0], [-np.inf, 2.0]])
    with np.errstate(all="ignore"):
        exact = a @ b
    nan_want = np.isnan(exact)
    kw = {"model": model} if model else {"order": order}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = lowprec.matmul(a, b, "fp16_fp32acc", **kw)
    if order == "kahan":  # the compensation (inf - x) - inf is NaN
        nan_want |= np.isinf(exact)
    assert np.array_equal(np.isnan(got), nan_want)
    assert np.array_equal(got[~nan_want], [4.0] if order == "kahan" else [np.inf, 4.0])


ONE_PASS_FORMATS = [
    "fp16",
    "bf16",
    "fp8_e4m3",
    "fp8_e4m3fn",
    "fp8_e4m3fnuz",
    "fp8_e5m2",
    "fp8_e5m2fnuz",
    "fp6_e2m3fn",
    "fp4_e2m1fn",
    lowprec.custom_format(5, 4, subnormals=False),
    lowprec.custom_format(3, 5, specials="none"),
]


@pytest.mark.parametrize("fmt", ONE_PASS_FORMATS, ids=str)
@pytest.mark.parametrize("nan_ok", [True, False])
def test_one_pass_operand_test_is_the_rounding_identity(fmt, nan_ok):
    # to_float32 passes x exactly where ties_to_even rounding returns x's bits
    # (NaN: where nan_ok), at every value, midpoint and both neighbours
    fmt = lowprec.as_format(fmt)
    x = boundary_inputs(fmt)
    test = _matmul_kernel.operand_test(
        make_plan(fmt, "ties_to_even", False, fmt.subnormals), nan_ok
    )
    nan = np.isnan(x)
    want = (strict_bits(lowprec.round(x, fmt)) == strict_bits(x)) & ~nan
    want |= nan & nan_ok
    out = np.empty(1, dtype=np.float32)
    got = np.array(
        [_matmul_kernel.to_float32(x[i : i + 1], out, *test) for i in range(x.size)]
    )
    assert np.array_equal(got, want), x[got != want][:8]
    out = np.empty(x.size, dtype=np.float32)
    _matmul_kernel.to_float32(x, out, *test)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    assert np.array_equal(out.view(np.int32), x32.view(np.int32))


# ---------------------------------------------- the cache key of the kernels


def test_kernel_cache_keys_follow_the_helpers_source(tmp_path, monkeypatch):
    from lowprec.arith import (
        _matmul_fast,
        _matmul_fast_steps,
        _matmul_general,
        _matmul_operands,
        _matmul_steps,
    )

    # 1. each kernel module's stamp covers every module whose code its kernels
    # inline or call, the JIT options and modes (its constants are frozen into the
    # code), and every compiled function holds it
    for module, kernels, minimum in [
        (_matmul_steps, [], 2),
        (_matmul_general, [_matmul_general._make_kernel(0, 0, False, True, False)], 1),
        (_matmul_fast_steps, [], 4),
        (_matmul_fast, [_matmul_fast._make_fast_kernel(0)], 7),
        (_matmul_operands, [], 1),
    ]:
        assert lowprec.modes in module._STAMPED or module is _matmul_operands
        assert_stamped(module, kernels, minimum=minimum)
    mk = _matmul_steps
    # 2. it changes with the source of any of them: here a copy of _pair_round
    copy = tmp_path / "_pair_round.py"
    with open(lowprec.arith._pair_round.__file__, "rb") as source:  # closed
        copy.write_bytes(source.read())
    stand_in = types.SimpleNamespace(__file__=str(copy))
    modules = [stand_in if m is lowprec.arith._pair_round else m for m in mk._STAMPED]
    assert _source_stamp(*modules) == mk._HELPERS
    copy.write_text(copy.read_text() + "# changed\n")
    assert _source_stamp(*modules) != mk._HELPERS
    # 4. and Numba's cache key follows it
    codegen = mk._rnd.targetctx.codegen()
    key = mk._rnd._cache._index_key((), codegen)
    assert mk._make_rnd()._cache._index_key((), codegen) == key
    monkeypatch.setattr(mk, "_HELPERS", mk._HELPERS + 1)
    assert mk._make_rnd()._cache._index_key((), codegen) != key


# --------------------------------------------------------- stochastic rounding


@pytest.mark.parametrize(
    "order",
    [pytest.param(o, marks=() if o == "sequential" else (GRID,)) for o in ORDERS],
)
@pytest.mark.parametrize("random_bits", [None, 4])
def test_stochastic_matches_reference_with_splitmix_words(order, random_bits):
    for preset in ("fp16_fp16acc", "bf16_fp32acc"):
        fmt = lowprec.as_format(lowprec.PRESETS[preset].inputs)
        a, b = random_problem(fmt, 8, 3, 7, 4)
        got = lowprec.matmul(
            a,
            b,
            preset,
            rounding="stochastic",
            order=order,
            block_size=3,
            rng=1234,
            random_bits=random_bits,
        )
        want, _ = reference_matmul(
            a,
            b,
            **preset_formats(preset),
            rounding="stochastic",
            order=order,
            block_size=3,
            seed=1234,
            random_bits=random_bits or 64,
        )
        assert_same(got, want, f"{preset} stochastic {order} r={random_bits}")


def test_stochastic_does_not_depend_on_the_thread_count(restore_num_threads):
    gen = np.random.default_rng(6)
    a = format_values(lowprec.fp16, gen, (16, 40), -2, 2)
    b = format_values(lowprec.fp16, gen, (40, 8), -2, 2)
    runs = []
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        numba.set_num_threads(threads)
        runs.append(
            lowprec.matmul(a, b, "fp16_fp16acc", rounding="stochastic", rng=2024)
        )
    assert_same(runs[0], runs[1], "1 vs 2 threads")
    other = lowprec.matmul(a, b, "fp16_fp16acc", rounding="stochastic", rng=2025)
    assert not same_bits(runs[0], other).all()  # another seed, other results


def test_stochastic_sum_of_ones_does_not_stagnate():
    # E[result] = 10000 exactly (each rounding is unbiased); the variance of one
    # sum is about 2048 * 1 + 4096 * 3 + 1808 * 7 ~ 27000 (sd 164), so the mean of
    # 64 independent columns has sd ~21: allow 5 sd. Round to nearest stops at 2048.
    x = np.ones((10_000, 64))
    s = lowprec.sum(x, "fp16", axis=0, rounding="stochastic", rng=77)
    assert s.shape == (64,)
    assert abs(s.mean() - 10_000) < 105
    assert s.min() > 9_000
    assert float(lowprec.sum(x[:, 0], "fp16")) == 2048.0


def test_stochastic_rng_array_is_not_silently_ignored():
    # lowprec.round takes an array of random words; matmul accepts one of shape
    # (m, n) but then draws from seed 0 instead: it must use it or refuse it
    a = np.ones((2, 3))
    b = np.full((3, 2), 1 + 2.0**-10)
    zeros = np.zeros((2, 2), dtype=np.uint64)
    ones = np.full((2, 2), MASK64, dtype=np.uint64)
    try:
        r0 = lowprec.matmul(a, b, "fp16_fp16acc", rounding="stochastic", rng=zeros)
        r1 = lowprec.matmul(a, b, "fp16_fp16acc", rounding="stochastic", rng=ones)
    except (TypeError, ValueError):
        return
    assert not same_bits(r0, r1).all(), "the random words made no difference"


def near_threshold(p: int, word: int, above: bool, gen) -> tuple:
    """``(c, a, b)``: c a value in [1, 2) of a p-bit format (gap G = 2**(1 - p))
    and a * b = G F 2**-64 with F within one of the threshold N = 2**64 - word
    that stochastic rounding with ``word`` sets: F in [N - 1, N) (``above``
    False: c + a * b rounds down to c) or [N, N + 1) (rounds up to c + G).

    F has 64 + 30 bits, a * b = A B 2**(...) with A, B integers below 2**53:
    B is drawn until the nearest multiple of B on the asked side of N 2**30 is
    within 2**30 of it (about 3000 draws)."""
    n_up, k = (1 << 64) - word, 30
    target = n_up << k
    while True:
        big = int(gen.integers(1 << 40, 1 << 41)) * 2 + 1  # odd, in [2**41, 2**42)
        whole = -(-target // big) if above else (target - 1) // big
        miss = whole * big - target
        if (0 <= miss < 1 << k) if above else (-(1 << k) <= miss < 0):
            break
    c = 1.0 + int(gen.integers(0, (1 << (p - 1)) - 1)) * 2.0 ** (1 - p)
    return c, math.ldexp(whole, -60), math.ldexp(big, 60 + 1 - p - 64 - k)


@pytest.mark.parametrize(
    "accumulate", ["fp64", lowprec.custom_format(53, 11), lowprec.custom_format(40, 11)]
)
def test_fma_stochastic_to_a_wide_accumulator_is_exact(accumulate):
    # fma_pair's lo is rounded to odd: at 38 bits of precision and more it no
    # longer holds the first 64 bits of the fraction below the accumulator's last
    # place, which the random word is compared with. Put the exact a * b + c just
    # below and just above the threshold of the word that rounds it: sums
    # [1, a] @ [c, b], whose second step is that rounding (event 6).
    fmt = lowprec.as_format(accumulate)
    gen = np.random.default_rng(53)
    for seed in range(8):
        word = random_word(seed, 6)
        for above in (False, True):
            c, a, b = near_threshold(fmt.precision, word, above, gen)
            for sign in (1.0, -1.0):
                x = np.array([[1.0, sign * a]])
                y = np.array([[sign * c], [b]])
                got = lowprec.matmul(
                    x, y, inputs="fp64", accumulate=fmt, fma=True,
                    rounding="stochastic", rng=seed,
                )  # fmt: skip
                want = sign * (c + 2.0 ** (1 - fmt.precision) if above else c)
                what = f"{fmt.name} seed {seed} above {above} sign {sign}"
                assert same_bits(got, np.array([[want]])).all(), what
                if fmt.precision != 53:
                    continue  # lowprec.fma takes values of the format only
                # the same steps with lowprec.fma (exact at 53 bits)
                acc = np.zeros(1)
                for k, event in ((0, 1), (1, 6)):
                    acc = lowprec.fma(
                        x[:, k], y[k], acc, fmt, rounding="stochastic",
                        rng=np.array([random_word(seed, event)], dtype=np.uint64),
                    )  # fmt: skip
                acc = lowprec.round(
                    acc, fmt, rounding="stochastic",
                    rng=np.array([random_word(seed, 10)], dtype=np.uint64),
                )  # fmt: skip
                assert_same(got, acc.reshape(1, 1), what)


def test_random_words_follow_the_documented_stream():
    from lowprec.rounding.randomness import random_words

    for seed in (0, 1234, MASK64):
        want = [random_word(seed, i) for i in range(64)]
        assert random_words(seed, 64).tolist() == want


# ----------------------------------------------------------------------- stats


def test_stats_of_an_fp16_sum_of_ones():
    stats = lowprec.RoundingStats()
    assert float(lowprec.sum(np.ones(10_000), "fp16", stats=stats)) == 2048.0
    # 10,000 additions and one output rounding; from 2048 + 1 on, every addition
    # is inexact (a tie back to 2048)
    assert stats.total == 10_001
    assert stats.inexact == 10_000 - 2048
    assert stats.overflow == stats.underflow == stats.nan == 0


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_stats_count_the_reference_flags(preset):
    fmt = lowprec.as_format(lowprec.PRESETS[preset].inputs)
    for seed in range(3):
        a, b = random_problem(fmt, 20 + seed, 4, 9, 3)
        a[0, 0] = float(fmt.max)  # overflow somewhere in the fp16 accumulator
        stats = lowprec.RoundingStats()
        got = lowprec.matmul(a, b, preset, stats=stats)
        want, counts = reference_matmul(a, b, **preset_formats(preset))
        assert_same(got, want, preset)
        assert stats.as_dict() == counts, preset


# ------------------------------------------------------------- tensor cores


def test_model_delegates_to_the_tensor_core_model():
    gen = np.random.default_rng(9)
    a = format_values(lowprec.fp16, gen, (3, 12))
    b = format_values(lowprec.fp16, gen, (12, 4))
    tc = tensor_core_matmul(a, b, "v100").astype(np.float64)
    assert_same(lowprec.matmul(a, b, inputs="fp16", model="v100"), tc, "v100 fp32")
    assert_same(
        lowprec.matmul(a, b, "fp16_fp32acc", model="v100"),
        lowprec.round(tc, "fp16"),
        "v100 fp16 output",
    )
    with pytest.raises(ValueError, match="model="):
        lowprec.matmul(a, b, inputs="fp16", model="v100", order="pairwise")


# ---------------------------------------------------------------------- errors


def _call(fn, *args, **kw):
    return lambda: fn(*args, **kw)


ONES23, ONES32 = np.ones((2, 3)), np.ones((3, 2))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            _call(lowprec.matmul, ONES23, np.ones((4, 2)), "fp16_fp32acc"),
            ValueError,
            "do not align",
        ),
        (_call(lowprec.matmul, np.ones(3), ONES32, "fp16_fp32acc"), ValueError, "2-D"),
        (_call(lowprec.matmul, ONES23, np.ones((3, 2, 1))), ValueError, "2-D"),
        (
            _call(lowprec.matmul, ONES23, ONES32, "fp8_fp8acc"),
            ValueError,
            "preset must be one of",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32, "fp16_fp32acc", order="random"),
            ValueError,
            "order must be one of",
        ),
        (
            _call(lowprec.matmul, ONES23 * 0.1, ONES32, "fp16_fp32acc"),
            ValueError,
            "^a: .*not values of fp16",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32 * 0.1, "bf16_fp32acc"),
            ValueError,
            "^b: .*not values of bf16",
        ),
        (
            _call(
                lowprec.matmul, ONES23, ONES32, inputs="fp16", products="fp16", fma=True
            ),
            ValueError,
            "products must be None",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32, inputs="fp16", fma="yes"),
            TypeError,
            "fma",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32, inputs="fp64", order="pairwise"),
            ValueError,
            "products",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32, inputs="fp64", order="kahan"),
            ValueError,
            "products",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32, "fp16_fp32acc", block_size=0),
            ValueError,
            "block_size",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32, "fp16_fp32acc", block_size=2.0),
            TypeError,
            "block_size",
        ),
        (
            _call(lowprec.matmul, ONES23, ONES32, "fp16_fp32acc", rounding="nearest"),
            ValueError,
            "rounding",
        ),
        (
            _call(
                lowprec.matmul,
                ONES23,
                ONES32,
                "fp16_fp32acc",
                model="v100",
                products="fp16",
            ),
            ValueError,
            "model=",
        ),
        (_call(lowprec.dot, np.ones(3), np.ones(4), "fp16"), ValueError, "1-D"),
        (_call(lowprec.sum, ONES23, "fp16", axis=2), ValueError, "out of bounds"),
        (_call(lowprec.sum, ONES23, "fp16", axis=1.0), TypeError, "axis"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_round_inputs_rounds_operands_first():
    a = np.array([[0.1, 0.2, 0.3]])
    b = np.array([[1.0], [3.0], [7.0]])
    got = lowprec.matmul(a, b, "fp16_fp32acc", round_inputs=True)
    ar = np.vectorize(lambda v: round_exact(Fraction(v), lowprec.fp16))(a)
    want, _ = reference_matmul(ar, b, **preset_formats("fp16_fp32acc"))
    assert_same(got, want, "round_inputs")
